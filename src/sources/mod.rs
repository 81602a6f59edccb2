//! The token sources users name: one file (or folder) per credential.

mod workload_identity;

pub use workload_identity::{WorkloadIdentityCredential, WorkloadIdentityCredentialBuilder};
