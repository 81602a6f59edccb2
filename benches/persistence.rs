//! Cold start from the persistent token cache: `cargo bench --bench persistence`.
//!
//! Each run plays a new process: a new `ClientSecretCredential` with a new in-memory cache,
//! asking for its first token, three ways — against the loopback `MockEntra` without
//! persistence (a token request each time), with persistence and the token already in
//! `~/.IdentityService/msal.cache.nocae` (the file is read, no request), and with persistence
//! and an empty file (a request, then the file is written under its lock).
//!
//! `BENCH_QUICK=1` runs a few iterations only.

// A benchmark measures real time and reads its own settings from the environment.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use azure_credentials::system::{Env, RetryPolicy};
use azure_credentials::testing::MockEntra;
use azure_credentials::{
    ClientSecretCredential, TokenCache, TokenCachePersistence, TokenCredential,
};

const SCOPE: [&str; 1] = ["https://vault.azure.net/.default"];

fn credential(authority: &str, home: Option<&Path>) -> ClientSecretCredential {
    let mut builder = ClientSecretCredential::builder()
        .tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47")
        .client_id("00000000-0000-0000-0000-0000000000b5")
        .secret("bench-secret")
        .authority_host(authority)
        .cache(TokenCache::builder().build())
        .retry_policy(RetryPolicy::none());
    builder = match home {
        Some(home) => builder
            .env(Env::from_pairs([("HOME", home.to_string_lossy())]))
            .persistence(TokenCachePersistence::new().allow_unencrypted_storage(true)),
        None => builder.env(Env::empty()),
    };
    builder.build().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "  {name:<58} median {:>9.3?}  p90 {:>9.3?}  ({} runs)",
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        samples.len()
    );
}

fn main() {
    let runs = if std::env::var_os("BENCH_QUICK").is_some() {
        5
    } else {
        300
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("target/bench-persistence-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    println!("a new process's first token (new credential, new in-memory cache)");
    rt.block_on(async {
        let entra = MockEntra::start().await;
        let authority = entra.authority_host();

        let mut fetched = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            credential(&authority, None)
                .get_token(&SCOPE, None)
                .await
                .unwrap();
            fetched.push(started.elapsed());
        }
        report(
            "no persistence: a token request to loopback MockEntra",
            fetched,
        );

        let warm = dir.join("warm");
        credential(&authority, Some(&warm))
            .get_token(&SCOPE, None)
            .await
            .unwrap();
        let before = entra.request_count();
        let mut from_file = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            credential(&authority, Some(&warm))
                .get_token(&SCOPE, None)
                .await
                .unwrap();
            from_file.push(started.elapsed());
        }
        assert_eq!(
            entra.request_count(),
            before,
            "every token came from the file"
        );
        report(
            "persisted: read from msal.cache.nocae, no request",
            from_file,
        );

        let mut written = Vec::with_capacity(runs);
        for run in 0..runs {
            let home = dir.join(format!("cold-{run}"));
            let started = Instant::now();
            credential(&authority, Some(&home))
                .get_token(&SCOPE, None)
                .await
                .unwrap();
            written.push(started.elapsed());
        }
        report(
            "persisted, empty: a request, then the file written",
            written,
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
