//! Runs the on-behalf-of scenarios with a TRACE-level capturing subscriber and fails if a user
//! assertion (the caller's token, or a piece of it), the API's client secret or certificate
//! password, a client assertion or an issued token appears in a log line, a `Debug` rendering
//! or an error message.

mod support;
use support::fixtures;
use support::jwt::jwt;

use std::time::Duration;

use support::entra::{quick_retries, transient_503, verifying_entra_and_cache};
use support::log_capture::{LeakTest, Printed, with_signatures};

use azure_credentials::system::Env;
use azure_credentials::testing::MockEntraReply;
use azure_credentials::{
    OnBehalfOfCredential, OnBehalfOfCredentialBuilder, TokenCredential, TokenRequestOptions,
};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const API: &str = "00000000-0000-0000-0000-0000000000a1";
const SCOPE: &[&str] = &["https://graph.microsoft.com/.default"];
const CLIENT_SECRET: &str = "obo-api-client-secret-value";
const PFX_PASSWORD: &str = "fixture-password";
const CALLBACK_ASSERTION: &str = "obo-api-callback-assertion-value";

/// User `n`'s access token, as the API received it.
fn user_token(n: usize) -> String {
    jwt(
        &format!(r#"{{"aud":"api://{API}","oid":"obo-leak-user-{n}"}}"#),
        &format!("obo-leak-signature-{n}"),
    )
}

#[test]
fn no_user_assertion_or_api_secret_reaches_logs_debug_or_errors() {
    let mut t = LeakTest::start();
    let client_assertions = t.runtime.block_on(scenarios(&mut t.seen));

    let users: Vec<String> = (0..4).map(user_token).collect();
    let mut secrets: Vec<&str> = vec![
        CLIENT_SECRET,
        PFX_PASSWORD,
        CALLBACK_ASSERTION,
        "obo-leak-signature-",
        "mock-entra-token-",
        "eyJ-obo-token-",
        // URL-encoded form bodies hold these.
        "assertion=",
        "client_secret=",
    ];
    for user in &users {
        // The whole token, its claims and its signature.
        secrets.push(user);
        secrets.extend(user.split('.').skip(1));
    }
    assert!(!client_assertions.is_empty());
    secrets.extend(with_signatures(&client_assertions));
    t.assert_no_secrets(
        &secrets,
        &[
            "requesting a token from Microsoft Entra ID",
            "grant=\"on_behalf_of\"",
            "Microsoft Entra ID issued a token",
            "token fetch failed",
        ],
    );
}

/// Records the error a credential built from `builder` gets for a token.
async fn record_refusal(seen: &mut Printed, builder: OnBehalfOfCredentialBuilder) {
    let credential = builder.build().unwrap();
    seen.error(&credential.get_token(SCOPE, None).await.unwrap_err());
}

/// Runs everything; returns the client assertions the certificate credential sent.
async fn scenarios(seen: &mut Printed) -> Vec<String> {
    let (entra, clock, cache) = verifying_entra_and_cache(CLIENT_SECRET).await;
    let api = OnBehalfOfCredential::builder()
        .tenant_id(TENANT)
        .client_id(API)
        .client_secret(CLIENT_SECRET)
        .authority_host(entra.authority_host())
        .env(Env::empty())
        .cache(cache.clone())
        .retry_policy(quick_retries());
    seen.debug(&api);

    // A retried 503, a token, a cache hit, a claims challenge.
    let builder = api.clone().user_assertion(user_token(0));
    let credential = seen.built(builder, |b| b.build());
    entra.push_many([transient_503(), MockEntraReply::token("eyJ-obo-token-1")]);
    seen.debug(&credential.get_token(SCOPE, None).await.unwrap());
    seen.debug(&credential.get_token(SCOPE, None).await.unwrap());
    let claims = TokenRequestOptions::default()
        .with_claims(r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#)
        .with_enable_cae(true);
    seen.debug(&credential.get_token(SCOPE, Some(&claims)).await.unwrap());

    // Refusals of the user's token, one that is no JWT, a wrong client secret, an HTML page.
    for code in [50013, 500133, 65001] {
        entra.push(MockEntraReply::error(
            400,
            "invalid_grant",
            code,
            "The token eyJ-obo-token-echo was refused.",
        ));
        record_refusal(seen, api.clone().user_assertion(user_token(1))).await;
        clock.advance(Duration::from_secs(5));
    }
    let not_a_jwt = api.clone().user_assertion("obo-leak-signature-not-a-jwt");
    record_refusal(seen, not_a_jwt).await;
    let wrong_secret = api
        .clone()
        .client_secret("obo-api-client-secret-value-but-wrong")
        .user_assertion(user_token(2));
    record_refusal(seen, wrong_secret).await;
    entra.push(MockEntraReply::html(403));
    record_refusal(seen, api.clone().user_assertion(user_token(3))).await;

    // Build errors: an Authorization header value, whitespace, both proofs.
    for bad in [
        format!("Bearer {}", user_token(0)),
        format!("{} ", user_token(0)),
        format!("{}\n{}", user_token(0), user_token(1)),
    ] {
        seen.error(&api.clone().user_assertion(bad).build().unwrap_err());
    }
    seen.error(
        &api.clone()
            .certificate_path(fixtures::cert("client.pem"))
            .user_assertion(user_token(0))
            .build()
            .unwrap_err(),
    );

    // The API's certificate (password-protected PKCS#12, chain sent), and a wrong password.
    let (file, password) = fixtures::chain_cert();
    let certificate = OnBehalfOfCredential::builder()
        .tenant_id(TENANT)
        .client_id(API)
        .certificate_path(file)
        .password(password.unwrap_or(PFX_PASSWORD))
        .send_certificate_chain(true)
        .authority_host(entra.authority_host())
        .env(Env::empty())
        .cache(cache.clone());
    seen.debug(&certificate);
    let credential = certificate
        .clone()
        .user_assertion(user_token(0))
        .build()
        .unwrap();
    seen.debug(&credential);
    seen.debug(&credential.get_token(SCOPE, None).await.unwrap());
    seen.error(
        // The PKCS#12 file (without the feature pkcs12, refused for that reason instead).
        &certificate
            .certificate_path(fixtures::cert("client.pfx"))
            .password("fixture-password-wrong")
            .user_assertion(user_token(0))
            .build()
            .unwrap_err(),
    );

    // The API proven by a client assertion callback (which Entra refuses here).
    let by_callback = OnBehalfOfCredential::builder()
        .tenant_id(TENANT)
        .client_id(API)
        .client_assertion(|| async { Ok::<_, std::io::Error>(CALLBACK_ASSERTION) })
        .authority_host(entra.authority_host())
        .env(Env::empty())
        .cache(cache.clone())
        .retry_policy(quick_retries());
    seen.debug(&by_callback);
    let credential = seen.built(by_callback.user_assertion(user_token(1)), |b| b.build());
    seen.outcome(&credential.get_token(SCOPE, None).await);

    let requests = entra.requests();
    seen.debug(&requests);
    for request in &requests {
        if let Some(assertion) = request.assertion() {
            seen.debug(assertion);
        }
    }
    requests
        .iter()
        .filter(|r| r.assertion().is_some())
        .filter_map(|r| r.form("client_assertion").map(str::to_owned))
        .collect()
}
