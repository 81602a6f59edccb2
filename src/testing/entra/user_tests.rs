//! Unit tests of the user sign-in flows: device codes, the sign-in page, the public-client
//! grants, id tokens, and [`MockBrowser`](crate::testing::MockBrowser) against the page.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::user::pkce_challenge;
use super::*;
use crate::system::{Command, Executor, ManualClock, ProcessErrorKind};
use crate::testing::MockBrowser;
use crate::testing::mock_browser::{client, continue_link};

const APP: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-0123456789";
const SCOPE: &str = "https://vault.azure.net/.default openid profile offline_access";

async fn post(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
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
async fn get(url: &str) -> (u16, String, String) {
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

fn jwt_payload(jwt: &str) -> Value {
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

fn error_code(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap()
}

/// The authorize URL for `redirect_uri` with a PKCE challenge of [`VERIFIER`].
fn authorize_url(mock: &MockEntra, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
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
async fn listener(page: &'static str) -> (String, tokio::task::JoinHandle<Vec<(String, String)>>) {
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

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    first_value(pairs, name)
}

#[tokio::test]
async fn device_code_polls_pending_then_slow_down_then_a_token_with_user_fields() {
    let mock = MockEntra::start().await;
    let (status, issued) = post(
        &mock.devicecode_endpoint("organizations"),
        &[("client_id", APP), ("scope", SCOPE)],
    )
    .await;
    assert_eq!(status, 200);
    let device_code = issued["device_code"].as_str().unwrap().to_owned();
    assert_eq!(device_code, "mock-entra-device-code-1");
    assert_eq!(issued["user_code"], "MOCK00001");
    assert_eq!(issued["interval"], 5);
    assert_eq!(issued["expires_in"], 900);
    let verification_uri = format!("{}/devicelogin", mock.authority_host());
    assert_eq!(issued["verification_uri"], verification_uri.as_str());
    assert_eq!(
        issued["message"],
        format!(
            "To sign in, use a web browser to open the page {verification_uri} and enter the code MOCK00001 to authenticate."
        )
    );
    let (status, _, page) = get(&verification_uri).await;
    assert_eq!(status, 200);
    assert!(page.contains("Enter code"), "{page}");

    mock.push_many([
        MockEntraReply::authorization_pending(),
        MockEntraReply::slow_down(),
    ]);
    let token = mock.token_endpoint("organizations");
    let poll = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("client_id", APP),
        ("device_code", device_code.as_str()),
    ];
    let (status, body) = post(&token, &poll).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    assert_eq!(error_code(&body), 70016);
    let (status, body) = post(&token, &poll).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("slow_down")));
    let (status, body) = post(&token, &poll).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["access_token"], "mock-entra-token-1");
    assert_eq!(body["refresh_token"], "mock-entra-refresh-1");
    // The scope of the device code request, without the OpenID scopes.
    assert_eq!(body["scope"], "https://vault.azure.net/.default");
    let claims = jwt_payload(body["id_token"].as_str().unwrap());
    assert_eq!(claims["aud"], APP);
    assert!(claims.get("nonce").is_none());

    // A device code is redeemed once; one never issued is refused.
    let (status, body) = post(&token, &poll).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = post(
        &token,
        &[
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", APP),
            ("device_code", "mock-entra-device-code-99"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(mock.request_count(), 7);
    assert_eq!(
        mock.requests()[0].path(),
        "/organizations/oauth2/v2.0/devicecode"
    );
    assert_eq!(mock.requests()[0].tenant(), Some("organizations"));
}

#[tokio::test]
async fn device_code_endpoint_checks_its_form_replays_pushed_replies_and_expires_codes() {
    let mock = MockEntra::start().await;
    let endpoint = mock.devicecode_endpoint("common");
    let (status, body) = post(&endpoint, &[("client_id", APP)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(error_code(&body), 900144);

    mock.push_device_code_reply(MockEntraReply::error(
        400,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ));
    let (status, body) = post(&endpoint, &[("client_id", APP), ("scope", SCOPE)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client"))
    );

    let clock = ManualClock::new(time::macros::datetime!(2030-01-01 0:00 UTC));
    mock.set_clock(clock.clock());
    mock.set_device_code(1, 60);
    let (status, issued) = post(&endpoint, &[("client_id", APP), ("scope", SCOPE)]).await;
    assert_eq!(status, 200);
    assert_eq!(
        (issued["interval"].as_u64(), issued["expires_in"].as_u64()),
        (Some(1), Some(60))
    );
    clock.advance(Duration::from_secs(60));
    let (status, body) = post(
        &mock.token_endpoint("common"),
        &[
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", APP),
            ("device_code", issued["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("expired_token"))
    );
    assert_eq!(error_code(&body), 70020);
}

#[tokio::test]
async fn a_signed_in_code_is_redeemed_once_with_the_right_verifier() {
    let mock = MockEntra::start().await;
    mock.set_user(
        MockUser::new("ada@fabrikam.example")
            .object_id("0a0a0a0a-0000-4000-8000-000000000001")
            .tenant_id("fabfabfa-0000-4000-8000-000000000002")
            .name("Ada Lovelace"),
    );
    let (redirect_uri, listened) = listener("<html>Authentication complete.</html>").await;
    let url = authorize_url(
        &mock,
        &redirect_uri,
        &[
            ("nonce", "n-0S6"),
            ("prompt", "select_account"),
            ("login_hint", "<ada>"),
        ],
    );
    let (status, content_type, page) = get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert!(
        page.contains("Sign in \u{2014} mock Microsoft Entra ID"),
        "{page}"
    );
    assert!(
        page.contains("&lt;ada&gt;"),
        "the login hint is shown escaped: {page}"
    );
    assert!(page.contains("window.location.replace("), "{page}");
    assert!(
        page.contains("&amp;state="),
        "the link is HTML-escaped: {page}"
    );
    let recorded = &mock.requests()[0];
    assert_eq!(recorded.method(), "GET");
    assert_eq!(recorded.query("prompt"), Some("select_account"));
    assert_eq!(recorded.query("login_hint"), Some("<ada>"));
    assert_eq!(recorded.query("code_challenge_method"), Some("S256"));

    // Follow the link by hand to the app's listener.
    let target = continue_link(&page).unwrap();
    let (status, _, answered) = get(&target).await;
    assert_eq!(
        (status, answered.as_str()),
        (200, "<html>Authentication complete.</html>")
    );
    let redirect = listened.await.unwrap();
    assert_eq!(param(&redirect, "state"), Some("state & more"));
    let code = param(&redirect, "code").unwrap().to_owned();
    assert_eq!(code, "mock-entra-code-1");

    let token = mock.token_endpoint("organizations");
    let redeem = |verifier: &'static str| {
        let (code, redirect_uri, token) = (code.clone(), redirect_uri.clone(), token.clone());
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code"),
                ("client_id", APP),
                ("code", code.as_str()),
                ("redirect_uri", redirect_uri.as_str()),
                ("scope", SCOPE),
            ];
            if !verifier.is_empty() {
                form.push(("code_verifier", verifier));
            }
            post(&token, &form).await
        }
    };
    let (status, body) = redeem("").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(error_code(&body), 50148);
    let (status, body) = redeem("not-the-verifier").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(error_code(&body), 501481);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS501481: The Code_Verifier does not match the code_challenge")
    );
    let (status, body) = redeem(VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["access_token"], "mock-entra-token-1");
    assert_eq!(body["refresh_token"], "mock-entra-refresh-1");
    let claims = jwt_payload(body["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], "n-0S6");
    assert_eq!(claims["aud"], APP);
    assert_eq!(claims["preferred_username"], "ada@fabrikam.example");
    assert_eq!(claims["name"], "Ada Lovelace");
    assert_eq!(claims["oid"], "0a0a0a0a-0000-4000-8000-000000000001");
    assert_eq!(claims["tid"], "fabfabfa-0000-4000-8000-000000000002");
    assert_eq!(
        claims["iss"],
        format!(
            "{}/fabfabfa-0000-4000-8000-000000000002/v2.0",
            mock.authority_host()
        )
    );
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!((claims["nbf"].as_i64().unwrap(), exp - iat), (iat, 3600));
    assert!(claims["sub"].is_string());
    let client_info: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(body["client_info"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        client_info,
        serde_json::json!({"uid": "0a0a0a0a-0000-4000-8000-000000000001", "utid": "fabfabfa-0000-4000-8000-000000000002"})
    );

    let (status, body) = redeem(VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(error_code(&body), 54005);
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_redirect_uri_and_survives_a_scripted_error() {
    let mock = MockEntra::start().await;
    let code = mock.issue_authorization_code("web-app", "https://app.example/callback");
    assert_eq!(code, "mock-entra-code-1");
    let token = mock.token_endpoint("contoso");
    let form = |client: &'static str, redirect: &'static str| {
        vec![
            ("grant_type", "authorization_code"),
            ("client_id", client),
            ("code", "mock-entra-code-1"),
            ("redirect_uri", redirect),
            ("scope", "https://graph.microsoft.com/.default"),
        ]
    };
    let (status, body) = post(&token, &form("other-app", "https://app.example/callback")).await;
    assert_eq!((status, error_code(&body)), (400, 700005));
    let (status, body) = post(&token, &form("web-app", "https://app.example/other")).await;
    assert_eq!((status, error_code(&body)), (400, 500117));
    // A code was never issued for this one.
    let mut unknown = form("web-app", "https://app.example/callback");
    unknown[2].1 = "mock-entra-code-2";
    let (status, body) = post(&token, &unknown).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // A scripted refusal (MFA required) does not spend the code; no verifier is needed
    // without PKCE, and a client secret, when sent, is checked.
    mock.push(MockEntraReply::invalid_grant(
        50076,
        "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.",
    ));
    let (status, body) = post(&token, &form("web-app", "https://app.example/callback")).await;
    assert_eq!((status, error_code(&body)), (400, 50076));
    mock.expect_client_secret("the secret");
    let mut with_secret = form("web-app", "https://app.example/callback");
    with_secret.push(("client_secret", "not the secret"));
    let (status, body) = post(&token, &with_secret).await;
    assert_eq!((status, error_code(&body)), (401, 7000215));
    let (status, body) = post(&token, &form("web-app", "https://app.example/callback")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "https://graph.microsoft.com/.default");
}

#[tokio::test]
async fn refresh_tokens_work_until_revoked() {
    let mock = MockEntra::start().await;
    let token = mock.token_endpoint("organizations");
    let code = mock.issue_authorization_code(APP, "http://localhost:8400/");
    let (status, first) = post(
        &token,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", APP),
            ("code", code.as_str()),
            ("redirect_uri", "http://localhost:8400/"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let refresh = |refresh_token: String, client: &'static str| {
        let token = token.clone();
        async move {
            post(
                &token,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", client),
                    ("refresh_token", refresh_token.as_str()),
                    ("scope", "https://storage.azure.com/.default offline_access"),
                ],
            )
            .await
        }
    };
    let first_refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = refresh(first_refresh.clone(), APP).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["refresh_token"], "mock-entra-refresh-2");
    assert_eq!(second["scope"], "https://storage.azure.com/.default");
    assert_eq!(
        jwt_payload(second["id_token"].as_str().unwrap())["preferred_username"],
        "mock.user@contoso.example"
    );
    // The old refresh token stays valid; another client cannot use it; an unknown one fails.
    let (status, _) = refresh(first_refresh.clone(), APP).await;
    assert_eq!(status, 200);
    let (status, body) = refresh(first_refresh.clone(), "other-app").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = refresh("mock-entra-refresh-99".to_owned(), APP).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    mock.revoke_refresh_tokens();
    for revoked in [first_refresh, "mock-entra-refresh-3".to_owned()] {
        let (status, body) = refresh(revoked, APP).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        assert_eq!(error_code(&body), 700082);
    }
}

#[tokio::test]
async fn sign_in_variants_deny_forge_the_state_or_never_redirect() {
    let mock = MockEntra::start().await;
    let redirect_uri = "http://127.0.0.1:8400/callback?app=1";

    mock.set_sign_in(MockSignIn::denied());
    let (status, _, page) = get(&authorize_url(&mock, redirect_uri, &[])).await;
    assert_eq!(status, 200);
    let target = url::Url::parse(&continue_link(&page).unwrap()).unwrap();
    let pairs: Vec<(String, String)> = target.query_pairs().into_owned().collect();
    assert_eq!(target.path(), "/callback");
    assert_eq!(param(&pairs, "app"), Some("1"));
    assert_eq!(param(&pairs, "error"), Some("access_denied"));
    assert!(
        param(&pairs, "error_description")
            .unwrap()
            .starts_with("AADSTS65004")
    );
    assert_eq!(param(&pairs, "state"), Some("state & more"));
    assert_eq!(param(&pairs, "code"), None);

    mock.set_sign_in(MockSignIn::WrongState);
    let (_, _, page) = get(&authorize_url(&mock, redirect_uri, &[])).await;
    let target = url::Url::parse(&continue_link(&page).unwrap()).unwrap();
    let pairs: Vec<(String, String)> = target.query_pairs().into_owned().collect();
    assert_ne!(param(&pairs, "state"), Some("state & more"));
    assert_eq!(param(&pairs, "code"), Some("mock-entra-code-1"));

    mock.set_sign_in(MockSignIn::Never);
    let (status, _, page) = get(&authorize_url(&mock, redirect_uri, &[])).await;
    assert_eq!(status, 200);
    assert_eq!(continue_link(&page), None);
    assert!(!page.contains("location"), "{page}");
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn authorize_refuses_bad_requests_with_a_page_that_does_not_redirect() {
    let mock = MockEntra::start().await;
    let good = "http://localhost:8400/";
    let cases: Vec<(&str, String)> = vec![
        (
            "no client_id",
            authorize_url(&mock, good, &[]).replace("client_id=", "x="),
        ),
        (
            "no code_challenge",
            authorize_url(&mock, good, &[]).replace("code_challenge=", "x="),
        ),
        (
            "plain PKCE",
            authorize_url(&mock, good, &[]).replace("method=S256", "method=plain"),
        ),
        (
            "no PKCE method",
            authorize_url(&mock, good, &[]).replace("code_challenge_method=S256", ""),
        ),
        (
            "implicit flow",
            authorize_url(&mock, good, &[]).replace("response_type=code", "response_type=token"),
        ),
        (
            "form_post",
            authorize_url(&mock, good, &[("response_mode", "form_post")]),
        ),
        (
            "https redirect",
            authorize_url(&mock, "https://localhost:8400/", &[]),
        ),
        (
            "remote redirect",
            authorize_url(&mock, "http://app.example/", &[]),
        ),
        (
            "lookalike host",
            authorize_url(&mock, "http://localhost.example/", &[]),
        ),
        ("no redirect_uri", authorize_url(&mock, "", &[])),
    ];
    for (why, url) in cases {
        let (status, content_type, page) = get(&url).await;
        assert_eq!(status, 400, "{why}: {page}");
        assert_eq!(content_type, "text/html; charset=utf-8", "{why}");
        assert!(!page.contains("id=\"continue\""), "{why}: {page}");
        assert!(!page.contains("location"), "{why}: {page}");
    }
    // Nothing was issued: the first code of an approved sign-in is number 1.
    let (status, _, page) = get(&authorize_url(&mock, good, &[])).await;
    assert_eq!(status, 200);
    assert!(
        continue_link(&page)
            .unwrap()
            .contains("code=mock-entra-code-1&"),
        "{page}"
    );
}

#[tokio::test]
async fn mock_browser_signs_in_through_the_page_to_the_listener() {
    let mock = MockEntra::start().await;
    let browser = MockBrowser::new();
    let (redirect_uri, listened) = listener("<html>Done. You can close this window.</html>").await;
    let url = authorize_url(&mock, &redirect_uri, &[]);
    let output = browser
        .run(&Command::new("xdg-open").arg(&url))
        .await
        .unwrap();
    assert_eq!(output.code(), Some(0));
    assert_eq!(browser.opened(), 1);
    assert_eq!(browser.urls(), vec![url]);
    assert_eq!(
        browser.last_page().as_deref(),
        Some("<html>Done. You can close this window.</html>")
    );
    let redirect = listened.await.unwrap();
    assert_eq!(param(&redirect, "code"), Some("mock-entra-code-1"));
    assert!(!format!("{browser:?}").contains("mock-entra"));
}

#[tokio::test]
async fn mock_browser_refuses_remote_urls_and_waits_on_a_page_that_never_redirects() {
    let mock = MockEntra::start().await;
    let browser = MockBrowser::new();
    let refused = browser
        .run(
            &Command::new("xdg-open")
                .arg("https://login.microsoftonline.com/common/oauth2/v2.0/authorize"),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ProcessErrorKind::Io);
    assert_eq!(mock.request_count(), 0);

    mock.set_sign_in(MockSignIn::Never);
    let url = authorize_url(&mock, "http://localhost:8400/", &[]);
    let run = tokio::spawn({
        let browser = browser.clone();
        async move { browser.run(&Command::new("xdg-open").arg(url)).await }
    });
    mock.wait_for_requests(1).await;
    // The page was served; the run goes on waiting for a sign-in that never ends.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!run.is_finished());
    run.abort();
    assert_eq!(browser.opened(), 2);
    assert_eq!(browser.last_page(), None);
}
