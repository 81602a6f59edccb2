//! Tests of the HTTP seam: the client's own (here), the retry loop (`retry.rs`) and exchanges
//! with real loopback servers (`network.rs`). Smaller pieces are tested beside their code.

mod network;
mod retry;

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use url::Url;

use super::*;
use crate::Secret;

/// A response with `status` and `headers`, no body.
pub(super) fn response(status: u16, headers: &[(&'static str, &str)]) -> HttpResponse {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    HttpResponse::from_parts(status, map, Bytes::new(), Clock::system())
}

/// `policy` without randomness.
fn exact(policy: RetryPolicy) -> RetryPolicy {
    policy.with_jitter(0.0).with_throttle_jitter(0.0)
}

#[test]
fn secret_headers_never_go_through_a_proxy() {
    let remote = Url::parse("https://identity.example.com/token").unwrap();
    let local = Url::parse("http://127.0.0.1:8081/msi/token").unwrap();
    assert!(!goes_direct(
        &HttpRequest::get(remote.clone()).header("Accept", "x")
    ));
    assert!(goes_direct(&HttpRequest::get(local)));
    assert!(goes_direct(
        &HttpRequest::get(remote).secret_header("Secret", &Secret::new("s"))
    ));
}

#[test]
fn builder_rejects_zero_limits() {
    for builder in [
        Http::builder().timeout(Duration::ZERO),
        Http::builder().connect_timeout(Duration::ZERO),
        Http::builder().read_stall_timeout(Duration::ZERO),
        Http::builder().max_body_bytes(0),
    ] {
        let error = builder.build().unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::InvalidConfig);
        assert_eq!(error.attempts(), 0);
        assert!(error.to_string().contains("greater than zero"), "{error}");
    }
    let http = Http::builder()
        .timeout(Duration::from_secs(7))
        .build()
        .unwrap();
    assert!(format!("{http:?}").contains("7s"), "{http:?}");
}

#[test]
fn send_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let http = Http::shared();
    let request = HttpRequest::get(Url::parse("http://127.0.0.1:1/").unwrap());
    let policy = RetryPolicy::none();
    let future = http.send(&request, &policy);
    assert_send(&future);
}

#[tokio::test]
async fn invalid_requests_fail_without_echoing_values() {
    let url = Url::parse("http://127.0.0.1:1/token?client_id=abc").unwrap();
    let request = HttpRequest::get(url).header("X-Test", "line\nbreak-VALUE");
    assert!(format!("{request:?}").contains("invalid value"));
    let error = Http::shared()
        .send(&request, &RetryPolicy::none())
        .await
        .unwrap_err();
    assert_eq!((error.kind(), error.attempts()), (HttpErrorKind::Other, 0));
    let text = format!("{error} {error:?}");
    assert!(
        text.contains("x-test") && !text.contains("VALUE") && !text.contains("abc"),
        "{text}"
    );

    let bad_name =
        HttpRequest::get(Url::parse("http://127.0.0.1:1/").unwrap()).header("bad name", "v");
    let error = Http::shared()
        .send(&bad_name, &RetryPolicy::none())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("invalid header name"), "{error}");

    let file = HttpRequest::get(Url::parse("file:///etc/passwd").unwrap());
    let error = Http::shared()
        .send(&file, &RetryPolicy::none())
        .await
        .unwrap_err();
    assert_eq!((error.kind(), error.attempts()), (HttpErrorKind::Other, 0));
}
