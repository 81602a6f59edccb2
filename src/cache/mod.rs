//! The token cache: the only code that decides when a token is fresh and when to fetch one.
//! The rules are documented on [`TokenCache`].
//!
//! - `mod.rs`: [`TokenCache`] and its builder, [`TokenFetcher`], [`TokenRequest`];
//! - `cached_credential.rs`: [`CachedCredential`], a fetcher behind the cache: the lookup, the
//!   wait for a fetch, background refreshes;
//! - `policy.rs`: when a token is refreshed and until when it is served (pure arithmetic);
//! - `flight.rs`: single-flight fetches, their bookkeeping and their runtimes;
//! - `partition.rs`: the stored tokens of one identity and what a finished fetch leaves;
//! - `front.rs`: each thread's copies of recent tokens, for allocation-free hits;
//! - `key.rs`: [`CacheIdentity`] (partitions) and request keys.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};

use crate::setters::setters;
use crate::system::Clock;
use crate::{AccessToken, Error};
use partition::{Partition, next_id};

mod cached_credential;
mod flight;
mod front;
mod key;
mod partition;
#[cfg(feature = "persistence")]
pub(crate) mod persist;
#[cfg(not(feature = "persistence"))]
#[path = "no_persistence.rs"]
pub(crate) mod persist;
pub(crate) mod policy;

pub use cached_credential::CachedCredential;
pub use key::CacheIdentity;
#[cfg(feature = "persistence")]
pub use persist::TokenCachePersistence;
#[cfg(not(feature = "persistence"))]
use persist::TokenCachePersistence;

/// Entries per partition before expired ones are swept out.
const SWEEP_THRESHOLD: usize = 64;

/// The source of fresh tokens behind a [`CachedCredential`]: the cache calls it on a miss, when a
/// refresh is due, and for requests with claims.
///
/// Implement it to put a token source of your own behind the cache; every credential in this
/// crate is built this way.
#[async_trait]
pub trait TokenFetcher: Send + Sync + fmt::Debug + 'static {
    /// Fetches a new token for `request`. The cache guarantees that at most one fetch per request
    /// key runs at a time (requests with claims excepted).
    ///
    /// # Errors
    ///
    /// Whatever the source fails with; the cache hands the [`Error`] to every caller waiting for
    /// this fetch and remembers it for a short cool-down (longer with
    /// [`Error::retry_after`]), so its kind should say what to do: see
    /// [`TokenCredential::get_token`](crate::TokenCredential::get_token).
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error>;

    /// The tenant a request really goes to, which is part of the cache key: `requested` is the
    /// caller's [`TokenRequestOptions::tenant_id`](crate::TokenRequestOptions::tenant_id). The
    /// default keeps it as is; a source whose tenant is fixed returns `Ok(None)` (its own tenant),
    /// and one with an allow-list rejects tenants outside it. Called on every `get_token` that names
    /// a tenant, so it must be cheap; a request without a tenant always means the credential's own
    /// and is not passed here.
    ///
    /// # Errors
    ///
    /// A source with an allow-list returns [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput)
    /// for a tenant outside it (naming the tenant and the option that would allow it); the caller
    /// gets that error without a fetch.
    fn resolve_tenant<'a>(&'a self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        Ok(Some(requested))
    }

    /// Whether a fetch is stopped once every caller waiting for it has gone (their futures
    /// were dropped) with no valid token to fall back on. Default `false`: the fetch goes on
    /// and its token is cached for the next caller, which is what a token endpoint's answer is
    /// worth. Sources that ask a person return `true` (a user sign-in nobody waits for should
    /// stop prompting and polling). A background refresh, which no caller waits for, is never
    /// stopped.
    fn stop_when_abandoned(&self) -> bool {
        false
    }
}

/// What a [`TokenFetcher`] is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    scopes: Vec<String>,
    tenant_id: Option<String>,
    claims: Option<String>,
    enable_cae: bool,
}

impl TokenRequest {
    /// A request for `scopes` (as given: the cache passes them sorted and de-duplicated), in the
    /// credential's own tenant, without claims or CAE; the `with_*` methods add those.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::TokenRequest;
    ///
    /// let request = TokenRequest::new(["https://vault.azure.net/.default"])
    ///     .with_tenant_id("contoso.onmicrosoft.com");
    /// assert_eq!(request.scopes(), ["https://vault.azure.net/.default"]);
    /// ```
    pub fn new(scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        TokenRequest {
            scopes: scopes.into_iter().map(Into::into).collect(),
            tenant_id: None,
            claims: None,
            enable_cae: false,
        }
    }

    setters! {
        /// Sets the resolved tenant.
        with_tenant_id(tenant_id: impl Into<String>) => Some(tenant_id);

        /// Sets the claims challenge.
        with_claims(claims: impl Into<String>) => Some(claims);

        /// Sets the CAE flag.
        with_enable_cae(enable: bool) => enable_cae;
    }

    /// The scopes, sorted and de-duplicated.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The tenant, as resolved by [`TokenFetcher::resolve_tenant`].
    pub fn tenant_id(&self) -> Option<&str> {
        self.tenant_id.as_deref()
    }

    /// The claims challenge, if any.
    pub fn claims(&self) -> Option<&str> {
        self.claims.as_deref()
    }

    /// Whether the caller handles CAE challenges.
    pub fn enable_cae(&self) -> bool {
        self.enable_cae
    }
}

/// A token cache. [`TokenCache::shared`] is the process-wide one every credential uses by
/// default; [`TokenCache::builder`] makes an isolated one (tests, special cases).
///
/// Cloning is cheap: clones are handles to the same cache.
///
/// # Semantics
///
/// Tokens are kept per *identity partition* ([`CacheIdentity`]: the source kind and everything
/// that decides who a token is for and the right to it) and, inside it, per request key: the
/// sorted, de-duplicated scopes, the resolved tenant and the CAE flag. Two credential instances
/// with equal identities share one partition, so N instances for one identity cause one request
/// — also when they are created one after the other (a new credential per request): a partition
/// outlives its credentials while it holds a valid token.
///
/// When a token is stored the cache computes two deadlines:
///
/// - `refresh_at`: drawn around the refresh *target* — the earliest of the provider's
///   `refresh_on`, half the lifetime for tokens that live two hours or more, and
///   `expires_on - 5 min` (the margin is at most half the lifetime, so a 10-minute token is
///   refreshed after 5 minutes, not on every call), never sooner than a minute after the fetch.
///   The draw is uniform over a window a quarter of the time until the target wide (24-hour
///   tokens: 12 h ± 1.5 h; one-hour tokens: the 14 minutes before the target), so that processes
///   started together spread their refreshes and drift further apart with each one;
/// - the hard limit: `expires_on` minus a safety margin of 30 s (at most a tenth of the lifetime).
///
/// A caller before `refresh_at` gets the cached token. Between `refresh_at` and the hard limit it
/// still gets the cached token at once, and one background refresh starts (never more than one
/// per key); if that refresh fails the old token keeps being served, a warning is logged and the
/// next attempt waits a backoff (30 s, or the error's `retry_after`, plus up to a quarter more).
/// Past the hard limit callers join one shared fetch; while the old token has not expired they
/// wait for it at most half a second and otherwise get the old token (also when the fetch
/// fails). Once nothing valid is left, callers wait for the fetch and all get its result, error
/// included. A failed fetch is then remembered for a short cool-down (or the error's
/// `retry_after`, never cut short, plus up to a quarter more so throttled processes do not all
/// return at once) so a crowd of callers on a failing endpoint does not hammer it. Requests with
/// `claims` skip the lookup, fetch, and store what they get.
///
/// # Runtimes
///
/// A fetch runs as a task on the runtime of the caller that started it (or, outside any tokio
/// runtime, in that caller), and every caller waiting for the same key joins it. A caller that is
/// dropped does not cancel it (unless its source says [`TokenFetcher::stop_when_abandoned`] and
/// no other caller waits); a runtime that shuts down does, and the next caller starts over. A
/// current-thread runtime that its owner stops driving without shutting it down would hold its
/// fetch forever: callers on other runtimes notice within a second (a probe task spawned there
/// does not run) and fetch themselves. Waiting across runtimes and past the hard limit uses
/// tokio's timer, so runtimes need it enabled (`enable_time`, part of `enable_all`).
///
/// # Speed
///
/// A hit takes no lock held across an `.await` and allocates nothing. Each thread keeps a small
/// front cache of its own copies of recent tokens (made on the thread's first hit of each new
/// token), validated against the shared entry's generation, so concurrent hits on different
/// cores write to no shared memory at all. What a hit costs is reading the clock and the
/// token's reference count.
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<CacheInner>,
}

struct CacheInner {
    settings: Arc<Settings>,
    partitions: Mutex<Partitions>,
    /// State that credentials keep beside their tokens, one value per type: the signed-in
    /// users' refresh tokens ([`crate::entra::user`]). Kept here so that an isolated cache
    /// isolates it too.
    #[cfg(feature = "user-sign-in")]
    extensions: Mutex<Vec<Arc<dyn std::any::Any + Send + Sync>>>,
    /// The persistence of the credentials that use this cache and name none of their own.
    persistence: Option<TokenCachePersistence>,
}

/// The cache's partitions, and when to sweep the unused ones out.
#[derive(Default)]
struct Partitions {
    map: HashMap<CacheIdentity, Arc<Partition>>,
    /// Sweep when the map reaches this size; after a sweep, twice what it kept (at least
    /// [`SWEEP_THRESHOLD`]), so that many partitions in use (a credential per user, on behalf
    /// of each) cost one scan per doubling, not one per new partition.
    sweep_at: usize,
    /// How many sweeps ran (tests).
    sweeps: u64,
}

/// What every partition of a cache needs to judge and schedule its tokens.
struct Settings {
    clock: Clock,
    max_jitter: Duration,
    refresh_backoff: Duration,
    failure_cooldown: Duration,
    jitter_rng: Mutex<fastrand::Rng>,
}

impl Settings {
    /// A random number for spreading deadlines; always `0` (no spread) when jitter is off.
    fn draw(&self) -> u64 {
        if self.max_jitter.is_zero() {
            return 0;
        }
        self.jitter_rng.lock().u64(..)
    }
}

impl TokenCache {
    /// The process-wide cache, on the system clock. Credential instances for the same identity
    /// share its entries, wherever they were created; every credential uses it unless its builder
    /// names another cache.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{ManagedIdentityCredential, TokenCache};
    ///
    /// // The same as leaving the cache out.
    /// let credential = ManagedIdentityCredential::builder()
    ///     .cache(TokenCache::shared())
    ///     .build()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn shared() -> TokenCache {
        static SHARED: OnceLock<TokenCache> = OnceLock::new();
        SHARED.get_or_init(|| TokenCache::builder().build()).clone()
    }

    /// Builds an isolated cache: its own entries, clock and refresh settings (for tests, or to keep
    /// one credential's tokens apart).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use azure_credentials::TokenCache;
    /// use azure_credentials::system::ManualClock;
    /// use time::macros::datetime;
    ///
    /// let clock = ManualClock::new(datetime!(2030-01-01 0:00 UTC));
    /// let cache = TokenCache::builder()
    ///     .clock(clock.clock())
    ///     .max_jitter(Duration::ZERO) // refresh exactly at the target: reproducible tests
    ///     .build();
    /// ```
    pub fn builder() -> TokenCacheBuilder {
        TokenCacheBuilder::default()
    }

    /// This cache's value of type `T` (made with `T::default()` on first use): state that
    /// credentials keep beside their tokens, such as the signed-in users' refresh tokens.
    #[cfg(feature = "user-sign-in")]
    pub(crate) fn extension<T: std::any::Any + Send + Sync + Default>(&self) -> Arc<T> {
        let mut extensions = self.inner.extensions.lock();
        for extension in extensions.iter() {
            if let Ok(found) = extension.clone().downcast::<T>() {
                return found;
            }
        }
        let made = Arc::new(T::default());
        extensions.push(made.clone());
        made
    }

    /// The persistence the credentials of this cache use when their builders name none
    /// ([`TokenCacheBuilder::persistence`]).
    #[cfg(feature = "persistence")]
    pub fn persistence(&self) -> Option<&TokenCachePersistence> {
        self.inner.persistence.as_ref()
    }

    /// The persistence the credentials of this cache use when their builders name none.
    #[cfg(not(feature = "persistence"))]
    pub(crate) fn persistence(&self) -> Option<&TokenCachePersistence> {
        self.inner.persistence.as_ref()
    }

    /// The cache's clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.settings.clock
    }

    /// Puts `fetcher` behind this cache as the credential for `identity`: the returned
    /// [`CachedCredential`] is a [`TokenCredential`](crate::TokenCredential) that answers from the
    /// cache and calls `fetcher` on a miss, when a refresh is due and for claims.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{AccessToken, CacheIdentity, Error, TokenCache, TokenFetcher, TokenRequest};
    ///
    /// #[derive(Debug)]
    /// struct FromMyVault;
    ///
    /// #[async_trait::async_trait]
    /// impl TokenFetcher for FromMyVault {
    ///     async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
    ///         // Ask your identity provider for `request.scopes()`...
    /// #       let expires_on = time::macros::datetime!(2030-01-01 1:00 UTC);
    ///         Ok(AccessToken::new("eyJ0eXAi...", expires_on).with_source("FromMyVault"))
    ///     }
    /// }
    ///
    /// let credential = TokenCache::shared().credential(CacheIdentity::new("FromMyVault"), FromMyVault);
    /// ```
    pub fn credential(
        &self,
        identity: CacheIdentity,
        fetcher: impl TokenFetcher,
    ) -> CachedCredential {
        self.credential_arc(identity, Arc::new(fetcher))
    }

    /// Like [`TokenCache::credential`], for a fetcher that is already shared.
    pub fn credential_arc(
        &self,
        identity: CacheIdentity,
        fetcher: Arc<dyn TokenFetcher>,
    ) -> CachedCredential {
        CachedCredential {
            partition: self.partition(identity),
            fetcher,
        }
    }

    fn partition(&self, identity: CacheIdentity) -> Arc<Partition> {
        let mut partitions = self.inner.partitions.lock();
        if let Some(existing) = partitions.map.get(&identity) {
            return existing.clone();
        }
        if partitions.map.len() >= partitions.sweep_at.max(SWEEP_THRESHOLD) {
            // Partitions outlive their credentials while they hold valid tokens, so a
            // credential created again (per request, say) finds them; sweep the rest.
            let now = self.inner.settings.clock.unix_nanos();
            partitions
                .map
                .retain(|_, p| Arc::strong_count(p) > 1 || p.is_live(now));
            partitions.sweep_at = partitions.map.len().saturating_mul(2);
            partitions.sweeps += 1;
        }
        let partition = Arc::new(Partition {
            id: next_id(),
            identity: identity.clone(),
            settings: self.inner.settings.clone(),
            invalidations: AtomicU64::new(0),
            entries: RwLock::new(HashMap::new()),
        });
        partitions.map.insert(identity, partition.clone());
        partition
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = &self.inner.settings;
        f.debug_struct("TokenCache")
            .field("clock", &settings.clock)
            .field("max_jitter", &settings.max_jitter)
            .field("refresh_backoff", &settings.refresh_backoff)
            .field("failure_cooldown", &settings.failure_cooldown)
            .finish_non_exhaustive()
    }
}

/// Options of an isolated [`TokenCache`].
#[derive(Debug, Clone)]
pub struct TokenCacheBuilder {
    clock: Clock,
    max_jitter: Duration,
    refresh_backoff: Duration,
    failure_cooldown: Duration,
    jitter_seed: Option<u64>,
    persistence: Option<TokenCachePersistence>,
}

impl Default for TokenCacheBuilder {
    fn default() -> Self {
        TokenCacheBuilder {
            clock: Clock::system(),
            max_jitter: Duration::MAX,
            refresh_backoff: Duration::from_secs(30),
            failure_cooldown: Duration::from_secs(1),
            jitter_seed: None,
            persistence: None,
        }
    }
}

impl TokenCacheBuilder {
    setters! {
        /// The clock the cache judges expiry by (a [`ManualClock`](crate::system::ManualClock) in
        /// tests). Default: the system clock.
        clock(clock: Clock) => clock;

        /// Caps how widely refresh times are spread. Each token's refresh time is drawn from a
        /// window a quarter of the time until its refresh target wide (three hours for 24-hour
        /// tokens, about fourteen minutes for one-hour tokens), so that processes started together
        /// do not refresh together; this caps that width. `Duration::ZERO` turns every random
        /// spread off: refresh times are exactly their targets, and backoffs and `Retry-After`
        /// waits get nothing added. Default: no cap.
        max_jitter(max_jitter: Duration) => max_jitter;

        /// Seeds the jitter's random numbers, so refresh times are reproducible.
        jitter_seed(seed: u64) => Some(jitter_seed);

        /// How long to wait after a failed background refresh before trying again, while the old
        /// token stays valid. Default: 30 s.
        refresh_backoff(backoff: Duration) => refresh_backoff;

        /// How long a failed fetch (with no valid token to fall back on) is remembered and returned
        /// to new callers without another request. An error's [`Error::retry_after`] (a provider's
        /// `Retry-After`, or a source's own "do not ask again before") lengthens it, up to 5
        /// minutes. Default: 1 s.
        failure_cooldown(cooldown: Duration) => failure_cooldown;

        /// Keeps the tokens of the credentials that use this cache across processes, for those
        /// that support it (the service principal and user sign-in credentials) and name no
        /// persistence of their own: see [`TokenCachePersistence`]. Default: none.
        #[cfg(feature = "persistence")]
        persistence(persistence: TokenCachePersistence) => Some(persistence);
    }

    /// Builds the cache.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::TokenCache;
    ///
    /// let isolated = TokenCache::builder().build();
    /// ```
    pub fn build(self) -> TokenCache {
        let rng = match self.jitter_seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        TokenCache {
            inner: Arc::new(CacheInner {
                settings: Arc::new(Settings {
                    clock: self.clock,
                    max_jitter: self.max_jitter,
                    refresh_backoff: self.refresh_backoff,
                    failure_cooldown: self.failure_cooldown,
                    jitter_rng: Mutex::new(rng),
                }),
                partitions: Mutex::new(Partitions::default()),
                #[cfg(feature = "user-sign-in")]
                extensions: Mutex::new(Vec::new()),
                persistence: self.persistence,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
