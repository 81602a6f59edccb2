//! Tokio's paused clock, and waiting for work spawned elsewhere without sleeping.

use std::time::Duration;

/// Tokio's clock. In a `#[tokio::test(start_paused = true)]` it moves only as tokio advances it
/// (timeouts, backoff, `Retry-After`), so the time a call waited can be counted exactly.
#[allow(clippy::disallowed_methods)]
pub fn paused_now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// Lets tasks on this runtime (a spawned caller, a background refresh) run until `done` holds;
/// fails the test if it does not within 10,000 turns. Works on a paused clock.
pub async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition not reached");
}

/// Waits for `condition` to come true through work on other threads or runtimes; fails the test
/// (rather than hanging it) if it has not after 30 s. Not for a paused clock.
pub async fn until_on_other_threads(mut condition: impl FnMut() -> bool) {
    let wait = async {
        while !condition() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("condition never became true");
}

/// The paused-clock time since `started`; fails the test, naming `what` and the time, unless it
/// lies in `range`.
#[track_caller]
pub fn assert_waited(
    started: tokio::time::Instant,
    range: impl std::ops::RangeBounds<Duration> + std::fmt::Debug,
    what: impl std::fmt::Display,
) -> Duration {
    let waited = started.elapsed();
    assert!(
        range.contains(&waited),
        "{what}: waited {waited:?}, expected {range:?}"
    );
    waited
}
