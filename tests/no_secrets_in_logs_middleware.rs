//! Runs the reqwest middlewares' scenarios (a CAE challenge answered, a foreign resource refused,
//! a stream body not resent, requests signed with an access key) with a TRACE-level capturing
//! subscriber, and fails if a bearer token, the claims token, the access key or a signature
//! appears in a log line, a `Debug` rendering (the middlewares, clients, requests, responses)
//! or an error message.

mod support;
use support::middleware::ours;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware};
use time::macros::datetime;

use azure_credentials::AccessKeyCredential;
use azure_credentials::interop::{BearerAuth, HmacAuth};
use azure_credentials::system::ManualClock;
use support::cache::mock_on_manual_clock;
use support::http::{Response, StandIn};
use support::log_capture::LeakTest;

const KEY: &str =
    "LLdsC2Q5NWcVE2PvNH99sol+4caoni0xZ2mVjeUPPYPJ1ECGTaWb8Q0gXiJqQOZxKNteYrgCBMpQzF4pVHS1+A==";
const FIRST: &str =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.eyJzdWIiOiJmaXJzdCJ9.first-secret-signature";
const CLAIMS_TOKEN: &str =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.eyJzdWIiOiJjbGFpbXMifQ.claims-secret-signature";

async fn challenging(challenge: String) -> StandIn {
    let count = AtomicUsize::new(0);
    StandIn::start(move |_| match count.fetch_add(1, Ordering::SeqCst) {
        0 => Response::new("401 Unauthorized").header("WWW-Authenticate", &challenge),
        _ => Response::new("200 OK"),
    })
    .await
}

fn client(server: &StandIn, host: &str, middleware: Arc<dyn Middleware>) -> ClientWithMiddleware {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .resolve(host, server.addr())
        .build()
        .unwrap();
    ClientBuilder::new(client).with_arc(middleware).build()
}

fn url(host: &str, server: &StandIn) -> String {
    format!("http://{host}:{}/resource", server.addr().port())
}

#[test]
fn no_token_key_or_signature_reaches_logs_debug_or_errors() {
    let mut t = LeakTest::start();
    let seen = &mut t.seen;
    let mut signatures = Vec::new();
    t.runtime.block_on(async {
        let (_, credential) = mock_on_manual_clock();
        credential.push_token(FIRST, Duration::from_secs(3600));
        credential.push_token(CLAIMS_TOKEN, Duration::from_secs(3600));
        let auth = BearerAuth::new(credential.clone(), ["https://management.azure.com/.default"])
            .unwrap()
            .with_allow_plain_http(true);
        seen.debug(&auth);
        let auth: Arc<dyn Middleware> = Arc::new(auth);

        // A CAE challenge, answered with the claims token.
        let cae = format!(
            r#"Bearer error="insufficient_claims", claims="{}""#,
            STANDARD.encode(r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#)
        );
        let server = challenging(cae.clone()).await;
        let arm = client(&server, "management.azure.com", auth.clone());
        seen.debug(&arm);
        let request = arm
            .get(url("management.azure.com", &server))
            .build()
            .unwrap();
        let response = arm.execute(request).await.unwrap();
        seen.debug(&response);
        assert_eq!(response.status(), 200);

        // A challenge for another domain's resource, refused.
        let server = challenging(
            r#"Bearer authorization="https://login.microsoftonline.com/common", resource="https://graph.microsoft.com""#
                .to_owned(),
        )
        .await;
        let vault = client(&server, "myvault.vault.azure.net", auth.clone());
        let error = vault
            .get(url("myvault.vault.azure.net", &server))
            .send()
            .await
            .unwrap_err();
        seen.error(&error);
        seen.error(ours(&error));

        // A stream body that cannot be sent again.
        let server = challenging(cae).await;
        let arm = client(&server, "management.azure.com", auth.clone());
        let error = arm
            .put(url("management.azure.com", &server))
            .body(reqwest::Body::wrap(String::from("{}")))
            .send()
            .await
            .unwrap_err();
        seen.error(&error);
        seen.error(ours(&error));

        // Requests signed with an access key, and one that cannot be signed.
        let clock = ManualClock::new(datetime!(2030-01-01 0:00 UTC));
        let key = AccessKeyCredential::builder()
            .key(KEY)
            .clock(clock.clock())
            .build()
            .unwrap();
        let hmac = HmacAuth::new(key).with_allow_plain_http(true);
        seen.debug(&hmac);
        let server = StandIn::start(|_| Response::new("200 OK")).await;
        let acs = client(&server, "contoso.communication.azure.com", Arc::new(hmac));
        let request = acs
            .post(url("contoso.communication.azure.com", &server))
            .body("{}")
            .build()
            .unwrap();
        seen.debug(&request);
        acs.execute(request).await.unwrap();
        signatures.extend(server.requests().iter().filter_map(|r| {
            let authorization = r.header("authorization")?;
            Some(authorization.split("Signature=").nth(1)?.to_owned())
        }));
        let error = acs
            .post(url("contoso.communication.azure.com", &server))
            .body(reqwest::Body::wrap(String::from("{}")))
            .send()
            .await
            .unwrap_err();
        seen.error(&error);
        seen.error(ours(&error));
    });
    assert_eq!(signatures.len(), 1);
    let mut secrets = vec![
        FIRST,
        CLAIMS_TOKEN,
        "first-secret-signature",
        "claims-secret-signature",
        KEY,
    ];
    secrets.push(&signatures[0]);
    t.assert_no_secrets(
        &secrets,
        &[
            "answering a 401 challenge with a new token",
            "refused a challenge for a resource outside the request's domain",
            "signing a request",
        ],
    );
}
