//! The scopes the tests ask tokens for.

/// Key Vault.
pub const VAULT: &[&str] = &["https://vault.azure.net/.default"];
/// Azure Resource Manager.
pub const ARM: &[&str] = &["https://management.azure.com/.default"];
/// Blob storage.
pub const STORAGE: &[&str] = &["https://storage.azure.com/.default"];
