//! AuthorizationCodeCredential against the loopback Entra mock: a code the mock issued for a web
//! app's redirect URI is redeemed once (with the app's client secret), other scopes use the
//! refresh token it brought, a refused refresh token cannot fall back on the spent code, a
//! wrong redirect URI is refused by Entra, and build errors and `Debug` never show the code or
//! the secret.

mod support;
use support::entra::{self, Setup, TENANT};

use azure_credentials::system::{Env, RetryPolicy};
use azure_credentials::testing::{MockEntraReply, MockUser};
use azure_credentials::{
    AuthorizationCodeCredential, AuthorizationCodeCredentialBuilder, ErrorKind, TokenCredential,
};

const ARM: &[&str] = &["https://management.azure.com/.default"];
const VAULT: &[&str] = &["https://vault.azure.net/.default"];
const GRAPH: &[&str] = &["https://graph.microsoft.com/User.Read"];
const WEB_APP: &str = "00000000-0000-0000-0000-0000000000e1";
const REDIRECT: &str = "https://app.contoso.example/signin-oidc";
const SECRET: &str = "web-app-client-secret-value";

impl Setup {
    /// A credential builder for the web app, redeeming `code`, with its client secret.
    fn code_credential(&self, code: &str) -> AuthorizationCodeCredentialBuilder {
        AuthorizationCodeCredential::builder()
            .tenant_id(TENANT)
            .client_id(WEB_APP)
            .authorization_code(code)
            .redirect_uri(REDIRECT)
            .client_secret(SECRET)
            .authority_host(self.entra.authority_host())
            .env(Env::empty())
            .cache(self.cache.clone())
            .retry_policy(RetryPolicy::none())
    }
}

#[tokio::test]
async fn the_code_is_redeemed_once_with_the_secret_and_the_token_names_the_user() {
    let s = entra::setup().await;
    s.entra.expect_client_secret(SECRET);
    s.entra.set_user(
        MockUser::new("ada@contoso.example").object_id("00000000-0000-0000-0000-00000000a0a0"),
    );
    let code = s.entra.issue_authorization_code(WEB_APP, REDIRECT);
    let credential = s.code_credential(&code).build().unwrap();
    assert_eq!(s.entra.request_count(), 0, "nothing is sent at build time");

    let token = credential.get_token(GRAPH, None).await.unwrap();
    assert_eq!(token.username(), Some("ada@contoso.example"));
    assert_eq!(
        token.object_id(),
        Some("00000000-0000-0000-0000-00000000a0a0")
    );
    assert_eq!(token.source(), "AuthorizationCodeCredential");
    assert_eq!(token.client_id(), Some(WEB_APP));

    let requests = s.entra.requests();
    assert_eq!(requests.len(), 1);
    let redeem = &requests[0];
    assert_eq!(redeem.path(), format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(redeem.form("grant_type"), Some("authorization_code"));
    assert_eq!(redeem.form("code"), Some(code.as_str()));
    assert_eq!(redeem.form("redirect_uri"), Some(REDIRECT));
    assert_eq!(redeem.form("client_id"), Some(WEB_APP));
    assert_eq!(redeem.form("client_secret"), Some(SECRET));
    assert!(redeem.form("code_verifier").is_none(), "no PKCE was given");
    assert_eq!(
        redeem.form("scope"),
        Some("https://graph.microsoft.com/User.Read offline_access openid profile")
    );

    // The same scope again: the cache.
    credential.get_token(GRAPH, None).await.unwrap();
    assert_eq!(s.entra.request_count(), 1);
}

#[tokio::test]
async fn other_scopes_use_the_refresh_token_with_the_secret_sent_again() {
    let s = entra::setup().await;
    s.entra.expect_client_secret(SECRET);
    let code = s.entra.issue_authorization_code(WEB_APP, REDIRECT);
    let credential = s.code_credential(&code).build().unwrap();
    let first = credential.get_token(ARM, None).await.unwrap();

    let vault = credential.get_token(VAULT, None).await.unwrap();
    assert_eq!(vault.username(), first.username());
    assert_eq!(s.grants(), ["authorization_code", "refresh_token"]);
    let refresh = s.last_refresh();
    assert_eq!(refresh.form("client_secret"), Some(SECRET));
    assert_eq!(
        refresh.form("scope"),
        Some("https://vault.azure.net/.default offline_access openid profile")
    );
    assert!(refresh.form("code").is_none());
}

#[tokio::test]
async fn a_public_client_sends_no_secret_and_its_pkce_verifier() {
    let s = entra::setup().await;
    let code = s.entra.issue_authorization_code(WEB_APP, REDIRECT);
    let credential = AuthorizationCodeCredential::builder()
        .tenant_id(TENANT)
        .client_id(WEB_APP)
        .authorization_code(code.as_str())
        .redirect_uri(REDIRECT)
        .code_verifier("a-pkce-verifier-of-the-app")
        .authority_host(s.entra.authority_host())
        .env(Env::empty())
        .cache(s.cache.clone())
        .build()
        .unwrap();
    credential.get_token(ARM, None).await.unwrap();
    let redeem = s.entra.requests().last().cloned().unwrap();
    assert!(redeem.form("client_secret").is_none());
    assert_eq!(
        redeem.form("code_verifier"),
        Some("a-pkce-verifier-of-the-app")
    );
}

#[tokio::test]
async fn after_the_refresh_token_is_revoked_a_new_scope_needs_a_new_sign_in_without_resending_the_code()
 {
    let s = entra::setup().await;
    s.entra.expect_client_secret(SECRET);
    let code = s.entra.issue_authorization_code(WEB_APP, REDIRECT);
    let credential = s.code_credential(&code).build().unwrap();
    credential.get_token(ARM, None).await.unwrap();
    s.entra.revoke_refresh_tokens();

    let error = credential.get_token(VAULT, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthenticationRequired, "{error}");
    let message = error.to_string();
    assert!(message.contains("already redeemed"), "{message}");
    assert!(message.contains("sign-in again"), "{message}");
    assert!(!message.contains(&code), "{message}");
    // The refused refresh, and no second redemption of the code.
    assert_eq!(s.grants(), ["authorization_code", "refresh_token"]);

    // The token it got before is still served.
    credential.get_token(ARM, None).await.unwrap();
    assert_eq!(s.entra.request_count(), 2);
}

#[tokio::test]
async fn a_redirect_uri_other_than_the_sign_ins_is_refused_by_entra_with_a_fix() {
    let s = entra::setup().await;
    s.entra.expect_client_secret(SECRET);
    let code = s.entra.issue_authorization_code(WEB_APP, REDIRECT);
    let credential = s
        .code_credential(&code)
        .redirect_uri("https://app.contoso.example/other-callback")
        .build()
        .unwrap();
    let error = credential.get_token(ARM, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication, "{error}");
    assert!(error.aadsts_codes().contains(&500117), "{error}");
    let fix = error.fix().unwrap_or_default();
    assert!(fix.contains("redirect URI"), "{fix}");
    let message = error.to_string();
    assert!(!message.contains(&code), "{message}");
    assert!(!message.contains(SECRET), "{message}");
    assert_eq!(s.grants(), ["authorization_code"]);
}

#[tokio::test]
async fn a_pkce_verifier_entra_refuses_gets_a_fix_about_the_verifier_not_the_redirect_uri() {
    let s = entra::setup().await;
    s.entra.push(MockEntraReply::invalid_grant(
        50148,
        "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
    ));
    let code = s.entra.issue_authorization_code(WEB_APP, REDIRECT);
    let credential = s
        .code_credential(&code)
        .code_verifier("a-pkce-verifier-of-another-sign-in")
        .build()
        .unwrap();
    let error = credential.get_token(ARM, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication, "{error}");
    let fix = error.fix().unwrap_or_default();
    assert!(fix.contains("code verifier"), "{fix}");
    assert!(!fix.contains("not registered"), "{fix}");
    assert!(!error.to_string().contains("a-pkce-verifier"), "{error}");
}

#[test]
fn build_errors_are_invalid_input_and_never_quote_the_code_or_secret() {
    const CODE: &str = "secret-authorization-code-value";
    let full = || {
        AuthorizationCodeCredential::builder()
            .tenant_id(TENANT)
            .client_id(WEB_APP)
            .authorization_code(CODE)
            .redirect_uri(REDIRECT)
            .client_secret(SECRET)
            .env(Env::empty())
    };
    assert!(full().build().is_ok());
    let without = |missing: &str| {
        let mut b = AuthorizationCodeCredential::builder().env(Env::empty());
        if missing != "tenant_id" {
            b = b.tenant_id(TENANT);
        }
        if missing != "client_id" {
            b = b.client_id(WEB_APP);
        }
        if missing != "authorization_code" {
            b = b.authorization_code(CODE);
        }
        if missing != "redirect_uri" {
            b = b.redirect_uri(REDIRECT);
        }
        b.client_secret(SECRET).build().unwrap_err()
    };
    let mut errors = Vec::new();
    for missing in [
        "tenant_id",
        "client_id",
        "authorization_code",
        "redirect_uri",
    ] {
        let error = without(missing);
        assert!(error.to_string().contains(missing), "{missing}: {error}");
        errors.push(error);
    }
    errors.push(full().client_secret("").build().unwrap_err());
    errors.push(full().client_secret("  ").build().unwrap_err());
    errors.push(full().authorization_code(" ").build().unwrap_err());
    errors.push(full().redirect_uri("not a url").build().unwrap_err());
    errors.push(full().redirect_uri("/signin-oidc").build().unwrap_err());
    errors.push(
        full()
            .authority_host("http://login.example")
            .build()
            .unwrap_err(),
    );
    for error in &errors {
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
        for shown in [
            error.to_string(),
            format!("{error:?}"),
            format!("{error:#?}"),
        ] {
            assert!(!shown.contains(CODE), "{shown}");
            assert!(!shown.contains(SECRET), "{shown}");
        }
    }
}

#[tokio::test]
async fn debug_of_the_builder_and_credential_never_shows_the_code_or_secret() {
    let s = entra::setup().await;
    let code = s.entra.issue_authorization_code(WEB_APP, REDIRECT);
    let builder = s
        .code_credential(&code)
        .code_verifier("a-pkce-verifier-of-the-app");
    let credential = builder.clone().build().unwrap();
    let mut shown = vec![format!("{builder:?}"), format!("{builder:#?}")];
    shown.push(format!("{credential:?}"));
    credential.get_token(ARM, None).await.unwrap();
    shown.push(format!("{credential:?}"));
    shown.push(format!("{credential:#?}"));
    for text in &shown {
        for secret in [
            code.as_str(),
            SECRET,
            "a-pkce-verifier-of-the-app",
            "mock-entra-refresh-",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    // It still says what it is.
    assert!(shown[0].contains(REDIRECT), "{}", shown[0]);
    assert!(
        shown[3].contains("AuthorizationCodeCredential"),
        "{}",
        shown[3]
    );
}

#[tokio::test]
async fn a_code_whose_redemption_got_no_answer_is_tried_again() {
    let s = entra::setup().await;
    let code = s.entra.issue_authorization_code(WEB_APP, REDIRECT);
    s.entra.expect_client_secret(SECRET);
    // The connection closes before any answer: Entra never saw the code redeemed.
    s.entra.push(MockEntraReply::close());
    let credential = s.code_credential(&code).build().unwrap();
    let error = credential.get_token(GRAPH, None).await.unwrap_err();
    assert_ne!(error.kind(), ErrorKind::AuthenticationRequired, "{error}");
    let token = credential.get_token(GRAPH, None).await.unwrap();
    assert!(token.username().is_some());
    assert_eq!(s.grants(), ["authorization_code", "authorization_code"]);
}
