//! The clock seam: wall time for token expiry, monotonic time for timeouts and retries.
//!
//! Nothing else in the crate reads the time (`clippy.toml` bans it), so tests drive expiry with
//! a [`ManualClock`] and retries with tokio's paused time, and never sleep.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

use crate::{Error, ErrorKind};

/// Where the crate gets the current time: the system clock, or a [`ManualClock`] in tests.
///
/// Cloning is cheap. The default is the system clock.
#[derive(Clone, Default)]
pub struct Clock {
    kind: ClockKind,
}

#[derive(Clone, Default)]
enum ClockKind {
    #[default]
    System,
    Manual(Arc<AtomicI64>),
    /// `start` (Unix ns) plus the time tokio's clock has moved since `origin`.
    Tokio {
        start: i64,
        origin: tokio::time::Instant,
    },
}

impl Clock {
    /// The system's wall clock (what the cache uses unless told otherwise).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::system::Clock;
    ///
    /// let now = Clock::system().now();
    /// ```
    pub fn system() -> Self {
        Clock {
            kind: ClockKind::System,
        }
    }

    /// A clock that shows `start` now and then moves with tokio's clock: with tokio's time
    /// paused (`#[tokio::test(start_paused = true)]`, simulations), token expiry follows
    /// `tokio::time::advance` and auto-advance, in step with retries and timeouts. Read outside
    /// a runtime it panics, as tokio's clock does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use azure_credentials::system::Clock;
    /// use time::macros::datetime;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let clock = Clock::from_tokio_time(datetime!(2030-01-01 0:00 UTC));
    /// tokio::time::sleep(Duration::from_secs(3600)).await;
    /// assert_eq!(clock.now(), datetime!(2030-01-01 1:00 UTC));
    /// # }
    /// ```
    pub fn from_tokio_time(start: OffsetDateTime) -> Self {
        Clock {
            kind: ClockKind::Tokio {
                start: to_unix_nanos(start),
                origin: monotonic_now(),
            },
        }
    }

    /// The current time, precisely.
    pub fn now(&self) -> OffsetDateTime {
        match &self.kind {
            #[allow(clippy::disallowed_methods)] // the one place that reads the system clock
            ClockKind::System => OffsetDateTime::now_utc(),
            ClockKind::Manual(nanos) => from_unix_nanos(nanos.load(Ordering::Acquire)),
            ClockKind::Tokio { .. } => from_unix_nanos(self.unix_nanos()),
        }
    }

    /// Nanoseconds since the Unix epoch, cheaply: on Linux the system clock is read through
    /// `CLOCK_REALTIME_COARSE` (a few milliseconds of resolution, a fraction of the cost), which
    /// is all a token's expiry needs. The cache's hot path calls this on every hit.
    #[inline]
    pub(crate) fn unix_nanos(&self) -> i64 {
        match &self.kind {
            ClockKind::System => system_unix_nanos_coarse(),
            ClockKind::Manual(nanos) => nanos.load(Ordering::Acquire),
            ClockKind::Tokio { start, origin } => start.saturating_add(duration_nanos(
                monotonic_now().saturating_duration_since(*origin),
            )),
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ClockKind::System => f.write_str("Clock::System"),
            ClockKind::Manual(nanos) => f
                .debug_tuple("Clock::Manual")
                .field(&from_unix_nanos(nanos.load(Ordering::Acquire)))
                .finish(),
            ClockKind::Tokio { start, .. } => f
                .debug_struct("Clock::Tokio")
                .field("start", &from_unix_nanos(*start))
                .finish_non_exhaustive(),
        }
    }
}

/// The system clock at the resolution of its last tick, on Linux (see
/// [`super::unix::realtime_coarse_nanos`]): about 9 ns against 25-50 ns for the precise clock,
/// and millisecond resolution is plenty for token expiry.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn system_unix_nanos_coarse() -> i64 {
    super::unix::realtime_coarse_nanos().unwrap_or_else(system_unix_nanos_precise)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[inline]
fn system_unix_nanos_coarse() -> i64 {
    system_unix_nanos_precise()
}

#[inline]
fn system_unix_nanos_precise() -> i64 {
    #[allow(clippy::disallowed_methods)] // the one place that reads the system clock
    let now = std::time::SystemTime::now();
    match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// A clock that only moves when told to. Hand [`ManualClock::clock`] to the cache or a
/// credential builder, then [`advance`](ManualClock::advance) it.
///
/// ```
/// use std::time::Duration;
/// use azure_credentials::system::ManualClock;
///
/// let manual = ManualClock::new(time::macros::datetime!(2030-01-01 0:00 UTC));
/// let clock = manual.clock();
/// manual.advance(Duration::from_secs(90));
/// assert_eq!(clock.now(), time::macros::datetime!(2030-01-01 0:01:30 UTC));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock standing at `start` until it is moved (see the example above).
    pub fn new(start: OffsetDateTime) -> Self {
        ManualClock {
            nanos: Arc::new(AtomicI64::new(to_unix_nanos(start))),
        }
    }

    /// A [`Clock`] that reads this manual clock.
    pub fn clock(&self) -> Clock {
        Clock {
            kind: ClockKind::Manual(self.nanos.clone()),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.nanos.fetch_add(by, Ordering::AcqRel);
    }

    /// Sets the clock to `to` (which may be earlier: a wall clock can jump back).
    pub fn set(&self, to: OffsetDateTime) {
        self.nanos.store(to_unix_nanos(to), Ordering::Release);
    }

    /// The time the clock shows.
    pub fn now(&self) -> OffsetDateTime {
        from_unix_nanos(self.nanos.load(Ordering::Acquire))
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

/// Monotonic "now" for timeouts, retry budgets and elapsed times. This is tokio's clock, so
/// `tokio::time::pause` controls it in tests.
pub(crate) fn monotonic_now() -> tokio::time::Instant {
    #[allow(clippy::disallowed_methods)] // the one place that reads the monotonic clock
    tokio::time::Instant::now()
}

/// Runtimes seen without timers, by id; few, so a short list (oldest forgotten first).
static TIMERLESS_RUNTIMES: parking_lot::Mutex<Vec<tokio::runtime::Id>> =
    parking_lot::Mutex::new(Vec::new());
const TIMERLESS_RUNTIMES_KEPT: usize = 16;

/// Whether the current tokio runtime drives timers (was built with `enable_time`), so that
/// `tokio::time::timeout` can bound a caller's callback. Tokio offers no way to ask, and builds
/// no timer without a time driver but panics; so a timer is built under `catch_unwind` and a
/// runtime found without one is remembered (its one probe's panic message goes to the panic
/// hook, like every panic, and `credential` logs a warning once). Where panics abort the
/// process (`panic = "abort"`) there is no probing: timers are required there, as the
/// credentials' documentation says. Outside any tokio runtime: `false`.
pub(crate) fn timers_available(credential: &'static str) -> bool {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    if cfg!(panic = "abort") {
        return true;
    }
    let id = runtime.id();
    if TIMERLESS_RUNTIMES.lock().contains(&id) {
        return false;
    }
    let has_timer = std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO))).is_ok();
    if !has_timer {
        tracing::warn!(
            credential,
            "this tokio runtime has no timers (it was built without enable_time): callbacks run without their timeout"
        );
        let mut timerless = TIMERLESS_RUNTIMES.lock();
        if timerless.len() >= TIMERLESS_RUNTIMES_KEPT {
            timerless.remove(0);
        }
        timerless.push(id);
    }
    has_timer
}

/// Awaits `call`, a caller's callback, for at most `timeout` where the runtime has timers
/// ([`timers_available`]); where it has none (or outside a runtime, when a caller drives the
/// future itself) it runs unbounded. A timeout is [`ErrorKind::Timeout`]: `what` "did not
/// return within" the timeout, with `fix`.
pub(crate) async fn bounded_call<T>(
    credential: &'static str,
    timeout: Duration,
    call: impl Future<Output = Result<T, Error>>,
    what: &str,
    fix: &'static str,
) -> Result<T, Error> {
    if !timers_available(credential) {
        return call.await;
    }
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            credential,
            format!("{what} did not return within {} s", timeout.as_secs_f32()),
        )
        .with_fix(fix)),
    }
}

/// Nanoseconds since the Unix epoch, saturating outside what an `i64` holds (year 1677..2262).
pub(crate) fn to_unix_nanos(t: OffsetDateTime) -> i64 {
    let n = t.unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

/// The inverse of [`to_unix_nanos`].
pub(crate) fn from_unix_nanos(n: i64) -> OffsetDateTime {
    // Every i64 of nanoseconds is inside OffsetDateTime's range.
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A `Duration` as signed nanoseconds, saturating.
pub(crate) fn duration_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let manual = ManualClock::new(datetime!(2030-01-01 0:00 UTC));
        let clock = manual.clock();
        assert_eq!(clock.now(), datetime!(2030-01-01 0:00 UTC));
        manual.advance(Duration::from_secs(61));
        assert_eq!(clock.now(), datetime!(2030-01-01 0:01:01 UTC));
        assert_eq!(clock.unix_nanos(), to_unix_nanos(clock.now()));
        manual.set(datetime!(2029-12-31 23:00 UTC));
        assert_eq!(clock.now(), datetime!(2029-12-31 23:00 UTC));
    }

    #[test]
    fn system_clock_coarse_and_precise_agree() {
        let clock = Clock::system();
        let precise = to_unix_nanos(clock.now());
        let coarse = clock.unix_nanos();
        // The coarse clock lags by at most a scheduler tick or so.
        assert!(
            (precise - coarse).abs() < 1_000_000_000,
            "{precise} vs {coarse}"
        );
    }

    #[test]
    fn nanos_round_trip() {
        let t = datetime!(2031-05-06 7:08:09.123456789 UTC);
        assert_eq!(from_unix_nanos(to_unix_nanos(t)), t);
    }
}
