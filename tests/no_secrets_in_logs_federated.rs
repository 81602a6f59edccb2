//! Runs the federated credentials' scenarios (client assertion callback, Azure Pipelines,
//! GitHub Actions) with a TRACE-level capturing subscriber and fails if a client assertion, an
//! OIDC / ID token, the pipeline's system access token, GitHub's request token or an access
//! token appears in a log line, a `Debug` rendering or an error message.

mod support;
use support::cache;
use support::federated::{assertion_expired, assertions_sent};

use std::time::Duration;

use support::log_capture::{LeakTest, Printed};

use azure_credentials::system::{Env, RetryPolicy};
use azure_credentials::testing::{
    MockAzureDevOpsOidc, MockEntra, MockEntraReply, MockGitHubOidc, MockOidcReply,
};
use azure_credentials::{
    AzurePipelinesCredential, ClientAssertionCredential, ClientAssertionCredentialBuilder,
    GitHubActionsCredential, TokenCache, TokenCredential,
};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SCOPE: &[&str] = &["https://management.azure.com/.default"];
const OTHER_SCOPE: &[&str] = &["https://vault.azure.net/.default"];
const CALLBACK_ASSERTION: &str = "callback-assertion-secret-value";
const ACCESS_TOKEN: &str = "system-access-token-secret-value";
const DEVOPS_OIDC_TOKEN: &str = "devops-oidc-token-secret-value";
const REQUEST_TOKEN: &str = "actions-request-token-secret-value";

#[test]
fn no_federated_secret_reaches_logs_debug_or_errors() {
    let mut t = LeakTest::start();
    let sent = t.runtime.block_on(scenarios(&mut t.seen));

    let mut secrets: Vec<&str> = vec![
        CALLBACK_ASSERTION,
        ACCESS_TOKEN,
        DEVOPS_OIDC_TOKEN,
        REQUEST_TOKEN,
        "mock-oidc-signature-",
        "mock-entra-token-",
        "eyJ-entra-token-",
        "client_assertion=",
    ];
    // Every assertion that reached Entra, whole (the GitHub ID tokens are JWTs).
    assert!(sent.len() >= 6, "{}", sent.len());
    secrets.extend(sent.iter().map(String::as_str));
    t.assert_no_secrets(
        &secrets,
        &[
            "asking the callback for a client assertion",
            "requesting an OIDC token from Azure DevOps",
            "Azure DevOps issued an OIDC token",
            "requesting an ID token from GitHub Actions",
            "GitHub Actions issued an ID token",
            "requesting a token from Microsoft Entra ID",
            "Microsoft Entra ID issued a token",
            "token fetch failed",
        ],
    );
}

/// Runs everything; returns the client assertions Entra received.
async fn scenarios(seen: &mut Printed) -> Vec<String> {
    let clock = cache::manual_clock();
    let cache = cache::deterministic_without_cooldown(clock.clock());
    let entra = MockEntra::start().await;
    entra.set_default(MockEntraReply::token("eyJ-entra-token-federated"));

    client_assertion(&entra, &cache, seen).await;
    azure_pipelines(&entra, &cache, seen).await;
    github_actions(&entra, &cache, seen).await;

    let sent = assertions_sent(&entra);
    for request in entra.requests() {
        seen.debug(&request);
        if let Some(assertion) = request.assertion() {
            seen.debug(assertion);
        }
    }
    seen.debug(&entra);

    // Last, on paused time: a callback that never returns.
    tokio::time::pause();
    let hanging = callback_client("callback-hanging", &entra, &cache)
        .assertion(std::future::pending::<Result<String, std::io::Error>>)
        .build()
        .unwrap();
    seen.error(&hanging.get_token(SCOPE, None).await.unwrap_err());
    sent
}

/// A builder for `client` in [`TENANT`] signing in at `entra`, on `cache`, without a callback yet.
fn callback_client(
    client: &str,
    entra: &MockEntra,
    cache: &TokenCache,
) -> ClientAssertionCredentialBuilder {
    ClientAssertionCredential::builder()
        .tenant_id(TENANT)
        .client_id(client)
        .authority_host(entra.authority_host())
        .env(Env::empty())
        .cache(cache.clone())
}

async fn client_assertion(entra: &MockEntra, cache: &TokenCache, seen: &mut Printed) {
    let builder = callback_client("callback-client", entra, cache)
        .assertion(|| async { Ok::<_, std::io::Error>(CALLBACK_ASSERTION) })
        .retry_policy(RetryPolicy::none());
    let credential = seen.built(builder, |b| b.build());
    seen.debug(&credential.get_token(SCOPE, None).await.unwrap());
    seen.debug(&credential.get_token(SCOPE, None).await.unwrap());
    entra.push_many([assertion_expired(), assertion_expired()]);
    seen.error(&credential.get_token(OTHER_SCOPE, None).await.unwrap_err());
    entra.push(MockEntraReply::html(403));
    seen.error(
        &credential
            .get_token(&["https://storage.azure.com/.default"], None)
            .await
            .unwrap_err(),
    );

    let failing = callback_client("callback-failing", entra, cache)
        .assertion(|| async { Err::<String, _>(std::io::Error::other("the federation is down")) })
        .build()
        .unwrap();
    seen.error(&failing.get_token(SCOPE, None).await.unwrap_err());
}

async fn azure_pipelines(entra: &MockEntra, cache: &TokenCache, seen: &mut Printed) {
    let devops = MockAzureDevOpsOidc::start().await;
    devops.expect_token(ACCESS_TOKEN);
    devops.set_default(MockOidcReply::token(DEVOPS_OIDC_TOKEN));
    let builder = |token: &str| {
        AzurePipelinesCredential::builder()
            .tenant_id(TENANT)
            .client_id("pipelines-client")
            .service_connection_id("5d3c1f7e-0000-4000-8000-00000000c0de")
            .system_access_token(token)
            .authority_host(entra.authority_host())
            .env(Env::from_pairs([(
                "SYSTEM_OIDCREQUESTURI",
                devops.request_url(),
            )]))
            .cache(cache.clone())
            .retry_policy(RetryPolicy::none())
    };
    seen.debug(&builder(ACCESS_TOKEN));
    let credential = builder(ACCESS_TOKEN).build().unwrap();
    seen.debug(&credential);
    seen.debug(&credential.get_token(SCOPE, None).await.unwrap());
    entra.push(assertion_expired());
    seen.debug(&credential.get_token(OTHER_SCOPE, None).await.unwrap());
    let wrong = builder(&format!("{ACCESS_TOKEN}-expired")).build().unwrap();
    seen.error(&wrong.get_token(SCOPE, None).await.unwrap_err());
    for reply in [
        MockOidcReply::sign_in_page(),
        MockOidcReply::error(500, "Internal error"),
        MockOidcReply::raw(200, Some("application/json"), "{\"oidcToken\":1}"),
        MockOidcReply::short_body(200, "{\"oidcToken\":\"devops-oidc-token-secret-value", 90),
    ] {
        devops.push(reply);
        seen.error(
            &credential
                .get_token(&["https://storage.azure.com/.default"], None)
                .await
                .unwrap_err(),
        );
    }
    seen.error(
        &AzurePipelinesCredential::builder()
            .tenant_id(TENANT)
            .client_id("pipelines-client")
            .service_connection_id("x")
            .system_access_token(ACCESS_TOKEN)
            .env(Env::empty())
            .build()
            .unwrap_err(),
    );
    seen.debug(&devops);
    seen.debug(&devops.requests());
}

async fn github_actions(entra: &MockEntra, cache: &TokenCache, seen: &mut Printed) {
    let github = MockGitHubOidc::start().await;
    github.expect_token(REQUEST_TOKEN);
    let env = |token: &str| {
        Env::from_pairs([
            ("ACTIONS_ID_TOKEN_REQUEST_URL", github.request_url()),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", token.to_owned()),
            ("AZURE_CLIENT_ID", "github-client".to_owned()),
            ("AZURE_TENANT_ID", TENANT.to_owned()),
            ("AZURE_AUTHORITY_HOST", entra.authority_host()),
        ])
    };
    let builder = GitHubActionsCredential::builder()
        .env(env(REQUEST_TOKEN))
        .cache(cache.clone())
        .retry_policy(RetryPolicy::none());
    let credential = seen.built(builder, |b| b.build());
    seen.debug(&credential.get_token(SCOPE, None).await.unwrap());
    entra.push(assertion_expired());
    seen.debug(&credential.get_token(OTHER_SCOPE, None).await.unwrap());
    let wrong = GitHubActionsCredential::builder()
        .env(env(&format!("{REQUEST_TOKEN}-other-job")))
        .cache(cache.clone())
        .build()
        .unwrap();
    seen.error(&wrong.get_token(SCOPE, None).await.unwrap_err());
    for reply in [
        MockOidcReply::error(503, "Service Unavailable"),
        MockOidcReply::raw(200, Some("text/html"), "<html>proxy</html>"),
        MockOidcReply::auto_token().with_delay(Duration::from_millis(1)),
    ] {
        github.push(reply);
        let result = credential
            .get_token(&["https://storage.azure.com/.default"], None)
            .await;
        match result {
            Ok(token) => seen.debug(&token),
            Err(error) => seen.error(&error),
        }
    }
    seen.debug(&github);
    seen.debug(&github.requests());
}
