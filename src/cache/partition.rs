//! The stored tokens of one identity: its entries, and what a finished fetch leaves in them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use super::flight::Flight;
use super::key::{CacheIdentity, KeyLike, KeyView, RequestKey};
use super::{SWEEP_THRESHOLD, Settings, policy};
use crate::system::{duration_nanos, from_unix_nanos, to_unix_nanos};
use crate::{AccessToken, Error};

/// All cached tokens of one identity.
pub(super) struct Partition {
    pub(super) id: u64,
    pub(super) identity: CacheIdentity,
    pub(super) settings: Arc<Settings>,
    /// Bumped by [`CachedCredential::invalidate`]; a fetch that started before stores nothing.
    pub(super) invalidations: AtomicU64,
    pub(super) entries: RwLock<HashMap<RequestKey, Arc<Entry>>>,
}

impl Partition {
    /// The entry for `view`, created empty if there is none.
    pub(super) fn entry(&self, view: &KeyView<'_>) -> Arc<Entry> {
        if let Some(entry) = self.entries.read().get(view as &dyn KeyLike) {
            return entry.clone();
        }
        let mut entries = self.entries.write();
        if let Some(entry) = entries.get(view as &dyn KeyLike) {
            return entry.clone();
        }
        if entries.len() >= SWEEP_THRESHOLD {
            let now = self.settings.clock.unix_nanos();
            entries.retain(|_, e| Arc::strong_count(e) > 1 || e.is_live(now));
        }
        let key = view.to_key();
        let entry = Arc::new(Entry {
            key: key.clone(),
            generation: AtomicU64::new(0),
            current: RwLock::new(None),
            busy: AtomicBool::new(false),
            next_refresh: AtomicI64::new(i64::MIN),
            state: Mutex::new(SlowState::default()),
        });
        entries.insert(key, entry.clone());
        entry
    }

    /// Whether any entry holds a valid token or has a fetch running.
    pub(super) fn is_live(&self, now: i64) -> bool {
        self.entries.read().values().any(|e| e.is_live(now))
    }

    /// What a finished fetch leaves behind: the result for the waiters and, for a failure with
    /// no valid token to fall back on, the failure to remember and until when. A token fetched
    /// while the cache was invalidated is handed to the waiters but not kept.
    pub(super) fn settle(
        &self,
        entry: &Entry,
        result: Result<AccessToken, Error>,
        invalidations: u64,
    ) -> (Result<AccessToken, Error>, Option<(Error, i64)>) {
        let error = match result {
            Ok(token) => {
                return (
                    Ok(self.store_unless_invalidated(entry, token, invalidations)),
                    None,
                );
            }
            Err(error) => error,
        };
        let now = self.settings.clock.unix_nanos();
        // A token that has not expired yet is still served (before its hard limit, or as the
        // last resort after it): back off, and remember no failure.
        let still_valid = entry
            .current
            .read()
            .as_ref()
            .is_some_and(|c| now < c.expires);
        if !still_valid {
            tracing::debug!(credential = %self.identity.source, error = %error, "token fetch failed");
            let failure = self.failure_until(&error);
            return (Err(error), failure);
        }
        let backoff = policy::refresh_backoff(
            self.settings.refresh_backoff,
            error.retry_after(),
            self.settings.draw(),
        );
        entry.next_refresh.store(
            now.saturating_add(duration_nanos(backoff)),
            Ordering::Release,
        );
        tracing::warn!(
            credential = %self.identity.source,
            error = %error,
            retry_in_secs = backoff.as_secs(),
            "background token refresh failed; still serving the current token"
        );
        (Err(error), None)
    }

    /// The failure to remember for `error` and until when (Unix ns): the cool-down, lengthened
    /// by the error's `retry_after` (a provider's `Retry-After`, or a source's own "do not ask
    /// again before"). `None` when the cool-down is disabled.
    pub(super) fn failure_until(&self, error: &Error) -> Option<(Error, i64)> {
        let memory = policy::failure_memory(
            self.settings.failure_cooldown,
            error.retry_after(),
            self.settings.draw(),
        );
        if memory.is_zero() {
            return None;
        }
        let now = self.settings.clock.unix_nanos();
        Some((error.clone(), now.saturating_add(duration_nanos(memory))))
    }

    /// [`Partition::store`], unless the partition was invalidated since `invalidations` was
    /// read: then the token is returned without being kept.
    pub(super) fn store_unless_invalidated(
        &self,
        entry: &Entry,
        token: AccessToken,
        invalidations: u64,
    ) -> AccessToken {
        if self.invalidations.load(Ordering::Acquire) != invalidations {
            return token;
        }
        self.store(entry, token)
    }

    /// Computes the deadlines of a freshly fetched token, stores it and returns it (carrying the
    /// cache's refresh time as its `refresh_on`).
    ///
    /// A token that has already expired by this machine's clock when it arrives (clock skew, or
    /// `expires_in: 0`) is served for the failure cool-down, like a failure would be, so callers
    /// do not fetch again on every call.
    pub(super) fn store(&self, entry: &Entry, token: AccessToken) -> AccessToken {
        let settings = &*self.settings;
        let now = settings.clock.unix_nanos();
        let deadlines = policy::deadlines(
            now,
            to_unix_nanos(token.expires_on()),
            token.refresh_on().map(to_unix_nanos),
            duration_nanos(settings.max_jitter),
            settings.draw(),
        );
        let (token, refresh_at, hard_limit) = match deadlines {
            Some(d) => {
                let token = token.with_refresh_on(from_unix_nanos(d.refresh_at));
                tracing::debug!(
                    credential = %self.identity.source,
                    expires_on = %token.expires_on(),
                    refresh_on = %from_unix_nanos(d.refresh_at),
                    "token cached"
                );
                (token, d.refresh_at, d.hard_limit)
            }
            None => {
                tracing::warn!(
                    credential = %self.identity.source,
                    expires_on = %token.expires_on(),
                    cooldown_ms = settings.failure_cooldown.as_millis() as u64,
                    "received a token that has already expired by this machine's clock; serving it only for the failure cool-down (is the system clock right?)"
                );
                if settings.failure_cooldown.is_zero() {
                    return token;
                }
                let until = now.saturating_add(duration_nanos(settings.failure_cooldown));
                (token, until, until)
            }
        };
        *entry.current.write() = Some(Cached {
            expires: to_unix_nanos(token.expires_on()),
            token: token.clone(),
            refresh_at,
            hard_limit,
        });
        entry.generation.fetch_add(1, Ordering::AcqRel);
        entry.next_refresh.store(i64::MIN, Ordering::Release);
        token
    }
}

/// The cached state of one request key.
pub(super) struct Entry {
    pub(super) key: RequestKey,
    /// Bumped whenever `current` changes; per-thread copies compare it to know they are current.
    pub(super) generation: AtomicU64,
    pub(super) current: RwLock<Option<Cached>>,
    /// A flight is running (mirror of `state.flight.is_some()` for a lock-free check).
    pub(super) busy: AtomicBool,
    /// No background refresh before this time (Unix ns), after a failed one.
    pub(super) next_refresh: AtomicI64,
    pub(super) state: Mutex<SlowState>,
}

impl Entry {
    pub(super) fn is_live(&self, now: i64) -> bool {
        self.busy.load(Ordering::Acquire)
            || self
                .current
                .read()
                .as_ref()
                .is_some_and(|c| now < c.hard_limit)
    }
}

#[derive(Clone)]
pub(super) struct Cached {
    pub(super) token: AccessToken,
    pub(super) refresh_at: i64,
    pub(super) hard_limit: i64,
    /// The token's own expiry: between the hard limit and this, the token is a last resort
    /// (see [`CachedCredential::wait_for_token`]).
    pub(super) expires: i64,
}

#[derive(Default)]
pub(super) struct SlowState {
    pub(super) flight: Option<Flight>,
    /// A failed fetch and until when (Unix ns) new callers get it without a new request.
    pub(super) failure: Option<(Error, i64)>,
}

pub(super) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
