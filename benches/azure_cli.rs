//! What an `AzureCliCredential::get_token` costs, in its three regimes:
//!
//! - a cache hit through the credential (with its once-a-second look at the CLI's login files)
//!   against the same hit on the `CachedCredential` underneath (without the look);
//! - a fast-path fetch: the token read from the CLI's own MSAL cache
//!   (`fixtures/azure_cli/config/default`), by a new credential on a new cache — the first one
//!   in this fresh process, then the median of more;
//! - a fetch that spawns a stand-in `az` script (`#!/bin/sh` + `echo`), fast path off.
//!
//! A plain `main` (no criterion). `BENCH_QUICK=1` makes it a short smoke run (CI).

// A benchmark measures real time and reads its own settings from the environment.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::{median, quick};

use azure_credentials::system::{Env, Fs, Output};
use azure_credentials::testing::ScriptedExecutor;
use azure_credentials::{AzureCliCredential, TokenCache, TokenCredential};

const ARM: [&str; 1] = ["https://management.azure.com/.default"];

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/azure_cli"))
}

fn scripted_success() -> ScriptedExecutor {
    let executor = ScriptedExecutor::new();
    let stdout = br#"{"accessToken": "bench-token", "expires_on": 4102444800, "tenant": "t"}"#;
    executor.repeat_output(Output::new(Some(0), stdout.to_vec(), Vec::new()));
    executor
}

/// ns per call of `op`, over `calls` sequential awaits after a warm-up.
async fn per_call<F, Fut>(calls: u64, op: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future,
{
    for _ in 0..1000 {
        black_box(op().await);
    }
    let start = Instant::now();
    for _ in 0..calls {
        black_box(op().await);
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runs = if quick() { 1 } else { 7 };
    let calls: u64 = if quick() { 100_000 } else { 5_000_000 };
    rt.block_on(async {
        // Fast path in this fresh process: nothing read or parsed before.
        let fast_builder = || {
            AzureCliCredential::builder()
                .env(Env::from_pairs([(
                    "AZURE_CONFIG_DIR",
                    fixtures().join("config/default").to_str().unwrap(),
                )]))
                .fs(Fs::real())
                .executor(Arc::new(ScriptedExecutor::new())) // fails if az were run
                .cache(TokenCache::builder().build())
        };
        let start = Instant::now();
        let token = fast_builder()
            .build()
            .unwrap()
            .get_token(&ARM, None)
            .await
            .expect("the fast path answers");
        let first_fast = start.elapsed();
        assert_eq!(token.token().expose(), "fixture-cli-token-arm-exact");
        let mut fast = Vec::new();
        for _ in 0..if quick() { 3 } else { 50 } {
            let credential = fast_builder().build().unwrap();
            let start = Instant::now();
            black_box(credential.get_token(&ARM, None).await.unwrap());
            fast.push(start.elapsed().as_secs_f64() * 1e6);
        }
        println!(
            "fast path, first get_token in this process: {:.0} us; then median of fresh credentials: {:.0} us",
            first_fast.as_secs_f64() * 1e6,
            median(fast)
        );

        // Cache hits, with and without the login watch.
        let executor = scripted_success();
        let credential = AzureCliCredential::builder()
            .env(Env::from_pairs([
                ("HOME", "/nonexistent-bench-home"),
                ("PATH", fixtures().join("bin").to_str().unwrap()),
            ]))
            .executor(Arc::new(executor.clone()))
            .cache(TokenCache::builder().build())
            .build()
            .unwrap();
        credential.get_token(&ARM, None).await.unwrap();
        let cached = credential.cached().clone();
        let mut with_watch = Vec::new();
        let mut without_watch = Vec::new();
        for _ in 0..runs {
            with_watch.push(per_call(calls, || credential.get_token(&ARM, None)).await);
            without_watch.push(per_call(calls, || cached.get_token(&ARM, None)).await);
        }
        assert_eq!(executor.run_count(), 1);
        println!(
            "cache hit: AzureCliCredential::get_token {:.1} ns/call (with the login watch); CachedCredential::get_token {:.1} ns/call (without)",
            median(with_watch),
            median(without_watch)
        );

        // Spawning a stand-in az.
        #[cfg(unix)]
        {
            let dir =
                support::stand_in_az(r#"{"accessToken": "bench-token", "expires_on": 4102444800}"#);
            let mut spawns = Vec::new();
            for _ in 0..if quick() { 3 } else { 50 } {
                let credential = AzureCliCredential::builder()
                    .env(Env::from_pairs([("PATH", dir.to_str().unwrap())]))
                    .fast_path(false)
                    .process_timeout(Duration::from_secs(30))
                    .cache(TokenCache::builder().build())
                    .build()
                    .unwrap();
                let start = Instant::now();
                black_box(credential.get_token(&ARM, None).await.unwrap());
                spawns.push(start.elapsed().as_secs_f64() * 1e6);
            }
            std::fs::remove_dir_all(&dir).unwrap();
            println!(
                "spawning the stand-in az script: median {:.0} us per get_token",
                median(spawns)
            );
        }
    });
}
