//! [`ManagedIdentityCredential`]: the identity Azure gives the machine, app or pod, from whichever
//! hosting environment's endpoint is present.
//!
//! Each hosting environment is a [`Source`](source::Source) in a file of its own (`imds.rs`,
//! `app_service.rs`, `azure_arc.rs`, `cloud_shell.rs`, `service_fabric.rs`, `azure_ml.rs`): how
//! it is detected, which user-assigned ids it can select, how it asks for a token and what its
//! failures mean. This file detects them in the documented order ([`DETECTION_ORDER`]), probes
//! IMDS for chains, sends with the retry policy and caches; `answer.rs` reads every source's
//! answers by one rule (the table in its docs); `response.rs` parses the bodies.

mod answer;
mod app_service;
pub(crate) mod azure_arc;
mod azure_ml;
mod cloud_shell;
mod imds;
pub(crate) mod response;
mod service_fabric;
mod source;

use crate::env_vars::AZURE_CLIENT_ID;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use url::Url;

use crate::context::seam_setters;
use crate::scope::{scope_to_resource, single_scope};
use crate::setters::setters;
use crate::system::{Clock, Env, Http, HttpRequest, HttpResponse, RetryPolicy};
use crate::{
    AccessToken, CacheIdentity, CachedCredential, Context, Error, TokenCredential, TokenFetcher,
    TokenFuture, TokenRequest, TokenRequestOptions,
};

use crate::system::redacted_url;
use imds::PROBE_TIMEOUT_ENV;
pub(crate) use source::NAME;
use source::{Ask, Detect, Detection, Endpoint, Transport};
pub use source::{ManagedIdentitySource, UserAssignedId};

const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// IMDS's own service level: it answers within 10 s.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The sources that the environment names, in the order every Azure SDK detects them (the
/// table in [`ManagedIdentityCredential`]'s docs): the first to find its variables wins. When
/// none does, IMDS.
const DETECTION_ORDER: [Detect; 5] = [
    service_fabric::detect,
    app_service::detect,
    azure_ml::detect,
    cloud_shell::detect,
    azure_arc::detect,
];

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
    probes: bool,
}

impl ManagedIdentityCredential {
    /// A credential for the environment's managed identity (see the table above), with
    /// `AZURE_CLIENT_ID` naming a user-assigned identity when it is set. Nothing is sent until the
    /// first token is asked for.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the environment's configuration is invalid: see
    /// [`ManagedIdentityCredentialBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::ManagedIdentityCredential;
    ///
    /// let credential = ManagedIdentityCredential::new()?;
    /// tracing::info!(source = %credential.source(), "managed identity configured");
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// Options for a managed identity credential, validated by
    /// [`build`](ManagedIdentityCredentialBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{ManagedIdentityCredential, ManagedIdentitySource};
    /// use azure_credentials::system::{Env, Fs};
    ///
    /// // What App Service sets.
    /// let credential = ManagedIdentityCredential::builder()
    ///     .env(Env::from_pairs([
    ///         ("IDENTITY_ENDPOINT", "http://localhost:42356/msi/token"),
    ///         ("IDENTITY_HEADER", "a secret from the platform"),
    ///     ]))
    ///     .fs(Fs::memory())
    ///     .build()?;
    /// assert_eq!(credential.source(), ManagedIdentitySource::AppService);
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
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

    /// Whether the endpoint is probed before the first token request (see
    /// [`probe`](ManagedIdentityCredentialBuilder::probe)).
    pub(crate) fn probes(&self) -> bool {
        self.probes
    }
}

impl fmt::Debug for ManagedIdentityCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(NAME)
            .field("source", &self.source)
            .field("endpoint", &redacted_url(&self.endpoint))
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

    setters! {
        /// The IMDS token endpoint to use instead of
        /// `http://169.254.169.254/metadata/identity/oauth2/token` (a loopback mock in tests).
        imds_endpoint(endpoint: Url) => Some(imds_endpoint);

        /// Before the first IMDS request, check that IMDS is there at all: one request without the
        /// `Metadata` header (which IMDS answers at once with a 400), a short timeout, no retries.
        /// A refused or silent endpoint, or an answer IMDS never sends (a redirect, an HTML page,
        /// plain text with an error status), makes the credential
        /// [unavailable](Error::is_unavailable) at once or after the probe's timeout instead of
        /// after the full retry budget. Once IMDS has answered, it is never probed again. Credential chains turn this on; default off. Applies to IMDS only, and not
        /// when `AZURE_POD_IDENTITY_AUTHORITY_HOST` names the endpoint.
        probe(probe: bool) => probe;

        /// How long the probe waits. Default: 1 s, or `AZURE_CREDENTIALS_IMDS_PROBE_TIMEOUT_MS`.
        probe_timeout(timeout: Duration) => Some(probe_timeout);

        /// How requests are retried. Default: Microsoft's IMDS guidance (see the type's docs).
        retry_policy(policy: RetryPolicy) => Some(retry_policy);

        /// How long each attempt may wait for the response to start (its status line and
        /// headers). Default: 10 s (IMDS's service level). The body is bounded by the pauses in it
        /// (10 s at most each, the HTTP client's read-stall timeout) and by the retry budget, not
        /// by this.
        attempt_timeout(timeout: Duration) => attempt_timeout;
    }

    /// The directory the Azure Arc agent's key file must be in. Default: the agent's own
    /// (`/var/opt/azcmagent/tokens` on Linux, `%ProgramData%\AzureConnectedMachineAgent\Tokens`
    /// on Windows). For tests.
    pub fn arc_key_directory(mut self, directory: impl Into<PathBuf>) -> Self {
        self.arc_key_directory = Some(directory.into());
        self
    }

    /// Detects the hosting environment and checks the configuration. Nothing is sent yet.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when an endpoint variable is not a URL, when an endpoint that receives a secret
    /// (`IDENTITY_ENDPOINT` of App Service or Azure Arc, `MSI_ENDPOINT` with `MSI_SECRET`) is plain
    /// `http` to a host that is neither loopback nor link-local, when the source cannot select the
    /// requested user-assigned identity (Cloud Shell and Service Fabric cannot; Azure ML only by
    /// client id), when the Service Fabric thumbprint is malformed, or when the probe timeout
    /// variable is not a number.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{ErrorKind, ManagedIdentityCredential};
    /// use azure_credentials::system::{Env, Fs};
    ///
    /// let error = ManagedIdentityCredential::builder()
    ///     .env(Env::from_pairs([
    ///         ("IDENTITY_ENDPOINT", "http://identity.example.com/msi/token"),
    ///         ("IDENTITY_HEADER", "a secret from the platform"),
    ///     ]))
    ///     .fs(Fs::memory())
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// assert!(error.to_string().contains("neither loopback nor link-local"));
    /// ```
    pub fn build(self) -> Result<ManagedIdentityCredential, Error> {
        let endpoint = self.detect()?;
        let Endpoint { kind, url, source } = &endpoint;
        let id = match self.id {
            IdChoice::UserAssigned(id) => Some(id),
            IdChoice::SystemAssigned => None,
            IdChoice::FromEnv => self
                .context
                .env()
                .var_non_empty(AZURE_CLIENT_ID)
                .map(UserAssignedId::ClientId),
        };
        if let Some(id) = &id {
            source.check_id(id).map_err(|what| {
                Error::invalid_input(NAME, format!("{what}, but {id} was requested"))
                    .with_fix("drop the user-assigned id (from the builder, or unset AZURE_CLIENT_ID), or call system_assigned()")
            })?;
        }
        let probe_timeout = match self.probe_timeout {
            Some(timeout) => timeout,
            None => probe_timeout_from_env(&self.context.env())?,
        };
        // The probe only makes sense where nothing else says we are on Azure.
        let probe = (self.probe && source.probe_allowed()).then_some(probe_timeout);
        let http = source.http(self.context.http())?;
        let cache = self.context.cache();
        let mut identity = CacheIdentity::new(NAME)
            .with("source", kind.to_string())
            .with("endpoint", url.as_str());
        if let Some(id) = &id {
            identity = identity.with(id.kind(), id.value());
        }
        let identity = source.partition(identity, id.as_ref());
        let (kind, url) = (*kind, url.clone());
        tracing::debug!(credential = NAME, source = %kind, endpoint = %redacted_url(&url), user_assigned = ?id, "managed identity configured");
        let fetcher = Fetcher {
            endpoint,
            id: id.clone(),
            http,
            clock: cache.clock().clone(),
            policy: self
                .retry_policy
                .unwrap_or_else(RetryPolicy::managed_identity),
            attempt_timeout: self.attempt_timeout,
            probe,
            endpoint_confirmed: AtomicBool::new(false),
        };
        Ok(ManagedIdentityCredential {
            probes: probe.is_some(),
            credential: cache.credential(identity, fetcher),
            source: kind,
            endpoint: url,
            id,
        })
    }

    /// The first source in [`DETECTION_ORDER`] that finds its environment, else IMDS.
    fn detect(&self) -> Result<Endpoint, Error> {
        let (env, fs) = (self.context.env(), self.context.fs());
        let detection = Detection {
            env: &env,
            fs: &fs,
            imds_endpoint: self.imds_endpoint.as_ref(),
            arc_key_directory: self.arc_key_directory.as_deref(),
        };
        for detect in DETECTION_ORDER {
            if let Some(endpoint) = detect(&detection)? {
                return Ok(endpoint);
            }
        }
        imds::detect(&detection)
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

struct Fetcher {
    endpoint: Endpoint,
    id: Option<UserAssignedId>,
    http: Http,
    clock: Clock,
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
            .field("source", &self.endpoint.kind)
            .field("endpoint", &redacted_url(&self.endpoint.url))
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
        let (endpoint, id) = (&self.endpoint, self.id.as_ref());
        let ask = Ask {
            url: &endpoint.url,
            resource,
            id,
        };
        if let Some(timeout) = self.probe
            && !self.endpoint_confirmed.load(Ordering::Acquire)
        {
            endpoint.source.probe(&self.http, &ask, timeout).await?;
            self.endpoint_confirmed.store(true, Ordering::Release);
        }
        let requested_at = self.clock.now();
        let response = endpoint.source.request_token(self, &ask).await?;
        let token = answer::read_token(endpoint, id, &response, requested_at)?;
        self.endpoint_confirmed.store(true, Ordering::Release);
        Ok(token)
    }

    fn resolve_tenant<'a>(&'a self, _requested: &'a str) -> Result<Option<&'a str>, Error> {
        // A managed identity's tenant is fixed: every requested tenant gets the same token.
        Ok(None)
    }
}

#[async_trait]
impl Transport for Fetcher {
    /// Sends a request with the credential's retry policy and attempt timeout.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let request = request.timeout(self.attempt_timeout);
        self.http
            .send(&request, &self.policy)
            .await
            .map_err(|error| answer::transport_failure(&self.endpoint, &error, request.url()))
    }
}
