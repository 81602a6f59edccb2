//! [`DefaultAzureCredential`]: the ordered chain of the environment's token sources.

mod explain;
mod selection;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::context::seam_setters;
use crate::credential::delegate_token_credential;
use crate::setters::{allowed_tenants_setter, debug_fields, option_setter, setters};
use crate::system::{Env, resolve_program};
use crate::{
    AzureCliCredential, AzureCliCredentialBuilder, AzureDeveloperCliCredential,
    AzureDeveloperCliCredentialBuilder, AzurePowerShellCredential,
    AzurePowerShellCredentialBuilder, ChainedTokenCredential, Context, EnvironmentCredential,
    EnvironmentCredentialBuilder, Error, ManagedIdentityCredential,
    ManagedIdentityCredentialBuilder, RequiredIdentity, TokenCredential, TokenFuture,
    TokenRequestOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialBuilder, env_vars,
};

pub use explain::{Explanation, MemberExplanation, MemberState};
use selection::{Member, Selection};

const NAME: &str = "DefaultAzureCredential";

/// The credential for code that runs both on a developer's machine and in Azure: it tries, in
/// order,
///
/// 1. [`EnvironmentCredential`] — a service principal from `AZURE_*` variables;
/// 2. [`WorkloadIdentityCredential`] — Kubernetes workload identity (`AZURE_FEDERATED_TOKEN_FILE`);
/// 3. [`ManagedIdentityCredential`] — the Azure host's managed identity (IMDS probed first, so
///    off Azure this costs at most the probe's 1 s — well under a millisecond where the port is
///    refused — instead of the 90 s retry budget);
/// 4. [`AzureCliCredential`] — the developer's `az login`;
/// 5. [`AzurePowerShellCredential`] — the developer's `Connect-AzAccount` (Azure PowerShell);
/// 6. [`AzureDeveloperCliCredential`] — the developer's `azd auth login`,
///
/// and keeps the first that produces a token (see [`ChainedTokenCredential`] for the rules: a
/// source that is not configured is skipped; one that is configured and fails stops the chain
/// with its error, so a production misconfiguration never falls through to a developer's
/// identity).
///
/// `AZURE_TOKEN_CREDENTIALS` narrows the chain: `dev` (the developer tools), `prod` (the
/// deployed sources), or one credential's name, e.g. `ManagedIdentityCredential` (which then
/// skips the IMDS probe). The value is trimmed and case-insensitive; an invalid one fails
/// [`new`](Self::new).
///
/// ```no_run
/// use azure_credentials::{DefaultAzureCredential, TokenCredential};
///
/// # async fn run() -> Result<(), azure_credentials::Error> {
/// let credential = DefaultAzureCredential::new()?;
/// let token = credential.get_token(&["https://vault.azure.net/.default"], None).await?;
/// tracing::info!("{}", credential.explain());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DefaultAzureCredential {
    chain: ChainedTokenCredential,
    selection: Selection,
    plan: Arc<Vec<Planned>>,
}

/// What building a member came to.
struct Planned {
    member: Member,
    state: MemberState,
    env_vars: Vec<&'static str>,
}

impl DefaultAzureCredential {
    /// The default chain, configured from the process environment. Nothing is sent and nothing runs
    /// until the first token is asked for.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `AZURE_TOKEN_CREDENTIALS` is not a valid value: see
    /// [`DefaultAzureCredentialBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use azure_credentials::{DefaultAzureCredential, TokenCredential};
    ///
    /// # async fn run() -> Result<(), azure_credentials::Error> {
    /// let credential = DefaultAzureCredential::new()?;
    /// let token = credential.get_token(&["https://vault.azure.net/.default"], None).await?;
    /// tracing::info!(selected = ?credential.selected(), expires_on = %token.expires_on(), "got a token");
    /// # Ok(()) }
    /// ```
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// Options for the default chain, validated by [`build`](DefaultAzureCredentialBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::DefaultAzureCredential;
    ///
    /// // Only what a deployed service should use.
    /// let credential = DefaultAzureCredential::builder()
    ///     .exclude_azure_cli_credential(true)
    ///     .exclude_azure_powershell_credential(true)
    ///     .exclude_azure_developer_cli_credential(true)
    ///     .build()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn builder() -> DefaultAzureCredentialBuilder {
        DefaultAzureCredentialBuilder::default()
    }

    /// The member in use, once one has produced a token.
    pub fn selected(&self) -> Option<&str> {
        self.chain.selected()
    }

    /// What the chain is made of and what it would try first, without fetching a token: each
    /// member's state (excluded, not configured, misconfigured, ready), which of its
    /// environment variables are set (names, never values), and what `AZURE_TOKEN_CREDENTIALS`
    /// resolved to. `Display` prints it for humans.
    pub fn explain(&self) -> Explanation {
        let members: Vec<MemberExplanation> = self
            .plan
            .iter()
            .map(|p| MemberExplanation {
                name: p.member.name(),
                state: p.state.clone(),
                env_vars: p.env_vars.clone(),
            })
            .collect();
        let first = members
            .iter()
            .find(|m| {
                matches!(
                    m.state,
                    MemberState::Ready(_) | MemberState::Misconfigured(_)
                )
            })
            .map(|m| m.name);
        Explanation {
            selection: self.selection.to_string(),
            members,
            first,
            selected: self
                .selected()
                .and_then(|name| Member::ALL.into_iter().find(|m| m.name() == name))
                .map(Member::name),
            identity: self.chain.identity().map(str::to_owned),
        }
    }
}

delegate_token_credential!(DefaultAzureCredential => chain);

impl fmt::Debug for DefaultAzureCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(NAME)
            .field("selection", &self.selection)
            .field(
                "members",
                &self
                    .plan
                    .iter()
                    .map(|p| (p.member.name(), p.state.label()))
                    .collect::<Vec<_>>(),
            )
            .field("selected", &self.selected())
            .finish()
    }
}

/// Options for a [`DefaultAzureCredential`].
#[derive(Clone, Default)]
pub struct DefaultAzureCredentialBuilder {
    context: Context,
    excluded: Vec<Member>,
    tenant_id: Option<String>,
    managed_identity: Option<ManagedIdentityChoice>,
    additionally_allowed_tenants: Option<Vec<String>>,
    process_timeout: Option<Duration>,
    imds_endpoint: Option<Url>,
    probe_timeout: Option<Duration>,
    required: Option<RequiredIdentity>,
}

#[derive(Clone, Debug)]
enum ManagedIdentityChoice {
    SystemAssigned,
    UserAssigned(UserAssignedId),
}

debug_fields!(DefaultAzureCredentialBuilder {
    excluded,
    tenant_id,
    managed_identity,
    additionally_allowed_tenants,
    process_timeout,
    required_identity: required,
    ..
});

impl DefaultAzureCredentialBuilder {
    fn exclude(mut self, member: Member, exclude: bool) -> Self {
        self.excluded.retain(|m| *m != member);
        if exclude {
            self.excluded.push(member);
        }
        self
    }

    /// Leaves [`EnvironmentCredential`] out.
    pub fn exclude_environment_credential(self, exclude: bool) -> Self {
        self.exclude(Member::Environment, exclude)
    }

    /// Leaves [`WorkloadIdentityCredential`] out.
    pub fn exclude_workload_identity_credential(self, exclude: bool) -> Self {
        self.exclude(Member::WorkloadIdentity, exclude)
    }

    /// Leaves [`ManagedIdentityCredential`] out.
    pub fn exclude_managed_identity_credential(self, exclude: bool) -> Self {
        self.exclude(Member::ManagedIdentity, exclude)
    }

    /// Leaves [`AzureCliCredential`] out.
    pub fn exclude_azure_cli_credential(self, exclude: bool) -> Self {
        self.exclude(Member::AzureCli, exclude)
    }

    /// Leaves [`AzurePowerShellCredential`] out.
    pub fn exclude_azure_powershell_credential(self, exclude: bool) -> Self {
        self.exclude(Member::AzurePowerShell, exclude)
    }

    /// Leaves [`AzureDeveloperCliCredential`] out.
    pub fn exclude_azure_developer_cli_credential(self, exclude: bool) -> Self {
        self.exclude(Member::AzureDeveloperCli, exclude)
    }

    option_setter!(
        /// The tenant for the members without one of their own: workload identity (instead of
        /// `AZURE_TENANT_ID`), the Azure CLI, Azure PowerShell and the Azure Developer CLI.
        tenant_id: String => tenant_id
    );

    /// The user-assigned managed identity to use (instead of `AZURE_CLIENT_ID`'s), as
    /// [`ManagedIdentityCredentialBuilder::user_assigned_id`](crate::ManagedIdentityCredentialBuilder::user_assigned_id).
    pub fn user_assigned_id(mut self, id: UserAssignedId) -> Self {
        self.managed_identity = Some(ManagedIdentityChoice::UserAssigned(id));
        self
    }

    /// Uses the system-assigned managed identity even when `AZURE_CLIENT_ID` is set (for a
    /// service principal, say), as
    /// [`ManagedIdentityCredentialBuilder::system_assigned`](crate::ManagedIdentityCredentialBuilder::system_assigned).
    pub fn system_assigned(mut self) -> Self {
        self.managed_identity = Some(ManagedIdentityChoice::SystemAssigned);
        self
    }

    allowed_tenants_setter!(
        additionally_allowed_tenants,
        "Handed to every member but managed identity (which has no tenant)."
    );

    setters! {
        /// How long `az`, `pwsh` and `azd` may run. Default: each credential's own (10 s).
        process_timeout(timeout: Duration) => Some(process_timeout);

        /// How long the IMDS probe waits, as
        /// [`ManagedIdentityCredentialBuilder::probe_timeout`](crate::ManagedIdentityCredentialBuilder::probe_timeout).
        /// Default: 1 s or `AZURE_CREDENTIALS_IMDS_PROBE_TIMEOUT_MS`.
        probe_timeout(timeout: Duration) => Some(probe_timeout);

        /// The IMDS token endpoint (a loopback mock in tests).
        imds_endpoint(endpoint: Url) => Some(imds_endpoint);

        /// Refuses tokens for any other identity (fail closed): see [`RequiredIdentity`].
        require_identity(required: RequiredIdentity) => Some(required);
    }

    // The seams are built once and handed to every member.
    seam_setters!(env, fs, http, cache, executor);

    /// Builds the chain. A member that is not configured is kept as a placeholder that reports so;
    /// a member whose configuration is half-set or invalid is kept as one that returns that error,
    /// so the chain stops there when it gets to it (and [`explain`](DefaultAzureCredential::explain)
    /// shows it at once).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `AZURE_TOKEN_CREDENTIALS` is not `dev`, `prod` or a member's name, or when it and
    /// the builder's exclusions leave no member to try.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{DefaultAzureCredential, ErrorKind};
    /// use azure_credentials::system::Env;
    ///
    /// let error = DefaultAzureCredential::builder()
    ///     .env(Env::from_pairs([("AZURE_TOKEN_CREDENTIALS", "production")]))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// assert!(error.to_string().contains("not a valid value"));
    /// ```
    pub fn build(self) -> Result<DefaultAzureCredential, Error> {
        let env = self.context.env();
        let selection = Selection::from_env(&env)?;
        let mut chain = ChainedTokenCredential::builder().name(NAME);
        let mut plan = Vec::new();
        for member in Member::ALL {
            let env_vars = explain::env_vars_set(member, &env);
            let (state, credential) = if !selection.includes(member) {
                (
                    MemberState::Excluded(format!("excluded by {selection}")),
                    None,
                )
            } else if self.excluded.contains(&member) {
                (
                    MemberState::Excluded("excluded by the builder".to_owned()),
                    None,
                )
            } else {
                match self.build_member(member, selection, &env) {
                    Ok((credential, detail)) => (MemberState::Ready(detail), Some(credential)),
                    Err(error) if error.is_unavailable() => {
                        let state = MemberState::NotConfigured(state_detail(&error));
                        (
                            state,
                            Some(Arc::new(Fails(error)) as Arc<dyn TokenCredential>),
                        )
                    }
                    Err(error) => {
                        let state = MemberState::Misconfigured(state_detail(&error));
                        (
                            state,
                            Some(Arc::new(Fails(error)) as Arc<dyn TokenCredential>),
                        )
                    }
                }
            };
            if let Some(credential) = credential {
                chain = if member.is_developer_tool() {
                    chain.developer_tool(member.name(), credential)
                } else {
                    chain.member(member.name(), credential)
                };
            }
            tracing::debug!(credential = NAME, member = member.name(), state = %state, "chain member");
            plan.push(Planned {
                member,
                state,
                env_vars,
            });
        }
        if plan
            .iter()
            .all(|p| matches!(p.state, MemberState::Excluded(_)))
        {
            return Err(Error::invalid_input(
                NAME,
                format!("no credential is left to try ({selection}, and the builder's exclusions)"),
            )
            .with_fix("exclude fewer credentials, or change AZURE_TOKEN_CREDENTIALS"));
        }
        if let Some(required) = self.required.clone() {
            chain = chain.require_identity(required);
        }
        Ok(DefaultAzureCredential {
            chain: chain.build()?,
            selection,
            plan: Arc::new(plan),
        })
    }

    /// Builds one member with the options that apply to it, and says what it will use.
    fn build_member(
        &self,
        member: Member,
        selection: Selection,
        env: &Env,
    ) -> Result<(Arc<dyn TokenCredential>, String), Error> {
        let context = self.context.clone().with_env(env.clone());
        let tenant = self.tenant_id.clone();
        let tenants = self.additionally_allowed_tenants.clone();
        let timeout = self.process_timeout;
        match member {
            Member::Environment => {
                let credential = EnvironmentCredential::builder()
                    .context(context)
                    .maybe(
                        tenants,
                        EnvironmentCredentialBuilder::additionally_allowed_tenants,
                    )
                    .build()?;
                let detail = if env.is_set(env_vars::AZURE_CLIENT_SECRET) {
                    "a client secret (AZURE_CLIENT_SECRET)"
                } else {
                    "a client certificate (AZURE_CLIENT_CERTIFICATE_PATH)"
                };
                Ok((
                    Arc::new(credential),
                    format!("service principal with {detail}"),
                ))
            }
            Member::WorkloadIdentity => {
                use WorkloadIdentityCredentialBuilder as B;
                let credential = WorkloadIdentityCredential::builder()
                    .context(context)
                    .maybe(tenant, B::tenant_id)
                    .maybe(tenants, B::additionally_allowed_tenants)
                    .build()?;
                let detail = format!(
                    "federated token file {}",
                    credential.token_file_path().display()
                );
                Ok((Arc::new(credential), detail))
            }
            Member::ManagedIdentity => {
                use ManagedIdentityCredentialBuilder as B;
                // Named alone by AZURE_TOKEN_CREDENTIALS, managed identity is what the user
                // wants: no probe, the full retry budget.
                let probe = selection != Selection::Only(Member::ManagedIdentity);
                let b = ManagedIdentityCredential::builder()
                    .context(context)
                    .probe(probe)
                    .maybe(self.probe_timeout, B::probe_timeout)
                    .maybe(self.imds_endpoint.clone(), B::imds_endpoint);
                let credential = match &self.managed_identity {
                    Some(ManagedIdentityChoice::SystemAssigned) => b.system_assigned(),
                    Some(ManagedIdentityChoice::UserAssigned(id)) => b.user_assigned_id(id.clone()),
                    None => b,
                }
                .build()?;
                let mut detail = format!("{} endpoint", credential.source());
                if let Some(id) = credential.user_assigned_id() {
                    detail.push_str(&format!(", user-assigned identity {id}"));
                }
                if credential.probes() {
                    detail.push_str(", probed first");
                }
                Ok((Arc::new(credential), detail))
            }
            Member::AzureCli => {
                use AzureCliCredentialBuilder as B;
                let credential = AzureCliCredential::builder()
                    .context(context)
                    .maybe(timeout, B::process_timeout)
                    .maybe(tenant, B::tenant_id)
                    .maybe(tenants, B::additionally_allowed_tenants)
                    .build()?;
                Ok((Arc::new(credential), program_detail(env, "az")))
            }
            Member::AzurePowerShell => {
                use AzurePowerShellCredentialBuilder as B;
                let credential = AzurePowerShellCredential::builder()
                    .context(context)
                    .maybe(timeout, B::process_timeout)
                    .maybe(tenant, B::tenant_id)
                    .maybe(tenants, B::additionally_allowed_tenants)
                    .build()?;
                // `pwsh`, or on Windows `powershell.exe` when there is no `pwsh`.
                let detail = match crate::developer_tools::azure_powershell::TOOL.resolve(env) {
                    Ok(path) => format!("PowerShell at {}", path.display()),
                    Err(_) => program_detail(env, "pwsh"),
                };
                Ok((Arc::new(credential), detail))
            }
            Member::AzureDeveloperCli => {
                use AzureDeveloperCliCredentialBuilder as B;
                let credential = AzureDeveloperCliCredential::builder()
                    .context(context)
                    .maybe(timeout, B::process_timeout)
                    .maybe(tenant, B::tenant_id)
                    .maybe(tenants, B::additionally_allowed_tenants)
                    .build()?;
                Ok((Arc::new(credential), program_detail(env, "azd")))
            }
        }
    }
}

/// Applies a builder's option when the default builder has a value for it.
trait Maybe: Sized {
    fn maybe<T>(self, value: Option<T>, set: impl FnOnce(Self, T) -> Self) -> Self {
        match value {
            Some(value) => set(self, value),
            None => self,
        }
    }
}

impl<B> Maybe for B {}

/// A build error for `explain()`: the member's name and state are printed before it.
fn state_detail(error: &Error) -> String {
    let message = error.message();
    let message = message.strip_prefix("not configured: ").unwrap_or(message);
    match error.fix() {
        Some(fix) => format!("{message}; {fix}"),
        None => message.to_owned(),
    }
}

/// Where a developer tool was found on `PATH`, if it was.
fn program_detail(env: &Env, program: &str) -> String {
    match resolve_program(env, program) {
        Some(path) => format!("{program} at {}", path.display()),
        None => format!("{program} is not on PATH (it will report that it is unavailable)"),
    }
}

/// A member that could not be built: it returns the build error every time. Unavailable
/// (not configured) lets the chain move on; anything else stops it there.
#[derive(Debug)]
struct Fails(Error);

impl TokenCredential for Fails {
    fn get_token<'a>(
        &'a self,
        _scopes: &'a [&'a str],
        _options: Option<&'a TokenRequestOptions>,
    ) -> TokenFuture<'a> {
        TokenFuture::ready(Err(self.0.clone()))
    }
}
