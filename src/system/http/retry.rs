//! When to try an HTTP request again: [`RetryPolicy`], and the loop that applies it.

use std::future::Future;
use std::time::Duration;

use super::{HttpError, HttpErrorKind, HttpResponse};
use crate::setters::setters;
use crate::system::clock::monotonic_now;

/// No attempt starts with less time than this: it could not even connect.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(1);
/// No throttled retry comes sooner than this, whatever `Retry-After: 0` or a tiny initial delay
/// say: a 429 is retried until the budget runs out, and must not become a busy loop.
const MIN_THROTTLED_WAIT: Duration = Duration::from_millis(100);

/// When and how [`Http::send`](super::Http::send) retries.
///
/// - **Server errors and transport failures** (the statuses in
///   [`retry_statuses`](Self::with_retry_statuses) other than 429; refused, failed, broken or
///   timed-out connections when [`retry_transport_errors`](Self::with_retry_transport_errors))
///   are retried up to [`max_retries`](Self::with_max_retries) times. The delay before retry
///   `n` (0-based) is `min(initial_delay × 2ⁿ, max_delay)`, multiplied by a random factor in
///   `[1 − jitter, 1 + jitter]`.
/// - **Throttling** (429, when it is in the retry statuses) is retried until the budget runs
///   out, not a count of times: a herd of clients throttled together is served as fast as the
///   server allows, and none fails while the budget could still serve it. Without
///   `Retry-After` the delay is the same exponential curve, spread by a factor in
///   `[1 − throttle_jitter/2, 1 + throttle_jitter/2]`; a throttled retry never comes sooner
///   than 100 ms.
/// - **`Retry-After`** (or `retry-after-ms`) on a retried response is a floor: the retry is
///   never sent sooner. A random extra of up to `min(max(wait, initial_delay), max_delay) ×
///   throttle_jitter` goes on top (never below), so that clients told the same time do not all
///   come back at the same instant. A `Retry-After` longer than
///   [`max_retry_after`](Self::with_max_retry_after) is not waited for: the response comes
///   back at once so the caller can report (and remember) the throttling.
/// - **A dropped connection** (reset, or closed before the response head) is retried once at
///   once, then like any transport failure.
/// - **A refused connection to a loopback or link-local host** is not retried: nothing lies
///   between the client and that port, so the refusal is the answer (nothing listens there).
/// - No retry starts when its wait would overrun the [budget](Self::with_budget), and
///   `max_retries` of 0 turns every retry off, throttling included.
///
/// ```
/// use std::time::Duration;
/// use azure_credentials::system::RetryPolicy;
///
/// let imds = RetryPolicy::default()
///     .with_max_retries(5)
///     .with_retry_statuses([404, 410, 429, 500, 502, 503, 504])
///     .with_budget(Duration::from_secs(75));
/// assert_eq!(imds.max_retries(), 5);
/// assert_eq!(RetryPolicy::none().max_retries(), 0);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    max_retries: u32,
    initial_delay: Duration,
    max_delay: Duration,
    jitter: f64,
    throttle_jitter: f64,
    budget: Duration,
    retry_statuses: Vec<u16>,
    max_retry_after: Duration,
    retry_transport_errors: bool,
    /// Statuses retried on a fixed schedule of their own: (status, delay, max retries).
    fixed_schedules: Vec<(u16, Duration, u32)>,
}

impl Default for RetryPolicy {
    /// 3 retries, 800 ms doubling up to 10 s, jitter 0.2, throttle jitter 1, a 60 s budget,
    /// statuses 408, 429 (until the budget runs out), 500, 502, 503 and 504, `Retry-After`
    /// honoured up to 60 s, transport errors retried.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_delay: Duration::from_millis(800),
            max_delay: Duration::from_secs(10),
            jitter: 0.2,
            throttle_jitter: 1.0,
            budget: Duration::from_secs(60),
            retry_statuses: vec![408, 429, 500, 502, 503, 504],
            max_retry_after: Duration::from_secs(60),
            retry_transport_errors: true,
            fixed_schedules: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// The policy of every managed identity source, after Microsoft's IMDS guidance: 404, 408
    /// and 5xx up to four times on an exponential curve (1, 2, 4, 8 s, jittered); 429 until the
    /// budget runs out (IMDS allows about 20 requests a second per VM: a start-up herd of 200
    /// processes needs 10 s, and with the jitter on top of `Retry-After` all are served in
    /// about 12 s); 410 ("updating") every 10 s, up to 8 times; a `Retry-After` over 30 s
    /// not waited for; everything within 90 s.
    pub fn managed_identity() -> Self {
        RetryPolicy::default()
            .with_max_retries(4)
            .with_initial_delay(Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(8))
            .with_budget(Duration::from_secs(90))
            .with_retry_statuses([404, 408, 429].into_iter().chain(500..=599))
            // IMDS answers 410 while it updates, for up to 70 s.
            .with_fixed_schedule(410, Duration::from_secs(10), 8)
            .with_max_retry_after(Duration::from_secs(30))
    }

    /// The policy of the Entra ID credentials: the default, retrying throttling and server
    /// errors only (429, 500, 502, 503, 504) and broken connections: a 400 or 401 from Entra
    /// will not change by asking again.
    pub fn entra() -> Self {
        RetryPolicy::default().with_retry_statuses([429, 500, 502, 503, 504])
    }

    /// One attempt, no retries (e.g. an IMDS probe).
    pub fn none() -> Self {
        RetryPolicy::default().with_max_retries(0)
    }

    setters! {
        /// How many times to retry a server error or a transport failure after the first attempt.
        /// Throttling (429) is retried until the budget runs out instead; 0 turns every retry off.
        with_max_retries(max_retries: u32) => max_retries;

        /// The delay before the first retry; each later one doubles it.
        with_initial_delay(delay: Duration) => initial_delay;

        /// The longest computed delay (before jitter).
        with_max_delay(delay: Duration) => max_delay;

        /// The total time for all attempts and waits. Each attempt's time to the response head is
        /// cut to what is left, and so is the time its body may take; the first attempt always
        /// gets at least a millisecond.
        with_budget(budget: Duration) => budget;
    }

    /// The random spread of each delay, as a fraction: `0.2` multiplies each delay by a factor
    /// in `[0.8, 1.2]`. Clamped to `[0, 1]`; NaN means `0`.
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = fraction(jitter);
        self
    }

    /// The spread of server-directed and throttled waits, as a fraction (default 1): after a
    /// `Retry-After` of `wait`, a random extra of up to `min(max(wait, initial_delay),
    /// max_delay) × throttle_jitter` on top of it; after a 429 without one, the exponential
    /// delay times a factor in `[1 − throttle_jitter/2, 1 + throttle_jitter/2]`. Wide on
    /// purpose: clients throttled together must come back spread out, or they meet the limit
    /// together again. Clamped to `[0, 1]`; NaN means `0`, which makes these waits exact.
    pub fn with_throttle_jitter(mut self, jitter: f64) -> Self {
        self.throttle_jitter = fraction(jitter);
        self
    }

    /// The response statuses that are retried.
    pub fn with_retry_statuses(mut self, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.retry_statuses = statuses.into_iter().collect();
        self
    }

    setters! {
        /// The longest `Retry-After` that is waited for; a longer one ends the retries.
        with_max_retry_after(max: Duration) => max_retry_after;

        /// Whether connection failures, timeouts and broken connections are retried.
        with_retry_transport_errors(retry: bool) => retry_transport_errors;
    }

    /// Retries `status` every `delay` (or its `Retry-After`), up to `max_retries` times in all,
    /// instead of on the exponential curve: for a status that announces how long an outage
    /// lasts, such as IMDS's 410 ("updating, back within 70 seconds"). The status counts as
    /// retryable; the budget still bounds everything.
    pub fn with_fixed_schedule(mut self, status: u16, delay: Duration, max_retries: u32) -> Self {
        self.fixed_schedules.retain(|(s, _, _)| *s != status);
        self.fixed_schedules.push((status, delay, max_retries));
        self
    }

    /// How many times to retry after the first attempt.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The delay before the first retry.
    pub fn initial_delay(&self) -> Duration {
        self.initial_delay
    }

    /// The longest computed delay (before jitter).
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The random spread of each delay, as a fraction.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The spread of server-directed and throttled waits, as a fraction.
    pub fn throttle_jitter(&self) -> f64 {
        self.throttle_jitter
    }

    /// The total time for all attempts and waits.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// The response statuses that are retried.
    pub fn retry_statuses(&self) -> &[u16] {
        &self.retry_statuses
    }

    /// The longest `Retry-After` that is waited for.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// Whether transport errors are retried.
    pub fn retry_transport_errors(&self) -> bool {
        self.retry_transport_errors
    }

    /// The delay before retry `retry` (0-based) on the exponential curve, before jitter.
    fn curve(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_delay)
    }

    /// The computed delay before retry `retry` (0-based), jitter applied.
    fn delay(&self, retry: u32) -> Duration {
        scale(
            self.curve(retry),
            1.0 + self.jitter * (2.0 * random() - 1.0),
        )
    }

    /// The delay before retry `retry` (0-based) after a 429 without `Retry-After`.
    fn throttled_delay(&self, retry: u32) -> Duration {
        let factor = 1.0 + self.throttle_jitter * (random() - 0.5);
        scale(self.curve(retry), factor).max(MIN_THROTTLED_WAIT)
    }

    /// The random extra that goes on top of a `Retry-After` of `wait`.
    fn extra_after(&self, wait: Duration) -> Duration {
        let span = wait.max(self.initial_delay).min(self.max_delay);
        scale(span, self.throttle_jitter * random())
    }
}

/// A random number in `[0, 1)`.
fn random() -> f64 {
    fastrand::f64()
}

/// `duration × factor`, or `duration` when that is not a duration (NaN, negative, too long).
fn scale(duration: Duration, factor: f64) -> Duration {
    if factor == 1.0 {
        return duration;
    }
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor).unwrap_or(duration)
}

/// The time one attempt may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AttemptLimits {
    /// Until the response head has arrived.
    pub(super) head: Duration,
    /// In all, body included: what is left of the budget.
    pub(super) total: Duration,
}

/// Runs `attempt` until it yields a final outcome under `policy`. `attempt` gets its limits:
/// `head_timeout` to the response head and the rest of the budget in all, both cut to what is
/// left of the budget. With `refusal_is_final` (a loopback or link-local endpoint), a refused
/// connection is not retried.
pub(super) async fn retry_loop<F, Fut>(
    policy: &RetryPolicy,
    head_timeout: Duration,
    refusal_is_final: bool,
    endpoint: &str,
    mut attempt: F,
) -> Result<HttpResponse, HttpError>
where
    F: FnMut(AttemptLimits) -> Fut,
    Fut: Future<Output = Result<HttpResponse, HttpError>>,
{
    let start = monotonic_now();
    let budget = policy.budget;
    let mut attempts: u32 = 0;
    // Whether a dropped connection was already retried at once (that retry is off the curve).
    let mut retried_at_once = false;
    loop {
        let left = budget.saturating_sub(monotonic_now().saturating_duration_since(start));
        let limits = AttemptLimits {
            head: head_timeout.min(left).max(MIN_ATTEMPT_TIME),
            total: left.max(MIN_ATTEMPT_TIME),
        };
        attempts = attempts.saturating_add(1);
        let outcome = attempt(limits).await;
        let elapsed = monotonic_now().saturating_duration_since(start);
        // Retry only when the wait still leaves a useful slice of the budget for the attempt;
        // `room` is the longest wait that does.
        let room = budget.checked_sub(elapsed.saturating_add(MIN_ATTEMPT_TIME));
        let fits = |wait: Duration| room.is_some_and(|room| wait <= room);
        let retries_left = attempts <= policy.max_retries;
        // The position on the exponential curve: every retry so far but the one made at once.
        let curve_step = (attempts - 1).saturating_sub(u32::from(retried_at_once));
        let delay = match outcome {
            Ok(mut response) => {
                response.attempts = attempts;
                response.elapsed = elapsed;
                let status = response.status;
                let fixed = policy.fixed_schedules.iter().find(|(s, _, _)| *s == status);
                let throttled = status == 429 && fixed.is_none();
                let retryable = match fixed {
                    Some((_, _, max_retries)) => attempts <= *max_retries,
                    // Until the budget runs out, unless retries are off altogether.
                    None if throttled => {
                        policy.max_retries > 0 && policy.retry_statuses.contains(&status)
                    }
                    None => retries_left && policy.retry_statuses.contains(&status),
                };
                if !retryable {
                    return Ok(response);
                }
                let delay = match response.retry_after() {
                    Some(wait) if wait > policy.max_retry_after => {
                        tracing::debug!(
                            status,
                            attempt = attempts,
                            retry_after = ?wait,
                            %endpoint,
                            "HTTP Retry-After exceeds the policy's maximum; not retrying"
                        );
                        return Ok(response);
                    }
                    Some(wait) => {
                        let wait = if throttled {
                            wait.max(MIN_THROTTLED_WAIT)
                        } else {
                            wait
                        };
                        if !fits(wait) {
                            return Ok(response);
                        }
                        // Never sooner than asked; the jitter goes on top, within the budget.
                        let spare = room.unwrap_or_default().saturating_sub(wait);
                        wait.saturating_add(policy.extra_after(wait).min(spare))
                    }
                    None => match fixed {
                        Some((_, every, _)) => *every,
                        None if throttled => policy.throttled_delay(curve_step),
                        None => policy.delay(curve_step),
                    },
                };
                if !fits(delay) {
                    return Ok(response);
                }
                tracing::debug!(
                    status,
                    attempt = attempts,
                    ?delay,
                    %endpoint,
                    "retrying HTTP request"
                );
                delay
            }
            Err(mut error) => {
                error.attempts = attempts;
                error.elapsed = elapsed;
                if !policy.retry_transport_errors || !retries_left || !error.kind.is_transient() {
                    return Err(error);
                }
                if refusal_is_final && error.kind == HttpErrorKind::ConnectionRefused {
                    tracing::debug!(%endpoint, "a local endpoint refused the connection; not retrying");
                    return Err(error);
                }
                let delay = if error.dropped && !retried_at_once {
                    retried_at_once = true;
                    Duration::ZERO
                } else {
                    policy.delay(curve_step)
                };
                if !fits(delay) {
                    return Err(error);
                }
                tracing::debug!(
                    error = %error.kind,
                    attempt = attempts,
                    ?delay,
                    %endpoint,
                    "retrying HTTP request"
                );
                delay
            }
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// `value` clamped to `[0, 1]`, NaN as `0`.
fn fraction(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(policy: RetryPolicy) -> RetryPolicy {
        policy.with_jitter(0.0).with_throttle_jitter(0.0)
    }

    #[test]
    fn throttled_delays_spread_around_the_curve() {
        let policy = RetryPolicy::default().with_initial_delay(Duration::from_secs(2));
        let delays: Vec<_> = (0..1000).map(|_| policy.throttled_delay(0)).collect();
        let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(*min >= Duration::from_secs(1) && *max <= Duration::from_secs(3));
        assert!(
            *max - *min > Duration::from_millis(1500),
            "{min:?}..{max:?}"
        );
        let exact = policy.with_throttle_jitter(0.0);
        assert_eq!(exact.throttled_delay(1), Duration::from_secs(4));
        assert_eq!(exact.extra_after(Duration::from_secs(5)), Duration::ZERO);
    }

    #[test]
    fn delays_double_up_to_the_cap_and_jitter_stays_in_bounds() {
        let policy = exact(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(3)),
        );
        let delays: Vec<_> = (0..5).map(|n| policy.delay(n).as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 3000, 3000]);
        // Enormous retry numbers saturate instead of overflowing.
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(3));
        let unbounded = policy
            .clone()
            .with_max_delay(Duration::MAX)
            .with_jitter(1.0);
        let _ = unbounded.delay(200);

        let jittered = policy.with_jitter(0.2);
        for _ in 0..1000 {
            let d = jittered.delay(1);
            assert!(
                d >= Duration::from_millis(800) && d <= Duration::from_millis(1200),
                "{d:?}"
            );
        }
    }

    #[test]
    fn policy_defaults_and_setters() {
        let default = RetryPolicy::default();
        assert_eq!(default.max_retries(), 3);
        assert_eq!(default.initial_delay(), Duration::from_millis(800));
        assert_eq!(default.max_delay(), Duration::from_secs(10));
        assert_eq!(default.jitter(), 0.2);
        assert_eq!(default.throttle_jitter(), 1.0);
        assert_eq!(
            RetryPolicy::none()
                .with_throttle_jitter(f64::NAN)
                .throttle_jitter(),
            0.0
        );
        assert_eq!(
            RetryPolicy::none()
                .with_throttle_jitter(3.0)
                .throttle_jitter(),
            1.0
        );
        assert_eq!(default.budget(), Duration::from_secs(60));
        assert_eq!(default.retry_statuses(), [408, 429, 500, 502, 503, 504]);
        assert_eq!(default.max_retry_after(), Duration::from_secs(60));
        assert!(default.retry_transport_errors());
        assert_eq!(RetryPolicy::none().max_retries(), 0);
        assert_eq!(RetryPolicy::none().with_jitter(f64::NAN).jitter(), 0.0);
        assert_eq!(RetryPolicy::none().with_jitter(7.0).jitter(), 1.0);
        assert_eq!(RetryPolicy::none().with_jitter(-1.0).jitter(), 0.0);
    }
}
