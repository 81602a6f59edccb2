//! The Microsoft Entra authority hosts of the Azure clouds, for the credentials'
//! `authority_host` option (or `AZURE_AUTHORITY_HOST`).
//!
//! ```
//! use azure_credentials::{authority_hosts, ClientSecretCredential};
//!
//! let credential = ClientSecretCredential::builder()
//!     .tenant_id("00000000-0000-0000-0000-000000000000")
//!     .client_id("00000000-0000-0000-0000-000000000001")
//!     .secret("value from the app registration")
//!     .authority_host(authority_hosts::AZURE_GOVERNMENT)
//!     .build()?;
//! # Ok::<(), azure_credentials::Error>(())
//! ```

/// The public cloud (the default): `https://login.microsoftonline.com`.
pub const AZURE_PUBLIC_CLOUD: &str = "https://login.microsoftonline.com";
/// Azure Government (US): `https://login.microsoftonline.us`.
pub const AZURE_GOVERNMENT: &str = "https://login.microsoftonline.us";
/// Azure operated by 21Vianet (China): `https://login.chinacloudapi.cn`.
pub const AZURE_CHINA: &str = "https://login.chinacloudapi.cn";
