//! [`ClientAssertionCredential`]: an app registration proven by a client assertion (a JWT from
//! a federation of the user's own) that a callback returns; and the constructor the other
//! federated credentials (workload identity, Azure Pipelines, GitHub Actions) are built with.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::assertion_source::{AssertionFetcher, AssertionSource};
use super::{EntraClient, EntraOptions, entra_setters};
use crate::context::seam_setters;
use crate::credential::delegate_token_credential;
use crate::setters::debug_fields;
use crate::system::bounded_call;
use crate::{CacheIdentity, CachedCredential, Context, Error, ErrorKind, Secret, TokenCache};

const NAME: &str = "ClientAssertionCredential";
const DEFAULT_ASSERTION_TIMEOUT: Duration = Duration::from_secs(DEFAULT_ASSERTION_TIMEOUT_SECS);

pub(crate) const DEFAULT_ASSERTION_TIMEOUT_SECS: u64 = 30;

type AssertionFuture = Pin<Box<dyn Future<Output = Result<Secret, Error>> + Send>>;
type Callback = Arc<dyn Fn() -> AssertionFuture + Send + Sync>;

/// Numbers the callbacks given to builders: tokens are shared only between credentials built
/// with the same callback (clones of one builder or credential).
static NEXT_CALLBACK_ID: AtomicU64 = AtomicU64::new(1);

/// A user's callback returning client assertions, numbered (see [`NEXT_CALLBACK_ID`]), its
/// errors already this crate's, naming `credential`. Also the on-behalf-of credential's.
#[derive(Clone)]
pub(crate) struct AssertionCallback {
    id: u64,
    call: Callback,
}

impl AssertionCallback {
    pub(crate) fn new<F, Fut, T, E>(credential: &'static str, callback: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Into<Secret>,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        let call: Callback = Arc::new(move || -> AssertionFuture {
            let calling = callback();
            Box::pin(async move {
                calling
                    .await
                    .map(Into::into)
                    .map_err(|error| callback_error(credential, error))
            })
        });
        AssertionCallback {
            id: NEXT_CALLBACK_ID.fetch_add(1, Ordering::Relaxed),
            call,
        }
    }

    /// Adds which callback this is to a cache identity.
    pub(crate) fn identify(&self, identity: CacheIdentity) -> CacheIdentity {
        identity.with("assertion_callback", self.id.to_string())
    }

    /// The callback as an assertion source for `credential`, each call bounded by `timeout`.
    pub(crate) fn source(self, credential: &'static str, timeout: Duration) -> CallbackSource {
        CallbackSource {
            credential,
            callback: self.call,
            timeout,
        }
    }
}

/// An app registration (or user-assigned managed identity) that proves who it is with a client
/// assertion your code provides: a JWT issued by an identity provider the app registration
/// trusts through a federated identity credential (your own OIDC issuer, a CI system, another
/// cloud's workload identity).
///
/// The callback is asked for an assertion each time a token must be fetched, never for a
/// token the cache holds; calls are one at a time per token however many callers wait. When
/// Microsoft Entra ID refuses the assertion as expired (`AADSTS700024`), the callback is asked
/// once more and the request retried. A callback that does not return within
/// [`assertion_timeout`](ClientAssertionCredentialBuilder::assertion_timeout) (30 s by default)
/// fails the request with [`ErrorKind::Timeout`](crate::ErrorKind::Timeout).
///
/// ```no_run
/// use azure_credentials::{ClientAssertionCredential, TokenCredential};
///
/// # async fn run() -> Result<(), azure_credentials::Error> {
/// let credential = ClientAssertionCredential::new(
///     "contoso.onmicrosoft.com",
///     "00000000-0000-0000-0000-000000000001",
///     || async { tokio::fs::read_to_string("/run/secrets/federated-token").await },
/// )?;
/// let token = credential.get_token(&["https://vault.azure.net/.default"], None).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
///
/// Tokens are cached under the tenant, the client id and the callback: credentials built from
/// clones of one builder share them, credentials given different callbacks do not.
#[derive(Clone)]
pub struct ClientAssertionCredential {
    credential: CachedCredential,
    client: EntraClient,
}

impl ClientAssertionCredential {
    /// A credential for `client_id` in `tenant_id` whose assertions `callback` returns, other
    /// options from the environment and the defaults. See
    /// [`ClientAssertionCredentialBuilder::assertion`] for what the callback may return.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when an id is empty or
    /// invalid, or `AZURE_AUTHORITY_HOST` is not `https`: see
    /// [`ClientAssertionCredentialBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::ClientAssertionCredential;
    ///
    /// let credential = ClientAssertionCredential::new(
    ///     "contoso.onmicrosoft.com",
    ///     "00000000-0000-0000-0000-000000000001",
    ///     || async { Ok::<_, std::io::Error>("eyJhbGciOi...".to_owned()) },
    /// )?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn new<F, Fut, T, E>(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        callback: F,
    ) -> Result<Self, Error>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Into<Secret>,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        ClientAssertionCredential::builder()
            .tenant_id(tenant_id)
            .client_id(client_id)
            .assertion(callback)
            .build()
    }

    /// Options for a client assertion credential, validated by
    /// [`build`](ClientAssertionCredentialBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use azure_credentials::{ClientAssertionCredential, authority_hosts};
    ///
    /// let credential = ClientAssertionCredential::builder()
    ///     .tenant_id("contoso.onmicrosoft.com")
    ///     .client_id("00000000-0000-0000-0000-000000000001")
    ///     .assertion(|| async { Ok::<_, std::io::Error>("eyJhbGciOi...".to_owned()) })
    ///     .assertion_timeout(Duration::from_secs(10))
    ///     .authority_host(authority_hosts::AZURE_GOVERNMENT)
    ///     .build()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn builder() -> ClientAssertionCredentialBuilder {
        ClientAssertionCredentialBuilder::default()
    }

    /// A federated credential named `client.credential()` over `source`, its tokens cached in
    /// `cache` under `identity`: how workload identity, Azure Pipelines and GitHub Actions are
    /// built.
    /// `persistent`: the persistent caches its tokens are also kept in, if any.
    pub(crate) fn from_source(
        client: EntraClient,
        identity: CacheIdentity,
        source: impl AssertionSource,
        cache: &TokenCache,
        persistent: Option<crate::cache::persist::PersistedCaches>,
    ) -> Self {
        let fetcher = EntraOptions::persisted(
            client.credential(),
            &client,
            cache.clock().clone(),
            AssertionFetcher {
                client: client.clone(),
                source: Arc::new(source),
            },
            persistent,
            // An application's own tokens: MSAL's empty home account.
            Arc::new(|| Some(String::new())),
            Arc::new(|token| token),
        );
        ClientAssertionCredential {
            credential: cache.credential(identity, fetcher),
            client,
        }
    }

    /// The cache identity of a federated credential: `client`'s authority, tenant and client
    /// id under the credential's name; the caller adds what tells its sources apart.
    pub(crate) fn identity(client: &EntraClient) -> CacheIdentity {
        client.cache_identity(client.credential())
    }
}

impl super::HasEntraClient for ClientAssertionCredential {
    fn entra_client(&self) -> &EntraClient {
        &self.client
    }
}

delegate_token_credential!(ClientAssertionCredential => credential);

impl fmt::Debug for ClientAssertionCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.client
            .debug_struct(f, self.client.credential())
            .finish_non_exhaustive()
    }
}

/// Options of a [`ClientAssertionCredential`]; see [`ClientAssertionCredential::builder`].
#[derive(Clone)]
pub struct ClientAssertionCredentialBuilder {
    context: Context,
    options: EntraOptions,
    callback: Option<AssertionCallback>,
    timeout: Duration,
}

impl Default for ClientAssertionCredentialBuilder {
    fn default() -> Self {
        ClientAssertionCredentialBuilder {
            context: Context::default(),
            options: EntraOptions::default(),
            callback: None,
            timeout: DEFAULT_ASSERTION_TIMEOUT,
        }
    }
}

impl ClientAssertionCredentialBuilder {
    entra_setters!(
        tenant_id = "Required.",
        client_id = "Required: the app registration or user-assigned managed identity whose \
                     federated identity credential trusts the assertions' issuer.",
        authority_host,
        additionally_allowed_tenants,
        retry_policy,
        persistence,
    );

    /// The callback that returns a client assertion: an async closure whose output is
    /// `Result<T, E>`, where `T` is a `String`, `&'static str` or [`Secret`] and `E` any error
    /// (`std::io::Error`, `Box<dyn Error>`, your own, or an [`Error`], whose kind is kept so
    /// that [`Unavailable`](crate::ErrorKind::Unavailable) lets a chain move on). Required.
    ///
    /// It is called when a token must be fetched, not on cache hits. Its error becomes the
    /// cause ([`std::error::Error::source`]) of this credential's error, which is not printed
    /// in the message (it could hold the assertion). Surrounding whitespace of the assertion
    /// is ignored; an empty one is an error.
    ///
    /// ```
    /// # use azure_credentials::ClientAssertionCredential;
    /// let builder = ClientAssertionCredential::builder()
    ///     .assertion(|| async { std::fs::read_to_string("/run/secrets/federated-token") });
    /// # let _ = builder;
    /// ```
    pub fn assertion<F, Fut, T, E>(mut self, callback: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Into<Secret>,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        self.callback = Some(AssertionCallback::new(NAME, callback));
        self
    }

    /// How long a callback call may take before the token request fails with
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout). Default: 30 s.
    ///
    /// The limit needs tokio's timers: on a runtime built without them (no `enable_time`),
    /// and when the caller drives the future outside any tokio runtime, the callback runs
    /// without it (a warning is logged once per runtime).
    pub fn assertion_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    seam_setters!(
        env = "`AZURE_AUTHORITY_HOST`, `AZURE_ADDITIONALLY_ALLOWED_TENANTS` and \
               `AZURE_IDENTITY_DISABLE_MULTITENANTAUTH` are read there.",
        http,
        cache,
    );

    /// Validates the options and builds the credential. The callback is not called yet.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when there is no callback,
    /// the tenant id or client id is missing or invalid, the timeout is zero, or the authority
    /// host is not `https` (plain `http` only to a loopback host).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{ClientAssertionCredential, ErrorKind};
    ///
    /// let error = ClientAssertionCredential::builder()
    ///     .tenant_id("contoso.onmicrosoft.com")
    ///     .client_id("00000000-0000-0000-0000-000000000001")
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// assert!(error.to_string().contains("no assertion callback was given"));
    /// ```
    pub fn build(self) -> Result<ClientAssertionCredential, Error> {
        let Some(callback) = self.callback else {
            return Err(Error::invalid_input(NAME, "no assertion callback was given")
                .with_fix("set the builder's assertion: an async closure returning the client assertion (a JWT)"));
        };
        if self.timeout.is_zero() {
            return Err(Error::invalid_input(
                NAME,
                "the assertion timeout must be greater than zero",
            ));
        }
        let client = self.options.client(NAME, &self.context)?;
        let identity = callback.identify(ClientAssertionCredential::identity(&client));
        let source = callback.source(NAME, self.timeout);
        let persistent = self.options.persistent_caches(NAME, &self.context)?;
        Ok(ClientAssertionCredential::from_source(
            client,
            identity,
            source,
            &self.context.cache(),
            persistent,
        ))
    }
}

impl fmt::Debug for ClientAssertionCredentialBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAssertionCredentialBuilder")
            .field("options", &self.options)
            .field("callback", &self.callback.is_some())
            .field("assertion_timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Turns a callback's error into ours: an [`Error`]'s kind, fix and `retry_after` are kept;
/// the original is the cause either way.
fn callback_error(
    credential: &'static str,
    error: impl Into<Box<dyn StdError + Send + Sync>>,
) -> Error {
    let failed = "the client assertion callback failed";
    match error.into().downcast::<Error>() {
        Ok(error) => {
            let mut ours = Error::new(error.kind(), credential, failed);
            if let Some(fix) = error.fix() {
                ours = ours.with_fix(fix.to_owned());
            }
            if let Some(retry_after) = error.retry_after() {
                ours = ours.with_retry_after(retry_after);
            }
            ours.with_source(*error)
        }
        Err(other) => Error::new(ErrorKind::Other, credential, failed)
            .with_fix("see the cause: the callback's own error")
            .with_shared_source(Arc::from(other)),
    }
}

/// The user's callback, bounded by the timeout.
pub(crate) struct CallbackSource {
    credential: &'static str,
    callback: Callback,
    timeout: Duration,
}

debug_fields!(CallbackSource { timeout, .. });

#[async_trait]
impl AssertionSource for CallbackSource {
    async fn assertion(&self) -> Result<Secret, Error> {
        tracing::debug!(
            credential = self.credential,
            "asking the callback for a client assertion"
        );
        let assertion = bounded_call(
            self.credential,
            self.timeout,
            (self.callback)(),
            "the client assertion callback",
            "make the callback return sooner, or raise assertion_timeout",
        )
        .await?;
        let trimmed = assertion.expose().trim();
        if trimmed.is_empty() {
            return Err(Error::new(
                ErrorKind::Other,
                self.credential,
                "the client assertion callback returned an empty assertion",
            )
            .with_fix("return the JWT your identity provider issued for this app registration"));
        }
        Ok(if trimmed.len() == assertion.len() {
            assertion
        } else {
            Secret::new(trimmed)
        })
    }
}
