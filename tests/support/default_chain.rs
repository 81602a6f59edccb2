//! `DefaultAzureCredential` on made-up machines.

use azure_credentials::system::{Env, Fs};
use azure_credentials::{DefaultAzureCredential, DefaultAzureCredentialBuilder, TokenCache};

/// The default chain on a machine whose only identity is the managed identity behind
/// `imds_endpoint` (no service principal, no developer tools on `PATH`), with a cache of its own.
pub fn only_managed_identity(imds_endpoint: url::Url) -> DefaultAzureCredentialBuilder {
    DefaultAzureCredential::builder()
        .env(Env::from_pairs([
            ("PATH", "/nonexistent"),
            ("HOME", "/home/dev"),
        ]))
        .fs(Fs::memory())
        .cache(TokenCache::builder().build())
        .imds_endpoint(imds_endpoint)
}
