//! Error texts from outside the process — Entra's `error_description`, a managed identity
//! endpoint's message, az's stderr — that echo a secret (a client assertion, a federated token,
//! a client secret, the identity header, a token fragment): the secret reaches neither the
//! `Error` (its message, `Debug`, sources) nor a log line at any level.

mod support;
use support::cache;

use std::sync::Arc;
use std::time::Duration;

use support::log_capture::{LeakTest, Printed};

use azure_credentials::system::{Env, Fs, Output, RetryPolicy};
use azure_credentials::testing::{
    MockEntra, MockEntraReply, MockManagedIdentity, MockReply, ScriptedExecutor,
};
use azure_credentials::{
    AzureCliCredential, ManagedIdentityCredential, TokenCache, TokenCredential,
};

const SCOPE: &[&str] = &["https://vault.azure.net/.default"];
/// A client assertion (RS256 JWT) as a proxy or identity provider might echo it.
const ASSERTION: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsIng1dCI6IkFCQ0RFRkdISUpLTE1OT1AifQ.eyJhdWQiOiJodHRwczovL2xvZ2luLm1pY3Jvc29mdG9ubGluZS5jb20vNzJmOTg4YmYvb2F1dGgyL3YyLjAvdG9rZW4iLCJpc3MiOiIxMTExIiwic3ViIjoiMTExMSJ9.TWFueS1ieXRlcy1vZi1zaWduYXR1cmUtbWFueS1ieXRlcy1vZi1zaWduYXR1cmU";
/// The middle and end of a token, without its `eyJ` header.
const FRAGMENT: &str = "0aWQiOiI3MmY5ODhiZiIsIm9pZCI6IjEyMyJ9.TWFueS1ieXRlcy1vZi1zaWduYXR1cmU";
const CLIENT_SECRET: &str = "Qx28Q~pL4mZ.vN7_bK2cR9-tY6wE3sD1fG8hJ0kL";
const IDENTITY_HEADER: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const PASSWORD: &str = "hunter2-correct-horse";

fn secrets() -> [&'static str; 5] {
    [
        ASSERTION,
        FRAGMENT,
        CLIENT_SECRET,
        IDENTITY_HEADER,
        PASSWORD,
    ]
}

#[test]
fn echoed_secrets_reach_neither_errors_nor_logs() {
    let mut t = LeakTest::start();
    let errors = t.runtime.block_on(scenarios(&mut t.seen));
    assert_eq!(errors, 5, "every scenario failed as scripted");
    let logs = t.logs.text();
    for secret in secrets() {
        // The whole secret, and any 12-character piece of it.
        let pieces: Vec<&str> = (0..=secret.len() - 12)
            .step_by(6)
            .map(|i| &secret[i..i + 12])
            .collect();
        for piece in pieces {
            assert!(
                !logs.contains(piece),
                "{piece:?} of a secret in the logs:\n{logs}"
            );
            for text in &t.seen.0 {
                assert!(!text.contains(piece), "{piece:?} of a secret in:\n{text}");
            }
        }
    }
    assert!(!logs.contains("eyJ"), "{logs}");
}

async fn scenarios(seen: &mut Printed) -> usize {
    let mut errors = Vec::new();
    // Entra echoing the client assertion and the client secret in error_description.
    let entra = MockEntra::start().await;
    for description in [
        format!("AADSTS50027: JWT token is invalid or malformed: {ASSERTION}. Trace ID: 1"),
        format!("AADSTS7000215: Invalid client secret provided: client_secret={CLIENT_SECRET}"),
        format!("AADSTS90002: Bad request: the token .{FRAGMENT} and password: {PASSWORD}"),
    ] {
        entra.push(MockEntraReply::error(
            400,
            "invalid_request",
            50027,
            &description,
        ));
        let credential = support::entra::secret_credential(&entra.authority_host())
            .retry_policy(RetryPolicy::none())
            .build()
            .unwrap();
        errors.push(credential.get_token(SCOPE, None).await.unwrap_err());
    }

    // An identity endpoint echoing the identity header and a token fragment.
    let imds = MockManagedIdentity::start().await;
    imds.push(MockReply::error(
        400,
        "invalid_request",
        &format!("Rejected X-IDENTITY-HEADER: {IDENTITY_HEADER} with token .{FRAGMENT}"),
    ));
    let credential = ManagedIdentityCredential::builder()
        .env(Env::empty())
        .imds_endpoint(imds.imds_endpoint())
        .cache(TokenCache::builder().build())
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    errors.push(credential.get_token(SCOPE, None).await.unwrap_err());

    // az's stderr with a password in it.
    let executor = ScriptedExecutor::new();
    executor.push_output(Output::new(
        Some(1),
        Vec::new(),
        format!("ERROR: authentication failed for password: {PASSWORD}\n").into_bytes(),
    ));
    let clock = cache::manual_clock();
    let credential = AzureCliCredential::builder()
        .env(Env::from_pairs([
            (
                "PATH",
                concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/azure_cli/bin"),
            ),
            ("AZURE_CONFIG_DIR", "/home/dev/.azure"),
        ]))
        .fs(Fs::memory())
        .executor(Arc::new(executor))
        .cache(
            TokenCache::builder()
                .clock(clock.clock())
                .failure_cooldown(Duration::ZERO)
                .build(),
        )
        .build()
        .unwrap();
    errors.push(credential.get_token(SCOPE, None).await.unwrap_err());
    for err in &errors {
        seen.error(err);
    }
    errors.len()
}
