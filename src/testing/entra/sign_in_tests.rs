//! Unit tests of the authorization endpoint's sign-in page (PKCE codes, id tokens, the
//! [`MockSignIn`] variants, its checks) and of [`MockBrowser`] against it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::user_test_support::*;
use super::*;
use crate::system::{Command, Executor, ProcessErrorKind};
use crate::testing::MockBrowser;
use crate::testing::mock_browser::continue_link;

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
