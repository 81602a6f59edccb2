//! DeviceCodeCredential against the loopback Entra mock: the device code request and the polls
//! (pending, slow_down, declined, expired, bad code, the user's timeout) on tokio's paused
//! clock, silent refreshes with the user's refresh token, `invalid_grant` turning into a new
//! sign-in or `AuthenticationRequired`, `authenticate()` and authentication records.

mod support;
use support::entra::{self, Setup};

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use azure_credentials::system::{Env, RetryPolicy};
use azure_credentials::testing::{MockEntraReply, MockUser};
use azure_credentials::{
    AuthenticationRecord, DEVELOPER_CLIENT_ID, DeviceCodeCredential, DeviceCodeCredentialBuilder,
    DeviceCodeInfo, ErrorKind, TokenCredential,
};

const ARM: &[&str] = &["https://management.azure.com/.default"];
const VAULT: &[&str] = &["https://vault.azure.net/.default"];
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The prompts a credential showed.
#[derive(Clone, Default)]
struct Prompts(Arc<Mutex<Vec<DeviceCodeInfo>>>);

impl Prompts {
    fn count(&self) -> usize {
        self.0.lock().len()
    }
}

impl Setup {
    fn device_code(&self, prompts: &Prompts) -> DeviceCodeCredentialBuilder {
        let prompts = prompts.clone();
        DeviceCodeCredential::builder()
            .authority_host(self.entra.authority_host())
            .env(Env::empty())
            .cache(self.cache.clone())
            .retry_policy(RetryPolicy::none())
            .prompt(move |info| prompts.0.lock().push(info.clone()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_user_signs_in_after_pending_and_slow_down_and_the_token_names_them() {
    let s = entra::setup().await;
    s.entra.set_user(MockUser::new("ada@contoso.example"));
    s.entra.push(MockEntraReply::authorization_pending());
    s.entra.push(MockEntraReply::slow_down());
    let prompts = Prompts::default();
    let credential = s.device_code(&prompts).build().unwrap();

    let started = support::wait::paused_now();
    let token = credential.get_token(ARM, None).await.unwrap();
    // Polls at 5 s (pending), 10 s (slow down: +5 s), then 20 s.
    assert_eq!(started.elapsed(), Duration::from_secs(20));
    assert_eq!(token.username(), Some("ada@contoso.example"));
    assert!(token.object_id().is_some());
    assert_eq!(token.source(), "DeviceCodeCredential");
    assert_eq!(token.client_id(), Some(DEVELOPER_CLIENT_ID));
    // Asked of `organizations`, issued in the user's tenant.
    assert_ne!(token.tenant_id(), Some("organizations"));

    let prompt = prompts.0.lock()[0].clone();
    assert_eq!(prompt.user_code(), "MOCK00001");
    assert!(prompt.message().contains(prompt.user_code()));
    assert!(prompt.verification_uri().starts_with("http://127.0.0.1:"));

    let requests = s.entra.requests();
    assert_eq!(requests[0].path(), "/organizations/oauth2/v2.0/devicecode");
    assert_eq!(requests[0].form("client_id"), Some(DEVELOPER_CLIENT_ID));
    assert_eq!(
        requests[0].form("scope"),
        Some("https://management.azure.com/.default offline_access openid profile")
    );
    assert_eq!(requests.len(), 4);
    for poll in &requests[1..] {
        assert_eq!(poll.form("grant_type"), Some(DEVICE_CODE_GRANT));
        assert!(poll.form("client_secret").is_none());
    }
}

#[tokio::test(start_paused = true)]
async fn other_scopes_and_later_refreshes_use_the_refresh_token_silently() {
    let s = entra::setup().await;
    let prompts = Prompts::default();
    let credential = s.device_code(&prompts).build().unwrap();
    credential.get_token(ARM, None).await.unwrap();
    let vault = credential.get_token(VAULT, None).await.unwrap();
    assert!(vault.username().is_some());
    assert_eq!(prompts.count(), 1, "one sign-in");
    let grants = s.grants();
    assert_eq!(grants.last().map(String::as_str), Some("refresh_token"));
    let refresh = s.last_refresh();
    assert_eq!(
        refresh.form("scope"),
        Some("https://vault.azure.net/.default offline_access openid profile")
    );

    // Past the refresh time the cache asks again: silently.
    s.clock.advance(Duration::from_secs(2 * 3600));
    credential.get_token(ARM, None).await.unwrap();
    assert_eq!(prompts.count(), 1);
    assert_eq!(s.grants().last().map(String::as_str), Some("refresh_token"));
}

#[tokio::test(start_paused = true)]
async fn a_refused_refresh_token_signs_the_user_in_again() {
    let s = entra::setup().await;
    let prompts = Prompts::default();
    let credential = s.device_code(&prompts).build().unwrap();
    credential.get_token(ARM, None).await.unwrap();
    s.entra.revoke_refresh_tokens();
    credential.get_token(VAULT, None).await.unwrap();
    assert_eq!(prompts.count(), 2, "the user was asked again");
}

#[tokio::test(start_paused = true)]
async fn without_automatic_authentication_a_refused_refresh_token_is_authentication_required() {
    let s = entra::setup().await;
    let prompts = Prompts::default();
    let credential = s
        .device_code(&prompts)
        .disable_automatic_authentication(true)
        .build()
        .unwrap();

    // Nobody signed in yet: no request at all.
    let error = credential.get_token(ARM, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthenticationRequired);
    assert!(error.to_string().contains("authenticate()"), "{error}");
    assert_eq!(s.entra.request_count(), 0);

    // The application signs the user in when it chooses; the token it got is used as is.
    let record = credential.authenticate(ARM).await.unwrap();
    assert_eq!(record.client_id(), DEVELOPER_CLIENT_ID);
    assert_eq!(record.username(), "mock.user@contoso.example");
    let before = s.entra.request_count();
    credential.get_token(ARM, None).await.unwrap();
    assert_eq!(
        s.entra.request_count(),
        before,
        "authenticate's token was served"
    );

    // MFA is now required: the refresh token is refused, and the app must prompt.
    s.entra
        .push(MockEntraReply::invalid_grant(50076, "Due to a configuration change made by your administrator, you must use multi-factor authentication."));
    let error = credential.get_token(VAULT, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthenticationRequired);
    assert!(error.aadsts_codes().contains(&50076), "{error}");
    assert_eq!(prompts.count(), 1);

    // After a new sign-in the call works at once (the failure is not remembered).
    credential.authenticate(VAULT).await.unwrap();
    credential.get_token(VAULT, None).await.unwrap();
    assert_eq!(prompts.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn each_refusal_while_polling_is_its_own_error() {
    for (reply, kind, says) in [
        (
            MockEntraReply::authorization_declined(),
            ErrorKind::Authentication,
            "declined",
        ),
        (
            MockEntraReply::expired_token(),
            ErrorKind::Timeout,
            "expired",
        ),
        (
            MockEntraReply::bad_verification_code(),
            ErrorKind::Other,
            "did not recognize the device code",
        ),
    ] {
        let s = entra::setup().await;
        s.entra.push(reply);
        let credential = s.device_code(&Prompts::default()).build().unwrap();
        let error = credential.get_token(ARM, None).await.unwrap_err();
        assert_eq!(error.kind(), kind, "{error}");
        assert!(error.to_string().contains(says), "{error}");
        assert!(
            !error.to_string().contains("mock-entra-device-code-"),
            "{error}"
        );
        assert_eq!(s.entra.request_count(), 2, "one poll, then it stopped");
    }
}

#[tokio::test(start_paused = true)]
async fn polling_stops_at_the_users_timeout_and_at_the_codes_expiry() {
    let s = entra::setup().await;
    for _ in 0..100 {
        s.entra.push(MockEntraReply::authorization_pending());
    }
    let credential = s
        .device_code(&Prompts::default())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let started = support::wait::paused_now();
    let error = credential.get_token(ARM, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(
        error.to_string().contains("within the timeout (30 s)"),
        "{error}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    // The device code request, then polls at 5, 10, ... 30 s.
    assert_eq!(s.entra.request_count(), 1 + 6);

    // A code that lives 12 s: polled at 5 and 10 s, then it has expired.
    let s = entra::setup().await;
    s.entra.set_device_code(5, 12);
    for _ in 0..100 {
        s.entra.push(MockEntraReply::authorization_pending());
    }
    let credential = s.device_code(&Prompts::default()).build().unwrap();
    let error = credential.get_token(ARM, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.to_string().contains("expired (12 s)"), "{error}");
    assert_eq!(s.entra.request_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_refused_device_code_request_says_what_to_change() {
    let s = entra::setup().await;
    s.entra.push_device_code_reply(MockEntraReply::error(
        400,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ));
    let credential = s
        .device_code(&Prompts::default())
        .client_id("00000000-0000-0000-0000-0000000000c1")
        .build()
        .unwrap();
    let error = credential.get_token(ARM, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    assert!(
        error.to_string().contains("Allow public client flows"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_record_signs_the_same_user_in_silently_in_another_credential() {
    let s = entra::setup().await;
    let first = s.device_code(&Prompts::default()).build().unwrap();
    let record = first.authenticate(ARM).await.unwrap();
    let saved = record.serialize();

    let prompts = Prompts::default();
    let second = s
        .device_code(&prompts)
        .authentication_record(AuthenticationRecord::deserialize(&saved).unwrap())
        .disable_automatic_authentication(true)
        .build()
        .unwrap();
    let token = second.get_token(VAULT, None).await.unwrap();
    assert_eq!(token.username(), Some(record.username()));
    assert_eq!(prompts.count(), 0);
    assert_eq!(s.grants().last().map(String::as_str), Some("refresh_token"));
    assert_eq!(second.authentication_record().as_ref(), Some(&record));
}

#[tokio::test(start_paused = true)]
async fn a_credential_for_one_user_refuses_a_sign_in_as_another() {
    let s = entra::setup().await;
    s.entra.set_user(
        MockUser::new("ada@contoso.example").object_id("00000000-0000-0000-0000-00000000a0a0"),
    );
    let ada = s.device_code(&Prompts::default()).build().unwrap();
    let record = ada.authenticate(ARM).await.unwrap();

    s.entra.set_user(
        MockUser::new("bob@contoso.example").object_id("00000000-0000-0000-0000-00000000b0b0"),
    );
    // Ada's refresh token is gone: whoever signs in now is Bob.
    s.entra.revoke_refresh_tokens();
    let for_ada = s
        .device_code(&Prompts::default())
        .authentication_record(record)
        .build()
        .unwrap();
    let error = for_ada.get_token(VAULT, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    let message = error.to_string();
    assert!(
        message.contains("bob@contoso.example") && message.contains("ada@contoso.example"),
        "{message}"
    );
}

#[test]
fn records_of_another_client_or_authority_are_refused() {
    let record = |client: &str, authority: &str| {
        AuthenticationRecord::deserialize(&format!(
            r#"{{"authority":"{authority}","homeAccountId":"o.t","tenantId":"t","username":"u","clientId":"{client}","version":"1.0"}}"#
        ))
        .unwrap()
    };
    let build = |record: AuthenticationRecord| {
        DeviceCodeCredential::builder()
            .env(Env::empty())
            .authentication_record(record)
            .build()
    };
    // The record's client and tenant are the defaults.
    assert!(build(record(DEVELOPER_CLIENT_ID, "login.microsoftonline.com")).is_ok());
    let error = DeviceCodeCredential::builder()
        .env(Env::empty())
        .client_id("00000000-0000-0000-0000-0000000000c1")
        .authentication_record(record(DEVELOPER_CLIENT_ID, "login.microsoftonline.com"))
        .build()
        .unwrap_err();
    assert!(
        error.is_invalid_input() && error.to_string().contains("for client"),
        "{error}"
    );
    let error = build(record(DEVELOPER_CLIENT_ID, "login.microsoftonline.us")).unwrap_err();
    assert!(
        error.is_invalid_input() && error.to_string().contains("authority"),
        "{error}"
    );
    let error = DeviceCodeCredential::builder()
        .env(Env::empty())
        .timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(error.is_invalid_input());
}

#[tokio::test(start_paused = true)]
async fn a_caller_who_gives_up_stops_the_polling() {
    let s = entra::setup().await;
    for _ in 0..100 {
        s.entra.push(MockEntraReply::authorization_pending());
    }
    let prompts = Prompts::default();
    let credential = s.device_code(&prompts).build().unwrap();
    // The caller waits 12 s (polls at 5 and 10 s), then drops its future.
    let gave_up =
        tokio::time::timeout(Duration::from_secs(12), credential.get_token(ARM, None)).await;
    assert!(gave_up.is_err());
    let polled = s.entra.request_count();
    assert_eq!(polled, 3);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        s.entra.request_count(),
        polled,
        "no poll after the caller left"
    );

    // The next caller starts a new sign-in (a new code, a new prompt).
    let _ = tokio::time::timeout(Duration::from_secs(1), credential.get_token(ARM, None)).await;
    assert_eq!(prompts.count(), 2);
}
