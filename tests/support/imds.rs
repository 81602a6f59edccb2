//! IMDS as the tests meet it: absent (a machine off Azure), or a mock that must have been asked
//! once.

use azure_credentials::system::{Env, Fs};
use azure_credentials::testing::MockManagedIdentity;
use azure_credentials::{ManagedIdentityCredential, TokenCache};

/// The secret the mock expects in `X-IDENTITY-HEADER` (or `secret`).
pub const SECRET: &str = "identity-header-secret-value";
/// Where the Azure Arc agent keeps its keys, as the credential is told.
pub const ARC_DIR: &str = "/var/opt/azcmagent/tokens";
/// The key file the mock's Arc challenge names, and its contents.
pub const ARC_KEY_PATH: &str = "/var/opt/azcmagent/tokens/mock.key";
pub const ARC_KEY: &str = "arc-key-secret-value";
/// A user-assigned identity's client id.
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";

/// An IMDS token endpoint on a loopback port where nothing listens: a machine off Azure.
pub fn refused_endpoint() -> url::Url {
    format!(
        "http://{}/metadata/identity/oauth2/token",
        MockManagedIdentity::refused_address()
    )
    .parse()
    .unwrap()
}

/// `ManagedIdentityCredential` as a chain uses it (with the probe) on a machine off Azure:
/// nothing in the environment, IMDS at [`refused_endpoint`], a cache of its own.
pub fn probing_credential_off_azure() -> ManagedIdentityCredential {
    ManagedIdentityCredential::builder()
        .env(Env::empty())
        .fs(Fs::memory())
        .cache(TokenCache::builder().build())
        .imds_endpoint(refused_endpoint())
        .probe(true)
        .build()
        .unwrap()
}

/// Checks that the mock IMDS was asked for one token, for `resource` (IMDS's name for the scope
/// without `/.default`).
pub fn assert_one_token_request(imds: &MockManagedIdentity, resource: &str) {
    assert_eq!(imds.token_request_count(), 1, "{:?}", imds.requests());
    let token_request = imds
        .requests()
        .into_iter()
        .find(|r| r.header("metadata").is_some())
        .unwrap();
    assert_eq!(token_request.query("resource"), Some(resource));
}

/// Checks what an SDK client did with a credential over the mock IMDS: each of `requests` bore
/// the mock's first token, which the mock issued once, for `resource`, and `printed` (the
/// `Debug` of the client and credential) does not show a token.
pub fn assert_served_by_one_token(
    requests: &[super::http::Request],
    imds: &MockManagedIdentity,
    resource: &str,
    printed: &str,
) {
    super::http::assert_each_bears(requests, "mock-imds-token-1");
    assert_one_token_request(imds, resource);
    assert!(!printed.contains("mock-imds-token"), "{printed}");
}
