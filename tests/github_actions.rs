//! GitHubActionsCredential against the loopback GitHub ID token and Entra mocks: the request
//! GitHub gets, a new ID token per exchange, and the errors of a job that cannot get one.

mod support;
use support::cache;
use support::federated::{assert_assertion_exchange, assertions_sent, refused_once_as_expired};

use std::time::Duration;

use azure_credentials::system::{Env, ManualClock, RetryPolicy};
use azure_credentials::testing::{MockEntra, MockGitHubOidc, MockOidcReply};
use azure_credentials::{
    ErrorKind, GitHubActionsCredential, GitHubActionsCredentialBuilder, TokenCache, TokenCredential,
};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "00000000-0000-0000-0000-0000000000c1";
const REQUEST_TOKEN: &str = "actions-request-token-secret-value";
const SCOPE: &[&str] = &["https://management.azure.com/.default"];

struct Setup {
    entra: MockEntra,
    github: MockGitHubOidc,
    clock: ManualClock,
    cache: TokenCache,
}

async fn setup() -> Setup {
    let clock = cache::manual_clock();
    let github = MockGitHubOidc::start().await;
    github.expect_token(REQUEST_TOKEN);
    github.set_clock(clock.clock());
    Setup {
        entra: MockEntra::start().await,
        github,
        cache: cache::deterministic_without_cooldown(clock.clock()),
        clock,
    }
}

impl Setup {
    /// What GitHub sets in a job with `id-token: write`, and the workflow's AZURE_* values.
    fn env_with_url(&self, url: String) -> Env {
        Env::from_pairs([
            ("ACTIONS_ID_TOKEN_REQUEST_URL", url),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_owned()),
            ("AZURE_CLIENT_ID", CLIENT.to_owned()),
            ("AZURE_TENANT_ID", TENANT.to_owned()),
            ("AZURE_AUTHORITY_HOST", self.entra.authority_host()),
        ])
    }

    fn builder(&self) -> GitHubActionsCredentialBuilder {
        GitHubActionsCredential::builder()
            .env(self.env_with_url(self.github.request_url()))
            .cache(self.cache.clone())
            .retry_policy(RetryPolicy::none())
    }

    fn credential(&self) -> GitHubActionsCredential {
        self.builder().build().unwrap()
    }
}

#[tokio::test]
async fn the_id_token_is_requested_as_github_expects_and_exchanged() {
    let s = setup().await;
    let credential = s.credential();
    assert_eq!(credential.audience(), "api://AzureADTokenExchange");
    let token = credential.get_token(SCOPE, None).await.unwrap();
    assert_eq!(token.source(), "GitHubActionsCredential");
    assert_eq!(token.client_id(), Some(CLIENT));

    let id_request = &s.github.requests()[0];
    assert_eq!(id_request.method(), "GET");
    assert!(id_request.path().ends_with("/idtoken"));
    assert_eq!(
        id_request.query_pairs(),
        [
            ("api-version".to_owned(), "2.0".to_owned()),
            (
                "audience".to_owned(),
                "api://AzureADTokenExchange".to_owned()
            ),
        ]
    );
    assert!(
        id_request
            .target()
            .ends_with("&audience=api%3A%2F%2FAzureADTokenExchange"),
        "the audience is URL-encoded: {}",
        id_request.target()
    );
    assert_eq!(
        id_request.header("authorization"),
        Some(format!("bearer {REQUEST_TOKEN}").as_str())
    );

    let exchange = &s.entra.requests()[0];
    assert_assertion_exchange(exchange, TENANT, CLIENT);
    let assertion = exchange.assertion().expect("the ID token is a JWT");
    assert_eq!(assertion.claims()["aud"], "api://AzureADTokenExchange");
    assert_eq!(
        assertion.claims()["iss"],
        "https://token.actions.githubusercontent.com"
    );

    credential.get_token(SCOPE, None).await.unwrap();
    assert_eq!(
        s.github.request_count(),
        1,
        "a cache hit asks GitHub nothing"
    );
}

#[tokio::test]
async fn every_exchange_gets_a_new_github_token_never_one_past_its_expiry() {
    let s = setup().await;
    let credential = s.credential();
    credential.get_token(SCOPE, None).await.unwrap();
    // GitHub's token (10 minutes) has expired long before the Entra token needs renewing;
    // the next exchange gets a new one rather than reusing the first.
    s.clock.advance(Duration::from_secs(3600));
    credential.get_token(SCOPE, None).await.unwrap();
    credential
        .get_token(&["https://vault.azure.net/.default"], None)
        .await
        .unwrap();
    assert_eq!(s.github.request_count(), 3);
    let sent = assertions_sent(&s.entra);
    for (i, assertion) in sent.iter().enumerate() {
        assert!(
            assertion.ends_with(&format!(".mock-oidc-signature-{:04}", i + 1)),
            "exchange {i} used GitHub token {}",
            i + 1
        );
    }
    let exchange_times: Vec<i64> = s
        .entra
        .requests()
        .iter()
        .map(|r| r.assertion().unwrap().claims()["exp"].as_i64().unwrap())
        .collect();
    let now = s.clock.now().unix_timestamp();
    assert!(
        exchange_times[1] > now,
        "the second exchange's token is a new one"
    );

    // Entra refusing the token as expired: a new one from GitHub, one retry.
    refused_once_as_expired(&s.entra, &credential).await;
    assert_eq!(s.github.request_count(), 5);
}

#[tokio::test]
async fn a_request_url_without_a_query_gets_just_the_audience() {
    let s = setup().await;
    let url = s.github.request_url();
    let without_query = url.split('?').next().unwrap().to_owned();
    GitHubActionsCredential::builder()
        .env(s.env_with_url(without_query))
        .cache(s.cache.clone())
        .build()
        .unwrap()
        .get_token(SCOPE, None)
        .await
        .unwrap();
    let target = s.github.requests()[0].target().to_owned();
    assert!(
        target.ends_with("/idtoken?audience=api%3A%2F%2FAzureADTokenExchange"),
        "{target}"
    );
}

#[tokio::test]
async fn builder_values_override_the_environment_and_the_audience_is_configurable() {
    let s = setup().await;
    let credential = s
        .builder()
        .tenant_id("contoso.onmicrosoft.us")
        .client_id("builder-client")
        .audience("api://AzureADTokenExchangeUSGov")
        .build()
        .unwrap();
    let debug = format!("{credential:?}");
    assert!(debug.contains("api://AzureADTokenExchangeUSGov"), "{debug}");
    assert!(!debug.contains(REQUEST_TOKEN));
    credential.get_token(SCOPE, None).await.unwrap();
    assert_eq!(
        s.github.requests()[0].query("audience"),
        Some("api://AzureADTokenExchangeUSGov")
    );
    let exchange = &s.entra.requests()[0];
    assert_eq!(exchange.tenant(), Some("contoso.onmicrosoft.us"));
    assert_eq!(exchange.form("client_id"), Some("builder-client"));
}

#[test]
fn without_id_token_permission_it_is_unavailable() {
    let error = GitHubActionsCredential::builder()
        .env(Env::from_pairs([("AZURE_CLIENT_ID", CLIENT)]))
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    let text = error.to_string();
    assert!(
        text.starts_with("GitHubActionsCredential: ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set")
            && text.contains("permissions: id-token: write"),
        "{text}"
    );
    let error = GitHubActionsCredential::builder()
        .env(Env::from_pairs([(
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "https://pipelines.actions.githubusercontent.com/x/idtoken?api-version=2.0",
        )]))
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(
        error
            .to_string()
            .contains(": ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set"),
        "{error}"
    );
}

#[test]
fn a_job_with_the_permission_but_no_client_id_is_invalid_input() {
    let env = Env::from_pairs([
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "https://pipelines.actions.githubusercontent.com/x/idtoken?api-version=2.0",
        ),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN),
        ("AZURE_TENANT_ID", TENANT),
    ]);
    let error = GitHubActionsCredential::builder()
        .env(env.clone())
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(
        error.to_string().contains("AZURE_CLIENT_ID is not set"),
        "{error}"
    );
    let error = GitHubActionsCredential::builder()
        .env(env)
        .client_id(CLIENT)
        .audience(" ")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("invalid audience"), "{error}");
    assert!(!error.to_string().contains(REQUEST_TOKEN));
}

#[tokio::test]
async fn a_refused_request_says_what_to_fix_and_never_shows_the_request_token() {
    let s = setup().await;
    let wrong = GitHubActionsCredential::builder()
        .env(Env::from_pairs([
            ("ACTIONS_ID_TOKEN_REQUEST_URL", s.github.request_url()),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                format!("{REQUEST_TOKEN}-of-another-job"),
            ),
            ("AZURE_CLIENT_ID", CLIENT.to_owned()),
            ("AZURE_TENANT_ID", TENANT.to_owned()),
            ("AZURE_AUTHORITY_HOST", s.entra.authority_host()),
        ]))
        .cache(s.cache.clone())
        .build()
        .unwrap();
    let error = wrong.get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    assert_eq!(error.status(), Some(401));
    let text = error.to_string();
    assert!(
        text.starts_with(
            "GitHubActionsCredential: the ID token request to GitHub Actions failed with status 401"
        ) && text.contains("id-token: write"),
        "{text}"
    );
    assert!(!text.contains(REQUEST_TOKEN), "{text}");

    let credential = s.credential();
    s.github
        .push(MockOidcReply::error(500, "Internal Server Error"));
    let error = credential.get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ServiceFailure);
    s.github.push(MockOidcReply::raw(
        200,
        Some("text/html"),
        "<html>proxy</html>",
    ));
    let error = credential.get_token(SCOPE, None).await.unwrap_err();
    assert!(error.to_string().contains("is an HTML page"), "{error}");
    s.github.push(MockOidcReply::raw(
        200,
        Some("application/json"),
        "{\"count\":0}",
    ));
    let error = credential.get_token(SCOPE, None).await.unwrap_err();
    assert!(error.to_string().contains("has no value"), "{error}");
    assert_eq!(s.entra.request_count(), 0);
}
