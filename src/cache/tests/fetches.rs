//! Claims, invalidation, and callers outside any runtime.

use super::*;

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

#[test]
fn without_a_runtime_the_caller_drives_the_fetch() {
    let f = Fixture::new(HOUR);
    assert_eq!(block_on(token_of(&f.credential, "s")), "token-1");
    assert_eq!(block_on(token_of(&f.credential, "s")), "token-1");
    // In the refresh window there is nowhere to run a background refresh: the old token is
    // served until its hard limit, then the caller fetches.
    f.manual.advance(56 * MIN);
    assert_eq!(block_on(token_of(&f.credential, "s")), "token-1");
    assert_eq!(f.fetches(), 1);
    f.manual.advance(4 * MIN);
    assert_eq!(block_on(token_of(&f.credential, "s")), "token-2");
}

#[test]
fn without_a_runtime_a_dropped_caller_abandons_its_fetch_and_the_next_caller_starts_over() {
    let f = Fixture::new(HOUR);
    let credential = f.wrapped("HangsOnce", Before::HangOnce(AtomicBool::new(false)));
    // The first caller drives the fetch itself (no runtime) and is dropped while it hangs.
    assert!(poll_once(credential.get_token(&["s"], None)).is_pending());
    // Nothing is left "fetching": the next caller fetches and gets a token.
    assert_eq!(block_on(token_of(&credential, "s")), "token-1");
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
    let gated = f.wrapped("Gated", Before::Notified(gate.clone()));
    let waiter = tokio::spawn(async move { gated.get_token(&["s"], None).await });
    settle().await;
    let gated_again = f.wrapped("Gated", Before::Notified(gate.clone()));
    gated_again.invalidate();
    gate.notify_one();
    // The waiter gets the token fetched for it...
    assert_eq!(waiter.await.unwrap().unwrap().token().expose(), "token-1");
    // ...but it was not kept.
    gate.notify_one();
    assert_eq!(token_of(&gated_again, "s").await, "token-2");
}

/// A source that asks a person: each fetch waits `wait` of tokio time, then issues a token;
/// it asks the cache to stop fetches nobody waits for.
#[derive(Debug)]
struct AsksAPerson {
    clock: Clock,
    wait: Duration,
    started: AtomicUsize,
    finished: AtomicUsize,
}

#[async_trait]
impl TokenFetcher for AsksAPerson {
    async fn fetch(&self, _request: &TokenRequest) -> Result<AccessToken, Error> {
        self.started.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.wait).await;
        self.finished.fetch_add(1, Ordering::SeqCst);
        Ok(AccessToken::new("person", self.clock.now() + HOUR))
    }

    fn stop_when_abandoned(&self) -> bool {
        true
    }
}

#[tokio::test(start_paused = true)]
async fn a_fetch_that_asks_a_person_stops_when_its_callers_leave_but_a_background_refresh_goes_on()
{
    let manual = ManualClock::new(START);
    let cache = TokenCache::builder()
        .clock(manual.clock())
        .max_jitter(Duration::ZERO)
        .build();
    let source = Arc::new(AsksAPerson {
        clock: manual.clock(),
        wait: MIN,
        started: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
    });
    let credential = cache.credential(
        CacheIdentity::new("AsksAPerson"),
        SharedFetcher(source.clone()),
    );
    // The caller leaves after 10 s: the fetch is stopped.
    let left =
        tokio::time::timeout(Duration::from_secs(10), credential.get_token(&["s"], None)).await;
    assert!(left.is_err());
    tokio::time::sleep(2 * MIN).await;
    assert_eq!(source.started.load(Ordering::SeqCst), 1);
    assert_eq!(source.finished.load(Ordering::SeqCst), 0);
    // A caller who waits gets the token.
    credential.get_token(&["s"], None).await.unwrap();
    assert_eq!(source.finished.load(Ordering::SeqCst), 1);
    // In the refresh window nobody waits (the current token is served): the refresh goes on.
    manual.advance(56 * MIN);
    credential.get_token(&["s"], None).await.unwrap();
    tokio::time::sleep(2 * MIN).await;
    assert_eq!(source.started.load(Ordering::SeqCst), 3);
    assert_eq!(source.finished.load(Ordering::SeqCst), 2);
}

/// An `Arc` of a fetcher, as a fetcher (the test keeps a handle to count).
#[derive(Debug)]
struct SharedFetcher(Arc<AsksAPerson>);

#[async_trait]
impl TokenFetcher for SharedFetcher {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        self.0.fetch(request).await
    }

    fn stop_when_abandoned(&self) -> bool {
        self.0.stop_when_abandoned()
    }
}
