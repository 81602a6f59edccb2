//! Cache hot-path figures: `cargo bench --bench cache`.
//!
//! Reports, for a cache hit:
//! - latency on one task, through the cache's own API (`CachedCredential::get_token`) and
//!   through `Arc<dyn TokenCredential>`, with heap allocations per call counted by a counting
//!   global allocator;
//! - throughput with 64 tasks on a 2-worker multi-thread runtime;
//! - the same two figures for a plain shared `Arc` clone, the floor any design that hands out
//!   one shared allocation cannot go below.
//!
//! A plain `harness = false` program (no criterion): each figure is the median of several runs.
//! Set `BENCH_QUICK=1` for a short smoke run (CI compiles and runs it that way).

// A benchmark measures real time and reads its own settings from the environment.
#![allow(clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod support;
use support::{median, quick};

use azure_credentials::testing::MockCredential;
use azure_credentials::{TokenCache, TokenCredential};

/// Counts allocations (not frees) made while `COUNTING` is on.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const SCOPES: [&str; 1] = ["https://management.azure.com/.default"];

/// Runs `calls` sequential awaits of `op` on a current-thread runtime, returns (ns/call, allocs/call).
fn single_task<F, Fut>(rt: &tokio::runtime::Runtime, calls: u64, op: F) -> (f64, f64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future,
{
    rt.block_on(async {
        // Warm up: first hits fill this thread's front copy.
        for _ in 0..1000 {
            black_box(op().await);
        }
        let allocs_before = ALLOCATIONS.load(Ordering::Relaxed);
        let start = Instant::now();
        for _ in 0..calls {
            black_box(op().await);
        }
        let elapsed = start.elapsed();
        let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocs_before;
        (
            elapsed.as_nanos() as f64 / calls as f64,
            allocs as f64 / calls as f64,
        )
    })
}

/// 64 tasks on a 2-worker runtime, each running `task(state, per_task)` (a loop of calls);
/// returns calls per second.
fn contended<S, F, Fut>(per_task: u64, state: S, task: F) -> f64
where
    S: Clone + Send + 'static,
    F: Fn(S, u64) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let spawn_all = |calls: u64| {
            (0..64)
                .map(|_| tokio::spawn(task(state.clone(), calls)))
                .collect::<Vec<_>>()
        };
        // Warm up both workers' front copies.
        for t in spawn_all(1000) {
            t.await.unwrap();
        }
        let start = Instant::now();
        for t in spawn_all(per_task) {
            t.await.unwrap();
        }
        (64 * per_task) as f64 / start.elapsed().as_secs_f64()
    })
}

fn main() {
    let runs = if quick() { 1 } else { 7 };
    let calls: u64 = if quick() { 100_000 } else { 5_000_000 };
    let per_task: u64 = if quick() { 10_000 } else { 500_000 };

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mock = MockCredential::builder()
        .cache(TokenCache::builder().build())
        .token_lifetime(Duration::from_secs(24 * 3600))
        .build();
    rt.block_on(mock.get_token(&SCOPES, None)).unwrap();
    let cached = mock.cached().clone();
    let dynamic: Arc<dyn TokenCredential> = Arc::new(mock.clone());

    let mut rows = Vec::new();

    let mut lat = Vec::new();
    let mut allocs = 0.0;
    for _ in 0..runs {
        let (ns, a) = single_task(&rt, calls, || cached.get_token(&SCOPES, None));
        lat.push(ns);
        allocs = a;
    }
    rows.push(("hit, cache API (CachedCredential)", median(lat), allocs));

    let mut lat = Vec::new();
    for _ in 0..runs {
        let (ns, a) = single_task(&rt, calls, || dynamic.get_token(&SCOPES, None));
        lat.push(ns);
        allocs = a;
    }
    rows.push(("hit, Arc<dyn TokenCredential>", median(lat), allocs));

    let shared = Arc::new(String::from("x"));
    let mut lat = Vec::new();
    for _ in 0..runs {
        let s = shared.clone();
        let (ns, a) = single_task(&rt, calls, move || {
            let s = s.clone();
            async move { s }
        });
        lat.push(ns);
        allocs = a;
    }
    rows.push(("floor: clone one shared Arc", median(lat), allocs));

    println!("single task ({calls} calls, median of {runs} runs)");
    println!("  {:<40} {:>10} {:>14}", "", "ns/call", "allocs/call");
    for (name, ns, a) in &rows {
        println!("  {name:<40} {ns:>10.1} {a:>14.4}");
    }

    let run = |f: &dyn Fn() -> f64| median((0..runs).map(|_| f()).collect());
    let api_tput = run(&|| {
        contended(per_task, cached.clone(), |c, n| async move {
            for _ in 0..n {
                black_box(c.get_token(&SCOPES, None).await.unwrap());
            }
        })
    });
    let dyn_tput = run(&|| {
        contended(per_task, dynamic.clone(), |d, n| async move {
            for _ in 0..n {
                black_box(d.get_token(&SCOPES, None).await.unwrap());
            }
        })
    });
    let floor = run(&|| {
        contended(per_task, shared.clone(), |s, n| async move {
            for _ in 0..n {
                black_box(s.clone());
            }
        })
    });
    println!("64 tasks on 2 worker threads ({per_task} calls each, median of {runs} runs)");
    println!(
        "  {:<40} {:>10.1} M calls/s",
        "hit, cache API",
        api_tput / 1e6
    );
    println!(
        "  {:<40} {:>10.1} M calls/s",
        "hit, Arc<dyn TokenCredential>",
        dyn_tput / 1e6
    );
    println!(
        "  {:<40} {:>10.1} M calls/s",
        "floor: clone one shared Arc",
        floor / 1e6
    );
    println!(
        "upstream fetches during the whole run: {}",
        mock.fetch_count()
    );
}
