//! When a cached token is refreshed, until when it is served, and how long a failure is
//! remembered: pure arithmetic on Unix nanoseconds. Every input may be absurd (a provider's
//! `refresh_in` of minus a century, an expiry in the year 9999, a clock far off), so every
//! operation saturates and the results always satisfy
//! `now < refresh_at <= hard_limit < expires_on`.

use std::time::Duration;

use crate::system::duration_nanos;

/// Refresh this long before expiry (at most half the token's lifetime).
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Tokens living at least this long are refreshed at half their lifetime.
const HALF_LIFE_THRESHOLD: Duration = Duration::from_secs(2 * 60 * 60);
/// Stop serving a token this long before it expires (at most a tenth of its lifetime).
const HARD_MARGIN: Duration = Duration::from_secs(30);
/// Never schedule a refresh sooner than this after a fetch (at most half the lifetime), whatever
/// the provider says, so odd `refresh_in` values cannot cause a refresh storm.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// The longest a `Retry-After` keeps a failure remembered, or puts off the next background
/// refresh: a server asking for hours (or a garbled date in the year 9999) must not stop
/// refreshing while the token runs out.
pub(super) const MAX_FAILURE_MEMORY: Duration = Duration::from_secs(5 * 60);

/// The two deadlines of a cached token, in Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadlines {
    /// From here on a caller gets the token and starts one background refresh.
    pub(crate) refresh_at: i64,
    /// From here on the token is not served: callers wait for a new one.
    pub(crate) hard_limit: i64,
}

/// The share of the time until a token's refresh target over which refresh times are spread
/// (one over this): a quarter. It scales with the refresh interval, so 24-hour tokens of
/// processes started together refresh over three hours, one-hour tokens over fourteen minutes and
/// two-minute tokens over fifteen seconds, and each refresh draws anew, so processes drift
/// further apart with every refresh instead of refreshing in waves forever.
const SPREAD_DIVISOR: i64 = 4;

/// The deadlines of a token expiring at `expires`, received at `now`, with the provider's
/// refresh hint if any; `None` when the token has already expired by `now`.
///
/// The refresh *target* is the earliest of the hint, half the lifetime (tokens living two hours
/// or more) and five minutes before expiry (at most half the lifetime); never sooner than a
/// minute (at most half the lifetime) after the fetch. The refresh time is drawn uniformly
/// from a window a quarter of the time until the target wide (at most `max_jitter`), centred
/// on the target where that leaves at least two fifths of the lifetime (up to five minutes)
/// before expiry, and ending at it otherwise. So on average a token is refreshed at its target
/// (two requests per lifetime for tokens refreshed at half-life) and never closer to expiry
/// than that margin. `draw` is a uniformly random `u64` (`0` picks the window's start).
pub(crate) fn deadlines(
    now: i64,
    expires: i64,
    refresh_hint: Option<i64>,
    max_jitter: i64,
    draw: u64,
) -> Option<Deadlines> {
    let lifetime = expires.saturating_sub(now);
    if lifetime <= 0 {
        return None;
    }
    let hard_limit = expires - duration_nanos(HARD_MARGIN).min(lifetime / 10);
    let mut target = expires - duration_nanos(REFRESH_MARGIN).min(lifetime / 2);
    if lifetime >= duration_nanos(HALF_LIFE_THRESHOLD) {
        target = target.min(now.saturating_add(lifetime / 2));
    }
    if let Some(hint) = refresh_hint {
        target = target.min(hint);
    }
    let floor = now.saturating_add(duration_nanos(MIN_REFRESH_INTERVAL).min(lifetime / 2));
    let target = target.max(floor).min(hard_limit);
    let width = ((target - now) / SPREAD_DIVISOR).min(max_jitter.max(0));
    let latest = expires - duration_nanos(REFRESH_MARGIN).min(lifetime / 5 * 2);
    let end = target.saturating_add(width / 2).min(latest).max(target);
    let refresh_at = end - width + scale(width, draw);
    Some(Deadlines {
        refresh_at: refresh_at.min(hard_limit),
        hard_limit,
    })
}

/// How long a failed fetch is remembered: the configured cool-down, lengthened by the error's
/// `retry_after` up to [`MAX_FAILURE_MEMORY`] (a cool-down configured longer than that wins).
/// A `retry_after` is never cut short; a random quarter of it at most is added (`draw`), so
/// processes throttled together do not all come back at the same instant.
pub(crate) fn failure_memory(
    cooldown: Duration,
    retry_after: Option<Duration>,
    draw: u64,
) -> Duration {
    match retry_after {
        Some(after) => cooldown.max(spread_after(after.min(MAX_FAILURE_MEMORY), draw)),
        None => cooldown,
    }
}

/// How long to wait before the next background refresh after one failed: the backoff, or the
/// error's `retry_after` (up to [`MAX_FAILURE_MEMORY`]) if longer, plus a random quarter at
/// most (`draw`).
pub(crate) fn refresh_backoff(
    backoff: Duration,
    retry_after: Option<Duration>,
    draw: u64,
) -> Duration {
    let retry_after = retry_after.unwrap_or_default().min(MAX_FAILURE_MEMORY);
    spread_after(backoff.max(retry_after), draw)
}

/// `wait` plus `draw`'s share of a quarter of it.
fn spread_after(wait: Duration, draw: u64) -> Duration {
    let extra = scale(duration_nanos(wait / 4), draw);
    wait.saturating_add(Duration::from_nanos(u64::try_from(extra).unwrap_or(0)))
}

/// `draw`'s share of `max` (both ends included): `draw / 2⁶⁴ × (max + 1)`, for `max ≥ 0`.
fn scale(max: i64, draw: u64) -> i64 {
    let span = u128::try_from(max).unwrap_or(0) + 1;
    i64::try_from((span * u128::from(draw)) >> 64).unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const NOW: i64 = 1_900_000_000 * S;

    fn at(seconds: i64) -> i64 {
        NOW + seconds * S
    }

    fn plain(lifetime_s: i64) -> Deadlines {
        deadlines(NOW, at(lifetime_s), None, 0, 0).unwrap()
    }

    #[test]
    fn deadlines_follow_the_rules_without_jitter() {
        let hour = 3600;
        // 24 h (IMDS): half-life; hard limit 30 s before expiry.
        assert_eq!(
            plain(24 * hour),
            Deadlines {
                refresh_at: at(12 * hour),
                hard_limit: at(24 * hour - 30)
            }
        );
        // 2 h exactly: half-life applies.
        assert_eq!(plain(2 * hour).refresh_at, at(hour));
        // 1 h (Entra): 5 minutes before expiry.
        assert_eq!(
            plain(hour),
            Deadlines {
                refresh_at: at(55 * 60),
                hard_limit: at(hour - 30)
            }
        );
        // 10 min: the margin is clamped to half the lifetime.
        assert_eq!(plain(600).refresh_at, at(300));
        // 1 min: refresh at half, hard limit a tenth before expiry.
        assert_eq!(
            plain(60),
            Deadlines {
                refresh_at: at(30),
                hard_limit: at(54)
            }
        );
        // Already expired: not cacheable.
        assert_eq!(deadlines(NOW, NOW, None, 0, 0), None);
        assert_eq!(deadlines(NOW, i64::MIN, None, 0, 0), None);
        // A provider hint earlier than the rules wins...
        let hinted = deadlines(NOW, at(24 * hour), Some(at(hour)), 0, 0).unwrap();
        assert_eq!(hinted.refresh_at, at(hour));
        // ...but never sooner than a minute after the fetch.
        let eager = deadlines(NOW, at(hour), Some(NOW), 0, 0).unwrap();
        assert_eq!(eager.refresh_at, at(60));
    }

    fn spread(lifetime_s: i64, draw: u64) -> i64 {
        deadlines(NOW, at(lifetime_s), None, i64::MAX, draw)
            .unwrap()
            .refresh_at
    }

    #[test]
    fn refresh_times_spread_over_a_quarter_of_the_interval_centred_where_there_is_room() {
        let hour = 3600;
        // 24 h: 12 h ± 1.5 h.
        assert_eq!(spread(24 * hour, 0), at(12 * hour - 90 * 60));
        assert_eq!(spread(24 * hour, u64::MAX), at(12 * hour + 90 * 60));
        assert_eq!(spread(24 * hour, u64::MAX / 2 + 1), at(12 * hour));
        // 1 h: no room after 55 min, so 55 min minus up to 13 min 45 s.
        assert_eq!(spread(hour, u64::MAX), at(55 * 60));
        assert_eq!(spread(hour, 0), at(55 * 60 - 825));
        // 2 min: 60 s ± 7.5 s (the margin left is over two fifths of the lifetime).
        assert_eq!(spread(120, 0), at(60) - 7_500_000_000);
        assert_eq!(spread(120, u64::MAX), at(60) + 7_500_000_000);
        // The cap.
        let capped = deadlines(NOW, at(24 * hour), None, 60 * S, 0).unwrap();
        assert_eq!(capped.refresh_at, at(12 * hour - 30));
    }

    #[test]
    fn on_average_long_tokens_are_refreshed_at_half_life() {
        let mut rng = fastrand::Rng::with_seed(1);
        for lifetime in [120, 600, 2 * 3600, 24 * 3600] {
            let n = 10_000;
            let mean = (0..n)
                .map(|_| (spread(lifetime, rng.u64(..)) - NOW) as f64)
                .sum::<f64>()
                / f64::from(n);
            let half = (lifetime * S / 2) as f64;
            assert!(
                (mean / half - 1.0).abs() < 0.01,
                "{lifetime}: {mean} vs {half}"
            );
        }
    }

    #[test]
    fn absurd_inputs_saturate_and_keep_the_order() {
        let values = [
            i64::MIN,
            i64::MIN + 1,
            -1,
            0,
            1,
            NOW - 1,
            NOW,
            NOW + 1,
            at(60),
            at(86_400),
            i64::MAX - 1,
            i64::MAX,
        ];
        for &now in &values {
            for &expires in &values {
                for hint in values.iter().copied().map(Some).chain([None]) {
                    for max_jitter in [0, S, i64::MAX, -5] {
                        for draw in [0, 1, u64::MAX / 2, u64::MAX] {
                            let Some(d) = deadlines(now, expires, hint, max_jitter, draw) else {
                                assert!(expires <= now);
                                continue;
                            };
                            assert!(
                                now < d.refresh_at || (now == d.refresh_at && expires - now < 4),
                                "{now} {expires} {hint:?} {d:?}"
                            );
                            assert!(d.refresh_at <= d.hard_limit, "{d:?}");
                            assert!(d.hard_limit <= expires, "{d:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn failure_memory_is_the_cooldown_lengthened_by_retry_after_up_to_five_minutes() {
        let s = Duration::from_secs;
        assert_eq!(failure_memory(s(1), None, u64::MAX), s(1));
        assert_eq!(failure_memory(s(1), Some(s(30)), 0), s(30));
        assert_eq!(failure_memory(s(1), Some(s(3600)), 0), MAX_FAILURE_MEMORY);
        assert_eq!(failure_memory(s(10), Some(s(2)), 0), s(10));
        // A cool-down configured longer than the maximum is kept (this panicked once).
        assert_eq!(failure_memory(s(600), Some(s(30)), 0), s(600));
        assert_eq!(failure_memory(s(600), Some(s(3600)), u64::MAX), s(600));
    }

    #[test]
    fn a_retry_after_is_never_cut_short_and_gets_up_to_a_quarter_more() {
        let s = Duration::from_secs;
        assert_eq!(failure_memory(s(1), Some(s(20)), u64::MAX), s(25));
        assert_eq!(
            failure_memory(s(1), Some(s(20)), u64::MAX / 2 + 1),
            Duration::from_millis(22_500)
        );
        assert_eq!(refresh_backoff(s(30), None, 0), s(30));
        assert_eq!(refresh_backoff(s(30), Some(s(60)), u64::MAX), s(75));
        assert_eq!(
            refresh_backoff(Duration::MAX, None, u64::MAX),
            Duration::MAX
        );
    }

    #[test]
    fn a_retry_after_of_hours_puts_the_next_background_refresh_off_five_minutes_at_most() {
        let s = Duration::from_secs;
        // Retry-After: Fri, 31 Dec 9999 23:59:59 GMT, or u64::MAX seconds.
        for absurd in [s(251_635_075_199), Duration::MAX] {
            assert_eq!(refresh_backoff(s(30), Some(absurd), 0), MAX_FAILURE_MEMORY);
        }
        // A configured backoff longer than that still wins.
        assert_eq!(refresh_backoff(s(3600), Some(s(7200)), 0), s(3600));
    }
}
