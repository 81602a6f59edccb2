//! Unit tests of the token endpoint's checks and the faults MockEntra puts on the wire.

use std::time::Duration;

use serde_json::{Value, json};

use super::reply::error_response;
use super::*;

#[test]
fn tenants_from_paths() {
    assert_eq!(tenant_of("/contoso/oauth2/v2.0/token"), Some("contoso"));
    assert_eq!(tenant_of("/adfs/oauth2/token"), Some("adfs"));
    assert_eq!(tenant_of("/oauth2/v2.0/token"), None);
    assert_eq!(tenant_of("/a/b/oauth2/v2.0/token"), None);
    assert_eq!(tenant_of("/metadata/identity/oauth2/token"), None);
}

#[test]
fn error_bodies_look_like_entra() {
    let (status, _, body) = error_response(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided.",
        3,
    );
    assert_eq!(status, 401);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error_codes"], json!([7000215]));
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215: Invalid client secret provided.")
    );
    assert_eq!(v["correlation_id"], "c0de0000-0000-4000-8000-000000000003");
}

/// Posts a valid client-credentials request and reads until the server closes; `None` when
/// the connection was reset.
async fn post(mock: &MockEntra) -> Option<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = "client_id=app&client_secret=s&grant_type=client_credentials&scope=x%2F.default";
    let raw = format!(
        "POST /contoso/oauth2/v2.0/token HTTP/1.1\r\nHost: login\r\nContent-Type: {FORM}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(mock.server.addr())
        .await
        .unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.ok().map(|_| out)
}

fn split(response: &[u8]) -> (String, &[u8]) {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8(response[..end].to_vec()).unwrap(),
        &response[end + 4..],
    )
}

#[tokio::test]
async fn faults_go_on_the_wire_as_scripted() {
    let mock = MockEntra::start().await;
    mock.push_many([
        MockEntraReply::raw(200, Some("text/plain"), b"\xEF\xBB\xBF{}".to_vec()),
        MockEntraReply::redirect(302, "https://portal.example/"),
        MockEntraReply::short_body(200, "{\"a\"", 100),
        MockEntraReply::oversized(100_000),
        MockEntraReply::close(),
        MockEntraReply::reset(),
    ]);
    let response = post(&mock).await.unwrap();
    let (head, body) = split(&response);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Type: text/plain\r\n"), "{head}");
    assert_eq!(body, b"\xEF\xBB\xBF{}");

    let response = post(&mock).await.unwrap();
    let (head, body) = split(&response);
    assert!(head.starts_with("HTTP/1.1 302 Found"), "{head}");
    assert!(head.contains("Location: https://portal.example/"), "{head}");
    assert!(!head.contains("Content-Type"), "{head}");
    assert!(body.is_empty());

    let response = post(&mock).await.unwrap();
    let (head, body) = split(&response);
    assert!(head.contains("Content-Length: 100\r\n"), "{head}");
    assert_eq!(body, b"{\"a\"");

    let response = post(&mock).await.unwrap();
    let (head, body) = split(&response);
    assert!(head.contains("Content-Length: 100000\r\n"), "{head}");
    assert_eq!(body.len(), 100_000);
    assert!(body.starts_with(b"{\"token_type\":\"Bearer\""));
    assert!(body.ends_with(b"\"}"));

    assert_eq!(
        post(&mock).await,
        Some(Vec::new()),
        "closed without an answer"
    );
    assert_eq!(post(&mock).await, None, "reset");
    assert_eq!(mock.request_count(), 6);
    // Debug never shows a body.
    let printed = format!("{:?}", MockEntraReply::raw(200, None, "secret-body"));
    assert!(!printed.contains("secret-body"), "{printed}");
}

#[tokio::test(start_paused = true)]
async fn trickle_and_hang_take_tokio_time() {
    let mock = MockEntra::start().await;
    mock.push(MockEntraReply::trickle(10, Duration::from_secs(1)));
    let started = crate::system::monotonic_now();
    let response = post(&mock).await.unwrap();
    let (_, body) = split(&response);
    let pieces = body.len().div_ceil(10);
    assert_eq!(
        crate::system::monotonic_now() - started,
        Duration::from_secs(u64::try_from(pieces).unwrap())
    );
    let token: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(token["access_token"], "mock-entra-token-1");

    mock.push(MockEntraReply::hang());
    let hung = tokio::time::timeout(Duration::from_secs(3600), post(&mock)).await;
    assert!(hung.is_err(), "a hung request is never answered");
}
