//! The reqwest-middleware adapters against loopback servers standing in for Azure services:
//! `BearerAuth` answering CAE claims challenges and Key Vault tenant challenges (once), refusing
//! challenges for resources outside the request's domain, leaving a caller's `Authorization`
//! alone and not resending stream bodies. `HmacAuth`: tests/hmac_auth.rs. No secret in logs:
//! tests/no_secrets_in_logs_middleware.rs.

mod support;
use support::middleware::ours;

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use reqwest::header::AUTHORIZATION;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, RequestBuilder};

use azure_credentials::interop::BearerAuth;
use azure_credentials::testing::MockCredential;
use azure_credentials::{Error, ErrorKind, TokenCredential};
use support::cache::mock_on_manual_clock;
use support::http::{Request, Response, StandIn};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OTHER_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";
const VAULT_SCOPE: &str = "https://vault.azure.net/.default";
const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// What a CAE challenge asks for (decoded), as ARM and Graph send it.
const CLAIMS: &str = r#"{"access_token":{"nbf":{"essential":true,"value":"1603742800"}}}"#;

fn cae_challenge() -> String {
    format!(
        r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="{}""#,
        STANDARD.encode(CLAIMS)
    )
}

fn key_vault_challenge(tenant: &str, resource: &str) -> String {
    format!(
        r#"Bearer authorization="https://login.microsoftonline.com/{tenant}", resource="{resource}""#
    )
}

fn unauthorized(challenge: &str) -> Response {
    Response::new("401 Unauthorized")
        .header("WWW-Authenticate", challenge)
        .body(r#"{"error":{"code":"Unauthorized"}}"#)
}

/// A stand-in answering the first request with `first` and every later one 200.
async fn challenging(first: Response) -> StandIn {
    let count = AtomicUsize::new(0);
    StandIn::start(move |_| match count.fetch_add(1, Ordering::SeqCst) {
        0 => first.clone(),
        _ => Response::new("200 OK").body("{\"value\":[]}"),
    })
    .await
}

/// A plain reqwest client (this crate builds reqwest's rustls without a crypto provider; the
/// program picks ring) resolving `hosts` to the stand-in, wrapped with `middleware`.
fn client(server: &StandIn, hosts: &[&str], middleware: impl Middleware) -> ClientWithMiddleware {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder();
    for host in hosts {
        builder = builder.resolve(host, server.addr());
    }
    ClientBuilder::new(builder.build().unwrap())
        .with(middleware)
        .build()
}

/// `BearerAuth` for the stand-ins, which serve plain http under Azure's host names (resolved to
/// loopback): the middleware refuses that unless told the network is trusted.
fn bearer_auth(
    credential: impl TokenCredential + 'static,
    scopes: impl IntoIterator<Item = impl Into<String>>,
) -> Result<BearerAuth, Error> {
    BearerAuth::new(credential, scopes).map(|auth| auth.with_allow_plain_http(true))
}

fn url(host: &str, server: &StandIn, path: &str) -> String {
    format!("http://{host}:{}{path}", server.addr().port())
}

fn bearer(request: &Request) -> Option<&str> {
    request.header("authorization")?.strip_prefix("Bearer ")
}

/// A stand-in service under an Azure host name, a mock credential on a manual clock, and a
/// client whose requests to the host go to the stand-in through the `BearerAuth` that `auth`
/// builds over the credential.
struct Service {
    server: StandIn,
    credential: MockCredential,
    client: ClientWithMiddleware,
    host: &'static str,
}

impl Service {
    fn new(
        server: StandIn,
        host: &'static str,
        auth: impl FnOnce(MockCredential) -> BearerAuth,
    ) -> Self {
        let (_, credential) = mock_on_manual_clock();
        let client = client(&server, &[host], auth(credential.clone()));
        Service {
            server,
            credential,
            client,
            host,
        }
    }

    /// With `BearerAuth` for `scope` (plain http allowed: see [`bearer_auth`]).
    fn for_scope(server: StandIn, host: &'static str, scope: &'static str) -> Self {
        Self::new(server, host, |credential| {
            bearer_auth(credential, [scope]).unwrap()
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, url(self.host, &self.server, path))
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }
}

// ---------------------------------------------------------------------------------------------
// BearerAuth

#[tokio::test]
async fn requests_carry_the_credentials_token_and_share_its_cache() {
    let server = StandIn::start(|_| Response::new("200 OK")).await;
    let arm = Service::for_scope(server, "management.azure.com", ARM_SCOPE);
    for _ in 0..3 {
        let response = arm.get("/subscriptions").send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let seen = arm.server.requests();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|r| bearer(r) == Some("mock-token-1")));
    let requests = arm.credential.requests();
    assert_eq!(requests.len(), 1, "the credential's cache answers");
    assert_eq!(requests[0].scopes(), [ARM_SCOPE]);
    assert!(requests[0].enable_cae(), "tokens are asked for with CAE on");
}

#[tokio::test]
async fn a_cae_claims_challenge_is_answered_with_a_claims_token_and_one_retry() {
    let server = challenging(unauthorized(&cae_challenge())).await;
    let arm = Service::for_scope(server, "management.azure.com", ARM_SCOPE);

    let response = arm
        .request(Method::POST, "/subscriptions")
        .body("{\"a\":1}")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let seen = arm.server.requests();
    assert_eq!(seen.len(), 2, "exactly one retry");
    assert_eq!(bearer(&seen[0]), Some("mock-token-1"));
    assert_eq!(bearer(&seen[1]), Some("mock-token-2"), "a new token");
    assert_eq!(seen[1].body, b"{\"a\":1}", "the body is sent again");
    let requests = arm.credential.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].claims(), None);
    assert_eq!(requests[1].claims(), Some(CLAIMS), "the decoded claims");
    assert_eq!(requests[1].scopes(), [ARM_SCOPE], "the same scopes");
}

#[tokio::test]
async fn a_second_challenge_is_returned_as_it_is() {
    let challenge = cae_challenge();
    let server = StandIn::start(move |_| unauthorized(&challenge)).await;
    let arm = Service::for_scope(server, "management.azure.com", ARM_SCOPE);

    let response = arm.get("/subscriptions").send().await.unwrap();

    assert_eq!(response.status(), 401);
    assert_eq!(arm.server.requests().len(), 2, "sent at most twice");
    assert_eq!(arm.credential.fetch_count(), 2);
}

#[tokio::test]
async fn a_key_vault_challenge_gets_a_token_for_its_tenant_and_scope() {
    let challenge = key_vault_challenge(OTHER_TENANT, "https://vault.azure.net");
    let server = challenging(unauthorized(&challenge)).await;
    // Configured for the vault's scope in the home tenant; the vault lives in another tenant.
    let vault = Service::for_scope(server, "myvault.vault.azure.net", VAULT_SCOPE);

    let response = vault
        .get("/secrets/db?api-version=7.5")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let seen = vault.server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(bearer(&seen[1]), Some("mock-token-2"));
    let requests = vault.credential.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].tenant_id(), None);
    assert_eq!(
        requests[1].tenant_id(),
        Some(OTHER_TENANT),
        "the challenge's tenant"
    );
    assert_eq!(requests[1].scopes(), [VAULT_SCOPE], "the challenge's scope");
}

#[tokio::test]
async fn a_configured_tenant_is_asked_for_from_the_first_request() {
    let server = StandIn::start(|_| Response::new("200 OK")).await;
    let vault = Service::new(server, "myvault.vault.azure.net", |credential| {
        bearer_auth(credential, [VAULT_SCOPE])
            .unwrap()
            .with_tenant_id(OTHER_TENANT)
    });
    let response = vault.get("/keys").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(vault.server.requests().len(), 1);
    assert_eq!(
        vault.credential.requests()[0].tenant_id(),
        Some(OTHER_TENANT)
    );
}

#[tokio::test]
async fn a_challenges_scope_replaces_the_configured_one_within_the_domain() {
    let challenge = format!(
        r#"Bearer authorization_uri="https://login.microsoftonline.com/{TENANT}/oauth2/authorize", scope="https://vault.azure.net/.default""#
    );
    let server = challenging(unauthorized(&challenge)).await;
    // A scope the vault does not accept; its challenge names the right one.
    let vault = Service::for_scope(server, "myvault.vault.azure.net", ARM_SCOPE);

    let response = vault.get("/keys").send().await.unwrap();

    assert_eq!(response.status(), 200);
    let requests = vault.credential.requests();
    assert_eq!(requests[0].scopes(), [ARM_SCOPE]);
    assert_eq!(requests[1].scopes(), [VAULT_SCOPE]);
    assert_eq!(requests[1].tenant_id(), Some(TENANT));
}

#[tokio::test]
async fn a_challenge_for_another_domains_resource_gets_no_token() {
    // A server (here: anything at localhost, or a vault) asking for a token for ARM or for Key
    // Vault from outside vault.azure.net, a resource the middleware was not built for.
    for (host, resource, configured) in [
        (
            "myvault.vault.azure.net",
            "https://management.azure.com",
            VAULT_SCOPE,
        ),
        ("localhost", "https://vault.azure.net", ARM_SCOPE),
        ("evilvault.azure.net", "https://vault.azure.net", ARM_SCOPE),
    ] {
        let server = challenging(unauthorized(&key_vault_challenge(TENANT, resource))).await;
        let service = Service::for_scope(server, host, configured);

        let error = service.get("/secrets/db").send().await.unwrap_err();

        let error = ours(&error);
        assert_eq!(error.kind(), ErrorKind::Authentication, "{host}");
        assert_eq!(error.status(), Some(401));
        let message = error.to_string();
        assert!(
            message.contains("neither in its domain nor a resource this middleware was built for"),
            "{message}"
        );
        assert!(message.contains(host), "{message}");
        assert!(
            message.contains("with_verify_challenge_resource"),
            "{message}"
        );
        assert_eq!(service.server.requests().len(), 1, "{host}: not sent again");
        let requests = service.credential.requests();
        assert_eq!(requests.len(), 1, "{host}: no token for {resource}");
        assert_eq!(requests[0].scopes(), [configured]);
    }
}

#[tokio::test]
async fn a_storage_challenge_for_the_configured_resource_is_answered_with_the_check_on() {
    const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
    let challenge = format!(
        "Bearer authorization_uri=https://login.microsoftonline.com/{OTHER_TENANT}/oauth2/authorize resource_id=https://storage.azure.com"
    );
    let server = challenging(unauthorized(&challenge)).await;
    let blob = Service::for_scope(server, "acct.blob.core.windows.net", STORAGE_SCOPE);

    let response = blob.get("/data/blob").send().await.unwrap();

    assert_eq!(response.status(), 200);
    let requests = blob.credential.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].scopes(), [STORAGE_SCOPE]);
    assert_eq!(requests[1].tenant_id(), Some(OTHER_TENANT));
}

#[tokio::test]
async fn a_callers_authorization_header_is_kept_and_its_challenges_left_alone() {
    let server = challenging(unauthorized(&cae_challenge())).await;
    let arm = Service::for_scope(server, "management.azure.com", ARM_SCOPE);

    let response = arm
        .get("/subscriptions")
        .header(AUTHORIZATION, "Bearer the-callers-own")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 401, "the challenge is the caller's");
    let seen = arm.server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(bearer(&seen[0]), Some("the-callers-own"));
    assert_eq!(arm.credential.fetch_count(), 0);
}

#[tokio::test]
async fn a_stream_body_is_not_sent_again_and_the_error_says_why() {
    let server = challenging(unauthorized(&cae_challenge())).await;
    let arm = Service::for_scope(server, "management.azure.com", ARM_SCOPE);

    // A body reqwest cannot clone (any http_body::Body wrapped, e.g. a file or a stream).
    let error = arm
        .request(Method::PUT, "/things/1")
        .body(reqwest::Body::wrap(String::from("{\"a\":1}")))
        .send()
        .await
        .unwrap_err();

    let error = ours(&error);
    assert_eq!(error.kind(), ErrorKind::Authentication);
    assert_eq!(error.status(), Some(401));
    let message = error.to_string();
    assert!(message.contains("claims challenge"), "{message}");
    assert!(message.contains("cannot be sent twice"), "{message}");
    assert!(message.contains("buffered body"), "{message}");
    assert_eq!(arm.server.requests().len(), 1, "not retried");
    assert_eq!(
        arm.credential.fetch_count(),
        1,
        "no claims token fetched for nothing"
    );
}

#[tokio::test]
async fn a_stream_body_without_a_challenge_is_sent_once_as_usual() {
    let server = StandIn::start(|_| Response::new("201 Created")).await;
    let arm = Service::for_scope(server, "management.azure.com", ARM_SCOPE);
    let response = arm
        .request(Method::PUT, "/things/1")
        .body(reqwest::Body::wrap(String::from("{\"a\":1}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(arm.server.requests()[0].body, b"{\"a\":1}");
}

#[tokio::test]
async fn unanswerable_401s_are_returned_as_they_are() {
    for challenge in [
        r#"Bearer error="invalid_token", error_description="The token expired""#.to_owned(),
        r#"Basic realm="x""#.to_owned(),
        r#"Bearer error="insufficient_claims", claims="not base64!""#.to_owned(),
        "Bearer claims=\"unclosed".to_owned(),
    ] {
        let server = challenging(unauthorized(&challenge)).await;
        let arm = Service::for_scope(server, "management.azure.com", ARM_SCOPE);
        let response = arm.get("/subscriptions").send().await.unwrap();
        assert_eq!(response.status(), 401, "{challenge}");
        assert_eq!(arm.server.requests().len(), 1, "{challenge}");
        assert_eq!(arm.credential.fetch_count(), 1, "{challenge}");
    }
}

#[tokio::test]
async fn a_credential_failure_is_the_credentials_error_and_nothing_is_sent() {
    let server = StandIn::start(|_| Response::new("200 OK")).await;
    let arm = Service::for_scope(server, "management.azure.com", ARM_SCOPE);
    arm.credential
        .push_error(Error::unavailable("MockCredential", "scripted failure"));
    let error = arm.get("/subscriptions").send().await.unwrap_err();
    assert_eq!(ours(&error).kind(), ErrorKind::Unavailable);
    assert!(arm.server.requests().is_empty());
}

#[tokio::test]
async fn a_token_is_not_sent_over_plain_http_beyond_loopback() {
    let server = challenging(unauthorized("Bearer")).await;
    // BearerAuth as built, without with_allow_plain_http.
    let remote = Service::new(server, "management.azure.com", |credential| {
        BearerAuth::new(credential, [ARM_SCOPE]).unwrap()
    });

    let error = remote.get("/subscriptions").send().await.unwrap_err();

    let error = ours(&error);
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    let message = error.to_string();
    assert!(message.contains("clear text"), "{message}");
    assert!(message.contains("with_allow_plain_http"), "{message}");
    assert!(
        remote.credential.requests().is_empty(),
        "no token was fetched"
    );
    assert!(remote.server.requests().is_empty(), "nothing was sent");

    // Loopback is local: plain http is fine there (a local emulator, a sidecar).
    let auth = BearerAuth::new(remote.credential.clone(), [ARM_SCOPE]).unwrap();
    let local = client(&remote.server, &[], auth);
    let response = local
        .get(format!("http://{}/x", remote.server.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "sent with a token: the stand-in's first answer"
    );
    assert_eq!(remote.credential.requests().len(), 1);
    assert_eq!(remote.server.requests().len(), 1);
}
