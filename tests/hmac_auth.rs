//! `HmacAuth` (features reqwest-middleware and communication) against a loopback stand-in for
//! Azure Communication Services that checks signatures and dates as the service does: every
//! attempt of a retry signed anew, and a stream body refused before anything is sent. No secret
//! in logs: tests/no_secrets_in_logs_middleware.rs.

mod support;
use support::middleware::ours;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use time::OffsetDateTime;
use time::macros::{datetime, format_description};

use azure_credentials::interop::HmacAuth;
use azure_credentials::system::ManualClock;
use azure_credentials::{AccessKeyCredential, ErrorKind};
use support::http::{Response, StandIn};

const KEY: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
const T0: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

/// A retry middleware as small as they come: on a 5xx, moves the clock on 20 minutes (more
/// than the 15 minutes the service tolerates) and sends a copy of the request again.
struct RetryOnce {
    clock: ManualClock,
}

#[async_trait::async_trait]
impl Middleware for RetryOnce {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let copy = request.try_clone().unwrap();
        let response = next.clone().run(request, extensions).await?;
        if !response.status().is_server_error() {
            return Ok(response);
        }
        self.clock.advance(Duration::from_secs(20 * 60));
        next.run(copy, extensions).await
    }
}

/// A Communication Services stand-in that checks each attempt like the service: the signature
/// must be the key's over this request, and its date within 15 minutes of `clock`. The first
/// valid attempt fails with 503, the next valid one succeeds; an invalid one gets 401.
async fn communication_services(credential: AccessKeyCredential, clock: ManualClock) -> StandIn {
    let valid = AtomicUsize::new(0);
    StandIn::start(move |request| {
        let date = request.header("x-ms-date").unwrap_or_default();
        let Ok(sent_at) = time::PrimitiveDateTime::parse(
            date,
            format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            ),
        ) else {
            return Response::new("401 Unauthorized");
        };
        let sent_at = sent_at.assume_utc();
        let expected = credential.sign_parts(
            &request.method,
            request.header("host").unwrap_or_default(),
            &request.target,
            &request.body,
            sent_at,
        );
        let fresh = (clock.now() - sent_at).abs() <= time::Duration::minutes(15);
        if request.header("authorization") != Some(expected.authorization()) || !fresh {
            return Response::new("401 Unauthorized");
        }
        match valid.fetch_add(1, Ordering::SeqCst) {
            0 => Response::new("503 Service Unavailable"),
            _ => Response::new("201 Created"),
        }
    })
    .await
}

fn signing(clock: &ManualClock) -> AccessKeyCredential {
    AccessKeyCredential::builder()
        .key(KEY)
        .clock(clock.clock())
        .build()
        .unwrap()
}

fn hmac_client(middlewares: Vec<Arc<dyn Middleware>>) -> ClientWithMiddleware {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = ClientBuilder::new(reqwest::Client::new());
    for middleware in middlewares {
        builder = builder.with_arc(middleware);
    }
    builder.build()
}

#[tokio::test]
async fn each_attempt_of_a_retry_is_signed_with_its_own_date() {
    let clock = ManualClock::new(T0);
    let credential = signing(&clock);
    let server = communication_services(credential.clone(), clock.clone()).await;
    // The retry middleware first, HmacAuth after it: every attempt passes through HmacAuth.
    let client = hmac_client(vec![
        Arc::new(RetryOnce {
            clock: clock.clone(),
        }),
        Arc::new(HmacAuth::new(credential)),
    ]);

    let response = client
        .post(format!(
            "http://{}/identities?api-version=2023-10-01",
            server.addr()
        ))
        .body("{}")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 201, "both attempts were valid when sent");
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].header("x-ms-date"),
        Some("Tue, 01 Jan 2030 00:00:00 GMT")
    );
    assert_eq!(
        seen[1].header("x-ms-date"),
        Some("Tue, 01 Jan 2030 00:20:00 GMT")
    );
    assert_ne!(
        seen[0].header("authorization"),
        seen[1].header("authorization")
    );
}

#[tokio::test]
async fn a_retry_below_hmac_auth_would_resend_a_stale_date() {
    // The order the docs warn against: the retry resends the first attempt's signature, which
    // the service refuses once its clock has moved on. (Documents why the order matters.)
    let clock = ManualClock::new(T0);
    let credential = signing(&clock);
    let server = communication_services(credential.clone(), clock.clone()).await;
    let client = hmac_client(vec![
        Arc::new(HmacAuth::new(credential)),
        Arc::new(RetryOnce {
            clock: clock.clone(),
        }),
    ]);
    let response = client
        .post(format!(
            "http://{}/identities?api-version=2023-10-01",
            server.addr()
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let seen = server.requests();
    assert_eq!(seen[0].header("x-ms-date"), seen[1].header("x-ms-date"));
}

#[tokio::test]
async fn hmac_auth_refuses_a_stream_body_before_sending() {
    let clock = ManualClock::new(T0);
    let credential = signing(&clock);
    let server = StandIn::start(|_| Response::new("200 OK")).await;
    let client = hmac_client(vec![Arc::new(HmacAuth::new(credential))]);
    let error = client
        .post(format!("http://{}/identities", server.addr()))
        .body(reqwest::Body::wrap(String::from("{}")))
        .send()
        .await
        .unwrap_err();
    assert_eq!(ours(&error).kind(), ErrorKind::InvalidInput);
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn hmac_auth_signs_nothing_for_plain_http_beyond_loopback_unless_allowed() {
    let clock = ManualClock::new(T0);
    let server = StandIn::start(|_| Response::new("200 OK")).await;
    // The resource's host name resolved to the stand-in: plain http to a remote host.
    let client = |auth: HmacAuth| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let inner = reqwest::Client::builder()
            .resolve("acs.communication.azure.com", server.addr())
            .build()
            .unwrap();
        ClientBuilder::new(inner).with(auth).build()
    };
    let url = format!(
        "http://acs.communication.azure.com:{}/identities",
        server.addr().port()
    );

    let error = client(HmacAuth::new(signing(&clock)))
        .post(&url)
        .body("{}")
        .send()
        .await
        .unwrap_err();
    let error = ours(&error);
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    let message = error.to_string();
    assert!(
        message.starts_with(
            "HmacAuth: refused to send a signed request to http://acs.communication.azure.com"
        ),
        "{message}"
    );
    assert!(message.contains("clear text"), "{message}");
    assert!(
        error
            .fix()
            .unwrap()
            .contains("HmacAuth::with_allow_plain_http(true)")
    );
    assert!(server.requests().is_empty(), "nothing was sent");

    let allowed = HmacAuth::new(signing(&clock)).with_allow_plain_http(true);
    let response = client(allowed).post(&url).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0]
            .header("authorization")
            .unwrap()
            .starts_with("HMAC-SHA256 ")
    );
}
