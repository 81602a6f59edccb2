//! The token cache: the only code that decides when a token is fresh and when to fetch one.
//! The rules are documented on [`TokenCache`].

use std::borrow::{Borrow, Cow};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tracing::Instrument;

use crate::catch_unwind::CatchUnwind;
use crate::system::{Clock, duration_nanos, from_unix_nanos, to_unix_nanos};

pub(crate) mod policy;
use crate::{AccessToken, Error, ErrorKind, TokenCredential, TokenFuture, TokenRequestOptions};

/// Per-thread front cache size.
const FRONT_SLOTS: usize = 8;
/// Entries per partition before expired ones are swept out.
const SWEEP_THRESHOLD: usize = 64;

/// The source of fresh tokens behind a [`CachedCredential`]: the cache calls it on a miss, when a
/// refresh is due, and for requests with claims.
///
/// Implement it to put a token source of your own behind the cache; every credential in this
/// crate is built this way.
#[async_trait]
pub trait TokenFetcher: Send + Sync + fmt::Debug + 'static {
    /// Fetches a new token for `request`. The cache guarantees that at most one fetch per
    /// request key runs at a time (requests with claims excepted).
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error>;

    /// The tenant a request really goes to, which is part of the cache key: `requested` is the
    /// caller's [`TokenRequestOptions::tenant_id`]. The default keeps it as is; a source whose
    /// tenant is fixed returns `Ok(None)` (its own tenant), and one with an allow-list rejects
    /// tenants outside it. Called on every `get_token` that names a tenant, so it must be cheap;
    /// a request without a tenant always means the credential's own and is not passed here.
    fn resolve_tenant<'a>(&'a self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        Ok(Some(requested))
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
    /// A request for `scopes` (as given: the cache passes them sorted and de-duplicated).
    pub fn new(scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        TokenRequest {
            scopes: scopes.into_iter().map(Into::into).collect(),
            tenant_id: None,
            claims: None,
            enable_cae: false,
        }
    }

    /// Sets the resolved tenant.
    pub fn with_tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// Sets the claims challenge.
    pub fn with_claims(mut self, claims: impl Into<String>) -> Self {
        self.claims = Some(claims.into());
        self
    }

    /// Sets the CAE flag.
    pub fn with_enable_cae(mut self, enable: bool) -> Self {
        self.enable_cae = enable;
        self
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

/// Who a cached token is for: the source kind and everything that decides the identity and the
/// right to its tokens (endpoint, tenant, client / object / resource id, and for credentials
/// with a secret a digest of the secret). Credentials with equal identities share cached tokens,
/// so equality must mean "either could have fetched the other's token".
///
/// ```
/// use azure_credentials::CacheIdentity;
///
/// let a = CacheIdentity::new("ClientSecretCredential")
///     .with("tenant", "contoso.onmicrosoft.com")
///     .with("client_id", "00000000-0000-0000-0000-000000000001")
///     .with_secret(b"secret one");
/// let b = a.clone();
/// assert_eq!(a, b);
/// let c = CacheIdentity::new("ClientSecretCredential")
///     .with("tenant", "contoso.onmicrosoft.com")
///     .with("client_id", "00000000-0000-0000-0000-000000000001")
///     .with_secret(b"secret two");
/// assert_ne!(a, c);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheIdentity {
    source: Cow<'static, str>,
    parts: BTreeMap<Cow<'static, str>, String>,
    secret_digest: Option<[u8; 32]>,
}

impl CacheIdentity {
    /// An identity of the source kind `source`, e.g. `"ManagedIdentityCredential"`.
    pub fn new(source: impl Into<Cow<'static, str>>) -> Self {
        CacheIdentity {
            source: source.into(),
            parts: BTreeMap::new(),
            secret_digest: None,
        }
    }

    /// Adds a named part of the identity (not secret: it appears in `Debug`).
    pub fn with(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        self.parts.insert(name.into(), value.into());
        self
    }

    /// Adds a secret: only its SHA-256 digest is kept, and it is never printed.
    pub fn with_secret(mut self, secret: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"azure-credentials cache identity\0");
        if let Some(previous) = self.secret_digest {
            hasher.update(previous);
        }
        hasher.update(secret);
        self.secret_digest = Some(hasher.finalize().into());
        self
    }

    /// The source kind.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for CacheIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("CacheIdentity");
        d.field("source", &self.source);
        for (name, value) in &self.parts {
            d.field(name, value);
        }
        if self.secret_digest.is_some() {
            d.field("secret", &"<redacted>");
        }
        d.finish()
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
/// dropped does not cancel it; a runtime that shuts down does, and the next caller starts over. A
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
    partitions: Mutex<HashMap<CacheIdentity, Arc<Partition>>>,
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
    /// share its entries, wherever they were created.
    pub fn shared() -> TokenCache {
        static SHARED: OnceLock<TokenCache> = OnceLock::new();
        SHARED.get_or_init(|| TokenCache::builder().build()).clone()
    }

    /// Builds an isolated cache.
    pub fn builder() -> TokenCacheBuilder {
        TokenCacheBuilder::default()
    }

    /// The cache's clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.settings.clock
    }

    /// Puts `fetcher` behind this cache as the credential for `identity`.
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
        if let Some(existing) = partitions.get(&identity) {
            return existing.clone();
        }
        if partitions.len() >= SWEEP_THRESHOLD {
            // Partitions outlive their credentials while they hold valid tokens, so a
            // credential created again (per request, say) finds them; sweep the rest.
            let now = self.inner.settings.clock.unix_nanos();
            partitions.retain(|_, p| Arc::strong_count(p) > 1 || p.is_live(now));
        }
        let partition = Arc::new(Partition {
            id: next_id(),
            identity: identity.clone(),
            settings: self.inner.settings.clone(),
            invalidations: AtomicU64::new(0),
            entries: RwLock::new(HashMap::new()),
        });
        partitions.insert(identity, partition.clone());
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
}

impl Default for TokenCacheBuilder {
    fn default() -> Self {
        TokenCacheBuilder {
            clock: Clock::system(),
            max_jitter: Duration::MAX,
            refresh_backoff: Duration::from_secs(30),
            failure_cooldown: Duration::from_secs(1),
            jitter_seed: None,
        }
    }
}

impl TokenCacheBuilder {
    /// The clock the cache judges expiry by (a [`ManualClock`](crate::system::ManualClock) in
    /// tests). Default: the system clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Caps how widely refresh times are spread. Each token's refresh time is drawn from a
    /// window a quarter of the time until its refresh target wide (three hours for 24-hour
    /// tokens, about fourteen minutes for one-hour tokens), so that processes started together
    /// do not refresh together; this caps that width. `Duration::ZERO` turns every random
    /// spread off: refresh times are exactly their targets, and backoffs and `Retry-After`
    /// waits get nothing added. Default: no cap.
    pub fn max_jitter(mut self, max_jitter: Duration) -> Self {
        self.max_jitter = max_jitter;
        self
    }

    /// Seeds the jitter's random numbers, so refresh times are reproducible.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// How long to wait after a failed background refresh before trying again, while the old
    /// token stays valid. Default: 30 s.
    pub fn refresh_backoff(mut self, backoff: Duration) -> Self {
        self.refresh_backoff = backoff;
        self
    }

    /// How long a failed fetch (with no valid token to fall back on) is remembered and returned
    /// to new callers without another request. An error's [`Error::retry_after`] (a provider's
    /// `Retry-After`, or a source's own "do not ask again before") lengthens it, up to 5
    /// minutes. Default: 1 s.
    pub fn failure_cooldown(mut self, cooldown: Duration) -> Self {
        self.failure_cooldown = cooldown;
        self
    }

    /// Builds the cache.
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
                partitions: Mutex::new(HashMap::new()),
            }),
        }
    }
}

/// A [`TokenFetcher`] behind a [`TokenCache`]: a complete [`TokenCredential`].
#[derive(Clone)]
pub struct CachedCredential {
    partition: Arc<Partition>,
    fetcher: Arc<dyn TokenFetcher>,
}

impl fmt::Debug for CachedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedCredential")
            .field("identity", &self.partition.identity)
            .field("fetcher", &self.fetcher)
            .finish()
    }
}

impl TokenCredential for CachedCredential {
    fn get_token<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: Option<&'a TokenRequestOptions>,
    ) -> TokenFuture<'a> {
        CachedCredential::get_token(self, scopes, options)
    }
}

impl CachedCredential {
    /// The identity this credential's tokens are cached under.
    pub fn identity(&self) -> &CacheIdentity {
        &self.partition.identity
    }

    /// Forgets every token cached for this credential's identity (all scopes and tenants), and
    /// any remembered failure: the next call fetches. Fetches already running still answer their
    /// callers but store nothing. For sources that learn their tokens went stale, such as the
    /// Azure CLI after a new `az login`.
    pub fn invalidate(&self) {
        self.partition.invalidations.fetch_add(1, Ordering::AcqRel);
        for entry in self.partition.entries.read().values() {
            let mut state = entry.state.lock();
            state.failure = None;
            *entry.current.write() = None;
            entry.generation.fetch_add(1, Ordering::AcqRel);
            entry.next_refresh.store(i64::MIN, Ordering::Release);
        }
        tracing::debug!(credential = %self.partition.identity.source, "cached tokens invalidated");
    }

    /// Gets a token: from the cache when it is fresh, otherwise from the fetcher (see
    /// [`TokenCache`] for the rules).
    pub fn get_token<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: Option<&'a TokenRequestOptions>,
    ) -> TokenFuture<'a> {
        let (requested_tenant, enable_cae, claims) = match options {
            Some(o) => (o.tenant_id(), o.enable_cae(), o.claims()),
            None => (None, false, None),
        };
        // Fast path: this thread's copy of a fresh token. No tenant requested means the
        // credential's own, which needs no resolving.
        if claims.is_none() && requested_tenant.is_none() {
            let now = self.partition.settings.clock.unix_nanos();
            if let Some(token) = front_lookup(self.partition.id, scopes, None, enable_cae, now) {
                return TokenFuture::ready(Ok(token));
            }
        }
        self.get_token_shared(scopes, requested_tenant, enable_cae, claims)
    }

    /// Everything but a front-cache hit, kept out of line so the hot path stays small.
    #[inline(never)]
    fn get_token_shared<'a>(
        &'a self,
        scopes: &'a [&'a str],
        requested_tenant: Option<&'a str>,
        enable_cae: bool,
        claims: Option<&'a str>,
    ) -> TokenFuture<'a> {
        let tenant = match requested_tenant {
            None => None,
            Some(requested) => match self.fetcher.resolve_tenant(requested) {
                Ok(tenant) => tenant,
                Err(err) => return TokenFuture::ready(Err(err)),
            },
        };
        let view = KeyView::new(scopes, tenant, enable_cae);
        if let Some(claims) = claims {
            let key = view.to_key();
            return TokenFuture::new(self.fetch_with_claims(key, claims));
        }
        let now = self.partition.settings.clock.unix_nanos();
        if let Some(token) = front_lookup(self.partition.id, scopes, tenant, enable_cae, now) {
            return TokenFuture::ready(Ok(token));
        }
        let entry = self.partition.entry(&view);
        // The generation is read before the token: a per-thread copy is then never tagged with
        // a newer generation than the token it holds (a token replaced in between makes the
        // copy look stale, never current).
        let generation = entry.generation.load(Ordering::Acquire);
        let cached = entry.current.read().clone();
        if let Some(cached) = cached {
            if now < cached.refresh_at {
                front_store(self.partition.id, &entry, generation, &cached);
                return TokenFuture::ready(Ok(cached.token));
            }
            if now < cached.hard_limit {
                self.refresh_in_background(&entry, now);
                return TokenFuture::ready(Ok(cached.token));
            }
        }
        TokenFuture::new(self.wait_for_token(entry))
    }

    /// The slow path: no token to serve at once, so join the key's fetch (or start it) and
    /// wait.
    ///
    /// Past its hard limit a token that has not expired yet is the last resort: a caller waits
    /// at most [`STALE_WAIT`] for the new one, and gets the old one if the fetch is slower,
    /// fails, or failed less than a backoff ago (stale-on-error, as MSAL does). Only a caller
    /// with nothing valid left waits for the fetch's outcome, error included.
    async fn wait_for_token(&self, entry: Arc<Entry>) -> Result<AccessToken, Error> {
        loop {
            let (flight, to_drive, stale) = {
                let mut state = entry.state.lock();
                let now = self.partition.settings.clock.unix_nanos();
                // Checked under the lock: a flight stores its token before it clears itself
                // (under this lock), so "no flight" here means there is no fresher token coming.
                let current = entry.current.read().clone();
                if let Some(cached) = &current
                    && now < cached.hard_limit
                {
                    return Ok(cached.token.clone());
                }
                let stale = current
                    .filter(|c| now < c.expires)
                    .map(|c| (c.token, c.expires));
                if let Some((error, until)) = &state.failure {
                    if now < *until {
                        tracing::trace!(credential = %self.partition.identity.source, "returning a recently failed fetch's error");
                        return Err(error.clone());
                    }
                    state.failure = None;
                }
                if let Some((token, _)) = &stale
                    && state.flight.is_none()
                    && now < entry.next_refresh.load(Ordering::Acquire)
                {
                    // A refresh failed less than a backoff ago: do not ask again yet.
                    return Ok(token.clone());
                }
                let (flight, to_drive) = match &state.flight {
                    Some(flight) => (flight.clone(), None),
                    None => self.start_flight(&entry, &mut state),
                };
                (flight, to_drive, stale)
            };
            if let Some(task) = to_drive {
                // No runtime to spawn on: drive the fetch here. If this caller is dropped the
                // flight is abandoned and a waiter starts a new one.
                task.await;
            }
            let id = flight.id;
            let outcome = match &stale {
                Some((token, expires)) if tokio::runtime::Handle::try_current().is_ok() => {
                    let now = self.partition.settings.clock.unix_nanos();
                    let left = u64::try_from(expires.saturating_sub(now)).unwrap_or(0);
                    let wait = STALE_WAIT.min(Duration::from_nanos(left));
                    match tokio::time::timeout(wait, flight.outcome()).await {
                        Ok(outcome) => outcome,
                        Err(_) => {
                            tracing::debug!(credential = %self.partition.identity.source, "the new token is slow to come; serving the current one, which has not expired yet");
                            return Ok(token.clone());
                        }
                    }
                }
                _ => flight.outcome().await,
            };
            match outcome {
                Outcome::Done(Ok(token)) => return Ok(token),
                Outcome::Done(Err(error)) => match stale {
                    Some((token, _)) => return Ok(token),
                    None => return Err(error),
                },
                // Dropped (runtime shut down, driving caller gone): try again.
                Outcome::Abandoned => continue,
                Outcome::Stalled => {
                    // Take over: forget the stalled flight (if it still is the entry's) so the
                    // next turn of the loop starts a fresh one on this caller's runtime.
                    let mut state = entry.state.lock();
                    if state.flight.as_ref().is_some_and(|f| f.id == id) {
                        tracing::warn!(credential = %self.partition.identity.source, "a token fetch is stuck on a runtime that is no longer driven; fetching again on this one");
                        state.flight = None;
                        entry.busy.store(false, Ordering::Release);
                    }
                }
            }
        }
    }

    /// Starts a background refresh for an entry in its refresh window, unless one is running or
    /// the last one failed less than a backoff ago. Never waits.
    fn refresh_in_background(&self, entry: &Arc<Entry>, now: i64) {
        if entry.busy.load(Ordering::Acquire) || now < entry.next_refresh.load(Ordering::Acquire) {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return; // nowhere to run it; callers fetch once the token passes its hard limit
        }
        let mut state = entry.state.lock();
        // Checked again under the lock: a refresh may have finished (and stored a token that is
        // not due yet) since this caller read the old one.
        let due = entry
            .current
            .read()
            .as_ref()
            .is_some_and(|c| now >= c.refresh_at && now < c.hard_limit);
        if state.flight.is_some() || !due || now < entry.next_refresh.load(Ordering::Acquire) {
            return;
        }
        tracing::debug!(credential = %self.partition.identity.source, "token due for refresh; refreshing in the background");
        let (_flight, task) = self.start_flight(entry, &mut state);
        debug_assert!(
            task.is_none(),
            "a runtime is present, so the flight was spawned"
        );
    }

    /// Registers a new flight for `entry` and starts its fetch: spawned on the current runtime,
    /// or, without one, returned for the caller to drive.
    fn start_flight(
        &self,
        entry: &Arc<Entry>,
        state: &mut SlowState,
    ) -> (Flight, Option<FlightTask>) {
        let (tx, rx) = watch::channel(None);
        let runtime = tokio::runtime::Handle::try_current().ok();
        let flight = Flight {
            id: next_id(),
            rx,
            home: runtime.as_ref().and_then(current_thread_home),
        };
        state.flight = Some(flight.clone());
        entry.busy.store(true, Ordering::Release);
        let request = entry.key.to_request(None);
        let task = run_flight(
            self.partition.clone(),
            entry.clone(),
            self.fetcher.clone(),
            request,
            tx,
            flight.id,
        );
        let span =
            tracing::debug_span!("token_fetch", credential = %self.partition.identity.source);
        let task: FlightTask = Box::pin(task.instrument(span));
        match runtime {
            Some(handle) => {
                handle.spawn(task);
                (flight, None)
            }
            None => (flight, Some(task)),
        }
    }

    async fn fetch_with_claims(&self, key: RequestKey, claims: &str) -> Result<AccessToken, Error> {
        let request = key.to_request(Some(claims));
        tracing::debug!(credential = %self.partition.identity.source, "claims challenge: fetching a new token, bypassing the cache");
        let partition = &self.partition;
        let invalidations = partition.invalidations.load(Ordering::Acquire);
        // The same protection as a flight's: a panic anywhere is an error, and a token fetched
        // while the cache was invalidated is handed back but not kept.
        let fetch_and_store = async {
            let token = self.fetcher.fetch(&request).await?;
            #[cfg(test)]
            test_hooks::after_fetch(partition);
            let entry = partition.entry(&key.view());
            Ok(partition.store_unless_invalidated(&entry, token, invalidations))
        };
        match CatchUnwind::new(fetch_and_store).await {
            Ok(result) => result,
            Err(_payload) => Err(panicked(partition)),
        }
    }
}

type FlightTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// One fetch for one key: runs the fetcher, stores or remembers the outcome, then tells every
/// waiter. Everything between starting the fetch and recording its outcome runs under
/// [`CatchUnwind`], so a panic there (in the source, or in the bookkeeping after it) is a failed
/// fetch like any other: remembered for the cool-down, never a loop of new fetches. If the
/// flight is dropped before finishing, its guard clears the entry's flight so nothing stays
/// stuck "fetching", and waiters see the channel close and start over.
async fn run_flight(
    partition: Arc<Partition>,
    entry: Arc<Entry>,
    fetcher: Arc<dyn TokenFetcher>,
    request: TokenRequest,
    tx: watch::Sender<FlightResult>,
    flight_id: u64,
) {
    let guard = FlightGuard {
        partition: partition.clone(),
        entry: entry.clone(),
        flight_id,
        tx: Some(tx),
    };
    let invalidations = partition.invalidations.load(Ordering::Acquire);
    let fetch_and_settle = async {
        let result = fetcher.fetch(&request).await;
        #[cfg(test)]
        test_hooks::after_fetch(&partition);
        partition.settle(&entry, result, invalidations)
    };
    let (result, failure) = match CatchUnwind::new(fetch_and_settle).await {
        Ok(outcome) => outcome,
        Err(_payload) => {
            let error = panicked(&partition);
            let failure = partition.failure_until(&error);
            (Err(error), failure)
        }
    };
    guard.finish(result, failure);
}

/// The error a panic during a fetch becomes. The payload is not logged: a buggy source's panic
/// message could hold a secret, and the panic hook has already reported it where panics go.
fn panicked(partition: &Partition) -> Error {
    tracing::error!(
        credential = %partition.identity.source,
        "the token source panicked while fetching a token"
    );
    Error::new(
        ErrorKind::Other,
        partition.identity.source.clone(),
        "the token source panicked while fetching a token",
    )
    .with_fix("this is a bug in the token source; please report it")
}

/// Ends a flight: clears it from its entry and tells the waiters, whether the flight finished
/// or was dropped (runtime shut down, or the caller driving it went away).
struct FlightGuard {
    partition: Arc<Partition>,
    entry: Arc<Entry>,
    flight_id: u64,
    /// `None` once finished.
    tx: Option<watch::Sender<FlightResult>>,
}

impl FlightGuard {
    /// Records the failure to remember (if any) and clears the flight in one critical section,
    /// so a caller that finds no flight also finds its outcome; then hands waiters the result.
    fn finish(mut self, result: Result<AccessToken, Error>, failure: Option<(Error, i64)>) {
        {
            let mut state = self.entry.state.lock();
            if self.is_current(&state) {
                state.failure = failure;
            }
            self.clear(&mut state);
        }
        if let Some(tx) = self.tx.take() {
            // Waiters may all be gone; that is fine.
            let _ = tx.send(Some(result));
        }
    }

    fn is_current(&self, state: &SlowState) -> bool {
        state
            .flight
            .as_ref()
            .is_some_and(|f| f.id == self.flight_id)
    }

    fn clear(&self, state: &mut SlowState) {
        if self.is_current(state) {
            state.flight = None;
            self.entry.busy.store(false, Ordering::Release);
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        let Some(tx) = self.tx.take() else {
            return;
        };
        let mut state = self.entry.state.lock();
        if std::thread::panicking() {
            // Unwinding through the flight (only possible outside its `CatchUnwind`): still a
            // failed fetch, remembered, so waiters do not start a new fetch each.
            let error = panicked(&self.partition);
            if self.is_current(&state) {
                state.failure = self.partition.failure_until(&error);
            }
            self.clear(&mut state);
            drop(state);
            let _ = tx.send(Some(Err(error)));
        } else {
            // Abandoned: clear the flight; dropping the sender tells waiters to start over.
            self.clear(&mut state);
        }
    }
}

/// How long a caller past a token's hard limit waits for the new token before it gets the old
/// one, which has not expired yet.
const STALE_WAIT: Duration = Duration::from_millis(500);

/// How long a waiter lets a flight on another current-thread runtime go without a sign of life
/// before it fetches itself (see [`Flight::outcome`]).
const STALL_WINDOW: Duration = Duration::from_millis(500);

#[derive(Clone)]
struct Flight {
    id: u64,
    rx: watch::Receiver<FlightResult>,
    /// The current-thread runtime the flight was spawned on, if it was. Such a runtime runs its
    /// tasks only while a thread blocks on it: one whose owner stopped driving it (a sync
    /// wrapper that gave up on a `block_on(timeout(..))` and kept the runtime) would hold every
    /// waiter forever, so waiters on other runtimes watch it.
    home: Option<tokio::runtime::Handle>,
}

/// How waiting for a flight ended.
enum Outcome {
    Done(Result<AccessToken, Error>),
    /// Dropped before it produced a result (runtime shut down, driving caller gone).
    Abandoned,
    /// Its runtime is not being driven: it may never finish.
    Stalled,
}

impl Flight {
    /// Waits for the flight's result. A waiter on another runtime than the flight's
    /// current-thread home checks every [`STALL_WINDOW`] that the home still runs tasks (by
    /// spawning a no-op there); when one probe has not run for two windows the flight is
    /// declared stalled, and the waiter fetches itself. A false alarm (a home runtime blocked by
    /// a long synchronous call) costs one extra fetch, never a wrong result.
    async fn outcome(self) -> Outcome {
        let mut rx = self.rx;
        let Some(home) = self.home.filter(|home| !is_current_runtime(home)) else {
            return result_of(&mut rx).await;
        };
        loop {
            let probe = Arc::new(AtomicBool::new(false));
            drop(home.spawn({
                let probe = probe.clone();
                async move { probe.store(true, Ordering::Release) }
            }));
            for _ in 0..2 {
                if let Ok(outcome) = tokio::time::timeout(STALL_WINDOW, result_of(&mut rx)).await {
                    return outcome;
                }
                if probe.load(Ordering::Acquire) {
                    break;
                }
            }
            if !probe.load(Ordering::Acquire) {
                return Outcome::Stalled;
            }
        }
    }
}

type FlightResult = Option<Result<AccessToken, Error>>;

/// The flight's result, once it is sent, or [`Outcome::Abandoned`] if it is dropped first.
async fn result_of(rx: &mut watch::Receiver<FlightResult>) -> Outcome {
    match rx.wait_for(Option::is_some).await {
        Ok(value) => match &*value {
            Some(result) => Outcome::Done(result.clone()),
            None => Outcome::Abandoned,
        },
        Err(_) => Outcome::Abandoned,
    }
}

/// Whether the caller runs on `runtime` (so that runtime is being driven right now).
fn is_current_runtime(runtime: &tokio::runtime::Handle) -> bool {
    tokio::runtime::Handle::try_current().is_ok_and(|current| current.id() == runtime.id())
}

/// The current runtime, when it is a current-thread one (see [`Flight::home`]).
fn current_thread_home(handle: &tokio::runtime::Handle) -> Option<tokio::runtime::Handle> {
    (handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
        .then(|| handle.clone())
}

#[cfg(test)]
mod test_hooks {
    /// A partition of this source kind panics right after each fetch.
    pub(super) const PANIC_AFTER_FETCH: &str = "test: panic after fetch";

    pub(super) fn after_fetch(partition: &super::Partition) {
        if partition.identity.source == PANIC_AFTER_FETCH {
            panic!("injected: panic after the fetch");
        }
    }
}
#[cfg(test)]
use test_hooks::PANIC_AFTER_FETCH;

/// All cached tokens of one identity.
struct Partition {
    id: u64,
    identity: CacheIdentity,
    settings: Arc<Settings>,
    /// Bumped by [`CachedCredential::invalidate`]; a fetch that started before stores nothing.
    invalidations: AtomicU64,
    entries: RwLock<HashMap<RequestKey, Arc<Entry>>>,
}

impl Partition {
    /// The entry for `view`, created empty if there is none.
    fn entry(&self, view: &KeyView<'_>) -> Arc<Entry> {
        if let Some(entry) = self.entries.read().get(view as &dyn KeyLike) {
            return entry.clone();
        }
        let mut entries = self.entries.write();
        if let Some(entry) = entries.get(view as &dyn KeyLike) {
            return entry.clone();
        }
        if entries.len() >= SWEEP_THRESHOLD {
            let now = self.settings.clock.unix_nanos();
            entries.retain(|_, e| Arc::strong_count(e) > 1 || e.is_live(now));
        }
        let key = view.to_key();
        let entry = Arc::new(Entry {
            key: key.clone(),
            generation: AtomicU64::new(0),
            current: RwLock::new(None),
            busy: AtomicBool::new(false),
            next_refresh: AtomicI64::new(i64::MIN),
            state: Mutex::new(SlowState::default()),
        });
        entries.insert(key, entry.clone());
        entry
    }

    /// Whether any entry holds a valid token or has a fetch running.
    fn is_live(&self, now: i64) -> bool {
        self.entries.read().values().any(|e| e.is_live(now))
    }

    /// What a finished fetch leaves behind: the result for the waiters and, for a failure with
    /// no valid token to fall back on, the failure to remember and until when. A token fetched
    /// while the cache was invalidated is handed to the waiters but not kept.
    fn settle(
        &self,
        entry: &Entry,
        result: Result<AccessToken, Error>,
        invalidations: u64,
    ) -> (Result<AccessToken, Error>, Option<(Error, i64)>) {
        let error = match result {
            Ok(token) => {
                return (
                    Ok(self.store_unless_invalidated(entry, token, invalidations)),
                    None,
                );
            }
            Err(error) => error,
        };
        let now = self.settings.clock.unix_nanos();
        // A token that has not expired yet is still served (before its hard limit, or as the
        // last resort after it): back off, and remember no failure.
        let still_valid = entry
            .current
            .read()
            .as_ref()
            .is_some_and(|c| now < c.expires);
        if !still_valid {
            tracing::debug!(credential = %self.identity.source, error = %error, "token fetch failed");
            let failure = self.failure_until(&error);
            return (Err(error), failure);
        }
        let backoff = policy::refresh_backoff(
            self.settings.refresh_backoff,
            error.retry_after(),
            self.settings.draw(),
        );
        entry.next_refresh.store(
            now.saturating_add(duration_nanos(backoff)),
            Ordering::Release,
        );
        tracing::warn!(
            credential = %self.identity.source,
            error = %error,
            retry_in_secs = backoff.as_secs(),
            "background token refresh failed; still serving the current token"
        );
        (Err(error), None)
    }

    /// The failure to remember for `error` and until when (Unix ns): the cool-down, lengthened
    /// by the error's `retry_after` (a provider's `Retry-After`, or a source's own "do not ask
    /// again before"). `None` when the cool-down is disabled.
    fn failure_until(&self, error: &Error) -> Option<(Error, i64)> {
        let memory = policy::failure_memory(
            self.settings.failure_cooldown,
            error.retry_after(),
            self.settings.draw(),
        );
        if memory.is_zero() {
            return None;
        }
        let now = self.settings.clock.unix_nanos();
        Some((error.clone(), now.saturating_add(duration_nanos(memory))))
    }

    /// [`Partition::store`], unless the partition was invalidated since `invalidations` was
    /// read: then the token is returned without being kept.
    fn store_unless_invalidated(
        &self,
        entry: &Entry,
        token: AccessToken,
        invalidations: u64,
    ) -> AccessToken {
        if self.invalidations.load(Ordering::Acquire) != invalidations {
            return token;
        }
        self.store(entry, token)
    }

    /// Computes the deadlines of a freshly fetched token, stores it and returns it (carrying the
    /// cache's refresh time as its `refresh_on`).
    ///
    /// A token that has already expired by this machine's clock when it arrives (clock skew, or
    /// `expires_in: 0`) is served for the failure cool-down, like a failure would be, so callers
    /// do not fetch again on every call.
    fn store(&self, entry: &Entry, token: AccessToken) -> AccessToken {
        let settings = &*self.settings;
        let now = settings.clock.unix_nanos();
        let deadlines = policy::deadlines(
            now,
            to_unix_nanos(token.expires_on()),
            token.refresh_on().map(to_unix_nanos),
            duration_nanos(settings.max_jitter),
            settings.draw(),
        );
        let (token, refresh_at, hard_limit) = match deadlines {
            Some(d) => {
                let token = token.with_refresh_on(from_unix_nanos(d.refresh_at));
                tracing::debug!(
                    credential = %self.identity.source,
                    expires_on = %token.expires_on(),
                    refresh_on = %from_unix_nanos(d.refresh_at),
                    "token cached"
                );
                (token, d.refresh_at, d.hard_limit)
            }
            None => {
                tracing::warn!(
                    credential = %self.identity.source,
                    expires_on = %token.expires_on(),
                    cooldown_ms = settings.failure_cooldown.as_millis() as u64,
                    "received a token that has already expired by this machine's clock; serving it only for the failure cool-down (is the system clock right?)"
                );
                if settings.failure_cooldown.is_zero() {
                    return token;
                }
                let until = now.saturating_add(duration_nanos(settings.failure_cooldown));
                (token, until, until)
            }
        };
        *entry.current.write() = Some(Cached {
            expires: to_unix_nanos(token.expires_on()),
            token: token.clone(),
            refresh_at,
            hard_limit,
        });
        entry.generation.fetch_add(1, Ordering::AcqRel);
        entry.next_refresh.store(i64::MIN, Ordering::Release);
        token
    }
}

/// The cached state of one request key.
struct Entry {
    key: RequestKey,
    /// Bumped whenever `current` changes; per-thread copies compare it to know they are current.
    generation: AtomicU64,
    current: RwLock<Option<Cached>>,
    /// A flight is running (mirror of `state.flight.is_some()` for a lock-free check).
    busy: AtomicBool,
    /// No background refresh before this time (Unix ns), after a failed one.
    next_refresh: AtomicI64,
    state: Mutex<SlowState>,
}

impl Entry {
    fn is_live(&self, now: i64) -> bool {
        self.busy.load(Ordering::Acquire)
            || self
                .current
                .read()
                .as_ref()
                .is_some_and(|c| now < c.hard_limit)
    }
}

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    refresh_at: i64,
    hard_limit: i64,
    /// The token's own expiry: between the hard limit and this, the token is a last resort
    /// (see [`CachedCredential::wait_for_token`]).
    expires: i64,
}

#[derive(Default)]
struct SlowState {
    flight: Option<Flight>,
    /// A failed fetch and until when (Unix ns) new callers get it without a new request.
    failure: Option<(Error, i64)>,
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------
// Per-thread front cache.
//
// Each thread keeps its own copy of recently served tokens (a separate allocation, so handing
// one out bumps a reference count no other core touches). A copy is used only while its entry's
// generation is unchanged and its refresh time has not come; otherwise the caller takes the
// shared path, which refreshes the copy.

struct FrontSlot {
    partition: u64,
    /// Copies of the key's parts, so matching reads the slot itself instead of chasing pointers
    /// into the shared entry (`first_scope` is the only scope in the common one-scope case).
    cae: bool,
    tenant: Option<Box<str>>,
    scope_count: usize,
    first_scope: Box<str>,
    entry: Arc<Entry>,
    generation: u64,
    refresh_at: i64,
    token: AccessToken,
}

struct Front {
    slots: Vec<FrontSlot>,
    next_victim: usize,
}

thread_local! {
    static FRONT: RefCell<Front> = const {
        RefCell::new(Front { slots: Vec::new(), next_victim: 0 })
    };
}

#[inline(always)]
fn front_lookup(
    partition: u64,
    scopes: &[&str],
    tenant: Option<&str>,
    cae: bool,
    now: i64,
) -> Option<AccessToken> {
    FRONT
        .try_with(|front| {
            let front = front.try_borrow().ok()?;
            let slot = front.slots.iter().find(|s| {
                s.partition == partition
                    && s.cae == cae
                    && s.tenant.as_deref() == tenant
                    && match scopes {
                        [one] => s.scope_count == 1 && *one == &*s.first_scope,
                        _ => scopes_match(scopes, &s.entry.key.scopes),
                    }
            })?;
            let current = slot.entry.generation.load(Ordering::Acquire) == slot.generation;
            (current && now < slot.refresh_at).then(|| slot.token.clone())
        })
        .ok()
        .flatten()
}

/// Whether a caller's scopes, in any order and with repeats, are the key's sorted set.
#[inline]
fn scopes_match(requested: &[&str], key: &[Box<str>]) -> bool {
    match (requested, key) {
        ([one], [k]) => *one == &**k,
        _ => {
            let list = ScopeList::new(requested);
            let sorted = list.as_slice();
            sorted.len() == key.len() && sorted.iter().zip(key).all(|(a, b)| *a == &**b)
        }
    }
}

fn front_store(partition: u64, entry: &Arc<Entry>, generation: u64, cached: &Cached) {
    let _ = FRONT.try_with(|front| {
        let Ok(mut front) = front.try_borrow_mut() else {
            return;
        };
        let key = &entry.key;
        let slot = FrontSlot {
            partition,
            cae: key.cae,
            tenant: key.tenant.clone(),
            scope_count: key.scopes.len(),
            first_scope: key.scopes.first().cloned().unwrap_or_default(),
            entry: entry.clone(),
            generation,
            refresh_at: cached.refresh_at,
            token: cached.token.deep_copy(),
        };
        if let Some(i) = front
            .slots
            .iter()
            .position(|s| Arc::ptr_eq(&s.entry, entry))
        {
            front.slots[i] = slot;
        } else if front.slots.len() < FRONT_SLOTS {
            front.slots.push(slot);
        } else {
            let victim = front.next_victim;
            front.slots[victim] = slot;
            front.next_victim = (victim + 1) % FRONT_SLOTS;
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Request keys: owned in the maps, borrowed (with scopes sorted on the stack) for lookups.

/// The owned key of a cache entry: sorted, de-duplicated scopes, resolved tenant, CAE flag.
#[derive(Clone)]
struct RequestKey {
    scopes: Box<[Box<str>]>,
    tenant: Option<Box<str>>,
    cae: bool,
}

impl RequestKey {
    fn to_request(&self, claims: Option<&str>) -> TokenRequest {
        TokenRequest {
            scopes: self.scopes.iter().map(|s| s.to_string()).collect(),
            tenant_id: self.tenant.as_deref().map(str::to_owned),
            claims: claims.map(str::to_owned),
            enable_cae: self.cae,
        }
    }

    fn view(&self) -> KeyView<'_> {
        let scopes: Vec<&str> = self.scopes.iter().map(|s| &**s).collect();
        KeyView {
            scopes: ScopeList::Heap(scopes),
            tenant: self.tenant.as_deref(),
            cae: self.cae,
        }
    }
}

const INLINE_SCOPES: usize = 4;

/// Scopes sorted and de-duplicated without allocating (up to [`INLINE_SCOPES`]).
enum ScopeList<'a> {
    Inline([&'a str; INLINE_SCOPES], usize),
    Heap(Vec<&'a str>),
}

impl<'a> ScopeList<'a> {
    fn new(scopes: &[&'a str]) -> Self {
        if scopes.len() <= INLINE_SCOPES {
            let mut buf = [""; INLINE_SCOPES];
            buf[..scopes.len()].copy_from_slice(scopes);
            let len = sort_dedup(&mut buf[..scopes.len()]);
            ScopeList::Inline(buf, len)
        } else {
            let mut v = scopes.to_vec();
            let len = sort_dedup(&mut v);
            v.truncate(len);
            ScopeList::Heap(v)
        }
    }

    fn as_slice(&self) -> &[&'a str] {
        match self {
            ScopeList::Inline(buf, len) => &buf[..*len],
            ScopeList::Heap(v) => v,
        }
    }
}

/// Sorts `s` and moves the distinct values to the front; returns how many there are.
fn sort_dedup(s: &mut [&str]) -> usize {
    if s.len() <= 1 {
        return s.len();
    }
    s.sort_unstable();
    let mut len = 1;
    for i in 1..s.len() {
        if s[i] != s[len - 1] {
            s[len] = s[i];
            len += 1;
        }
    }
    len
}

/// A borrowed key, for lookups.
struct KeyView<'a> {
    scopes: ScopeList<'a>,
    tenant: Option<&'a str>,
    cae: bool,
}

impl<'a> KeyView<'a> {
    fn new(scopes: &[&'a str], tenant: Option<&'a str>, cae: bool) -> Self {
        KeyView {
            scopes: ScopeList::new(scopes),
            tenant,
            cae,
        }
    }

    fn to_key(&self) -> RequestKey {
        RequestKey {
            scopes: self
                .scopes
                .as_slice()
                .iter()
                .map(|s| Box::from(*s))
                .collect(),
            tenant: self.tenant.map(Box::from),
            cae: self.cae,
        }
    }
}

/// What the owned and borrowed keys have in common, so maps keyed by `RequestKey` can be
/// searched with a `KeyView` (through `Borrow<dyn KeyLike>`).
trait KeyLike {
    fn scope_count(&self) -> usize;
    fn scope(&self, i: usize) -> &str;
    fn tenant(&self) -> Option<&str>;
    fn cae(&self) -> bool;
}

impl KeyLike for RequestKey {
    fn scope_count(&self) -> usize {
        self.scopes.len()
    }
    fn scope(&self, i: usize) -> &str {
        &self.scopes[i]
    }
    fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
    fn cae(&self) -> bool {
        self.cae
    }
}

impl KeyLike for KeyView<'_> {
    fn scope_count(&self) -> usize {
        self.scopes.as_slice().len()
    }
    fn scope(&self, i: usize) -> &str {
        self.scopes.as_slice()[i]
    }
    fn tenant(&self) -> Option<&str> {
        self.tenant
    }
    fn cae(&self) -> bool {
        self.cae
    }
}

#[inline]
fn key_eq(a: &(impl KeyLike + ?Sized), b: &(impl KeyLike + ?Sized)) -> bool {
    a.cae() == b.cae()
        && a.tenant() == b.tenant()
        && a.scope_count() == b.scope_count()
        && (0..a.scope_count()).all(|i| a.scope(i) == b.scope(i))
}

fn key_hash(k: &(impl KeyLike + ?Sized), state: &mut impl Hasher) {
    k.scope_count().hash(state);
    for i in 0..k.scope_count() {
        k.scope(i).hash(state);
    }
    k.tenant().hash(state);
    k.cae().hash(state);
}

impl Hash for dyn KeyLike + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        key_hash(self, state);
    }
}

impl PartialEq for dyn KeyLike + '_ {
    fn eq(&self, other: &Self) -> bool {
        key_eq(self, other)
    }
}

impl Eq for dyn KeyLike + '_ {}

impl Hash for RequestKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        key_hash(self, state);
    }
}

impl PartialEq for RequestKey {
    fn eq(&self, other: &Self) -> bool {
        key_eq(self, other)
    }
}

impl Eq for RequestKey {}

impl<'a> Borrow<dyn KeyLike + 'a> for RequestKey {
    fn borrow(&self) -> &(dyn KeyLike + 'a) {
        self
    }
}

#[cfg(test)]
mod tests;
