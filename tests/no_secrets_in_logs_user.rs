//! Runs the user sign-in scenarios (device code with pending and slow-down polls, silent
//! refreshes, refused refresh tokens, `authenticate()` and authentication records, the browser
//! sign-in with `MockBrowser`, the authorization code credential) with a TRACE-level capturing
//! subscriber, and fails if an access token, refresh token, authorization code, device code, id
//! token, PKCE verifier or client secret appears in a log line, a `Debug` rendering, an error
//! message, a serialized record or a page the browser showed.

mod support;
use support::entra::{self, Setup, TENANT};
use support::log_capture::{LeakTest, Printed};

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use azure_credentials::system::{Env, RetryPolicy};
use azure_credentials::testing::{EntraRequest, MockBrowser, MockEntraReply, MockSignIn};
use azure_credentials::{
    AuthenticationRecord, AuthorizationCodeCredential, BrowserCommand, DeviceCodeCredential,
    DeviceCodeCredentialBuilder, DeviceCodeInfo, InteractiveBrowserCredential, TokenCredential,
};

const ARM: &[&str] = &["https://management.azure.com/.default"];
const VAULT: &[&str] = &["https://vault.azure.net/.default"];
const GRAPH: &[&str] = &["https://graph.microsoft.com/User.Read"];
const WEB_APP: &str = "00000000-0000-0000-0000-0000000000e1";
const REDIRECT: &str = "https://app.contoso.example/signin-oidc";
const CLIENT_SECRET: &str = "user-leak-web-app-client-secret";
const APP_VERIFIER: &str = "user-leak-app-pkce-verifier-value";

/// What the mock issues that must never be shown: access tokens, refresh tokens, codes, device
/// codes, and the pieces of its id tokens (the RS256 header in either key order, the start of
/// the payload, the signature).
const ISSUED: &[&str] = &[
    "mock-entra-token-",
    "mock-entra-refresh-",
    "mock-entra-code-",
    "mock-entra-device-code-",
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6Im1vY2sifQ",
    "eyJhbGciOiJSUzI1NiIsImtpZCI6Im1vY2siLCJ0eXAiOiJKV1QifQ",
    "eyJhdWQiOi",
    "mock-signature",
    // URL-encoded form bodies hold these.
    "client_secret=",
    "refresh_token=",
    "code_verifier=",
    "device_code=mock",
];

#[test]
fn no_user_token_code_or_secret_reaches_logs_debug_or_errors() {
    let mut t = LeakTest::start_paused();
    let mut sent = t.runtime.block_on(device_code_scenarios(&mut t.seen));
    sent.extend(
        t.runtime
            .block_on(authorization_code_scenarios(&mut t.seen)),
    );
    // MockBrowser talks to the credential's redirect listener over real sockets while the
    // credential waits with a timeout: on a paused clock the timeout would fire first. A
    // real-clock runtime on this same thread still logs to the capture.
    let real_clock = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    sent.extend(real_clock.block_on(browser_scenarios(&mut t.seen)));

    let verifiers: Vec<String> = sent
        .iter()
        .filter_map(|r| r.form("code_verifier").map(str::to_owned))
        .collect();
    assert!(
        verifiers.iter().filter(|v| *v != APP_VERIFIER).count() >= 2,
        "the browser sign-ins sent their own PKCE verifiers"
    );
    let mut secrets: Vec<&str> = ISSUED.to_vec();
    secrets.extend([CLIENT_SECRET, APP_VERIFIER]);
    secrets.extend(verifiers.iter().map(String::as_str));
    t.assert_no_secrets(
        &secrets,
        &[
            "requesting a device code",
            "asked to slow down",
            "the user signed in with the device code",
            "requesting a token from Microsoft Entra ID",
            "grant=\"device_code\"",
            "grant=\"refresh_token\"",
            "grant=\"authorization_code\"",
            "the user's refresh token was refused",
            "opening the browser to sign in",
            "listening for the sign-in's redirect",
        ],
    );
}

/// The prompts a device code credential showed.
#[derive(Clone, Default)]
struct Prompts(Arc<Mutex<Vec<DeviceCodeInfo>>>);

impl Prompts {
    fn record(&self, seen: &mut Printed) {
        for info in self.0.lock().iter() {
            seen.debug(info);
            seen.0.push(info.message().to_owned());
        }
    }
}

fn device_code(s: &Setup, prompts: &Prompts) -> DeviceCodeCredentialBuilder {
    let prompts = prompts.clone();
    DeviceCodeCredential::builder()
        .authority_host(s.entra.authority_host())
        .env(Env::empty())
        .cache(s.cache.clone())
        .retry_policy(RetryPolicy::none())
        .prompt(move |info| prompts.0.lock().push(info.clone()))
}

/// Records every request's `Debug` and returns them.
fn requests(s: &Setup, seen: &mut Printed) -> Vec<EntraRequest> {
    let requests = s.entra.requests();
    seen.debug(&requests);
    requests
}

/// Device code sign-ins on the paused clock: polls, refreshes, refusals, records.
async fn device_code_scenarios(seen: &mut Printed) -> Vec<EntraRequest> {
    let s = entra::setup().await;
    let prompts = Prompts::default();

    // A sign-in after a pending and a slow-down poll; another scope and a later refresh are
    // silent.
    s.entra.push_many([
        MockEntraReply::authorization_pending(),
        MockEntraReply::slow_down(),
    ]);
    let credential = seen.built(device_code(&s, &prompts), |b| b.build());
    seen.outcome(&credential.get_token(ARM, None).await);
    seen.outcome(&credential.get_token(VAULT, None).await);
    s.clock.advance(Duration::from_secs(2 * 3600));
    seen.outcome(&credential.get_token(ARM, None).await);
    seen.debug(&credential);
    seen.debug(&credential.authentication_record());

    // The refresh token is revoked: the user signs in again.
    s.entra.revoke_refresh_tokens();
    seen.outcome(&credential.get_token(GRAPH, None).await);

    // authenticate(), its record saved and reloaded, and a refusal (MFA) without automatic
    // authentication.
    let manual = seen.built(
        device_code(&s, &prompts).disable_automatic_authentication(true),
        |b| b.build(),
    );
    seen.outcome(&manual.get_token(ARM, None).await);
    let record = manual.authenticate(ARM).await.unwrap();
    seen.debug(&record);
    let saved = record.serialize();
    seen.0.push(saved.clone());
    let reloaded = AuthenticationRecord::deserialize(&saved).unwrap();
    seen.debug(&reloaded);
    let from_record = seen.built(
        device_code(&s, &prompts)
            .authentication_record(reloaded)
            .disable_automatic_authentication(true),
        |b| b.build(),
    );
    seen.outcome(&from_record.get_token(VAULT, None).await);
    s.entra.push(MockEntraReply::invalid_grant(
        50076,
        "Due to a configuration change made by your administrator, you must use multi-factor authentication.",
    ));
    seen.outcome(&manual.get_token(VAULT, None).await);
    s.entra.revoke_refresh_tokens();
    seen.outcome(&from_record.get_token(GRAPH, None).await);
    seen.debug(&manual);
    seen.debug(&from_record);

    // Polls that end in a refusal, and the user's timeout.
    for reply in [
        MockEntraReply::authorization_declined(),
        MockEntraReply::expired_token(),
        MockEntraReply::bad_verification_code(),
    ] {
        s.entra.push(reply);
        let credential = device_code(&s, &prompts).build().unwrap();
        seen.outcome(&credential.get_token(ARM, None).await);
    }
    s.entra
        .push_many((0..10).map(|_| MockEntraReply::authorization_pending()));
    let impatient = device_code(&s, &prompts)
        .timeout(Duration::from_secs(12))
        .build()
        .unwrap();
    seen.outcome(&impatient.get_token(ARM, None).await);

    prompts.record(seen);
    requests(&s, seen)
}

/// The web app's authorization code: redeemed, refreshed, refused; build errors.
async fn authorization_code_scenarios(seen: &mut Printed) -> Vec<EntraRequest> {
    let s = entra::setup().await;
    s.entra.expect_client_secret(CLIENT_SECRET);
    let builder = || {
        AuthorizationCodeCredential::builder()
            .tenant_id(TENANT)
            .client_id(WEB_APP)
            .redirect_uri(REDIRECT)
            .client_secret(CLIENT_SECRET)
            .authority_host(s.entra.authority_host())
            .env(Env::empty())
            .cache(s.cache.clone())
            .retry_policy(RetryPolicy::none())
    };

    // Redeemed, another scope by refresh token, then the refresh token is revoked.
    let code = s.entra.issue_authorization_code(WEB_APP, REDIRECT);
    let credential = seen.built(builder().authorization_code(code.as_str()), |b| b.build());
    seen.outcome(&credential.get_token(ARM, None).await);
    seen.outcome(&credential.get_token(VAULT, None).await);
    s.entra.revoke_refresh_tokens();
    seen.outcome(&credential.get_token(GRAPH, None).await);
    seen.debug(&credential);

    // A wrong redirect URI, a wrong secret, a code redeemed twice (by two credentials), with
    // a PKCE verifier the mock did not ask for.
    let code = s.entra.issue_authorization_code(WEB_APP, REDIRECT);
    let wrong_redirect = seen.built(
        builder()
            .authorization_code(code.as_str())
            .redirect_uri("https://app.contoso.example/other"),
        |b| b.build(),
    );
    seen.outcome(&wrong_redirect.get_token(ARM, None).await);
    let wrong_secret = seen.built(
        builder()
            .authorization_code(code.as_str())
            .client_secret(format!("{CLIENT_SECRET}-but-wrong")),
        |b| b.build(),
    );
    seen.outcome(&wrong_secret.get_token(ARM, None).await);
    for _ in 0..2 {
        let credential = seen.built(
            builder()
                .authorization_code(code.as_str())
                .code_verifier(APP_VERIFIER),
            |b| b.build(),
        );
        seen.outcome(&credential.get_token(ARM, None).await);
    }

    // Build errors.
    let code = s.entra.issue_authorization_code(WEB_APP, REDIRECT);
    for bad in [
        builder()
            .authorization_code(code.as_str())
            .client_secret(""),
        builder()
            .authorization_code(code.as_str())
            .redirect_uri("not a url"),
        builder()
            .authorization_code(code.as_str())
            .code_verifier(APP_VERIFIER)
            .authority_host("http://login.example"),
        builder(),
        AuthorizationCodeCredential::builder()
            .authorization_code(code.as_str())
            .client_secret(CLIENT_SECRET)
            .env(Env::empty()),
    ] {
        seen.debug(&bad);
        seen.error(&bad.build().unwrap_err());
    }
    requests(&s, seen)
}

/// Browser sign-ins with MockBrowser: success and a silent refresh, a denial, a wrong state.
async fn browser_scenarios(seen: &mut Printed) -> Vec<EntraRequest> {
    let s = entra::setup().await;
    let browser = MockBrowser::new();
    let builder = || {
        InteractiveBrowserCredential::builder()
            .authority_host(s.entra.authority_host())
            .env(Env::empty())
            .cache(s.cache.clone())
            .retry_policy(RetryPolicy::none())
            .browser_command(BrowserCommand::new("mock-browser"))
            .executor(Arc::new(browser.clone()))
            .timeout(Duration::from_secs(60))
    };

    let credential = seen.built(builder().login_hint("mock.user@contoso.example"), |b| {
        b.build()
    });
    seen.outcome(&credential.get_token(ARM, None).await);
    seen.outcome(&credential.get_token(VAULT, None).await);
    seen.debug(&credential);
    seen.0.extend(browser.last_page());

    let other = seen.built(builder(), |b| b.build());
    let record = other.authenticate(GRAPH).await.unwrap();
    seen.debug(&record);
    seen.0.push(record.serialize());

    for sign_in in [MockSignIn::denied(), MockSignIn::WrongState] {
        s.entra.set_sign_in(sign_in);
        let credential = seen.built(builder(), |b| b.build());
        seen.outcome(&credential.get_token(ARM, None).await);
        seen.0.extend(browser.last_page());
    }
    seen.0.extend(browser.urls());
    requests(&s, seen)
}
