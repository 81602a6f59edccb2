//! ManagedIdentityCredential against the loopback MockManagedIdentity playing every hosting source.
//!
//! Time: retries and timeouts run on tokio's paused clock; nothing sleeps for real.

mod support;
use support::fixtures;
use support::imds::{ARC_DIR, ARC_KEY, ARC_KEY_PATH, CLIENT_ID, SECRET};
use support::tls::tls_front;
use support::wait::{assert_waited, paused_now};

use std::ops::Bound::{Excluded, Unbounded};
#[cfg(unix)]
use std::path::Path;
use std::time::Duration;

use azure_credentials::system::{
    Clock, Env, Fs, Http, HttpRequest, HttpResponse, HttpTransport, RetryPolicy, TransportFuture,
};
use std::sync::Arc;

use azure_credentials::testing::{
    MockManagedIdentity, MockReply, RecordedRequest, StaticTokenCredential,
};
use azure_credentials::{
    ChainedTokenCredential, ErrorKind, ManagedIdentityCredential, ManagedIdentityCredentialBuilder,
    ManagedIdentitySource, TokenCache, TokenCredential, UserAssignedId,
};
use time::OffsetDateTime;
use time::macros::datetime;

const SCOPE: [&str; 1] = ["https://vault.azure.net/.default"];
const RESOURCE: &str = "https://vault.azure.net";

/// How long a managed identity credential retries at the most.
const BUDGET: Duration = Duration::from_secs(90);

/// When the success fixtures' tokens expire (Cloud Shell's fixture, an hour after midnight).
const FIXTURE_EXPIRY: OffsetDateTime = datetime!(2030-01-01 23:59:59 UTC);
const CLOUD_SHELL_EXPIRY: OffsetDateTime = datetime!(2030-01-01 0:59:59 UTC);

support::listed_enum! {
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Host, all HOSTS {
        Imds,
        AppService,
        AzureMl,
        CloudShell,
        AzureArc,
        ServiceFabric,
    }
}

/// A mock playing `host`, and the environment a program on that host would see.
struct Setup {
    mock: MockManagedIdentity,
    env: Env,
    fs: Fs,
    host: Host,
}

impl Setup {
    async fn new(host: Host) -> Setup {
        let mock = MockManagedIdentity::start().await;
        mock.set_identity_header(SECRET);
        let fs = Fs::memory();
        let env = match host {
            Host::Imds => Env::empty(),
            Host::AppService => Env::empty()
                .with("IDENTITY_ENDPOINT", mock.app_service_endpoint().as_str())
                .with("IDENTITY_HEADER", SECRET),
            Host::AzureMl => Env::empty()
                .with("MSI_ENDPOINT", mock.azure_ml_endpoint().as_str())
                .with("MSI_SECRET", SECRET),
            Host::CloudShell => {
                Env::empty().with("MSI_ENDPOINT", mock.cloud_shell_endpoint().as_str())
            }
            Host::AzureArc => {
                mock.set_arc_key(ARC_KEY_PATH, ARC_KEY);
                fs.write(ARC_KEY_PATH, ARC_KEY);
                Env::empty()
                    .with("IDENTITY_ENDPOINT", mock.arc_endpoint().as_str())
                    .with("IMDS_ENDPOINT", "http://127.0.0.1:40342")
            }
            Host::ServiceFabric => {
                let (base, thumbprint) = tls_front(&mock).await;
                let mut url = base;
                url.set_path("/servicefabric/token");
                Env::empty()
                    .with("IDENTITY_ENDPOINT", url.as_str())
                    .with("IDENTITY_HEADER", SECRET)
                    .with("IDENTITY_SERVER_THUMBPRINT", thumbprint)
            }
        };
        Setup {
            mock,
            env,
            fs,
            host,
        }
    }

    fn builder(&self) -> ManagedIdentityCredentialBuilder {
        ManagedIdentityCredential::builder()
            .env(self.env.clone())
            .fs(self.fs.clone())
            .cache(TokenCache::builder().build())
            .imds_endpoint(self.mock.imds_endpoint())
            .arc_key_directory(ARC_DIR)
    }

    fn credential(&self) -> ManagedIdentityCredential {
        self.builder().build().unwrap()
    }

    /// The error a fresh credential returns when the mock answers every request with `reply`,
    /// and when the call started.
    async fn fails_on_every(
        &self,
        reply: MockReply,
    ) -> (azure_credentials::Error, tokio::time::Instant) {
        self.mock.set_default(reply);
        let started = paused_now();
        (self.fails().await, started)
    }

    /// The error a fresh credential for this host returns for [`SCOPE`].
    async fn fails(&self) -> azure_credentials::Error {
        self.credential().get_token(&SCOPE, None).await.unwrap_err()
    }

    /// The token requests that passed the protocol checks (Arc's challenges excluded).
    fn token_requests(&self) -> Vec<RecordedRequest> {
        self.mock
            .requests()
            .into_iter()
            .filter(|r| self.host != Host::AzureArc || r.header("authorization").is_some())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Detection and configuration

#[test]
fn the_source_is_detected_in_the_documented_order() {
    let url = "http://127.0.0.1:9/token";
    let thumbprint = "0123456789abcdef0123456789abcdef01234567";
    let cases = [
        (
            vec![
                ("IDENTITY_ENDPOINT", "https://127.0.0.1:9/token"),
                ("IDENTITY_HEADER", "h"),
                ("IDENTITY_SERVER_THUMBPRINT", thumbprint),
                ("MSI_ENDPOINT", url),
                ("IMDS_ENDPOINT", url),
            ],
            ManagedIdentitySource::ServiceFabric,
        ),
        (
            vec![
                ("IDENTITY_ENDPOINT", url),
                ("IDENTITY_HEADER", "h"),
                ("MSI_ENDPOINT", url),
                ("MSI_SECRET", "s"),
                ("IMDS_ENDPOINT", url),
            ],
            ManagedIdentitySource::AppService,
        ),
        (
            vec![
                ("MSI_ENDPOINT", url),
                ("MSI_SECRET", "s"),
                ("IDENTITY_ENDPOINT", url),
                ("IMDS_ENDPOINT", url),
            ],
            ManagedIdentitySource::AzureMl,
        ),
        (
            vec![
                ("MSI_ENDPOINT", url),
                ("IDENTITY_ENDPOINT", url),
                ("IMDS_ENDPOINT", url),
            ],
            ManagedIdentitySource::CloudShell,
        ),
        (
            vec![("IDENTITY_ENDPOINT", url), ("IMDS_ENDPOINT", url)],
            ManagedIdentitySource::AzureArc,
        ),
        // Set but empty counts as unset.
        (
            vec![
                ("IDENTITY_ENDPOINT", url),
                ("IDENTITY_HEADER", " "),
                ("MSI_ENDPOINT", ""),
            ],
            ManagedIdentitySource::Imds,
        ),
        (vec![], ManagedIdentitySource::Imds),
    ];
    for (vars, expected) in cases {
        let credential = ManagedIdentityCredential::builder()
            .env(Env::from_pairs(vars.clone()))
            .fs(Fs::memory())
            .system_assigned()
            .build()
            .unwrap();
        assert_eq!(credential.source(), expected, "{vars:?}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn an_installed_arc_agent_means_azure_arc() {
    let fs = Fs::memory();
    fs.write("/opt/azcmagent/bin/himds", "binary");
    let credential = ManagedIdentityCredential::builder()
        .env(Env::empty())
        .fs(fs)
        .build()
        .unwrap();
    assert_eq!(credential.source(), ManagedIdentitySource::AzureArc);
    assert!(format!("{credential:?}").contains("127.0.0.1:40342"));
}

#[test]
fn bad_configuration_fails_at_build_with_a_message_naming_it() {
    let cases = [
        (
            vec![("IDENTITY_ENDPOINT", "not a url"), ("IDENTITY_HEADER", "h")],
            "IDENTITY_ENDPOINT",
        ),
        (vec![("MSI_ENDPOINT", "ftp://127.0.0.1/x")], "MSI_ENDPOINT"),
        (
            vec![
                ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/token"),
                ("IDENTITY_HEADER", "h"),
                (
                    "IDENTITY_SERVER_THUMBPRINT",
                    "0123456789abcdef0123456789abcdef01234567",
                ),
            ],
            "https",
        ),
        (
            vec![
                ("IDENTITY_ENDPOINT", "https://127.0.0.1:9/token"),
                ("IDENTITY_HEADER", "h"),
                ("IDENTITY_SERVER_THUMBPRINT", "not-hex"),
            ],
            "IDENTITY_SERVER_THUMBPRINT",
        ),
        (
            vec![("AZURE_CREDENTIALS_IMDS_PROBE_TIMEOUT_MS", "fast")],
            "AZURE_CREDENTIALS_IMDS_PROBE_TIMEOUT_MS",
        ),
        (
            vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST", "::::")],
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        ),
    ];
    for (vars, named) in cases {
        let err = ManagedIdentityCredential::builder()
            .env(Env::from_pairs(vars.clone()))
            .fs(Fs::memory())
            .build()
            .unwrap_err();
        assert!(err.is_invalid_input(), "{vars:?}: {err}");
        assert!(err.to_string().contains(named), "{vars:?}: {err}");
        assert!(!err.to_string().contains("\"h\""));
    }
}

#[tokio::test]
async fn user_assigned_ids_are_accepted_only_where_the_source_can_select_them() {
    let ids = [
        UserAssignedId::ClientId(CLIENT_ID.into()),
        UserAssignedId::ObjectId("object-1".into()),
        UserAssignedId::ResourceId("/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u".into()),
    ];
    for host in HOSTS {
        let setup = Setup::new(host).await;
        for id in &ids {
            let built = setup.builder().user_assigned_id(id.clone()).build();
            let expected = match host {
                Host::Imds | Host::AppService | Host::AzureArc => true,
                Host::AzureMl => matches!(id, UserAssignedId::ClientId(_)),
                Host::CloudShell | Host::ServiceFabric => false,
            };
            match built {
                Ok(credential) => {
                    assert!(expected, "{host:?} accepted {id:?}");
                    assert_eq!(credential.user_assigned_id(), Some(id));
                }
                Err(err) => {
                    assert!(!expected, "{host:?} refused {id:?}: {err}");
                    assert!(err.is_invalid_input());
                    assert!(err.to_string().contains(id.to_string().as_str()), "{err}");
                }
            }
        }
    }
}

#[tokio::test]
async fn azure_client_id_names_a_user_assigned_identity_unless_told_otherwise() {
    let setup = Setup::new(Host::Imds).await;
    let with_env = setup
        .builder()
        .env(Env::empty().with("AZURE_CLIENT_ID", CLIENT_ID));
    assert_eq!(
        with_env.clone().build().unwrap().user_assigned_id(),
        Some(&UserAssignedId::ClientId(CLIENT_ID.into()))
    );
    assert_eq!(
        with_env
            .system_assigned()
            .build()
            .unwrap()
            .user_assigned_id(),
        None
    );
    // Cloud Shell cannot select one: the message says where it came from and how to drop it.
    let shell = Setup::new(Host::CloudShell).await;
    let err = shell
        .builder()
        .env(shell.env.clone().with("AZURE_CLIENT_ID", CLIENT_ID))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("AZURE_CLIENT_ID"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Each source's protocol

#[tokio::test]
async fn each_source_speaks_its_own_protocol() {
    for host in HOSTS {
        let setup = Setup::new(host).await;
        let id = match host {
            Host::CloudShell | Host::ServiceFabric => None,
            _ => Some(UserAssignedId::ClientId(CLIENT_ID.into())),
        };
        let mut builder = setup.builder();
        if let Some(id) = id.clone() {
            builder = builder.user_assigned_id(id);
        }
        let credential = builder.build().unwrap();
        let token = credential.get_token(&SCOPE, None).await.unwrap();
        assert!(
            token.token().expose().starts_with("mock-imds-token-"),
            "{host:?}"
        );
        assert_eq!(token.source(), "ManagedIdentityCredential");

        let requests = setup.token_requests();
        assert_eq!(requests.len(), 1, "{host:?}: {requests:?}");
        let r = &requests[0];
        let (method, api_version, id_param, secret_header) = match host {
            Host::Imds => ("GET", Some("2018-02-01"), Some("client_id"), None),
            Host::AppService => (
                "GET",
                Some("2019-08-01"),
                Some("client_id"),
                Some("x-identity-header"),
            ),
            Host::AzureMl => ("GET", Some("2017-09-01"), Some("clientid"), Some("secret")),
            Host::CloudShell => ("POST", None, None, None),
            Host::AzureArc => ("GET", Some("2020-06-01"), Some("client_id"), None),
            Host::ServiceFabric => ("GET", Some("2019-07-01-preview"), None, Some("secret")),
        };
        assert_eq!(r.method(), method, "{host:?}");
        assert_eq!(r.query("api-version"), api_version, "{host:?}");
        if let Some(param) = id_param {
            assert_eq!(r.query(param), Some(CLIENT_ID), "{host:?}");
        }
        if let Some(header) = secret_header {
            assert_eq!(r.header(header), Some(SECRET), "{host:?}");
        }
        match host {
            Host::CloudShell => {
                assert_eq!(r.body(), b"resource=https%3A%2F%2Fvault.azure.net");
                assert_eq!(r.header("metadata"), Some("true"));
            }
            Host::Imds | Host::AzureArc => {
                assert_eq!(r.query("resource"), Some(RESOURCE));
                assert_eq!(r.header("metadata"), Some("true"));
            }
            _ => assert_eq!(r.query("resource"), Some(RESOURCE), "{host:?}"),
        }
        if host == Host::AzureArc {
            assert_eq!(
                r.header("authorization"),
                Some(format!("Basic {ARC_KEY}").as_str())
            );
            // The first leg carried no key.
            assert!(setup.mock.requests()[0].header("authorization").is_none());
        }
    }
}

#[tokio::test]
async fn resource_ids_use_each_sources_parameter_name() {
    let resource_id = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u";
    for (host, param) in [
        (Host::Imds, "msi_res_id"),
        (Host::AppService, "mi_res_id"),
        (Host::AzureArc, "msi_res_id"),
    ] {
        let setup = Setup::new(host).await;
        let credential = setup.builder().resource_id(resource_id).build().unwrap();
        // The mock echoes msi_res_id only; App Service tokens are not checked for an echo.
        let _ = credential.get_token(&SCOPE, None).await;
        let r = &setup.token_requests()[0];
        assert_eq!(r.query(param), Some(resource_id), "{host:?}");
    }
    let setup = Setup::new(Host::Imds).await;
    let credential = setup.builder().object_id("object-1").build().unwrap();
    credential.get_token(&SCOPE, None).await.unwrap();
    assert_eq!(
        setup.token_requests()[0].query("object_id"),
        Some("object-1")
    );
}

#[tokio::test]
async fn exactly_one_scope_is_required() {
    let setup = Setup::new(Host::Imds).await;
    let credential = setup.credential();
    for scopes in [
        &[][..],
        &["a/.default", "b/.default"][..],
        &["bad scope"][..],
    ] {
        let err = credential.get_token(scopes, None).await.unwrap_err();
        assert!(err.is_invalid_input(), "{scopes:?}: {err}");
    }
    assert_eq!(setup.mock.request_count(), 0);
}

#[tokio::test]
async fn the_resource_is_the_scope_minus_one_default_suffix() {
    let setup = Setup::new(Host::Imds).await;
    let credential = setup.credential();
    credential
        .get_token(&["https://storage.azure.com//.default"], None)
        .await
        .unwrap();
    assert_eq!(
        setup.token_requests()[0].query("resource"),
        Some("https://storage.azure.com/")
    );
}

// ---------------------------------------------------------------------------------------------
// Responses: fixtures of every shape

#[tokio::test]
async fn success_fixtures_give_tokens_with_the_right_expiry() {
    use Host::*;
    let cases = [
        (Imds, "imds_token.json", FIXTURE_EXPIRY),
        (Imds, "imds_token_numbers.json", FIXTURE_EXPIRY),
        (AppService, "app_service_token.json", FIXTURE_EXPIRY),
        (AzureMl, "azure_ml_token_linux_date.json", FIXTURE_EXPIRY),
        (AzureMl, "azure_ml_token_windows_date.json", FIXTURE_EXPIRY),
        (CloudShell, "cloud_shell_token.json", CLOUD_SHELL_EXPIRY),
        (ServiceFabric, "service_fabric_token.json", FIXTURE_EXPIRY),
        (AzureArc, "arc_token_user_assigned.json", FIXTURE_EXPIRY),
    ];
    for (host, file, expires_on) in cases {
        let setup = Setup::new(host).await;
        let body = fixtures::read_to_string("managed_identity", file);
        setup.mock.push(MockReply::json(200, body.clone()));
        let token = setup.credential().get_token(&SCOPE, None).await.unwrap();
        assert!(
            token.token().expose().starts_with("fixture-mi-token-"),
            "{file}"
        );
        assert_eq!(token.expires_on(), expires_on, "{file}");
    }
}

#[tokio::test]
async fn expires_in_only_counts_from_the_request() {
    let setup = Setup::new(Host::Imds).await;
    setup.mock.push(MockReply::json(
        200,
        fixtures::read_to_string("managed_identity", "imds_token_expires_in_only.json"),
    ));
    let before = Clock::system().now();
    let token = setup.credential().get_token(&SCOPE, None).await.unwrap();
    let lifetime = token.expires_on() - before;
    // Counted from when the request was sent: a little after `before`.
    assert!(
        lifetime >= time::Duration::seconds(3600) && lifetime < time::Duration::seconds(3610),
        "{lifetime}"
    );
}

#[tokio::test]
async fn refresh_in_and_half_life_set_the_refresh_time() {
    // A 24 h token with refresh_in 12 h: the cache refreshes at the provider's hint.
    let setup = Setup::new(Host::Imds).await;
    let now = Clock::system().now();
    setup
        .mock
        .push(MockReply::token("t").expires_in(86_400).refresh_in(3600));
    let token = setup.credential().get_token(&SCOPE, None).await.unwrap();
    let refresh_in = token.refresh_on().unwrap() - now;
    // Drawn from a window a quarter of the interval wide, centred on the target.
    assert!(
        refresh_in <= time::Duration::minutes(68) && refresh_in > time::Duration::minutes(52),
        "{refresh_in}"
    );
    // Without a hint, half of the lifetime (± 1.5 h).
    let setup = Setup::new(Host::Imds).await;
    setup.mock.push(MockReply::token("t").expires_in(86_400));
    let token = setup.credential().get_token(&SCOPE, None).await.unwrap();
    let refresh_in = token.refresh_on().unwrap() - now;
    assert!(
        refresh_in <= time::Duration::minutes(12 * 60 + 91)
            && refresh_in > time::Duration::minutes(12 * 60 - 91),
        "{refresh_in}"
    );
}

#[tokio::test]
async fn error_fixtures_are_classified_for_the_chain() {
    use ErrorKind::*;
    let cases: &[(Host, u16, &str, bool, ErrorKind, &str)] = &[
        // system-assigned identity missing: nothing here to use, the chain moves on
        (
            Host::Imds,
            400,
            "imds_identity_not_found.json",
            false,
            Unavailable,
            "no managed identity is assigned",
        ),
        // the requested user-assigned identity is not there: a real refusal, the chain stops
        (
            Host::Imds,
            400,
            "imds_identity_not_found.json",
            true,
            Authentication,
            "not assigned",
        ),
        (
            Host::Imds,
            403,
            "docker_desktop_403.txt",
            false,
            Unavailable,
            "unreachable",
        ),
        (
            Host::Imds,
            200,
            "proxy_page.html",
            false,
            Unavailable,
            "an HTML page, not JSON: something other than IMDS answered",
        ),
        (
            Host::Imds,
            502,
            "proxy_page.html",
            false,
            Unavailable,
            "an HTML page, not JSON: something other than IMDS answered",
        ),
        (
            Host::AppService,
            400,
            "app_service_error.json",
            false,
            Authentication,
            "Unable to load the proper Managed Identity",
        ),
        (
            Host::AppService,
            200,
            "proxy_page.html",
            false,
            Other,
            "not JSON",
        ),
        (
            Host::ServiceFabric,
            404,
            "service_fabric_error.json",
            false,
            Authentication,
            "No managed identity is configured",
        ),
        (
            Host::Imds,
            200,
            "no_access_token.json",
            false,
            ServiceFailure,
            "without an access_token",
        ),
        (
            Host::Imds,
            200,
            "not_bearer.json",
            false,
            ServiceFailure,
            "not a bearer token",
        ),
        (
            Host::Imds,
            200,
            "no_expiry.json",
            false,
            ServiceFailure,
            "without a readable expiry",
        ),
        (
            Host::Imds,
            401,
            "imds_unexpected_error.json",
            false,
            Authentication,
            "An unexpected error occurred",
        ),
    ];
    for &(host, status, file, user_assigned, kind, says) in cases {
        let setup = Setup::new(host).await;
        setup.mock.set_default(MockReply::json(
            status,
            fixtures::read_to_string("managed_identity", file),
        ));
        // Retries are tested below; here one answer is classified.
        let mut builder = setup.builder().retry_policy(RetryPolicy::none());
        if user_assigned {
            builder = builder.client_id(CLIENT_ID);
        }
        let credential = builder.build().unwrap();
        let err = credential.get_token(&SCOPE, None).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{file}: {err}");
        assert!(err.to_string().contains(says), "{file}: {err}");
        assert!(!err.to_string().contains("fixture-mi-token"), "{err}");
        assert!(!err.to_string().contains("<html"), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Faults, with paused time

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_until_a_token_comes() {
    let setup = Setup::new(Host::Imds).await;
    setup.mock.push_many([
        MockReply::status(500),
        MockReply::status(500),
        MockReply::auto_token(),
    ]);
    let token = setup.credential().get_token(&SCOPE, None).await.unwrap();
    assert!(token.token().expose().starts_with("mock-imds-token-"));
    assert_eq!(setup.mock.request_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_for() {
    let setup = Setup::new(Host::Imds).await;
    setup.mock.push_many([
        MockReply::status(429).with_header("Retry-After", "2"),
        MockReply::auto_token(),
    ]);
    let started = paused_now();
    setup.credential().get_token(&SCOPE, None).await.unwrap();
    // Never sooner; the jitter on top adds at most another 2 s.
    let (secs_2, secs_4) = (Duration::from_secs(2), Duration::from_secs(4));
    assert_waited(started, secs_2..=secs_4, "Retry-After: 2 plus jitter");
    assert_eq!(setup.mock.request_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn gone_keeps_being_retried_for_at_least_seventy_seconds() {
    let setup = Setup::new(Host::Imds).await;
    let (err, started) = setup.fails_on_every(MockReply::status(410)).await;
    assert_waited(started, Duration::from_secs(70)..=BUDGET, "70 s of 410s");
    assert_eq!(setup.mock.request_count(), 9);
    assert!(err.to_string().contains("after 9 attempts"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn persistent_server_errors_stop_within_the_budget_and_say_so() {
    let setup = Setup::new(Host::Imds).await;
    let (err, started) = setup.fails_on_every(MockReply::status(500)).await;
    assert_eq!(setup.mock.request_count(), 5);
    assert_waited(started, ..Duration::from_secs(30), "within the 30 s budget");
    assert_eq!(err.status(), Some(500));
    assert!(err.to_string().contains("after 5 attempts"), "{err}");
    // The endpoint failed; it did not refuse.
    assert_eq!(err.kind(), ErrorKind::ServiceFailure, "{err}");
    assert!(!err.is_authentication(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_not_retried() {
    let setup = Setup::new(Host::Imds).await;
    setup
        .mock
        .push(MockReply::error(400, "invalid_request", "Bad resource"));
    setup.fails().await;
    assert_eq!(setup.mock.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_endpoint_is_a_timeout_within_the_budget() {
    let setup = Setup::new(Host::Imds).await;
    let (err, started) = setup.fails_on_every(MockReply::hang()).await;
    assert!(err.is_timeout(), "{err}");
    assert_waited(started, ..=BUDGET, "the retry budget");
}

#[tokio::test]
async fn broken_and_hostile_responses_are_typed_errors() {
    for (reply, kind) in [
        (MockReply::reset(), ErrorKind::Io),
        (MockReply::half_body(), ErrorKind::Io),
        (MockReply::close(), ErrorKind::Io),
        (MockReply::malformed_json(), ErrorKind::ServiceFailure),
        (MockReply::html(200), ErrorKind::Unavailable),
        (MockReply::oversized(5 * 1024 * 1024), ErrorKind::Other),
    ] {
        let setup = Setup::new(Host::Imds).await;
        setup.mock.push(reply.clone());
        let credential = setup
            .builder()
            .retry_policy(RetryPolicy::none())
            .build()
            .unwrap();
        let err = credential.get_token(&SCOPE, None).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{reply:?}: {err}");
        assert!(!err.to_string().contains("mock-imds-token"), "{err}");
        assert_eq!(setup.mock.request_count(), 1, "{reply:?}");
    }
}

/// A chain of this managed identity credential and, behind it, a developer's login: whether the
/// chain moves on is whether the developer's token comes back.
fn chain_with_a_developer_login_behind(
    credential: ManagedIdentityCredential,
) -> ChainedTokenCredential {
    let developer =
        StaticTokenCredential::new("developer-login-token", datetime!(2100-01-01 0:00 UTC));
    ChainedTokenCredential::builder()
        .member("ManagedIdentityCredential", Arc::new(credential))
        .member("Developer", Arc::new(developer))
        .build()
        .unwrap()
}

const TOKEN_JSON: &str =
    r#"{"access_token":"mock-imds-token-bom","expires_in":"3600","token_type":"Bearer"}"#;

/// The rule of the module docs, row by row, at IMDS: only an answer that clearly is not IMDS's
/// (HTML, a redirect, Docker Desktop's 403, plain text with an error status) moves a chain on;
/// anything that looks like IMDS's answer, however broken, is an error that stops it.
#[tokio::test(start_paused = true)]
async fn only_answers_that_are_not_imds_move_the_chain_on() {
    use ErrorKind::*;
    let docker = fixtures::read_to_string("managed_identity", "docker_desktop_403.txt");
    let cases: Vec<(&str, MockReply, ErrorKind, &str)> = vec![
        (
            "HTML 200",
            MockReply::html(200),
            Unavailable,
            "an HTML page",
        ),
        (
            "HTML 502",
            MockReply::html(502),
            Unavailable,
            "an HTML page",
        ),
        (
            "redirect",
            MockReply::redirect(302, "http://portal.example/login"),
            Unavailable,
            "a redirect",
        ),
        (
            "Docker Desktop 403",
            MockReply::raw(403, Some("text/plain"), docker),
            Unavailable,
            "unreachable",
        ),
        (
            "plain-text 404 (another cloud's metadata server)",
            MockReply::raw(404, Some("text/plain"), "404 page not found"),
            Unavailable,
            "something other than IMDS",
        ),
        (
            "truncated JSON",
            MockReply::json(200, r#"{"access_token":"mock-imds-token-ab"#),
            ServiceFailure,
            "cut short or malformed",
        ),
        (
            "body shorter than its Content-Length",
            MockReply::short_body(200, r#"{"access_token":"mock-imds-token-short""#, 400),
            Io,
            "",
        ),
        (
            "[]",
            MockReply::json(200, "[]"),
            ServiceFailure,
            "a JSON array",
        ),
        (
            "null",
            MockReply::json(200, "null"),
            ServiceFailure,
            "JSON null",
        ),
        (
            "{}",
            MockReply::json(200, "{}"),
            ServiceFailure,
            "without an access_token",
        ),
        (
            "plain-text 200",
            MockReply::raw(200, Some("text/plain"), "OK"),
            ServiceFailure,
            "not JSON",
        ),
        (
            "empty 200",
            MockReply::json(200, ""),
            ServiceFailure,
            "an empty body",
        ),
        (
            "access_token of the wrong type",
            MockReply::json(200, r#"{"access_token":42,"expires_in":"3600"}"#),
            ServiceFailure,
            "wrong types",
        ),
        (
            "persistent 503",
            MockReply::status(503),
            ServiceFailure,
            "failed: it answered 503 after 5 attempts",
        ),
        (
            "persistent 500 with JSON cut short",
            MockReply::json(500, r#"{"error":"server_er"#),
            ServiceFailure,
            "answered 500",
        ),
    ];
    for (name, reply, kind, says) in cases {
        let setup = Setup::new(Host::Imds).await;
        setup.mock.set_default(reply);
        // Directly: the kind and what it says.
        let err = setup.fails().await;
        assert_eq!(err.kind(), kind, "{name}: {err}");
        assert!(err.to_string().contains(says), "{name}: {err}");
        assert!(
            !err.to_string().contains("mock-imds-token"),
            "{name}: {err}"
        );
        assert!(!err.to_string().contains("<html"), "{name}: {err}");
        // In a chain: only Unavailable lets the developer's login be used.
        let chain = chain_with_a_developer_login_behind(setup.credential());
        let result = chain.get_token(&SCOPE, None).await;
        match kind {
            Unavailable => {
                let token = result.unwrap_or_else(|e| panic!("{name}: the chain stopped: {e}"));
                assert_eq!(token.token().expose(), "developer-login-token", "{name}");
            }
            _ => {
                let err = result.expect_err(name);
                assert_eq!(err.kind(), kind, "{name}: {err}");
                assert_eq!(chain.selected(), None, "{name}");
            }
        }
    }
}

#[tokio::test]
async fn json_after_a_byte_order_mark_is_a_token() {
    for host in HOSTS {
        let setup = Setup::new(host).await;
        let body = [b"\xEF\xBB\xBF".as_slice(), TOKEN_JSON.as_bytes()].concat();
        setup
            .mock
            .push(MockReply::raw(200, Some("application/json"), body));
        let token = setup
            .credential()
            .get_token(&SCOPE, None)
            .await
            .unwrap_or_else(|e| panic!("{host:?}: {e}"));
        assert_eq!(token.token().expose(), "mock-imds-token-bom", "{host:?}");
    }
}

/// From a source the environment names, nothing moves the chain on: the environment says this
/// is the host. A broken answer is a failure of the endpoint; a proxy's page is `Other`.
#[tokio::test(start_paused = true)]
async fn a_named_endpoints_broken_answers_are_failures_and_stop_the_chain() {
    use ErrorKind::*;
    let cases: Vec<(MockReply, ErrorKind)> = vec![
        (
            MockReply::json(200, r#"{"access_token":"mock-imds-token-ab"#),
            ServiceFailure,
        ),
        (MockReply::json(200, "[]"), ServiceFailure),
        (
            MockReply::raw(200, Some("text/plain"), "OK"),
            ServiceFailure,
        ),
        (MockReply::status(503), ServiceFailure),
        (
            MockReply::raw(502, Some("text/plain"), "Bad Gateway"),
            ServiceFailure,
        ),
        (MockReply::html(200), Other),
        (MockReply::redirect(307, "http://portal.example/"), Other),
        (MockReply::status(401), Authentication),
    ];
    for host in [
        Host::AppService,
        Host::AzureMl,
        Host::CloudShell,
        Host::ServiceFabric,
    ] {
        for (reply, kind) in &cases {
            let setup = Setup::new(host).await;
            setup.mock.set_default(reply.clone());
            let chain = chain_with_a_developer_login_behind(setup.credential());
            let err = chain.get_token(&SCOPE, None).await.unwrap_err();
            assert_eq!(err.kind(), *kind, "{host:?} {reply:?}: {err}");
            assert!(!err.to_string().contains("mock-imds-token"), "{err}");
        }
    }
}

const OTHER_CLIENT_ID: &str = "99999999-8888-7777-6666-555555555555";

/// An endpoint that answers a request for one user-assigned identity with another identity's
/// token: refused (fail closed), naming both ids, and the chain stops.
#[tokio::test]
async fn a_token_naming_another_client_id_than_the_one_requested_is_refused() {
    for host in [Host::Imds, Host::AppService, Host::AzureMl, Host::AzureArc] {
        let setup = Setup::new(host).await;
        setup
            .mock
            .set_default(MockReply::auto_token().client_id(OTHER_CLIENT_ID));
        let credential = setup.builder().client_id(CLIENT_ID).build().unwrap();
        let err = credential.get_token(&SCOPE, None).await.unwrap_err();
        assert!(err.is_authentication(), "{host:?}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(CLIENT_ID) && text.contains(OTHER_CLIENT_ID),
            "{host:?}: {text}"
        );
        assert!(!text.contains("mock-imds-token"), "{text}");
        let chain = chain_with_a_developer_login_behind(credential);
        let err = chain.get_token(&SCOPE, None).await.unwrap_err();
        assert!(
            err.is_authentication(),
            "{host:?}: the chain must stop: {err}"
        );
    }
}

#[tokio::test]
async fn the_echoed_id_is_compared_case_insensitively_and_may_be_absent() {
    let setup = Setup::new(Host::Imds).await;
    setup
        .mock
        .push(MockReply::auto_token().client_id(CLIENT_ID.to_ascii_uppercase()));
    // A source that does not echo the id at all.
    setup.mock.push(MockReply::json(200, TOKEN_JSON));
    let credential = setup.builder().client_id(CLIENT_ID).build().unwrap();
    credential.get_token(&SCOPE, None).await.unwrap();
    credential
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_echoed_object_id_or_resource_id_must_match_too() {
    let setup = Setup::new(Host::Imds).await;
    setup.mock.push(MockReply::json(
        200,
        r#"{"access_token":"mock-imds-token-x","expires_in":"3600","object_id":"other-object"}"#,
    ));
    let credential = setup.builder().object_id("my-object").build().unwrap();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert!(err.is_authentication(), "{err}");
    assert!(
        err.to_string().contains("other-object") && err.to_string().contains("my-object"),
        "{err}"
    );

    let err = asking_for_mine_answered(
        Host::AppService,
        r#"{"access_token":"mock-imds-token-x","expires_on":"4102444800","mi_res_id":"/subscriptions/x/other"}"#,
    )
    .await;
    assert!(err.is_authentication(), "{err}");
}

/// The error of a credential on `host` asking for the identity `/subscriptions/x/mine` when
/// every answer is a token with `body`.
async fn asking_for_mine_answered(host: Host, body: &'static str) -> azure_credentials::Error {
    let setup = Setup::new(host).await;
    setup.mock.set_default(MockReply::json(200, body));
    let credential = setup
        .builder()
        .resource_id("/subscriptions/x/mine")
        .build()
        .unwrap();
    credential.get_token(&SCOPE, None).await.unwrap_err()
}

/// Caught by the `mi_response` fuzz target's identity check: an empty `msi_res_id` hid a
/// `mi_res_id` naming another identity, and the token was accepted.
#[tokio::test]
async fn a_resource_id_echo_naming_another_identity_is_refused_beside_an_empty_one() {
    for host in [Host::Imds, Host::AppService, Host::AzureArc] {
        let err = asking_for_mine_answered(
            host,
            r#"{"access_token":"mock-imds-token-x","expires_on":"4102444800","msi_res_id":"","mi_res_id":"/subscriptions/x/other"}"#,
        )
        .await;
        assert!(err.is_authentication(), "{host:?}: {err}");
        let text = err.to_string();
        assert!(
            text.contains("/subscriptions/x/other") && text.contains("/subscriptions/x/mine"),
            "{host:?}: {text}"
        );
        assert!(!text.contains("mock-imds-token"), "{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn without_the_probe_a_refused_local_port_is_unavailable_after_one_attempt() {
    // ManagedIdentityCredential used directly (or with AZURE_POD_IDENTITY_AUTHORITY_HOST in a
    // chain): nothing listens on a loopback or link-local endpoint, so there is no identity here.
    let refused = MockManagedIdentity::refused_address();
    let imds = ManagedIdentityCredential::builder()
        .env(Env::empty())
        .fs(Fs::memory())
        .cache(TokenCache::builder().build())
        .imds_endpoint(
            format!("http://{refused}/metadata/identity/oauth2/token")
                .parse()
                .unwrap(),
        )
        .build()
        .unwrap();
    let app_service = ManagedIdentityCredential::builder()
        .env(
            Env::empty()
                .with("IDENTITY_ENDPOINT", format!("http://{refused}/msi/token"))
                .with("IDENTITY_HEADER", SECRET),
        )
        .fs(Fs::memory())
        .cache(TokenCache::builder().build())
        .build()
        .unwrap();
    for credential in [imds, app_service] {
        let started = paused_now();
        let err = credential.get_token(&SCOPE, None).await.unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        assert!(err.to_string().contains("refused"), "{err}");
        assert!(err.to_string().contains("after 1 attempt"), "{err}");
        assert_waited(started, ..Duration::from_millis(100), "refused at once");
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_but_steady_body_is_read_once_and_not_cut_by_the_attempt_timeout() {
    // The token arrives 16 bytes a second: some 25 s in all, longer than the 10 s an attempt
    // may wait for the response to start, but it never pauses.
    let setup = Setup::new(Host::Imds).await;
    setup
        .mock
        .push(MockReply::trickle(16, Duration::from_secs(1)));
    let started = paused_now();
    let token = setup.credential().get_token(&SCOPE, None).await.unwrap();
    assert!(token.token().expose().starts_with("mock-imds-token-"));
    assert_eq!(setup.mock.request_count(), 1, "downloaded once");
    assert_waited(
        started,
        (Excluded(Duration::from_secs(10)), Unbounded),
        "past the attempt timeout",
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_is_retried_at_once_then_with_backoff() {
    for fault in [MockReply::reset(), MockReply::close()] {
        // Once: the retry follows at once.
        let setup = Setup::new(Host::Imds).await;
        setup.mock.push(fault.clone());
        let started = paused_now();
        setup.credential().get_token(&SCOPE, None).await.unwrap();
        assert_eq!(setup.mock.request_count(), 2, "{fault:?}");
        assert_waited(
            started,
            ..Duration::from_millis(100),
            format!("{fault:?} retried at once"),
        );
        // Twice: the second retry waits for the backoff (IMDS: 1 s, jittered).
        let setup = Setup::new(Host::Imds).await;
        setup.mock.push_many([fault.clone(), fault.clone()]);
        let started = paused_now();
        setup.credential().get_token(&SCOPE, None).await.unwrap();
        assert_eq!(setup.mock.request_count(), 3, "{fault:?}");
        let backoff = Duration::from_millis(800)..Duration::from_millis(1300);
        assert_waited(started, backoff, format!("{fault:?} twice: backoff"));
    }
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_until_the_budget_runs_out_not_a_count() {
    // Eight 429s with Retry-After: 1, more than the four retries 5xx get; then a token.
    let setup = Setup::new(Host::Imds).await;
    for _ in 0..8 {
        setup
            .mock
            .push(MockReply::status(429).with_header("Retry-After", "1"));
    }
    let started = paused_now();
    setup.credential().get_token(&SCOPE, None).await.unwrap();
    assert_eq!(setup.mock.request_count(), 9);
    // Never sooner than asked; the jitter on top adds at most one more Retry-After each.
    let (secs_8, secs_16) = (Duration::from_secs(8), Duration::from_secs(16));
    assert_waited(started, secs_8..=secs_16, "8 Retry-After: 1");

    // Throttled for good: retried for the whole 90 s budget, then the 429 is reported.
    let setup = Setup::new(Host::Imds).await;
    let (err, started) = setup
        .fails_on_every(MockReply::status(429).with_header("Retry-After", "1"))
        .await;
    assert!(err.is_throttled(), "{err}");
    assert_waited(started, ..=BUDGET, "the retry budget");
    assert!(
        setup.mock.request_count() > 30,
        "{}",
        setup.mock.request_count()
    );
}

#[test]
fn a_secret_sent_over_plain_http_to_a_remote_host_fails_at_build() {
    let build = |env: Env| {
        ManagedIdentityCredential::builder()
            .env(env)
            .fs(Fs::memory())
            .cache(TokenCache::builder().build())
            .build()
    };
    for (env, variable) in [
        (
            Env::empty()
                .with("IDENTITY_ENDPOINT", "http://msi.example.com:8081/msi/token")
                .with("IDENTITY_HEADER", SECRET),
            "IDENTITY_ENDPOINT",
        ),
        (
            Env::empty()
                .with("MSI_ENDPOINT", "http://ml.example.com/token")
                .with("MSI_SECRET", SECRET),
            "MSI_ENDPOINT",
        ),
        (
            Env::empty()
                .with("IDENTITY_ENDPOINT", "http://arc.example.com:40342/token")
                .with("IMDS_ENDPOINT", "http://arc.example.com:40342"),
            "IDENTITY_ENDPOINT",
        ),
    ] {
        let err = build(env).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let text = err.to_string();
        assert!(text.contains(variable), "{text}");
        assert!(text.contains("plain http"), "{text}");
        assert!(err.fix().is_some_and(|f| f.contains("https")), "{err}");
        assert!(!text.contains(SECRET));
    }
    // Loopback endpoints, https, and sources that send no secret are fine (link-local and
    // private addresses: source.rs's unit test, which parses them without building anything).
    for env in [
        Env::empty()
            .with("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token")
            .with("IDENTITY_HEADER", SECRET),
        Env::empty()
            .with("IDENTITY_ENDPOINT", "http://localhost:8081/msi/token")
            .with("IDENTITY_HEADER", SECRET),
        Env::empty()
            .with(
                "IDENTITY_ENDPOINT",
                "https://identity.example.com/msi/token",
            )
            .with("IDENTITY_HEADER", SECRET),
        Env::empty().with("MSI_ENDPOINT", "http://cloudshell.example.com/oauth2/token"),
        Env::empty().with(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            "http://pod.example.com",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        if let Err(e) = build(env.1) {
            panic!("case {}: {e}", env.0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The probe (chain mode)

#[tokio::test]
async fn a_refused_port_is_unavailable_at_once() {
    let credential = support::imds::probing_credential_off_azure();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("refused"), "{err}");
    // Without the probe, a refused connection is unavailable too (no retries of a refusal
    // make it anything else).
}

#[tokio::test]
async fn a_probe_answered_400_means_imds_is_there() {
    let setup = Setup::new(Host::Imds).await;
    let credential = setup.builder().probe(true).build().unwrap();
    credential.get_token(&SCOPE, None).await.unwrap();
    let requests = setup.mock.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("metadata"),
        None,
        "the probe has no Metadata header"
    );
    assert_eq!(requests[1].header("metadata"), Some("true"));
    // Never probed again.
    credential
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .unwrap();
    assert_eq!(setup.mock.request_count(), 3);
}

/// A silent IMDS probed by a credential made with `configure`: the setup, the error, and when
/// the call started.
async fn probe_a_silent_imds(
    configure: impl FnOnce(ManagedIdentityCredentialBuilder) -> ManagedIdentityCredentialBuilder,
) -> (Setup, azure_credentials::Error, tokio::time::Instant) {
    let setup = Setup::new(Host::Imds).await;
    setup.mock.require_metadata_header(false);
    setup.mock.set_default(MockReply::hang());
    let credential = configure(setup.builder().probe(true)).build().unwrap();
    let started = paused_now();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    (setup, err, started)
}

#[tokio::test(start_paused = true)]
async fn a_silent_imds_fails_the_probe_within_its_timeout() {
    let (setup, err, started) =
        probe_a_silent_imds(|b| b.probe_timeout(Duration::from_millis(1500))).await;
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("1.5s"), "{err}");
    assert_waited(started, ..Duration::from_secs(2), "probe timeout");
    assert_eq!(setup.mock.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_probe_timeout_comes_from_the_environment() {
    // A silent IMDS: the probe gives up after the variable's 2.5 s, not the default 1 s.
    let env = Env::empty().with("AZURE_CREDENTIALS_IMDS_PROBE_TIMEOUT_MS", "2500");
    let (_setup, err, started) = probe_a_silent_imds(|b| b.env(env)).await;
    let probe_timeout = Duration::from_millis(2500)..Duration::from_secs(3);
    assert_waited(started, probe_timeout, "probe timeout from the env");
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("2.5s"), "{err}");
}

#[tokio::test]
async fn pod_identity_names_the_endpoint_and_skips_the_probe() {
    let setup = Setup::new(Host::Imds).await;
    let base = setup.mock.base_url();
    let credential = ManagedIdentityCredential::builder()
        .env(Env::empty().with("AZURE_POD_IDENTITY_AUTHORITY_HOST", format!("{base}")))
        .fs(Fs::memory())
        .cache(TokenCache::builder().build())
        .probe(true)
        .build()
        .unwrap();
    credential.get_token(&SCOPE, None).await.unwrap();
    let requests = setup.mock.requests();
    assert_eq!(requests.len(), 1, "no probe");
    assert_eq!(requests[0].path(), "/metadata/identity/oauth2/token");
}

#[tokio::test]
async fn an_imds_that_comes_up_later_is_found_without_a_restart() {
    // First the probe is refused; later the same credential finds IMDS.
    let setup = Setup::new(Host::Imds).await;
    let clock = azure_credentials::system::ManualClock::new(Clock::system().now());
    let cache = TokenCache::builder().clock(clock.clock()).build();
    setup.mock.require_metadata_header(false);
    setup.mock.push(MockReply::reset());
    let credential = setup.builder().cache(cache).probe(true).build().unwrap();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    // Remembered only briefly.
    clock.advance(Duration::from_secs(2));
    credential.get_token(&SCOPE, None).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Azure Arc and Service Fabric specifics

#[tokio::test]
async fn arc_refuses_a_key_outside_the_agents_directory() {
    let setup = Setup::new(Host::AzureArc).await;
    setup.mock.set_arc_key("/etc/passwd.key", "x");
    setup.fs.write("/etc/passwd.key", "stolen");
    let err = setup.fails().await;
    assert!(
        err.to_string().contains("not in the agent's directory"),
        "{err}"
    );
    // Only the challenge was sent; the file was never offered.
    assert_eq!(setup.mock.request_count(), 1);
}

#[tokio::test]
async fn arc_fails_closed_when_an_old_agent_ignores_the_user_assigned_id() {
    let setup = Setup::new(Host::AzureArc).await;
    let credential = setup.builder().client_id(CLIENT_ID).build().unwrap();
    credential.get_token(&SCOPE, None).await.unwrap();

    let old = Setup::new(Host::AzureArc).await;
    old.mock.arc_echoes_user_assigned_id(false);
    let credential = old.builder().client_id(CLIENT_ID).build().unwrap();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert!(err.is_authentication(), "{err}");
    assert!(err.to_string().contains("refusing a token"), "{err}");
    assert!(
        err.to_string().contains("update the Azure Arc agent"),
        "{err}"
    );
}

/// An Azure Arc host whose agent names `key_name` in its real key directory.
#[cfg(unix)]
async fn arc_on_real_files(
    dir: &Path,
    key_name: &str,
) -> (MockManagedIdentity, ManagedIdentityCredential) {
    let setup = Setup::new(Host::AzureArc).await;
    setup.mock.set_arc_key(dir.join(key_name), ARC_KEY);
    let credential = setup
        .builder()
        .fs(Fs::real())
        .arc_key_directory(dir)
        .build()
        .unwrap();
    (setup.mock, credential)
}

#[cfg(unix)]
#[tokio::test]
async fn arc_reads_only_a_regular_key_file_and_never_follows_or_blocks() {
    let dir = fixtures::scratch_dir("managed-identity", "arc-keys");
    let outside = fixtures::scratch_dir("managed-identity", "arc-outside");
    std::fs::write(dir.join("good.key"), ARC_KEY).unwrap();
    std::fs::write(outside.join("secret.key"), "outside-secret").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.key"), dir.join("link.key")).unwrap();
    // A link to the right key is still a link.
    std::os::unix::fs::symlink(dir.join("good.key"), dir.join("link-to-good.key")).unwrap();
    std::fs::create_dir(dir.join("dir.key")).unwrap();
    std::fs::write(dir.join("big.key"), vec![b'k'; 4097]).unwrap();

    let (mock, credential) = arc_on_real_files(&dir, "good.key").await;
    credential.get_token(&SCOPE, None).await.unwrap();
    assert_eq!(mock.request_count(), 2, "challenge, then the key");

    for (name, says) in [
        ("link.key", "symbolic link"),
        ("link-to-good.key", "symbolic link"),
        ("dir.key", "directory"),
        ("big.key", "larger than 4096"),
    ] {
        let (mock, credential) = arc_on_real_files(&dir, name).await;
        let err = credential.get_token(&SCOPE, None).await.unwrap_err();
        assert!(err.to_string().contains(says), "{name}: {err}");
        assert!(!err.to_string().contains("outside-secret"), "{err}");
        assert_eq!(
            mock.request_count(),
            1,
            "{name}: nothing was sent after the challenge"
        );
    }
}

/// A FIFO named by the agent is refused without being opened. Before, opening it blocked the
/// thread until a writer came: forever here.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arc_never_opens_a_fifo_named_as_the_key() {
    let dir = fixtures::scratch_dir("managed-identity", "arc-fifo");
    let fifo = dir.join("fifo.key");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let (mock, credential) = arc_on_real_files(&dir, "fifo.key").await;
    let attempt = tokio::spawn(async move { credential.get_token(&SCOPE, None).await.err() });
    // A watchdog, not a timing assertion: a refusal needs no waiting at all, and a blocked open
    // would never return. On a hang, a writer releases the blocked thread so the test can end.
    let Ok(result) = tokio::time::timeout(Duration::from_secs(60), attempt).await else {
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
        panic!("the credential blocked opening the FIFO");
    };
    let err = result.unwrap().expect("no token from a FIFO");
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert_eq!(
        mock.request_count(),
        1,
        "nothing was sent after the challenge"
    );
}

#[tokio::test]
async fn service_fabric_rejects_a_certificate_other_than_the_pinned_one() {
    let setup = Setup::new(Host::ServiceFabric).await;
    let other = "00112233445566778899aabbccddeeff00112233";
    let credential = setup
        .builder()
        .env(setup.env.clone().with("IDENTITY_SERVER_THUMBPRINT", other))
        .build()
        .unwrap();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    assert!(
        err.to_string()
            .contains("not the certificate pinned by its SHA-1 thumbprint"),
        "{err}"
    );
    assert!(
        err.fix()
            .is_some_and(|f| f.contains("IDENTITY_SERVER_THUMBPRINT")),
        "{err}"
    );
    assert!(
        err.to_string().contains("after 1 attempt"),
        "not retried: {err}"
    );
    assert_eq!(setup.mock.request_count(), 0, "nothing reached the server");
    assert!(!format!("{err:?}").contains(SECRET));
}

/// An in-memory endpoint that answers every request with a token and records the URLs asked.
#[derive(Debug, Default)]
struct TokenTransport {
    urls: std::sync::Mutex<Vec<String>>,
}

impl HttpTransport for TokenTransport {
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
        self.urls.lock().unwrap().push(request.url().to_string());
        Box::pin(async {
            Ok(HttpResponse::new(
                200,
                [("content-type", "application/json")],
                r#"{"access_token":"fixture-mi-token-transport","expires_on":"1893542399","token_type":"Bearer"}"#,
            ))
        })
    }
}

/// Service Fabric used to build its own pinned client and ignore the builder's `http`: its
/// settings (timeouts, transport) were lost and requests went to the network.
#[tokio::test]
async fn service_fabric_uses_the_given_http_client_with_the_pin() {
    let refused = MockManagedIdentity::refused_address();
    let transport = Arc::new(TokenTransport::default());
    let credential = ManagedIdentityCredential::builder()
        .env(Env::from_pairs([
            (
                "IDENTITY_ENDPOINT",
                format!("https://{refused}/servicefabric/token"),
            ),
            ("IDENTITY_HEADER", SECRET.to_owned()),
            (
                "IDENTITY_SERVER_THUMBPRINT",
                "0123456789abcdef0123456789abcdef01234567".to_owned(),
            ),
        ]))
        .fs(Fs::memory())
        .http(
            Http::builder()
                .transport(transport.clone())
                .build()
                .unwrap(),
        )
        .cache(TokenCache::builder().build())
        .build()
        .unwrap();
    assert_eq!(credential.source(), ManagedIdentitySource::ServiceFabric);
    let token = credential.get_token(&SCOPE, None).await.unwrap();
    assert_eq!(token.token().expose(), "fixture-mi-token-transport");
    let urls = transport.urls.lock().unwrap();
    assert_eq!(urls.len(), 1, "{urls:?}");
    assert!(
        urls[0].starts_with(&format!("https://{refused}/servicefabric/token?")),
        "{urls:?}"
    );
}

#[tokio::test]
async fn debug_shows_the_source_and_no_secret() {
    for host in HOSTS {
        let setup = Setup::new(host).await;
        let credential = setup.credential();
        let printed = format!("{credential:?}");
        assert!(printed.contains("source"), "{printed}");
        assert!(
            !printed.contains(SECRET) && !printed.contains(ARC_KEY),
            "{printed}"
        );
    }
}

/// Issue 17: 200 processes (each its own credential and cache) start together against an IMDS
/// that allows its documented 20 requests a second (burst 5, then 429 with `Retry-After: 1`).
/// Serving them all needs 10 s; every one gets its token, within 1.5 × that, through the real
/// credential, HTTP client and loopback sockets. (Before, half of them failed after 5 attempts.)
#[tokio::test(start_paused = true)]
async fn a_start_up_herd_against_a_throttled_imds_is_served_in_full_within_15_s() {
    let mock = MockManagedIdentity::start().await;
    mock.rate_limit(20.0, 5, Duration::from_secs(1));
    let started = paused_now();
    let mut herd = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let credential = ManagedIdentityCredential::builder()
            .env(Env::empty())
            .fs(Fs::memory())
            .cache(TokenCache::builder().build())
            .imds_endpoint(mock.imds_endpoint())
            .build()
            .unwrap();
        herd.spawn(async move {
            credential
                .get_token(&SCOPE, None)
                .await
                .map(|_| paused_now())
        });
    }
    let mut last = started;
    while let Some(outcome) = herd.join_next().await {
        let served_at = outcome
            .unwrap()
            .expect("a call the budget could serve failed");
        last = last.max(served_at);
    }
    let all_served = last - started;
    assert!(all_served <= Duration::from_secs(15), "{all_served:?}");
    assert!(
        all_served >= Duration::from_secs(9),
        "the limit held: {all_served:?}"
    );
    assert_eq!(mock.token_request_count(), 200);
    assert!(mock.throttled_count() > 0);
}
