//! [`ManagedIdentityCredential`]: the identity Azure gives the machine, app or pod, from whichever
//! hosting environment's endpoint is present.
//!
//! # How an endpoint's answer is classified
//!
//! After the retries, [`Fetcher::read_token`] turns an answer into a token or an error by this
//! rule (tested case by case in `tests/managed_identity.rs`).
//!
//! A managed identity endpoint always answers in JSON and never redirects. So only an answer
//! that clearly did not come from one moves a credential chain on; an answer that looks like
//! the endpoint's, however broken, stops it, so that a failing endpoint never silently hands
//! the program to another identity (a developer's `az login`, say).
//!
//! | answer | IMDS (its address is a guess) | a source the environment names |
//! | --- | --- | --- |
//! | 2xx with a JSON object holding a bearer `access_token` and a readable expiry (after an optional UTF-8 BOM) | the token | the token |
//! | 2xx with an HTML page (a body starting with `<`) | `Unavailable`: not IMDS (a proxy, a captive portal) | `Other`: not the endpoint |
//! | 2xx with anything else: JSON cut short or malformed, `[]`, `null`, `{}` or another object without `access_token`, fields of the wrong type, no readable expiry, a token type other than bearer, an empty body, plain text | `ServiceFailure` | `ServiceFailure` |
//! | 2xx naming a different identity than the user-assigned one asked for (`client_id`, `object_id`, `msi_res_id`/`mi_res_id`, compared case-insensitively; from Azure Arc, also naming none) | `Authentication` | `Authentication` |
//! | 3xx | `Unavailable` | `Other` |
//! | 403 whose body says "unreachable" (Docker Desktop) | `Unavailable` | by status, below |
//! | 4xx or 5xx with a body that is neither JSON nor empty (HTML, plain text from a proxy) | `Unavailable` | by status, below |
//! | 400 "Identity not found" (from IMDS, any 400) | system-assigned: `Unavailable`; user-assigned: `Authentication` | same |
//! | 429 | `Throttled` | `Throttled` |
//! | 410 or 5xx | `ServiceFailure` | `ServiceFailure` |
//! | any other 4xx | `Authentication` | `Authentication` |
//!
//! A body cut short of its `Content-Length`, a reset or a closed connection never reaches this
//! rule: the HTTP seam reports it ([`ErrorKind::Io`] after the retries), which stops a chain too.
//!
//! The IMDS probe (chains) applies the same rule to its answer: a redirect, an HTML page, plain
//! text with an error status or Docker Desktop's 403 is `Unavailable` at once, before any token
//! request; any other answer means IMDS is there.

mod app_service;
pub(crate) mod azure_arc;
mod azure_ml;
mod cloud_shell;
mod imds;
pub(crate) mod response;
mod service_fabric;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use url::Url;

use crate::context::seam_setters;
use crate::scope::{scope_to_resource, single_scope};
use crate::system::{Clock, Env, Fs, Http, HttpErrorKind, HttpRequest, HttpResponse, RetryPolicy};
use crate::{
    AccessToken, CacheIdentity, CachedCredential, Context, Error, ErrorKind, Secret,
    TokenCredential, TokenFetcher, TokenFuture, TokenRequest, TokenRequestOptions,
};

use response::{Shape, TokenBody, error_summary};

pub(crate) const NAME: &str = "ManagedIdentityCredential";

/// The environment variable that sets the IMDS probe's timeout, in milliseconds.
pub(crate) const PROBE_TIMEOUT_ENV: &str = "AZURE_CREDENTIALS_IMDS_PROBE_TIMEOUT_MS";
const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// IMDS's own service level: it answers within 10 s.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const IMDS_HOST: &str = "http://169.254.169.254";
const IMDS_PATH: &str = "/metadata/identity/oauth2/token";

/// Which hosting environment's managed identity endpoint a credential uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ManagedIdentitySource {
    /// The Instance Metadata Service of VMs, scale sets, AKS nodes, container instances.
    Imds,
    /// App Service, Azure Functions, Container Apps, Automation (`IDENTITY_ENDPOINT` +
    /// `IDENTITY_HEADER`).
    AppService,
    /// An Azure Arc-enabled server (`IDENTITY_ENDPOINT` + `IMDS_ENDPOINT`, or the Arc agent).
    AzureArc,
    /// Azure Cloud Shell (`MSI_ENDPOINT` alone).
    CloudShell,
    /// A Service Fabric cluster (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`,
    /// `IDENTITY_SERVER_THUMBPRINT`).
    ServiceFabric,
    /// An Azure Machine Learning compute (`MSI_ENDPOINT` + `MSI_SECRET`).
    AzureMl,
}

impl fmt::Display for ManagedIdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ManagedIdentitySource::Imds => "IMDS",
            ManagedIdentitySource::AppService => "App Service",
            ManagedIdentitySource::AzureArc => "Azure Arc",
            ManagedIdentitySource::CloudShell => "Cloud Shell",
            ManagedIdentitySource::ServiceFabric => "Service Fabric",
            ManagedIdentitySource::AzureMl => "Azure ML",
        })
    }
}

/// A user-assigned managed identity, named by one of its ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UserAssignedId {
    /// The identity's client (application) id.
    ClientId(String),
    /// The identity's object (principal) id.
    ObjectId(String),
    /// The identity's Azure resource id
    /// (`/subscriptions/…/resourceGroups/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/…`).
    ResourceId(String),
}

impl UserAssignedId {
    fn kind(&self) -> &'static str {
        match self {
            UserAssignedId::ClientId(_) => "client id",
            UserAssignedId::ObjectId(_) => "object id",
            UserAssignedId::ResourceId(_) => "resource id",
        }
    }

    fn value(&self) -> &str {
        match self {
            UserAssignedId::ClientId(v)
            | UserAssignedId::ObjectId(v)
            | UserAssignedId::ResourceId(v) => v,
        }
    }
}

impl fmt::Display for UserAssignedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.value())
    }
}

/// The managed identity of the Azure resource the program runs on.
///
/// The hosting environment is detected from the environment, first match wins (the order
/// every Azure SDK uses):
///
/// | environment variables | source |
/// | --- | --- |
/// | `IDENTITY_ENDPOINT`, `IDENTITY_HEADER`, `IDENTITY_SERVER_THUMBPRINT` | Service Fabric |
/// | `IDENTITY_ENDPOINT`, `IDENTITY_HEADER` | App Service, Functions, Container Apps |
/// | `MSI_ENDPOINT`, `MSI_SECRET` | Azure ML |
/// | `MSI_ENDPOINT` | Cloud Shell |
/// | `IDENTITY_ENDPOINT`, `IMDS_ENDPOINT`, or the Arc agent installed | Azure Arc |
/// | none of these | IMDS (`AZURE_POD_IDENTITY_AUTHORITY_HOST` replaces its address) |
///
/// A user-assigned identity is named in the builder or, by default, by `AZURE_CLIENT_ID` (as a
/// client id); sources that cannot select one fail at [`build`](ManagedIdentityCredentialBuilder::build).
/// Requests are retried the way Microsoft's IMDS guidance asks, within a 90 s budget: 404, 408
/// and 5xx up to four times with exponential backoff, 429 until the budget runs out (never
/// sooner than its `Retry-After`, with random jitter on top), 410 (IMDS updating) every 10 s for
/// 80 s. Each attempt waits at most 10 s for the response to start and 10 s for each pause in
/// its body. A refused connection is not retried: every managed identity endpoint but Service
/// Fabric's is local, so nothing listening there means no managed identity here
/// ([unavailable](Error::is_unavailable) at once). A secret (`IDENTITY_HEADER`, `MSI_SECRET`,
/// the Arc agent's key) is sent over plain `http` only to a loopback or link-local endpoint,
/// and never through a proxy.
///
/// ```no_run
/// use azure_credentials::{ManagedIdentityCredential, TokenCredential};
///
/// # async fn run() -> Result<(), azure_credentials::Error> {
/// let credential = ManagedIdentityCredential::builder()
///     .client_id("00000000-0000-0000-0000-000000000001")
///     .build()?;
/// let token = credential.get_token(&["https://vault.azure.net/.default"], None).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ManagedIdentityCredential {
    credential: CachedCredential,
    source: ManagedIdentitySource,
    endpoint: Url,
    id: Option<UserAssignedId>,
}

impl ManagedIdentityCredential {
    /// A credential for the environment's managed identity (see the table above), with
    /// `AZURE_CLIENT_ID` naming a user-assigned identity when it is set.
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// Options for a managed identity credential.
    pub fn builder() -> ManagedIdentityCredentialBuilder {
        ManagedIdentityCredentialBuilder::default()
    }

    /// The hosting environment this credential talks to.
    pub fn source(&self) -> ManagedIdentitySource {
        self.source
    }

    /// The user-assigned identity it asks for, if any.
    pub fn user_assigned_id(&self) -> Option<&UserAssignedId> {
        self.id.as_ref()
    }
}

impl fmt::Debug for ManagedIdentityCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedIdentityCredential")
            .field("source", &self.source)
            .field("endpoint", &redacted_endpoint(&self.endpoint))
            .field("user_assigned_id", &self.id)
            .finish()
    }
}

impl TokenCredential for ManagedIdentityCredential {
    fn get_token<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: Option<&'a TokenRequestOptions>,
    ) -> TokenFuture<'a> {
        self.credential.get_token(scopes, options)
    }
}

/// Options for a [`ManagedIdentityCredential`].
#[derive(Debug, Clone)]
pub struct ManagedIdentityCredentialBuilder {
    context: Context,
    id: IdChoice,
    imds_endpoint: Option<Url>,
    probe: bool,
    probe_timeout: Option<Duration>,
    retry_policy: Option<RetryPolicy>,
    attempt_timeout: Duration,
    arc_key_directory: Option<PathBuf>,
}

#[derive(Debug, Clone)]
enum IdChoice {
    /// `AZURE_CLIENT_ID` when set, else system-assigned.
    FromEnv,
    SystemAssigned,
    UserAssigned(UserAssignedId),
}

impl Default for ManagedIdentityCredentialBuilder {
    fn default() -> Self {
        ManagedIdentityCredentialBuilder {
            context: Context::default(),
            id: IdChoice::FromEnv,
            imds_endpoint: None,
            probe: false,
            probe_timeout: None,
            retry_policy: None,
            attempt_timeout: ATTEMPT_TIMEOUT,
            arc_key_directory: None,
        }
    }
}

impl ManagedIdentityCredentialBuilder {
    /// Uses the user-assigned identity with this client id.
    pub fn client_id(self, client_id: impl Into<String>) -> Self {
        self.user_assigned_id(UserAssignedId::ClientId(client_id.into()))
    }

    /// Uses the user-assigned identity with this object (principal) id.
    pub fn object_id(self, object_id: impl Into<String>) -> Self {
        self.user_assigned_id(UserAssignedId::ObjectId(object_id.into()))
    }

    /// Uses the user-assigned identity with this Azure resource id.
    pub fn resource_id(self, resource_id: impl Into<String>) -> Self {
        self.user_assigned_id(UserAssignedId::ResourceId(resource_id.into()))
    }

    /// Uses this user-assigned identity.
    pub fn user_assigned_id(mut self, id: UserAssignedId) -> Self {
        self.id = IdChoice::UserAssigned(id);
        self
    }

    /// Uses the system-assigned identity, even when `AZURE_CLIENT_ID` is set (for a service
    /// principal, say).
    pub fn system_assigned(mut self) -> Self {
        self.id = IdChoice::SystemAssigned;
        self
    }

    // Files: the Arc agent's key and binary. HTTP: for Service Fabric the credential uses a
    // copy of the client's settings that trusts only the cluster's certificate.
    seam_setters!(env, fs, http, cache);

    /// The IMDS token endpoint to use instead of
    /// `http://169.254.169.254/metadata/identity/oauth2/token` (a loopback mock in tests).
    pub fn imds_endpoint(mut self, endpoint: Url) -> Self {
        self.imds_endpoint = Some(endpoint);
        self
    }

    /// Before the first IMDS request, check that IMDS is there at all: one request without the
    /// `Metadata` header (which IMDS answers at once with a 400), a short timeout, no retries.
    /// A refused or silent endpoint, or an answer IMDS never sends (a redirect, an HTML page,
    /// plain text with an error status), makes the credential
    /// [unavailable](Error::is_unavailable) at once or after the probe's timeout instead of
    /// after the full retry budget. Once IMDS has answered, it is never probed again. Credential chains turn this on; default off. Applies to IMDS only, and not
    /// when `AZURE_POD_IDENTITY_AUTHORITY_HOST` names the endpoint.
    pub fn probe(mut self, probe: bool) -> Self {
        self.probe = probe;
        self
    }

    /// How long the probe waits. Default: 1 s, or `AZURE_CREDENTIALS_IMDS_PROBE_TIMEOUT_MS`.
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = Some(timeout);
        self
    }

    /// How requests are retried. Default: Microsoft's IMDS guidance (see the type's docs).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = Some(policy);
        self
    }

    /// How long each attempt may wait for the response to start (its status line and
    /// headers). Default: 10 s (IMDS's service level). The body is bounded by the pauses in it
    /// (10 s at most each, the HTTP client's read-stall timeout) and by the retry budget, not
    /// by this.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The directory the Azure Arc agent's key file must be in. Default: the agent's own
    /// (`/var/opt/azcmagent/tokens` on Linux, `%ProgramData%\AzureConnectedMachineAgent\Tokens`
    /// on Windows). For tests.
    pub fn arc_key_directory(mut self, directory: impl Into<PathBuf>) -> Self {
        self.arc_key_directory = Some(directory.into());
        self
    }

    /// Detects the hosting environment and checks the configuration.
    ///
    /// Fails when an endpoint variable is not a URL, when an endpoint that receives a secret
    /// (`IDENTITY_ENDPOINT` of App Service or Azure Arc, `MSI_ENDPOINT` with `MSI_SECRET`) is
    /// plain `http` to a host that is neither loopback nor link-local, when the source cannot
    /// select the requested user-assigned identity (Cloud Shell and Service Fabric cannot; Azure
    /// ML only by client id), when the Service Fabric thumbprint is malformed, or when the probe
    /// timeout variable is not a number.
    pub fn build(self) -> Result<ManagedIdentityCredential, Error> {
        let endpoint = self.detect()?;
        let source = endpoint.source();
        let id = match self.id {
            IdChoice::UserAssigned(id) => Some(id),
            IdChoice::SystemAssigned => None,
            IdChoice::FromEnv => self
                .context
                .env()
                .var_non_empty("AZURE_CLIENT_ID")
                .map(UserAssignedId::ClientId),
        };
        if let Some(id) = &id {
            check_id_support(source, id)?;
        }
        let probe_timeout = match self.probe_timeout {
            Some(timeout) => timeout,
            None => probe_timeout_from_env(&self.context.env())?,
        };
        // The probe only makes sense where nothing else says we are on Azure.
        let probe = (self.probe
            && matches!(
                &endpoint,
                Endpoint::Imds {
                    probe_allowed: true,
                    ..
                }
            ))
        .then_some(probe_timeout);
        let http = match &endpoint {
            Endpoint::ServiceFabric { thumbprint, .. } => self
                .context
                .http()
                .pinned_to_server_certificate_sha1(*thumbprint)
                .map_err(|e| Error::from_http(NAME, &e))?,
            _ => self.context.http(),
        };
        let cache = self.context.cache();
        let mut identity = CacheIdentity::new(NAME)
            .with("source", source.to_string())
            .with("endpoint", endpoint.url().as_str());
        if let Some(id) = &id {
            identity = identity.with(id.kind(), id.value());
        }
        // Only a client that trusts the pinned certificate could have fetched the token.
        if let Endpoint::ServiceFabric { thumbprint, .. } = &endpoint {
            let hex: String = thumbprint.iter().map(|b| format!("{b:02x}")).collect();
            identity = identity.with("server_certificate_sha1", hex);
        }
        // Azure ML asks for DEFAULT_IDENTITY_CLIENT_ID's identity when none is chosen: it
        // decides whose token this is.
        if let (
            Endpoint::AzureMl {
                default_client_id: Some(default),
                ..
            },
            None,
        ) = (&endpoint, &id)
        {
            identity = identity.with("default client id", default.as_str());
        }
        if let Some(secret) = endpoint.secret() {
            identity = identity.with_secret(secret.expose().as_bytes());
        }
        let url = endpoint.url().clone();
        let fetcher = Fetcher {
            endpoint,
            id: id.clone(),
            http,
            clock: cache.clock().clone(),
            fs: self.context.fs(),
            policy: self
                .retry_policy
                .unwrap_or_else(RetryPolicy::managed_identity),
            attempt_timeout: self.attempt_timeout,
            probe,
            endpoint_confirmed: AtomicBool::new(false),
        };
        tracing::debug!(credential = NAME, %source, endpoint = %redacted_endpoint(&url), user_assigned = ?id, "managed identity configured");
        Ok(ManagedIdentityCredential {
            credential: cache.credential(identity, fetcher),
            source,
            endpoint: url,
            id,
        })
    }

    fn detect(&self) -> Result<Endpoint, Error> {
        let env = &self.context.env();
        let identity_endpoint = env.var_non_empty("IDENTITY_ENDPOINT");
        let identity_header = env.var_non_empty("IDENTITY_HEADER");
        let msi_endpoint = env.var_non_empty("MSI_ENDPOINT");
        if let (Some(url), Some(header)) = (&identity_endpoint, &identity_header) {
            if let Some(thumbprint) = env.var_non_empty("IDENTITY_SERVER_THUMBPRINT") {
                let url = env_url("IDENTITY_ENDPOINT", url)?;
                if url.scheme() != "https" {
                    return Err(Error::invalid_input(
                        NAME,
                        "IDENTITY_ENDPOINT of a Service Fabric cluster must be an https URL",
                    )
                    .with_fix("check the cluster's managed identity configuration"));
                }
                return Ok(Endpoint::ServiceFabric {
                    url,
                    secret: Secret::new(header.as_str()),
                    thumbprint: service_fabric::parse_thumbprint(&thumbprint)?,
                });
            }
            return Ok(Endpoint::AppService {
                url: secret_url("IDENTITY_ENDPOINT", url)?,
                secret: Secret::new(header.as_str()),
            });
        }
        if let Some(url) = &msi_endpoint {
            return Ok(match env.var_non_empty("MSI_SECRET") {
                Some(secret) => Endpoint::AzureMl {
                    url: secret_url("MSI_ENDPOINT", url)?,
                    secret: Secret::new(secret),
                    default_client_id: env.var_non_empty("DEFAULT_IDENTITY_CLIENT_ID"),
                },
                None => Endpoint::CloudShell {
                    url: env_url("MSI_ENDPOINT", url)?,
                },
            });
        }
        let arc_url = match (&identity_endpoint, env.var_non_empty("IMDS_ENDPOINT")) {
            // The agent's key travels to it in the second leg.
            (Some(url), Some(_)) => Some(secret_url("IDENTITY_ENDPOINT", url)?),
            _ if azure_arc::agent_installed(env, &self.context.fs()) => {
                Some(azure_arc::default_endpoint())
            }
            _ => None,
        };
        if let Some(url) = arc_url {
            let key_directory = match &self.arc_key_directory {
                Some(dir) => Some(dir.clone()),
                None => azure_arc::key_directory(env),
            };
            return Ok(Endpoint::AzureArc { url, key_directory });
        }
        if identity_endpoint.is_some() {
            tracing::debug!(
                credential = NAME,
                "IDENTITY_ENDPOINT is set without IDENTITY_HEADER or IMDS_ENDPOINT; using IMDS"
            );
        }
        if let Some(url) = &self.imds_endpoint {
            return Ok(Endpoint::Imds {
                url: url.clone(),
                probe_allowed: true,
            });
        }
        if let Some(host) = env.var_non_empty("AZURE_POD_IDENTITY_AUTHORITY_HOST") {
            let base = host.trim_end_matches('/');
            return Ok(Endpoint::Imds {
                url: env_url(
                    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                    &format!("{base}{IMDS_PATH}"),
                )?,
                probe_allowed: false,
            });
        }
        Ok(Endpoint::Imds {
            url: Url::parse(&format!("{IMDS_HOST}{IMDS_PATH}")).expect("a constant URL"),
            probe_allowed: true,
        })
    }
}

fn probe_timeout_from_env(env: &Env) -> Result<Duration, Error> {
    let Some(value) = env.var_non_empty(PROBE_TIMEOUT_ENV) else {
        return Ok(DEFAULT_PROBE_TIMEOUT);
    };
    match value.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(Error::invalid_input(
            NAME,
            format!("{PROBE_TIMEOUT_ENV} is {value:?}, not a number of milliseconds"),
        )
        .with_fix(format!(
            "set {PROBE_TIMEOUT_ENV} to a whole number of milliseconds, e.g. 3000"
        ))),
    }
}

fn env_url(variable: &str, value: &str) -> Result<Url, Error> {
    match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(
            Error::invalid_input(NAME, format!("{variable} is not an http(s) URL")).with_fix(
                format!("check {variable}: it is set by the hosting environment"),
            ),
        ),
    }
}

/// An endpoint the credential sends a secret to (`IDENTITY_HEADER`, `MSI_SECRET`, the Arc
/// agent's key): https, or plain http to a loopback or link-local host only. Anything else
/// would put the secret on the network in clear text.
fn secret_url(variable: &str, value: &str) -> Result<Url, Error> {
    let url = env_url(variable, value)?;
    if url.scheme() == "http" && !crate::system::is_local(&url) {
        return Err(Error::invalid_input(
            NAME,
            format!(
                "{variable} ({}) is plain http to a host that is neither loopback nor link-local; the managed identity secret would cross the network in clear text",
                redacted_endpoint(&url)
            ),
        )
        .with_fix(format!(
            "use an https URL in {variable}, or the local address the hosting environment provides (127.0.0.1, localhost or 169.254.x.x)"
        )));
    }
    Ok(url)
}

fn check_id_support(source: ManagedIdentitySource, id: &UserAssignedId) -> Result<(), Error> {
    let supported = match source {
        ManagedIdentitySource::Imds
        | ManagedIdentitySource::AppService
        | ManagedIdentitySource::AzureArc => true,
        ManagedIdentitySource::AzureMl => matches!(id, UserAssignedId::ClientId(_)),
        ManagedIdentitySource::CloudShell | ManagedIdentitySource::ServiceFabric => false,
    };
    if supported {
        return Ok(());
    }
    let what = match source {
        ManagedIdentitySource::AzureMl => {
            "Azure ML selects user-assigned identities by client id only"
        }
        ManagedIdentitySource::CloudShell => "Cloud Shell has no user-assigned identities",
        _ => "Service Fabric has no user-assigned identities (the cluster configures the identity)",
    };
    Err(Error::invalid_input(NAME, format!("{what}, but {id} was requested"))
        .with_fix("drop the user-assigned id (from the builder, or unset AZURE_CLIENT_ID), or call system_assigned()"))
}

/// Where and how to ask for tokens.
enum Endpoint {
    Imds {
        url: Url,
        /// False when the environment named the endpoint (`AZURE_POD_IDENTITY_AUTHORITY_HOST`).
        probe_allowed: bool,
    },
    AppService {
        url: Url,
        secret: Secret,
    },
    AzureArc {
        url: Url,
        /// `None` on an OS the agent does not support.
        key_directory: Option<PathBuf>,
    },
    CloudShell {
        url: Url,
    },
    ServiceFabric {
        url: Url,
        secret: Secret,
        thumbprint: [u8; 20],
    },
    AzureMl {
        url: Url,
        secret: Secret,
        default_client_id: Option<String>,
    },
}

impl Endpoint {
    fn source(&self) -> ManagedIdentitySource {
        match self {
            Endpoint::Imds { .. } => ManagedIdentitySource::Imds,
            Endpoint::AppService { .. } => ManagedIdentitySource::AppService,
            Endpoint::AzureArc { .. } => ManagedIdentitySource::AzureArc,
            Endpoint::CloudShell { .. } => ManagedIdentitySource::CloudShell,
            Endpoint::ServiceFabric { .. } => ManagedIdentitySource::ServiceFabric,
            Endpoint::AzureMl { .. } => ManagedIdentitySource::AzureMl,
        }
    }

    fn url(&self) -> &Url {
        match self {
            Endpoint::Imds { url, .. }
            | Endpoint::AppService { url, .. }
            | Endpoint::AzureArc { url, .. }
            | Endpoint::CloudShell { url }
            | Endpoint::ServiceFabric { url, .. }
            | Endpoint::AzureMl { url, .. } => url,
        }
    }

    fn secret(&self) -> Option<&Secret> {
        match self {
            Endpoint::AppService { secret, .. }
            | Endpoint::ServiceFabric { secret, .. }
            | Endpoint::AzureMl { secret, .. } => Some(secret),
            _ => None,
        }
    }
}

/// `scheme://host:port/path` of an endpoint: never its query.
fn redacted_endpoint(url: &Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

struct Fetcher {
    endpoint: Endpoint,
    id: Option<UserAssignedId>,
    http: Http,
    clock: Clock,
    fs: Fs,
    policy: RetryPolicy,
    attempt_timeout: Duration,
    /// The probe's timeout, when probing is on.
    probe: Option<Duration>,
    /// The endpoint has answered once: no more probing.
    endpoint_confirmed: AtomicBool,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedIdentityFetcher")
            .field("source", &self.endpoint.source())
            .field("endpoint", &redacted_endpoint(self.endpoint.url()))
            .field("user_assigned_id", &self.id)
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenFetcher for Fetcher {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let scopes: Vec<&str> = request.scopes().iter().map(String::as_str).collect();
        let resource = scope_to_resource(single_scope(NAME, &scopes)?);
        if let (Endpoint::Imds { url, .. }, Some(timeout)) = (&self.endpoint, self.probe)
            && !self.endpoint_confirmed.load(Ordering::Acquire)
        {
            self.probe(url, resource, timeout).await?;
            self.endpoint_confirmed.store(true, Ordering::Release);
        }
        let requested_at = self.clock.now();
        let id = self.id.as_ref();
        let response = match &self.endpoint {
            Endpoint::Imds { url, .. } => self.send(imds::token_request(url, resource, id)).await?,
            Endpoint::AppService { url, secret } => {
                self.send(app_service::token_request(url, secret, resource, id))
                    .await?
            }
            Endpoint::AzureArc { url, key_directory } => {
                azure_arc::exchange(self, url, key_directory.as_deref(), resource).await?
            }
            Endpoint::CloudShell { url } => {
                self.send(cloud_shell::token_request(url, resource)).await?
            }
            Endpoint::ServiceFabric { url, secret, .. } => {
                self.send(service_fabric::token_request(url, secret, resource))
                    .await?
            }
            Endpoint::AzureMl {
                url,
                secret,
                default_client_id,
            } => {
                let client_id = match id {
                    Some(UserAssignedId::ClientId(client_id)) => Some(client_id.as_str()),
                    _ => default_client_id.as_deref(),
                };
                self.send(azure_ml::token_request(url, secret, resource, client_id))
                    .await?
            }
        };
        let token = self.read_token(&response, requested_at)?;
        self.endpoint_confirmed.store(true, Ordering::Release);
        Ok(token)
    }

    fn resolve_tenant<'a>(&'a self, _requested: &'a str) -> Result<Option<&'a str>, Error> {
        // A managed identity's tenant is fixed: every requested tenant gets the same token.
        Ok(None)
    }
}

impl Fetcher {
    fn source(&self) -> ManagedIdentitySource {
        self.endpoint.source()
    }

    /// Sends a request with the credential's retry policy and attempt timeout. A refused or
    /// unreachable endpoint is [`ErrorKind::Unavailable`]: there is no managed identity here.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let request = request.timeout(self.attempt_timeout);
        self.http.send(&request, &self.policy).await.map_err(|error| {
            let endpoint = redacted_endpoint(request.url());
            match error.kind() {
                HttpErrorKind::ConnectionRefused | HttpErrorKind::Unreachable => {
                    let mut unavailable = Error::unavailable(
                        NAME,
                        format!("the {} endpoint {endpoint} is not reachable: {error}", self.source()),
                    );
                    if self.source() == ManagedIdentitySource::Imds {
                        unavailable = unavailable.with_fix(
                            "this host does not look like an Azure VM; use a developer credential (az login) here",
                        );
                    }
                    unavailable
                }
                HttpErrorKind::Tls if self.source() == ManagedIdentitySource::ServiceFabric => Error::from_http(NAME, &error)
                    .with_fix("IDENTITY_SERVER_THUMBPRINT must be the SHA-1 thumbprint of the cluster's certificate: check the cluster's managed identity configuration"),
                _ => Error::from_http(NAME, &error),
            }
        })
    }

    /// One quick request without the `Metadata` header: any HTTP answer means IMDS is there.
    async fn probe(&self, url: &Url, resource: &str, timeout: Duration) -> Result<(), Error> {
        let request = imds::probe_request(url, resource, self.id.as_ref()).timeout(timeout);
        let policy = RetryPolicy::none().with_budget(timeout);
        match self.http.send(&request, &policy).await {
            Ok(response) if is_unreachable_network(&response) => Err(unreachable_network()),
            // What answers for IMDS's address with a page or a redirect is not IMDS: say so now
            // rather than after the token request's retries (a proxy's 502 page cost 15 s).
            Ok(response) => match foreign_answer(&response) {
                Some(what) => {
                    tracing::debug!(
                        credential = NAME,
                        status = response.status(),
                        "IMDS probe answered with {what}: not IMDS"
                    );
                    Err(self.not_the_endpoint(&response, what))
                }
                None => {
                    tracing::debug!(credential = NAME, status = response.status(), elapsed = ?response.elapsed(), "IMDS probe answered: IMDS is present");
                    Ok(())
                }
            },
            Err(error) => {
                let what = match error.kind() {
                    HttpErrorKind::Timeout => {
                        format!("IMDS did not answer the probe within {timeout:?}")
                    }
                    HttpErrorKind::ConnectionRefused => "IMDS refused the connection".to_owned(),
                    HttpErrorKind::Unreachable => {
                        "IMDS is not reachable from this network".to_owned()
                    }
                    _ => format!("the IMDS probe failed: {error}"),
                };
                tracing::debug!(credential = NAME, kind = %error.kind(), elapsed = ?error.elapsed(), "IMDS probe failed: no managed identity here");
                let fix = if error.kind() == HttpErrorKind::Timeout {
                    format!(
                        "not running on Azure? Use a developer credential (az login). On a slow Azure host, raise {PROBE_TIMEOUT_ENV}"
                    )
                } else {
                    "not running on Azure? Use a developer credential (az login)".to_owned()
                };
                Err(Error::unavailable(NAME, what).with_fix(fix))
            }
        }
    }

    /// Reads a token from a success, or classifies a failure, by the rule in the module docs.
    fn read_token(
        &self,
        response: &HttpResponse,
        requested_at: OffsetDateTime,
    ) -> Result<AccessToken, Error> {
        if !(200..300).contains(&response.status()) {
            return Err(self.failure(response));
        }
        match response::shape(response.body()) {
            Shape::Object(_) => {}
            Shape::Markup => return Err(self.not_the_endpoint(response, "an HTML page")),
            other => return Err(self.not_a_token(response, describe(&other))),
        }
        let Some(body) = TokenBody::parse(response.body()) else {
            return Err(self.not_a_token(
                response,
                "JSON whose fields have the wrong types or appear twice",
            ));
        };
        let token = body
            .access_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.not_a_token(response, "JSON without an access_token"))?;
        if let Some(kind) = body.token_type.as_deref()
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(self.not_a_token(
                response,
                &format!("a {:?} token, not a bearer token", crate::scrub::line(kind)),
            ));
        }
        if let Some(id) = &self.id {
            check_echo(self.source(), id, &body)?;
        }
        let expires_on = body.expires_on(requested_at).ok_or_else(|| {
            self.not_a_token(
                response,
                "a token without a readable expiry (expires_on or expires_in)",
            )
        })?;
        // Which identity: the response names the client id; the token itself says the tenant.
        let claims = crate::jwt::Claims::of(token).unwrap_or_default();
        let mut token = AccessToken::new(token.to_owned(), expires_on).with_source(NAME);
        if let Some(refresh_on) = body.refresh_on(requested_at, expires_on) {
            token = token.with_refresh_on(refresh_on);
        }
        let client_id = body.client_id.as_deref().filter(|c| !c.is_empty());
        if let Some(client_id) = client_id.or(claims.client_id()) {
            token = token.with_client_id(client_id);
        }
        if let Some(tenant) = claims.tid.as_deref() {
            token = token.with_tenant_id(tenant);
        }
        tracing::debug!(credential = NAME, source = %self.source(), %expires_on, attempts = response.attempts(), "managed identity token received");
        Ok(token)
    }

    /// The endpoint answered, but not with a usable token: it failed ([`ErrorKind::ServiceFailure`]).
    fn not_a_token(&self, response: &HttpResponse, what: &str) -> Error {
        let status = response.status();
        Error::new(
            ErrorKind::ServiceFailure,
            NAME,
            format!(
                "the {} endpoint answered {status} with {what} instead of a token",
                self.source()
            ),
        )
        .with_status(status)
        .with_fix("the managed identity endpoint is failing: try again later")
    }

    /// Something other than the identity endpoint answered (a proxy, a captive portal): at
    /// IMDS's guessed address that means there is no IMDS here; an endpoint the environment
    /// names is misconfigured or intercepted.
    fn not_the_endpoint(&self, response: &HttpResponse, what: &str) -> Error {
        let status = response.status();
        if self.source() == ManagedIdentitySource::Imds {
            Error::unavailable(
                NAME,
                format!("the IMDS endpoint answered {status} with {what}, not JSON: something other than IMDS answered (a proxy?)"),
            )
            .with_status(status)
            .with_fix("something on this network (a transparent proxy, a firewall, a captive portal) answers for 169.254.169.254; off Azure, use a developer credential (az login, or AZURE_TOKEN_CREDENTIALS=dev)")
        } else {
            Error::new(
                ErrorKind::Other,
                NAME,
                format!(
                    "the {} endpoint answered {status} with {what}, not JSON: something other than the endpoint answered (a proxy?)",
                    self.source()
                ),
            )
            .with_status(status)
            .with_fix("check the endpoint the environment names, and that no proxy answers for it")
        }
    }

    fn failure(&self, response: &HttpResponse) -> Error {
        let status = response.status();
        let source = self.source();
        if source == ManagedIdentitySource::Imds && is_unreachable_network(response) {
            return unreachable_network();
        }
        if (300..400).contains(&status) {
            return self.not_the_endpoint(response, "a redirect");
        }
        if source == ManagedIdentitySource::Imds
            && let Some(what) = foreign_answer(response)
        {
            return self.not_the_endpoint(response, what);
        }
        let summary = error_summary(response.body());
        let detail = summary
            .as_deref()
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        let tries = attempts_text(response);
        if status == 429 {
            let mut error = Error::new(
                ErrorKind::Throttled,
                NAME,
                format!("the {source} endpoint is throttling requests (429{tries}){detail}"),
            )
            .with_status(status)
            .with_fix(
                "share one credential across the process and let its cache serve repeated requests",
            );
            if let Some(after) = response.retry_after() {
                error = error.with_retry_after(after);
            }
            return error;
        }
        let identity_not_found = summary
            .as_deref()
            .is_some_and(|s| s.to_ascii_lowercase().contains("identity not found"));
        if status == 400 && (identity_not_found || source == ManagedIdentitySource::Imds) {
            return match &self.id {
                None => Error::unavailable(
                    NAME,
                    format!("no managed identity is assigned to this resource ({source} answered 400{detail})"),
                )
                .with_status(status)
                .with_fix("enable the system-assigned identity, or name a user-assigned one with AZURE_CLIENT_ID or the builder"),
                Some(id) => Error::authentication(
                    NAME,
                    format!("the requested identity ({id}) is not assigned to this resource ({source} answered 400{detail})"),
                )
                .with_status(status)
                .with_fix("check the id, or assign that identity to this resource"),
            };
        }
        // 410 is IMDS saying it is updating; 5xx a failure of the service. Both were retried.
        if status == 410 || (500..600).contains(&status) {
            return Error::new(
                ErrorKind::ServiceFailure,
                NAME,
                format!("the {source} endpoint failed: it answered {status}{tries}{detail}"),
            )
            .with_status(status)
            .with_fix("the managed identity endpoint is failing: try again later");
        }
        Error::authentication(
            NAME,
            format!("the {source} endpoint answered {status}{tries}{detail}"),
        )
        .with_status(status)
    }
}

/// Describes a body that is not a token response, for messages (never its contents).
fn describe(shape: &Shape) -> &'static str {
    match shape {
        Shape::Object(_) => "a JSON object",
        Shape::BrokenJson(what) => what,
        Shape::Markup => "an HTML page",
        Shape::Empty => "an empty body",
        Shape::Text => "a body that is not JSON",
    }
}

/// The identity a response names must be the one asked for. IMDS and App Service echo the
/// `client_id` (and newer Azure Arc agents every kind of id): an echo of a different id fails
/// closed, compared case-insensitively. A response that names no id of the requested kind is
/// accepted, except from Azure Arc, whose older agents ignore a requested identity and answer
/// for the system-assigned one.
fn check_echo(
    source: ManagedIdentitySource,
    id: &UserAssignedId,
    body: &TokenBody,
) -> Result<(), Error> {
    // Every field that can name the identity must name this one (an empty one names none).
    let fields = match id {
        UserAssignedId::ClientId(_) => [body.client_id.as_deref(), None],
        UserAssignedId::ObjectId(_) => [body.object_id.as_deref(), None],
        UserAssignedId::ResourceId(_) => [body.msi_res_id.as_deref(), body.mi_res_id.as_deref()],
    };
    let mut echoed = fields
        .into_iter()
        .flatten()
        .filter(|e| !e.is_empty())
        .peekable();
    let confirmed = echoed.peek().is_some();
    match echoed.find(|e| !e.eq_ignore_ascii_case(id.value())) {
        None if confirmed => Ok(()),
        Some(echoed) => {
            let error = Error::authentication(
                NAME,
                format!(
                    "the {source} endpoint returned a token for {} {:?}, but {id} was requested; refusing a token that belongs to another identity",
                    id.kind(),
                    crate::scrub::line(echoed)
                ),
            );
            Err(if source == ManagedIdentitySource::AzureArc {
                error.with_fix(azure_arc::UNCONFIRMED_FIX)
            } else {
                error.with_fix("check the requested id; if it is right, the endpoint is not honouring user-assigned identities")
            })
        }
        None if source == ManagedIdentitySource::AzureArc => Err(azure_arc::unconfirmed(id)),
        None => Ok(()),
    }
}

/// What an answer that is not a token is, when it cannot have come from IMDS (which always
/// answers in JSON and never redirects): a redirect, an HTML page, or plain text with an error
/// status. `None` for anything IMDS might have sent.
fn foreign_answer(response: &HttpResponse) -> Option<&'static str> {
    if (300..400).contains(&response.status()) {
        return Some("a redirect");
    }
    match response::shape(response.body()) {
        Shape::Markup => Some("an HTML page"),
        Shape::Text if !(200..300).contains(&response.status()) => Some("plain text"),
        _ => None,
    }
}

/// Docker Desktop answers for 169.254.169.254 with a 403 saying the network is unreachable.
fn is_unreachable_network(response: &HttpResponse) -> bool {
    response.status() == 403
        && String::from_utf8_lossy(response.body())
            .to_ascii_lowercase()
            .contains("unreachable")
}

fn unreachable_network() -> Error {
    Error::unavailable(
        NAME,
        "IMDS is unreachable from this network (a container without access to the host's metadata service?)",
    )
    .with_status(403)
    .with_fix("not running on Azure? Use a developer credential (az login)")
}

/// `" after 6 attempts over 31 s"` when the request was retried.
fn attempts_text(response: &HttpResponse) -> String {
    if response.attempts() > 1 {
        format!(
            " after {} attempts over {:.1} s",
            response.attempts(),
            response.elapsed().as_secs_f64()
        )
    } else {
        String::new()
    }
}

/// Appends the user-assigned id as the query parameter this source names it with.
fn append_id(url: &mut Url, id: Option<&UserAssignedId>, resource_id_param: &str) {
    if let Some(id) = id {
        let name = match id {
            UserAssignedId::ClientId(_) => "client_id",
            UserAssignedId::ObjectId(_) => "object_id",
            UserAssignedId::ResourceId(_) => resource_id_param,
        };
        url.query_pairs_mut().append_pair(name, id.value());
    }
}
