//! The token sources users name: one file (or folder) per credential.

pub(crate) mod azure_cli;
pub(crate) mod azure_developer_cli;
mod environment;
pub(crate) mod managed_identity;
mod workload_identity;

pub use azure_cli::{AzureCliCredential, AzureCliCredentialBuilder};
pub use azure_developer_cli::{AzureDeveloperCliCredential, AzureDeveloperCliCredentialBuilder};
pub use environment::{EnvironmentCredential, EnvironmentCredentialBuilder};
pub use managed_identity::{
    ManagedIdentityCredential, ManagedIdentityCredentialBuilder, ManagedIdentitySource,
    UserAssignedId,
};
pub use workload_identity::{WorkloadIdentityCredential, WorkloadIdentityCredentialBuilder};
