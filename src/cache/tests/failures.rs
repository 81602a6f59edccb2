//! Failed fetches and refreshes, cool-downs, panics, and tokens with absurd times.

use super::*;

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

#[tokio::test(start_paused = true)]
async fn past_the_hard_limit_a_slow_refresh_makes_callers_wait_half_a_second_at_most() {
    let f = Fixture::new(HOUR);
    let shut = Arc::new(AtomicBool::new(false));
    let credential = f.wrapped("Shuttable", Before::HangWhileShut(shut.clone()));
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
    f.assert_refreshed_in_background("token-1", 3).await;
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

/// Pushes `failure`: the first caller gets it, and so does a caller `remembered` later,
/// without a new request; a caller at `retried` fetches again.
async fn assert_failure_remembered(
    f: &Fixture,
    failure: Error,
    remembered: Duration,
    retried: Duration,
) {
    let kind = failure.kind();
    f.push(Err(failure));
    assert_eq!(f.get(&["scope"]).await.unwrap_err().kind(), kind);
    f.manual.advance(remembered);
    assert_eq!(f.get(&["scope"]).await.unwrap_err().kind(), kind);
    assert_eq!(f.fetches(), 1);
    f.manual.advance(retried - remembered);
    assert_eq!(f.token().await, "token-2");
}

#[tokio::test]
async fn a_failure_is_remembered_for_the_cooldown_then_retried() {
    let f = Fixture::new(HOUR);
    // The default cool-down is a second.
    assert_failure_remembered(
        &f,
        hard_error(),
        Duration::ZERO,
        Duration::from_millis(1001),
    )
    .await;
}

#[tokio::test]
async fn throttling_is_remembered_for_its_retry_after() {
    let f = Fixture::new(HOUR);
    let throttled = Error::new(ErrorKind::Throttled, "Test", "slow down")
        .with_retry_after(Duration::from_secs(10));
    let (remembered, retried) = (Duration::from_secs(9), Duration::from_secs(11));
    assert_failure_remembered(&f, throttled, remembered, retried).await;
}

#[tokio::test]
async fn a_source_can_ask_for_its_failure_to_be_remembered_longer() {
    let f = Fixture::new(HOUR);
    let unavailable =
        Error::unavailable("Test", "no endpoint").with_retry_after(Duration::from_secs(30));
    let (remembered, retried) = (Duration::from_secs(29), Duration::from_secs(31));
    assert_failure_remembered(&f, unavailable, remembered, retried).await;
}

#[tokio::test]
async fn the_cooldown_can_be_disabled() {
    let f = Fixture::with_cache(HOUR, |b| b.failure_cooldown(Duration::ZERO));
    f.push(Err(hard_error()));
    assert!(f.get(&["scope"]).await.is_err());
    assert_eq!(f.token().await, "token-2");
}

#[tokio::test]
async fn a_panicking_source_is_a_failed_fetch_not_a_hang() {
    let f = Fixture::new(HOUR);
    let credential = f.wrapped("PanicsOnce", Before::PanicOnce(AtomicBool::new(false)));
    let err = credential.get_token(&["s"], None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(err.to_string().contains("panicked"), "{err}");
    // Remembered for the cool-down like any failure, then tried again.
    assert!(credential.get_token(&["s"], None).await.is_err());
    f.manual.advance(Duration::from_secs(2));
    assert_eq!(token_of(&credential, "s").await, "token-1");
}

#[test]
fn without_a_runtime_a_panicking_source_is_a_failed_fetch_too() {
    let f = Fixture::new(HOUR);
    let credential = f.wrapped("PanicsOnce", Before::PanicOnce(AtomicBool::new(false)));
    assert!(
        block_on(credential.get_token(&["s"], None))
            .unwrap_err()
            .to_string()
            .contains("panicked")
    );
    f.manual.advance(Duration::from_secs(2));
    assert!(block_on(credential.get_token(&["s"], None)).is_ok());
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
    let throttled = Error::new(ErrorKind::Throttled, "Test", "slow down")
        .with_retry_after(Duration::from_secs(30));
    // Remembered for the (longer) configured cool-down: no new request.
    assert_failure_remembered(&f, throttled, 9 * MIN, 11 * MIN).await;
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
    let gated = f.wrapped("GatedClaims", Before::Notified(gate.clone()));
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
    assert_eq!(token_of(&gated, "s").await, "token-2");
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
