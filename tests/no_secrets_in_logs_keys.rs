//! Runs the access key and user access token scenarios with a TRACE-level capturing subscriber
//! and fails if an access key (as given, decoded, or a piece of it), a request signature or a
//! user access token appears in a log line, a `Debug` rendering or an error message.

mod support;
use support::cache;
use support::jwt::user_token;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::digest;
use support::log_capture::{LeakTest, Printed};
use time::OffsetDateTime;
use time::macros::datetime;

use azure_credentials::system::ManualClock;
use azure_credentials::{
    AccessKeyCredential, Error, ErrorKind, TokenCredential, UserTokenCredential,
};

const T0: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

/// A made-up 64-byte access key, base64, and the decoded bytes.
fn key(label: &str) -> (String, Vec<u8>) {
    let bytes = digest::digest(&digest::SHA512, label.as_bytes())
        .as_ref()
        .to_vec();
    (STANDARD.encode(&bytes), bytes)
}

#[test]
fn no_key_signature_or_user_token_reaches_logs_debug_or_errors() {
    let mut t = LeakTest::start_paused();
    let mut secrets: Vec<String> = Vec::new();
    access_key_scenarios(&mut t.seen, &mut secrets);
    t.runtime
        .block_on(user_token_scenarios(&mut t.seen, &mut secrets));

    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    t.assert_no_secrets(
        &secrets,
        &[
            "access key replaced",
            "signing a request",
            "asking the refresher for a new user access token",
            "the refresher returned a new user access token",
            "the initial user access token has expired",
            "token cached",
            "background token refresh failed",
            "token fetch failed",
            "proactive refresh started",
            "proactive refresh could not get a user access token",
        ],
    );
}

fn access_key_scenarios(seen: &mut Printed, secrets: &mut Vec<String>) {
    let (key_a, bytes_a) = key("leak test key A");
    let (key_b, bytes_b) = key("leak test key B");
    for (key, bytes) in [(&key_a, &bytes_a), (&key_b, &bytes_b)] {
        secrets.push(key.clone());
        // Any 16-character run of the key, the decoded bytes in hex and as Debug prints a
        // byte slice.
        secrets.extend(
            key.as_bytes()
                .chunks(16)
                .map(|c| String::from_utf8(c.to_vec()).unwrap())
                .filter(|c| c.len() == 16),
        );
        secrets.push(bytes.iter().map(|b| format!("{b:02x}")).collect());
        secrets.push(
            format!("{:?}", &bytes[..6])
                .trim_end_matches(']')
                .to_owned(),
        );
    }

    let manual = ManualClock::new(T0);
    let connection_string =
        format!("endpoint=https://contoso.communication.azure.com/;accesskey={key_a}");
    let builder = AccessKeyCredential::builder()
        .connection_string(connection_string.as_str())
        .clock(manual.clock());
    let credential = seen.built(builder, |b| b.build());

    let url = credential
        .endpoint()
        .unwrap()
        .join("identities?api-version=2023-10-01")
        .unwrap();
    let mut signatures = Vec::new();
    let headers = credential.sign("POST", &url, b"{}").unwrap();
    seen.debug(&headers);
    signatures.push(headers.authorization().to_owned());
    let headers = credential.sign_parts("GET", "h:8443", "/", b"", T0);
    seen.debug(&headers);
    signatures.push(headers.authorization().to_owned());

    // reqwest's own Debug of the signed request shows its headers: Authorization is sensitive.
    let mut request = reqwest::Request::new(reqwest::Method::POST, url.clone());
    *request.body_mut() = Some("{}".into());
    credential.sign_request(&mut request).unwrap();
    seen.debug(&request);
    seen.debug(request.headers());
    signatures.push(
        request.headers()["authorization"]
            .to_str()
            .unwrap()
            .to_owned(),
    );

    // Rotation, refused and accepted.
    let err = credential.rotate(format!("{key_b}!")).unwrap_err();
    seen.error(&err);
    credential.rotate(key_b.as_str()).unwrap();
    seen.debug(&credential);
    let headers = credential.sign("GET", &url, b"").unwrap();
    signatures.push(headers.authorization().to_owned());

    // Keys and connection strings that are wrong in every way, each holding the key.
    let truncated = &key_a[..key_a.len() - 5];
    let bad_keys = [
        format!("{key_a}!"),
        truncated.to_owned(),
        key_a.replace('+', "-").replace('/', "_") + "-",
        connection_string.clone(),
        format!("Bearer {key_a}"),
    ];
    for bad in &bad_keys {
        seen.error(&AccessKeyCredential::new(bad.as_str()).unwrap_err());
    }
    let bad_connection_strings = [
        format!("accesskey={key_a}"),
        format!("endpoint={key_a};accesskey={key_a}"),
        format!("endpoint=https://contoso.communication.azure.com/;{key_a}"),
        format!(
            "endpoint=https://contoso.communication.azure.com/;{}",
            key_a.trim_end_matches('=')
        ),
        format!(
            "endpoint=https://contoso.communication.azure.com/;{}=1;accesskey={key_a}",
            &key_a[..20]
        ),
        format!("endpoint=https://u:{key_a}@contoso.communication.azure.com/;accesskey={key_a}"),
        format!("endpoint=http://contoso.communication.azure.com/;accesskey={key_a}"),
        format!("endpoint=https://contoso.communication.azure.com/?sig={key_a};accesskey={key_a}"),
        format!("endpoint=https://contoso.communication.azure.com/;accesskey={truncated}"),
        format!(
            "endpoint=https://contoso.communication.azure.com/;accesskey={key_a};accesskey={key_a}"
        ),
        key_a.clone(),
    ];
    for bad in &bad_connection_strings {
        let err = AccessKeyCredential::from_connection_string(bad.as_str()).unwrap_err();
        seen.error(&err);
    }
    let both = AccessKeyCredential::builder()
        .key(key_a.as_str())
        .connection_string(connection_string.as_str());
    seen.debug(&both);
    seen.error(&both.build().unwrap_err());

    for signature in signatures {
        // The whole header value and the signature alone.
        secrets.push(signature.rsplit("Signature=").next().unwrap().to_owned());
        secrets.push(signature);
    }
}

async fn user_token_scenarios(seen: &mut Printed, secrets: &mut Vec<String>) {
    let manual = ManualClock::new(T0);
    let new_cache = || cache::deterministic(manual.clock());
    let mut tokens = Vec::new();
    let mut token = |exp: OffsetDateTime, marker: &str| {
        let value = user_token(exp, marker);
        tokens.push(value.clone());
        value
    };

    // Without a refresher: served, then expired.
    let static_token = token(T0 + Duration::from_secs(3600), "static");
    let builder = UserTokenCredential::builder()
        .token(static_token.as_str())
        .cache(new_cache());
    let credential = seen.built(builder, |b| b.build());
    seen.debug(&credential.get_token(&[], None).await.unwrap());
    manual.advance(Duration::from_secs(3600));
    seen.error(&credential.get_token(&[], None).await.unwrap_err());
    seen.error(
        &UserTokenCredential::builder()
            .token(static_token.as_str())
            .cache(new_cache())
            .build()
            .unwrap_err(),
    );
    manual.set(T0);

    // Tokens that are refused, each holding a secret.
    let refused = [
        "opaque-user-token-secret".to_owned(),
        format!("Bearer {static_token}"),
        format!("{static_token} extra"),
        format!("{static_token}.fourth-part-secret"),
        format!(
            "eyJhbGciOiJub25lIn0.{}.user-token-signature-noexp",
            URL_SAFE_NO_PAD.encode(r#"{"skypeid":"no-exp-secret"}"#)
        ),
    ];
    for bad in &refused {
        seen.error(&UserTokenCredential::new(bad.as_str()).unwrap_err());
    }
    secrets.extend([
        "opaque-user-token-secret".to_owned(),
        "fourth-part-secret".to_owned(),
        "user-token-signature-noexp".to_owned(),
    ]);

    // With a refresher: the initial token, a refresh ahead of expiry, a failed one (stale on
    // error), a refresher returning garbage, and one failing past expiry.
    let replies: Arc<parking_lot::Mutex<Vec<Result<String, Error>>>> = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let refresher = {
        let replies = replies.clone();
        let calls = calls.clone();
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            let reply = replies.lock().remove(0);
            async move { reply }
        }
    };
    let refreshing = |initial: &str| {
        UserTokenCredential::builder()
            .token(initial)
            .refresher(refresher.clone())
            .cache(new_cache())
            .build()
            .unwrap()
    };
    let first = token(T0 + Duration::from_secs(3600), "first");
    let second = token(T0 + Duration::from_secs(7200), "second");
    let credential = refreshing(&first);
    seen.debug(&credential);
    seen.debug(&credential.get_token(&[], None).await.unwrap());
    manual.advance(Duration::from_secs(55 * 60));
    replies.lock().push(Err(Error::new(
        ErrorKind::Io,
        "MyTokenService",
        "connection refused",
    )));
    seen.debug(&credential.get_token(&[], None).await.unwrap());
    settle(&calls, 1).await;
    manual.advance(Duration::from_secs(31));
    replies.lock().push(Ok(second.clone()));
    seen.debug(&credential.get_token(&[], None).await.unwrap());
    settle(&calls, 2).await;
    seen.debug(&credential.get_token(&[], None).await.unwrap());

    manual.set(T0 + Duration::from_secs(7200 + 10));
    replies
        .lock()
        .push(Ok("opaque-refreshed-token-secret".to_owned()));
    seen.error(&credential.get_token(&[], None).await.unwrap_err());
    secrets.push("opaque-refreshed-token-secret".to_owned());

    // An initial token that has expired: straight to the refresher, which fails.
    manual.set(T0);
    let stale = token(T0 - Duration::from_secs(1), "stale");
    let credential = refreshing(&stale);
    replies.lock().push(Err(Error::new(
        ErrorKind::Authentication,
        "MyTokenService",
        "the user signed out",
    )));
    seen.error(&credential.get_token(&[], None).await.unwrap_err());

    // The proactive task, through a refresh and a failure past expiry.
    let proactive_first = token(T0 + Duration::from_secs(3600), "proactive-first");
    let proactive_second = token(T0 + Duration::from_secs(7200), "proactive-second");
    replies.lock().push(Ok(proactive_second));
    for _ in 0..20 {
        replies
            .lock()
            .push(Err(Error::new(ErrorKind::Io, "MyTokenService", "offline")));
    }
    let credential = UserTokenCredential::builder()
        .token(proactive_first.as_str())
        .refresher(refresher)
        .refresh_proactively(true)
        .cache(new_cache())
        .build()
        .unwrap();
    seen.debug(&credential);
    for _ in 0..125 {
        manual.advance(Duration::from_secs(60));
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    drop(credential);

    for value in tokens {
        secrets.push(value.rsplit('.').next().unwrap().to_owned());
        secrets.push(value);
    }
}

/// Lets background refreshes run until the refresher has been called `n` times.
async fn settle(calls: &AtomicUsize, n: usize) {
    for _ in 0..10_000 {
        if calls.load(Ordering::SeqCst) >= n {
            break;
        }
        tokio::task::yield_now().await;
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), n);
}
