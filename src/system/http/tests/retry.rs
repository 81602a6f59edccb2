//! The retry loop against scripted outcomes.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use super::{exact, response};
use crate::system::http::retry::{AttemptLimits, retry_loop};
use crate::system::http::{HttpError, HttpErrorKind, HttpResponse, RetryPolicy};
use crate::system::monotonic_now;
fn transport_error(kind: HttpErrorKind) -> HttpError {
    HttpError::new(kind, "fake failure".to_owned())
}

/// Runs the retry loop over a scripted transport; returns the outcome and each attempt's
/// timeout.
async fn run(
    policy: &RetryPolicy,
    mut script: impl FnMut(u32) -> Result<HttpResponse, HttpError>,
) -> (Result<HttpResponse, HttpError>, Vec<Duration>) {
    let timeouts = RefCell::new(Vec::new());
    let outcome = retry_loop(
        policy,
        Duration::from_secs(30),
        false,
        "fake:80/",
        |limits| {
            let mut timeouts = timeouts.borrow_mut();
            timeouts.push(limits.head);
            let outcome = script(u32::try_from(timeouts.len()).unwrap());
            async move { outcome }
        },
    )
    .await;
    (outcome, timeouts.into_inner())
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_exact_backoff_until_success() {
    let policy = exact(RetryPolicy::default());
    let (outcome, _) = run(&policy, |n| {
        Ok(response(if n < 3 { 500 } else { 200 }, &[]))
    })
    .await;
    let response = outcome.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.attempts(), 3);
    assert_eq!(response.elapsed(), Duration::from_millis(800 + 1600));
}

#[tokio::test(start_paused = true)]
async fn retry_after_replaces_the_backoff_as_a_floor() {
    let script = |n| {
        Ok(match n {
            1 => response(503, &[("retry-after", "2")]),
            _ => response(200, &[]),
        })
    };
    let (outcome, _) = run(&exact(RetryPolicy::default()), script).await;
    let response = outcome.unwrap();
    assert_eq!((response.status(), response.attempts()), (200, 2));
    assert_eq!(response.elapsed(), Duration::from_secs(2));
    // With the default throttle jitter, up to min(max(2 s, 800 ms), 10 s) more on top.
    let (outcome, _) = run(&RetryPolicy::default(), script).await;
    let elapsed = outcome.unwrap().elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed <= Duration::from_secs(4),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_above_the_maximum_returns_the_response_at_once() {
    let policy = RetryPolicy::default().with_max_retry_after(Duration::from_secs(60));
    let (outcome, timeouts) = run(&policy, |_| Ok(response(429, &[("retry-after", "120")]))).await;
    let response = outcome.unwrap();
    assert_eq!((response.status(), response.attempts()), (429, 1));
    assert_eq!(response.elapsed(), Duration::ZERO);
    assert_eq!(response.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(timeouts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn non_retryable_status_is_returned_after_one_attempt() {
    let (outcome, timeouts) = run(&RetryPolicy::default(), |_| Ok(response(400, &[]))).await;
    assert_eq!(outcome.unwrap().attempts(), 1);
    assert_eq!(timeouts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn persistent_server_errors_stop_after_max_retries() {
    let policy = exact(RetryPolicy::default().with_max_retries(3));
    let (outcome, _) = run(&policy, |_| Ok(response(500, &[]))).await;
    let response = outcome.unwrap();
    assert_eq!((response.status(), response.attempts()), (500, 4));
    assert_eq!(response.elapsed(), Duration::from_millis(800 + 1600 + 3200));
}

#[tokio::test(start_paused = true)]
async fn a_fixed_schedule_status_is_retried_on_its_own_schedule() {
    // IMDS-like: 3 quick retries in general, but 410 every 10 s up to 8 times.
    let policy = exact(
        RetryPolicy::default()
            .with_max_retries(3)
            .with_budget(Duration::from_secs(120))
            .with_fixed_schedule(410, Duration::from_secs(10), 8),
    );
    let (outcome, _) = run(&policy, |_| Ok(response(410, &[]))).await;
    let gone = outcome.unwrap();
    assert_eq!((gone.status(), gone.attempts()), (410, 9));
    assert_eq!(gone.elapsed(), Duration::from_secs(80));
    // Other statuses keep the general curve.
    let (outcome, _) = run(&policy, |_| Ok(response(500, &[]))).await;
    assert_eq!(outcome.unwrap().attempts(), 4);
    // A Retry-After on the status still wins.
    let calls = RefCell::new(0);
    let (outcome, _) = run(&policy, |_| {
        *calls.borrow_mut() += 1;
        if *calls.borrow() == 1 {
            Ok(response(410, &[("Retry-After", "3")]))
        } else {
            Ok(response(200, &[]))
        }
    })
    .await;
    assert_eq!(outcome.unwrap().elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_small_budget_stops_the_retries_early() {
    let policy = exact(
        RetryPolicy::default()
            .with_initial_delay(Duration::from_secs(1))
            .with_budget(Duration::from_millis(2500)),
    );
    let (outcome, _) = run(&policy, |_| Ok(response(503, &[]))).await;
    let response = outcome.unwrap();
    // Waits 1 s, then the 2 s wait would overrun the budget.
    assert_eq!((response.status(), response.attempts()), (503, 2));
    assert_eq!(response.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn each_attempt_timeout_is_cut_to_the_budget_left() {
    let policy = exact(
        RetryPolicy::default()
            .with_max_retries(5)
            .with_initial_delay(Duration::from_secs(1))
            .with_budget(Duration::from_secs(12)),
    );
    let timeouts = RefCell::new(Vec::new());
    let outcome = retry_loop(
        &policy,
        Duration::from_secs(4),
        false,
        "fake:80/",
        |limits| {
            timeouts.borrow_mut().push(limits);
            let timeout = limits.head;
            async move {
                tokio::time::sleep(timeout).await;
                Err(transport_error(HttpErrorKind::Timeout))
            }
        },
    )
    .await;
    // 0-4 attempt, 4-5 wait, 5-9 attempt, 9-11 wait, 11-12 attempt (1 s left), stop.
    let error = outcome.unwrap_err();
    assert_eq!(error.kind(), HttpErrorKind::Timeout);
    assert_eq!(error.attempts(), 3);
    assert_eq!(error.elapsed(), Duration::from_secs(12));
    let limits = |head, total| AttemptLimits {
        head: Duration::from_secs(head),
        total: Duration::from_secs(total),
    };
    assert_eq!(
        timeouts.into_inner(),
        vec![limits(4, 12), limits(4, 7), limits(1, 1)]
    );
}

#[tokio::test(start_paused = true)]
async fn transport_errors_are_retried_only_when_enabled() {
    let flaky = |n| {
        if n < 3 {
            Err(transport_error(HttpErrorKind::ConnectionRefused))
        } else {
            Ok(response(200, &[]))
        }
    };
    let on = exact(RetryPolicy::default());
    let response = run(&on, flaky).await.0.unwrap();
    assert_eq!((response.status(), response.attempts()), (200, 3));
    assert_eq!(response.elapsed(), Duration::from_millis(2400));

    let off = RetryPolicy::default().with_retry_transport_errors(false);
    let error = run(&off, flaky).await.0.unwrap_err();
    assert_eq!(error.kind(), HttpErrorKind::ConnectionRefused);
    assert_eq!((error.attempts(), error.elapsed()), (1, Duration::ZERO));

    // A body that is too large will be too large again.
    let (outcome, timeouts) = run(&on, |_| Err(transport_error(HttpErrorKind::BodyTooLarge))).await;
    assert_eq!(outcome.unwrap_err().attempts(), 1);
    assert_eq!(timeouts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn transport_errors_stop_after_max_retries() {
    let policy = exact(RetryPolicy::default().with_max_retries(2));
    let error = run(&policy, |_| Err(transport_error(HttpErrorKind::Io)))
        .await
        .0
        .unwrap_err();
    assert_eq!(
        (error.attempts(), error.elapsed()),
        (3, Duration::from_millis(2400))
    );
    assert!(
        error.to_string().ends_with("after 3 attempts (2.4 s)"),
        "{error}"
    );
}

/// The IMDS policy's shape (the managed identity credential's own is private).
#[tokio::test(start_paused = true)]
async fn a_retry_after_is_a_floor_and_the_jitter_goes_on_top() {
    fastrand::seed(11);
    let policy = RetryPolicy::managed_identity();
    let mut waits = Vec::new();
    for _ in 0..200 {
        let (outcome, _) = run(&policy, |n| {
            Ok(match n {
                1 => response(429, &[("retry-after", "2")]),
                _ => response(200, &[]),
            })
        })
        .await;
        waits.push(outcome.unwrap().elapsed());
    }
    let (min, max) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
    assert!(
        *min >= Duration::from_secs(2),
        "sent before Retry-After: {min:?}"
    );
    assert!(*max <= Duration::from_secs(4), "{max:?}");
    // Throttled clients do not all come back at the same instant.
    assert!(*max - *min >= Duration::from_secs(1), "{min:?}..{max:?}");
}

/// A token bucket, as IMDS throttles: `rate` per second, `burst` at once, 429 with
/// `Retry-After: 1` beyond it.
struct Bucket {
    tokens: f64,
    last: tokio::time::Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    fn take(&mut self, now: tokio::time::Instant) -> bool {
        let refill = (now - self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_throttled_start_up_herd_is_served_within_one_and_a_half_times_n_over_rate() {
    // Issue 17: 200 processes start together against an IMDS allowing 20 requests a second
    // (burst 5). Serving them all takes 10 s; every one must get its token within 15 s,
    // and none may come back before the Retry-After it was given.
    fastrand::seed(17);
    let start = monotonic_now();
    let bucket = Arc::new(parking_lot::Mutex::new(Bucket {
        tokens: 5.0,
        last: start,
        rate: 20.0,
        burst: 5.0,
    }));
    let policy = RetryPolicy::managed_identity();
    let mut herd = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let bucket = bucket.clone();
        let policy = policy.clone();
        herd.spawn(async move {
            let not_before = parking_lot::Mutex::new(start);
            let outcome = retry_loop(
                &policy,
                Duration::from_secs(10),
                true,
                "imds:80/",
                |_limits| {
                    let now = monotonic_now();
                    assert!(now >= *not_before.lock(), "sent before its Retry-After");
                    let served = bucket.lock().take(now);
                    let answer = if served {
                        response(200, &[])
                    } else {
                        *not_before.lock() = now + Duration::from_secs(1);
                        response(429, &[("retry-after", "1")])
                    };
                    async move { Ok(answer) }
                },
            )
            .await;
            let response = outcome.unwrap();
            (
                response.status(),
                response.attempts(),
                monotonic_now() - start,
            )
        });
    }
    let mut last = Duration::ZERO;
    let mut requests = 0;
    while let Some(joined) = herd.join_next().await {
        let (status, attempts, done) = joined.unwrap();
        assert_eq!(status, 200, "a call the budget could have served failed");
        last = last.max(done);
        requests += attempts;
    }
    assert!(
        last <= Duration::from_secs(15),
        "the last token took {last:?}"
    );
    assert!(requests < 2000, "{requests} requests");
}

#[tokio::test(start_paused = true)]
async fn a_refused_local_connection_is_final_and_a_remote_one_is_retried() {
    let policy = exact(RetryPolicy::default());
    // (the endpoint, whether a refusal is final there (loopback), the failure, attempts made,
    // time taken)
    let cases = [
        (
            "127.0.0.1:80/",
            true,
            HttpErrorKind::ConnectionRefused,
            1,
            Some(Duration::ZERO),
        ),
        (
            "10.0.0.1:80/",
            false,
            HttpErrorKind::ConnectionRefused,
            4,
            None,
        ),
        // Other transport failures of a local endpoint are still retried.
        ("127.0.0.1:80/", true, HttpErrorKind::Timeout, 4, None),
    ];
    for (endpoint, refusal_is_final, kind, attempts, elapsed) in cases {
        let error = retry_loop(
            &policy,
            Duration::from_secs(30),
            refusal_is_final,
            endpoint,
            |_| async { Err(transport_error(kind)) },
        )
        .await
        .unwrap_err();
        assert_eq!(error.attempts(), attempts, "{endpoint} {kind:?}");
        if let Some(elapsed) = elapsed {
            assert_eq!(error.elapsed(), elapsed, "{endpoint} {kind:?}");
        }
    }
}

fn dropped() -> HttpError {
    let mut error = transport_error(HttpErrorKind::Io);
    error.dropped = true;
    error
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_is_retried_once_at_once_then_on_the_curve() {
    let policy = exact(RetryPolicy::default());
    // Dropped once: the retry follows at once.
    let (outcome, _) = run(&policy, |n| {
        if n < 2 {
            Err(dropped())
        } else {
            Ok(response(200, &[]))
        }
    })
    .await;
    let response = outcome.unwrap();
    assert_eq!(
        (response.attempts(), response.elapsed()),
        (2, Duration::ZERO)
    );
    // Dropped every time: at once, then 800 ms, 1.6 s (the curve from its start).
    let error = run(&policy, |_| Err(dropped())).await.0.unwrap_err();
    assert_eq!(
        (error.attempts(), error.elapsed()),
        (4, Duration::from_millis(800 + 1600))
    );
    // Other broken connections back off from the first retry.
    let error = run(&policy, |_| Err(transport_error(HttpErrorKind::Io)))
        .await
        .0
        .unwrap_err();
    assert_eq!(
        (error.attempts(), error.elapsed()),
        (4, Duration::from_millis(800 + 1600 + 3200))
    );
    // No retries means none, at once or not.
    let error = run(&RetryPolicy::none(), |_| Err(dropped()))
        .await
        .0
        .unwrap_err();
    assert_eq!(error.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_until_the_budget_runs_out_not_max_retries() {
    let policy = exact(
        RetryPolicy::default()
            .with_max_retries(2)
            .with_initial_delay(Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(4))
            .with_budget(Duration::from_secs(30)),
    );
    let (outcome, _) = run(&policy, |_| Ok(response(429, &[]))).await;
    let throttled = outcome.unwrap();
    // Waits of 1, 2, 4, 4, 4, 4, 4 and 4 s: attempts at 0, 1, 3, 7, 11, ... 27 s; the next
    // would start past the 30 s budget.
    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.attempts(), 9, "{throttled:?}");
    assert_eq!(throttled.elapsed(), Duration::from_secs(27));
    // Server errors keep the count.
    let (outcome, _) = run(&policy, |_| Ok(response(503, &[]))).await;
    assert_eq!(outcome.unwrap().attempts(), 3);
    // No retries means none.
    let (outcome, _) = run(&RetryPolicy::none(), |_| Ok(response(429, &[]))).await;
    assert_eq!(outcome.unwrap().attempts(), 1);
    // A 429 that is not in the retry statuses is not retried.
    let no_429 = policy.clone().with_retry_statuses([503]);
    let (outcome, _) = run(&no_429, |_| Ok(response(429, &[]))).await;
    assert_eq!(outcome.unwrap().attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_throttled_retry_is_never_a_busy_loop() {
    let policy = exact(
        RetryPolicy::default()
            .with_initial_delay(Duration::ZERO)
            .with_budget(Duration::from_secs(2)),
    );
    for headers in [&[("retry-after", "0")][..], &[]] {
        let (outcome, _) = run(&policy, |_| Ok(response(429, headers))).await;
        let throttled = outcome.unwrap();
        // One attempt every 100 ms at most.
        assert!(throttled.attempts() <= 20, "{throttled:?}");
        assert!(throttled.attempts() >= 15, "{throttled:?}");
    }
}
