//! UserTokenCredential: reading a user access token's expiry, serving it without a refresher,
//! refreshing it through the cache (ahead of expiry, single-flight, stale-on-error) and
//! proactively in the background.
//!
//! Time is a manual clock (and tokio's paused clock for the background task and timeouts);
//! nothing sleeps for real.

mod support;
use support::cache;
use support::jwt::user_token;
use support::wait::{paused_now, until};

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::watch;

use azure_credentials::system::ManualClock;
use azure_credentials::{
    AccessToken, Error, ErrorKind, TokenCache, TokenCredential, UserTokenCredential,
    UserTokenCredentialBuilder,
};

const T0: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);
const MINUTE: Duration = Duration::from_secs(60);

/// A refresher with scripted answers that counts its calls and can be held at its start.
#[derive(Clone)]
struct Script {
    replies: Arc<Mutex<VecDeque<Result<String, Error>>>>,
    calls: Arc<AtomicUsize>,
    open: Arc<watch::Sender<bool>>,
}

impl Script {
    fn new() -> Script {
        Script {
            replies: Arc::default(),
            calls: Arc::default(),
            open: Arc::new(watch::channel(true).0),
        }
    }

    fn push(&self, reply: Result<String, Error>) {
        self.replies.lock().push_back(reply);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn hold(&self) {
        self.open.send_replace(false);
    }

    fn release(&self) {
        self.open.send_replace(true);
    }

    fn refresher(
        &self,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<String, Error>> + Send>>
    + Send
    + Sync
    + 'static
    + use<> {
        let script = self.clone();
        move || {
            let script = script.clone();
            Box::pin(async move {
                script.calls.fetch_add(1, Ordering::SeqCst);
                let mut open = script.open.subscribe();
                let _ = open.wait_for(|open| *open).await;
                script
                    .replies
                    .lock()
                    .pop_front()
                    .expect("the refresher was called more often than scripted")
            })
        }
    }
}

async fn token_of(credential: &UserTokenCredential) -> Result<AccessToken, Error> {
    credential.get_token(&[], None).await
}

/// The value of the token `credential` returns now (which must be one).
async fn value_of(credential: &UserTokenCredential) -> String {
    token_of(credential)
        .await
        .unwrap()
        .token()
        .expose()
        .to_owned()
}

/// A user access token that expires `seconds` after [`T0`].
fn token_for(seconds: u64, marker: &str) -> String {
    user_token(T0 + Duration::from_secs(seconds), marker)
}

/// A token that expires in an hour, and the one that replaces it, expiring an hour later.
fn first_and_second() -> (String, String) {
    (token_for(3600, "first"), token_for(7200, "second"))
}

/// A current-thread runtime without timers (no `enable_time()`).
fn timerless_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Checks that `builder` is refused with an error saying `says`.
fn assert_refused(builder: UserTokenCredentialBuilder, says: &str) {
    let err = builder.build().unwrap_err();
    assert!(err.to_string().contains(says), "{says:?} not in: {err}");
}

/// Checks that `value`'s `Debug` shows `says` and nothing of the token `secret` past its
/// (shared) header.
fn assert_debug_hides(value: &impl std::fmt::Debug, secret: &str, says: &str) {
    let printed = format!("{value:?}");
    assert!(!printed.contains(&secret[40..]), "{printed}");
    assert!(printed.contains(says), "{printed}");
}

/// A refresher failure as the application's token service reports it.
fn service_error(kind: ErrorKind, message: &'static str) -> Error {
    Error::new(kind, "MyTokenService", message)
}

/// A manual clock at [`T0`] and a scripted refresher.
struct Fixture {
    manual: ManualClock,
    script: Script,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            manual: ManualClock::new(T0),
            script: Script::new(),
        }
    }

    /// A deterministic cache of its own on the manual clock.
    fn cache(&self) -> TokenCache {
        cache::deterministic(self.manual.clock())
    }

    /// A credential serving `value` without a refresher, on [`Fixture::cache`].
    fn without_refresher(&self, value: &str) -> UserTokenCredential {
        UserTokenCredential::builder()
            .token(value)
            .cache(self.cache())
            .build()
            .unwrap()
    }

    /// A credential serving `initial` first, refreshed proactively by the scripted refresher.
    fn proactive(&self, initial: &str) -> UserTokenCredential {
        self.builder()
            .token(initial)
            .refresh_proactively(true)
            .build()
            .unwrap()
    }

    /// A credential serving `initial` first, refreshed through the cache by the script.
    fn refreshing(&self, initial: &str) -> UserTokenCredential {
        self.builder().token(initial).build().unwrap()
    }

    /// A builder with the scripted refresher and [`Fixture::cache`].
    fn builder(&self) -> UserTokenCredentialBuilder {
        UserTokenCredential::builder()
            .refresher(self.script.refresher())
            .cache(self.cache())
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the token

#[test]
fn tokens_that_are_not_jwts_with_an_expiry_are_refused() {
    let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
    let valid = token_for(3600, "valid");
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "is empty"),
        ("  \n".to_owned(), "is empty"),
        (
            "opaque-token-value-not-a-jwt".to_owned(),
            "has 1 dot-separated part, a JWT has 3",
        ),
        ("header.payload".to_owned(), "has 2 dot-separated parts"),
        (format!("{valid}.extra"), "has 4 dot-separated parts"),
        (
            "eyJhbGciOiJub25lIn0.!!not*base64!!.sig".to_owned(),
            "payload is not base64url",
        ),
        (
            format!("eyJhbGciOiJub25lIn0.{}.sig", b64("just some text")),
            "payload is not a JSON object",
        ),
        (
            format!("eyJhbGciOiJub25lIn0.{}.sig", b64("[1,2,3]")),
            "payload is not a JSON object",
        ),
        (
            format!("eyJhbGciOiJub25lIn0.{}.sig", b64(r#"{"exp":"tomorrow"}"#)),
            "malformed claims",
        ),
        (
            format!("eyJhbGciOiJub25lIn0.{}.sig", b64(r#"{"exp":1.5e9}"#)),
            "malformed claims",
        ),
        (
            format!("eyJhbGciOiJub25lIn0.{}.sig", b64(r#"{"skypeid":"acs:x"}"#)),
            "has no exp (expiry) claim",
        ),
        (
            format!(
                "eyJhbGciOiJub25lIn0.{}.sig",
                b64(r#"{"exp":99999999999999}"#)
            ),
            "out of range",
        ),
        (format!("Bearer {valid}"), "starts with \"Bearer \""),
        (format!("{valid} trailing"), "contains whitespace"),
        // Not ASCII, with a character across the length of "Bearer ".
        (
            format!("Beareré{valid}"),
            "contains whitespace or characters a JWT cannot contain",
        ),
    ];
    for (token, expected) in &cases {
        let err = UserTokenCredential::new(token.as_str()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{token:?}");
        let printed = format!("{err} {err:?}");
        assert!(
            printed.starts_with("UserTokenCredential: the user access token "),
            "{printed}"
        );
        assert!(printed.contains(expected), "{token:?}: {printed}");
        for part in token.split(['.', ' ']).filter(|p| p.len() > 8) {
            assert!(!printed.contains(part), "the token is repeated: {printed}");
        }
    }
}

#[tokio::test]
async fn the_expiry_comes_from_the_exp_claim_and_scopes_are_ignored() {
    let f = Fixture::new();
    let exp = T0 + Duration::from_secs(24 * 3600);
    let value = user_token(exp, "static");
    let credential = f.without_refresher(&value);
    let token = token_of(&credential).await.unwrap();
    assert_eq!(token.expires_on(), exp);
    assert_eq!(token.token().expose(), value);
    assert_eq!(token.source(), "UserTokenCredential");
    let other = credential
        .get_token(&["https://communication.azure.com//.default", "chat"], None)
        .await
        .unwrap();
    assert_eq!(other.token(), token.token());
    assert_debug_hides(&credential, &value, "refresher: false");
}

#[tokio::test]
async fn without_a_refresher_an_expired_token_is_an_error() {
    let f = Fixture::new();
    let exp = T0 + Duration::from_secs(3600);
    let value = user_token(exp, "expiring");
    let credential = f.without_refresher(&value);
    // Served until 30 s before it expires...
    f.manual.set(exp - Duration::from_secs(31));
    assert_eq!(value_of(&credential).await, value);
    // ...then a clear error, never the token.
    f.manual.set(exp - Duration::from_secs(30));
    for _ in 0..2 {
        let err = token_of(&credential).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        let printed = format!("{err} {err:?}");
        assert!(
            printed.contains("expired at 2030-01-01 1:00:00"),
            "{printed}"
        );
        assert!(printed.contains("no refresher is configured"), "{printed}");
        assert!(!printed.contains(&value[40..]), "{printed}");
        f.manual.advance(Duration::from_secs(3600));
    }

    // A token that has already expired is refused at once.
    let err = UserTokenCredential::builder()
        .token(value.as_str())
        .cache(cache::deterministic(
            ManualClock::new(exp + Duration::from_secs(1)).clock(),
        ))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("there is no refresher"), "{err}");
}

#[test]
fn incomplete_configurations_are_refused() {
    assert_refused(
        UserTokenCredential::builder(),
        "neither a token nor a refresher",
    );

    let f = Fixture::new();
    let token = token_for(3600, "x");
    assert_refused(
        UserTokenCredential::builder()
            .token(token.as_str())
            .cache(f.cache())
            .refresh_proactively(true),
        "needs a refresher",
    );

    // Not inside a tokio runtime: nowhere to run the proactive task.
    assert_refused(
        UserTokenCredential::builder()
            .token(token.as_str())
            .refresher(Script::new().refresher())
            .refresh_proactively(true),
        "needs a tokio runtime",
    );

    assert_refused(
        UserTokenCredential::builder()
            .refresher(Script::new().refresher())
            .refresh_timeout(Duration::ZERO),
        "timeout",
    );

    let builder = UserTokenCredential::builder()
        .token(token.as_str())
        .refresher(Script::new().refresher());
    assert_debug_hides(&builder, &token, "refresher: true");
}

// ---------------------------------------------------------------------------------------------
// Refreshing through the cache

#[tokio::test]
async fn the_token_is_refreshed_ahead_of_expiry_while_callers_keep_the_current_one() {
    let f = Fixture::new();
    let (first, second) = first_and_second();
    f.script.push(Ok(second.clone()));
    let credential = f.refreshing(&first);

    // The initial token first, without a refresh; the cache plans one 5 minutes before expiry.
    let token = token_of(&credential).await.unwrap();
    assert_eq!(token.token().expose(), first);
    assert_eq!(token.refresh_on(), Some(T0 + 55 * MINUTE));
    f.manual.advance(54 * MINUTE);
    assert_eq!(value_of(&credential).await, first);
    assert_eq!(f.script.calls(), 0);

    // At the refresh time the caller still gets the current token at once, and one refresh
    // starts in the background.
    f.manual.advance(MINUTE);
    f.script.hold();
    assert_eq!(value_of(&credential).await, first);
    until(|| f.script.calls() == 1).await;
    assert_eq!(value_of(&credential).await, first);
    f.script.release();
    until(|| {
        credential
            .get_token(&[], None)
            .now_or_never()
            .is_some_and(|r| r.unwrap().token().expose() == second)
    })
    .await;
    assert_eq!(f.script.calls(), 1);
    let token = token_of(&credential).await.unwrap();
    assert_eq!(token.expires_on(), T0 + Duration::from_secs(7200));
    assert_eq!(token.refresh_on(), Some(T0 + 115 * MINUTE));
}

#[tokio::test]
async fn a_day_long_token_is_refreshed_at_half_its_lifetime() {
    let f = Fixture::new();
    let credential = f
        .builder()
        .token(token_for(24 * 3600, "day"))
        .build()
        .unwrap();
    let token = token_of(&credential).await.unwrap();
    assert_eq!(
        token.refresh_on(),
        Some(T0 + Duration::from_secs(12 * 3600))
    );
}

#[tokio::test]
async fn without_an_initial_token_the_first_caller_asks_the_refresher() {
    let f = Fixture::new();
    let fresh = token_for(3600, "fresh");
    f.script.push(Ok(fresh.clone()));
    let credential = f.builder().build().unwrap();
    assert_eq!(
        f.script.calls(),
        0,
        "nothing is fetched before it is needed"
    );
    assert_eq!(value_of(&credential).await, fresh);
    assert_eq!(value_of(&credential).await, fresh);
    assert_eq!(f.script.calls(), 1);

    // An initial token that has expired, or expires within 30 s, is not served: the refresher
    // is asked.
    for stale in [T0 - Duration::from_secs(1), T0 + Duration::from_secs(20)] {
        let f = Fixture::new();
        f.script.push(Ok(fresh.clone()));
        let credential = f
            .builder()
            .token(user_token(stale, "stale"))
            .build()
            .unwrap();
        assert_eq!(value_of(&credential).await, fresh);
        assert_eq!(f.script.calls(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_callers_past_expiry_cause_one_refresh() {
    let f = Fixture::new();
    let (first, second) = first_and_second();
    f.script.push(Ok(second.clone()));
    let credential = f.refreshing(&first);
    assert_eq!(value_of(&credential).await, first);

    // Past the hard limit: nobody may have the old token, everybody waits for the refresh.
    f.manual.advance(Duration::from_secs(3600 - 20));
    f.script.hold();
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let credential = credential.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                token_of(&credential).await
            })
        })
        .collect();
    while f.script.calls() == 0 {
        tokio::task::yield_now().await;
    }
    // Give every caller time to join the refresh in flight before it completes.
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    f.script.release();
    for caller in callers {
        let token = caller.await.unwrap().unwrap();
        assert_eq!(token.token().expose(), second);
    }
    assert_eq!(f.script.calls(), 1);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_current_token_until_it_expires() {
    let f = Fixture::new();
    let (first, second) = first_and_second();
    let credential = f.refreshing(&first);
    token_of(&credential).await.unwrap();

    // In the refresh window the refresher fails: callers keep the current token.
    f.manual.advance(55 * MINUTE);
    f.script
        .push(Err(service_error(ErrorKind::Io, "connection refused")));
    assert_eq!(value_of(&credential).await, first);
    until(|| f.script.calls() == 1).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    // Within the backoff (30 s) nobody asks the refresher again.
    f.manual.advance(Duration::from_secs(20));
    assert_eq!(value_of(&credential).await, first);
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(f.script.calls(), 1);

    // After it, the next caller starts another refresh, which succeeds.
    f.manual.advance(Duration::from_secs(11));
    f.script.push(Ok(second.clone()));
    assert_eq!(value_of(&credential).await, first);
    until(|| f.script.calls() == 2).await;
    until(|| {
        credential
            .get_token(&[], None)
            .now_or_never()
            .is_some_and(|r| r.is_ok_and(|t| t.token().expose() == second))
    })
    .await;

    // Past the hard limit of the new token with a failing refresher: the token is served
    // until it expires (stale on error)...
    f.manual.set(T0 + Duration::from_secs(7200 - 10));
    f.script.push(Err(service_error(
        ErrorKind::Throttled,
        "too many requests",
    )));
    assert_eq!(value_of(&credential).await, second);
    assert_eq!(f.script.calls(), 3);
    // ...and once it has expired, callers get the refresher's error.
    f.manual.set(T0 + Duration::from_secs(7200 + 1));
    f.script.push(Err(service_error(
        ErrorKind::Throttled,
        "too many requests",
    )));
    let err = token_of(&credential).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.credential(), "MyTokenService");
    assert_eq!(f.script.calls(), 4);
}

#[tokio::test]
async fn what_the_refresher_returns_is_checked_like_the_initial_token() {
    let f = Fixture::new();
    let cases: Vec<(Result<String, Error>, ErrorKind, &str)> = vec![
        (
            Ok("opaque-refreshed-secret".to_owned()),
            ErrorKind::Other,
            "the token the refresher returned is not a JWT",
        ),
        (
            Ok(user_token(T0 - Duration::from_secs(60), "old")),
            ErrorKind::Other,
            "the token the refresher returned expired at",
        ),
        (
            Ok(token_for(20, "nearly-expired")),
            ErrorKind::Other,
            "(or expires within 30 s)",
        ),
        (
            Err(service_error(ErrorKind::Authentication, "user signed out")),
            ErrorKind::Authentication,
            "MyTokenService: user signed out",
        ),
    ];
    for (reply, kind, expected) in cases {
        let f = Fixture::new();
        let secret = reply.as_ref().ok().cloned();
        f.script.push(reply);
        let credential = f.builder().build().unwrap();
        let err = token_of(&credential).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        let printed = format!("{err} {err:?}");
        assert!(printed.contains(expected), "{printed}");
        if let Some(secret) = secret {
            let tail = &secret[secret.len().saturating_sub(20)..];
            assert!(!printed.contains(tail), "the token is repeated: {printed}");
        }
    }

    // Any error type will do; it becomes the cause.
    let credential = UserTokenCredential::builder()
        .refresher(|| async { Err::<String, _>(std::io::Error::other("connection reset")) })
        .cache(f.cache())
        .build()
        .unwrap();
    let err = token_of(&credential).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(err.to_string().contains("the refresher failed"), "{err}");
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "connection reset"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refresher_that_hangs_times_out() {
    let f = Fixture::new();
    f.script.hold();
    let credential = f
        .builder()
        .refresh_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = paused_now();
    let err = token_of(&credential).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(
        err.to_string().contains("did not return within 5 s"),
        "{err}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

/// A runtime built without `enable_time()` cannot time the refresher out; the refresh still
/// happens (without the timeout) instead of panicking inside tokio.
#[test]
fn a_runtime_without_timers_refreshes_without_the_timeout() {
    let f = Fixture::new();
    let fresh = token_for(3600, "timerless");
    f.script.push(Ok(fresh.clone()));
    let credential = f.builder().build().unwrap();
    let timerless = timerless_runtime();
    let token = timerless.block_on(token_of(&credential)).unwrap();
    assert_eq!(token.token().expose(), fresh);
    assert_eq!(f.script.calls(), 1);
    // And again, on another runtime without timers, after the token is due.
    let later = token_for(7200, "timerless-later");
    f.script.push(Ok(later.clone()));
    f.manual.advance(Duration::from_secs(3600));
    let another = timerless_runtime();
    let token = another.block_on(token_of(&credential)).unwrap();
    assert_eq!(token.token().expose(), later);
    assert_eq!(f.script.calls(), 2);

    // The proactive task needs timers: refused when the credential is built.
    let err = another
        .block_on(async { f.builder().refresh_proactively(true).build() })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("timers"), "{err}");
    assert!(err.fix().unwrap().contains("enable_time"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Proactive refresh in the background

/// Moves the manual clock and tokio's paused clock forward together, a minute at a time.
async fn pass_minutes(manual: &ManualClock, minutes: u32) {
    for _ in 0..minutes {
        manual.advance(MINUTE);
        tokio::time::sleep(MINUTE).await;
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_proactive_credential_refreshes_on_time_with_no_callers_and_stops_when_dropped() {
    let f = Fixture::new();
    let (first, second) = first_and_second();
    let third = token_for(10800, "third");
    f.script.push(Ok(second.clone()));
    f.script.push(Ok(third.clone()));
    let credential = f.proactive(&first);
    assert!(format!("{credential:?}").contains("refresh_proactively: true"));

    // Nobody calls get_token. Before the refresh time (55 min) nothing happens...
    pass_minutes(&f.manual, 54).await;
    assert_eq!(f.script.calls(), 0);
    // ...shortly after it, the task has refreshed.
    pass_minutes(&f.manual, 2).await;
    assert_eq!(f.script.calls(), 1);
    // A caller now gets the new token from the cache, without another refresh.
    assert_eq!(value_of(&credential).await, second);
    assert_eq!(f.script.calls(), 1);

    // And again at the new token's refresh time (1 h 55 min).
    pass_minutes(&f.manual, 58).await;
    assert_eq!(f.script.calls(), 1);
    pass_minutes(&f.manual, 2).await;
    assert_eq!(f.script.calls(), 2);
    assert_eq!(value_of(&credential).await, third);

    // Dropping the credential stops the task: the refresher (and what it holds) is released,
    // and no refresh happens any more.
    assert!(Arc::strong_count(&f.script.calls) > 1);
    drop(credential);
    pass_minutes(&f.manual, 1).await;
    assert_eq!(
        Arc::strong_count(&f.script.calls),
        1,
        "the task still holds the refresher"
    );
    pass_minutes(&f.manual, 180).await;
    assert_eq!(f.script.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_proactive_credential_keeps_trying_after_failures() {
    let f = Fixture::new();
    let (first, second) = first_and_second();
    for _ in 0..3 {
        f.script.push(Err(service_error(ErrorKind::Io, "offline")));
    }
    f.script.push(Ok(second.clone()));
    let credential = f.proactive(&first);
    // Refresh due at 55 min; failures are retried after the cache's 30 s backoff.
    pass_minutes(&f.manual, 56).await;
    assert!(f.script.calls() >= 2, "{}", f.script.calls());
    pass_minutes(&f.manual, 2).await;
    assert_eq!(f.script.calls(), 4);
    assert_eq!(value_of(&credential).await, second);
}

/// `FutureExt::now_or_never` without the futures crate.
trait NowOrNever: Future + Sized {
    fn now_or_never(self) -> Option<Self::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut this = std::pin::pin!(self);
        match this.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        }
    }
}

impl<F: Future> NowOrNever for F {}

/// Each user's credential is its own identity: one cache and one refresher shared by four
/// credentials still give four tokens, each served only to its own credential.
#[tokio::test]
async fn user_token_credentials_never_share_a_token_even_on_one_cache_with_one_refresher() {
    let clock = ManualClock::new(T0);
    let cache = cache::deterministic(clock.clock());
    let calls = Arc::new(AtomicUsize::new(0));
    let build = || {
        let calls = calls.clone();
        UserTokenCredential::builder()
            .refresher(move || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    Ok::<_, std::io::Error>(user_token(
                        T0 + time::Duration::HOUR,
                        &format!("user-{n}"),
                    ))
                }
            })
            .cache(cache.clone())
            .build()
            .unwrap()
    };
    let users: Vec<UserTokenCredential> = (0..4).map(|_| build()).collect();
    let mut tokens = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let token = user
            .get_token(&["https://vault.azure.net/.default"], None)
            .await
            .unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            i + 1,
            "user {i} got someone's cached token"
        );
        assert!(
            tokens
                .iter()
                .all(|t: &AccessToken| t.token() != token.token())
        );
        tokens.push(token);
    }
    for (user, token) in users.iter().zip(&tokens) {
        assert!(
            user.get_token(&["https://vault.azure.net/.default"], None)
                .await
                .unwrap()
                .token()
                == token.token()
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), users.len());
}
