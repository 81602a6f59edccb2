//! InteractiveBrowserCredential against the loopback Entra mock's sign-in page: with
//! `MockBrowser` (an HTTP client that follows the page's link) on tokio's paused clock, and with
//! a real headless Chromium (`chromium`, installed by `.ci/run`; without it those tests say so
//! and pass, unless `AZURE_CREDENTIALS_REQUIRE_CHROMIUM` is set, as `.ci/run` sets it).

mod support;
use support::entra::{self, Setup};
use support::fixtures;

use std::sync::Arc;
use std::time::Duration;

use azure_credentials::system::{Env, RetryPolicy, TokioExecutor};
use azure_credentials::testing::{MockBrowser, MockEntra, MockSignIn, MockUser};
use azure_credentials::{
    BrowserCommand, DEVELOPER_CLIENT_ID, ErrorKind, InteractiveBrowserCredential,
    InteractiveBrowserCredentialBuilder, TokenCredential,
};

const ARM: &[&str] = &["https://management.azure.com/.default"];
const VAULT: &[&str] = &["https://vault.azure.net/.default"];

impl Setup {
    fn browser_credential(&self) -> InteractiveBrowserCredentialBuilder {
        InteractiveBrowserCredential::builder()
            .authority_host(self.entra.authority_host())
            .env(Env::empty())
            .cache(self.cache.clone())
            .retry_policy(RetryPolicy::none())
    }

    fn with_mock_browser(&self, browser: &MockBrowser) -> InteractiveBrowserCredentialBuilder {
        self.browser_credential()
            .browser_command(BrowserCommand::new("mock-browser"))
            .executor(Arc::new(browser.clone()))
    }
}

/// The authorize request the mock received last.
fn authorize_request(entra: &MockEntra) -> azure_credentials::testing::EntraRequest {
    entra
        .requests()
        .into_iter()
        .rfind(|r| r.path().ends_with("/authorize"))
        .expect("an authorize request")
}

#[tokio::test]
async fn a_user_signs_in_in_the_browser_with_pkce_and_later_calls_are_silent() {
    let s = entra::setup().await;
    s.entra.set_user(MockUser::new("ada@contoso.example"));
    let browser = MockBrowser::new();
    let credential = s
        .with_mock_browser(&browser)
        .login_hint("ada@contoso.example")
        .select_account(true)
        .build()
        .unwrap();

    let token = credential.get_token(ARM, None).await.unwrap();
    assert_eq!(token.username(), Some("ada@contoso.example"));
    assert_eq!(token.source(), "InteractiveBrowserCredential");
    assert!(browser.last_page().unwrap().contains("You are signed in"));

    let authorize = authorize_request(&s.entra);
    assert_eq!(authorize.query("client_id"), Some(DEVELOPER_CLIENT_ID));
    assert_eq!(authorize.query("code_challenge_method"), Some("S256"));
    assert_eq!(authorize.query("login_hint"), Some("ada@contoso.example"));
    assert_eq!(authorize.query("prompt"), Some("select_account"));
    let redirect = authorize.query("redirect_uri").unwrap();
    assert!(redirect.starts_with("http://localhost:"), "{redirect}");
    let redeem = s.entra.requests().last().cloned().unwrap();
    assert_eq!(redeem.form("grant_type"), Some("authorization_code"));
    assert_eq!(redeem.form("redirect_uri"), Some(redirect));
    assert_eq!(redeem.form("code_verifier").map(str::len), Some(43));

    // Another scope: the refresh token, no browser.
    credential.get_token(VAULT, None).await.unwrap();
    assert_eq!(browser.opened(), 1);
    assert_eq!(
        s.entra.requests().last().unwrap().form("grant_type"),
        Some("refresh_token")
    );
}

#[tokio::test]
async fn state_verifier_and_nonce_are_new_for_every_sign_in() {
    let s = entra::setup().await;
    let browser = MockBrowser::new();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let credential = s.with_mock_browser(&browser).build().unwrap();
        credential.authenticate(ARM).await.unwrap();
        let authorize = authorize_request(&s.entra);
        seen.push((
            authorize.query("state").unwrap().to_owned(),
            authorize.query("code_challenge").unwrap().to_owned(),
            authorize.query("nonce").unwrap().to_owned(),
        ));
    }
    assert_ne!(seen[0].0, seen[1].0);
    assert_ne!(seen[0].1, seen[1].1);
    assert_ne!(seen[0].2, seen[1].2);
}

#[tokio::test]
async fn a_denied_sign_in_and_a_wrong_state_are_refused() {
    let s = entra::setup().await;
    let browser = MockBrowser::new();
    s.entra.set_sign_in(MockSignIn::denied());
    let credential = s.with_mock_browser(&browser).build().unwrap();
    let error = credential.get_token(ARM, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    assert!(error.to_string().contains("access_denied"), "{error}");
    assert!(browser.last_page().unwrap().contains("The sign-in failed"));

    s.entra.set_sign_in(MockSignIn::WrongState);
    let credential = s.with_mock_browser(&browser).build().unwrap();
    let error = credential.get_token(ARM, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    assert!(error.to_string().contains("state"), "{error}");
    assert!(browser.last_page().unwrap().contains("does not belong"));
    // No code was redeemed.
    assert!(
        s.entra
            .requests()
            .iter()
            .all(|r| r.form("grant_type") != Some("authorization_code"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_user_who_never_finishes_times_out() {
    let s = entra::setup().await;
    s.entra.set_sign_in(MockSignIn::Never);
    let browser = MockBrowser::new();
    let credential = s
        .with_mock_browser(&browser)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let started = support::wait::paused_now();
    let error = credential.get_token(ARM, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.to_string().contains("within 120 s"), "{error}");
    assert_eq!(started.elapsed(), Duration::from_secs(120));
}

#[tokio::test]
async fn when_no_browser_can_be_opened_the_url_is_given_and_the_wait_times_out() {
    let s = entra::setup().await;
    let credential = s
        .browser_credential()
        .browser_command(BrowserCommand::new("/nonexistent/browser"))
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = credential.get_token(ARM, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(
        error.to_string().contains("no browser could be opened"),
        "{error}"
    );
    // And the system opener, absent from an empty PATH.
    let credential = s
        .browser_credential()
        .env(Env::from_pairs([("PATH", "")]))
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = credential.get_token(ARM, None).await.unwrap_err();
    assert!(
        error.to_string().contains("xdg-open was not found") || !cfg!(target_os = "linux"),
        "{error}"
    );
}

#[test]
fn redirect_uris_must_be_loopback_http() {
    for bad in [
        "https://localhost",
        "http://app.contoso.example/cb",
        "http://localhost/?x=1",
    ] {
        let error = InteractiveBrowserCredential::builder()
            .env(Env::empty())
            .redirect_uri(bad)
            .build()
            .unwrap_err();
        assert!(error.is_invalid_input(), "{bad}");
    }
}

// ---- a real browser -----------------------------------------------------------------------

/// Chromium's path, or `None` (with a message) when it is not installed and not required.
fn chromium() -> Option<std::path::PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Env::process().var("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        });
        if found.is_some() {
            return found;
        }
    }
    if Env::process().is_set("AZURE_CREDENTIALS_REQUIRE_CHROMIUM") {
        panic!("Chromium is required (AZURE_CREDENTIALS_REQUIRE_CHROMIUM) but not installed");
    }
    eprintln!("SKIPPED: the real-browser sign-in test needs Chromium (apt-get install chromium)");
    None
}

/// A headless Chromium with a profile of its own, run while the sign-in lasts.
fn headless(chromium: &std::path::Path, name: &str) -> BrowserCommand {
    let profile = fixtures::scratch_dir("chromium", name);
    BrowserCommand::new(chromium).args([
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        format!("--user-data-dir={}", profile.display()),
    ])
}

impl Setup {
    fn in_chromium(
        &self,
        chromium: &std::path::Path,
        name: &str,
    ) -> InteractiveBrowserCredentialBuilder {
        self.browser_credential()
            .browser_command(headless(chromium, name))
            .executor(Arc::new(TokioExecutor::new()))
            // An upper bound for a slow machine, not a measure.
            .timeout(Duration::from_secs(90))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_a_user_in_and_two_credentials_can_sign_in_at_once() {
    let Some(chromium) = chromium() else { return };
    let s = entra::setup().await;
    s.entra.set_user(MockUser::new("ada@contoso.example"));
    let credential = s.in_chromium(&chromium, "one").build().unwrap();
    let token = credential.get_token(ARM, None).await.unwrap();
    assert_eq!(token.username(), Some("ada@contoso.example"));

    // Two at once, each on its own port.
    let a = s.in_chromium(&chromium, "a").build().unwrap();
    let b = s.in_chromium(&chromium, "b").build().unwrap();
    let (ra, rb) = tokio::join!(a.authenticate(VAULT), b.authenticate(VAULT));
    assert_eq!(ra.unwrap().username(), "ada@contoso.example");
    assert_eq!(rb.unwrap().username(), "ada@contoso.example");
    let ports: std::collections::HashSet<String> = s
        .entra
        .requests()
        .iter()
        .filter_map(|r| r.query("redirect_uri").map(str::to_owned))
        .collect();
    assert_eq!(ports.len(), 3, "{ports:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_sees_a_denied_sign_in_and_a_wrong_state_refused() {
    let Some(chromium) = chromium() else { return };
    let s = entra::setup().await;
    for (sign_in, profile, says) in [
        (MockSignIn::denied(), "denied", "access_denied"),
        (MockSignIn::WrongState, "state", "state"),
    ] {
        s.entra.set_sign_in(sign_in);
        let credential = s.in_chromium(&chromium, profile).build().unwrap();
        let error = credential.get_token(ARM, None).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Authentication);
        assert!(error.to_string().contains(says), "{error}");
    }
}

/// A browser that first opens an idle connection to the redirect listener (as browsers
/// pre-connect), keeps it open, then signs in like [`MockBrowser`].
#[derive(Debug)]
struct PreConnecting {
    browser: MockBrowser,
    idle: parking_lot::Mutex<Vec<tokio::net::TcpStream>>,
}

#[async_trait::async_trait]
impl azure_credentials::system::Executor for PreConnecting {
    async fn run(
        &self,
        command: &azure_credentials::system::Command,
    ) -> Result<azure_credentials::system::Output, azure_credentials::system::ProcessError> {
        let url = command
            .get_args()
            .last()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let url = url::Url::parse(&url).unwrap();
        let redirect = url
            .query_pairs()
            .find(|(name, _)| name == "redirect_uri")
            .map(|(_, value)| url::Url::parse(&value).unwrap())
            .unwrap();
        let idle = tokio::net::TcpStream::connect(("127.0.0.1", redirect.port().unwrap()))
            .await
            .unwrap();
        self.idle.lock().push(idle);
        self.browser.run(command).await
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_preconnection_does_not_hold_up_the_redirect() {
    let s = entra::setup().await;
    let browser = PreConnecting {
        browser: MockBrowser::new(),
        idle: parking_lot::Mutex::new(Vec::new()),
    };
    let credential = s
        .browser_credential()
        .browser_command(BrowserCommand::new("pre-connecting-browser"))
        .executor(Arc::new(browser))
        .build()
        .unwrap();
    let started = support::wait::paused_now();
    credential.get_token(ARM, None).await.unwrap();
    // Read one after the other, the idle connection would have cost its 10 s read timeout.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_redirect_uri_without_a_port_listens_on_a_free_one_and_keeps_its_path() {
    let s = entra::setup().await;
    let browser = MockBrowser::new();
    let credential = s
        .with_mock_browser(&browser)
        .redirect_uri("http://localhost/auth/callback")
        .build()
        .unwrap();
    credential.get_token(ARM, None).await.unwrap();
    let redirect =
        url::Url::parse(authorize_request(&s.entra).query("redirect_uri").unwrap()).unwrap();
    assert_eq!(redirect.host_str(), Some("localhost"));
    assert_eq!(redirect.path(), "/auth/callback");
    assert!(redirect.port().is_some_and(|p| p != 80), "{redirect}");
}
