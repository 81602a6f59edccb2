#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod access_key;
mod cache;
mod catch_unwind;
mod chain;
mod credential;
mod default;
mod entra;
mod error;
#[cfg(any(feature = "azure_core", feature = "object_store"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "azure_core", feature = "object_store")))
)]
pub mod interop;
mod jwt;
mod scope;
mod scrub;
mod secret;
mod sources;
pub mod system;
mod tenant;
#[cfg(feature = "testing")]
pub mod testing;
mod user_token;

pub use access_key::{AccessKeyCredential, AccessKeyCredentialBuilder, SignedHeaders};
pub use cache::{
    CacheIdentity, CachedCredential, TokenCache, TokenCacheBuilder, TokenFetcher, TokenRequest,
};
pub use chain::{ChainedTokenCredential, ChainedTokenCredentialBuilder, RequiredIdentity};
pub use credential::{AccessToken, TokenCredential, TokenFuture, TokenRequestOptions};
pub use default::{
    DefaultAzureCredential, DefaultAzureCredentialBuilder, Explanation, MemberExplanation,
    MemberState,
};
pub use entra::authority_hosts;
pub use entra::{
    ClientCertificateCredential, ClientCertificateCredentialBuilder, ClientSecretCredential,
    ClientSecretCredentialBuilder,
};
pub use error::{Attempt, Error, ErrorKind};
pub use secret::Secret;
pub use sources::{
    AzureCliCredential, AzureCliCredentialBuilder, AzureDeveloperCliCredential,
    AzureDeveloperCliCredentialBuilder, EnvironmentCredential, EnvironmentCredentialBuilder,
    ManagedIdentityCredential, ManagedIdentityCredentialBuilder, ManagedIdentitySource,
    UserAssignedId, WorkloadIdentityCredential, WorkloadIdentityCredentialBuilder,
};
pub use user_token::{UserTokenCredential, UserTokenCredentialBuilder};
