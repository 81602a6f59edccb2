//! A deterministic token cache: its own manual clock and no random spread, so refresh times and
//! cool-downs are exact and a test can step through them.

use std::time::Duration;

use azure_credentials::TokenCache;
use azure_credentials::system::{Clock, ManualClock};
use azure_credentials::testing::MockCredential;
use time::OffsetDateTime;
use time::macros::datetime;

/// Where the tests' manual clocks start.
pub const START: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

/// A manual clock at [`START`].
pub fn manual_clock() -> ManualClock {
    ManualClock::new(START)
}

/// An isolated cache reading `clock`, with every random spread off (`max_jitter(0)`): a token
/// is refreshed exactly at its target.
pub fn deterministic(clock: Clock) -> TokenCache {
    TokenCache::builder()
        .clock(clock)
        .max_jitter(Duration::ZERO)
        .build()
}

/// [`deterministic`], and a failure is not remembered (`failure_cooldown(0)`): the next call
/// after a failed fetch fetches again.
pub fn deterministic_without_cooldown(clock: Clock) -> TokenCache {
    TokenCache::builder()
        .clock(clock)
        .max_jitter(Duration::ZERO)
        .failure_cooldown(Duration::ZERO)
        .build()
}

/// A `MockCredential` on a [`deterministic`] cache of its own, and the manual clock it reads.
pub fn mock_on_manual_clock() -> (ManualClock, MockCredential) {
    let manual = manual_clock();
    let mock = MockCredential::builder()
        .cache(deterministic(manual.clock()))
        .build();
    (manual, mock)
}
