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

use std::time::Instant;

mod support;
use support::{report, runs, runtime};

use azure_credentials::system::{Env, Fs};
use azure_credentials::testing::MockManagedIdentity;
use azure_credentials::{DefaultAzureCredential, TokenCache, TokenCredential};

const SCOPE: [&str; 1] = ["https://management.azure.com/.default"];

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
    let runs = runs(100, 3);
    let rt = runtime();
    #[cfg(unix)]
    let bin = support::stand_in_az(
        r#"{"accessToken": "bench-token", "expires_on": 4102444800, "tenant": "72f988bf-86f1-41af-91ab-2d7cd011db47", "tokenType": "Bearer"}"#,
    );
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
