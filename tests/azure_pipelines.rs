//! AzurePipelinesCredential against the loopback Azure DevOps OIDC and Entra mocks: what is
//! sent to each, one OIDC request per token fetch, and the errors of a job that cannot get one.

mod support;
use support::cache;
use support::federated::{assert_assertion_exchange, assertions_sent, refused_once_as_expired};

use azure_credentials::system::{Env, RetryPolicy};
use azure_credentials::testing::{MockAzureDevOpsOidc, MockEntra, MockOidcReply};
use azure_credentials::{
    AzurePipelinesCredential, AzurePipelinesCredentialBuilder, ErrorKind, TokenCredential,
};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "00000000-0000-0000-0000-0000000000b1";
const CONNECTION: &str = "5d3c1f7e-0000-4000-8000-00000000c0de";
const ACCESS_TOKEN: &str = "system-access-token-secret-value";
const SCOPE: &[&str] = &["https://management.azure.com/.default"];

struct Setup {
    entra: MockEntra,
    devops: MockAzureDevOpsOidc,
}

async fn setup() -> Setup {
    let devops = MockAzureDevOpsOidc::start().await;
    devops.expect_token(ACCESS_TOKEN);
    Setup {
        entra: MockEntra::start().await,
        devops,
    }
}

impl Setup {
    fn builder(&self) -> AzurePipelinesCredentialBuilder {
        AzurePipelinesCredential::builder()
            .tenant_id(TENANT)
            .client_id(CLIENT)
            .service_connection_id(CONNECTION)
            .system_access_token(ACCESS_TOKEN)
            .authority_host(self.entra.authority_host())
            .env(Env::from_pairs([(
                "SYSTEM_OIDCREQUESTURI",
                self.devops.request_url(),
            )]))
            .cache(cache::deterministic_without_cooldown(
                cache::manual_clock().clock(),
            ))
            .retry_policy(RetryPolicy::none())
    }

    fn credential(&self) -> AzurePipelinesCredential {
        self.builder().build().unwrap()
    }
}

#[tokio::test]
async fn the_oidc_token_is_requested_as_azure_devops_expects_and_exchanged() {
    let s = setup().await;
    s.devops
        .push(MockOidcReply::token("eyJ-devops-oidc-token-1"));
    let credential = s.credential();
    assert_eq!(credential.service_connection_id(), CONNECTION);
    let token = credential.get_token(SCOPE, None).await.unwrap();
    assert_eq!(token.source(), "AzurePipelinesCredential");
    assert_eq!(token.client_id(), Some(CLIENT));

    let oidc = &s.devops.requests()[0];
    assert_eq!(oidc.method(), "POST");
    assert!(oidc.path().ends_with("/oidctoken"), "{}", oidc.path());
    assert_eq!(
        oidc.query_pairs(),
        [
            ("api-version".to_owned(), "7.1".to_owned()),
            ("serviceConnectionId".to_owned(), CONNECTION.to_owned()),
        ]
    );
    assert_eq!(
        oidc.header("authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    );
    assert_eq!(oidc.header("x-tfs-fedauthredirect"), Some("Suppress"));
    assert_eq!(oidc.header("content-type"), Some("application/json"));

    let exchange = &s.entra.requests()[0];
    assert_assertion_exchange(exchange, TENANT, CLIENT);
    assert_eq!(
        exchange.form("client_assertion"),
        Some("eyJ-devops-oidc-token-1")
    );
    assert_eq!(exchange.form("client_secret"), None);

    // A cache hit asks neither.
    credential.get_token(SCOPE, None).await.unwrap();
    assert_eq!(s.devops.request_count(), 1);
    assert_eq!(s.entra.request_count(), 1);
}

#[tokio::test]
async fn each_token_fetch_asks_for_a_new_oidc_token() {
    let s = setup().await;
    let credential = s.credential();
    credential.get_token(SCOPE, None).await.unwrap();
    credential
        .get_token(&["https://vault.azure.net/.default"], None)
        .await
        .unwrap();
    assert_eq!(s.devops.request_count(), 2);
    let sent = assertions_sent(&s.entra);
    assert_ne!(sent[0], sent[1]);
    assert!(sent.iter().all(|a| a.ends_with(&format!(
        "mock-oidc-signature-{:04}",
        if a == &sent[0] { 1 } else { 2 }
    ))));

    // Entra refusing the assertion as expired: a new OIDC token, one retry.
    refused_once_as_expired(&s.entra, &credential).await;
    assert_eq!(s.devops.request_count(), 4);
}

#[test]
fn outside_azure_pipelines_it_is_unavailable() {
    let error = AzurePipelinesCredential::builder()
        .tenant_id(TENANT)
        .client_id(CLIENT)
        .service_connection_id(CONNECTION)
        .system_access_token(ACCESS_TOKEN)
        .env(Env::empty())
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    let text = error.to_string();
    assert!(
        text.starts_with("AzurePipelinesCredential: SYSTEM_OIDCREQUESTURI is not set")
            && text.contains("runs only in Azure Pipelines"),
        "{text}"
    );
}

#[tokio::test]
async fn a_refused_oidc_request_reports_the_status_and_azure_devops_trace_ids_not_the_token() {
    let s = setup().await;
    let credential = s.credential();
    s.devops.push(MockOidcReply::error(
        404,
        "Service connection was not found or is not authorized for this pipeline.",
    ));
    let error = credential.get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    assert_eq!(error.status(), Some(404));
    assert_eq!(error.correlation_id(), Some("mock-e2eid-1"));
    let text = error.to_string();
    for expected in [
        "AzurePipelinesCredential: the OIDC token request to Azure DevOps failed with status 404",
        "x-vss-e2eid: mock-e2eid-1",
        "x-msedge-ref: Ref A: mock-msedge-ref-1",
        "Service connection was not found",
        CONNECTION,
    ] {
        assert!(text.contains(expected), "{expected:?} not in {text}");
    }
    assert!(!text.contains(ACCESS_TOKEN));

    // A wrong access token: 401 and the fix about System.AccessToken.
    let wrong = s
        .builder()
        .system_access_token("system-access-token-secret-value-expired")
        .build()
        .unwrap();
    let error = wrong.get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    let text = error.to_string();
    assert!(
        text.contains("status 401")
            && text.contains("x-vss-e2eid: mock-e2eid-2")
            && text.contains("$(System.AccessToken)"),
        "{text}"
    );
    assert!(!text.contains(ACCESS_TOKEN), "{text}");

    // A server error is a service failure; nothing reached Entra.
    s.devops
        .push(MockOidcReply::error(503, "Service Unavailable"));
    let error = credential.get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ServiceFailure);
    assert_eq!(s.entra.request_count(), 0);
}

#[tokio::test]
async fn a_sign_in_page_says_the_access_token_lacks_rights() {
    let s = setup().await;
    s.devops.push(MockOidcReply::sign_in_page());
    let error = s.credential().get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    let text = error.to_string();
    for expected in [
        "status 203",
        "an HTML page (a sign-in page?), not JSON",
        "x-vss-e2eid: mock-e2eid-1",
        "missing, expired or without rights",
        "$(System.AccessToken)",
    ] {
        assert!(text.contains(expected), "{expected:?} not in {text}");
    }

    s.devops
        .push(MockOidcReply::raw(200, Some("application/json"), "{}"));
    let error = s.credential().get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ServiceFailure);
    assert!(error.to_string().contains("has no oidcToken"), "{error}");
    assert_eq!(s.entra.request_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_oidc_endpoint_times_out() {
    let s = setup().await;
    s.devops.push(MockOidcReply::hang());
    let error = s.credential().get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(
        error.to_string().starts_with("AzurePipelinesCredential:"),
        "{error}"
    );
}

#[test]
fn build_refuses_missing_or_invalid_values() {
    let env = Env::from_pairs([(
        "SYSTEM_OIDCREQUESTURI",
        "https://dev.azure.com/contoso/p/_apis/distributedtask/hubs/build/plans/1/jobs/2/oidctoken",
    )]);
    let base = || {
        AzurePipelinesCredential::builder()
            .tenant_id(TENANT)
            .client_id(CLIENT)
            .env(env.clone())
    };
    for (builder, says) in [
        (
            base().system_access_token(ACCESS_TOKEN),
            "no service_connection_id",
        ),
        (
            base()
                .system_access_token(ACCESS_TOKEN)
                .service_connection_id("a b&c"),
            "invalid service connection id",
        ),
        (
            base().service_connection_id(CONNECTION),
            "no system_access_token",
        ),
        (
            base()
                .service_connection_id(CONNECTION)
                .system_access_token("  "),
            "no system_access_token",
        ),
        (
            base()
                .service_connection_id(CONNECTION)
                .system_access_token(ACCESS_TOKEN)
                .env(Env::from_pairs([(
                    "SYSTEM_OIDCREQUESTURI",
                    "http://dev.azure.com/x",
                )])),
            "must be https",
        ),
        (
            AzurePipelinesCredential::builder()
                .client_id(CLIENT)
                .service_connection_id(CONNECTION)
                .system_access_token(ACCESS_TOKEN)
                .env(env.clone()),
            "no tenant_id",
        ),
    ] {
        let debug = format!("{builder:?}");
        assert!(!debug.contains(ACCESS_TOKEN), "{debug}");
        let error = builder.build().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
        let text = error.to_string();
        assert!(
            text.starts_with("AzurePipelinesCredential:") && text.contains(says),
            "{text}"
        );
        assert!(!text.contains(ACCESS_TOKEN));
    }
    let credential = base()
        .service_connection_id(CONNECTION)
        .system_access_token(ACCESS_TOKEN)
        .build()
        .unwrap();
    let debug = format!("{credential:?}");
    assert!(
        debug.contains(CONNECTION) && !debug.contains(ACCESS_TOKEN),
        "{debug}"
    );
}
