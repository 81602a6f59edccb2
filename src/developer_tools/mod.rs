//! The developers' own logins: the Azure CLI, the Azure Developer CLI and Azure PowerShell, run
//! as processes (`devtool.rs`: finding, running and reading a tool; its login watch; `options.rs`: the
//! builders' shared options, setters and set-up, and the login check).

pub(crate) mod azure_cli;
pub(crate) mod azure_developer_cli;
pub(crate) mod azure_powershell;
pub(crate) mod devtool;
pub(crate) mod options;

pub use azure_cli::{AzureCliCredential, AzureCliCredentialBuilder};
pub use azure_developer_cli::{AzureDeveloperCliCredential, AzureDeveloperCliCredentialBuilder};
pub use azure_powershell::{AzurePowerShellCredential, AzurePowerShellCredentialBuilder};
