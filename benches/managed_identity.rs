//! Managed identity figures: `cargo bench --bench managed_identity`.
//!
//! - cold first token against the loopback MockManagedIdentity (new credential and cache each time);
//! - time to `Unavailable` on a refused port in probe mode (what a credential chain sees off
//!   Azure), and without the probe (`ManagedIdentityCredential` alone, or
//!   `AZURE_POD_IDENTITY_AUTHORITY_HOST` set);
//! - total (logical) time and attempts for an endpoint that always answers 500, one that always
//!   answers 410, and one that always throttles (429, `Retry-After: 1`), measured on tokio's
//!   paused clock so the bench does not wait 80 s.
//!
//! `BENCH_QUICK=1` runs a few iterations only.

// A benchmark measures real time and reads its own settings from the environment.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

mod support;
use support::{report, runs, runtime};

use azure_credentials::system::{Env, Fs};
use azure_credentials::testing::{MockManagedIdentity, MockReply};
use azure_credentials::{ManagedIdentityCredential, TokenCache, TokenCredential};

const SCOPE: [&str; 1] = ["https://vault.azure.net/.default"];

fn credential(endpoint: url::Url, probe: bool) -> ManagedIdentityCredential {
    ManagedIdentityCredential::builder()
        .env(Env::empty())
        .fs(Fs::memory())
        .cache(TokenCache::builder().build())
        .imds_endpoint(endpoint)
        .probe(probe)
        .build()
        .unwrap()
}

fn main() {
    let runs = runs(300, 5);
    let rt = runtime();
    println!("managed identity against the loopback MockManagedIdentity");
    rt.block_on(async {
        let mock = MockManagedIdentity::start().await;
        let mut cold = Vec::new();
        let mut probed = Vec::new();
        for _ in 0..runs {
            let c = credential(mock.imds_endpoint(), false);
            let started = Instant::now();
            c.get_token(&SCOPE, None).await.unwrap();
            cold.push(started.elapsed());
            let c = credential(mock.imds_endpoint(), true);
            let started = Instant::now();
            c.get_token(&SCOPE, None).await.unwrap();
            probed.push(started.elapsed());
        }
        report("cold first token", cold);
        report("cold first token, probe first (chain mode)", probed);

        for (probe, name) in [
            (true, "refused port -> Unavailable (probe mode)"),
            (false, "refused port -> Unavailable (no probe)"),
        ] {
            let mut refused = Vec::new();
            for _ in 0..runs {
                let endpoint = format!(
                    "http://{}/metadata/identity/oauth2/token",
                    MockManagedIdentity::refused_address()
                );
                let c = credential(endpoint.parse().unwrap(), probe);
                let started = Instant::now();
                let err = c.get_token(&SCOPE, None).await.unwrap_err();
                refused.push(started.elapsed());
                assert!(err.is_unavailable());
            }
            report(name, refused);
        }
    });

    // Retries on tokio's paused clock: logical time, no real waiting.
    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    paused.block_on(async {
        for (reply, name) in [
            (MockReply::status(500), "always 500"),
            (MockReply::status(410), "always 410"),
            (
                MockReply::status(429).with_header("Retry-After", "1"),
                "always 429 with Retry-After: 1",
            ),
        ] {
            let mock = MockManagedIdentity::start().await;
            mock.set_default(reply);
            let c = credential(mock.imds_endpoint(), false);
            let started = tokio::time::Instant::now();
            let err = c.get_token(&SCOPE, None).await.unwrap_err();
            println!(
                "  {name:<52} gave up after {:>5.1} s (logical), {} attempts: {err}",
                started.elapsed().as_secs_f64(),
                mock.request_count()
            );
        }
    });
}
