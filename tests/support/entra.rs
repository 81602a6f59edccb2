//! The Entra side of a test: the loopback Entra mock and a deterministic cache on one manual
//! clock, and the form a credential sent.

use std::time::Duration;

use azure_credentials::system::{Env, Fs, ManualClock, RetryPolicy};
use azure_credentials::testing::{EntraRequest, MockEntra, MockEntraReply};
use azure_credentials::{
    AccessToken, ClientSecretCredential, ClientSecretCredentialBuilder, TokenCache,
};

use super::{cache, fixtures};

/// The tenant the Entra tests sign in to.
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// A mock Entra and a cache that both read `clock` (at [`cache::START`]); the cache has no
/// random spread and no failure cool-down. `fs` is an empty in-memory file system for the
/// credential's files.
pub struct Setup {
    pub entra: MockEntra,
    pub clock: ManualClock,
    pub cache: TokenCache,
    pub fs: Fs,
}

impl Setup {
    /// The form field `name` of every request the mock received, in order.
    pub fn sent(&self, name: &str) -> Vec<String> {
        self.entra
            .requests()
            .iter()
            .map(|r| {
                r.form(name)
                    .unwrap_or_else(|| panic!("no {name}"))
                    .to_owned()
            })
            .collect()
    }
}

impl Setup {
    /// The `grant_type` of every token request, in order.
    pub fn grants(&self) -> Vec<String> {
        self.entra
            .requests()
            .iter()
            .filter_map(|r| r.form("grant_type").map(str::to_owned))
            .collect()
    }

    /// The last request, checked to be a refresh with a refresh token the mock issued.
    pub fn last_refresh(&self) -> EntraRequest {
        let refresh = self.entra.requests().last().cloned().expect("a request");
        assert_eq!(refresh.form("grant_type"), Some("refresh_token"));
        assert!(
            refresh
                .form("refresh_token")
                .is_some_and(|t| t.starts_with("mock-entra-refresh-"))
        );
        refresh
    }
}

/// [`Setup`] with a fresh mock.
pub async fn setup() -> Setup {
    let clock = cache::manual_clock();
    let entra = MockEntra::start().await;
    entra.set_clock(clock.clock());
    let cache = cache::deterministic_without_cooldown(clock.clock());
    Setup {
        entra,
        clock,
        cache,
        fs: Fs::memory(),
    }
}

/// [`setup`], with the mock checking every client assertion's signature against the test
/// certificate `fixtures/certs/client-cert.pem`.
pub async fn setup_verifying_assertions() -> Setup {
    let s = setup().await;
    s.entra
        .verify_assertions_with(&std::fs::read(fixtures::cert("client-cert.pem")).unwrap());
    s
}

/// Every form field of `request`, in the order sent.
pub fn form(request: &EntraRequest) -> Vec<(&str, &str)> {
    request
        .form_pairs()
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// Checks that `token` says it was issued through `source` to `client` in `tenant`.
pub fn assert_issued(token: &AccessToken, source: &str, tenant: &str, client: &str) {
    assert_eq!(token.source(), source);
    assert_eq!(token.tenant_id(), Some(tenant), "{source}");
    assert_eq!(token.client_id(), Some(client), "{source}");
}

/// A `ClientSecretCredential` for a made-up application in [`TENANT`] that signs in at
/// `authority`, with a cache of its own and nothing from the environment.
pub fn secret_credential(authority: &str) -> ClientSecretCredentialBuilder {
    ClientSecretCredential::builder()
        .tenant_id(TENANT)
        .client_id("00000000-0000-0000-0000-000000000001")
        .secret("made-up-client-secret")
        .authority_host(authority)
        .env(Env::empty())
        .cache(TokenCache::builder().build())
}

/// A mock Entra on a fresh manual clock that accepts `client_secret` and checks every client
/// assertion's signature against the test certificate, and a deterministic cache (failure
/// cool-down included) on the same clock: (mock, clock, cache).
pub async fn verifying_entra_and_cache(
    client_secret: &str,
) -> (MockEntra, ManualClock, TokenCache) {
    let clock = cache::manual_clock();
    let entra = MockEntra::start().await;
    entra.set_clock(clock.clock());
    entra.expect_client_secret(client_secret);
    entra.verify_assertions_with(&std::fs::read(fixtures::cert("client-cert.pem")).unwrap());
    let cache = cache::deterministic(clock.clock());
    (entra, clock, cache)
}

/// Retries of 429 and 5xx answers after 1 ms, without jitter.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(1))
        .with_jitter(0.0)
        .with_retry_statuses([429, 500, 502, 503, 504])
}

/// Entra's transient 503 (`AADSTS90033`), which is retried.
pub fn transient_503() -> MockEntraReply {
    MockEntraReply::error(
        503,
        "temporarily_unavailable",
        90033,
        "A transient error has occurred.",
    )
}
