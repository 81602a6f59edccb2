//! What the user-flow unit tests share: raw requests to the mock, JWT decoding, authorize
//! URLs, and a one-request loopback listener standing in for a credential's redirect listener.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::user::pkce_challenge;
use super::{FORM, MockEntra};
use crate::testing::loopback_http::first_value;
use crate::testing::mock_browser::client;

pub(super) const APP: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
pub(super) const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-0123456789";
pub(super) const SCOPE: &str = "https://vault.azure.net/.default openid profile offline_access";

pub(super) async fn post(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = client()
        .unwrap()
        .post(url)
        .header("content-type", FORM)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap(),
    )
}

/// GETs `url`: status, content type, body.
pub(super) async fn get(url: &str) -> (u16, String, String) {
    let response = client().unwrap().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

pub(super) fn jwt_payload(jwt: &str) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    assert_eq!(parts[2], "mock-signature");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(
        header,
        serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "mock"})
    );
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

pub(super) fn error_code(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap()
}

/// The authorize URL for `redirect_uri` with a PKCE challenge of [`VERIFIER`].
pub(super) fn authorize_url(
    mock: &MockEntra,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = url::Url::parse(&mock.authorize_endpoint("organizations")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", APP)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", SCOPE)
        .append_pair("state", "state & more")
        .append_pair("code_challenge", &pkce_challenge(VERIFIER))
        .append_pair("code_challenge_method", "S256")
        .extend_pairs(extra);
    url.into()
}

/// A one-request loopback listener: answers `page` and hands back the request's query pairs.
pub(super) async fn listener(
    page: &'static str,
) -> (String, tokio::task::JoinHandle<Vec<(String, String)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect_uri = format!(
        "http://localhost:{}/",
        listener.local_addr().unwrap().port()
    );
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            if stream.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let target = head.split(' ').nth(1).unwrap().to_owned();
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        );
        stream.write_all(reply.as_bytes()).await.unwrap();
        let url = url::Url::parse(&format!("http://localhost{target}")).unwrap();
        url.query_pairs().into_owned().collect()
    });
    (redirect_uri, task)
}

pub(super) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    first_value(pairs, name)
}
