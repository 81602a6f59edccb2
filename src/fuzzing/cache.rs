//! The token cache's deadlines: when a cached token is refreshed and until when it is served.

use std::time::Duration;

use time::OffsetDateTime;

use super::Input;
use crate::system::from_unix_nanos;

/// An instant of a token, as Unix nanoseconds or (to reach years past 2262) seconds.
fn instant(raw: i64, in_seconds: bool) -> OffsetDateTime {
    if in_seconds {
        OffsetDateTime::from_unix_timestamp(raw).unwrap_or(if raw < 0 {
            time::PrimitiveDateTime::MIN.assume_utc()
        } else {
            time::PrimitiveDateTime::MAX.assume_utc()
        })
    } else {
        from_unix_nanos(raw)
    }
}

/// The cache's deadlines for a token received at `now` (Unix nanoseconds) that expires at
/// `expires_on` and asks to be refreshed at `refresh_on`, with the given jitter settings.
/// Panics when a cached token's deadlines are out of order: `refresh_at <= hard_limit <=
/// expires_on` must hold (the cache serves a token until `hard_limit`).
fn cache_deadlines_at(
    now: i64,
    expires_on: OffsetDateTime,
    refresh_on: Option<OffsetDateTime>,
    max_jitter: Duration,
    draw: u64,
) {
    let expires = crate::system::to_unix_nanos(expires_on);
    let hint = refresh_on.map(crate::system::to_unix_nanos);
    let max_jitter = crate::system::duration_nanos(max_jitter);
    if let Some(d) = crate::cache::policy::deadlines(now, expires, hint, max_jitter, draw) {
        assert!(
            now <= d.refresh_at && d.refresh_at <= d.hard_limit && d.hard_limit <= expires,
            "deadlines out of order: refresh_at {} hard_limit {} expires_on {expires} (now {now}, refresh_on {refresh_on:?}, max_jitter {max_jitter})",
            d.refresh_at,
            d.hard_limit
        );
    }
}

/// [`cache_deadlines_at`] from bytes.
///
/// Layout: `[i64 now: Unix nanoseconds][i64 expires_on][i64 refresh_on][u8 flags: bit 0
/// expires_on in seconds (else nanoseconds), bit 1 refresh_on present, bit 2 refresh_on in
/// seconds][u64 max_jitter: nanoseconds][u64 random draw]`.
pub fn cache_deadlines(data: &[u8]) {
    let mut input = Input::new(data);
    let now = input.i64();
    let expires_on = input.i64();
    let refresh_on = input.i64();
    let flags = input.u8();
    let max_jitter = Duration::from_nanos(input.u64());
    let seed = input.u64();
    cache_deadlines_at(
        now,
        instant(expires_on, flags & 1 != 0),
        (flags & 2 != 0).then(|| instant(refresh_on, flags & 4 != 0)),
        max_jitter,
        seed,
    );
}
