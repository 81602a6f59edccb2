//! Unit tests of the user grants: device codes, codes bound to their client and redirect URI,
//! refresh tokens.

use std::time::Duration;

use super::user::DEVICE_CODE_GRANT;
use super::user_test_support::*;
use super::*;
use crate::system::ManualClock;

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
