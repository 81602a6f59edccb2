//! Test doubles (feature `testing`): use them in your own tests, and this crate uses them in its
//! tests, benches and demo.
//!
//! - [`MockManagedIdentity`]: a loopback mock of managed identity (IMDS, App Service, Azure ML, Cloud
//!   Shell, Service Fabric, Azure Arc) with scriptable replies and faults, that records every
//!   request.
//! - [`StaticTokenCredential`]: hands out one token you give it, until the expiry you must give.
//! - [`MockCredential`]: scripted results behind the real cache, counting fetches.
//! - [`MockEntra`]: a loopback Microsoft Entra ID that records form bodies, verifies client
//!   assertions against a test certificate and answers with scripted errors and faults (hangs,
//!   resets, trickled or stalled bodies, oversized or cut bodies); it also signs a [`MockUser`]
//!   in: device codes, an HTML sign-in page ([`MockSignIn`]) issuing PKCE-checked authorization
//!   codes, refresh tokens, id tokens.
//! - [`MockBrowser`]: a process [`Executor`](crate::system::Executor) that plays the browser of an
//!   interactive sign-in against [`MockEntra`]'s sign-in page (loopback only).
//! - [`MockAzureDevOpsOidc`], [`MockGitHubOidc`]: loopback mocks of the endpoints that hand
//!   Azure Pipelines and GitHub Actions jobs their OIDC tokens, recording what they are sent
//!   and answering with scripted tokens, errors (with Azure DevOps' trace headers), sign-in
//!   pages and faults.
//! - [`ScriptedExecutor`]: a process [`Executor`](crate::system::Executor) that returns scripted
//!   outputs and records every command, for the developer-tool credentials.

mod entra;
mod loopback_http;
mod managed_identity;
mod mock_browser;
mod mock_credential;
mod oidc;
mod scripted_executor;
mod static_credential;

pub use entra::{
    EntraRequest, MockAssertion, MockEntra, MockEntraReply, MockSignIn, MockUser, ReplyGate,
};
pub use loopback_http::RecordedRequest;
pub use managed_identity::{MockManagedIdentity, MockReply};
pub use mock_browser::MockBrowser;
pub use mock_credential::{FetchGate, MockCredential, MockCredentialBuilder};
pub use oidc::{MockAzureDevOpsOidc, MockGitHubOidc, MockOidcReply};
pub use scripted_executor::{RunGate, ScriptedExecutor};
pub use static_credential::StaticTokenCredential;
