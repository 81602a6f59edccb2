//! [`MockCredential`].

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::setters::{debug_fields, setters};
use crate::system::Clock;
use crate::{
    AccessToken, CacheIdentity, CachedCredential, Error, TokenCache, TokenCredential, TokenFetcher,
    TokenFuture, TokenRequest, TokenRequestOptions,
};

/// A credential with scripted results behind the real [`TokenCache`], that counts how often the
/// cache asked it for a token. Use it to test code that takes a credential, and to observe the
/// cache: N callers, one fetch.
///
/// Each fetch takes the next scripted result; when the script is empty it issues a new token
/// `mock-token-<n>` (n counts fetches from 1) that lives for the default lifetime (1 hour).
///
/// ```
/// use azure_credentials::testing::MockCredential;
/// use azure_credentials::{Error, TokenCache, TokenCredential};
///
/// # async fn run() {
/// let credential = MockCredential::builder()
///     .cache(TokenCache::builder().build())
///     .build();
/// credential.push_error(Error::unavailable("MockCredential", "scripted failure"));
/// assert!(credential.get_token(&["scope"], None).await.is_err());
/// # }
/// ```
#[derive(Clone)]
pub struct MockCredential {
    credential: CachedCredential,
    fetcher: Arc<MockFetcher>,
}

impl MockCredential {
    /// Options for a mock credential.
    pub fn builder() -> MockCredentialBuilder {
        MockCredentialBuilder::default()
    }

    /// Queues a successful fetch of `token`, living `lifetime` from the time of the fetch.
    pub fn push_token(&self, token: &str, lifetime: Duration) {
        self.fetcher.script.lock().push_back(Step::Token {
            value: token.to_owned(),
            lifetime,
        });
    }

    /// Queues a successful fetch of exactly `token`.
    pub fn push_access_token(&self, token: AccessToken) {
        self.fetcher.script.lock().push_back(Step::Exact(token));
    }

    /// Queues a failed fetch.
    pub fn push_error(&self, error: Error) {
        self.fetcher.script.lock().push_back(Step::Error(error));
    }

    /// How many times the cache asked for a token (upstream requests).
    pub fn fetch_count(&self) -> usize {
        self.fetcher.fetches.load(Ordering::SeqCst)
    }

    /// Every request the cache made, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.fetcher.requests.lock().clone()
    }

    /// Holds every fetch (started now or later) at its start until the returned gate is
    /// released or dropped. Lets a test observe callers while an upstream request is in flight,
    /// without timing anything.
    pub fn hold_fetches(&self) -> FetchGate {
        let (tx, rx) = tokio::sync::watch::channel(false);
        *self.fetcher.gate.lock() = Some(rx);
        FetchGate { tx }
    }

    /// How many fetches are waiting at a gate from [`hold_fetches`](Self::hold_fetches).
    pub fn held_fetches(&self) -> usize {
        self.fetcher.held.load(Ordering::SeqCst)
    }

    /// The cached credential this mock is built on.
    pub fn cached(&self) -> &CachedCredential {
        &self.credential
    }
}

impl fmt::Debug for MockCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockCredential")
            .field("identity", self.credential.identity())
            .field("fetches", &self.fetch_count())
            .finish()
    }
}

impl TokenCredential for MockCredential {
    fn get_token<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: Option<&'a TokenRequestOptions>,
    ) -> TokenFuture<'a> {
        self.credential.get_token(scopes, options)
    }
}

/// Returned by [`MockCredential::hold_fetches`]: held fetches continue when it is released or
/// dropped.
#[derive(Debug)]
pub struct FetchGate {
    tx: tokio::sync::watch::Sender<bool>,
}

impl FetchGate {
    /// Lets held fetches (and later ones) continue.
    pub fn release(self) {}
}

impl Drop for FetchGate {
    fn drop(&mut self) {
        let _ = self.tx.send(true);
    }
}

/// Options for a [`MockCredential`].
#[derive(Debug, Clone)]
pub struct MockCredentialBuilder {
    name: Cow<'static, str>,
    identity: String,
    cache: Option<TokenCache>,
    latency: Duration,
    lifetime: Duration,
    fixed_tenant: bool,
}

impl Default for MockCredentialBuilder {
    fn default() -> Self {
        MockCredentialBuilder {
            name: Cow::Borrowed("MockCredential"),
            identity: "mock".to_owned(),
            cache: None,
            latency: Duration::ZERO,
            lifetime: Duration::from_secs(3600),
            fixed_tenant: false,
        }
    }
}

impl MockCredentialBuilder {
    /// The credential name in errors and on tokens. Default: `"MockCredential"`.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Which identity this mock stands for: mocks with the same name and identity on the same
    /// cache share tokens, like two instances of a real credential. Default: `"mock"`.
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    setters! {
        /// The cache to use. Default: the process-wide [`TokenCache::shared`].
        cache(cache: TokenCache) => Some(cache);

        /// How long each fetch takes (a `tokio::time::sleep`, so paused time skips it).
        latency(latency: Duration) => latency;

        /// The lifetime of tokens issued when the script is empty. Default: 1 hour.
        token_lifetime(lifetime: Duration) => lifetime;

        /// Ignore the requested tenant, like a managed identity (its tenant is fixed).
        fixed_tenant(fixed: bool) => fixed_tenant;
    }

    /// Builds the credential.
    pub fn build(self) -> MockCredential {
        let cache = self.cache.unwrap_or_else(TokenCache::shared);
        let fetcher = Arc::new(MockFetcher {
            name: self.name.clone(),
            clock: cache.clock().clone(),
            latency: self.latency,
            lifetime: self.lifetime,
            fixed_tenant: self.fixed_tenant,
            script: Mutex::new(VecDeque::new()),
            gate: Mutex::new(None),
            held: AtomicUsize::new(0),
            fetches: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let identity = CacheIdentity::new(self.name).with("mock", self.identity);
        let credential = cache.credential_arc(identity, fetcher.clone());
        MockCredential {
            credential,
            fetcher,
        }
    }
}

enum Step {
    Token { value: String, lifetime: Duration },
    Exact(AccessToken),
    Error(Error),
}

struct MockFetcher {
    name: Cow<'static, str>,
    clock: Clock,
    latency: Duration,
    lifetime: Duration,
    fixed_tenant: bool,
    script: Mutex<VecDeque<Step>>,
    gate: Mutex<Option<tokio::sync::watch::Receiver<bool>>>,
    held: AtomicUsize,
    fetches: AtomicUsize,
    requests: Mutex<Vec<TokenRequest>>,
}

debug_fields!(MockFetcher { name, latency, .. });

#[async_trait]
impl TokenFetcher for MockFetcher {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        self.requests.lock().push(request.clone());
        let gate = self.gate.lock().clone();
        if let Some(mut gate) = gate {
            struct Held<'a>(&'a AtomicUsize);
            impl Drop for Held<'_> {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            self.held.fetch_add(1, Ordering::SeqCst);
            let _held = Held(&self.held);
            // A dropped gate (sender gone) releases too.
            let _ = gate.wait_for(|open| *open).await;
        }
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let step = self
            .script
            .lock()
            .pop_front()
            .unwrap_or_else(|| Step::Token {
                value: format!("mock-token-{n}"),
                lifetime: self.lifetime,
            });
        match step {
            Step::Token { value, lifetime } => {
                let now = self.clock.now();
                let mut token =
                    AccessToken::new(value, now + lifetime).with_source(self.name.clone());
                if let Some(tenant) = request.tenant_id() {
                    token = token.with_tenant_id(tenant);
                }
                Ok(token)
            }
            Step::Exact(token) => Ok(token),
            Step::Error(error) => Err(error),
        }
    }

    fn resolve_tenant<'a>(&'a self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        Ok(if self.fixed_tenant {
            None
        } else {
            Some(requested)
        })
    }
}
