//! This crate's `DefaultAzureCredential` in the official Azure SDK for Rust (azure_core 1.x):
//!
//! ```sh
//! cargo run --example azure_core --features azure_core
//! cargo run --example azure_core --features azure_core -- \
//!     --url 'https://my-vault.vault.azure.net/secrets?api-version=7.5' --scope https://vault.azure.net/.default
//! ```
//!
//! It builds what every SDK client builds — an azure_core pipeline whose bearer-token policy
//! holds the `Arc<dyn azure_core::credentials::TokenCredential>` the client was given — and
//! sends one GET through it: by default the subscriptions the identity can see, from Azure
//! Resource Manager. With a client crate the same credential goes into the client's
//! constructor, e.g. `SecretClient::new(vault_url, credential, None)?`.
//!
//! TLS: this crate builds reqwest's rustls without a crypto provider (it uses *ring*, and
//! azure_core's default `reqwest_rustls` feature would bring aws-lc-rs), so the program installs
//! *ring* as the process's provider before azure_core builds its HTTP client.

// An example prints to the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::sync::Arc;

use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{ClientOptions, Context, Method, Pipeline, Request, Url};
use azure_credentials::DefaultAzureCredential;
use azure_credentials::interop::AzureCoreCredential;

const ARM_SUBSCRIPTIONS: &str = "https://management.azure.com/subscriptions?api-version=2022-12-01";
const ARM_SCOPE: &str = "https://management.azure.com/.default";

#[tokio::main]
async fn main() -> ExitCode {
    let (url, scope) = match parse_args() {
        Ok(args) => args,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match run(url, scope).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // For a credential error this is this crate's message: which source failed and why.
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(url: Url, scope: String) -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();

    // The lines a user writes: the default chain, adapted for the SDK.
    let credential = Arc::new(AzureCoreCredential::new(DefaultAzureCredential::new()?));

    // What an SDK client does with it.
    let auth = BearerTokenAuthorizationPolicy::new(credential, [scope]);
    let pipeline = Pipeline::new(
        Some(env!("CARGO_PKG_NAME")),
        Some(env!("CARGO_PKG_VERSION")),
        ClientOptions::default(),
        Vec::new(),
        vec![Arc::new(auth)],
        None,
    );
    let mut request = Request::new(url.clone(), Method::Get);
    let response = pipeline.send(&Context::new(), &mut request, None).await?;
    println!("GET {url}: {}", response.status());
    let body: serde_json::Value = response.into_body().json()?;
    match body.get("value").and_then(|v| v.as_array()) {
        Some(items) => {
            for item in items {
                let name = item
                    .get("displayName")
                    .or_else(|| item.get("id"))
                    .and_then(|v| v.as_str())
                    .unwrap_or("?");
                println!("  {name}");
            }
            println!("{} item(s)", items.len());
        }
        None => println!("{body:#}"),
    }
    Ok(())
}

fn parse_args() -> Result<(Url, String), String> {
    const USAGE: &str = "usage: azure_core [--url URL] [--scope SCOPE]";
    let mut url = ARM_SUBSCRIPTIONS.to_owned();
    let mut scope = ARM_SCOPE.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--url", Some(v)) => url = v,
            ("--scope", Some(v)) => scope = v,
            _ => return Err(USAGE.to_owned()),
        }
    }
    let url = Url::parse(&url).map_err(|e| format!("--url: {e}\n{USAGE}"))?;
    Ok((url, scope))
}
