//! DefaultAzureCredential end to end: the real members against the mocks, one environment at a
//! time, plus AZURE_TOKEN_CREDENTIALS, explain() and the aggregate error.

mod support;
use support::fixtures::{self, tool_output};
use support::jwt::jwt;
use support::tools::decode_encoded_command;
use support::wait::paused_now;

use std::sync::Arc;

use azure_credentials::system::{Env, Fs};
use azure_credentials::testing::{MockEntra, MockManagedIdentity, MockReply, ScriptedExecutor};
use azure_credentials::{
    AccessToken, Context, DefaultAzureCredential, DefaultAzureCredentialBuilder, ErrorKind,
    MemberState, TokenCache, TokenCredential, TokenRequestOptions,
};

const SCOPE: [&str; 1] = ["https://vault.azure.net/.default"];
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "00000000-0000-0000-0000-000000000001";
const TOKEN_FILE: &str = "/var/run/secrets/azure/tokens/azure-identity-token";

/// A machine: mocks for Entra and IMDS, a scripted executor for az/azd, an in-memory file
/// system, and the environment variables given.
struct Machine {
    entra: MockEntra,
    imds: MockManagedIdentity,
    executor: ScriptedExecutor,
    fs: Fs,
    env: Env,
    imds_refused: bool,
}

impl Machine {
    async fn new() -> Machine {
        Machine {
            entra: MockEntra::start().await,
            imds: MockManagedIdentity::start().await,
            executor: ScriptedExecutor::new(),
            fs: Fs::memory(),
            // No az or azd on PATH unless a test puts them there; HOME for the CLI's config dir.
            env: Env::from_pairs([("PATH", "/nonexistent"), ("HOME", "/home/dev")]),
            imds_refused: true,
        }
    }

    fn with_env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env = self.env.with(name, value);
        self
    }

    /// The application's tenant and client ids in the environment.
    fn with_app_ids(self) -> Self {
        self.with_env("AZURE_TENANT_ID", TENANT)
            .with_env("AZURE_CLIENT_ID", CLIENT)
    }

    /// `AZURE_TOKEN_CREDENTIALS` set to `value`.
    fn choosing(self, value: &str) -> Self {
        self.with_env("AZURE_TOKEN_CREDENTIALS", value)
    }

    /// The next run of a developer tool (`azure_cli` or `azure_developer_cli`) prints what it
    /// printed in the recorded `case`.
    fn replays(&self, tool: &str, case: &str) {
        self.executor.push_output(tool_output(tool, case));
    }

    fn with_tools_on_path(self) -> Self {
        let path = format!(
            "{}:{}:{}",
            fixtures::path("azure_cli/bin").display(),
            fixtures::path("azure_powershell/bin").display(),
            fixtures::path("azure_developer_cli/bin").display()
        );
        self.with_env("PATH", path)
    }

    fn with_imds(mut self) -> Self {
        self.imds_refused = false;
        self
    }

    /// The chain on this machine, with IMDS at the mock (or refused, see [`Machine::new`]).
    fn builder(&self) -> DefaultAzureCredentialBuilder {
        let imds = if self.imds_refused {
            support::imds::refused_endpoint()
        } else {
            self.imds.imds_endpoint()
        };
        self.builder_with_imds_as_configured().imds_endpoint(imds)
    }

    /// The chain on this machine, with IMDS wherever the environment puts it.
    fn builder_with_imds_as_configured(&self) -> DefaultAzureCredentialBuilder {
        DefaultAzureCredential::builder()
            .env(
                self.env
                    .clone()
                    .with("AZURE_AUTHORITY_HOST", self.entra.authority_host()),
            )
            .fs(self.fs.clone())
            .executor(Arc::new(self.executor.clone()))
            .cache(TokenCache::builder().build())
    }

    fn credential(&self) -> DefaultAzureCredential {
        self.builder().build().unwrap()
    }

    /// Gets a token for `scope` from this machine's chain; checks that `member` was selected
    /// and issued it.
    async fn token_from(&self, member: &str, scope: &[&str]) -> AccessToken {
        let credential = self.credential();
        let token = credential.get_token(scope, None).await.unwrap();
        assert_eq!(credential.selected(), Some(member));
        assert_eq!(token.source(), member);
        token
    }
}

#[tokio::test]
async fn only_a_client_secret_in_the_environment_uses_entra() {
    let m = Machine::new()
        .await
        .with_app_ids()
        .with_env("AZURE_CLIENT_SECRET", "env-client-secret-value");
    m.token_from("EnvironmentCredential", &SCOPE).await;
    assert_eq!(m.entra.request_count(), 1);
    assert_eq!(
        m.entra.requests()[0].form("client_secret"),
        Some("env-client-secret-value")
    );
    assert_eq!(m.imds.request_count(), 0);
}

#[tokio::test]
async fn only_a_workload_identity_token_file_uses_entra_with_the_assertion() {
    let m = Machine::new()
        .await
        .with_app_ids()
        .with_env("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE);
    m.fs.write(TOKEN_FILE, "federated-token-value");
    m.token_from("WorkloadIdentityCredential", &SCOPE).await;
    assert_eq!(
        m.entra.requests()[0].form("client_assertion"),
        Some("federated-token-value")
    );
}

#[tokio::test]
async fn only_imds_uses_managed_identity_after_one_probe() {
    let m = Machine::new().await.with_imds();
    let token = m.token_from("ManagedIdentityCredential", &SCOPE).await;
    assert!(token.token().expose().starts_with("mock-imds-token-"));
    let requests = m.imds.requests();
    assert_eq!(requests.len(), 2, "the probe, then the token request");
    assert_eq!(requests[0].header("metadata"), None);
    assert_eq!(m.executor.run_count(), 0, "az is never reached");
}

#[tokio::test]
async fn only_a_logged_in_az_uses_the_azure_cli() {
    let m = Machine::new().await.with_tools_on_path();
    m.replays("azure_cli", "success");
    let management = ["https://management.azure.com/.default"];
    m.token_from("AzureCliCredential", &management).await;
    assert_eq!(m.executor.run_count(), 1);
}

#[tokio::test]
async fn a_failing_az_moves_on_to_azure_powershell() {
    let m = Machine::new().await.with_tools_on_path();
    m.replays("azure_cli", "aadsts_refresh_rejected");
    m.replays("azure_powershell", "success");
    m.token_from("AzurePowerShellCredential", &SCOPE).await;
    assert_eq!(programs_run(&m.executor), ["az", "pwsh"]);
}

#[tokio::test]
async fn az_then_azure_powershell_then_azd() {
    let m = Machine::new().await.with_tools_on_path();
    m.replays("azure_cli", "aadsts_refresh_rejected");
    m.replays("azure_powershell", "not_logged_in");
    m.replays("azure_developer_cli", "success");
    m.token_from("AzureDeveloperCliCredential", &SCOPE).await;
    assert_eq!(programs_run(&m.executor), ["az", "pwsh", "azd"]);
}

/// The file names of the programs the executor ran, in order.
fn programs_run(executor: &ScriptedExecutor) -> Vec<String> {
    executor
        .commands()
        .iter()
        .map(|c| {
            std::path::Path::new(c.program())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// The seams given once, as a `Context`, reach the members: the workload identity file is read
/// from its file system with its variables, and az and azd run through its executor.
#[tokio::test]
async fn one_context_reaches_every_member() {
    let m = Machine::new().await.with_tools_on_path();
    m.fs.write(TOKEN_FILE, "federated-token-value");
    let context = |env: Env| {
        Context::default()
            .with_env(env.with("AZURE_AUTHORITY_HOST", m.entra.authority_host()))
            .with_fs(m.fs.clone())
            .with_executor(Arc::new(m.executor.clone()))
            .with_cache(TokenCache::builder().build())
    };
    let refused: url::Url = format!(
        "http://{}/metadata/identity/oauth2/token",
        MockManagedIdentity::refused_address()
    )
    .parse()
    .unwrap();
    let workload = m
        .env
        .clone()
        .with("AZURE_TENANT_ID", TENANT)
        .with("AZURE_CLIENT_ID", CLIENT)
        .with("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE);
    let credential = DefaultAzureCredential::builder()
        .context(context(workload))
        .imds_endpoint(refused.clone())
        .build()
        .unwrap();
    credential.get_token(&SCOPE, None).await.unwrap();
    assert_eq!(credential.selected(), Some("WorkloadIdentityCredential"));
    // explain() says whom the selected member's token is for.
    let explanation = credential.explain();
    let identity = format!("tenant {TENANT}, client {CLIENT}");
    assert_eq!(explanation.identity.as_deref(), Some(identity.as_str()));
    assert!(
        explanation.to_string().contains(&format!(
            "selected: WorkloadIdentityCredential ({identity})"
        )),
        "{explanation}"
    );
    assert_eq!(
        m.entra.requests()[0].form("client_assertion"),
        Some("federated-token-value")
    );

    m.replays("azure_cli", "aadsts_refresh_rejected");
    m.replays("azure_powershell", "not_logged_in");
    m.replays("azure_developer_cli", "success");
    let credential = DefaultAzureCredential::builder()
        .context(context(m.env.clone()))
        .imds_endpoint(refused)
        .build()
        .unwrap();
    credential.get_token(&SCOPE, None).await.unwrap();
    assert_eq!(credential.selected(), Some("AzureDeveloperCliCredential"));
    assert_eq!(programs_run(&m.executor), ["az", "pwsh", "azd"]);
}

#[tokio::test]
async fn nothing_at_all_is_one_error_naming_every_member() {
    let m = Machine::new().await;
    let credential = m.credential();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let text = err.to_string();
    for member in [
        "EnvironmentCredential",
        "WorkloadIdentityCredential",
        "ManagedIdentityCredential",
        "AzureCliCredential",
        "AzurePowerShellCredential",
        "AzureDeveloperCliCredential",
    ] {
        assert!(text.contains(member), "{member} missing from:\n{text}");
    }
    assert_eq!(err.attempts().len(), 6);
    assert!(
        text.starts_with("DefaultAzureCredential: none of the 6 credentials produced a token:"),
        "{text}"
    );
    assert_eq!(credential.selected(), None);
}

#[tokio::test]
async fn a_half_configured_service_principal_stops_the_chain_before_managed_identity() {
    // The secret is set but not the tenant: the user meant this source; falling through to the
    // host's managed identity would be another identity.
    let m = Machine::new()
        .await
        .with_imds()
        .with_env("AZURE_CLIENT_ID", CLIENT)
        .with_env("AZURE_CLIENT_SECRET", "env-client-secret-value");
    let credential = m.credential();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert_eq!(err.credential(), "EnvironmentCredential");
    assert!(err.to_string().contains("AZURE_TENANT_ID"), "{err}");
    assert_eq!(m.imds.request_count(), 0);
    assert!(matches!(
        credential.explain().members[0].state,
        MemberState::Misconfigured(_)
    ));
}

#[tokio::test]
async fn a_managed_identity_that_exists_but_refuses_stops_the_chain() {
    // A user-assigned identity that is not assigned: a real refusal, not "no identity here".
    let m = Machine::new().await.with_imds().with_tools_on_path();
    m.imds.push(MockReply::error(
        400,
        "invalid_request",
        "Identity not found",
    ));
    m.replays("azure_cli", "success");
    let credential = m
        .builder()
        .user_assigned_id(azure_credentials::UserAssignedId::ClientId(CLIENT.into()))
        .build()
        .unwrap();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert!(err.is_authentication(), "{err}");
    assert_eq!(
        m.executor.run_count(),
        0,
        "the developer's az login is not used instead"
    );
}

#[tokio::test(start_paused = true)]
async fn a_truncated_imds_answer_stops_the_chain_but_a_proxy_page_moves_it_on() {
    // IMDS is there (the probe is answered) but its answer is cut short: it failed.
    let m = Machine::new().await.with_imds().with_tools_on_path();
    m.imds.set_default(MockReply::json(
        200,
        r#"{"access_token":"mock-imds-token-cut"#,
    ));
    m.replays("azure_cli", "success");
    let err = m.credential().get_token(&SCOPE, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ServiceFailure, "{err}");
    assert_eq!(
        m.executor.run_count(),
        0,
        "the developer's az login is not used instead"
    );

    // A proxy's page where IMDS should be: no IMDS here, az is used.
    let m = Machine::new().await.with_imds().with_tools_on_path();
    m.imds.set_default(MockReply::html(200));
    m.replays("azure_cli", "success");
    let token = m.credential().get_token(&SCOPE, None).await.unwrap();
    assert_eq!(token.source(), "AzureCliCredential");
}

#[tokio::test]
async fn azure_token_credentials_picks_the_members() {
    let cases: &[(&str, &[&str])] = &[
        (
            "",
            &[
                "EnvironmentCredential",
                "WorkloadIdentityCredential",
                "ManagedIdentityCredential",
                "AzureCliCredential",
                "AzurePowerShellCredential",
                "AzureDeveloperCliCredential",
            ],
        ),
        (
            "  ",
            &[
                "EnvironmentCredential",
                "WorkloadIdentityCredential",
                "ManagedIdentityCredential",
                "AzureCliCredential",
                "AzurePowerShellCredential",
                "AzureDeveloperCliCredential",
            ],
        ),
        (
            "dev",
            &[
                "AzureCliCredential",
                "AzurePowerShellCredential",
                "AzureDeveloperCliCredential",
            ],
        ),
        (
            " DEV ",
            &[
                "AzureCliCredential",
                "AzurePowerShellCredential",
                "AzureDeveloperCliCredential",
            ],
        ),
        (
            "prod",
            &[
                "EnvironmentCredential",
                "WorkloadIdentityCredential",
                "ManagedIdentityCredential",
            ],
        ),
        ("managedidentitycredential", &["ManagedIdentityCredential"]),
        ("AzureCliCredential", &["AzureCliCredential"]),
        ("AzurePowerShellCredential", &["AzurePowerShellCredential"]),
        ("azurepowershellcredential", &["AzurePowerShellCredential"]),
        (
            "AZUREDEVELOPERCLICREDENTIAL",
            &["AzureDeveloperCliCredential"],
        ),
        ("EnvironmentCredential", &["EnvironmentCredential"]),
        (
            "workloadIdentityCredential",
            &["WorkloadIdentityCredential"],
        ),
    ];
    for (value, expected) in cases {
        let m = Machine::new().await.choosing(value);
        let explanation = m.credential().explain();
        let included: Vec<&str> = explanation
            .members
            .iter()
            .filter(|m| !matches!(m.state, MemberState::Excluded(_)))
            .map(|m| m.name)
            .collect();
        assert_eq!(&included, expected, "AZURE_TOKEN_CREDENTIALS={value:?}");
    }
    let m = Machine::new().await.choosing("laptop");
    let err = m.builder().build().unwrap_err();
    assert!(err.is_invalid_input());
    assert!(
        err.to_string().contains("dev, prod, EnvironmentCredential"),
        "{err}"
    );
}

#[tokio::test]
async fn naming_azure_powershell_alone_runs_only_pwsh() {
    let m = Machine::new()
        .await
        .with_imds()
        .with_tools_on_path()
        .choosing("AzurePowerShellCredential");
    m.replays("azure_powershell", "not_logged_in");
    let credential = m.credential();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("Connect-AzAccount"), "{err}");
    assert_eq!(err.attempts().len(), 1);
    assert_eq!(programs_run(&m.executor), ["pwsh"]);
    assert_eq!(m.imds.request_count(), 0);
}

#[tokio::test]
async fn naming_managed_identity_alone_skips_the_probe() {
    let m = Machine::new()
        .await
        .with_imds()
        .choosing("ManagedIdentityCredential");
    m.credential().get_token(&SCOPE, None).await.unwrap();
    let requests = m.imds.requests();
    assert_eq!(requests.len(), 1, "no probe");
    assert_eq!(requests[0].header("metadata"), Some("true"));
}

#[tokio::test]
async fn prod_never_reaches_a_developer_login() {
    let m = Machine::new().await.with_tools_on_path().choosing("prod");
    m.replays("azure_cli", "success");
    let err = m.credential().get_token(&SCOPE, None).await.unwrap_err();
    assert!(err.is_unavailable());
    assert_eq!(m.executor.run_count(), 0);
    assert_eq!(err.attempts().len(), 3);
}

#[tokio::test]
async fn the_builder_exclusions_and_everything_excluded() {
    let m = Machine::new().await.with_imds();
    let credential = m
        .builder()
        .exclude_environment_credential(true)
        .exclude_workload_identity_credential(true)
        .exclude_managed_identity_credential(true)
        .build()
        .unwrap();
    let explanation = credential.explain();
    assert_eq!(explanation.first, Some("AzureCliCredential"));
    let err = m
        .builder()
        .env(Env::empty().with("AZURE_TOKEN_CREDENTIALS", "dev"))
        .exclude_azure_cli_credential(true)
        .exclude_azure_powershell_credential(true)
        .exclude_azure_developer_cli_credential(true)
        .build()
        .unwrap_err();
    assert!(err.is_invalid_input());
    assert!(err.to_string().contains("no credential is left"), "{err}");
}

#[tokio::test]
async fn explain_reports_each_member_without_fetching_or_printing_values() {
    let m = Machine::new()
        .await
        .with_imds()
        .with_tools_on_path()
        .with_env("AZURE_CLIENT_ID", CLIENT)
        .with_env("AZURE_CLIENT_SECRET", "explain-secret-value")
        .with_env("AZURE_TENANT_ID", TENANT);
    let credential = m.builder().system_assigned().build().unwrap();
    let explanation = credential.explain();
    let text = explanation.to_string();
    assert!(
        text.contains("AZURE_TOKEN_CREDENTIALS is not set"),
        "{text}"
    );
    assert!(
        text.contains("1. EnvironmentCredential — ready: service principal with a client secret"),
        "{text}"
    );
    assert!(
        text.contains("set: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET"),
        "{text}"
    );
    assert!(
        text.contains("2. WorkloadIdentityCredential — not configured"),
        "{text}"
    );
    assert!(
        text.contains("3. ManagedIdentityCredential — ready: IMDS endpoint, probed first"),
        "{text}"
    );
    assert!(
        text.contains("4. AzureCliCredential — ready: az at "),
        "{text}"
    );
    assert!(
        text.contains("5. AzurePowerShellCredential — ready: PowerShell at "),
        "{text}"
    );
    assert!(
        text.contains("6. AzureDeveloperCliCredential — ready: azd at "),
        "{text}"
    );
    assert!(
        text.contains("first to try: EnvironmentCredential"),
        "{text}"
    );
    assert!(text.contains("selected: none yet"), "{text}");
    assert!(!text.contains("explain-secret-value"));
    assert!(!text.contains(CLIENT), "values are never shown: {text}");
    assert_eq!(
        m.entra.request_count() + m.imds.request_count() + m.executor.run_count(),
        0
    );

    credential.get_token(&SCOPE, None).await.unwrap();
    assert!(
        credential
            .explain()
            .to_string()
            .contains("selected: EnvironmentCredential")
    );
    let debug = format!("{credential:?}");
    assert!(!debug.contains("explain-secret-value"), "{debug}");
}

#[tokio::test]
async fn a_claims_challenge_reaches_the_selected_member() {
    let m = Machine::new().await.with_imds();
    let credential = m.credential();
    credential.get_token(&SCOPE, None).await.unwrap();
    let options = azure_credentials::TokenRequestOptions::default().with_claims("{}");
    let before = m.imds.request_count();
    credential.get_token(&SCOPE, Some(&options)).await.unwrap();
    assert_eq!(
        m.imds.request_count(),
        before + 1,
        "claims bypass the cache"
    );
    let err_kind = credential.get_token(&[], None).await.unwrap_err().kind();
    assert_eq!(err_kind, ErrorKind::InvalidInput);
}

#[tokio::test]
async fn the_identity_lock_knows_a_managed_identity_tokens_tenant_from_the_token() {
    let token = jwt(
        &format!(r#"{{"tid":"{TENANT}","appid":"{CLIENT}"}}"#),
        "sig",
    );
    let m = Machine::new().await.with_imds();
    m.imds.push(MockReply::token(&token));
    let credential = m
        .builder()
        .require_identity(azure_credentials::RequiredIdentity::default().with_tenant_id(TENANT))
        .build()
        .unwrap();
    let got = credential.get_token(&SCOPE, None).await.unwrap();
    assert_eq!(got.tenant_id(), Some(TENANT));

    let m = Machine::new().await.with_imds();
    m.imds.push(MockReply::token(&token));
    let credential = m
        .builder()
        .require_identity(
            azure_credentials::RequiredIdentity::default().with_tenant_id("another-tenant"),
        )
        .build()
        .unwrap();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert!(
        err.to_string().contains("is required; refusing it"),
        "{err}"
    );
    assert_eq!(
        credential.selected(),
        None,
        "a refused identity is not selected"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_pod_identity_endpoint_moves_on_to_az_at_once() {
    // AZURE_POD_IDENTITY_AUTHORITY_HOST turns the probe off; a refused connection must still not
    // cost the retry budget before the chain reaches az.
    let m = Machine::new().await.with_tools_on_path().with_env(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        format!("http://{}", MockManagedIdentity::refused_address()),
    );
    m.replays("azure_cli", "success");
    let credential = m.builder_with_imds_as_configured().build().unwrap();
    let started = paused_now();
    let token = credential
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .unwrap();
    assert_eq!(token.source(), "AzureCliCredential");
    let waited = started.elapsed();
    assert!(waited < std::time::Duration::from_millis(100), "{waited:?}");
}

#[tokio::test]
async fn disabled_multitenant_auth_keeps_a_requested_tenant_away_from_the_tools() {
    let m = Machine::new()
        .await
        .with_tools_on_path()
        .with_env("AZURE_IDENTITY_DISABLE_MULTITENANTAUTH", "true");
    // az and PowerShell are not logged in (the chain moves on), azd answers.
    m.replays("azure_cli", "not_logged_in");
    m.replays("azure_powershell", "not_logged_in");
    m.replays("azure_developer_cli", "success");
    let other =
        TokenRequestOptions::default().with_tenant_id("0b1c3e5a-8d2f-4c6b-9a7e-1f2d3c4b5a69");
    let token = m
        .credential()
        .get_token(&SCOPE, Some(&other))
        .await
        .unwrap();
    assert_eq!(token.source(), "AzureDeveloperCliCredential");
    let commands = m.executor.commands();
    assert_eq!(commands.len(), 3);
    for command in commands {
        let args: Vec<_> = command
            .get_args()
            .iter()
            .map(|a| a.to_str().unwrap().to_owned())
            .collect();
        assert!(!args.iter().any(|a| a.starts_with("--tenant")), "{args:?}");
        if let Some(encoded) = args.iter().skip_while(|a| *a != "-EncodedCommand").nth(1) {
            let script = decode_encoded_command(encoded);
            assert!(script.contains("$tenant = ''"), "{script}");
            assert!(!script.contains("0b1c3e5a"), "{script}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_page_answering_the_imds_probe_moves_on_at_once_without_token_requests() {
    // Something other than IMDS (a transparent proxy, a captive portal) answers every request
    // for IMDS's address, the probe included: the probe's answer already says it is not IMDS.
    for reply in [
        MockReply::html(502),
        MockReply::html(404),
        MockReply::html(200),
        MockReply::redirect(302, "https://portal.example/login"),
        MockReply::raw(503, Some("text/plain"), "Service Unavailable"),
    ] {
        let m = Machine::new().await.with_imds().with_tools_on_path();
        m.imds.require_metadata_header(false);
        m.imds.set_default(reply.clone());
        m.replays("azure_cli", "success");
        let started = paused_now();
        let token = m.credential().get_token(&SCOPE, None).await.unwrap();
        assert_eq!(token.source(), "AzureCliCredential", "{reply:?}");
        assert_eq!(m.imds.request_count(), 1, "the probe only: {reply:?}");
        assert_eq!(started.elapsed(), std::time::Duration::ZERO, "{reply:?}");
    }
}

/// `AZURE_POD_IDENTITY_AUTHORITY_HOST` names the endpoint, so it is not probed, and `explain()`
/// must not say it is (it did).
#[test]
fn explain_does_not_claim_a_probe_of_an_endpoint_the_environment_named() {
    let credential = DefaultAzureCredential::builder()
        .env(Env::empty().with("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9"))
        .fs(Fs::memory())
        .exclude_azure_cli_credential(true)
        .exclude_azure_powershell_credential(true)
        .exclude_azure_developer_cli_credential(true)
        .build()
        .unwrap();
    let text = credential.explain().to_string();
    assert!(
        text.contains("ManagedIdentityCredential — ready: IMDS endpoint"),
        "{text}"
    );
    assert!(!text.contains("probed first"), "{text}");
}
