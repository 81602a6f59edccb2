//! The default chain's first token, in three environments: `cargo bench --bench default_credential`.
//!
//! 1. only IMDS (the loopback mock): the chain skips the unconfigured environment and workload
//!    identity members, probes IMDS and gets its token;
//! 2. nothing reachable: IMDS refuses the connection and neither `az` nor `azd` is on PATH;
//! 3. a stand-in `az` only (a shell script printing a token, spawned for real).
//!
//! Each sample is a new credential with its own cache, so every run is a cold first token.
//! `BENCH_QUICK=1` runs a few iterations only.

// A benchmark measures real time, reads its settings from the environment and writes its
// stand-in script.
#![allow(clippy::disallowed_methods)]

#[cfg(unix)]
use std::path::PathBuf;
use std::time::{Duration, Instant};

use azure_credentials::system::{Env, Fs};
use azure_credentials::testing::MockManagedIdentity;
use azure_credentials::{DefaultAzureCredential, TokenCache, TokenCredential};

const SCOPE: [&str; 1] = ["https://management.azure.com/.default"];

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    println!(
        "  {name:<44} median {:>9.3?}  p90 {:>9.3?}  ({} runs)",
        at(0.5),
        at(0.9),
        samples.len()
    );
}

/// A directory holding an executable `az` that prints a token, like a logged-in CLI.
#[cfg(unix)]
fn stand_in_az() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("azure-credentials-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let az = dir.join("az");
    std::fs::write(
        &az,
        "#!/bin/sh\necho '{\"accessToken\": \"bench-token\", \"expires_on\": 4102444800, \"tenant\": \"72f988bf-86f1-41af-91ab-2d7cd011db47\", \"tokenType\": \"Bearer\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn chain(env: Env, imds: url::Url) -> DefaultAzureCredential {
    DefaultAzureCredential::builder()
        .env(env)
        .fs(Fs::memory())
        .cache(TokenCache::builder().build())
        .imds_endpoint(imds)
        .build()
        .unwrap()
}

fn main() {
    let runs = if std::env::var_os("BENCH_QUICK").is_some() {
        3
    } else {
        100
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    #[cfg(unix)]
    let bin = stand_in_az();
    println!("DefaultAzureCredential, first token of a new credential");
    rt.block_on(async {
        let mock = MockManagedIdentity::start().await;
        let no_tools = Env::from_pairs([("PATH", "/nonexistent"), ("HOME", "/home/bench")]);
        let refused = || {
            format!(
                "http://{}/metadata/identity/oauth2/token",
                MockManagedIdentity::refused_address()
            )
            .parse::<url::Url>()
            .unwrap()
        };

        let mut samples = Vec::new();
        for _ in 0..runs {
            let credential = chain(no_tools.clone(), mock.imds_endpoint());
            let started = Instant::now();
            credential.get_token(&SCOPE, None).await.unwrap();
            samples.push(started.elapsed());
        }
        report("only IMDS (loopback mock)", samples);

        let mut samples = Vec::new();
        for _ in 0..runs {
            let credential = chain(no_tools.clone(), refused());
            let started = Instant::now();
            let err = credential.get_token(&SCOPE, None).await.unwrap_err();
            samples.push(started.elapsed());
            assert_eq!(err.attempts().len(), 6);
        }
        report(
            "nothing reachable (IMDS refused, no developer tools)",
            samples,
        );

        #[cfg(unix)]
        {
            let with_az =
                Env::from_pairs([("PATH", bin.to_str().unwrap()), ("HOME", "/home/bench")]);
            let mut samples = Vec::new();
            for _ in 0..runs {
                let credential = chain(with_az.clone(), refused());
                let started = Instant::now();
                let token = credential.get_token(&SCOPE, None).await.unwrap();
                samples.push(started.elapsed());
                assert_eq!(token.source(), "AzureCliCredential");
            }
            report("stand-in az only (IMDS refused)", samples);
        }
    });
    #[cfg(unix)]
    let _ = std::fs::remove_dir_all(&bin);
}
