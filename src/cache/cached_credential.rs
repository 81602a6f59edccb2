//! [`CachedCredential`]: a [`TokenFetcher`] behind the cache, and the lookup every `get_token`
//! goes through.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;

use super::TokenFetcher;
#[cfg(test)]
use super::flight::test_hooks;
use super::flight::{
    Flight, FlightTask, Outcome, STALE_WAIT, current_thread_home, panicked, run_flight,
};
use super::front::{front_lookup, front_store};
use super::key::{CacheIdentity, KeyView, RequestKey};
use super::partition::{Entry, Partition, SlowState, next_id};
use crate::catch_unwind::CatchUnwind;
use crate::setters::debug_fields;
use crate::{AccessToken, Error, TokenCredential, TokenFuture, TokenRequestOptions};

/// A [`TokenFetcher`] behind a [`TokenCache`](super::TokenCache): a complete [`TokenCredential`].
#[derive(Clone)]
pub struct CachedCredential {
    pub(super) partition: Arc<Partition>,
    pub(super) fetcher: Arc<dyn TokenFetcher>,
}

debug_fields!(CachedCredential {
    identity: partition.identity,
    fetcher
});

impl TokenCredential for CachedCredential {
    fn get_token<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: Option<&'a TokenRequestOptions>,
    ) -> TokenFuture<'a> {
        CachedCredential::get_token(self, scopes, options)
    }
}

impl CachedCredential {
    /// The identity this credential's tokens are cached under.
    pub fn identity(&self) -> &CacheIdentity {
        &self.partition.identity
    }

    /// Forgets every token cached for this credential's identity (all scopes and tenants), and
    /// any remembered failure: the next call fetches. Fetches already running still answer their
    /// callers but store nothing. For sources that learn their tokens went stale, such as the
    /// Azure CLI after a new `az login`.
    pub fn invalidate(&self) {
        self.partition.invalidations.fetch_add(1, Ordering::AcqRel);
        for entry in self.partition.entries.read().values() {
            let mut state = entry.state.lock();
            state.failure = None;
            *entry.current.write() = None;
            entry.generation.fetch_add(1, Ordering::AcqRel);
            entry.next_refresh.store(i64::MIN, Ordering::Release);
        }
        tracing::debug!(credential = %self.partition.identity.source, "cached tokens invalidated");
    }

    /// Forgets the failures remembered for this credential's identity (keeping its tokens): the
    /// next call for a key that failed fetches at once. For a user who just signed in.
    #[cfg(feature = "user-sign-in")]
    pub(crate) fn forget_failures(&self) {
        for entry in self.partition.entries.read().values() {
            entry.state.lock().failure = None;
        }
    }

    /// Gets a token: from the cache when it is fresh, otherwise from the fetcher (see
    /// [`TokenCache`](super::TokenCache) for the rules).
    pub fn get_token<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: Option<&'a TokenRequestOptions>,
    ) -> TokenFuture<'a> {
        let (requested_tenant, enable_cae, claims) = match options {
            Some(o) => (o.tenant_id(), o.enable_cae(), o.claims()),
            None => (None, false, None),
        };
        // Fast path: this thread's copy of a fresh token. No tenant requested means the
        // credential's own, which needs no resolving.
        if claims.is_none() && requested_tenant.is_none() {
            let now = self.partition.settings.clock.unix_nanos();
            if let Some(token) = front_lookup(self.partition.id, scopes, None, enable_cae, now) {
                return TokenFuture::ready(Ok(token));
            }
        }
        self.get_token_shared(scopes, requested_tenant, enable_cae, claims)
    }

    /// Everything but a front-cache hit, kept out of line so the hot path stays small.
    #[inline(never)]
    fn get_token_shared<'a>(
        &'a self,
        scopes: &'a [&'a str],
        requested_tenant: Option<&'a str>,
        enable_cae: bool,
        claims: Option<&'a str>,
    ) -> TokenFuture<'a> {
        let tenant = match requested_tenant {
            None => None,
            Some(requested) => match self.fetcher.resolve_tenant(requested) {
                Ok(tenant) => tenant,
                Err(err) => return TokenFuture::ready(Err(err)),
            },
        };
        let view = KeyView::new(scopes, tenant, enable_cae);
        if let Some(claims) = claims {
            let key = view.to_key();
            return TokenFuture::new(self.fetch_with_claims(key, claims));
        }
        let now = self.partition.settings.clock.unix_nanos();
        if let Some(token) = front_lookup(self.partition.id, scopes, tenant, enable_cae, now) {
            return TokenFuture::ready(Ok(token));
        }
        let entry = self.partition.entry(&view);
        // The generation is read before the token: a per-thread copy is then never tagged with
        // a newer generation than the token it holds (a token replaced in between makes the
        // copy look stale, never current).
        let generation = entry.generation.load(Ordering::Acquire);
        let cached = entry.current.read().clone();
        if let Some(cached) = cached {
            if now < cached.refresh_at {
                front_store(self.partition.id, &entry, generation, &cached);
                return TokenFuture::ready(Ok(cached.token));
            }
            if now < cached.hard_limit {
                self.refresh_in_background(&entry, now);
                return TokenFuture::ready(Ok(cached.token));
            }
        }
        TokenFuture::new(self.wait_for_token(entry))
    }

    /// The slow path: no token to serve at once, so join the key's fetch (or start it) and
    /// wait.
    ///
    /// Past its hard limit a token that has not expired yet is the last resort: a caller waits
    /// at most [`STALE_WAIT`] for the new one, and gets the old one if the fetch is slower,
    /// fails, or failed less than a backoff ago (stale-on-error, as MSAL does). Only a caller
    /// with nothing valid left waits for the fetch's outcome, error included.
    async fn wait_for_token(&self, entry: Arc<Entry>) -> Result<AccessToken, Error> {
        loop {
            let (flight, to_drive, stale) = {
                let mut state = entry.state.lock();
                let now = self.partition.settings.clock.unix_nanos();
                // Checked under the lock: a flight stores its token before it clears itself
                // (under this lock), so "no flight" here means there is no fresher token coming.
                let current = entry.current.read().clone();
                if let Some(cached) = &current
                    && now < cached.hard_limit
                {
                    return Ok(cached.token.clone());
                }
                let stale = current
                    .filter(|c| now < c.expires)
                    .map(|c| (c.token, c.expires));
                if let Some((error, until)) = &state.failure {
                    if now < *until {
                        tracing::trace!(credential = %self.partition.identity.source, "returning a recently failed fetch's error");
                        return Err(error.clone());
                    }
                    state.failure = None;
                }
                if let Some((token, _)) = &stale
                    && state.flight.is_none()
                    && now < entry.next_refresh.load(Ordering::Acquire)
                {
                    // A refresh failed less than a backoff ago: do not ask again yet.
                    return Ok(token.clone());
                }
                let (flight, to_drive) = match &state.flight {
                    Some(flight) => (flight.clone(), None),
                    None => self.start_flight(&entry, &mut state),
                };
                (flight, to_drive, stale)
            };
            if let Some(task) = to_drive {
                // No runtime to spawn on: drive the fetch here. If this caller is dropped the
                // flight is abandoned and a waiter starts a new one.
                task.await;
            }
            let id = flight.id;
            // Counted only without a token to fall back on: a caller served the current token
            // after a short wait leaves the refresh running.
            let _waiting = stale.is_none().then(|| flight.interest.enter());
            let outcome = match &stale {
                Some((token, expires)) if tokio::runtime::Handle::try_current().is_ok() => {
                    let now = self.partition.settings.clock.unix_nanos();
                    let left = u64::try_from(expires.saturating_sub(now)).unwrap_or(0);
                    let wait = STALE_WAIT.min(Duration::from_nanos(left));
                    match tokio::time::timeout(wait, flight.outcome()).await {
                        Ok(outcome) => outcome,
                        Err(_) => {
                            tracing::debug!(credential = %self.partition.identity.source, "the new token is slow to come; serving the current one, which has not expired yet");
                            return Ok(token.clone());
                        }
                    }
                }
                _ => flight.outcome().await,
            };
            match outcome {
                Outcome::Done(Ok(token)) => return Ok(token),
                Outcome::Done(Err(error)) => match stale {
                    Some((token, _)) => return Ok(token),
                    None => return Err(error),
                },
                // Dropped (runtime shut down, driving caller gone): try again.
                Outcome::Abandoned => continue,
                Outcome::Stalled => {
                    // Take over: forget the stalled flight (if it still is the entry's) so the
                    // next turn of the loop starts a fresh one on this caller's runtime.
                    let mut state = entry.state.lock();
                    if state.flight.as_ref().is_some_and(|f| f.id == id) {
                        tracing::warn!(credential = %self.partition.identity.source, "a token fetch is stuck on a runtime that is no longer driven; fetching again on this one");
                        state.flight = None;
                        entry.busy.store(false, Ordering::Release);
                    }
                }
            }
        }
    }

    /// Starts a background refresh for an entry in its refresh window, unless one is running or
    /// the last one failed less than a backoff ago. Never waits.
    fn refresh_in_background(&self, entry: &Arc<Entry>, now: i64) {
        if entry.busy.load(Ordering::Acquire) || now < entry.next_refresh.load(Ordering::Acquire) {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return; // nowhere to run it; callers fetch once the token passes its hard limit
        }
        let mut state = entry.state.lock();
        // Checked again under the lock: a refresh may have finished (and stored a token that is
        // not due yet) since this caller read the old one.
        let due = entry
            .current
            .read()
            .as_ref()
            .is_some_and(|c| now >= c.refresh_at && now < c.hard_limit);
        if state.flight.is_some() || !due || now < entry.next_refresh.load(Ordering::Acquire) {
            return;
        }
        tracing::debug!(credential = %self.partition.identity.source, "token due for refresh; refreshing in the background");
        let (_flight, task) = self.start_flight(entry, &mut state);
        debug_assert!(
            task.is_none(),
            "a runtime is present, so the flight was spawned"
        );
    }

    /// Registers a new flight for `entry` and starts its fetch: spawned on the current runtime,
    /// or, without one, returned for the caller to drive.
    fn start_flight(
        &self,
        entry: &Arc<Entry>,
        state: &mut SlowState,
    ) -> (Flight, Option<FlightTask>) {
        let (tx, rx) = watch::channel(None);
        let runtime = tokio::runtime::Handle::try_current().ok();
        let flight = Flight {
            id: next_id(),
            rx,
            home: runtime.as_ref().and_then(current_thread_home),
            interest: Arc::default(),
        };
        state.flight = Some(flight.clone());
        entry.busy.store(true, Ordering::Release);
        let request = entry.key.to_request(None);
        let task = run_flight(
            self.partition.clone(),
            entry.clone(),
            self.fetcher.clone(),
            request,
            tx,
            flight.id,
        );
        let span =
            tracing::debug_span!("token_fetch", credential = %self.partition.identity.source);
        let task: FlightTask = if self.fetcher.stop_when_abandoned() {
            let interest = flight.interest.clone();
            Box::pin(
                async move {
                    tokio::select! {
                        () = task => {}
                        () = interest.abandoned() => {
                            // Dropping the flight clears it; a later caller starts afresh.
                            tracing::debug!("every caller waiting for the token left: fetch stopped");
                        }
                    }
                }
                .instrument(span),
            )
        } else {
            Box::pin(task.instrument(span))
        };
        match runtime {
            Some(handle) => {
                handle.spawn(task);
                (flight, None)
            }
            None => (flight, Some(task)),
        }
    }

    async fn fetch_with_claims(&self, key: RequestKey, claims: &str) -> Result<AccessToken, Error> {
        let request = key.to_request(Some(claims));
        tracing::debug!(credential = %self.partition.identity.source, "claims challenge: fetching a new token, bypassing the cache");
        let partition = &self.partition;
        let invalidations = partition.invalidations.load(Ordering::Acquire);
        // The same protection as a flight's: a panic anywhere is an error, and a token fetched
        // while the cache was invalidated is handed back but not kept.
        let fetch_and_store = async {
            let token = self.fetcher.fetch(&request).await?;
            #[cfg(test)]
            test_hooks::after_fetch(partition);
            let entry = partition.entry(&key.view());
            Ok(partition.store_unless_invalidated(&entry, token, invalidations))
        };
        match CatchUnwind::new(fetch_and_store).await {
            Ok(result) => result,
            Err(_payload) => Err(panicked(partition)),
        }
    }
}
