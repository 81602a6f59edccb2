//! [`EnvironmentCredential`]: a service principal described by `AZURE_*` variables.

use std::fmt;

use crate::context::seam_setters;
use crate::entra::{
    ClientCertificate, ClientCertificateCredential, ClientSecretCredential, EntraOptions,
    entra_setters, options::missing_ids,
};
use crate::env_vars::{
    AZURE_CLIENT_CERTIFICATE_PASSWORD, AZURE_CLIENT_CERTIFICATE_PATH, AZURE_CLIENT_ID,
    AZURE_CLIENT_SECRET, AZURE_CLIENT_SEND_CERTIFICATE_CHAIN, AZURE_PASSWORD, AZURE_TENANT_ID,
    AZURE_USERNAME,
};
use crate::scope::validate_tenant_id;
use crate::{Context, Error, Secret, TokenCredential, TokenFuture, TokenRequestOptions};

pub(crate) const NAME: &str = "EnvironmentCredential";

/// A service principal configured by environment variables: a client secret, or else a
/// client certificate.
///
/// | variable | meaning |
/// | --- | --- |
/// | `AZURE_TENANT_ID` | the tenant (directory) id |
/// | `AZURE_CLIENT_ID` | the application (client) id |
/// | `AZURE_CLIENT_SECRET` | a client secret (used first when set) |
/// | `AZURE_CLIENT_CERTIFICATE_PATH` | else a PEM file (or, with the feature `pkcs12`, a PKCS#12 file) with the certificate and its private key |
/// | `AZURE_CLIENT_CERTIFICATE_PASSWORD` | the PKCS#12 file's password, if it has one |
/// | `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN` | `1` or `true`: send the certificate chain (`x5c`) |
/// | `AZURE_AUTHORITY_HOST` | the authority host (default: the public cloud) |
/// | `AZURE_ADDITIONALLY_ALLOWED_TENANTS` | other tenants tokens may be requested for, `;`-separated, `*` for any |
///
/// Building fails with [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) when neither
/// a secret nor a certificate is configured (a credential chain moves on), and with
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the configuration is
/// half-set or invalid (a secret without a tenant, an unreadable certificate...): the
/// variables say this source was meant, so a chain must stop there. Username / password
/// authentication (`AZURE_USERNAME`, `AZURE_PASSWORD`) is deprecated and not supported; those
/// variables alone are refused with a message saying so.
///
/// Errors and tokens name `EnvironmentCredential`.
///
/// ```no_run
/// use azure_credentials::{EnvironmentCredential, TokenCredential};
///
/// # async fn run() -> Result<(), azure_credentials::Error> {
/// let credential = EnvironmentCredential::new()?;
/// let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct EnvironmentCredential {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Secret(ClientSecretCredential),
    Certificate(ClientCertificateCredential),
}

impl EnvironmentCredential {
    /// A credential configured from the process environment (the variables in the table above).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) when neither a secret nor a certificate is configured, [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the configuration is
    /// half-set or invalid: see [`EnvironmentCredentialBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use azure_credentials::EnvironmentCredential;
    ///
    /// let credential = EnvironmentCredential::new()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn new() -> Result<Self, Error> {
        EnvironmentCredential::builder().build()
    }

    /// Options for an environment credential: where the variables and files come from, and how it
    /// talks to Entra ID. Validated by [`build`](EnvironmentCredentialBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::EnvironmentCredential;
    /// use azure_credentials::system::Env;
    ///
    /// let credential = EnvironmentCredential::builder()
    ///     .env(Env::from_pairs([
    ///         ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
    ///         ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
    ///         ("AZURE_CLIENT_SECRET", "value from the app registration"),
    ///     ]))
    ///     .build()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn builder() -> EnvironmentCredentialBuilder {
        EnvironmentCredentialBuilder::default()
    }
}

impl TokenCredential for EnvironmentCredential {
    fn get_token<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: Option<&'a TokenRequestOptions>,
    ) -> TokenFuture<'a> {
        match &self.inner {
            Inner::Secret(credential) => credential.get_token(scopes, options),
            Inner::Certificate(credential) => credential.get_token(scopes, options),
        }
    }
}

impl fmt::Debug for EnvironmentCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple(NAME);
        match &self.inner {
            Inner::Secret(credential) => d.field(credential),
            Inner::Certificate(credential) => d.field(credential),
        };
        d.finish()
    }
}

/// What the variables configure.
enum Chosen {
    Secret(String),
    /// The certificate's path.
    Certificate(String),
}

/// Options of an [`EnvironmentCredential`]; see [`EnvironmentCredential::builder`].
#[derive(Debug, Clone, Default)]
pub struct EnvironmentCredentialBuilder {
    context: Context,
    options: EntraOptions,
}

impl EnvironmentCredentialBuilder {
    entra_setters!(additionally_allowed_tenants, retry_policy);

    seam_setters!(
        env = "The `AZURE_*` variables are read there.",
        fs = "The certificate file is read there.",
        http,
        cache,
    );

    /// Reads the variables (and the certificate, if that is what they name) and builds the
    /// credential.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) when neither `AZURE_CLIENT_SECRET` nor `AZURE_CLIENT_CERTIFICATE_PATH` is set (also
    ///   when only the tenant and client ids are, which other sources use too): a chain moves on.
    /// - [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the configuration is half-set or invalid (a secret without a tenant id, an
    ///   unreadable certificate, `AZURE_USERNAME` / `AZURE_PASSWORD`, which are not supported): the
    ///   variables say this source was meant, so a chain stops.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{EnvironmentCredential, ErrorKind};
    /// use azure_credentials::system::Env;
    ///
    /// let nothing = EnvironmentCredential::builder().env(Env::empty()).build();
    /// assert_eq!(nothing.unwrap_err().kind(), ErrorKind::Unavailable);
    ///
    /// let half_set = EnvironmentCredential::builder()
    ///     .env(Env::from_pairs([("AZURE_CLIENT_SECRET", "a secret")]))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(half_set.kind(), ErrorKind::InvalidInput);
    /// assert!(!half_set.to_string().contains("a secret"));
    /// ```
    pub fn build(self) -> Result<EnvironmentCredential, Error> {
        let env = self.context.env();
        let tenant = env.var_non_empty(AZURE_TENANT_ID);
        let client = env.var_non_empty(AZURE_CLIENT_ID);
        let secret = env.var_non_empty(AZURE_CLIENT_SECRET);
        let certificate = env.var_non_empty(AZURE_CLIENT_CERTIFICATE_PATH);
        let user_flow = env.is_set(AZURE_USERNAME) || env.is_set(AZURE_PASSWORD);

        if secret.is_some() && certificate.is_some() {
            tracing::debug!(
                credential = NAME,
                "{AZURE_CLIENT_SECRET} and {AZURE_CLIENT_CERTIFICATE_PATH} are both set; using the client secret"
            );
        }
        let (source, chosen) = match (secret, certificate) {
            (Some(secret), _) => (AZURE_CLIENT_SECRET, Chosen::Secret(secret)),
            (None, Some(path)) => (AZURE_CLIENT_CERTIFICATE_PATH, Chosen::Certificate(path)),
            (None, None) if user_flow => {
                return Err(Error::invalid_input(
                    NAME,
                    format!("{AZURE_USERNAME} / {AZURE_PASSWORD} are set, but username and password authentication is not supported (it is deprecated: it cannot do multi-factor authentication)"),
                )
                .with_fix(format!(
                    "use a service principal ({AZURE_CLIENT_SECRET} or {AZURE_CLIENT_CERTIFICATE_PATH}) or a developer sign-in (az login), and unset {AZURE_USERNAME} and {AZURE_PASSWORD}"
                )));
            }
            (None, None) => {
                let message = if tenant.is_some() && client.is_some() {
                    format!(
                        "not configured: {AZURE_TENANT_ID} and {AZURE_CLIENT_ID} are set, but neither {AZURE_CLIENT_SECRET} nor {AZURE_CLIENT_CERTIFICATE_PATH} is"
                    )
                } else {
                    format!(
                        "not configured: {AZURE_CLIENT_SECRET} and {AZURE_CLIENT_CERTIFICATE_PATH} are not set"
                    )
                };
                return Err(Error::unavailable(NAME, message).with_fix(format!(
                    "to use a service principal, set {AZURE_TENANT_ID}, {AZURE_CLIENT_ID} and {AZURE_CLIENT_SECRET} or {AZURE_CLIENT_CERTIFICATE_PATH}"
                )));
            }
        };
        if let Some((missing, verb)) = missing_ids(tenant.is_none(), client.is_none()) {
            let what = match (tenant.is_none(), client.is_none()) {
                (false, _) => "application (client) id",
                (_, false) => "tenant (directory) id",
                _ => "tenant id and client id",
            };
            return Err(Error::invalid_input(
                NAME,
                format!("{source} is set but {missing} {verb} not"),
            )
            .with_fix(format!("set {missing} to the app registration's {what}")));
        }
        if let Some(tenant) = &tenant {
            validate_tenant_id(NAME, tenant).map_err(|e| {
                e.with_fix(format!(
                    "{AZURE_TENANT_ID} must be a tenant id (a GUID) or a domain name such as contoso.onmicrosoft.com"
                ))
            })?;
        }
        if user_flow {
            tracing::debug!(
                credential = NAME,
                "ignoring {AZURE_USERNAME} / {AZURE_PASSWORD}: username and password authentication is not supported"
            );
        }
        let mut options = self.options;
        options.tenant_id = tenant;
        options.client_id = client;
        let inner = match chosen {
            Chosen::Secret(secret) => Inner::Secret(ClientSecretCredential::build_named(
                &options,
                &self.context,
                Secret::new(secret),
                NAME,
            )?),
            Chosen::Certificate(path) => {
                let password = env
                    .var(AZURE_CLIENT_CERTIFICATE_PASSWORD)
                    .filter(|p| !p.is_empty())
                    .map(Secret::new);
                let send_chain = env
                    .var_non_empty(AZURE_CLIENT_SEND_CERTIFICATE_CHAIN)
                    .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
                let fs = self.context.fs();
                let certificate =
                    ClientCertificate::read(NAME, &fs, path.as_ref(), password.as_ref()).map_err(
                        |e| {
                            let fix = e.fix().unwrap_or_default().to_owned();
                            e.with_fix(format!("{fix} ({AZURE_CLIENT_CERTIFICATE_PATH})"))
                        },
                    )?;
                Inner::Certificate(ClientCertificateCredential::build_named(
                    &options,
                    &self.context,
                    certificate,
                    send_chain,
                    NAME,
                )?)
            }
        };
        Ok(EnvironmentCredential { inner })
    }
}
