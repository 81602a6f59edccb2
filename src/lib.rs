//! An Azure access token from whatever identity the environment offers: service principals,
//! Kubernetes workload identity, managed identity on every Azure host, the Azure CLI, the
//! Azure Developer CLI and Azure PowerShell, behind one caching [`TokenCredential`] trait, with a
//! [`DefaultAzureCredential`] that tries them in order.
//!
//! ```no_run
//! use azure_credentials::{DefaultAzureCredential, TokenCredential};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let credential = DefaultAzureCredential::new()?;
//!     let token = credential
//!         .get_token(&["https://vault.azure.net/.default"], None)
//!         .await?;
//!     // `token.token().expose()` goes in `Authorization: Bearer ...`.
//!     tracing::info!(source = token.source(), expires_on = %token.expires_on(), "got a token");
//!     Ok(())
//! }
//! ```
//!
//! # Choosing a credential
//!
//! | where the program runs | credential |
//! | --- | --- |
//! | on developers' machines and in Azure alike | [`DefaultAzureCredential`]: the environment, workload identity, managed identity, then the developer tools (az, Azure PowerShell, azd), in this order, the first that works kept for good |
//! | anywhere, with a service principal in `AZURE_*` variables | [`EnvironmentCredential`] |
//! | anywhere, with a client secret or certificate you hold | [`ClientSecretCredential`], [`ClientCertificateCredential`] |
//! | anywhere, with a federated token your own code gets (a JWT an app registration trusts) | [`ClientAssertionCredential`] |
//! | an Azure Pipelines job with a workload identity federation service connection | [`AzurePipelinesCredential`] |
//! | a GitHub Actions job with `permissions: id-token: write` | [`GitHubActionsCredential`] |
//! | a web API calling another API as the user who called it | [`OnBehalfOfCredential`] |
//! | a command-line tool or desktop app its user signs in to (a browser here, or a code entered on another device) | [`InteractiveBrowserCredential`], [`DeviceCodeCredential`] (feature `user-sign-in`) |
//! | a web app that received an authorization code on its own redirect URI | [`AuthorizationCodeCredential`] (feature `user-sign-in`) |
//! | AKS with workload identity | [`WorkloadIdentityCredential`] |
//! | an Azure VM, App Service, Functions, Container Apps, Azure ML, Cloud Shell, Azure Arc or Service Fabric | [`ManagedIdentityCredential`] |
//! | a developer's machine after `az login` / `azd auth login` / `Connect-AzAccount` | [`AzureCliCredential`], [`AzureDeveloperCliCredential`], [`AzurePowerShellCredential`] |
//! | Azure Communication Services with an access key, or a user access token | [`AccessKeyCredential`], [`UserTokenCredential`] (feature `communication`) |
//! | your own order of members | [`ChainedTokenCredential`] |
//! | your own token source, with this crate's cache | [`TokenCache`] and [`TokenFetcher`] |
//!
//! Each credential has `new()` for the defaults and a `builder()` that validates everything
//! when it builds, so a misconfiguration fails at start-up rather than at the first request:
//!
//! ```
//! use azure_credentials::{ClientSecretCredential, ErrorKind};
//!
//! let error = ClientSecretCredential::builder()
//!     .tenant_id("contoso.onmicrosoft.com/../common")
//!     .client_id("00000000-0000-0000-0000-000000000001")
//!     .secret("not a real secret")
//!     .build()
//!     .unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::InvalidInput);
//! assert!(!error.to_string().contains("not a real secret"));
//! ```
//!
//! Code that needs a token takes an `Arc<dyn TokenCredential>` and asks whenever it needs one:
//! tokens are cached, refreshed ahead of expiry and shared between the credentials of one
//! identity, so asking is cheap.
//!
//! ```
//! use std::sync::Arc;
//!
//! use azure_credentials::{Error, TokenCredential};
//!
//! async fn call_key_vault(credential: Arc<dyn TokenCredential>) -> Result<(), Error> {
//!     let token = credential
//!         .get_token(&["https://vault.azure.net/.default"], None)
//!         .await?;
//!     // ... send the request with `token.token().expose()` ...
//!     Ok(())
//! }
//! ```
//!
//! # Errors
//!
//! Every credential fails with one [`Error`] type: its [`ErrorKind`] says what to do
//! ([`Unavailable`](ErrorKind::Unavailable) means "not here, try another source"; a chain moves
//! on only past it), its message names the credential, what happened and what to change, and
//! it never holds a secret.
//!
//! # Features
//!
//! All off by default; the default build has the default chain and every credential in it,
//! service principals (secret, PEM certificate, assertion), the CI federations and
//! on-behalf-of.
//!
//! - `user-sign-in`: [`InteractiveBrowserCredential`], [`DeviceCodeCredential`],
//!   [`AuthorizationCodeCredential`] and [`AuthenticationRecord`], for apps whose user signs in.
//! - `communication`: [`AccessKeyCredential`] and [`UserTokenCredential`], for Azure
//!   Communication Services.
//! - `pkcs12`: PKCS#12 (`.pfx`, `.p12`) client certificates.
//! - `persistence`: [`TokenCachePersistence`], tokens kept across processes in MSAL's format;
//!   `secret-service` encrypts them in the Linux Secret Service.
//! - `azure_core`: [`interop::AzureCoreCredential`], any credential of this crate for the
//!   official Azure SDK's clients (azure_core 1.x).
//! - `object_store`: [`interop::ObjectStoreCredential`], for `object_store`'s Azure store.
//! - `reqwest-middleware`: [`interop::BearerAuth`], bearer tokens on plain reqwest calls (with
//!   CAE and Key Vault challenges answered), and (with `communication`) [`interop::HmacAuth`],
//!   Communication Services requests signed with an access key.
//! - `testing`: [`testing`], loopback mocks of the identity endpoints (and of the CI systems'
//!   OIDC endpoints) and scripted credentials and processes, for your tests.
//!
//! # Where things live
//!
//! For contributors: each file defines what it is named after, and dependencies point down this
//! list (a credential uses the cache and the seams; the seams know no credential).
//!
//! ```text
//! credential.rs        TokenCredential, AccessToken, TokenRequestOptions, TokenFuture
//! chain.rs             ChainedTokenCredential: the stop/continue rules, sticky selection
//! default/             DefaultAzureCredential: its members (mod.rs), AZURE_TOKEN_CREDENTIALS
//!                      (selection.rs), explain() (explain.rs)
//! entra/               Entra ID credentials, one file each: client_secret, client_certificate,
//!                      client_assertion, workload_identity, azure_pipelines, github_actions,
//!                      on_behalf_of, environment; user/ signs users in (device_code,
//!                      interactive_browser with redirect.rs and browser.rs,
//!                      authorization_code; session.rs keeps them signed in, account.rs and
//!                      record.rs say who); shared: options.rs (the builder part),
//!                      mod.rs (EntraClient: the token request, its grants), response.rs,
//!                      assertion.rs (certificate JWTs), assertion_source.rs (federated
//!                      assertions: the source trait, the exchange), authority_hosts.rs
//! managed_identity/    ManagedIdentityCredential: mod.rs detects and orchestrates; source.rs is
//!                      the trait each hosting environment implements, one file each (imds,
//!                      app_service, azure_arc, azure_ml, cloud_shell, service_fabric);
//!                      answer.rs and response.rs read what endpoints say
//! developer_tools/     AzureCliCredential (azure_cli/: the process, az's files: ini.rs,
//!                      msal_cache.rs), AzureDeveloperCliCredential, AzurePowerShellCredential
//!                      (azure_powershell.rs); devtool.rs and options.rs are what they share
//! communication/       AccessKeyCredential (access_key/: signing, connection strings),
//!                      UserTokenCredential (Communication Services)
//! interop/             adapters for azure_core, object_store and reqwest-middleware (features);
//!                      challenge.rs + www_authenticate.rs read 401 challenges
//! cache/               TokenCache: cached_credential.rs (the lookup), front.rs (per-thread
//!                      copies), partition.rs and key.rs (what is stored under what), flight.rs
//!                      (one fetch per key), policy.rs (refresh times, hard limit, cool-downs);
//!                      persist/ (opt-in persistence across processes: MSAL's cache format in
//!                      msal_schema.rs, the file and its lock, the fetcher wrapper);
//!                      unit tests in cache/tests/
//! context.rs           Context: the seams a builder uses
//! setters.rs           the macros that write builders' setters and plain Debug impls
//! system/              the seams: env.rs, fs.rs, clock.rs, http/ (client, TLS, retries,
//!                      errors), process/ (running the developer tools)
//! error.rs             Error, ErrorKind (one table of kinds and texts), Attempt
//! secret.rs, scrub.rs  Secret; the one scrubber for untrusted text in messages
//! env_vars.rs          every environment variable name the crate reads, once
//! scope.rs, tenant.rs, jwt.rs, der.rs, date.rs, catch_unwind.rs   small shared parsers and
//!                      helpers
//! test_util.rs         what the unit tests share (cfg(test) only)
//! testing/             feature `testing`: MockManagedIdentity (one file per protocol),
//!                      MockEntra, MockAzureDevOpsOidc and MockGitHubOidc (oidc.rs), all over
//!                      loopback_http/; MockCredential,
//!                      StaticTokenCredential, ScriptedExecutor
//! fuzzing/             entry points for the fuzz targets in fuzz/ (cfg(fuzzing) only)
//! ```
//!
//! The README (on the repository's front page) covers every source, the chain's rules, the
//! cache, the error messages and the seams in depth.

// No unsafe code, except the system calls behind safe functions in system/unix.rs (the coarse
// clock, killing a process group, the effective ids) and on Windows the DPAPI calls of the
// persistent token cache (cache/persist/dpapi.rs): the only two `allow`s.
#![deny(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// These docs link to every feature's items; they resolve as docs.rs builds them (all
// features, checked with warnings denied in .ci/run), not in a build with fewer features.
#![cfg_attr(not(docsrs), allow(rustdoc::broken_intra_doc_links))]

// README.md reads as Markdown on the code-hosting site, so its examples are complete programs
// without hidden `# ` lines, and it is not these docs (they are the shorter overview above).
// Its examples still compile: under `cargo test --doc` this item carries the README as its
// docs, so rustdoc compiles every `rust` block in it (`no_run` where it would need Azure).
// With all features only, since some use the adapters, the user sign-in and the
// Communication Services credentials.
#[cfg(all(
    doctest,
    feature = "azure_core",
    feature = "object_store",
    feature = "reqwest-middleware",
    feature = "user-sign-in",
    feature = "communication"
))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod cache;
mod catch_unwind;
mod chain;
#[cfg(feature = "communication")]
mod communication;
mod context;
mod credential;
mod date;
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
#[cfg(any(
    feature = "azure_core",
    feature = "object_store",
    feature = "reqwest-middleware",
    test,
    fuzzing
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "azure_core",
        feature = "object_store",
        feature = "reqwest-middleware"
    )))
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
#[cfg(test)]
mod test_util;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "persistence")]
pub use cache::TokenCachePersistence;
pub use cache::{
    CacheIdentity, CachedCredential, TokenCache, TokenCacheBuilder, TokenFetcher, TokenRequest,
};
pub use chain::{ChainedTokenCredential, ChainedTokenCredentialBuilder, RequiredIdentity};
#[cfg(feature = "communication")]
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
    AzureDeveloperCliCredentialBuilder, AzurePowerShellCredential,
    AzurePowerShellCredentialBuilder,
};
pub use entra::authority_hosts;
#[cfg(feature = "user-sign-in")]
pub use entra::{
    AuthenticationRecord, AuthorizationCodeCredential, AuthorizationCodeCredentialBuilder,
    BrowserCommand, DEVELOPER_CLIENT_ID, DeviceCodeCredential, DeviceCodeCredentialBuilder,
    DeviceCodeInfo, InteractiveBrowserCredential, InteractiveBrowserCredentialBuilder,
};
pub use entra::{
    AzurePipelinesCredential, AzurePipelinesCredentialBuilder, ClientAssertionCredential,
    ClientAssertionCredentialBuilder, ClientCertificateCredential,
    ClientCertificateCredentialBuilder, ClientSecretCredential, ClientSecretCredentialBuilder,
    EnvironmentCredential, EnvironmentCredentialBuilder, GitHubActionsCredential,
    GitHubActionsCredentialBuilder, OnBehalfOfCredential, OnBehalfOfCredentialBuilder,
    WorkloadIdentityCredential, WorkloadIdentityCredentialBuilder,
};
pub use error::{Attempt, Error, ErrorKind};
pub use managed_identity::{
    ManagedIdentityCredential, ManagedIdentityCredentialBuilder, ManagedIdentitySource,
    UserAssignedId,
};
pub use secret::Secret;
