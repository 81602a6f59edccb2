//! `AZURE_TOKEN_CREDENTIALS`: which members of the default chain take part.

use std::fmt;

use super::NAME;
use crate::Error;
use crate::env_vars::AZURE_TOKEN_CREDENTIALS;
use crate::system::Env;

/// A member of the default chain, in chain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Member {
    Environment,
    WorkloadIdentity,
    ManagedIdentity,
    AzureCli,
    AzurePowerShell,
    AzureDeveloperCli,
}

impl Member {
    pub(super) const ALL: [Member; 6] = [
        Member::Environment,
        Member::WorkloadIdentity,
        Member::ManagedIdentity,
        Member::AzureCli,
        Member::AzurePowerShell,
        Member::AzureDeveloperCli,
    ];

    /// The credential's type name, which is also its `AZURE_TOKEN_CREDENTIALS` value.
    pub(super) fn name(self) -> &'static str {
        match self {
            Member::Environment => crate::entra::environment::NAME,
            Member::WorkloadIdentity => crate::entra::workload_identity::NAME,
            Member::ManagedIdentity => crate::managed_identity::NAME,
            Member::AzureCli => crate::developer_tools::azure_cli::NAME,
            Member::AzurePowerShell => crate::developer_tools::azure_powershell::NAME,
            Member::AzureDeveloperCli => crate::developer_tools::azure_developer_cli::NAME,
        }
    }

    /// Developer tools: the chain moves on past any failure of theirs.
    pub(super) fn is_developer_tool(self) -> bool {
        matches!(
            self,
            Member::AzureCli | Member::AzurePowerShell | Member::AzureDeveloperCli
        )
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What `AZURE_TOKEN_CREDENTIALS` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Selection {
    /// Unset or empty: every member.
    All,
    /// `dev`: the developer tools.
    Dev,
    /// `prod`: the deployed sources.
    Prod,
    /// One credential's name: only it (a managed identity alone is not probed).
    Only(Member),
}

impl Selection {
    /// Reads the variable: trimmed, case-insensitive, empty meaning unset.
    pub(super) fn from_env(env: &Env) -> Result<Selection, Error> {
        let Some(raw) = env.var(AZURE_TOKEN_CREDENTIALS) else {
            return Ok(Selection::All);
        };
        let value = raw.trim().to_ascii_lowercase();
        match value.as_str() {
            "" => Ok(Selection::All),
            "dev" => Ok(Selection::Dev),
            "prod" => Ok(Selection::Prod),
            _ => Member::ALL
                .into_iter()
                .find(|m| m.name().eq_ignore_ascii_case(&value))
                .map(Selection::Only)
                .ok_or_else(|| {
                    let valid: Vec<&str> = ["dev", "prod"]
                        .into_iter()
                        .chain(Member::ALL.iter().map(|m| m.name()))
                        .collect();
                    let shown: String = raw.chars().take(60).collect();
                    Error::invalid_input(
                        NAME,
                        format!(
                            "{AZURE_TOKEN_CREDENTIALS} is {shown:?}, which is not a valid value"
                        ),
                    )
                    .with_fix(format!(
                        "set it to one of {} (case does not matter), or unset it",
                        valid.join(", ")
                    ))
                }),
        }
    }

    /// Whether `member` takes part.
    pub(super) fn includes(self, member: Member) -> bool {
        match self {
            Selection::All => true,
            Selection::Dev => member.is_developer_tool(),
            Selection::Prod => !member.is_developer_tool(),
            Selection::Only(only) => only == member,
        }
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selection::All => write!(
                f,
                "{AZURE_TOKEN_CREDENTIALS} is not set: every credential takes part"
            ),
            Selection::Dev => write!(
                f,
                "{AZURE_TOKEN_CREDENTIALS}=dev: developer tools only (Azure CLI, Azure PowerShell, Azure Developer CLI)"
            ),
            Selection::Prod => write!(
                f,
                "{AZURE_TOKEN_CREDENTIALS}=prod: deployed sources only (environment, workload identity, managed identity)"
            ),
            Selection::Only(member) => {
                write!(f, "{AZURE_TOKEN_CREDENTIALS}={member}: only {member}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(value: &str) -> Result<Selection, Error> {
        Selection::from_env(&Env::empty().with(AZURE_TOKEN_CREDENTIALS, value))
    }

    #[test]
    fn values_are_trimmed_and_case_insensitive() {
        assert_eq!(Selection::from_env(&Env::empty()).unwrap(), Selection::All);
        assert_eq!(select("").unwrap(), Selection::All);
        assert_eq!(select("   ").unwrap(), Selection::All);
        assert_eq!(select("dev").unwrap(), Selection::Dev);
        assert_eq!(select(" DEV\t").unwrap(), Selection::Dev);
        assert_eq!(select("Prod").unwrap(), Selection::Prod);
        for member in Member::ALL {
            assert_eq!(select(member.name()).unwrap(), Selection::Only(member));
            assert_eq!(
                select(&member.name().to_uppercase()).unwrap(),
                Selection::Only(member)
            );
            assert_eq!(
                select(&format!(" {} ", member.name().to_lowercase())).unwrap(),
                Selection::Only(member)
            );
        }
    }

    #[test]
    fn an_invalid_value_is_an_error_listing_the_valid_ones() {
        for bad in [
            "development",
            "AzureCli",
            "dev,prod",
            "ManagedIdentity Credential",
        ] {
            let err = select(bad).unwrap_err();
            assert!(err.is_invalid_input());
            let text = err.to_string();
            assert!(
                text.contains(AZURE_TOKEN_CREDENTIALS)
                    && text.contains("AzureDeveloperCliCredential")
                    && text.contains("prod"),
                "{text}"
            );
        }
    }

    #[test]
    fn membership() {
        use Member::*;
        let members = |s: Selection| {
            Member::ALL
                .into_iter()
                .filter(|m| s.includes(*m))
                .collect::<Vec<_>>()
        };
        assert_eq!(members(Selection::All), Member::ALL);
        assert_eq!(
            members(Selection::Dev),
            [AzureCli, AzurePowerShell, AzureDeveloperCli]
        );
        assert_eq!(
            members(Selection::Prod),
            [Environment, WorkloadIdentity, ManagedIdentity]
        );
        assert_eq!(members(Selection::Only(ManagedIdentity)), [ManagedIdentity]);
        assert_eq!(members(Selection::Only(AzurePowerShell)), [AzurePowerShell]);
    }
}
