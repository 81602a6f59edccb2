//! The managed identity mock's own tests, and through it the loopback server's.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::app_service::PATH as APP_SERVICE_PATH;
use super::imds::PATH as IMDS_PATH;
use super::{MockManagedIdentity, MockReply};
use crate::system::{ManualClock, monotonic_now};
use crate::test_util::assert_hides;
use crate::testing::loopback_http::MAX_BODY;

mod jwt;

/// A parsed response, as a raw client sees it.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The top-level keys in the order sent (a `serde_json::Value` sorts them).
    fn keys(&self) -> Vec<String> {
        let map: serde_json::Map<String, Value> = self.json().as_object().unwrap().clone();
        let body = String::from_utf8_lossy(&self.body);
        let mut keys: Vec<_> = map.keys().cloned().collect();
        keys.sort_by_key(|k| body.find(&format!("\"{k}\":")).unwrap());
        keys
    }

    fn content_length(&self) -> usize {
        self.header("content-length").unwrap().parse().unwrap()
    }
}

fn parse_response(raw: &[u8]) -> Response {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_owned(), v.trim().to_owned())
        })
        .collect();
    Response {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

/// Sends raw bytes, then reads until the server closes.
async fn roundtrip(addr: SocketAddr, raw: impl AsRef<[u8]>) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw.as_ref()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    out
}

fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: 169.254.169.254\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    raw
}

async fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Response {
    parse_response(&roundtrip(addr, request("GET", target, headers, "")).await)
}

const VAULT: &str = "https%3A%2F%2Fvault.azure.net";

fn imds_target(resource: &str) -> String {
    format!("{IMDS_PATH}?api-version=2018-02-01&resource={resource}")
}

async fn imds(mock: &MockManagedIdentity) -> Response {
    get(mock.addr(), &imds_target(VAULT), &[("Metadata", "true")]).await
}

async fn app_service(mock: &MockManagedIdentity, identity_header: Option<&str>) -> Response {
    let target = format!("{APP_SERVICE_PATH}?api-version=2019-08-01&resource={VAULT}");
    let headers: Vec<_> = identity_header
        .map(|v| ("X-IDENTITY-HEADER", v))
        .into_iter()
        .collect();
    get(mock.addr(), &target, &headers).await
}

fn token_of(response: &Response) -> String {
    assert_eq!(response.status, 200, "{response:?}");
    response.json()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn auto_tokens_count_up_in_imds_shape() {
    let mock = MockManagedIdentity::start().await;
    let first = imds(&mock).await;
    assert_eq!(token_of(&first), "mock-imds-token-1");
    assert_eq!(token_of(&imds(&mock).await), "mock-imds-token-2");

    assert_eq!(first.header("connection"), Some("close"));
    assert_eq!(first.content_length(), first.body.len());
    assert!(
        first
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let json = first.json();
    assert_eq!(
        first.keys(),
        [
            "access_token",
            "client_id",
            "expires_in",
            "expires_on",
            "ext_expires_in",
            "not_before",
            "resource",
            "token_type"
        ]
    );
    assert_eq!(json["expires_in"], "3600");
    assert_eq!(json["resource"], "https://vault.azure.net");
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["client_id"], MockManagedIdentity::DEFAULT_CLIENT_ID);
    assert!(
        json["expires_on"]
            .as_str()
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
    assert_eq!(mock.token_request_count(), 2);
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn endpoints_are_loopback_urls() {
    let mock = MockManagedIdentity::start().await;
    let port = mock.addr().port();
    assert!(mock.addr().ip().is_loopback());
    assert_eq!(
        mock.base_url().as_str(),
        format!("http://127.0.0.1:{port}/")
    );
    assert_eq!(
        mock.imds_endpoint().as_str(),
        format!("http://127.0.0.1:{port}/metadata/identity/oauth2/token")
    );
    assert_eq!(
        mock.app_service_endpoint().as_str(),
        format!("http://127.0.0.1:{port}/msi/token")
    );
}

#[tokio::test]
async fn script_is_served_in_order_then_the_default() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::token("first"));
    mock.push_many([MockReply::token("second"), MockReply::status(500)]);
    assert_eq!(token_of(&imds(&mock).await), "first");
    assert_eq!(token_of(&imds(&mock).await), "second");
    let error = imds(&mock).await;
    assert_eq!(error.status, 500);
    assert_eq!(error.json()["error"], "server_error");
    // Two token replies were served before: this is the third.
    assert_eq!(token_of(&imds(&mock).await), "mock-imds-token-3");

    mock.set_default(MockReply::status(503));
    assert_eq!(imds(&mock).await.status, 503);
    assert_eq!(imds(&mock).await.status, 503);
    assert_eq!(mock.token_request_count(), 6);
}

#[tokio::test]
async fn imds_without_metadata_header_is_400_and_keeps_the_script() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::token("kept"));
    let response = get(mock.addr(), &imds_target(VAULT), &[]).await;
    assert_eq!(response.status, 400);
    assert_eq!(
        response.body,
        br#"{"error":"invalid_request","error_description":"Required metadata header not specified"}"#
    );
    // A probe without a query gets the same answer.
    let probe = get(mock.addr(), IMDS_PATH, &[]).await;
    assert_eq!(probe.status, 400);
    assert_eq!(
        probe.json()["error_description"],
        "Required metadata header not specified"
    );
    // `Metadata: false` is not enough either.
    let wrong = get(mock.addr(), &imds_target(VAULT), &[("Metadata", "false")]).await;
    assert_eq!(wrong.status, 400);

    assert_eq!(mock.request_count(), 3);
    assert_eq!(mock.token_request_count(), 0);
    assert_eq!(token_of(&imds(&mock).await), "kept");

    mock.require_metadata_header(false);
    let lenient = get(mock.addr(), &imds_target(VAULT), &[]).await;
    assert_eq!(token_of(&lenient), "mock-imds-token-2");
}

#[tokio::test]
async fn imds_without_resource_is_400() {
    let mock = MockManagedIdentity::start().await;
    for target in [
        format!("{IMDS_PATH}?api-version=2018-02-01"),
        format!("{IMDS_PATH}?api-version=2018-02-01&resource="),
    ] {
        let response = get(mock.addr(), &target, &[("Metadata", "true")]).await;
        assert_eq!(response.status, 400);
        assert_eq!(
            response.body,
            br#"{"error":"invalid_request","error_description":"Required audience parameter not specified"}"#
        );
    }
    assert_eq!(mock.token_request_count(), 0);
}

#[tokio::test]
async fn app_service_checks_the_identity_header() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::token("app-service-token"));

    let missing = app_service(&mock, None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["statusCode"], 401);
    assert!(missing.json()["message"].is_string());

    // Before a secret is set, any value is accepted.
    let any = app_service(&mock, Some("whatever")).await;
    assert_eq!(token_of(&any), "app-service-token");

    mock.set_identity_header("the-right-secret");
    let wrong = app_service(&mock, Some("the-wrong-secret")).await;
    assert_eq!(wrong.status, 401);
    assert!(!String::from_utf8_lossy(&wrong.body).contains("the-right-secret"));
    let right = app_service(&mock, Some("the-right-secret")).await;
    assert_eq!(token_of(&right), "mock-imds-token-2");

    let no_resource = get(
        mock.addr(),
        &format!("{APP_SERVICE_PATH}?api-version=2019-08-01"),
        &[("X-IDENTITY-HEADER", "the-right-secret")],
    )
    .await;
    assert_eq!(no_resource.status, 400);
    assert_eq!(no_resource.json()["statusCode"], 400);
    assert_eq!(mock.token_request_count(), 2);
}

#[tokio::test]
async fn app_service_reply_has_its_own_shape() {
    let mock = MockManagedIdentity::start().await;
    let target =
        format!("{APP_SERVICE_PATH}?api-version=2019-08-01&resource={VAULT}&client_id=my-uami");
    let response = get(mock.addr(), &target, &[("X-IDENTITY-HEADER", "s")]).await;
    let json = response.json();
    assert_eq!(
        response.keys(),
        [
            "access_token",
            "expires_on",
            "resource",
            "token_type",
            "client_id"
        ]
    );
    assert_eq!(json["client_id"], "my-uami");
    assert_eq!(json["resource"], "https://vault.azure.net");
    assert!(json.get("expires_in").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_throttles_past_its_burst_and_refills_with_time() {
    let mock = MockManagedIdentity::start().await;
    mock.rate_limit(20.0, 5, Duration::from_secs(1));
    for _ in 0..5 {
        assert_eq!(imds(&mock).await.status, 200);
    }
    let throttled = imds(&mock).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after"), Some("1"));
    assert_eq!(mock.throttled_count(), 1);
    // 20 a second: one more after 50 ms.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(imds(&mock).await.status, 200);
    assert_eq!(imds(&mock).await.status, 429);
    assert_eq!(
        mock.token_request_count(),
        6,
        "throttled requests take no reply"
    );
}

#[tokio::test]
async fn expires_on_follows_the_clock() {
    let mock = MockManagedIdentity::start().await;
    let start = datetime!(2030-01-01 0:00 UTC);
    let manual = ManualClock::new(start);
    mock.set_clock(manual.clock());
    let t0 = start.unix_timestamp();

    let json = imds(&mock).await.json();
    assert_eq!(json["expires_on"], (t0 + 3600).to_string());
    assert_eq!(json["not_before"], t0.to_string());

    manual.advance(Duration::from_secs(100));
    mock.push(
        MockReply::token("long")
            .expires_in(86_399)
            .refresh_in(43_200),
    );
    let json = imds(&mock).await.json();
    assert_eq!(json["expires_in"], "86399");
    assert_eq!(json["ext_expires_in"], "86399");
    assert_eq!(json["expires_on"], (t0 + 100 + 86_399).to_string());
    assert_eq!(json["refresh_in"], "43200");

    let app = app_service(&mock, Some("s")).await.json();
    assert_eq!(app["expires_on"], (t0 + 100 + 3600).to_string());
}

#[tokio::test]
async fn error_replies_have_the_imds_shape() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::error(
        400,
        "invalid_request",
        "Identity not found",
    ));
    mock.push(MockReply::json(200, r#"{"foo":1}"#));
    let response = imds(&mock).await;
    assert_eq!(response.status, 400);
    assert_eq!(
        response.body,
        br#"{"error":"invalid_request","error_description":"Identity not found"}"#
    );
    let raw = imds(&mock).await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body, br#"{"foo":1}"#);
}

#[tokio::test]
async fn html_reply() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::html(403));
    let response = imds(&mock).await;
    assert_eq!(response.status, 403);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(response.body.starts_with(b"<!DOCTYPE html>"));
    assert_eq!(response.content_length(), response.body.len());
}

#[tokio::test]
async fn malformed_json_reply() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::malformed_json());
    let response = imds(&mock).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.content_length(), response.body.len());
    assert!(serde_json::from_slice::<Value>(&response.body).is_err());
}

#[tokio::test]
async fn oversized_reply_is_read_fully() {
    let mock = MockManagedIdentity::start().await;
    let size = 5 * 1024 * 1024;
    mock.push(MockReply::oversized(size));
    let response = imds(&mock).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.content_length(), size);
    assert_eq!(response.body.len(), size);
    assert!(response.body.starts_with(br#"{"access_token":""#));
    assert!(response.body.ends_with(br#""}"#));

    // Sizes smaller than the JSON frame are still exact.
    mock.push(MockReply::oversized(5));
    assert_eq!(imds(&mock).await.body, br#"{"acc"#);
}

#[tokio::test(start_paused = true)]
async fn hang_times_out_and_closes_when_dropped() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::hang());
    let mut stream = TcpStream::connect(mock.addr()).await.unwrap();
    let raw = request("GET", &imds_target(VAULT), &[("Metadata", "true")], "");
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await;
    assert!(read.is_err(), "the hung reply answered: {read:?}");
    assert_eq!(mock.token_request_count(), 1);

    drop(mock);
    let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf))
        .await
        .expect("the connection stayed open after the mock was dropped")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn close_reply_sends_nothing() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::close());
    let raw = request("GET", &imds_target(VAULT), &[("Metadata", "true")], "");
    assert!(roundtrip(mock.addr(), raw).await.is_empty());
    assert_eq!(token_of(&imds(&mock).await), "mock-imds-token-1");
}

#[tokio::test]
async fn reset_reply_resets_the_connection() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::reset());
    let mut stream = TcpStream::connect(mock.addr()).await.unwrap();
    let raw = request("GET", &imds_target(VAULT), &[("Metadata", "true")], "");
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let err = stream.read_to_end(&mut out).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    assert!(out.is_empty());
    // The server keeps serving.
    assert_eq!(token_of(&imds(&mock).await), "mock-imds-token-1");
}

#[tokio::test]
async fn half_body_reply_stops_early() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::half_body());
    let response = imds(&mock).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.content_length(), 1000);
    assert_eq!(response.body.len(), 10);
}

#[tokio::test]
async fn raw_reply_sends_the_bytes_as_they_are() {
    let mock = MockManagedIdentity::start().await;
    let body = b"\xEF\xBB\xBF{\"a\":1}\xFF".to_vec();
    mock.push(MockReply::raw(403, Some("text/plain"), body.clone()));
    mock.push(MockReply::raw(200, None, ""));
    let response = imds(&mock).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert_eq!(response.body, body);
    assert_eq!(response.content_length(), body.len());
    let response = imds(&mock).await;
    assert_eq!(response.header("content-type"), None);
    assert_eq!(response.content_length(), 0);
    // Debug shows the length, never the bytes.
    let printed = format!("{:?}", MockReply::raw(200, None, "secret-bytes"));
    assert!(!printed.contains("secret-bytes"), "{printed}");
}

#[tokio::test]
async fn redirect_reply_names_the_location() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::redirect(302, "http://portal.example/login"));
    let response = imds(&mock).await;
    assert_eq!(response.status, 302);
    assert_eq!(
        response.header("location"),
        Some("http://portal.example/login")
    );
    assert!(response.body.is_empty());
}

#[tokio::test]
async fn short_body_reply_announces_more_than_it_sends() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::short_body(200, r#"{"access_token":"ab"#, 500));
    let response = imds(&mock).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.content_length(), 500);
    assert_eq!(response.body, br#"{"access_token":"ab"#);
}

#[test]
#[should_panic(expected = "not short of")]
fn short_body_must_be_short() {
    let _ = MockReply::short_body(200, "abc", 3);
}

#[tokio::test]
async fn a_token_reply_can_name_another_client_id() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::auto_token().client_id("someone-else"));
    let target = format!("{}&client_id=requested", imds_target(VAULT));
    let response = get(mock.addr(), &target, &[("Metadata", "true")]).await;
    assert_eq!(response.json()["client_id"], "someone-else");
}

#[tokio::test(start_paused = true)]
async fn delay_uses_tokio_time() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::token("late").with_delay(Duration::from_secs(30)));
    let started = monotonic_now();
    let response = imds(&mock).await;
    assert_eq!(token_of(&response), "late");
    assert!(monotonic_now() - started >= Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn trickle_sends_the_body_piece_by_piece() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::trickle(10, Duration::from_secs(1)));
    let mut stream = imds_stream(&mock).await;
    let started = monotonic_now();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // The head arrives at once, with the full length.
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0);
        raw.extend_from_slice(&buf[..n]);
    }
    assert_eq!(monotonic_now() - started, Duration::ZERO);
    let mut reads = 0;
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= 10, "{n}");
        reads += 1;
        raw.extend_from_slice(&buf[..n]);
    }
    let response = parse_response(&raw);
    assert_eq!(response.body.len(), response.content_length());
    assert_eq!(token_of(&response), "mock-imds-token-1");
    let pieces = response.body.len().div_ceil(10);
    assert_eq!(reads, pieces);
    assert_eq!(
        monotonic_now() - started,
        Duration::from_secs(u64::try_from(pieces).unwrap())
    );
}

#[tokio::test]
async fn extra_headers_are_sent() {
    let mock = MockManagedIdentity::start().await;
    mock.push(
        MockReply::status(429)
            .with_header("Retry-After", "2")
            .with_header("x-ms-request-id", "abc"),
    );
    let response = imds(&mock).await;
    assert_eq!(response.status, 429);
    assert_eq!(response.header("retry-after"), Some("2"));
    assert_eq!(response.header("x-ms-request-id"), Some("abc"));
    assert_eq!(response.json()["error"], "too_many_requests");
}

#[tokio::test]
async fn requests_are_recorded() {
    let mock = MockManagedIdentity::start().await;
    let target = format!("{}&client_id=a%20b+c&object_id=x", imds_target(VAULT));
    imds(&mock).await;
    get(
        mock.addr(),
        &target,
        &[("metadata", "TRUE"), ("X-Custom", "v")],
    )
    .await;
    let post = request("POST", IMDS_PATH, &[("Metadata", "true")], "resource=x&y=1");
    let post = parse_response(&roundtrip(mock.addr(), post).await);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET"));
    get(mock.addr(), "/somewhere/else", &[]).await;

    let requests = mock.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(mock.token_request_count(), 2);

    let second = &requests[1];
    assert_eq!(second.method(), "GET");
    assert_eq!(second.path(), IMDS_PATH);
    assert_eq!(second.target(), target);
    assert_eq!(second.query("resource"), Some("https://vault.azure.net"));
    assert_eq!(second.query("client_id"), Some("a b c"));
    assert_eq!(second.query("missing"), None);
    assert_eq!(second.query_pairs().len(), 4);
    assert_eq!(
        second.query_pairs()[0],
        ("api-version".into(), "2018-02-01".into())
    );
    assert_eq!(second.header("METADATA"), Some("TRUE"));
    assert_eq!(second.header("x-custom"), Some("v"));
    assert!(second.body().is_empty());

    assert_eq!(requests[2].method(), "POST");
    assert_eq!(requests[2].body(), b"resource=x&y=1");
    assert_eq!(requests[3].path(), "/somewhere/else");

    mock.clear_requests();
    assert_eq!(mock.request_count(), 0);
    assert_eq!(mock.token_request_count(), 0);
    assert_eq!(token_of(&imds(&mock).await), "mock-imds-token-3");
}

#[tokio::test]
async fn unknown_path_is_404() {
    let mock = MockManagedIdentity::start().await;
    let response = get(
        mock.addr(),
        "/metadata/instance?api-version=2021-02-01",
        &[],
    )
    .await;
    assert_eq!(response.status, 404);
    assert_eq!(mock.token_request_count(), 0);
}

#[tokio::test]
async fn absolute_form_target_is_understood() {
    // What a client that uses the mock as its HTTP proxy sends.
    let mock = MockManagedIdentity::start().await;
    let target = format!("http://169.254.169.254{}", imds_target(VAULT));
    let response = get(mock.addr(), &target, &[("Metadata", "true")]).await;
    assert_eq!(token_of(&response), "mock-imds-token-1");
    assert_eq!(mock.requests()[0].path(), IMDS_PATH);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_requests() {
    let mock = Arc::new(MockManagedIdentity::start().await);
    let mut tasks = JoinSet::new();
    for _ in 0..100 {
        let mock = mock.clone();
        tasks.spawn(async move { token_of(&imds(&mock).await) });
    }
    let mut tokens = tasks.join_all().await;
    tokens.sort();
    let mut expected: Vec<_> = (1..=100).map(|n| format!("mock-imds-token-{n}")).collect();
    expected.sort();
    assert_eq!(tokens, expected);
    assert_eq!(mock.token_request_count(), 100);
    assert_eq!(mock.request_count(), 100);
}

#[tokio::test]
async fn debug_output_hides_secrets() {
    let mock = MockManagedIdentity::start().await;
    mock.set_identity_header("identity-header-secret");
    mock.push(
        MockReply::token("scripted-token-secret")
            .with_header("Authorization", "Bearer header-secret")
            .with_header("Retry-After", "2"),
    );
    mock.push(MockReply::json(
        200,
        r#"{"access_token":"raw-body-secret"}"#,
    ));

    let reply_debug = format!(
        "{:?} {:#?}",
        MockReply::token("scripted-token-secret"),
        MockReply::json(200, "raw-body-secret")
    );
    let mock_debug = format!("{mock:?} {mock:#?}");
    let secrets = [
        "scripted-token-secret",
        "raw-body-secret",
        "header-secret",
        "identity-header-secret",
    ];
    assert_hides(&reply_debug, &secrets);
    assert_hides(&mock_debug, &secrets);
    assert!(mock_debug.contains("Retry-After"), "{mock_debug}");

    let target = format!("{APP_SERVICE_PATH}?api-version=2019-08-01&resource={VAULT}");
    let raw = request(
        "GET",
        &target,
        &[
            ("X-IDENTITY-HEADER", "identity-header-secret"),
            ("Authorization", "Bearer request-secret"),
            ("secret", "ml-secret"),
        ],
        "body-secret",
    );
    let served = parse_response(&roundtrip(mock.addr(), raw).await);
    assert_eq!(token_of(&served), "scripted-token-secret");
    imds(&mock).await; // the raw body
    imds(&mock).await; // an auto token
    let recorded = mock.requests();
    let debug = format!("{recorded:?} {recorded:#?} {mock:?}");
    let secrets = [
        "identity-header-secret",
        "request-secret",
        "ml-secret",
        "body-secret",
        "scripted-token-secret",
        "raw-body-secret",
        "mock-imds-token-",
    ];
    assert_hides(&debug, &secrets);
    assert!(debug.contains("X-IDENTITY-HEADER"), "{debug}");
}

#[tokio::test]
async fn bad_input_is_400_and_the_server_keeps_serving() {
    let mock = MockManagedIdentity::start().await;
    let cases: [&[u8]; 9] = [
        b"GARBAGE\r\n\r\n",
        b"GET /x\r\n\r\n",
        b"GET /x HTTP/1.1 extra\r\n\r\n",
        b"GET /x HTTP/2.0\r\n\r\n",
        b"G(T /x HTTP/1.1\r\n\r\n",
        b"GET /x HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /x HTTP/1.1\r\nX: \xff\xfe\r\n\r\n",
        b"GET /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ];
    for case in cases {
        let response = parse_response(&roundtrip(mock.addr(), case).await);
        assert_eq!(response.status, 400, "{}", String::from_utf8_lossy(case));
    }
    let folded = b"GET /x HTTP/1.1\r\nX: a\r\n b\r\n\r\n";
    assert_eq!(
        parse_response(&roundtrip(mock.addr(), folded).await).status,
        400
    );
    let chunked = request("POST", IMDS_PATH, &[("Transfer-Encoding", "chunked")], "");
    assert_eq!(
        parse_response(&roundtrip(mock.addr(), chunked).await).status,
        501
    );

    // Early disconnects: mid-head, and mid-body.
    for partial in [
        &b"GET /metadata/ident"[..],
        b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
    ] {
        let mut stream = TcpStream::connect(mock.addr()).await.unwrap();
        stream.write_all(partial).await.unwrap();
        drop(stream);
    }
    // Connect and say nothing.
    drop(TcpStream::connect(mock.addr()).await.unwrap());

    assert_eq!(mock.request_count(), 0);
    assert_eq!(token_of(&imds(&mock).await), "mock-imds-token-1");
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let mock = MockManagedIdentity::start().await;
    let huge_header = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(70_000));
    let response = parse_response(&roundtrip(mock.addr(), huge_header).await);
    assert_eq!(response.status, 431);

    let huge_body = format!(
        "POST {IMDS_PATH} HTTP/1.1\r\nContent-Length: {len}\r\n\r\n{}",
        "b".repeat(MAX_BODY + 1),
        len = MAX_BODY + 1
    );
    let response = parse_response(&roundtrip(mock.addr(), huge_body).await);
    assert_eq!(response.status, 413);

    assert_eq!(token_of(&imds(&mock).await), "mock-imds-token-1");
}

#[tokio::test]
async fn refused_address_refuses() {
    let addr = MockManagedIdentity::refused_address();
    assert!(addr.ip().is_loopback());
    let error = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
#[should_panic(expected = "deliberate panic in the mock IMDS server")]
async fn server_panic_is_raised_when_dropped() {
    let mock = MockManagedIdentity::start().await;
    mock.push(MockReply::panic_for_test());
    let raw = request("GET", &imds_target(VAULT), &[("Metadata", "true")], "");
    assert!(roundtrip(mock.addr(), raw).await.is_empty());
    drop(mock);
}

#[test]
#[should_panic(expected = "token replies only")]
fn expires_in_on_a_non_token_reply_panics() {
    let _ = MockReply::status(500).expires_in(10);
}

#[test]
fn runs_on_a_runtime_that_is_dropped_first() {
    // The MockManagedIdentity outlives its runtime: dropping it must not panic.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mock = runtime.block_on(async {
        let mock = MockManagedIdentity::start().await;
        mock.push(MockReply::hang());
        let _ = imds_stream(&mock).await;
        mock
    });
    drop(runtime);
    drop(mock);
}

async fn imds_stream(mock: &MockManagedIdentity) -> TcpStream {
    let mut stream = TcpStream::connect(mock.addr()).await.unwrap();
    let raw = request("GET", &imds_target(VAULT), &[("Metadata", "true")], "");
    stream.write_all(raw.as_bytes()).await.unwrap();
    stream
}
