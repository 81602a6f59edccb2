//! Calling an Azure REST API with plain reqwest: the `BearerAuth` middleware puts a token from
//! `DefaultAzureCredential` on each request (and answers CAE challenges). Lists the
//! subscriptions the signed-in identity can see:
//!
//! ```sh
//! az login   # or any identity DefaultAzureCredential finds
//! cargo run --example arm_subscriptions --features reqwest-middleware
//! ```
//!
//! It talks to the real Azure Resource Manager, so it needs Azure and a signed-in identity:
//! CI only builds it, never runs it.
//!
//! TLS: this crate builds reqwest's rustls without a crypto provider, so the program installs
//! *ring* as the process's provider before building its client.

// An example prints to the terminal.
#![allow(clippy::print_stdout)]

use azure_credentials::{DefaultAzureCredential, interop::BearerAuth};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let auth = BearerAuth::new(
        DefaultAzureCredential::new()?,
        ["https://management.azure.com/.default"],
    )?;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(auth)
        .build();
    let url = "https://management.azure.com/subscriptions?api-version=2022-12-01";
    let body = client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let list: serde_json::Value = serde_json::from_str(&body)?;
    for subscription in list["value"].as_array().into_iter().flatten() {
        println!(
            "{}  {}",
            subscription["subscriptionId"].as_str().unwrap_or("?"),
            subscription["displayName"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}
