//! This crate's `DefaultAzureCredential` as the credential of Apache Arrow's `object_store`
//! Azure store (object_store 0.14; what DataFusion, delta-rs and Polars read Azure through):
//!
//! ```sh
//! cargo run --example object_store --features object_store -- --account mystorageaccount --container data
//! cargo run --example object_store --features object_store -- --account mystorageaccount --container data \
//!     --prefix reports/ --get reports/2026/summary.csv
//! ```
//!
//! It lists the container (one level below `--prefix`) and, with `--get`, reads one blob. The
//! identity needs a data role on the account, e.g. *Storage Blob Data Reader*.
//!
//! TLS: object_store's `azure` feature would bring reqwest with aws-lc-rs; this crate depends
//! on its `azure-base` feature and builds reqwest's rustls without a crypto provider, so the
//! program installs *ring* as the process's provider before object_store builds its client.

// An example prints to the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::sync::Arc;

use azure_credentials::DefaultAzureCredential;
use azure_credentials::interop::ObjectStoreCredential;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

#[derive(Default)]
struct Args {
    account: String,
    container: String,
    prefix: Option<String>,
    get: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // For a credential error this ends with this crate's message: which source failed
            // and why.
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();

    // The lines a user writes.
    let credential = Arc::new(ObjectStoreCredential::new(DefaultAzureCredential::new()?));
    let store = MicrosoftAzureBuilder::new()
        .with_account(&args.account)
        .with_container_name(&args.container)
        .with_credentials(credential)
        .build()?;

    let prefix = args.prefix.as_deref().map(Path::from);
    let listing = store.list_with_delimiter(prefix.as_ref()).await?;
    for dir in &listing.common_prefixes {
        println!("{dir}/");
    }
    for object in &listing.objects {
        println!(
            "{}  {} bytes  {}",
            object.location, object.size, object.last_modified
        );
    }
    if let Some(path) = args.get {
        let bytes = store.get(&Path::from(path.as_str())).await?.bytes().await?;
        println!("{path}: {} bytes", bytes.len());
    }
    Ok(())
}

fn parse_args() -> Result<Args, String> {
    const USAGE: &str =
        "usage: object_store --account NAME --container NAME [--prefix PREFIX] [--get PATH]";
    let mut parsed = Args::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(USAGE)?;
        match arg.as_str() {
            "--account" => parsed.account = value,
            "--container" => parsed.container = value,
            "--prefix" => parsed.prefix = Some(value),
            "--get" => parsed.get = Some(value),
            _ => return Err(USAGE.to_owned()),
        }
    }
    if parsed.account.is_empty() || parsed.container.is_empty() {
        return Err(USAGE.to_owned());
    }
    Ok(parsed)
}
