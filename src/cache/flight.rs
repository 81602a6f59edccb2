//! Single-flight fetches: one fetch per key at a time, its result handed to every waiter,
//! panics and abandonment turned into outcomes, and waiters that take over a fetch stuck on a
//! runtime nobody drives.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use super::partition::{Entry, Partition, SlowState};
use super::{TokenFetcher, TokenRequest};
use crate::catch_unwind::CatchUnwind;
use crate::{AccessToken, Error, ErrorKind};

#[cfg(test)]
pub(super) use test_hooks::PANIC_AFTER_FETCH;

pub(super) type FlightTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// One fetch for one key: runs the fetcher, stores or remembers the outcome, then tells every
/// waiter. Everything between starting the fetch and recording its outcome runs under
/// [`CatchUnwind`], so a panic there (in the source, or in the bookkeeping after it) is a failed
/// fetch like any other: remembered for the cool-down, never a loop of new fetches. If the
/// flight is dropped before finishing, its guard clears the entry's flight so nothing stays
/// stuck "fetching", and waiters see the channel close and start over.
pub(super) async fn run_flight(
    partition: Arc<Partition>,
    entry: Arc<Entry>,
    fetcher: Arc<dyn TokenFetcher>,
    request: TokenRequest,
    tx: watch::Sender<FlightResult>,
    flight_id: u64,
) {
    let guard = FlightGuard {
        partition: partition.clone(),
        entry: entry.clone(),
        flight_id,
        tx: Some(tx),
    };
    let invalidations = partition.invalidations.load(Ordering::Acquire);
    let fetch_and_settle = async {
        let result = fetcher.fetch(&request).await;
        #[cfg(test)]
        test_hooks::after_fetch(&partition);
        partition.settle(&entry, result, invalidations)
    };
    let (result, failure) = match CatchUnwind::new(fetch_and_settle).await {
        Ok(outcome) => outcome,
        Err(_payload) => {
            let error = panicked(&partition);
            let failure = partition.failure_until(&error);
            (Err(error), failure)
        }
    };
    guard.finish(result, failure);
}

/// The error a panic during a fetch becomes. The payload is not logged: a buggy source's panic
/// message could hold a secret, and the panic hook has already reported it where panics go.
pub(super) fn panicked(partition: &Partition) -> Error {
    tracing::error!(
        credential = %partition.identity.source,
        "the token source panicked while fetching a token"
    );
    Error::new(
        ErrorKind::Other,
        partition.identity.source.clone(),
        "the token source panicked while fetching a token",
    )
    .with_fix("this is a bug in the token source; please report it")
}

/// Ends a flight: clears it from its entry and tells the waiters, whether the flight finished
/// or was dropped (runtime shut down, or the caller driving it went away).
pub(super) struct FlightGuard {
    pub(super) partition: Arc<Partition>,
    pub(super) entry: Arc<Entry>,
    pub(super) flight_id: u64,
    /// `None` once finished.
    pub(super) tx: Option<watch::Sender<FlightResult>>,
}

impl FlightGuard {
    /// Records the failure to remember (if any) and clears the flight in one critical section,
    /// so a caller that finds no flight also finds its outcome; then hands waiters the result.
    fn finish(mut self, result: Result<AccessToken, Error>, failure: Option<(Error, i64)>) {
        {
            let mut state = self.entry.state.lock();
            if self.is_current(&state) {
                state.failure = failure;
            }
            self.clear(&mut state);
        }
        if let Some(tx) = self.tx.take() {
            // Waiters may all be gone; that is fine.
            let _ = tx.send(Some(result));
        }
    }

    fn is_current(&self, state: &SlowState) -> bool {
        state
            .flight
            .as_ref()
            .is_some_and(|f| f.id == self.flight_id)
    }

    fn clear(&self, state: &mut SlowState) {
        if self.is_current(state) {
            state.flight = None;
            self.entry.busy.store(false, Ordering::Release);
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        let Some(tx) = self.tx.take() else {
            return;
        };
        let mut state = self.entry.state.lock();
        if std::thread::panicking() {
            // Unwinding through the flight (only possible outside its `CatchUnwind`): still a
            // failed fetch, remembered, so waiters do not start a new fetch each.
            let error = panicked(&self.partition);
            if self.is_current(&state) {
                state.failure = self.partition.failure_until(&error);
            }
            self.clear(&mut state);
            drop(state);
            let _ = tx.send(Some(Err(error)));
        } else {
            // Abandoned: clear the flight; dropping the sender tells waiters to start over.
            self.clear(&mut state);
        }
    }
}

/// How long a caller past a token's hard limit waits for the new token before it gets the old
/// one, which has not expired yet.
pub(super) const STALE_WAIT: Duration = Duration::from_millis(500);

/// How long a waiter lets a flight on another current-thread runtime go without a sign of life
/// before it fetches itself (see [`Flight::outcome`]).
pub(super) const STALL_WINDOW: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub(super) struct Flight {
    pub(super) id: u64,
    pub(super) rx: watch::Receiver<FlightResult>,
    /// The current-thread runtime the flight was spawned on, if it was. Such a runtime runs its
    /// tasks only while a thread blocks on it: one whose owner stopped driving it (a sync
    /// wrapper that gave up on a `block_on(timeout(..))` and kept the runtime) would hold every
    /// waiter forever, so waiters on other runtimes watch it.
    pub(super) home: Option<tokio::runtime::Handle>,
    /// The callers waiting for it with nothing to fall back on, for the sources that stop a
    /// fetch nobody waits for ([`TokenFetcher::stop_when_abandoned`]).
    pub(super) interest: Arc<Interest>,
}

/// Who still waits for a flight: a count of waiters, and a signal when the last one leaves.
#[derive(Default)]
pub(super) struct Interest {
    waiting: std::sync::atomic::AtomicUsize,
    /// Whether anyone ever waited: a background refresh nobody waits for is not abandoned.
    ever: AtomicBool,
    left: tokio::sync::Notify,
}

/// One waiter's share of a flight's [`Interest`]; dropping it (a caller's future dropped) may
/// leave the flight without waiters.
pub(super) struct Waiting(Arc<Interest>);

impl Interest {
    pub(super) fn enter(self: &Arc<Self>) -> Waiting {
        self.ever.store(true, Ordering::Release);
        self.waiting.fetch_add(1, Ordering::AcqRel);
        Waiting(self.clone())
    }

    /// Completes once every waiter has left (and there was one).
    pub(super) async fn abandoned(&self) {
        loop {
            if self.ever.load(Ordering::Acquire) && self.waiting.load(Ordering::Acquire) == 0 {
                return;
            }
            // `notify_one` keeps a permit when nobody listens, so no departure is missed.
            self.left.notified().await;
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.0.waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.left.notify_one();
        }
    }
}

/// How waiting for a flight ended.
pub(super) enum Outcome {
    Done(Result<AccessToken, Error>),
    /// Dropped before it produced a result (runtime shut down, driving caller gone).
    Abandoned,
    /// Its runtime is not being driven: it may never finish.
    Stalled,
}

impl Flight {
    /// Waits for the flight's result. A waiter on another runtime than the flight's
    /// current-thread home checks every [`STALL_WINDOW`] that the home still runs tasks (by
    /// spawning a no-op there); when one probe has not run for two windows the flight is
    /// declared stalled, and the waiter fetches itself. A false alarm (a home runtime blocked by
    /// a long synchronous call) costs one extra fetch, never a wrong result.
    pub(super) async fn outcome(self) -> Outcome {
        let mut rx = self.rx;
        let Some(home) = self.home.filter(|home| !is_current_runtime(home)) else {
            return result_of(&mut rx).await;
        };
        loop {
            let probe = Arc::new(AtomicBool::new(false));
            drop(home.spawn({
                let probe = probe.clone();
                async move { probe.store(true, Ordering::Release) }
            }));
            for _ in 0..2 {
                if let Ok(outcome) = tokio::time::timeout(STALL_WINDOW, result_of(&mut rx)).await {
                    return outcome;
                }
                if probe.load(Ordering::Acquire) {
                    break;
                }
            }
            if !probe.load(Ordering::Acquire) {
                return Outcome::Stalled;
            }
        }
    }
}

pub(super) type FlightResult = Option<Result<AccessToken, Error>>;

/// The flight's result, once it is sent, or [`Outcome::Abandoned`] if it is dropped first.
pub(super) async fn result_of(rx: &mut watch::Receiver<FlightResult>) -> Outcome {
    match rx.wait_for(Option::is_some).await {
        Ok(value) => match &*value {
            Some(result) => Outcome::Done(result.clone()),
            None => Outcome::Abandoned,
        },
        Err(_) => Outcome::Abandoned,
    }
}

/// Whether the caller runs on `runtime` (so that runtime is being driven right now).
pub(super) fn is_current_runtime(runtime: &tokio::runtime::Handle) -> bool {
    tokio::runtime::Handle::try_current().is_ok_and(|current| current.id() == runtime.id())
}

/// The current runtime, when it is a current-thread one (see [`Flight::home`]).
pub(super) fn current_thread_home(
    handle: &tokio::runtime::Handle,
) -> Option<tokio::runtime::Handle> {
    (handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
        .then(|| handle.clone())
}

#[cfg(test)]
pub(super) mod test_hooks {
    /// A partition of this source kind panics right after each fetch.
    pub(in crate::cache) const PANIC_AFTER_FETCH: &str = "test: panic after fetch";

    pub(in crate::cache) fn after_fetch(partition: &super::Partition) {
        if partition.identity.source == PANIC_AFTER_FETCH {
            panic!("injected: panic after the fetch");
        }
    }
}
