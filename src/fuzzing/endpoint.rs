//! The in-memory identity endpoint of the whole-credential targets. `mi_response` and
//! `entra_token_response` run a real credential (its cache, its HTTP client with
//! `RetryPolicy::none()`, so one input is one attempt) against an `HttpTransport` that answers
//! with the input, on a current-thread runtime made once per thread. The cache's clock stands
//! at BASE: that is when every token is requested.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::system::{Http, HttpRequest, HttpResponse, HttpTransport, ManualClock, TransportFuture};
use crate::{Context, TokenCache};

/// The Azure Arc agent's key: the one value an `Authorization` header may carry.
pub(super) const ARC_KEY: &str = "Pz4Qw8Er2Ty6Ui0Op3As7Df1Gh5Jk9Lx";

/// Runs `future` to completion on this thread's runtime.
pub(super) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread tokio runtime");
    }
    RUNTIME.with(|runtime| runtime.block_on(future))
}

pub(super) const SCOPE: &str = "https://vault.azure.net/.default";

/// An identity endpoint in memory: a request without an `Authorization` header gets `plain`,
/// one with it (Azure Arc's second leg) gets `keyed`. Counts the requests, and notes an
/// `Authorization` header that carries anything but the Arc agent's key.
#[derive(Debug)]
pub(super) struct Canned {
    plain: HttpResponse,
    keyed: HttpResponse,
    pub(super) requests: AtomicUsize,
    pub(super) stray_authorization: AtomicBool,
}

impl Canned {
    pub(super) fn new(plain: HttpResponse, keyed: HttpResponse) -> Arc<Canned> {
        Arc::new(Canned {
            plain,
            keyed,
            requests: AtomicUsize::new(0),
            stray_authorization: AtomicBool::new(false),
        })
    }

    /// The seams of a credential under test: this endpoint as its HTTP client, and a cache on
    /// `clock` without jitter (so that a run repeats).
    pub(super) fn context(self: &Arc<Self>, clock: &ManualClock) -> Context {
        let http = Http::builder()
            .transport(self.clone())
            .clock(clock.clock())
            .build()
            .expect("an HTTP client on a transport");
        let cache = TokenCache::builder()
            .clock(clock.clock())
            .jitter_seed(0)
            .build();
        Context::default().with_http(http).with_cache(cache)
    }
}

impl HttpTransport for Canned {
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let answer = match request.header_value("authorization") {
            None => &self.plain,
            Some(value) => {
                if value.strip_prefix("Basic ") != Some(ARC_KEY) {
                    self.stray_authorization.store(true, Ordering::Relaxed);
                }
                &self.keyed
            }
        };
        let answer = answer.clone();
        Box::pin(async move { Ok(answer) })
    }
}
