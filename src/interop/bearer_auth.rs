//! [`BearerAuth`]: a reqwest-middleware middleware that puts a bearer token from any
//! [`TokenCredential`] on each request and answers the `401` challenges of continuous access
//! evaluation, Key Vault and Storage.

use std::fmt;
use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

use super::challenge::{self, Ask, Outcome};
use super::middleware_error;
use crate::credential::shared;
use crate::scope::validate_scopes;
use crate::{AccessToken, Error, ErrorKind, TokenCredential, TokenRequestOptions};

const NAME: &str = "BearerAuth";

/// A [`reqwest_middleware::Middleware`] that sends each request with `Authorization: Bearer
/// <token>` from a [`TokenCredential`] — a [`DefaultAzureCredential`](crate::DefaultAzureCredential),
/// one source, a chain or your own — for the scopes it was given, and answers the `401`
/// challenges Azure services send by getting the token they ask for and sending the request
/// once more.
///
/// ```no_run
/// use azure_credentials::{DefaultAzureCredential, interop::BearerAuth};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let auth = BearerAuth::new(
///     DefaultAzureCredential::new()?,
///     ["https://management.azure.com/.default"],
/// )?;
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(auth)
///     .build();
/// let subscriptions = client
///     .get("https://management.azure.com/subscriptions?api-version=2022-12-01")
///     .send()
///     .await?
///     .text()
///     .await?;
/// # let _ = subscriptions; Ok(()) }
/// ```
///
/// # Tokens
///
/// Every request asks the credential, whose [cache](crate::TokenCache) answers at once while
/// the token is fresh and refreshes it in the background before it expires; the middleware
/// keeps no token of its own. The header is marked sensitive, so reqwest never prints it. A
/// request that already carries an `Authorization` header is sent as it is, and its `401`s are
/// left to the caller: the middleware never replaces what the caller set.
///
/// Tokens are asked for with [CAE](TokenRequestOptions::with_enable_cae) on (turn it off with
/// [`with_enable_cae`](Self::with_enable_cae)), since the middleware answers CAE challenges.
///
/// # Challenges
///
/// On a `401` whose `WWW-Authenticate` header holds a Bearer challenge, the request is sent once
/// more, with a new token, when the challenge asks for
///
/// - **claims** (continuous access evaluation: a revoked session, a changed policy):
///   `Bearer error="insufficient_claims", claims="<base64>"` — a token with those claims, for
///   the same scopes (a request with claims always bypasses the cache);
/// - **another tenant or resource** (Key Vault, Storage): `Bearer
///   authorization="https://login.microsoftonline.com/<tenant>", resource="https://vault.azure.net"`
///   (or `authorization_uri=`, `scope=`, `resource_id=`) — a token for that scope in that
///   tenant. The credential decides whether it may get tokens for that tenant (see
///   `additionally_allowed_tenants` on the credentials' builders).
///
/// **Only resources of the request's own domain, or the configured ones, are served**: the
/// challenge's resource must be `https://` and the request's host or a parent domain of it of
/// three labels or more (`https://vault.azure.net` for `myvault.vault.azure.net`; the Key Vault
/// SDKs' rule, without their `azure.com` for any `*.cloudapp.azure.com`), or
/// the challenge must name the resource of a scope this middleware was built with (its tokens go
/// to this server anyway: an Azure Storage account's challenge names
/// `https://storage.azure.com`, outside the account's domain). Otherwise any server the client
/// talks to could ask for, and be sent, a token for another service: a challenge for another
/// resource is refused with an error and no token is requested for it. Turn the check off with
/// [`with_verify_challenge_resource(false)`](Self::with_verify_challenge_resource) only for
/// clients that talk to servers you trust.
///
/// Each request is sent at most twice. Other `401`s (no challenge, a plain `invalid_token`,
/// another scheme, a challenge that cannot be read), and the answer to the second attempt, are
/// returned as they are.
///
/// # Errors
///
/// The middleware's errors are [`reqwest_middleware::Error::Middleware`] holding this crate's
/// [`Error`] (`err.downcast_ref::<azure_credentials::Error>()` on the `anyhow::Error`):
///
/// - the credential's own error when it cannot get a token;
/// - [`InvalidInput`](ErrorKind::InvalidInput) for a plain `http` URL whose host is neither
///   loopback nor link-local (the token would cross the network in clear text), unless
///   [`with_allow_plain_http(true)`](Self::with_allow_plain_http); no token is fetched;
/// - [`Authentication`](ErrorKind::Authentication), status 401, when a challenge would be
///   answered but the request's body is a stream: it cannot be sent twice, so the request is
///   not retried (buffer the body as bytes or a string);
/// - [`Authentication`](ErrorKind::Authentication), status 401, when a challenge asks for a
///   resource outside the request's domain (above).
///
/// Place it after a retry middleware (`.with(retry).with(auth)`), so each attempt gets a fresh
/// token from the cache.
#[derive(Clone)]
pub struct BearerAuth {
    credential: Arc<dyn TokenCredential>,
    scopes: Arc<[String]>,
    options: TokenRequestOptions,
    verify_challenge_resource: bool,
    allow_plain_http: bool,
}

impl BearerAuth {
    /// A middleware asking `credential` for tokens for `scopes` (usually one,
    /// `"<resource>/.default"`); an `Arc<dyn TokenCredential>` is shared as it is.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when no scope is given or a scope has characters other than
    /// ASCII letters, digits and `. - _ : /`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use azure_credentials::interop::BearerAuth;
    /// use azure_credentials::{DefaultAzureCredential, ErrorKind, TokenCredential};
    ///
    /// let credential: Arc<dyn TokenCredential> = Arc::new(DefaultAzureCredential::new()?);
    /// let vault = BearerAuth::new(credential.clone(), ["https://vault.azure.net/.default"])?;
    ///
    /// let error = BearerAuth::new(credential, Vec::<String>::new()).unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn new(
        credential: impl TokenCredential + 'static,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, Error> {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        validate_scopes(NAME, &scopes)?;
        Ok(BearerAuth {
            credential: shared(credential),
            scopes: scopes.into(),
            options: TokenRequestOptions::default().with_enable_cae(true),
            verify_challenge_resource: true,
            allow_plain_http: false,
        })
    }

    /// Whether tokens are asked for with CAE on (default: on). Turn it off for a credential
    /// whose tokens must not be CAE tokens; claims challenges are still answered.
    pub fn with_enable_cae(mut self, enable: bool) -> Self {
        self.options = self.options.with_enable_cae(enable);
        self
    }

    /// The tenant tokens are asked for in (default: the credential's own), for a resource in
    /// another tenant. Without it such a resource (a Key Vault, say) answers each request with
    /// a challenge naming its tenant, which the middleware answers at the cost of a second
    /// round trip per request; the credential must allow the tenant either way (see
    /// `additionally_allowed_tenants` on the credentials' builders), and checks it.
    pub fn with_tenant_id(mut self, tenant: impl Into<String>) -> Self {
        self.options = self.options.with_tenant_id(tenant);
        self
    }

    /// Whether a challenge's resource must be in the request's domain (default: yes). Turn it
    /// off only for clients that talk to servers you trust: a server may then ask for a token
    /// for any resource the credential can reach, and receive it.
    pub fn with_verify_challenge_resource(mut self, verify: bool) -> Self {
        self.verify_challenge_resource = verify;
        self
    }

    /// Whether a token may be sent over plain `http` to a host that is neither loopback nor
    /// link-local (default: no — such a request fails before any token is fetched, as the token
    /// would cross the network in clear text). Turn it on only for a network you trust end to
    /// end (a TLS-terminating sidecar, a test).
    pub fn with_allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// The wrapped credential.
    pub fn credential(&self) -> &Arc<dyn TokenCredential> {
        &self.credential
    }

    /// The scopes asked for (unless a challenge names another).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// A token for `scopes` with `options` (no allocation for the usual single scope).
    async fn token(
        &self,
        scopes: &[String],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken, Error> {
        match scopes {
            [scope] => {
                self.credential
                    .get_token(&[scope.as_str()], Some(options))
                    .await
            }
            scopes => {
                let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
                self.credential.get_token(&scopes, Some(options)).await
            }
        }
    }

    /// The token a challenge asks for: its scope (else the configured ones), its tenant, its
    /// claims.
    async fn answer(&self, ask: &Ask) -> Result<AccessToken, Error> {
        let mut options = self.options.clone();
        if let Some(tenant) = &ask.tenant {
            options = options.with_tenant_id(tenant.as_str());
        }
        if let Some(claims) = &ask.claims {
            options = options.with_claims(claims.as_str());
        }
        let scopes = match &ask.scope {
            Some(scope) => std::slice::from_ref(scope),
            None => &self.scopes,
        };
        self.token(scopes, &options).await
    }
}

impl fmt::Debug for BearerAuth {
    // The credential's own Debug shows identities and endpoints, never a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth")
            .field("credential", &self.credential)
            .field("scopes", &self.scopes)
            .field("tenant_id", &self.options.tenant_id())
            .field("enable_cae", &self.options.enable_cae())
            .field("verify_challenge_resource", &self.verify_challenge_resource)
            .field("allow_plain_http", &self.allow_plain_http)
            .finish()
    }
}

/// Sets `Authorization: Bearer <token>`, marked sensitive.
fn authorize(request: &mut Request, token: &AccessToken) -> Result<(), Error> {
    let mut value =
        HeaderValue::try_from(format!("Bearer {}", token.token().expose())).map_err(|_| {
            Error::new(
                ErrorKind::Other,
                NAME,
                "the credential's token has characters an HTTP header cannot carry",
            )
        })?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(())
}

#[async_trait::async_trait]
impl Middleware for BearerAuth {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        if request.headers().contains_key(AUTHORIZATION) {
            return next.run(request, extensions).await;
        }
        super::refuse_plain_http(request.url(), self.allow_plain_http, NAME, "a bearer token")
            .map_err(middleware_error)?;
        let token = self
            .token(&self.scopes, &self.options)
            .await
            .map_err(middleware_error)?;
        authorize(&mut request, &token).map_err(middleware_error)?;
        // Taken before sending: the request is consumed. None for a streaming body.
        let again = request.try_clone();
        let host = request.url().host_str().unwrap_or_default().to_owned();
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenges = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(HeaderValue::as_bytes);
        let ask = match challenge::read(
            challenges,
            &host,
            &self.scopes,
            self.verify_challenge_resource,
        ) {
            Ok(Outcome::Answer(ask)) => ask,
            Ok(Outcome::NotAnswerable) => return Ok(response),
            Ok(Outcome::ForeignResource { resource }) => {
                tracing::warn!(
                    middleware = NAME,
                    host = %crate::scrub::line(&host),
                    resource = %resource,
                    "refused a challenge for a resource outside the request's domain"
                );
                return Err(middleware_error(foreign_resource(&host, &resource)));
            }
            Err(error) => {
                tracing::debug!(
                    middleware = NAME,
                    host = %crate::scrub::line(&host),
                    %error,
                    "left a 401 as it is: its challenge cannot be read"
                );
                return Ok(response);
            }
        };
        let Some(mut again) = again else {
            return Err(middleware_error(not_resendable(&host, &ask)));
        };
        tracing::debug!(
            middleware = NAME,
            host = %crate::scrub::line(&host),
            scope = ask.scope.as_deref(),
            tenant = ask.tenant.as_deref(),
            claims = ask.claims.is_some(),
            "answering a 401 challenge with a new token"
        );
        let token = self.answer(&ask).await.map_err(middleware_error)?;
        authorize(&mut again, &token).map_err(middleware_error)?;
        next.run(again, extensions).await
    }
}

fn foreign_resource(host: &str, resource: &str) -> Error {
    Error::authentication(
        NAME,
        format!(
            "{} answered 401 with a challenge for a token for {resource}, which is neither in its domain nor a resource this middleware was built for, so no token was requested for it",
            crate::scrub::line(host)
        ),
    )
    .with_status(401)
    .with_fix("if that server really is served by that resource, configure its scope yourself or turn the check off with BearerAuth::with_verify_challenge_resource(false)")
}

fn not_resendable(host: &str, ask: &Ask) -> Error {
    let what = match (&ask.claims, &ask.scope) {
        (Some(_), _) => "a claims challenge (CAE)",
        (None, _) => "a challenge naming its tenant and resource",
    };
    Error::authentication(
        NAME,
        format!(
            "{} answered 401 with {what}, but the request was not sent again: its body is a stream, which cannot be sent twice",
            crate::scrub::line(host)
        ),
    )
    .with_status(401)
    .with_fix("give the request a buffered body (bytes or a string) so it can be retried")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_header_is_sensitive_and_never_printed() {
        let token = AccessToken::new("eyJ-secret-token", datetime!(2030-01-01 0:00 UTC));
        let url = url::Url::parse("https://management.azure.com/subscriptions").unwrap();
        let mut request = Request::new(reqwest::Method::GET, url);
        authorize(&mut request, &token).unwrap();
        let header = &request.headers()[AUTHORIZATION];
        assert!(header.is_sensitive());
        assert_eq!(header.as_bytes(), b"Bearer eyJ-secret-token");
        assert!(!format!("{request:?}").contains("eyJ-secret-token"));
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_an_error_without_the_token() {
        let token = AccessToken::new("eyJ-secret\ntoken", datetime!(2030-01-01 0:00 UTC));
        let url = url::Url::parse("https://management.azure.com/").unwrap();
        let mut request = Request::new(reqwest::Method::GET, url);
        let error = authorize(&mut request, &token).unwrap_err();
        assert!(!error.to_string().contains("eyJ-secret"));
        assert!(request.headers().get(AUTHORIZATION).is_none());
    }
}
