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
/// The longest a `Retry-After` keeps a failure remembered.
pub(super) const MAX_FAILURE_MEMORY: Duration = Duration::from_secs(5 * 60);

/// The two deadlines of a cached token, in Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadlines {
    /// From here on a caller gets the token and starts one background refresh.
    pub(crate) refresh_at: i64,
    /// From here on the token is not served: callers wait for a new one.
    pub(crate) hard_limit: i64,
}

/// The deadlines of a token expiring at `expires`, received at `now`, with the provider's
/// refresh hint if any; `None` when the token has already expired by `now`.
///
/// `max_jitter` (ns, at most a twentieth of the lifetime is used) moves the refresh earlier by
/// `draw`'s share of it: `draw` is a uniformly random `u64` (`0` means no move), so that
/// processes started together do not refresh together.
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
    let mut refresh_at = expires - duration_nanos(REFRESH_MARGIN).min(lifetime / 2);
    if lifetime >= duration_nanos(HALF_LIFE_THRESHOLD) {
        refresh_at = refresh_at.min(now.saturating_add(lifetime / 2));
    }
    if let Some(hint) = refresh_hint {
        refresh_at = refresh_at.min(hint);
    }
    let jitter = scale(max_jitter.clamp(0, lifetime / 20), draw);
    refresh_at = refresh_at.saturating_sub(jitter);
    let floor = now.saturating_add(duration_nanos(MIN_REFRESH_INTERVAL).min(lifetime / 2));
    Some(Deadlines {
        refresh_at: refresh_at.max(floor).min(hard_limit),
        hard_limit,
    })
}

/// How long a failed fetch is remembered: the configured cool-down, lengthened by the error's
/// `retry_after` up to [`MAX_FAILURE_MEMORY`] (a cool-down configured longer than that wins).
pub(crate) fn failure_memory(cooldown: Duration, retry_after: Option<Duration>) -> Duration {
    match retry_after {
        Some(after) => cooldown.max(after.min(MAX_FAILURE_MEMORY)),
        None => cooldown,
    }
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
    fn deadlines_follow_the_rules() {
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

    #[test]
    fn jitter_moves_refresh_earlier_by_the_draws_share() {
        let minute = 60 * S;
        let ideal = at(55 * 60);
        assert_eq!(
            deadlines(NOW, at(3600), None, minute, 0)
                .unwrap()
                .refresh_at,
            ideal
        );
        assert_eq!(
            deadlines(NOW, at(3600), None, minute, u64::MAX)
                .unwrap()
                .refresh_at,
            ideal - minute
        );
        let half = deadlines(NOW, at(3600), None, minute, u64::MAX / 2 + 1).unwrap();
        assert_eq!(half.refresh_at, ideal - minute / 2);
        // Short tokens get proportionally less: at most a twentieth of the lifetime.
        let short = deadlines(NOW, at(600), None, minute, u64::MAX).unwrap();
        assert_eq!(short.refresh_at, at(300 - 30));
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
        assert_eq!(failure_memory(s(1), None), s(1));
        assert_eq!(failure_memory(s(1), Some(s(30))), s(30));
        assert_eq!(failure_memory(s(1), Some(s(3600))), MAX_FAILURE_MEMORY);
        assert_eq!(failure_memory(s(10), Some(s(2))), s(10));
        // A cool-down configured longer than the maximum is kept (this panicked once).
        assert_eq!(failure_memory(s(600), Some(s(30))), s(600));
        assert_eq!(failure_memory(s(600), Some(s(3600))), s(600));
    }
}
