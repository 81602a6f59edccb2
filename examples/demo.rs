//! The library's main job on a machine with no Azure: `cargo run --example demo`.
//!
//! It starts the bundled mock managed identity endpoint on loopback and runs the default chain,
//! `DefaultAzureCredential`, in an in-memory environment holding exactly the variables that
//! hosting environment sets. It shows what the chain makes of the environment (`explain()`),
//! which member it selects, and what a caller sees: one request for the first token, cache hits
//! after that, and a refresh that happens in the background while callers keep getting the
//! valid token. The cache runs on a manual clock so the demo can jump ahead.
//!
//! `--source imds|app-service|azure-ml|cloud-shell|arc|service-fabric` picks the hosting
//! environment the mock plays (default: imds).

// A demo prints to the terminal and measures real time.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_credentials::system::{Env, Fs, ManualClock};
use azure_credentials::testing::MockManagedIdentity;
use azure_credentials::{DefaultAzureCredential, Error, TokenCache, TokenCredential};

const SCOPE: [&str; 1] = ["https://management.azure.com/.default"];
const SECRET: &str = "demo-identity-header";
// The Arc agent's key directory on Linux, where the credential looks for it.
const ARC_KEY_PATH: &str = "/var/opt/azcmagent/tokens/demo.key";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let source = parse_source();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_target(false)
        .init();

    // The mock and the cache share a clock that we move by hand.
    let manual = ManualClock::new(time::OffsetDateTime::now_utc());
    let mock = MockManagedIdentity::start().await;
    mock.set_clock(manual.clock());
    mock.set_identity_header(SECRET);
    let fs = Fs::memory();
    // No developer tools on PATH: this is a "deployed" machine.
    let env = environment(&source, &mock, &fs)
        .await
        .with("PATH", "/nonexistent");
    println!("\nplaying {source}; the environment a program there sees: {env:?}");

    let chain = DefaultAzureCredential::builder()
        .env(env)
        .fs(fs)
        .imds_endpoint(mock.imds_endpoint())
        .cache(TokenCache::builder().clock(manual.clock()).build())
        .build()?;
    println!("\n{}", chain.explain());
    // What a consumer holds: `Arc<dyn TokenCredential>`.
    let credential: Arc<dyn TokenCredential> = Arc::new(chain.clone());

    println!("\n1. first token: a cache miss, one request to the endpoint");
    let started = Instant::now();
    let token = credential.get_token(&SCOPE, None).await?;
    println!("   got {token:?}");
    println!("   selected: {:?}", chain.selected());
    println!(
        "   in {:?}; requests so far: {}",
        started.elapsed(),
        mock.request_count()
    );

    println!("\n2. a million more calls: cache hits");
    let started = Instant::now();
    for _ in 0..1_000_000 {
        let hit = credential.get_token(&SCOPE, None).await?;
        assert!(hit.token() == token.token());
    }
    let per_call = started.elapsed() / 1_000_000;
    println!(
        "   {per_call:?} per call{}; requests so far: {}",
        if cfg!(debug_assertions) {
            " (debug build: try --release, or cargo bench --bench cache)"
        } else {
            ""
        },
        mock.request_count()
    );

    // The mock's tokens live an hour: refresh is due 5 minutes before expiry.
    println!("\n3. 56 minutes later the token is due for refresh");
    manual.advance(Duration::from_secs(56 * 60));
    let started = Instant::now();
    let same = credential.get_token(&SCOPE, None).await?;
    println!(
        "   the caller got the still-valid token at once ({:?}): same token = {}",
        started.elapsed(),
        same.token() == token.token()
    );
    // The refresh runs in the background; give it a moment.
    let mut fresh = same;
    while fresh.token() == token.token() {
        tokio::time::sleep(Duration::from_millis(1)).await;
        fresh = credential.get_token(&SCOPE, None).await?;
    }
    println!("   then the refreshed token: {fresh:?}");
    println!("   requests in all: {}", mock.request_count());

    println!(
        "\n4. what the chain says about itself now\n{}",
        chain.explain()
    );

    println!("\nNo secret was printed: tokens show as Secret(<redacted>).");
    Ok(())
}

fn parse_source() -> String {
    let mut args = std::env::args().skip(1);
    let mut source = "imds".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--source" => source = args.next().unwrap_or_default(),
            other => {
                eprintln!("unknown argument {other:?}");
                usage();
            }
        }
    }
    if !matches!(
        source.as_str(),
        "imds" | "app-service" | "azure-ml" | "cloud-shell" | "arc" | "service-fabric"
    ) {
        usage();
    }
    source
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo run --example demo [-- --source imds|app-service|azure-ml|cloud-shell|arc|service-fabric]"
    );
    std::process::exit(2)
}

/// The variables the hosting environment would set, pointing at the mock.
async fn environment(source: &str, mock: &MockManagedIdentity, fs: &Fs) -> Env {
    match source {
        "app-service" => Env::empty()
            .with("IDENTITY_ENDPOINT", mock.app_service_endpoint().as_str())
            .with("IDENTITY_HEADER", SECRET),
        "azure-ml" => Env::empty()
            .with("MSI_ENDPOINT", mock.azure_ml_endpoint().as_str())
            .with("MSI_SECRET", SECRET),
        "cloud-shell" => Env::empty().with("MSI_ENDPOINT", mock.cloud_shell_endpoint().as_str()),
        "arc" => {
            // The agent's key file, in an in-memory file system.
            mock.set_arc_key(ARC_KEY_PATH, "demo-arc-key");
            fs.write(ARC_KEY_PATH, "demo-arc-key");
            Env::empty()
                .with("IDENTITY_ENDPOINT", mock.arc_endpoint().as_str())
                .with("IMDS_ENDPOINT", "http://127.0.0.1:40342")
        }
        "service-fabric" => {
            // The cluster's self-signed certificate, pinned by its thumbprint.
            let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
                .expect("a self-signed certificate");
            let cert = generated.cert.der().clone();
            let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
                generated.signing_key.serialize_der().into(),
            );
            let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
            let thumbprint: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
            let mut url = mock.serve_tls(vec![cert], key).await;
            url.set_path("/servicefabric/token");
            Env::empty()
                .with("IDENTITY_ENDPOINT", url.as_str())
                .with("IDENTITY_HEADER", SECRET)
                .with("IDENTITY_SERVER_THUMBPRINT", thumbprint)
        }
        _ => Env::empty(),
    }
}
