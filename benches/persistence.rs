//! Cold start from the persistent token cache: `cargo bench --features persistence --bench persistence`.
//!
//! Each run plays a new process: a new `ClientSecretCredential` with a new in-memory cache,
//! asking for its first token, three ways — against the loopback `MockEntra` without
//! persistence (a token request each time), with persistence and the token already in
//! `~/.IdentityService/msal.cache.nocae` (the file is read, no request), and with persistence
//! and an empty file (a request, then the file is written under its lock).
//!
//! Those runs share this process, so the second one's credentials find the document the
//! process already read (the file's stamp unchanged: no read). The last cases are real new
//! processes (this binary run again as a child, timing itself from `build()` to the token):
//! the file store, and the Secret Service when a session bus is there
//! (`.ci/with-keyring cargo bench --all-features --bench persistence`; skipped visibly
//! otherwise): a connection, the probe, the secret read and parsed.
//!
//! `BENCH_QUICK=1` runs a few iterations only.

// A benchmark measures real time and reads its own settings from the environment.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::{report, runs, runtime};

use azure_credentials::system::{Env, RetryPolicy};
use azure_credentials::testing::MockEntra;
use azure_credentials::{
    ClientSecretCredential, TokenCache, TokenCachePersistence, TokenCredential,
};

const SCOPE: [&str; 1] = ["https://vault.azure.net/.default"];

/// Set on a child's command only: `file` or `secret-service`; with the home directory, the
/// authority and (for the Secret Service) the bus.
const CHILD: &str = "BENCH_PERSISTENCE_CHILD";
const CHILD_HOME: &str = "BENCH_PERSISTENCE_HOME";
const CHILD_AUTHORITY: &str = "BENCH_PERSISTENCE_AUTHORITY";
const BUS: &str = "DBUS_SESSION_BUS_ADDRESS";

/// A child: builds the credential of `store`, gets one token, prints the nanoseconds it took.
fn child(store: &str) {
    let home = std::env::var(CHILD_HOME).unwrap();
    let authority = std::env::var(CHILD_AUTHORITY).unwrap();
    let mut pairs = vec![("HOME".to_owned(), home)];
    let persistence = match store {
        "secret-service" => {
            pairs.push((BUS.to_owned(), std::env::var(BUS).unwrap()));
            TokenCachePersistence::new().name("azure-credentials-bench")
        }
        _ => TokenCachePersistence::new().allow_unencrypted_storage(true),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let credential = ClientSecretCredential::builder()
        .tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47")
        .client_id("00000000-0000-0000-0000-0000000000b5")
        .secret("bench-secret")
        .authority_host(authority)
        .cache(TokenCache::builder().build())
        .retry_policy(RetryPolicy::none())
        .env(Env::from_pairs(pairs))
        .persistence(persistence)
        .build()
        .unwrap();
    rt.block_on(credential.get_token(&SCOPE, None)).unwrap();
    println!("{}", started.elapsed().as_nanos());
}

/// `runs` new processes of `store` (the first fills the store, untimed); each one's own time.
fn in_new_processes(store: &str, home: &Path, authority: &str, runs: usize) -> Vec<Duration> {
    let run = || {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .env(CHILD, store)
            .env(CHILD_HOME, home)
            .env(CHILD_AUTHORITY, authority);
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let nanos: u64 = String::from_utf8(output.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Duration::from_nanos(nanos)
    };
    run();
    (0..runs).map(|_| run()).collect()
}

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

fn main() {
    if let Ok(store) = std::env::var(CHILD) {
        return child(&store);
    }
    let runs = runs(300, 5);
    let rt = runtime();
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

        let process_runs = runs.min(30);
        let before = entra.request_count();
        let samples = tokio::task::block_in_place(|| {
            in_new_processes("file", &dir.join("process-file"), &authority, process_runs)
        });
        assert_eq!(entra.request_count(), before + 1, "only the first child fetched");
        report("new process, file: build() + first token, no request", samples);

        if std::env::var_os(BUS).is_none() {
            println!("  SKIPPED the Secret Service case: no session bus (run it under .ci/with-keyring, --all-features)");
        } else if !cfg!(feature = "secret-service") {
            println!("  SKIPPED the Secret Service case: built without the feature secret-service");
        } else {
            let before = entra.request_count();
            let samples = tokio::task::block_in_place(|| {
                in_new_processes(
                    "secret-service",
                    &dir.join("process-secret-service"),
                    &authority,
                    process_runs,
                )
            });
            assert_eq!(entra.request_count(), before + 1, "only the first child fetched");
            report(
                "new process, Secret Service: connect, probe, read the secret",
                samples,
            );
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
