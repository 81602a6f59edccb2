//! `DefaultAzureCredential` on made-up machines.

use azure_credentials::system::{Env, Fs};
use azure_credentials::testing::MockImds;
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

/// Checks that the mock IMDS was asked for one token, for `resource` (IMDS's name for the scope
/// without `/.default`).
pub fn assert_one_token_request(imds: &MockImds, resource: &str) {
    assert_eq!(imds.token_request_count(), 1, "{:?}", imds.requests());
    let token_request = imds
        .requests()
        .into_iter()
        .find(|r| r.header("metadata").is_some())
        .unwrap();
    assert_eq!(token_request.query("resource"), Some(resource));
}
