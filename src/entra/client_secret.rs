//! [`ClientSecretCredential`]: a service principal with a client secret.

use async_trait::async_trait;

use super::{ClientProof, EntraClient, EntraOptions, entra_debug, entra_setters};
use crate::context::seam_setters;
use crate::credential::delegate_token_credential;
use crate::setters::{debug_fields, setters};
use crate::{AccessToken, CachedCredential, Context, Error, Secret, TokenFetcher, TokenRequest};

const NAME: &str = "ClientSecretCredential";

/// A service principal (an app registration) that authenticates with a client secret, through
/// the Microsoft Entra ID v2 token endpoint.
///
/// ```no_run
/// use azure_credentials::{ClientSecretCredential, TokenCredential};
///
/// # async fn run() -> Result<(), azure_credentials::Error> {
/// let credential = ClientSecretCredential::builder()
///     .tenant_id("00000000-0000-0000-0000-000000000000")
///     .client_id("00000000-0000-0000-0000-000000000001")
///     .secret("value from the app registration")
///     .build()?;
/// let token = credential.get_token(&["https://vault.azure.net/.default"], None).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
///
/// The authority host comes from the builder, else `AZURE_AUTHORITY_HOST`, else the public
/// cloud; tenants other than its own may be requested when listed in
/// [`additionally_allowed_tenants`](ClientSecretCredentialBuilder::additionally_allowed_tenants)
/// (else `AZURE_ADDITIONALLY_ALLOWED_TENANTS`; `*` allows any). Tokens are cached in
/// [`TokenCache::shared`](crate::TokenCache::shared) unless the builder names another cache.
#[derive(Clone)]
pub struct ClientSecretCredential {
    credential: CachedCredential,
    client: EntraClient,
}

impl ClientSecretCredential {
    /// A credential for `client_id` in `tenant_id` with `secret`, other options from the
    /// environment and the defaults.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when an id or the secret is empty or invalid, or `AZURE_AUTHORITY_HOST` is not
    /// `https`: see [`ClientSecretCredentialBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use azure_credentials::ClientSecretCredential;
    ///
    /// let credential = ClientSecretCredential::new(
    ///     "contoso.onmicrosoft.com",
    ///     "00000000-0000-0000-0000-000000000001",
    ///     std::env::var("MY_APP_SECRET")?,
    /// )?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        secret: impl Into<Secret>,
    ) -> Result<Self, Error> {
        ClientSecretCredential::builder()
            .tenant_id(tenant_id)
            .client_id(client_id)
            .secret(secret)
            .build()
    }

    /// Options for a client secret credential, validated by
    /// [`build`](ClientSecretCredentialBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{ClientSecretCredential, authority_hosts};
    ///
    /// let credential = ClientSecretCredential::builder()
    ///     .tenant_id("contoso.onmicrosoft.com")
    ///     .client_id("00000000-0000-0000-0000-000000000001")
    ///     .secret("value from the app registration")
    ///     .authority_host(authority_hosts::AZURE_GOVERNMENT)
    ///     .build()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn builder() -> ClientSecretCredentialBuilder {
        ClientSecretCredentialBuilder::default()
    }

    /// Builds the credential under another name (`EnvironmentCredential`), so its errors and
    /// tokens say which credential the user configured.
    pub(crate) fn build_named(
        options: &EntraOptions,
        context: &Context,
        secret: Secret,
        name: &'static str,
    ) -> Result<Self, Error> {
        if secret.expose().trim().is_empty() {
            return Err(Error::invalid_input(name, "the client secret is empty")
                .with_fix("set the client secret's value from the app registration"));
        }
        let client = options.client(name, context)?;
        let identity = client
            .cache_identity(name)
            .with_secret(secret.expose().as_bytes());
        let fetcher = options.persisted_app(
            name,
            &client,
            context,
            ClientSecretFetcher {
                client: client.clone(),
                secret,
            },
        )?;
        Ok(ClientSecretCredential {
            credential: context.cache().credential(identity, fetcher),
            client,
        })
    }
}

delegate_token_credential!(ClientSecretCredential => credential);

entra_debug!(ClientSecretCredential(client) {});

/// Options of a [`ClientSecretCredential`]; see [`ClientSecretCredential::builder`].
#[derive(Clone, Default)]
pub struct ClientSecretCredentialBuilder {
    context: Context,
    options: EntraOptions,
    secret: Option<Secret>,
}

impl ClientSecretCredentialBuilder {
    entra_setters!(
        tenant_id = "Required.",
        client_id = "Required.",
        authority_host,
        additionally_allowed_tenants,
        retry_policy,
        persistence,
    );

    setters! {
        /// The client secret's value. Required.
        secret(secret: impl Into<Secret>) => Some(secret);
    }

    seam_setters!(
        env = "`AZURE_AUTHORITY_HOST`, `AZURE_ADDITIONALLY_ALLOWED_TENANTS` and \
               `AZURE_IDENTITY_DISABLE_MULTITENANTAUTH` are read there.",
        http,
        cache,
    );

    /// Validates the options and builds the credential. Nothing is sent before the first token is
    /// asked for.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the tenant id, client id or secret is missing or invalid, or the authority host
    /// is not `https` (plain `http` only to a loopback host).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{ClientSecretCredential, ErrorKind};
    ///
    /// let error = ClientSecretCredential::builder()
    ///     .tenant_id("contoso.onmicrosoft.com")
    ///     .client_id("00000000-0000-0000-0000-000000000001")
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// assert!(error.to_string().contains("no client secret was given"));
    /// ```
    pub fn build(self) -> Result<ClientSecretCredential, Error> {
        let Some(secret) = self.secret else {
            return Err(Error::invalid_input(NAME, "no client secret was given")
                .with_fix("set the builder's secret"));
        };
        ClientSecretCredential::build_named(&self.options, &self.context, secret, NAME)
    }
}

debug_fields!(ClientSecretCredentialBuilder {
    options,
    secret,
    ..
});

#[derive(Debug)]
struct ClientSecretFetcher {
    client: EntraClient,
    secret: Secret,
}

#[async_trait]
impl TokenFetcher for ClientSecretFetcher {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        self.client
            .request_token(request, &|_, _| {
                Ok(ClientProof::Secret(self.secret.clone()))
            })
            .await
    }

    fn resolve_tenant<'a>(&'a self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        self.client.resolve_tenant(requested)
    }
}
