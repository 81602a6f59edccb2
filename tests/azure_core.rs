//! The official Azure SDK's HTTP pipeline (azure_core 1.x) with its bearer-token policy over our
//! `DefaultAzureCredential`, against the mock IMDS and a loopback HTTPS server standing in for an
//! Azure resource: every request carries our token, and the SDK's requests, sequential or
//! concurrent, through one client or several, cost one token request.

mod support;

use std::sync::Arc;

use azure_core::http::policies::Policy;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{ClientOptions, Context, Method, Pipeline, Request, Transport};
use azure_credentials::interop::AzureCoreCredential;
use azure_credentials::testing::MockManagedIdentity;
use azure_credentials::{
    DefaultAzureCredential, DefaultAzureCredentialBuilder, ErrorKind, UserAssignedId,
};
use rustls::pki_types::CertificateDer;
use support::http::{Request as SeenRequest, Response, StandIn, assert_each_bears};
use support::imds::assert_served_by_one_token;

const SCOPE: &str = "https://vault.azure.net/.default";
const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";

/// A loopback HTTPS server standing in for an Azure resource (Key Vault, ARM): it records each
/// request's method, path and `Authorization` header and answers 200 with a small JSON body.
/// The azure_core bearer-token policy refuses plain http, hence TLS with a test certificate.
struct Resource {
    server: StandIn,
    certificate: CertificateDer<'static>,
}

impl Resource {
    async fn start() -> Resource {
        let (certificate, key) = support::tls::self_signed();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.clone()], key)
        .unwrap();
        let server = StandIn::start_tls(config, |_| {
            Response::new("200 OK")
                .header("Content-Type", "application/json")
                .body(r#"{"value":[]}"#)
        })
        .await;
        Resource {
            server,
            certificate,
        }
    }

    fn url(&self, path: &str) -> azure_core::http::Url {
        format!("https://{}{path}", self.server.addr())
            .parse()
            .unwrap()
    }

    fn seen(&self) -> Vec<SeenRequest> {
        self.server.requests()
    }

    /// An azure_core transport that trusts this server's certificate: reqwest over rustls with
    /// ring, as this crate builds it (no aws-lc-rs, no OpenSSL).
    fn transport(&self) -> Transport {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.certificate.clone()).unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap();
        Transport::new(Arc::new(client))
    }
}

/// The default chain on a machine whose only identity is the managed identity behind
/// `imds_endpoint` (no service principal, no developer tools on `PATH`).
fn default_chain(imds_endpoint: url::Url) -> DefaultAzureCredentialBuilder {
    support::default_chain::only_managed_identity(imds_endpoint)
}

fn default_credential(imds_endpoint: url::Url) -> DefaultAzureCredential {
    default_chain(imds_endpoint).build().unwrap()
}

/// What an SDK client builds: a pipeline whose per-try policies include the bearer-token policy
/// over the credential it was given.
fn sdk_pipeline(
    credential: Arc<dyn azure_core::credentials::TokenCredential>,
    resource: &Resource,
) -> Pipeline {
    let auth: Arc<dyn Policy> = Arc::new(BearerTokenAuthorizationPolicy::new(credential, [SCOPE]));
    let options = ClientOptions {
        transport: Some(resource.transport()),
        ..ClientOptions::default()
    };
    Pipeline::new(
        Some("azure-credentials-test"),
        Some("0.0.0"),
        options,
        Vec::new(),
        vec![auth],
        None,
    )
}

async fn get(pipeline: &Pipeline, resource: &Resource, path: &str) -> azure_core::Result<()> {
    let mut request = Request::new(resource.url(path), Method::Get);
    pipeline.send(&Context::new(), &mut request, None).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_requests_carry_our_token_and_cost_one_token_request() {
    let imds = MockManagedIdentity::start().await;
    let resource = Resource::start().await;
    let credential = Arc::new(AzureCoreCredential::new(default_credential(
        imds.imds_endpoint(),
    )));
    let pipeline = sdk_pipeline(credential.clone(), &resource);

    for i in 0..5 {
        get(&pipeline, &resource, &format!("/secrets/s{i}"))
            .await
            .unwrap();
    }

    let seen = resource.seen();
    assert_eq!(seen.len(), 5);
    for (i, request) in seen.iter().enumerate() {
        assert_eq!(request.method, "GET");
        assert_eq!(request.target, format!("/secrets/s{i}"));
    }
    assert_served_by_one_token(
        &seen,
        &imds,
        "https://vault.azure.net",
        &format!("{credential:?} {pipeline:?}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_through_several_clients_share_one_token() {
    let imds = MockManagedIdentity::start().await;
    let resource = Arc::new(Resource::start().await);
    let chain = default_credential(imds.imds_endpoint());
    // Three SDK clients, each with its own bearer-token policy (and the policy's own token
    // slot): two built from one adapter, one from another adapter over a clone of the chain.
    let shared = Arc::new(AzureCoreCredential::new(chain.clone()));
    let pipelines = [
        sdk_pipeline(shared.clone(), &resource),
        sdk_pipeline(shared, &resource),
        sdk_pipeline(Arc::new(AzureCoreCredential::new(chain)), &resource),
    ];
    let start = Arc::new(tokio::sync::Barrier::new(48));
    let mut tasks = Vec::new();
    for i in 0..48 {
        let pipeline = pipelines[i % 3].clone();
        let resource = resource.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            get(&pipeline, &resource, &format!("/secrets/s{i}")).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let seen = resource.seen();
    assert_eq!(seen.len(), 48);
    assert_each_bears(&seen, "mock-imds-token-1");
    assert_eq!(imds.token_request_count(), 1, "{:?}", imds.requests());
}

/// Every message of an error's chain, one per line (what `anyhow`'s `{:#}` shows).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        text.push('\n');
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

/// This crate's error, wherever it is in the chain.
fn find_ours<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a azure_credentials::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(ours) = e.downcast_ref::<azure_credentials::Error>() {
            return Some(ours);
        }
        next = e.source();
    }
    None
}

#[tokio::test]
async fn no_identity_fails_the_call_with_a_credential_error_that_keeps_ours() {
    let imds_refused = support::imds::refused_endpoint();
    let resource = Resource::start().await;
    let pipeline = sdk_pipeline(
        Arc::new(AzureCoreCredential::new(default_credential(imds_refused))),
        &resource,
    );

    let err = get(&pipeline, &resource, "/secrets/s").await.unwrap_err();

    // The SDK's retry policy wraps the credential's error in its own message ("non-transport
    // error occurred which will not be retried"), keeping the kind; ours is down the chain.
    assert_eq!(err.kind(), &azure_core::error::ErrorKind::Credential);
    let chain = error_chain(&err);
    assert!(
        chain.contains("DefaultAzureCredential: none of the 6 credentials produced a token"),
        "{chain}"
    );
    assert!(chain.contains("ManagedIdentityCredential"), "{chain}");
    let ours = find_ours(&err).expect("our error is in the chain");
    assert_eq!(ours.kind(), ErrorKind::Unavailable);
    assert_eq!(ours.attempts().len(), 6);
    assert!(
        resource.seen().is_empty(),
        "nothing is sent without a token"
    );
}

#[tokio::test]
async fn a_refused_token_request_keeps_its_kind_and_status_behind_the_sdk_error() {
    let imds = MockManagedIdentity::start().await;
    imds.push(azure_credentials::testing::MockReply::error(
        400,
        "invalid_request",
        "Identity not found",
    ));
    // A user-assigned identity that is not assigned: IMDS refuses, and the chain stops there.
    let chain = default_chain(imds.imds_endpoint())
        .user_assigned_id(UserAssignedId::ClientId(CLIENT_ID.into()))
        .build()
        .unwrap();
    let credential = Arc::new(AzureCoreCredential::new(chain));

    let err = azure_core::credentials::TokenCredential::get_token(&*credential, &[SCOPE], None)
        .await
        .unwrap_err();

    assert_eq!(err.kind(), &azure_core::error::ErrorKind::Credential);
    let ours = err.downcast_ref::<azure_credentials::Error>().unwrap();
    assert_eq!(ours.kind(), ErrorKind::Authentication, "{ours}");
    assert_eq!(ours.credential(), "ManagedIdentityCredential");
    assert_eq!(ours.status(), Some(400));
    assert!(err.to_string().contains("Identity not found"), "{err}");
}

#[tokio::test]
async fn tokens_keep_their_expiry() {
    let imds = MockManagedIdentity::start().await;
    let chain = default_credential(imds.imds_endpoint());
    let ours = azure_credentials::TokenCredential::get_token(&chain, &[SCOPE], None)
        .await
        .unwrap();
    let credential = Arc::new(AzureCoreCredential::new(chain));
    let theirs = azure_core::credentials::TokenCredential::get_token(&*credential, &[SCOPE], None)
        .await
        .unwrap();
    assert_eq!(theirs.token.secret(), ours.token().expose());
    assert_eq!(theirs.expires_on, ours.expires_on());
    assert_eq!(imds.token_request_count(), 1);
}
