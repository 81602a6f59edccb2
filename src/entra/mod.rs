//! The Microsoft Entra ID v2 token endpoint and the credentials that talk to it.
//!
//! [`EntraClient`] is the one piece of code that speaks to the token endpoint: it builds the
//! form body (`client_id`, the secret or the assertion, the [`Grant`], `scope`, `claims`),
//! sends it through the HTTP seam with retries on 429 and 5xx, parses the token or the error,
//! and applies the multi-tenant rules. The credentials only say how they prove who they are
//! and, for on-behalf-of, whose token they exchange.

mod assertion;
pub(crate) mod assertion_source;
pub mod authority_hosts;
mod azure_pipelines;
mod client_assertion;
mod client_certificate;
mod client_secret;
pub(crate) mod environment;
mod github_actions;
mod on_behalf_of;
pub(crate) mod options;
pub(crate) mod response;
#[cfg(feature = "user-sign-in")]
pub(crate) mod user;
pub(crate) mod workload_identity;

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use url::{Host, Url};

use crate::scope::{quoted, validate_scopes};
use crate::system::{Clock, Http, HttpRequest, HttpResponse, RetryPolicy};
use crate::tenant::TenantPolicy;
use crate::{AccessToken, CacheIdentity, Error, Secret, TokenRequest};
use response::GrantKind;

pub use azure_pipelines::{AzurePipelinesCredential, AzurePipelinesCredentialBuilder};
pub use client_assertion::{ClientAssertionCredential, ClientAssertionCredentialBuilder};
pub(crate) use client_certificate::{CertificateSource, ClientCertificate};
pub use client_certificate::{ClientCertificateCredential, ClientCertificateCredentialBuilder};
pub use client_secret::{ClientSecretCredential, ClientSecretCredentialBuilder};
pub use environment::{EnvironmentCredential, EnvironmentCredentialBuilder};
pub use github_actions::{GitHubActionsCredential, GitHubActionsCredentialBuilder};
pub use on_behalf_of::{OnBehalfOfCredential, OnBehalfOfCredentialBuilder};
pub(crate) use options::{EntraOptions, entra_setters};
#[cfg(feature = "user-sign-in")]
pub use user::{
    AuthenticationRecord, AuthorizationCodeCredential, AuthorizationCodeCredentialBuilder,
    BrowserCommand, DEVELOPER_CLIENT_ID, DeviceCodeCredential, DeviceCodeCredentialBuilder,
    DeviceCodeInfo, InteractiveBrowserCredential, InteractiveBrowserCredentialBuilder,
};
pub use workload_identity::{WorkloadIdentityCredential, WorkloadIdentityCredentialBuilder};

/// The tenant of Active Directory Federation Services authorities.
const ADFS: &str = "adfs";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The `grant_type` of the on-behalf-of flow (RFC 7523's JWT bearer grant).
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The `grant_type` of the device code flow's polls.
#[cfg(feature = "user-sign-in")]
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The OpenID Connect scopes every user grant adds: a refresh token, an id token, the profile.
#[cfg(feature = "user-sign-in")]
const USER_SCOPES: [&str; 3] = ["offline_access", "openid", "profile"];
/// The client capability that asks for CAE tokens.
const CAE_CLAIMS: &str = r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#;

/// How a token request proves the client (a secret, an assertion signed for the endpoint and
/// time, none): called once per request. Taken as `&dyn` so that the grant's code is compiled
/// once, not once per credential.
pub(crate) type Proof<'a> =
    dyn Fn(&Url, OffsetDateTime) -> Result<ClientProof, Error> + Send + Sync + 'a;

/// How a credential proves who it is in the token request.
pub(crate) enum ClientProof {
    /// Nothing: a public client (the user credentials of a desktop or command-line app).
    #[cfg(feature = "user-sign-in")]
    Public,
    /// `client_secret`.
    Secret(Secret),
    /// `client_assertion` (a signed JWT, or a federated token).
    Assertion(Secret),
}

/// What a token request asks for; the client's [`ClientProof`] goes with either.
#[derive(Clone, Copy)]
pub(crate) enum Grant<'a> {
    /// `grant_type=client_credentials`: a token for the application itself.
    ClientCredentials,
    /// The on-behalf-of flow: `grant_type` [`JWT_BEARER_GRANT`], `assertion` = the access token
    /// the API was called with, `requested_token_use=on_behalf_of`: a token for that token's
    /// user.
    OnBehalfOf {
        /// The caller's access token.
        user_assertion: &'a Secret,
    },
    /// The device code flow's poll: `grant_type` [`DEVICE_CODE_GRANT`] with the `device_code`.
    #[cfg(feature = "user-sign-in")]
    DeviceCode {
        /// The code the device code endpoint returned.
        device_code: &'a Secret,
    },
    /// Redeeming an authorization code the user's sign-in sent to `redirect_uri`, with the PKCE
    /// verifier when the sign-in sent a challenge.
    #[cfg(feature = "user-sign-in")]
    AuthorizationCode {
        code: &'a Secret,
        redirect_uri: &'a str,
        code_verifier: Option<&'a Secret>,
    },
    /// A new access token from a user's refresh token.
    #[cfg(feature = "user-sign-in")]
    RefreshToken { refresh_token: &'a Secret },
}

impl Grant<'_> {
    fn kind(self) -> GrantKind {
        match self {
            Grant::ClientCredentials => GrantKind::App,
            Grant::OnBehalfOf { .. } => GrantKind::OnBehalfOf,
            #[cfg(feature = "user-sign-in")]
            Grant::DeviceCode { .. }
            | Grant::AuthorizationCode { .. }
            | Grant::RefreshToken { .. } => GrantKind::User,
        }
    }

    /// For log lines.
    fn name(self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::OnBehalfOf { .. } => "on_behalf_of",
            #[cfg(feature = "user-sign-in")]
            Grant::DeviceCode { .. } => "device_code",
            #[cfg(feature = "user-sign-in")]
            Grant::AuthorizationCode { .. } => "authorization_code",
            #[cfg(feature = "user-sign-in")]
            Grant::RefreshToken { .. } => "refresh_token",
        }
    }
}

/// Parses an authority host: `https://host[:port][/path]`, or plain `http` for loopback hosts
/// only (tests and local emulators). A value without a scheme is taken as `https://`; trailing
/// slashes are dropped.
pub(crate) fn parse_authority(
    credential: &'static str,
    raw: &str,
    what: &str,
) -> Result<Url, Error> {
    let trimmed = raw.trim();
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let invalid = |why: &str| {
        Error::invalid_input(
            credential,
            format!("{what} {} is not a valid authority: {why}", quoted(raw)),
        )
        .with_fix(
            "use an https URL such as https://login.microsoftonline.com (public cloud), \
             https://login.microsoftonline.us (US Government) or https://login.chinacloudapi.cn (China)",
        )
    };
    let url = Url::parse(&with_scheme).map_err(|_| invalid("not a URL"))?;
    let loopback = match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => return Err(invalid("it has no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(invalid("plain http is allowed for loopback hosts only")),
        _ => return Err(invalid("the scheme must be https")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not have a query or a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not hold user information"));
    }
    let mut url = url;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// What holds an Entra credential's [`EntraClient`]: the client itself, or the
/// [`ClientAssertionCredential`] a federated credential wraps. For [`entra_debug!`].
pub(crate) trait HasEntraClient {
    fn entra_client(&self) -> &EntraClient;
}

impl HasEntraClient for EntraClient {
    fn entra_client(&self) -> &EntraClient {
        self
    }
}

/// The `Debug` of an Entra credential: its type's name, the tenant, client id and authority
/// of the client in field `client` ([`EntraClient::debug_struct`]), then only the fields named,
/// as [`debug_fields!`](crate::setters::debug_fields) names them:
/// `entra_debug!(Type(client) { a, label: field, .. })`.
macro_rules! entra_debug {
    (@field $this:ident $label:ident) => { &$this.$label };
    (@field $this:ident $label:ident $field:ident) => { &$this.$field };
    ($ty:ident($client:ident) { $($label:ident $(: $field:ident)?),+ , .. }) => {
        $crate::entra::entra_debug!(
            @impl $ty $client finish_non_exhaustive $($label $(: $field)?),+
        );
    };
    ($ty:ident($client:ident) { $($label:ident $(: $field:ident)?),* $(,)? }) => {
        $crate::entra::entra_debug!(@impl $ty $client finish $($label $(: $field)?),*);
    };
    (@impl $ty:ident $client:ident $finish:ident $($label:ident $(: $field:ident)?),*) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                $crate::entra::HasEntraClient::entra_client(&self.$client)
                    .debug_struct(f, stringify!($ty))
                    $(.field(
                        stringify!($label),
                        $crate::entra::entra_debug!(@field self $label $($field)?),
                    ))*
                    .$finish()
            }
        }
    };
}
pub(crate) use entra_debug;

/// One Entra ID v2 token endpoint client, configured for one application.
#[derive(Clone)]
pub(crate) struct EntraClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    credential: &'static str,
    tenant_id: String,
    client_id: Arc<str>,
    authority: Url,
    tenants: TenantPolicy,
    http: Http,
    retry: RetryPolicy,
    clock: Clock,
}

impl EntraClient {
    pub(crate) fn credential(&self) -> &'static str {
        self.inner.credential
    }

    /// The cache identity of a credential of this client: who the tokens are for (authority,
    /// tenant, client id), for the credential to add what proves the right to them.
    pub(crate) fn cache_identity(&self, credential: &'static str) -> CacheIdentity {
        CacheIdentity::new(credential)
            .with("authority", self.authority())
            .with("tenant", self.tenant_id().to_ascii_lowercase())
            .with("client_id", self.client_id())
    }

    /// The start of an Entra credential's `Debug`: `name` with the tenant, client id and
    /// authority (never a secret), for the credential to add its own fields to.
    pub(crate) fn debug_struct<'a, 'b>(
        &self,
        f: &'a mut fmt::Formatter<'b>,
        name: &str,
    ) -> fmt::DebugStruct<'a, 'b> {
        let mut d = f.debug_struct(name);
        d.field("tenant_id", &self.tenant_id())
            .field("client_id", &self.client_id())
            .field("authority", &self.authority());
        d
    }

    pub(crate) fn tenant_id(&self) -> &str {
        &self.inner.tenant_id
    }

    /// The time on the client's clock.
    #[cfg(feature = "user-sign-in")]
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The authority's host and port as MSAL names it (its `environment`):
    /// `login.microsoftonline.com`, `127.0.0.1:8400`.
    #[cfg(any(feature = "user-sign-in", feature = "persistence"))]
    pub(crate) fn authority_host_name(&self) -> String {
        let url = &self.inner.authority;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        }
    }

    /// The authority host, as `scheme://host[:port][/path]`.
    pub(crate) fn authority(&self) -> &str {
        self.inner.authority.as_str().trim_end_matches('/')
    }

    /// The HTTP client.
    #[cfg(test)]
    pub(crate) fn http(&self) -> &Http {
        &self.inner.http
    }

    /// Whether the configured tenant is ADFS (assertions then use RS256 and a SHA-1 thumbprint).
    pub(crate) fn is_adfs(&self) -> bool {
        self.inner.tenant_id.eq_ignore_ascii_case(ADFS)
    }

    /// The tenant rules (`resolve_tenant` of [`crate::TokenFetcher`]): `Ok(None)` for the
    /// configured tenant, `Ok(Some(t))` for another allowed one, an error for a refused one.
    pub(crate) fn resolve_tenant<'a>(&self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        let inner = &*self.inner;
        if self.is_adfs() && !requested.eq_ignore_ascii_case(ADFS) {
            return Err(Error::invalid_input(
                inner.credential,
                format!("ADFS does not support tenants: tenant {} was requested, and this credential's tenant is \"adfs\"", quoted(requested)),
            )
            .with_fix("request tokens without a tenant id"));
        }
        inner.tenants.resolve(requested)
    }

    /// The token endpoint for `tenant`: `{authority}/{tenant}/oauth2/v2.0/token`, or ADFS's
    /// `{authority}/adfs/oauth2/token`.
    pub(crate) fn token_endpoint(&self, tenant: &str) -> Result<Url, Error> {
        let authority = self.authority();
        let raw = if tenant.eq_ignore_ascii_case(ADFS) {
            format!("{authority}/adfs/oauth2/token")
        } else {
            format!("{authority}/{tenant}/oauth2/v2.0/token")
        };
        // The authority and the tenant were validated, so this cannot fail in practice.
        Url::parse(&raw)
            .map_err(|_| Error::invalid_input(self.inner.credential, "invalid token endpoint URL"))
    }

    /// The endpoint `{authority}/{tenant}/oauth2/v2.0/{path}` of a user sign-in
    /// (`devicecode`, `authorize`). ADFS has none of them here.
    #[cfg(feature = "user-sign-in")]
    pub(crate) fn user_endpoint(&self, tenant: &str, path: &str) -> Result<Url, Error> {
        if tenant.eq_ignore_ascii_case(ADFS) {
            return Err(Error::invalid_input(
                self.inner.credential,
                "user sign-in through ADFS is not supported",
            )
            .with_fix("use a Microsoft Entra ID tenant"));
        }
        Url::parse(&format!("{}/{tenant}/oauth2/v2.0/{path}", self.authority()))
            .map_err(|_| Error::invalid_input(self.inner.credential, "invalid endpoint URL"))
    }

    /// Requests a token with the client-credentials grant. `proof` makes the credential's proof
    /// of identity for the token endpoint (an assertion's audience) at the given time.
    pub(crate) async fn request_token(
        &self,
        request: &TokenRequest,
        proof: &Proof<'_>,
    ) -> Result<AccessToken, Error> {
        self.request_grant(request, Grant::ClientCredentials, proof)
            .await
    }

    /// Requests a token with `grant`; see [`request_token`](Self::request_token).
    pub(crate) async fn request_grant(
        &self,
        request: &TokenRequest,
        grant: Grant<'_>,
        proof: &Proof<'_>,
    ) -> Result<AccessToken, Error> {
        let answer = self.send_grant(request, grant, proof).await?;
        self.token_from(&answer).map(|(token, _)| token)
    }

    /// Sends a token request with `grant` and returns the answer unjudged, for the flows that
    /// look at an error before it becomes one (device code polling); [`token_from`](Self::token_from)
    /// judges it.
    pub(crate) async fn send_grant(
        &self,
        request: &TokenRequest,
        grant: Grant<'_>,
        proof: &Proof<'_>,
    ) -> Result<GrantAnswer, Error> {
        let inner = &*self.inner;
        let credential = inner.credential;
        validate_scopes(credential, request.scopes())?;
        let tenant = request.tenant_id().unwrap_or(&inner.tenant_id);
        let endpoint = self.token_endpoint(tenant)?;
        let claims = request_claims(credential, request)?;
        let kind = grant.kind();
        let scope = match kind {
            #[cfg(feature = "user-sign-in")]
            GrantKind::User => user_scope(request.scopes()),
            GrantKind::App | GrantKind::OnBehalfOf => request.scopes().join(" "),
        };
        let started = inner.clock.now();
        let proof = proof(&endpoint, started)?;
        let mut form: Vec<(&str, &str)> = Vec::with_capacity(10);
        form.push(("client_id", &inner.client_id));
        match &proof {
            #[cfg(feature = "user-sign-in")]
            ClientProof::Public => {}
            ClientProof::Secret(secret) => form.push(("client_secret", secret.expose())),
            ClientProof::Assertion(assertion) => {
                form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE));
                form.push(("client_assertion", assertion.expose()));
            }
        }
        match grant {
            Grant::ClientCredentials => form.push(("grant_type", "client_credentials")),
            Grant::OnBehalfOf { user_assertion } => {
                form.push(("grant_type", JWT_BEARER_GRANT));
                form.push(("assertion", user_assertion.expose()));
                form.push(("requested_token_use", "on_behalf_of"));
            }
            #[cfg(feature = "user-sign-in")]
            Grant::DeviceCode { device_code } => {
                form.push(("grant_type", DEVICE_CODE_GRANT));
                form.push(("device_code", device_code.expose()));
            }
            #[cfg(feature = "user-sign-in")]
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                form.push(("grant_type", "authorization_code"));
                form.push(("code", code.expose()));
                form.push(("redirect_uri", redirect_uri));
                if let Some(verifier) = code_verifier {
                    form.push(("code_verifier", verifier.expose()));
                }
            }
            #[cfg(feature = "user-sign-in")]
            Grant::RefreshToken { refresh_token } => {
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", refresh_token.expose()));
            }
        }
        form.push(("scope", &scope));
        #[cfg(feature = "user-sign-in")]
        if kind == GrantKind::User {
            // Asks for the user's home account (`uid`.`utid`) alongside the tokens.
            form.push(("client_info", "1"));
        }
        if let Some(claims) = &claims {
            form.push(("claims", claims));
        }
        let http_request = HttpRequest::post(endpoint.clone())
            .header("Accept", "application/json")
            .form(&form);
        drop(form);
        tracing::debug!(
            credential,
            tenant,
            authority = %self.authority(),
            scope = %scope,
            claims = claims.is_some(),
            grant = grant.name(),
            "requesting a token from Microsoft Entra ID"
        );
        let response = self.send(&http_request).await?;
        Ok(GrantAnswer {
            response,
            tenant: tenant.to_owned(),
            started,
            kind,
        })
    }

    /// Sends `request` with the client's retry policy; a failure to get an answer becomes the
    /// credential's error, saying what to check.
    pub(crate) async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, Error> {
        let inner = &*self.inner;
        inner.http.send(request, &inner.retry).await.map_err(|e| {
            let error = Error::from_http(inner.credential, &e);
            // A failure that says what to do (an untrusted certificate) keeps its own fix.
            if error.fix().is_some() {
                return error;
            }
            error.with_fix(format!(
                "check that this machine can reach {} (proxy, firewall, DNS) and that the authority host is right",
                self.authority()
            ))
        })
    }

    /// The context of messages about an answer from `tenant`.
    pub(crate) fn response_context<'a>(&'a self, tenant: &'a str) -> response::Context<'a> {
        response::Context {
            credential: self.inner.credential,
            tenant,
            client_id: &self.inner.client_id,
            authority: self.authority(),
        }
    }

    /// Judges an answer of [`send_grant`](Self::send_grant): the token (and what a user grant
    /// adds), or the error the answer means.
    pub(crate) fn token_from(
        &self,
        answer: &GrantAnswer,
    ) -> Result<(AccessToken, response::UserParts), Error> {
        let inner = &*self.inner;
        let credential = inner.credential;
        let tenant = answer.tenant.as_str();
        let context = self.response_context(tenant);
        if answer.response.status() != 200 {
            return Err(response::from_grant_response(
                &context,
                &answer.response,
                answer.kind,
            ));
        }
        let parsed = response::parse_token(&context, &answer.response)?;
        let started = answer.started;
        let mut token = AccessToken::new(
            parsed.access_token,
            started + time::Duration::seconds(parsed.expires_in),
        )
        .with_source(credential)
        .with_tenant_id(tenant)
        .with_client_id(inner.client_id.clone());
        if let Some(refresh_in) = parsed.refresh_in {
            token = token.with_refresh_on(started + time::Duration::seconds(refresh_in));
        }
        tracing::debug!(
            credential,
            tenant,
            expires_on = %token.expires_on(),
            "Microsoft Entra ID issued a token"
        );
        Ok((token, parsed.user))
    }
}

/// The token endpoint's answer to a grant, before it is judged.
pub(crate) struct GrantAnswer {
    response: HttpResponse,
    tenant: String,
    started: OffsetDateTime,
    kind: GrantKind,
}

#[cfg(feature = "user-sign-in")]
impl GrantAnswer {
    /// The OAuth `error` code of an error answer (`authorization_pending`, `invalid_grant`).
    pub(crate) fn oauth_error(&self) -> Option<String> {
        if self.response.status() == 200 {
            return None;
        }
        response::oauth_error(&self.response)
    }
}

/// The `scope` of a user grant: the requested scopes and the OpenID Connect ones that bring a
/// refresh token and an id token (`offline_access openid profile`), each once.
#[cfg(feature = "user-sign-in")]
pub(crate) fn user_scope(scopes: &[String]) -> String {
    let mut all: Vec<&str> = scopes.iter().map(String::as_str).collect();
    for extra in USER_SCOPES {
        if !all.contains(&extra) {
            all.push(extra);
        }
    }
    all.join(" ")
}

impl fmt::Debug for EntraClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("EntraClient")
            .field("tenant_id", &inner.tenant_id)
            .field("client_id", &inner.client_id)
            .field("authority", &self.authority())
            .finish_non_exhaustive()
    }
}

/// The `claims` form value: the caller's claims challenge, with the CAE client capability
/// (`xms_cc` = `CP1`) merged in when CAE is enabled. `None` when there is neither.
fn request_claims(
    credential: &'static str,
    request: &TokenRequest,
) -> Result<Option<String>, Error> {
    let challenge = request.claims().filter(|c| !c.trim().is_empty());
    match (challenge, request.enable_cae()) {
        (None, false) => Ok(None),
        (Some(claims), false) => Ok(Some(claims.to_owned())),
        (None, true) => Ok(Some(CAE_CLAIMS.to_owned())),
        (Some(claims), true) => {
            let invalid = || {
                Error::invalid_input(credential, "the claims challenge is not a JSON object")
                    .with_fix("pass the decoded JSON of the resource's claims challenge (base64-decode the `claims` value of its WWW-Authenticate header)")
            };
            let mut root: Map<String, Value> =
                serde_json::from_str(claims).map_err(|_| invalid())?;
            let access_token = root
                .entry("access_token")
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(access_token) = access_token else {
                return Err(invalid());
            };
            access_token.insert(
                "xms_cc".to_owned(),
                serde_json::json!({ "values": ["CP1"] }),
            );
            Ok(Some(Value::Object(root).to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        for (raw, expected) in [
            (
                "https://login.microsoftonline.com",
                "https://login.microsoftonline.com/",
            ),
            (
                "https://login.microsoftonline.us/",
                "https://login.microsoftonline.us/",
            ),
            ("login.chinacloudapi.cn", "https://login.chinacloudapi.cn/"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
            ("http://localhost:1", "http://localhost:1/"),
            ("http://[::1]:9/", "http://[::1]:9/"),
            (
                "https://adfs.contoso.com/adfs//",
                "https://adfs.contoso.com/adfs",
            ),
        ] {
            assert_eq!(
                parse_authority("X", raw, "authority").unwrap().as_str(),
                expected,
                "{raw}"
            );
        }
        for bad in [
            "http://login.microsoftonline.com",
            "ftp://login.microsoftonline.com",
            "https://",
            "https://login.microsoftonline.com/?x=1",
            "https://user:pw@login.microsoftonline.com",
            "http://10.0.0.1",
        ] {
            let err = parse_authority("X", bad, "authority").unwrap_err();
            assert!(err.is_invalid_input(), "{bad}");
            assert!(err.to_string().contains("https"), "{err}");
        }
    }

    #[test]
    fn claims_merge() {
        let request = |claims: Option<&str>, cae: bool| {
            let mut r = TokenRequest::new(["s"]).with_enable_cae(cae);
            if let Some(c) = claims {
                r = r.with_claims(c);
            }
            request_claims("X", &r)
        };
        assert_eq!(request(None, false).unwrap(), None);
        assert_eq!(request(Some(" "), false).unwrap(), None);
        assert_eq!(
            request(Some("{\"id_token\":{}}"), false).unwrap().unwrap(),
            "{\"id_token\":{}}"
        );
        assert_eq!(request(None, true).unwrap().unwrap(), CAE_CLAIMS);
        let merged: Value = serde_json::from_str(
            &request(
                Some(r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#),
                true,
            )
            .unwrap()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            merged,
            serde_json::json!({"access_token":{"nbf":{"essential":true,"value":"1"},"xms_cc":{"values":["CP1"]}}})
        );
        assert!(
            request(Some("not json"), true)
                .unwrap_err()
                .is_invalid_input()
        );
        assert!(
            request(Some(r#"{"access_token":1}"#), true)
                .unwrap_err()
                .is_invalid_input()
        );
    }
}
