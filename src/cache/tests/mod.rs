//! Cache semantics on a manual clock. Each test names what a caller observes.
//!
//! - `lookups.rs`: hits, refresh windows and times, keys and partitions;
//! - `failures.rs`: failed fetches and refreshes, cool-downs, panics, absurd tokens;
//! - `fetches.rs`: claims, invalidation, callers without a runtime.

use super::flight::{PANIC_AFTER_FETCH, STALE_WAIT};
use super::key::{KeyView, sort_dedup};
use super::*;
use crate::system::ManualClock;
use crate::{ErrorKind, TokenRequestOptions};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use time::OffsetDateTime;
use time::macros::datetime;

const START: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);
const HOUR: Duration = Duration::from_secs(3600);
const MIN: Duration = Duration::from_secs(60);

/// A fetcher that issues `token-<n>` tokens of a fixed lifetime, or scripted results.
#[derive(Debug)]
struct Script {
    clock: Clock,
    lifetime: Duration,
    fetches: AtomicUsize,
    steps: Mutex<VecDeque<Result<Duration, Error>>>,
    requests: Mutex<Vec<TokenRequest>>,
}

#[async_trait]
impl TokenFetcher for Script {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        self.requests.lock().push(request.clone());
        let lifetime = match self.steps.lock().pop_front() {
            Some(Ok(lifetime)) => lifetime,
            Some(Err(err)) => return Err(err),
            None => self.lifetime,
        };
        Ok(AccessToken::new(
            format!("token-{n}"),
            self.clock.now() + lifetime,
        ))
    }
}

struct Fixture {
    manual: ManualClock,
    cache: TokenCache,
    script: Arc<Script>,
    credential: CachedCredential,
}

impl Fixture {
    fn new(lifetime: Duration) -> Self {
        Self::with_cache(lifetime, |b| b)
    }

    fn with_cache(
        lifetime: Duration,
        configure: impl FnOnce(TokenCacheBuilder) -> TokenCacheBuilder,
    ) -> Self {
        let manual = ManualClock::new(START);
        let cache = configure(
            TokenCache::builder()
                .clock(manual.clock())
                .max_jitter(Duration::ZERO),
        )
        .build();
        let script = Arc::new(Script {
            clock: manual.clock(),
            lifetime,
            fetches: AtomicUsize::new(0),
            steps: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
        });
        let credential = cache.credential_arc(CacheIdentity::new("Test"), script.clone());
        Fixture {
            manual,
            cache,
            script,
            credential,
        }
    }

    fn fetches(&self) -> usize {
        self.script.fetches.load(Ordering::SeqCst)
    }

    fn push(&self, step: Result<Duration, Error>) {
        self.script.steps.lock().push_back(step);
    }

    async fn get(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        self.credential.get_token(scopes, None).await
    }

    async fn token(&self) -> String {
        token_of(&self.credential, "scope").await
    }

    /// A caller gets `served` at once and starts a background refresh, which has made
    /// `fetches` fetches in all once it settles; the next caller gets its token.
    async fn assert_refreshed_in_background(&self, served: &str, fetches: usize) {
        assert_eq!(self.token().await, served);
        settle().await;
        assert_eq!(self.fetches(), fetches);
        assert_eq!(self.token().await, format!("token-{fetches}"));
    }
}

/// The token `credential` returns for `scope`.
async fn token_of(credential: &CachedCredential, scope: &str) -> String {
    credential
        .get_token(&[scope], None)
        .await
        .unwrap()
        .token()
        .expose()
        .to_owned()
}

/// What a [`Wrapped`] fetcher does before it fetches from the script.
#[derive(Debug)]
enum Before {
    /// Hangs on the first fetch.
    HangOnce(AtomicBool),
    /// Panics on the first fetch.
    PanicOnce(AtomicBool),
    /// Hangs while the flag is set.
    HangWhileShut(Arc<AtomicBool>),
    /// Waits for a notification before each fetch.
    Notified(Arc<tokio::sync::Notify>),
}

/// A fetcher that does something ([`Before`]) before fetching from the script.
#[derive(Debug)]
struct Wrapped(Arc<Script>, Before);

#[async_trait]
impl TokenFetcher for Wrapped {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        match &self.1 {
            Before::HangOnce(done) if !done.swap(true, Ordering::SeqCst) => {
                std::future::pending::<()>().await;
            }
            Before::PanicOnce(done) if !done.swap(true, Ordering::SeqCst) => {
                panic!("bug in a token source")
            }
            Before::HangWhileShut(shut) if shut.load(Ordering::SeqCst) => {
                std::future::pending::<()>().await;
            }
            Before::Notified(gate) => gate.notified().await,
            _ => {}
        }
        self.0.fetch(request).await
    }
}

impl Fixture {
    /// A credential of this cache, in the partition of `name`, whose fetcher does `before`.
    fn wrapped(&self, name: &str, before: Before) -> CachedCredential {
        self.cache.credential(
            CacheIdentity::new(name.to_owned()),
            Wrapped(self.script.clone(), before),
        )
    }
}

/// Polls a future once: `Ready` means the caller did not wait.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

/// Lets spawned background work run to completion (current-thread runtime).
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

fn hard_error() -> Error {
    Error::authentication("Test", "refused")
}

/// A minimal executor, to call the cache from outside any tokio runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        std::thread::park();
    }
}

mod failures;
mod fetches;
mod lookups;
