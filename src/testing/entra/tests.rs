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

/// GETs `path` from `addr` with `host` as the `Host` header and returns the body as JSON.
async fn get_json(addr: SocketAddr, host: &str, path: &str) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let raw = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let (head, body) = split(&out);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_slice(body).unwrap()
}

#[tokio::test]
async fn openid_configuration_names_the_tenants_endpoints_on_the_front_asked() {
    let mock = MockEntra::start().await;
    let addr = mock.server.addr();
    let path = "/contoso/v2.0/.well-known/openid-configuration";
    let plain = get_json(addr, &addr.to_string(), path).await;
    assert_eq!(
        plain["token_endpoint"],
        format!("http://{addr}/contoso/oauth2/v2.0/token")
    );
    assert_eq!(plain["issuer"], format!("http://{addr}/contoso/v2.0"));
    assert_eq!(
        plain["authorization_endpoint"],
        format!("http://{addr}/contoso/oauth2/v2.0/authorize")
    );
    assert_eq!(
        plain["device_authorization_endpoint"],
        format!("http://{addr}/contoso/oauth2/v2.0/devicecode")
    );

    // Asked through the https front (its address in `Host`), the endpoints are the front's.
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
    let front = mock
        .serve_tls(vec![generated.cert.der().clone()], key)
        .await;
    let front = format!("127.0.0.1:{}", front.port().unwrap());
    let via_front = get_json(addr, &front, path).await;
    assert_eq!(
        via_front["token_endpoint"],
        format!("https://{front}/contoso/oauth2/v2.0/token")
    );
    assert_eq!(via_front["issuer"], format!("https://{front}/contoso/v2.0"));
    assert_eq!(mock.request_count(), 2);
    assert_eq!(mock.requests()[0].tenant(), Some("contoso"));
}
