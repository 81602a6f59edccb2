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

/// The persistent cache's MSAL document: parses arbitrary bytes; a document that parses
/// serializes to one that parses equal, and the `put_*` methods keep their promises on it
/// whatever it held: an access token put is then the one found, a refresh token put is the
/// one found and is gone once removed with its secret, and the result still reads back equal.
///
/// Layout: no parameters, the whole input is the document.
#[cfg(feature = "persistence")]
pub fn msal_cache(data: &[u8]) {
    use crate::Secret;
    use crate::cache::persist::msal_schema::{AccessTokenQuery, MsalCache, NewAccessToken};

    let Ok(mut cache) = MsalCache::parse(data) else {
        return;
    };
    let again = MsalCache::parse(&cache.to_bytes());
    assert_eq!(again.as_ref(), Ok(&cache), "a document did not read back");

    const ENV: &str = "login.microsoftonline.com";
    const CLIENT: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
    const HOME: &str = "uid.72f988bf-86f1-41af-91ab-2d7cd011db47";
    let now = super::BASE_UNIX_SECS;
    let scopes = ["https://management.azure.com/.default".to_owned()];
    let query = AccessTokenQuery {
        environment: ENV,
        client_id: CLIENT,
        realm: super::TENANT,
        home_account_id: HOME,
        scopes: &scopes,
    };
    std::hint::black_box(cache.find_access_token(&query, now));
    std::hint::black_box(cache.find_refresh_token(ENV, CLIENT, HOME));
    std::hint::black_box(cache.find_account(ENV, HOME));

    let at = Secret::new("fuzz-access-token");
    cache.put_access_token(NewAccessToken {
        environment: ENV,
        client_id: CLIENT,
        realm: super::TENANT,
        home_account_id: HOME,
        scopes: &scopes,
        secret: &at,
        cached_at: now,
        expires_on: now + 3600,
        extended_expires_on: now + 3600,
        refresh_on: None,
    });
    let found = cache.find_access_token(&query, now).map(|t| t.secret);
    assert_eq!(
        found.as_ref(),
        Some(&at),
        "the access token put is not found"
    );

    let rt = Secret::new("fuzz-refresh-token");
    cache.put_refresh_token(ENV, CLIENT, HOME, &rt);
    let found = cache.find_refresh_token(ENV, CLIENT, HOME);
    assert_eq!(
        found.as_ref(),
        Some(&rt),
        "the refresh token put is not found"
    );
    cache.put_app_metadata(ENV, CLIENT);
    let again = MsalCache::parse(&cache.to_bytes());
    assert_eq!(
        again.as_ref(),
        Ok(&cache),
        "a written document did not read back"
    );
    cache.remove_refresh_token(ENV, CLIENT, HOME, &rt);
    assert_eq!(
        cache.find_refresh_token(ENV, CLIENT, HOME),
        None,
        "the refresh token removed is still found"
    );
}
