//! Runs the service principal and workload identity scenarios with a TRACE-level capturing
//! subscriber and fails if a client secret, a certificate's private key or password, a federated
//! token, a client assertion or an access token appears in a log line, a `Debug` rendering or
//! an error message.

mod support;
use support::entra::{TENANT, quick_retries, transient_503, verifying_entra_and_cache};
use support::federated::assertion_expired;
use support::fixtures;
use support::scopes::VAULT as SCOPE;

use std::path::Path;
use std::time::Duration;

use support::log_capture::{LeakTest, Printed, with_signatures};

use azure_credentials::system::{Env, Fs, RetryPolicy};
use azure_credentials::testing::{MockEntra, MockEntraReply};
use azure_credentials::{
    ClientCertificateCredential, ClientSecretCredential, EnvironmentCredential, TokenCredential,
    TokenRequestOptions, WorkloadIdentityCredential,
};

const CLIENT_SECRET: &str = "entra-client-secret-value";
const PFX_PASSWORD: &str = "fixture-password";
const FEDERATED_TOKEN: &str = "federated-token-secret-value";
const USER_PASSWORD: &str = "user-password-secret-value";
const TOKEN_FILE: &str = "/var/run/secrets/azure/tokens/azure-identity-token";

#[test]
fn no_entra_secret_reaches_logs_debug_or_errors() {
    let mut t = LeakTest::start();
    let assertions = t.runtime.block_on(scenarios(&mut t.seen));

    // The private key, as it appears in the PEM file (every base64 line of its body) and in
    // the form the key takes in memory dumps of the PKCS#8 DER (its first line is enough).
    let key_pem = std::fs::read_to_string(fixtures::cert("client-key-pkcs8.pem")).unwrap();
    let key_lines: Vec<&str> = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .collect();
    let mut secrets: Vec<&str> = vec![
        CLIENT_SECRET,
        PFX_PASSWORD,
        FEDERATED_TOKEN,
        USER_PASSWORD,
        "mock-entra-token-",
        "eyJ-entra-token-",
        // URL-encoded form bodies start like this.
        "client_secret=",
        "client_assertion=",
    ];
    secrets.extend(key_lines.iter().copied());
    // Each client assertion the credential sent (header.claims.signature), and its signature.
    assert!(!assertions.is_empty());
    secrets.extend(with_signatures(&assertions));
    t.assert_no_secrets(
        &secrets,
        &[
            "requesting a token from Microsoft Entra ID",
            "Microsoft Entra ID issued a token",
            "retrying HTTP request",
            "read the federated token file",
            "reading the token file again and retrying once",
            "claims challenge",
            "token fetch failed",
        ],
    );
}

/// Runs everything; returns the client assertions that were sent.
async fn scenarios(seen: &mut Printed) -> Vec<String> {
    let (entra, clock, cache) = verifying_entra_and_cache(CLIENT_SECRET).await;
    let retries = quick_retries();
    seen.debug(&entra);

    // Client secret: a retried 503, a token, a hit, a claims challenge, a refusal, HTML.
    let builder = ClientSecretCredential::builder()
        .tenant_id(TENANT)
        .client_id("secret-client")
        .secret(CLIENT_SECRET)
        .authority_host(entra.authority_host())
        .env(Env::empty())
        .cache(cache.clone())
        .retry_policy(retries.clone());
    let secret_credential = seen.built(builder, |b| b.build());
    entra.push_many([transient_503(), MockEntraReply::token("eyJ-entra-token-1")]);
    let token = secret_credential.get_token(SCOPE, None).await.unwrap();
    seen.debug(&token);
    seen.debug(&secret_credential.get_token(SCOPE, None).await.unwrap());
    let claims = TokenRequestOptions::default()
        .with_claims(r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#)
        .with_enable_cae(true);
    seen.debug(
        &secret_credential
            .get_token(SCOPE, Some(&claims))
            .await
            .unwrap(),
    );
    let wrong = ClientSecretCredential::builder()
        .tenant_id(TENANT)
        .client_id("secret-client")
        .secret("entra-client-secret-value-but-wrong")
        .authority_host(entra.authority_host())
        .env(Env::empty())
        .cache(cache.clone())
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    seen.error(&wrong.get_token(SCOPE, None).await.unwrap_err());
    entra.push(MockEntraReply::html(403));
    let other_scope = ["https://storage.azure.com/.default"];
    seen.error(
        &secret_credential
            .get_token(&other_scope, None)
            .await
            .unwrap_err(),
    );
    entra.push(MockEntraReply::json(
        200,
        r#"{"access_token":"eyJ-entra-token-malformed","expires_in":"#,
    ));
    clock.advance(Duration::from_secs(5));
    seen.error(
        &secret_credential
            .get_token(&other_scope, None)
            .await
            .unwrap_err(),
    );

    // Client certificate: PEM and password-protected PKCS#12 with the chain; a wrong password.
    #[allow(unused_mut)] // PKCS#12 only with the feature.
    let mut files: Vec<(&str, Option<&str>)> = vec![("client.pem", None)];
    #[cfg(feature = "pkcs12")]
    files.push(("client.pfx", Some(PFX_PASSWORD)));
    for (file, password) in files {
        let mut builder = ClientCertificateCredential::builder()
            .tenant_id(TENANT)
            .client_id(format!("cert-client-{file}"))
            .certificate_path(fixtures::cert(file))
            .send_certificate_chain(true)
            .authority_host(entra.authority_host())
            .env(Env::empty())
            .cache(cache.clone());
        if let Some(password) = password {
            builder = builder.password(password);
        }
        let credential = seen.built(builder, |b| b.build());
        seen.debug(&credential.get_token(SCOPE, None).await.unwrap());
    }
    let bytes_builder = ClientCertificateCredential::builder()
        .tenant_id(TENANT)
        .client_id("cert-bytes")
        .certificate(std::fs::read(fixtures::cert("client-key-pkcs8.pem")).unwrap())
        .password(PFX_PASSWORD);
    seen.debug(&bytes_builder);
    seen.error(&bytes_builder.build().unwrap_err());
    let err = ClientCertificateCredential::builder()
        .tenant_id(TENANT)
        .client_id("cert-client")
        .certificate_path(fixtures::cert("client.pfx"))
        .password("fixture-password-wrong")
        .env(Env::empty())
        .build()
        .unwrap_err();
    seen.error(&err);

    // Workload identity (its own mock: the federated token is not signed by the test
    // certificate): an exchange, an expired assertion re-read and retried, a missing file.
    let assertions: Vec<String> = entra
        .requests()
        .iter()
        .filter(|r| r.assertion().is_some())
        .filter_map(|r| r.form("client_assertion").map(str::to_owned))
        .collect();
    for request in entra.requests() {
        if let Some(assertion) = request.assertion() {
            seen.debug(assertion);
        }
    }
    let entra = MockEntra::start().await;
    let fs = Fs::memory();
    fs.write(TOKEN_FILE, format!("{FEDERATED_TOKEN}\n"));
    let env = Env::from_pairs([
        ("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE.to_owned()),
        ("AZURE_CLIENT_ID", "wi-client".to_owned()),
        ("AZURE_TENANT_ID", TENANT.to_owned()),
        ("AZURE_AUTHORITY_HOST", entra.authority_host()),
    ]);
    let builder = WorkloadIdentityCredential::builder()
        .env(env.clone())
        .fs(fs.clone())
        .cache(cache.clone())
        .retry_policy(RetryPolicy::none());
    let workload = seen.built(builder, |b| b.build());
    entra.push(assertion_expired());
    seen.debug(&workload.get_token(SCOPE, None).await.unwrap());
    entra.set_default(assertion_expired());
    seen.error(&workload.get_token(&other_scope, None).await.unwrap_err());
    entra.set_default(MockEntraReply::auto_token());
    fs.remove(Path::new(TOKEN_FILE));
    clock.advance(Duration::from_secs(5));
    seen.error(&workload.get_token(&other_scope, None).await.unwrap_err());

    // Environment: a secret, and the unsupported username / password.
    let env_credential = EnvironmentCredential::builder()
        .env(Env::from_pairs([
            ("AZURE_TENANT_ID", TENANT.to_owned()),
            ("AZURE_CLIENT_ID", "env-client".to_owned()),
            ("AZURE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            ("AZURE_AUTHORITY_HOST", entra.authority_host()),
        ]))
        .cache(cache.clone())
        .build()
        .unwrap();
    seen.debug(&env_credential);
    seen.debug(&env_credential.get_token(SCOPE, None).await.unwrap());
    let err = EnvironmentCredential::builder()
        .env(Env::from_pairs([
            ("AZURE_USERNAME", "user@contoso.com"),
            ("AZURE_PASSWORD", USER_PASSWORD),
        ]))
        .build()
        .unwrap_err();
    seen.error(&err);

    seen.debug(&entra.requests());
    assertions
}
