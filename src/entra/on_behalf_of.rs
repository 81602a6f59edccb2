//! [`OnBehalfOfCredential`]: a web API calling another API as the user who called it (the
//! OAuth 2.0 on-behalf-of flow).

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use url::Url;

use super::assertion_source::AssertionSource;
use super::client_assertion::{AssertionCallback, CallbackSource, DEFAULT_ASSERTION_TIMEOUT_SECS};
use super::client_certificate::certificate_setters;
use super::{
    CertificateSource, ClientCertificate, ClientProof, EntraClient, EntraOptions, Grant,
    entra_debug, entra_setters,
};
use crate::ErrorKind;
use crate::context::seam_setters;
use crate::credential::delegate_token_credential;
use crate::setters::{debug_fields, setters};
use crate::{
    AccessToken, CacheIdentity, CachedCredential, Context, Error, Secret, TokenFetcher,
    TokenRequest,
};

const NAME: &str = "OnBehalfOfCredential";
/// The longest user assertion accepted. Entra access tokens are a few KB; one with many group
/// claims stays well under this.
const MAX_USER_ASSERTION_BYTES: usize = 64 * 1024;

/// A web API that calls another API as the user who called it: the access token the API was
/// called with (the *user assertion*) is exchanged, with the API's own client secret or
/// certificate, for a token for the other API (the OAuth 2.0 on-behalf-of flow).
///
/// ```no_run
/// use azure_credentials::{OnBehalfOfCredential, TokenCredential};
///
/// # async fn run(incoming_access_token: &str) -> Result<(), azure_credentials::Error> {
/// // The access token this API was called with, its signature, audience and expiry already
/// // checked by the web framework.
/// let credential = OnBehalfOfCredential::builder()
///     .tenant_id("00000000-0000-0000-0000-000000000000")
///     .client_id("00000000-0000-0000-0000-000000000001")
///     .client_secret("value from the API's app registration")
///     .user_assertion(incoming_access_token)
///     .build()?;
/// let token = credential.get_token(&["https://graph.microsoft.com/.default"], None).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
///
/// **One credential per incoming request** is the intended use, and it is cheap: building does
/// no I/O (a certificate is read once per builder, see
/// [`certificate_path`](OnBehalfOfCredentialBuilder::certificate_path)) and every credential
/// shares the process's HTTP client and token cache. Tokens are cached per user assertion: the
/// assertion (as a digest keyed by the API's own secret or key, never the token itself) is part
/// of the cache partition, so a token obtained for one caller is never handed to another, and
/// a caller who calls again with the same token is served from the cache.
///
/// The credential does not validate the user assertion (its signature, audience, expiry):
/// the web framework must have done so before, as for any request it serves. Entra refuses an
/// expired or foreign token (`AADSTS500133`, `AADSTS50013`) and the error says so.
///
/// Tenants other than the API's own may be requested when listed in
/// [`additionally_allowed_tenants`](OnBehalfOfCredentialBuilder::additionally_allowed_tenants)
/// (else `AZURE_ADDITIONALLY_ALLOWED_TENANTS`; `*` allows any). The credential is not a member
/// of [`DefaultAzureCredential`](crate::DefaultAzureCredential): it needs a caller's token.
#[derive(Clone)]
pub struct OnBehalfOfCredential {
    credential: CachedCredential,
    client: EntraClient,
    proof: ApiProof,
}

impl OnBehalfOfCredential {
    /// A credential for the API `client_id` in `tenant_id` with its client secret, acting for the
    /// user of `user_assertion` (the access token the API was called with), other options from
    /// the environment and the defaults.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when an id, the secret or the
    /// user assertion is empty or invalid, or `AZURE_AUTHORITY_HOST` is not `https`: see
    /// [`OnBehalfOfCredentialBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use azure_credentials::OnBehalfOfCredential;
    ///
    /// # fn handle(incoming_access_token: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let credential = OnBehalfOfCredential::new(
    ///     "contoso.onmicrosoft.com",
    ///     "00000000-0000-0000-0000-000000000001",
    ///     std::env::var("MY_API_SECRET")?,
    ///     incoming_access_token,
    /// )?;
    /// # let _ = credential;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        user_assertion: impl Into<Secret>,
    ) -> Result<Self, Error> {
        OnBehalfOfCredential::builder()
            .tenant_id(tenant_id)
            .client_id(client_id)
            .client_secret(client_secret)
            .user_assertion(user_assertion)
            .build()
    }

    /// Options for an on-behalf-of credential, validated by
    /// [`build`](OnBehalfOfCredentialBuilder::build). Configure one builder when the API
    /// starts, and clone it for each request to add that request's
    /// [`user_assertion`](OnBehalfOfCredentialBuilder::user_assertion).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::OnBehalfOfCredential;
    ///
    /// // At start-up.
    /// let api = OnBehalfOfCredential::builder()
    ///     .tenant_id("contoso.onmicrosoft.com")
    ///     .client_id("00000000-0000-0000-0000-000000000001")
    ///     .client_secret("value from the API's app registration");
    ///
    /// // For each request, with the access token it came with.
    /// let credential = api.clone().user_assertion("eyJ0eXAiOiJKV1Qi...").build()?;
    /// # let _ = credential;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn builder() -> OnBehalfOfCredentialBuilder {
        OnBehalfOfCredentialBuilder::default()
    }
}

delegate_token_credential!(OnBehalfOfCredential => credential);

entra_debug!(OnBehalfOfCredential(client) { client_proof: proof, .. });

/// Options of an [`OnBehalfOfCredential`]; see [`OnBehalfOfCredential::builder`]. Cloning is
/// cheap, and clones share a certificate once it is read.
#[derive(Clone, Default)]
pub struct OnBehalfOfCredentialBuilder {
    context: Context,
    options: EntraOptions,
    user_assertion: Option<Secret>,
    client_secret: Option<Secret>,
    certificate: Option<CertificateSource>,
    password: Option<Secret>,
    send_chain: bool,
    client_assertion: Option<AssertionCallback>,
    assertion_timeout: Option<Duration>,
    /// The certificate once read and checked, shared by this builder's clones; a new
    /// certificate or password starts a new one.
    loaded: Arc<OnceLock<Arc<ClientCertificate>>>,
}

impl OnBehalfOfCredentialBuilder {
    entra_setters!(
        tenant_id = "The tenant of the API's app registration. Required.",
        client_id = "The API's own application (client) id. Required.",
        authority_host,
        additionally_allowed_tenants,
        retry_policy,
    );

    setters! {
        /// The access token the API was called with: the value of the incoming request's
        /// `Authorization: Bearer ...` header, without `Bearer `. Required. Its user is the one
        /// the credential's tokens are for.
        user_assertion(user_assertion: impl Into<Secret>) => Some(user_assertion);
        /// The API's client secret (its value) from its app registration. This or a certificate
        /// is required.
        client_secret(secret: impl Into<Secret>) => Some(client_secret);
        /// How long the [`client_assertion`](Self::client_assertion) callback may take before
        /// the token request fails with [`ErrorKind::Timeout`](crate::ErrorKind::Timeout).
        /// Default: 30 s.
        assertion_timeout(timeout: Duration) => Some(assertion_timeout);
    }

    /// The API proves its identity with a client assertion that `callback` returns (a JWT
    /// from a federation the API's app registration trusts), instead of a secret or a
    /// certificate; as [`ClientAssertionCredentialBuilder::assertion`](crate::ClientAssertionCredentialBuilder::assertion),
    /// which says what the callback may return. It is called when a token must be fetched,
    /// never on cache hits; clones of this builder share it (and their tokens' partition, per
    /// user).
    ///
    /// ```
    /// # use azure_credentials::OnBehalfOfCredential;
    /// let api = OnBehalfOfCredential::builder()
    ///     .tenant_id("contoso.onmicrosoft.com")
    ///     .client_id("00000000-0000-0000-0000-000000000001")
    ///     .client_assertion(|| async { std::fs::read_to_string("/run/secrets/federated-token") });
    /// # let _ = api;
    /// ```
    pub fn client_assertion<F, Fut, T, E>(mut self, callback: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Into<Secret>,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        self.client_assertion = Some(AssertionCallback::new(NAME, callback));
        self
    }

    certificate_setters!(
        reset: loaded,
        certificate_path = "The API's own certificate, as for \
            [`ClientCertificateCredential`](crate::ClientCertificateCredential). This, a \
            [`certificate`](Self::certificate) or a client secret is required.\n\n\
            The file is read at the first [`build`](Self::build) of this builder or of a clone \
            of it, and the clones share what was read: a builder configured at start-up and \
            cloned for each request reads it once.",
        certificate = "The API's own certificate, parsed once for this builder and its \
            clones, like [`certificate_path`](Self::certificate_path).",
    );

    seam_setters!(
        env = "`AZURE_AUTHORITY_HOST`, `AZURE_ADDITIONALLY_ALLOWED_TENANTS` and \
               `AZURE_IDENTITY_DISABLE_MULTITENANTAUTH` are read there.",
        fs = "The certificate file is read there.",
        http,
        cache = "Its clock also dates the client assertions.",
    );

    /// Validates the options and builds the credential. Nothing is sent before the first token
    /// is asked for, and nothing is read but the environment's variables (and a certificate
    /// file, at the first build of a builder and its clones).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the tenant id, client id
    /// or user assertion is missing or invalid (an assertion is a bare token: no `Bearer `
    /// prefix, no whitespace), when neither or both of a client secret and a certificate are
    /// given, for an empty secret, a certificate that cannot be read or used (see
    /// [`ClientCertificateCredentialBuilder::build`](crate::ClientCertificateCredentialBuilder::build)),
    /// and when the authority host is not `https` (plain `http` only to a loopback host). No
    /// message holds the user assertion or the secret.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{ErrorKind, OnBehalfOfCredential};
    ///
    /// let error = OnBehalfOfCredential::builder()
    ///     .tenant_id("contoso.onmicrosoft.com")
    ///     .client_id("00000000-0000-0000-0000-000000000001")
    ///     .client_secret("value from the API's app registration")
    ///     .user_assertion("Bearer eyJ0eXAiOiJKV1Qi...")
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// assert!(error.to_string().contains("without the \"Bearer \" prefix"));
    /// assert!(!error.to_string().contains("eyJ0eXAiOiJKV1Qi"));
    /// ```
    pub fn build(self) -> Result<OnBehalfOfCredential, Error> {
        let client = self.options.client(NAME, &self.context)?;
        let Some(user_assertion) = &self.user_assertion else {
            return Err(
                Error::invalid_input(NAME, "no user assertion was given").with_fix(
                    "set the builder's user_assertion to the access token the API was called with",
                ),
            );
        };
        validate_user_assertion(user_assertion)?;
        let proof = self.proof()?;
        let identity = proof
            .identify(client.cache_identity(NAME))
            // The caller's token is part of the partition: a token exchanged for one caller is
            // never served to another. Chained after the API's own secret or key, its digest
            // is keyed by it.
            .with_secret(user_assertion.expose().as_bytes());
        let fetcher = OnBehalfOfFetcher {
            client: client.clone(),
            proof: proof.clone(),
            user_assertion: user_assertion.clone(),
        };
        Ok(OnBehalfOfCredential {
            credential: self.context.cache().credential(identity, fetcher),
            client,
            proof,
        })
    }

    /// How the API proves its identity: exactly one of the secret, the certificate and the
    /// client assertion callback.
    fn proof(&self) -> Result<ApiProof, Error> {
        let given = [
            self.client_secret.is_some(),
            self.certificate.is_some(),
            self.client_assertion.is_some(),
        ];
        if given.iter().filter(|given| **given).count() > 1 {
            return Err(Error::invalid_input(
                NAME,
                "more than one of a client secret, a certificate and a client assertion was given",
            )
            .with_fix("give the API's client secret, its certificate or a client assertion callback: one of them"));
        }
        match (&self.client_secret, &self.client_assertion, &self.certificate) {
            (Some(secret), _, _) => {
                if secret.expose().trim().is_empty() {
                    return Err(Error::invalid_input(NAME, "the client secret is empty")
                        .with_fix("set the client secret's value from the API's app registration"));
                }
                Ok(ApiProof::Secret(secret.clone()))
            }
            (None, Some(callback), _) => {
                let timeout = self
                    .assertion_timeout
                    .unwrap_or(Duration::from_secs(DEFAULT_ASSERTION_TIMEOUT_SECS));
                if timeout.is_zero() {
                    return Err(Error::invalid_input(
                        NAME,
                        "the assertion timeout must be greater than zero",
                    ));
                }
                Ok(ApiProof::Assertion {
                    callback: callback.clone(),
                    source: Arc::new(callback.clone().source(NAME, timeout)),
                })
            }
            (None, None, Some(source)) => {
                let certificate = match self.loaded.get() {
                    Some(loaded) => loaded.clone(),
                    None => {
                        let read = source.load(NAME, &self.context.fs(), self.password.as_ref())?;
                        self.loaded.get_or_init(|| Arc::new(read)).clone()
                    }
                };
                Ok(ApiProof::Certificate {
                    certificate,
                    send_chain: self.send_chain,
                })
            }
            (None, None, None) => Err(Error::invalid_input(
                NAME,
                "no client secret, certificate or client assertion was given",
            )
            .with_fix(
                "set the builder's client_secret, its certificate_path or certificate, or its client_assertion: the API's own credentials from its app registration",
            )),
        }
    }
}

debug_fields!(OnBehalfOfCredentialBuilder {
    options,
    user_assertion,
    client_secret,
    certificate,
    password,
    send_certificate_chain: send_chain,
    assertion_timeout,
    ..
});

/// Refuses what cannot be an access token, without quoting it: an empty value, the whole
/// `Authorization` header value, whitespace or control characters, an oversized value.
fn validate_user_assertion(assertion: &Secret) -> Result<(), Error> {
    let value = assertion.expose();
    let invalid = |what: String| {
        Error::invalid_input(NAME, what).with_fix(
            "pass the access token of the incoming request's Authorization header, without the \"Bearer \" prefix",
        )
    };
    if value.trim().is_empty() {
        return Err(invalid("the user assertion is empty".to_owned()));
    }
    if value
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
    {
        return Err(invalid(
            "the user assertion is an Authorization header value; it must be the token alone, without the \"Bearer \" prefix".to_owned(),
        ));
    }
    if value.len() > MAX_USER_ASSERTION_BYTES {
        return Err(invalid(format!(
            "the user assertion is {} bytes long, more than an access token ({} KiB at most)",
            value.len(),
            MAX_USER_ASSERTION_BYTES / 1024
        )));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "the user assertion holds whitespace or characters no access token has".to_owned(),
        ));
    }
    Ok(())
}

/// How the API proves its own identity in each token request.
#[derive(Clone)]
enum ApiProof {
    /// The client secret.
    Secret(Secret),
    /// A client assertion signed with the certificate's key, made for each request.
    Certificate {
        certificate: Arc<ClientCertificate>,
        send_chain: bool,
    },
    /// What the user's callback returns (as `ClientAssertionCredential`'s), asked for before
    /// each token request.
    Assertion {
        callback: AssertionCallback,
        source: Arc<CallbackSource>,
    },
}

impl ApiProof {
    /// Adds what tells this proof apart to a cache identity: its kind, and the secret or key
    /// as a digest.
    fn identify(&self, identity: CacheIdentity) -> CacheIdentity {
        match self {
            ApiProof::Secret(secret) => identity
                .with("proof", "client_secret")
                .with_secret(secret.expose().as_bytes()),
            ApiProof::Certificate { certificate, .. } => identity
                .with("proof", "certificate")
                .with("thumbprint", certificate.thumbprint())
                .with_secret(certificate.key_digest()),
            ApiProof::Assertion { callback, .. } => {
                callback.identify(identity.with("proof", "client_assertion"))
            }
        }
    }

    /// The client assertion for the next request, from the callback; `None` for the proofs
    /// made without one.
    async fn assertion(&self) -> Result<Option<Secret>, Error> {
        match self {
            ApiProof::Assertion { source, .. } => source.assertion().await.map(Some),
            ApiProof::Secret(_) | ApiProof::Certificate { .. } => Ok(None),
        }
    }

    /// The proof for one request of `client` to `endpoint` at `now`, with the callback's
    /// `assertion` when the proof is one.
    fn client_proof(
        &self,
        assertion: Option<&Secret>,
        client: &EntraClient,
        request: &TokenRequest,
        endpoint: &Url,
        now: OffsetDateTime,
    ) -> Result<ClientProof, Error> {
        if let Some(assertion) = assertion {
            return Ok(ClientProof::Assertion(assertion.clone()));
        }
        match self {
            ApiProof::Secret(secret) => Ok(ClientProof::Secret(secret.clone())),
            ApiProof::Assertion { .. } => Err(Error::new(
                ErrorKind::Other,
                NAME,
                "the client assertion callback gave no assertion",
            )),
            ApiProof::Certificate {
                certificate,
                send_chain,
            } => certificate.proof(client, request, *send_chain, endpoint, now),
        }
    }
}

impl fmt::Debug for ApiProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiProof::Secret(_) => f.write_str("ClientSecret"),
            ApiProof::Certificate { certificate, .. } => f
                .debug_struct("Certificate")
                .field("thumbprint", &certificate.thumbprint())
                .finish(),
            ApiProof::Assertion { .. } => f.write_str("ClientAssertionCallback"),
        }
    }
}

struct OnBehalfOfFetcher {
    client: EntraClient,
    proof: ApiProof,
    user_assertion: Secret,
}

debug_fields!(OnBehalfOfFetcher { client, proof, .. });

#[async_trait]
impl TokenFetcher for OnBehalfOfFetcher {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let grant = Grant::OnBehalfOf {
            user_assertion: &self.user_assertion,
        };
        let assertion = self.proof.assertion().await?;
        self.client
            .request_grant(request, grant, &|endpoint, now| {
                self.proof
                    .client_proof(assertion.as_ref(), &self.client, request, endpoint, now)
            })
            .await
    }

    fn resolve_tenant<'a>(&'a self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        self.client.resolve_tenant(requested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{Env, Http};
    use crate::{ErrorKind, TokenCache};

    fn api() -> OnBehalfOfCredentialBuilder {
        OnBehalfOfCredential::builder()
            .tenant_id("tenant-a")
            .client_id("api-client")
            .client_secret("api-secret-value")
            .env(Env::empty())
            .cache(TokenCache::builder().build())
    }

    #[test]
    fn credentials_built_per_request_share_the_process_http_client() {
        let api = api();
        let shared = Http::shared();
        for n in 0..1000 {
            let credential = api
                .clone()
                .user_assertion(format!("user-assertion-{n}"))
                .build()
                .unwrap();
            assert!(credential.client.http().is_same_client(&shared));
        }
    }

    #[test]
    fn what_cannot_be_an_access_token_is_refused_without_being_quoted() {
        for (assertion, says) in [
            ("", "is empty"),
            ("  ", "is empty"),
            (
                "Bearer eyJ.secret-part.sig",
                "without the \"Bearer \" prefix",
            ),
            (
                "bearer eyJ.secret-part.sig",
                "without the \"Bearer \" prefix",
            ),
            ("eyJ.secret-part.sig\n", "whitespace"),
            ("eyJ secret-part.sig", "whitespace"),
        ] {
            let error = api().user_assertion(assertion).build().unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidInput, "{assertion:?}");
            let text = error.to_string();
            assert!(text.contains(says), "{assertion:?}: {text}");
            assert!(!text.contains("secret-part"), "{text}");
        }
        let long = "a".repeat(MAX_USER_ASSERTION_BYTES + 1);
        let error = api().user_assertion(long).build().unwrap_err();
        assert!(error.to_string().contains("64 KiB"), "{error}");
        let error = api().build().unwrap_err();
        assert!(
            error.to_string().contains("no user assertion was given"),
            "{error}"
        );
    }

    #[test]
    fn the_api_proves_itself_with_exactly_one_of_a_secret_a_certificate_and_an_assertion() {
        let neither = OnBehalfOfCredential::builder()
            .tenant_id("tenant-a")
            .client_id("api-client")
            .user_assertion("eyJ.a.b")
            .env(Env::empty())
            .build()
            .unwrap_err();
        assert!(
            neither
                .to_string()
                .contains("no client secret, certificate or client assertion was given"),
            "{neither}"
        );
        let both = api()
            .certificate(b"-----BEGIN CERTIFICATE-----".to_vec())
            .user_assertion("eyJ.a.b")
            .build()
            .unwrap_err();
        assert!(both.to_string().contains("more than one"), "{both}");
        let secret_and_assertion = api()
            .client_assertion(|| async { Ok::<_, std::io::Error>("eyJ.x.y") })
            .user_assertion("eyJ.a.b")
            .build()
            .unwrap_err();
        assert!(
            secret_and_assertion.to_string().contains("more than one"),
            "{secret_and_assertion}"
        );
        let empty = api()
            .client_secret(" ")
            .user_assertion("eyJ.a.b")
            .build()
            .unwrap_err();
        assert!(
            empty.to_string().contains("client secret is empty"),
            "{empty}"
        );
    }

    #[test]
    fn debug_shows_the_app_and_never_the_assertion_or_secret() {
        let builder = api().user_assertion("eyJ.user-assertion-value.sig");
        let credential = builder.clone().build().unwrap();
        for printed in [
            format!("{builder:?}"),
            format!("{credential:?}"),
            format!("{credential:#?}"),
        ] {
            assert!(!printed.contains("user-assertion-value"), "{printed}");
            assert!(!printed.contains("api-secret-value"), "{printed}");
        }
        let printed = format!("{credential:?}");
        assert!(
            printed.contains("api-client") && printed.contains("ClientSecret"),
            "{printed}"
        );
    }
}
