//! The token sources users name: one file (or folder) per credential.

mod environment;
mod workload_identity;

pub use environment::{EnvironmentCredential, EnvironmentCredentialBuilder};
pub use workload_identity::{WorkloadIdentityCredential, WorkloadIdentityCredentialBuilder};
