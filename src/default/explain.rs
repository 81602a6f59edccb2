//! [`Explanation`]: what the default chain is made of, without fetching a token.

use std::fmt;

use super::NAME;
use super::selection::Member;
use crate::system::Env;

/// What [`DefaultAzureCredential::explain`](super::DefaultAzureCredential::explain) reports.
/// `Display` prints it for humans, one member per line.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Explanation {
    /// What `AZURE_TOKEN_CREDENTIALS` resolved to.
    pub selection: String,
    /// Every member, in chain order.
    pub members: Vec<MemberExplanation>,
    /// The member that would be tried first, if any.
    pub first: Option<&'static str>,
    /// The member in use, once one has produced a token.
    pub selected: Option<&'static str>,
    /// Whom the selected member's first token was for, as the token said (user name or object
    /// id, tenant, client id), e.g. `user ada@contoso.com, tenant 72f9…`; never the token.
    pub identity: Option<String>,
}

/// One member of the default chain, as [`Explanation`] reports it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MemberExplanation {
    /// The credential's name, e.g. `"ManagedIdentityCredential"`.
    pub name: &'static str,
    /// Whether and how it takes part.
    pub state: MemberState,
    /// Which of the environment variables it reads are set (names only, never values).
    pub env_vars: Vec<&'static str>,
}

/// How a member of the default chain stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberState {
    /// Left out by `AZURE_TOKEN_CREDENTIALS` or the builder.
    Excluded(String),
    /// Not configured here: the chain moves past it.
    NotConfigured(String),
    /// Configured, but half-set or invalid: the chain stops there with this error.
    Misconfigured(String),
    /// Ready to be tried, and what it will use.
    Ready(String),
}

impl MemberState {
    pub(super) fn label(&self) -> &'static str {
        match self {
            MemberState::Excluded(_) => "excluded",
            MemberState::NotConfigured(_) => "not configured",
            MemberState::Misconfigured(_) => "misconfigured",
            MemberState::Ready(_) => "ready",
        }
    }

    fn detail(&self) -> &str {
        match self {
            MemberState::Excluded(d)
            | MemberState::NotConfigured(d)
            | MemberState::Misconfigured(d)
            | MemberState::Ready(d) => d,
        }
    }
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.label(), self.detail())
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{NAME}")?;
        writeln!(f, "  {}", self.selection)?;
        for (i, member) in self.members.iter().enumerate() {
            write!(f, "  {}. {} — {}", i + 1, member.name, member.state)?;
            if !member.env_vars.is_empty() {
                write!(f, " (set: {})", member.env_vars.join(", "))?;
            }
            writeln!(f)?;
        }
        match self.first {
            Some(first) => writeln!(f, "  first to try: {first}")?,
            None => writeln!(f, "  nothing to try")?,
        }
        match (self.selected, &self.identity) {
            (Some(selected), Some(identity)) => write!(f, "  selected: {selected} ({identity})"),
            (Some(selected), None) => write!(f, "  selected: {selected}"),
            (None, _) => write!(f, "  selected: none yet"),
        }
    }
}

/// The variables each member reads.
fn env_vars(member: Member) -> &'static [&'static str] {
    use crate::env_vars::*;
    match member {
        Member::Environment => &[
            AZURE_TENANT_ID,
            AZURE_CLIENT_ID,
            AZURE_CLIENT_SECRET,
            AZURE_CLIENT_CERTIFICATE_PATH,
            AZURE_CLIENT_CERTIFICATE_PASSWORD,
            AZURE_CLIENT_SEND_CERTIFICATE_CHAIN,
            AZURE_AUTHORITY_HOST,
            AZURE_ADDITIONALLY_ALLOWED_TENANTS,
            AZURE_USERNAME,
            AZURE_PASSWORD,
        ],
        Member::WorkloadIdentity => &[
            AZURE_FEDERATED_TOKEN_FILE,
            AZURE_TENANT_ID,
            AZURE_CLIENT_ID,
            AZURE_AUTHORITY_HOST,
        ],
        Member::ManagedIdentity => &[
            IDENTITY_ENDPOINT,
            IDENTITY_HEADER,
            IDENTITY_SERVER_THUMBPRINT,
            MSI_ENDPOINT,
            MSI_SECRET,
            IMDS_ENDPOINT,
            DEFAULT_IDENTITY_CLIENT_ID,
            AZURE_POD_IDENTITY_AUTHORITY_HOST,
            AZURE_CLIENT_ID,
            AZURE_CREDENTIALS_IMDS_PROBE_TIMEOUT_MS,
        ],
        Member::AzureCli => &[AZURE_CONFIG_DIR, AZURE_CREDENTIALS_CLI_FAST_PATH],
        Member::AzurePowerShell => &[],
        Member::AzureDeveloperCli => &[AZD_CONFIG_DIR],
    }
}

/// The names of `member`'s variables that are set (non-empty) in `env`.
pub(super) fn env_vars_set(member: Member, env: &Env) -> Vec<&'static str> {
    env_vars(member)
        .iter()
        .copied()
        .filter(|name| env.is_set(name))
        .collect()
}
