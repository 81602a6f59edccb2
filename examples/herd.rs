//! A start-up herd of real processes against a throttled IMDS (issue 17), measured:
//!
//! ```text
//! cargo run --release --example herd -- --processes 200 --rate 20 --seconds 30
//! ```
//!
//! Starts the bundled mock IMDS on loopback with IMDS's documented limit (`--rate` requests a
//! second, burst 5, then `429` with `Retry-After: 1`), then starts `--processes` copies of this
//! program at once. Each builds its own `ManagedIdentityCredential` against the mock (nothing
//! else is contacted) and calls `get_token` every 500 ms for `--seconds`. Printed: when the
//! last process got its first token (the goal is within 1.5 × processes / rate), how many
//! calls failed, and how many requests the mock throttled.

// An example measures real time.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use azure_credentials::system::{Env, Fs};
use azure_credentials::testing::MockManagedIdentity;
use azure_credentials::{ManagedIdentityCredential, TokenCache, TokenCredential};

const SCOPE: [&str; 1] = ["https://management.azure.com/.default"];

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], arg(&args, "--seconds", 30));
        return;
    }
    let processes = arg(&args, "--processes", 200);
    let rate = arg(&args, "--rate", 20);
    let seconds = arg(&args, "--seconds", 30);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mock = runtime.block_on(MockManagedIdentity::start());
    runtime.block_on(async { mock.rate_limit(rate as f64, 5, Duration::from_secs(1)) });
    let endpoint = mock.imds_endpoint().to_string();
    let program = std::env::current_exe().expect("this program's path");
    println!(
        "{processes} processes, one get_token every 500 ms for {seconds} s, against an IMDS allowing {rate}/s (burst 5)"
    );
    let started_ms = unix_millis();
    let started = Instant::now();
    let children: Vec<_> = (0..processes)
        .map(|_| {
            Command::new(&program)
                .args(["--child", &endpoint, "--seconds", &seconds.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .expect("starting a child process")
        })
        .collect();
    println!("started {processes} processes in {:.2?}", started.elapsed());
    let mut last_first_token = 0u128;
    let (mut calls, mut failed, mut without_token) = (0u64, 0u64, 0u64);
    for mut child in children {
        let stdout = child.stdout.take().expect("piped");
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // "first_token_ms=<unix ms or 0> calls=<n> failed=<n>"
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|f| f.strip_prefix(name))
                    .and_then(|v| v.parse::<u128>().ok())
                    .unwrap_or(0)
            };
            let first = field("first_token_ms=");
            if first == 0 {
                without_token += 1;
            } else {
                last_first_token = last_first_token.max(first.saturating_sub(started_ms));
            }
            calls += field("calls=") as u64;
            failed += field("failed=") as u64;
        }
        let _ = child.wait();
    }
    let ideal = processes as f64 / rate as f64;
    println!(
        "every process held a token {:.1} s after the start (N / rate = {ideal:.1} s, goal ≤ {:.1} s); {without_token} never did",
        last_first_token as f64 / 1000.0,
        ideal * 1.5
    );
    println!(
        "{calls} get_token calls, {failed} failed; the mock answered {} token requests and throttled {}",
        runtime.block_on(async { mock.token_request_count() }),
        runtime.block_on(async { mock.throttled_count() }),
    );
}

/// One process of the herd.
fn child(endpoint: &str, seconds: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let credential = ManagedIdentityCredential::builder()
            .env(Env::empty())
            .fs(Fs::memory())
            .cache(TokenCache::builder().build())
            .imds_endpoint(endpoint.parse().expect("the mock's URL"))
            .build()
            .expect("a credential");
        let until = Instant::now() + Duration::from_secs(seconds);
        let (mut first_token_ms, mut calls, mut failed) = (0u128, 0u64, 0u64);
        while Instant::now() < until {
            calls += 1;
            match credential.get_token(&SCOPE, None).await {
                Ok(_) if first_token_ms == 0 => first_token_ms = unix_millis(),
                Ok(_) => {}
                Err(_) => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        println!("first_token_ms={first_token_ms} calls={calls} failed={failed}");
    });
}
