//! Cache semantics on a manual clock. Each test names what a caller observes.

use super::*;
use crate::system::ManualClock;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::AtomicUsize;
use std::task::{Context, Poll, Waker};
use time::OffsetDateTime;
use time::macros::datetime;

const START: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);
const HOUR: Duration = Duration::from_secs(3600);
const MIN: Duration = Duration::from_secs(60);

/// A fetcher that issues `token-<n>` tokens of a fixed lifetime, or scripted results.
#[derive(Debug)]
struct Script {
    clock: Clock,
    lifetime: Duration,
    fetches: AtomicUsize,
    steps: Mutex<VecDeque<Result<Duration, Error>>>,
    requests: Mutex<Vec<TokenRequest>>,
}

#[async_trait]
impl TokenFetcher for Script {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        self.requests.lock().push(request.clone());
        let lifetime = match self.steps.lock().pop_front() {
            Some(Ok(lifetime)) => lifetime,
            Some(Err(err)) => return Err(err),
            None => self.lifetime,
        };
        Ok(AccessToken::new(
            format!("token-{n}"),
            self.clock.now() + lifetime,
        ))
    }
}

struct Fixture {
    manual: ManualClock,
    cache: TokenCache,
    script: Arc<Script>,
    credential: CachedCredential,
}

impl Fixture {
    fn new(lifetime: Duration) -> Self {
        Self::with_cache(lifetime, |b| b)
    }

    fn with_cache(
        lifetime: Duration,
        configure: impl FnOnce(TokenCacheBuilder) -> TokenCacheBuilder,
    ) -> Self {
        let manual = ManualClock::new(START);
        let cache = configure(
            TokenCache::builder()
                .clock(manual.clock())
                .max_jitter(Duration::ZERO),
        )
        .build();
        let script = Arc::new(Script {
            clock: manual.clock(),
            lifetime,
            fetches: AtomicUsize::new(0),
            steps: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
        });
        let credential = cache.credential_arc(CacheIdentity::new("Test"), script.clone());
        Fixture {
            manual,
            cache,
            script,
            credential,
        }
    }

    fn fetches(&self) -> usize {
        self.script.fetches.load(Ordering::SeqCst)
    }

    fn push(&self, step: Result<Duration, Error>) {
        self.script.steps.lock().push_back(step);
    }

    async fn get(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        self.credential.get_token(scopes, None).await
    }

    async fn token(&self) -> String {
        self.get(&["scope"])
            .await
            .unwrap()
            .token()
            .expose()
            .to_owned()
    }
}

/// Polls a future once: `Ready` means the caller did not wait.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

/// Lets spawned background work run to completion (current-thread runtime).
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

fn hard_error() -> Error {
    Error::authentication("Test", "refused")
}

#[tokio::test]
async fn a_hit_returns_the_cached_token_without_fetching() {
    let f = Fixture::new(HOUR);
    assert_eq!(f.token().await, "token-1");
    assert_eq!(f.token().await, "token-1");
    f.manual.advance(30 * MIN);
    assert_eq!(f.token().await, "token-1");
    assert_eq!(f.fetches(), 1);
}

#[tokio::test]
async fn a_hit_is_ready_at_once() {
    let f = Fixture::new(HOUR);
    f.token().await;
    let Poll::Ready(Ok(token)) = poll_once(f.credential.get_token(&["scope"], None)) else {
        panic!("a cache hit must not wait");
    };
    assert_eq!(token.token().expose(), "token-1");
}

#[tokio::test]
async fn an_expired_token_is_fetched_again() {
    let f = Fixture::new(HOUR);
    assert_eq!(f.token().await, "token-1");
    f.manual.advance(HOUR);
    assert_eq!(f.token().await, "token-2");
    assert_eq!(f.fetches(), 2);
}

#[tokio::test]
async fn past_the_hard_limit_callers_wait_for_a_new_token() {
    let f = Fixture::new(HOUR);
    f.token().await;
    // The hard limit is 30 s before expiry: the old token is no longer served.
    f.manual.advance(HOUR - Duration::from_secs(29));
    assert_eq!(f.token().await, "token-2");
}

#[tokio::test]
async fn past_the_hard_limit_a_failing_refresh_leaves_the_unexpired_token_served_not_an_error() {
    let f = Fixture::new(HOUR);
    f.token().await;
    f.push(Err(hard_error()));
    f.push(Err(hard_error()));
    // 20 s before expiry: past the hard limit, and the refresh fails.
    f.manual.advance(HOUR - Duration::from_secs(20));
    assert_eq!(f.token().await, "token-1");
    assert_eq!(f.fetches(), 2);
    // No failure is remembered, but the backoff holds: no new request for a while...
    f.manual.advance(Duration::from_secs(5));
    assert_eq!(f.token().await, "token-1");
    assert_eq!(f.fetches(), 2);
    // ...and once the token has expired, callers get the error.
    f.manual.advance(Duration::from_secs(30));
    assert!(f.get(&["scope"]).await.unwrap_err().is_authentication());
    assert_eq!(f.fetches(), 3);
}

/// Hangs while its gate is shut, then issues tokens through the script.
#[derive(Debug)]
struct Gated(Arc<Script>, Arc<AtomicBool>);

#[async_trait]
impl TokenFetcher for Gated {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        if self.1.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.0.fetch(request).await
    }
}

#[tokio::test(start_paused = true)]
async fn past_the_hard_limit_a_slow_refresh_makes_callers_wait_half_a_second_at_most() {
    let f = Fixture::new(HOUR);
    let shut = Arc::new(AtomicBool::new(false));
    let credential = f.cache.credential(
        CacheIdentity::new("Gated"),
        Gated(f.script.clone(), shut.clone()),
    );
    credential.get_token(&["s"], None).await.unwrap();
    shut.store(true, Ordering::SeqCst);
    f.manual.advance(HOUR - Duration::from_secs(20));
    let started = crate::system::monotonic_now();
    let token = credential.get_token(&["s"], None).await.unwrap();
    assert_eq!(token.token().expose(), "token-1");
    assert_eq!(started.elapsed(), STALE_WAIT);
    // The refresh keeps going; the next caller joins it for the same bounded time.
    let token = credential.get_token(&["s"], None).await.unwrap();
    assert_eq!(token.token().expose(), "token-1");
    assert_eq!(started.elapsed(), 2 * STALE_WAIT);
}

#[tokio::test]
async fn in_the_refresh_window_the_old_token_comes_at_once_and_one_refresh_runs_in_the_background()
{
    let f = Fixture::new(HOUR);
    f.token().await;
    // Refresh is due 5 minutes before expiry.
    f.manual.advance(56 * MIN);
    for _ in 0..10 {
        let Poll::Ready(Ok(token)) = poll_once(f.credential.get_token(&["scope"], None)) else {
            panic!("a caller in the refresh window must not wait");
        };
        assert_eq!(token.token().expose(), "token-1");
    }
    settle().await;
    assert_eq!(f.fetches(), 2, "exactly one background refresh");
    assert_eq!(f.token().await, "token-2");
    settle().await;
    assert_eq!(f.fetches(), 2);
}

#[tokio::test]
async fn a_failed_refresh_keeps_serving_the_valid_token_and_backs_off() {
    let f = Fixture::new(HOUR);
    f.token().await;
    f.push(Err(hard_error()));
    f.manual.advance(56 * MIN);
    assert_eq!(f.token().await, "token-1");
    settle().await;
    assert_eq!(f.fetches(), 2);

    // Within the 30 s backoff: the old token, no new attempt.
    f.manual.advance(Duration::from_secs(20));
    assert_eq!(f.token().await, "token-1");
    settle().await;
    assert_eq!(f.fetches(), 2);

    // After it: another background attempt, which succeeds.
    f.manual.advance(Duration::from_secs(11));
    assert_eq!(f.token().await, "token-1");
    settle().await;
    assert_eq!(f.fetches(), 3);
    assert_eq!(f.token().await, "token-3");
}

#[tokio::test]
async fn a_failure_past_expiry_is_returned() {
    let f = Fixture::new(HOUR);
    f.token().await;
    f.push(Err(hard_error()));
    f.manual.advance(2 * HOUR);
    let err = f.get(&["scope"]).await.unwrap_err();
    assert!(err.is_authentication());
    assert_eq!(f.fetches(), 2);
}

#[tokio::test]
async fn a_failure_is_remembered_for_the_cooldown_then_retried() {
    let f = Fixture::new(HOUR);
    f.push(Err(hard_error()));
    assert!(f.get(&["scope"]).await.is_err());
    // New callers within the cool-down get the same error without a request.
    assert!(f.get(&["scope"]).await.is_err());
    assert_eq!(f.fetches(), 1);
    f.manual.advance(Duration::from_millis(1001));
    assert_eq!(f.token().await, "token-2");
}

#[tokio::test]
async fn throttling_is_remembered_for_its_retry_after() {
    let f = Fixture::new(HOUR);
    f.push(Err(Error::new(ErrorKind::Throttled, "Test", "slow down")
        .with_retry_after(Duration::from_secs(10))));
    assert!(f.get(&["scope"]).await.unwrap_err().is_throttled());
    f.manual.advance(Duration::from_secs(9));
    assert!(f.get(&["scope"]).await.unwrap_err().is_throttled());
    assert_eq!(f.fetches(), 1);
    f.manual.advance(Duration::from_secs(2));
    assert_eq!(f.token().await, "token-2");
}

#[tokio::test]
async fn a_source_can_ask_for_its_failure_to_be_remembered_longer() {
    let f = Fixture::new(HOUR);
    f.push(Err(
        Error::unavailable("Test", "no endpoint").with_retry_after(Duration::from_secs(30))
    ));
    assert!(f.get(&["scope"]).await.unwrap_err().is_unavailable());
    f.manual.advance(Duration::from_secs(29));
    assert!(f.get(&["scope"]).await.unwrap_err().is_unavailable());
    assert_eq!(f.fetches(), 1);
    f.manual.advance(Duration::from_secs(2));
    assert_eq!(f.token().await, "token-2");
}

#[tokio::test]
async fn the_cooldown_can_be_disabled() {
    let f = Fixture::with_cache(HOUR, |b| b.failure_cooldown(Duration::ZERO));
    f.push(Err(hard_error()));
    assert!(f.get(&["scope"]).await.is_err());
    assert_eq!(f.token().await, "token-2");
}

#[tokio::test]
async fn claims_bypass_the_cache_and_store_the_new_token() {
    let f = Fixture::new(HOUR);
    assert_eq!(f.token().await, "token-1");
    let options = TokenRequestOptions::default()
        .with_claims(r#"{"access_token":{"nbf":{"essential":true}}}"#);
    let token = f
        .credential
        .get_token(&["scope"], Some(&options))
        .await
        .unwrap();
    assert_eq!(token.token().expose(), "token-2");
    assert_eq!(f.script.requests.lock()[1].claims(), options.claims());
    // The token fetched for the challenge replaces the cached one.
    assert_eq!(f.token().await, "token-2");
    assert_eq!(f.fetches(), 2);
}

#[tokio::test]
async fn scopes_are_keyed_as_a_set() {
    let f = Fixture::new(HOUR);
    let a = f.get(&["b", "a"]).await.unwrap();
    let b = f.get(&["a", "b"]).await.unwrap();
    let c = f.get(&["a", "b", "a"]).await.unwrap();
    assert_eq!(a.token(), b.token());
    assert_eq!(a.token(), c.token());
    assert_eq!(f.fetches(), 1);
    // The fetcher sees them sorted and de-duplicated.
    assert_eq!(f.script.requests.lock()[0].scopes(), ["a", "b"]);
    // A different set is a different token.
    f.get(&["a"]).await.unwrap();
    assert_eq!(f.fetches(), 2);
    // Many scopes (beyond the inline buffer) work the same way.
    let many = ["f", "e", "d", "c", "b", "a", "a"];
    f.get(&many).await.unwrap();
    f.get(&["a", "b", "c", "d", "e", "f"]).await.unwrap();
    assert_eq!(f.fetches(), 3);
}

#[tokio::test]
async fn tenants_and_cae_are_part_of_the_key() {
    let f = Fixture::new(HOUR);
    let t1 = TokenRequestOptions::default().with_tenant_id("tenant-1");
    let t2 = TokenRequestOptions::default().with_tenant_id("tenant-2");
    let cae = TokenRequestOptions::default().with_enable_cae(true);
    let scopes = ["scope"];
    let get = |o| f.credential.get_token(&scopes, o);
    let a = get(Some(&t1)).await.unwrap();
    let b = get(Some(&t2)).await.unwrap();
    let c = get(Some(&cae)).await.unwrap();
    let d = get(None).await.unwrap();
    assert_eq!(f.fetches(), 4);
    let values: std::collections::HashSet<_> = [&a, &b, &c, &d]
        .iter()
        .map(|t| t.token().expose().to_owned())
        .collect();
    assert_eq!(values.len(), 4);
    assert_eq!(get(Some(&t1)).await.unwrap().token(), a.token());
    assert_eq!(get(Some(&cae)).await.unwrap().token(), c.token());
    assert_eq!(f.fetches(), 4);
    let requests = f.script.requests.lock();
    assert_eq!(requests[0].tenant_id(), Some("tenant-1"));
    assert!(requests[2].enable_cae());
}

#[derive(Debug)]
struct FixedTenant(Arc<Script>);

#[async_trait]
impl TokenFetcher for FixedTenant {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        self.0.fetch(request).await
    }
    fn resolve_tenant<'a>(&'a self, _requested: &'a str) -> Result<Option<&'a str>, Error> {
        Ok(None)
    }
}

#[tokio::test]
async fn a_source_with_a_fixed_tenant_shares_one_token_across_requested_tenants() {
    let f = Fixture::new(HOUR);
    let credential = f
        .cache
        .credential(CacheIdentity::new("Fixed"), FixedTenant(f.script.clone()));
    let t1 = TokenRequestOptions::default().with_tenant_id("tenant-1");
    let a = credential.get_token(&["s"], Some(&t1)).await.unwrap();
    let b = credential.get_token(&["s"], None).await.unwrap();
    assert_eq!(a.token(), b.token());
    assert_eq!(f.fetches(), 1);
}

#[tokio::test]
async fn a_ten_minute_token_is_not_refetched_on_every_call() {
    let f = Fixture::new(10 * MIN);
    for _ in 0..9 {
        assert_eq!(f.token().await, "token-1");
        f.manual.advance(Duration::from_secs(30));
    }
    settle().await;
    assert_eq!(f.fetches(), 1, "nothing before half of its life");
    // At 5 minutes (half its life) a refresh starts.
    f.manual.advance(Duration::from_secs(30));
    assert_eq!(f.token().await, "token-1");
    settle().await;
    assert_eq!(f.fetches(), 2);
    assert_eq!(f.token().await, "token-2");
}

#[tokio::test]
async fn returned_tokens_carry_the_caches_refresh_time() {
    let f = Fixture::new(HOUR);
    let token = f.get(&["s"]).await.unwrap();
    assert_eq!(token.refresh_on(), Some(START + 55 * MIN));
}

#[tokio::test]
async fn the_front_copy_is_replaced_when_the_token_changes() {
    let f = Fixture::new(HOUR);
    assert_eq!(f.token().await, "token-1");
    assert_eq!(f.token().await, "token-1"); // now in this thread's front cache
    let options = TokenRequestOptions::default().with_claims("{}");
    f.credential
        .get_token(&["scope"], Some(&options))
        .await
        .unwrap();
    assert_eq!(f.token().await, "token-2");
}

#[test]
fn stored_tokens_get_jittered_refresh_times_within_bounds() {
    let f = Fixture::with_cache(HOUR, |b| {
        b.max_jitter(Duration::from_secs(60)).jitter_seed(7)
    });
    let ideal = START + 55 * MIN;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let entry = f
            .credential
            .partition
            .entry(&KeyView::new(&["s"], None, false));
        let token = f
            .credential
            .partition
            .store(&entry, AccessToken::new("t", START + HOUR));
        let refresh_on = token.refresh_on().unwrap();
        assert!(
            refresh_on <= ideal && refresh_on >= ideal - MIN,
            "{refresh_on}"
        );
        seen.insert(refresh_on);
    }
    assert!(seen.len() > 100, "jitter varies per token");
}

#[tokio::test]
async fn credentials_with_equal_identities_share_tokens_and_different_ones_do_not() {
    let f = Fixture::new(HOUR);
    let same = f
        .cache
        .credential_arc(CacheIdentity::new("Test"), f.script.clone());
    let other = f.cache.credential_arc(
        CacheIdentity::new("Test").with("client_id", "x"),
        f.script.clone(),
    );
    let secret_a = f.cache.credential_arc(
        CacheIdentity::new("Test").with_secret(b"a"),
        f.script.clone(),
    );
    let secret_b = f.cache.credential_arc(
        CacheIdentity::new("Test").with_secret(b"b"),
        f.script.clone(),
    );
    let t = f.get(&["s"]).await.unwrap();
    assert_eq!(
        same.get_token(&["s"], None).await.unwrap().token(),
        t.token()
    );
    assert_eq!(f.fetches(), 1);
    other.get_token(&["s"], None).await.unwrap();
    secret_a.get_token(&["s"], None).await.unwrap();
    secret_b.get_token(&["s"], None).await.unwrap();
    assert_eq!(f.fetches(), 4);
}

#[tokio::test]
async fn a_credential_created_again_finds_the_token_of_the_one_before() {
    // The anti-pattern of a new credential per request still costs one request in all.
    let f = Fixture::new(HOUR);
    for _ in 0..5 {
        let credential = f
            .cache
            .credential_arc(CacheIdentity::new("PerRequest"), f.script.clone());
        assert_eq!(
            credential
                .get_token(&["s"], None)
                .await
                .unwrap()
                .token()
                .expose(),
            "token-1"
        );
    }
    assert_eq!(f.fetches(), 1);
}

#[tokio::test]
async fn partitions_with_no_valid_token_and_no_credential_are_swept() {
    let f = Fixture::new(HOUR);
    for i in 0..SWEEP_THRESHOLD {
        let identity = CacheIdentity::new("Ephemeral").with("n", i.to_string());
        let credential = f.cache.credential_arc(identity, f.script.clone());
        credential.get_token(&["s"], None).await.unwrap();
    }
    assert_eq!(f.cache.inner.partitions.lock().len(), SWEEP_THRESHOLD + 1);
    // Their tokens expire; the next new partition sweeps them (the fixture's own credential
    // is still in use, so its partition stays).
    f.manual.advance(2 * HOUR);
    let _new = f
        .cache
        .credential_arc(CacheIdentity::new("New"), f.script.clone());
    assert_eq!(f.cache.inner.partitions.lock().len(), 2);
}

#[test]
fn without_a_runtime_the_caller_drives_the_fetch() {
    let f = Fixture::new(HOUR);
    let token = block_on(f.credential.get_token(&["s"], None)).unwrap();
    assert_eq!(token.token().expose(), "token-1");
    assert_eq!(
        block_on(f.credential.get_token(&["s"], None))
            .unwrap()
            .token()
            .expose(),
        "token-1"
    );
    // In the refresh window there is nowhere to run a background refresh: the old token is
    // served until its hard limit, then the caller fetches.
    f.manual.advance(56 * MIN);
    assert_eq!(
        block_on(f.credential.get_token(&["s"], None))
            .unwrap()
            .token()
            .expose(),
        "token-1"
    );
    assert_eq!(f.fetches(), 1);
    f.manual.advance(4 * MIN);
    assert_eq!(
        block_on(f.credential.get_token(&["s"], None))
            .unwrap()
            .token()
            .expose(),
        "token-2"
    );
}

/// A minimal executor, to call the cache from outside any tokio runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn sort_dedup_keeps_distinct_sorted_values() {
    let mut v = ["c", "a", "b", "a", "c"];
    let n = sort_dedup(&mut v);
    assert_eq!(&v[..n], ["a", "b", "c"]);
    let mut one = ["x"];
    assert_eq!(sort_dedup(&mut one), 1);
    let mut none: [&str; 0] = [];
    assert_eq!(sort_dedup(&mut none), 0);
}

#[test]
fn identity_debug_hides_the_secret_digest() {
    let identity = CacheIdentity::new("ClientSecretCredential")
        .with("client_id", "c")
        .with_secret(b"pw");
    let printed = format!("{identity:?}");
    assert!(
        printed.contains("<redacted>") && printed.contains("client_id"),
        "{printed}"
    );
}

/// Hangs on its first fetch, then issues tokens.
#[derive(Debug)]
struct HangsOnce(Arc<Script>, AtomicBool);

#[async_trait]
impl TokenFetcher for HangsOnce {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        if !self.1.swap(true, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.0.fetch(request).await
    }
}

#[test]
fn without_a_runtime_a_dropped_caller_abandons_its_fetch_and_the_next_caller_starts_over() {
    let f = Fixture::new(HOUR);
    let credential = f.cache.credential(
        CacheIdentity::new("HangsOnce"),
        HangsOnce(f.script.clone(), AtomicBool::new(false)),
    );
    // The first caller drives the fetch itself (no runtime) and is dropped while it hangs.
    assert!(poll_once(credential.get_token(&["s"], None)).is_pending());
    // Nothing is left "fetching": the next caller fetches and gets a token.
    let token = block_on(credential.get_token(&["s"], None)).unwrap();
    assert_eq!(token.token().expose(), "token-1");
}

/// Panics on its first fetch, then issues tokens.
#[derive(Debug)]
struct PanicsOnce(Arc<Script>, AtomicBool);

#[async_trait]
impl TokenFetcher for PanicsOnce {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        if !self.1.swap(true, Ordering::SeqCst) {
            panic!("bug in a token source");
        }
        self.0.fetch(request).await
    }
}

#[tokio::test]
async fn a_panicking_source_is_a_failed_fetch_not_a_hang() {
    let f = Fixture::new(HOUR);
    let credential = f.cache.credential(
        CacheIdentity::new("PanicsOnce"),
        PanicsOnce(f.script.clone(), AtomicBool::new(false)),
    );
    let err = credential.get_token(&["s"], None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(err.to_string().contains("panicked"), "{err}");
    // Remembered for the cool-down like any failure, then tried again.
    assert!(credential.get_token(&["s"], None).await.is_err());
    f.manual.advance(Duration::from_secs(2));
    assert_eq!(
        credential
            .get_token(&["s"], None)
            .await
            .unwrap()
            .token()
            .expose(),
        "token-1"
    );
}

#[test]
fn without_a_runtime_a_panicking_source_is_a_failed_fetch_too() {
    let f = Fixture::new(HOUR);
    let credential = f.cache.credential(
        CacheIdentity::new("PanicsOnce"),
        PanicsOnce(f.script.clone(), AtomicBool::new(false)),
    );
    assert!(
        block_on(credential.get_token(&["s"], None))
            .unwrap_err()
            .to_string()
            .contains("panicked")
    );
    f.manual.advance(Duration::from_secs(2));
    assert!(block_on(credential.get_token(&["s"], None)).is_ok());
}

#[tokio::test]
async fn invalidate_forgets_tokens_and_failures() {
    let f = Fixture::new(HOUR);
    assert_eq!(f.token().await, "token-1");
    assert_eq!(f.token().await, "token-1"); // also in this thread's front copy
    f.credential.invalidate();
    assert_eq!(f.token().await, "token-2");
    f.push(Err(hard_error()));
    f.credential.invalidate();
    assert!(f.get(&["scope"]).await.is_err());
    f.credential.invalidate(); // the remembered failure goes too
    assert_eq!(f.token().await, "token-4");
}

#[tokio::test]
async fn a_fetch_running_when_the_cache_is_invalidated_stores_nothing() {
    let f = Fixture::new(HOUR);
    let gate = Arc::new(tokio::sync::Notify::new());
    #[derive(Debug)]
    struct Gated(Arc<Script>, Arc<tokio::sync::Notify>);
    #[async_trait]
    impl TokenFetcher for Gated {
        async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
            self.1.notified().await;
            self.0.fetch(request).await
        }
    }
    let gated = f.cache.credential(
        CacheIdentity::new("Gated"),
        Gated(f.script.clone(), gate.clone()),
    );
    let waiter = tokio::spawn(async move { gated.get_token(&["s"], None).await });
    settle().await;
    let gated_again = f.cache.credential(
        CacheIdentity::new("Gated"),
        Gated(f.script.clone(), gate.clone()),
    );
    gated_again.invalidate();
    gate.notify_one();
    // The waiter gets the token fetched for it...
    assert_eq!(waiter.await.unwrap().unwrap().token().expose(), "token-1");
    // ...but it was not kept.
    gate.notify_one();
    assert_eq!(
        gated_again
            .get_token(&["s"], None)
            .await
            .unwrap()
            .token()
            .expose(),
        "token-2"
    );
}

// ---- hardening: each test below failed before its fix -----------------------------------------

/// Issues one scripted token, whatever the request.
#[derive(Debug)]
struct Issues(Mutex<Vec<AccessToken>>, AtomicUsize);

#[async_trait]
impl TokenFetcher for Issues {
    async fn fetch(&self, _request: &TokenRequest) -> Result<AccessToken, Error> {
        self.1.fetch_add(1, Ordering::SeqCst);
        let mut tokens = self.0.lock();
        if tokens.len() > 1 {
            Ok(tokens.remove(0))
        } else {
            Ok(tokens[0].clone())
        }
    }
}

#[tokio::test]
async fn a_cooldown_longer_than_five_minutes_with_a_retry_after_is_remembered_not_a_panic() {
    // `clamp(cooldown, 5 min)` panicked when the cool-down exceeded its maximum; the flight
    // ended without recording the failure and the next caller fetched again at once.
    let f = Fixture::with_cache(HOUR, |b| b.failure_cooldown(10 * MIN));
    f.push(Err(Error::new(ErrorKind::Throttled, "Test", "slow down")
        .with_retry_after(Duration::from_secs(30))));
    let first = f.get(&["scope"]).await.unwrap_err();
    assert_eq!(first.kind(), ErrorKind::Throttled);
    // Remembered for the (longer) configured cool-down: no new request.
    f.manual.advance(9 * MIN);
    assert_eq!(
        f.get(&["scope"]).await.unwrap_err().kind(),
        ErrorKind::Throttled
    );
    assert_eq!(f.fetches(), 1);
    f.manual.advance(2 * MIN);
    assert_eq!(f.token().await, "token-2");
}

#[tokio::test]
async fn a_panic_after_the_fetch_is_a_remembered_failure_not_a_refetch_loop() {
    let f = Fixture::new(HOUR);
    let credential = f
        .cache
        .credential_arc(CacheIdentity::new(PANIC_AFTER_FETCH), f.script.clone());
    let error = credential.get_token(&["s"], None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Other);
    assert!(error.to_string().contains("panicked"), "{error}");
    // The failure is remembered for the cool-down like any other: one fetch, not a loop.
    assert!(credential.get_token(&["s"], None).await.is_err());
    assert_eq!(f.fetches(), 1);
}

#[tokio::test]
async fn a_panic_after_a_claims_fetch_is_an_error_and_stores_nothing() {
    let f = Fixture::new(HOUR);
    let credential = f
        .cache
        .credential_arc(CacheIdentity::new(PANIC_AFTER_FETCH), f.script.clone());
    let claims = TokenRequestOptions::default().with_claims("{}");
    let error = credential
        .get_token(&["s"], Some(&claims))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("panicked"), "{error}");
}

#[tokio::test]
async fn a_claims_fetch_running_when_the_cache_is_invalidated_stores_nothing() {
    let f = Fixture::new(HOUR);
    let gate = Arc::new(tokio::sync::Notify::new());
    #[derive(Debug)]
    struct Gated(Arc<Script>, Arc<tokio::sync::Notify>);
    #[async_trait]
    impl TokenFetcher for Gated {
        async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
            self.1.notified().await;
            self.0.fetch(request).await
        }
    }
    let gated = f.cache.credential(
        CacheIdentity::new("GatedClaims"),
        Gated(f.script.clone(), gate.clone()),
    );
    let claims = TokenRequestOptions::default().with_claims("{}");
    let waiter = {
        let gated = gated.clone();
        tokio::spawn(async move { gated.get_token(&["s"], Some(&claims)).await })
    };
    settle().await;
    gated.invalidate();
    gate.notify_one();
    assert_eq!(waiter.await.unwrap().unwrap().token().expose(), "token-1");
    // The claims token fetched before the invalidation was not kept.
    gate.notify_one();
    assert_eq!(
        gated
            .get_token(&["s"], None)
            .await
            .unwrap()
            .token()
            .expose(),
        "token-2"
    );
}

#[tokio::test]
async fn an_absurd_refresh_hint_does_not_overflow_the_deadlines() {
    let manual = ManualClock::new(START);
    let cache = TokenCache::builder()
        .clock(manual.clock())
        .max_jitter(Duration::from_secs(60))
        .build();
    let far_past = time::Date::MIN.midnight().assume_utc();
    let far_future = time::Date::MAX.midnight().assume_utc();
    let tokens = vec![
        AccessToken::new("hint-in-the-far-past", START + HOUR).with_refresh_on(far_past),
        AccessToken::new("expiry-in-the-far-future", far_future),
        AccessToken::new("both", far_future).with_refresh_on(far_past),
    ];
    for token in tokens {
        let name = token.token().expose().to_owned();
        let credential = cache.credential(
            CacheIdentity::new(name.clone()),
            Issues(Mutex::new(vec![token]), AtomicUsize::new(0)),
        );
        let got = credential.get_token(&["s"], None).await.unwrap();
        assert_eq!(got.token().expose(), name);
        // Cached (a second call is a hit) and due for refresh no sooner than the floor.
        let refresh_on = got.refresh_on().unwrap();
        assert!(
            refresh_on >= START + Duration::from_secs(48),
            "{name}: {refresh_on}"
        );
        assert!(refresh_on <= got.expires_on(), "{name}");
    }
}

#[tokio::test]
async fn a_token_expired_on_arrival_is_served_for_the_cooldown_instead_of_refetched_per_call() {
    let f = Fixture::new(HOUR);
    f.push(Ok(Duration::ZERO));
    assert_eq!(f.token().await, "token-1");
    for _ in 0..10 {
        assert_eq!(f.token().await, "token-1");
    }
    assert_eq!(
        f.fetches(),
        1,
        "one request per cool-down, not one per call"
    );
    f.manual.advance(Duration::from_secs(1));
    assert_eq!(f.token().await, "token-2");
}
