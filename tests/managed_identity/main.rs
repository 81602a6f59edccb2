//! ManagedIdentityCredential against the loopback MockManagedIdentity playing every hosting source.
//!
//! Time: retries and timeouts run on tokio's paused clock; nothing sleeps for real.

#[path = "../support/mod.rs"]
mod support;

// One file per topic; the set-up and the detection and protocol tests are here.
mod arc_and_service_fabric;
mod faults;
mod probe;
mod responses;
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
