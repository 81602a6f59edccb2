#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cache;
mod catch_unwind;
mod chain;
mod communication;
mod context;
mod credential;
mod default;
mod der;
mod developer_tools;
mod entra;
mod env_vars;
mod error;
/// Entry points into the parsers for the fuzz targets in `fuzz/` (built with `--cfg fuzzing`,
/// which cargo-fuzz sets). Not part of the API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(all(test, not(fuzzing)))]
#[allow(unreachable_pub)] // `pub` for the fuzz targets; this build has none
mod fuzzing;
#[cfg(any(feature = "azure_core", feature = "object_store"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "azure_core", feature = "object_store")))
)]
pub mod interop;
mod jwt;
mod managed_identity;
mod scope;
mod scrub;
mod secret;
mod setters;
pub mod system;
mod tenant;
#[cfg(feature = "testing")]
pub mod testing;

pub use cache::{
    CacheIdentity, CachedCredential, TokenCache, TokenCacheBuilder, TokenFetcher, TokenRequest,
};
pub use chain::{ChainedTokenCredential, ChainedTokenCredentialBuilder, RequiredIdentity};
pub use communication::{
    AccessKeyCredential, AccessKeyCredentialBuilder, SignedHeaders, UserTokenCredential,
    UserTokenCredentialBuilder,
};
pub use context::Context;
pub use credential::{AccessToken, TokenCredential, TokenFuture, TokenRequestOptions};
pub use default::{
    DefaultAzureCredential, DefaultAzureCredentialBuilder, Explanation, MemberExplanation,
    MemberState,
};
pub use developer_tools::{
    AzureCliCredential, AzureCliCredentialBuilder, AzureDeveloperCliCredential,
    AzureDeveloperCliCredentialBuilder,
};
pub use entra::authority_hosts;
pub use entra::{
    ClientCertificateCredential, ClientCertificateCredentialBuilder, ClientSecretCredential,
    ClientSecretCredentialBuilder, EnvironmentCredential, EnvironmentCredentialBuilder,
    WorkloadIdentityCredential, WorkloadIdentityCredentialBuilder,
};
pub use error::{Attempt, Error, ErrorKind};
pub use managed_identity::{
    ManagedIdentityCredential, ManagedIdentityCredentialBuilder, ManagedIdentitySource,
    UserAssignedId,
};
pub use secret::Secret;
