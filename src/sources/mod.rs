//! The token sources users name: one file (or folder) per credential.

mod managed_identity;

pub use managed_identity::{
    ManagedIdentityCredential, ManagedIdentityCredentialBuilder, ManagedIdentitySource,
    UserAssignedId,
};
