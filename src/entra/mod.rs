//! The Microsoft Entra ID v2 token endpoint and the credentials that talk to it.
//!
//! [`EntraClient`] is the one piece of code that speaks the client-credentials grant: it builds
//! the form body (`client_id`, the secret or the assertion, `grant_type`, `scope`, `claims`),
//! sends it through the HTTP seam with retries on 429 and 5xx, parses the token or the error,
//! and applies the multi-tenant rules. The credentials only say how they prove who they are.

mod assertion;
pub mod authority_hosts;
mod client_certificate;
mod client_secret;
mod environment;
pub(crate) mod response;
mod workload_identity;

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use url::{Host, Url};

use crate::scope::{quoted, validate_scope, validate_tenant_id};
use crate::system::{Clock, Env, Http, HttpRequest, RetryPolicy};
use crate::tenant::TenantPolicy;
use crate::{AccessToken, Error, Secret, TokenCache, TokenRequest};

pub(crate) use client_certificate::ClientCertificate;
pub use client_certificate::{ClientCertificateCredential, ClientCertificateCredentialBuilder};
pub use client_secret::{ClientSecretCredential, ClientSecretCredentialBuilder};
pub use environment::{EnvironmentCredential, EnvironmentCredentialBuilder};
pub use workload_identity::{WorkloadIdentityCredential, WorkloadIdentityCredentialBuilder};

pub(crate) const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
pub(crate) const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
pub(crate) const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";

/// The tenant of Active Directory Federation Services authorities.
const ADFS: &str = "adfs";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The client capability that asks for CAE tokens.
const CAE_CLAIMS: &str = r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#;

/// How a credential proves who it is in the token request.
pub(crate) enum ClientProof {
    /// `client_secret`.
    Secret(Secret),
    /// `client_assertion` (a signed JWT, or a federated token).
    Assertion(Secret),
}

/// Options every Entra credential builder shares. Unset values come from the environment
/// (authority host, allowed tenants) or the defaults.
#[derive(Clone, Default)]
pub(crate) struct EntraOptions {
    pub(crate) tenant_id: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) authority_host: Option<String>,
    pub(crate) allowed_tenants: Option<Vec<String>>,
    pub(crate) env: Option<Env>,
    pub(crate) http: Option<Http>,
    pub(crate) cache: Option<TokenCache>,
    pub(crate) retry: Option<RetryPolicy>,
}

impl EntraOptions {
    pub(crate) fn env(&self) -> Env {
        self.env.clone().unwrap_or_else(Env::process)
    }

    pub(crate) fn cache(&self) -> TokenCache {
        self.cache.clone().unwrap_or_else(TokenCache::shared)
    }

    /// Validates the options and builds the client for `credential`. `tenant_id` and
    /// `client_id` must have been set (the caller names what is missing first).
    pub(crate) fn client(&self, credential: &'static str) -> Result<EntraClient, Error> {
        let env = self.env();
        let tenant_id = required(credential, self.tenant_id.as_deref(), "tenant_id")?;
        validate_tenant_id(credential, tenant_id)?;
        let client_id = required(credential, self.client_id.as_deref(), "client_id")?;
        validate_client_id(credential, client_id)?;
        let authority = match &self.authority_host {
            Some(host) => parse_authority(credential, host, "the authority host")?,
            None => match env.var_non_empty(AZURE_AUTHORITY_HOST) {
                Some(host) => parse_authority(credential, &host, AZURE_AUTHORITY_HOST)?,
                None => parse_authority(
                    credential,
                    authority_hosts::AZURE_PUBLIC_CLOUD,
                    "the authority host",
                )?,
            },
        };
        let tenants = TenantPolicy::new(
            credential,
            Some(tenant_id),
            self.allowed_tenants.as_deref(),
            &env,
        )?;
        let cache = self.cache();
        Ok(EntraClient {
            inner: Arc::new(ClientInner {
                credential,
                tenant_id: tenant_id.to_owned(),
                client_id: Arc::from(client_id),
                authority,
                tenants,
                http: self.http.clone().unwrap_or_else(Http::shared),
                retry: self.retry.clone().unwrap_or_else(RetryPolicy::entra),
                clock: cache.clock().clone(),
            }),
        })
    }
}

impl fmt::Debug for EntraOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraOptions")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("authority_host", &self.authority_host)
            .field("allowed_tenants", &self.allowed_tenants)
            .finish_non_exhaustive()
    }
}

fn required<'a>(
    credential: &'static str,
    value: Option<&'a str>,
    option: &'static str,
) -> Result<&'a str, Error> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(
            Error::invalid_input(credential, format!("no {option} was given"))
                .with_fix(format!("set the builder's {option}")),
        ),
    }
}

/// A client id is a GUID (or, for ADFS, an identifier): printable ASCII without spaces.
fn validate_client_id(credential: &'static str, client_id: &str) -> Result<(), Error> {
    if client_id.bytes().all(|b| b.is_ascii_graphic()) && client_id.len() <= 256 {
        return Ok(());
    }
    Err(Error::invalid_input(
        credential,
        format!("invalid client id {}", quoted(client_id)),
    )
    .with_fix("the client id is the application (client) id of the app registration, a GUID"))
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

    pub(crate) fn tenant_id(&self) -> &str {
        &self.inner.tenant_id
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The authority host, as `scheme://host[:port][/path]`.
    pub(crate) fn authority(&self) -> &str {
        self.inner.authority.as_str().trim_end_matches('/')
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

    /// Requests a token. `proof` makes the credential's proof of identity for the token
    /// endpoint (an assertion's audience) at the given time.
    pub(crate) async fn request_token(
        &self,
        request: &TokenRequest,
        proof: impl FnOnce(&Url, OffsetDateTime) -> Result<ClientProof, Error>,
    ) -> Result<AccessToken, Error> {
        let inner = &*self.inner;
        let credential = inner.credential;
        if request.scopes().is_empty() {
            return Err(
                Error::invalid_input(credential, "no scope was requested").with_fix(
                    "request at least one scope, e.g. \"https://management.azure.com/.default\"",
                ),
            );
        }
        for scope in request.scopes() {
            validate_scope(credential, scope)?;
        }
        let tenant = request.tenant_id().unwrap_or(&inner.tenant_id);
        let endpoint = self.token_endpoint(tenant)?;
        let claims = request_claims(credential, request)?;
        let scope = request.scopes().join(" ");
        let started = inner.clock.now();
        let proof = proof(&endpoint, started)?;
        let mut form: Vec<(&str, &str)> = Vec::with_capacity(6);
        form.push(("client_id", &inner.client_id));
        match &proof {
            ClientProof::Secret(secret) => form.push(("client_secret", secret.expose())),
            ClientProof::Assertion(assertion) => {
                form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE));
                form.push(("client_assertion", assertion.expose()));
            }
        }
        form.push(("grant_type", "client_credentials"));
        form.push(("scope", &scope));
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
            "requesting a token from Microsoft Entra ID"
        );
        let answer = inner
            .http
            .send(&http_request, &inner.retry)
            .await
            .map_err(|e| {
                let error = Error::from_http(credential, &e);
                // A failure that says what to do (an untrusted certificate) keeps its own fix.
                if error.fix().is_some() {
                    return error;
                }
                error.with_fix(format!(
                    "check that this machine can reach {} (proxy, firewall, DNS) and that the authority host is right",
                    self.authority()
                ))
            })?;
        let context = response::Context {
            credential,
            tenant,
            client_id: &inner.client_id,
            authority: self.authority(),
        };
        if answer.status() != 200 {
            return Err(response::from_response(&context, &answer));
        }
        let parsed = response::parse_token(&context, &answer)?;
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
        Ok(token)
    }
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
    use crate::tenant::{
        AZURE_ADDITIONALLY_ALLOWED_TENANTS, AZURE_IDENTITY_DISABLE_MULTITENANTAUTH,
    };

    fn options() -> EntraOptions {
        EntraOptions {
            tenant_id: Some("tenant-a".into()),
            client_id: Some("client-1".into()),
            env: Some(Env::empty()),
            ..EntraOptions::default()
        }
    }

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
    fn token_endpoints() {
        let client = options().client("X").unwrap();
        assert_eq!(
            client.token_endpoint("tenant-a").unwrap().as_str(),
            "https://login.microsoftonline.com/tenant-a/oauth2/v2.0/token"
        );
        assert_eq!(
            client.token_endpoint("adfs").unwrap().as_str(),
            "https://login.microsoftonline.com/adfs/oauth2/token"
        );
    }

    #[test]
    fn sovereign_clouds_get_their_own_token_endpoints() {
        for (host, endpoint) in [
            (
                authority_hosts::AZURE_PUBLIC_CLOUD,
                "https://login.microsoftonline.com/t/oauth2/v2.0/token",
            ),
            (
                authority_hosts::AZURE_GOVERNMENT,
                "https://login.microsoftonline.us/t/oauth2/v2.0/token",
            ),
            (
                authority_hosts::AZURE_CHINA,
                "https://login.chinacloudapi.cn/t/oauth2/v2.0/token",
            ),
        ] {
            let mut o = options();
            o.authority_host = Some(host.to_owned());
            let client = o.client("X").unwrap();
            assert_eq!(client.token_endpoint("t").unwrap().as_str(), endpoint);
            // The same from AZURE_AUTHORITY_HOST.
            let mut o = options();
            o.env = Some(Env::from_pairs([(AZURE_AUTHORITY_HOST, host)]));
            assert_eq!(
                o.client("X").unwrap().token_endpoint("t").unwrap().as_str(),
                endpoint
            );
        }
    }

    #[test]
    fn tenant_rules() {
        let client = options().client("X").unwrap();
        assert_eq!(client.resolve_tenant("tenant-a").unwrap(), None);
        assert_eq!(client.resolve_tenant("TENANT-A").unwrap(), None);
        let err = client.resolve_tenant("tenant-b").unwrap_err();
        assert!(err.is_invalid_input());
        let text = err.to_string();
        assert!(
            text.contains("\"tenant-b\"")
                && text.contains("additionally_allowed_tenants")
                && text.contains(AZURE_ADDITIONALLY_ALLOWED_TENANTS),
            "{text}"
        );
        assert!(
            client
                .resolve_tenant("bad/tenant")
                .unwrap_err()
                .to_string()
                .contains("invalid tenant id")
        );

        let mut allowed = options();
        allowed.allowed_tenants = Some(vec!["Tenant-B".into()]);
        let client = allowed.client("X").unwrap();
        assert_eq!(client.resolve_tenant("tenant-b").unwrap(), Some("tenant-b"));
        assert!(client.resolve_tenant("tenant-c").is_err());

        let mut env = options();
        env.env = Some(Env::from_pairs([(
            AZURE_ADDITIONALLY_ALLOWED_TENANTS,
            " tenant-c ; * ;",
        )]));
        let client = env.client("X").unwrap();
        assert_eq!(client.resolve_tenant("anything").unwrap(), Some("anything"));
        assert!(client.resolve_tenant("a b").unwrap_err().is_invalid_input());

        // The builder's list replaces the environment's.
        env.allowed_tenants = Some(vec![]);
        assert!(env.client("X").unwrap().resolve_tenant("anything").is_err());

        let mut disabled = options();
        disabled.env = Some(Env::from_pairs([
            (AZURE_ADDITIONALLY_ALLOWED_TENANTS, "*"),
            (AZURE_IDENTITY_DISABLE_MULTITENANTAUTH, "1"),
        ]));
        assert_eq!(
            disabled
                .client("X")
                .unwrap()
                .resolve_tenant("other")
                .unwrap(),
            None
        );

        let mut adfs = options();
        adfs.tenant_id = Some("adfs".into());
        adfs.allowed_tenants = Some(vec!["*".into()]);
        let client = adfs.client("X").unwrap();
        assert!(client.is_adfs());
        assert!(
            client
                .resolve_tenant("other")
                .unwrap_err()
                .to_string()
                .contains("ADFS")
        );
    }

    #[test]
    fn invalid_options() {
        let mut bad = options();
        bad.tenant_id = Some("tenant/../x".into());
        assert!(
            bad.client("X")
                .unwrap_err()
                .to_string()
                .contains("invalid tenant id")
        );
        let mut bad = options();
        bad.allowed_tenants = Some(vec!["ok".into(), "not ok".into()]);
        assert!(bad.client("X").unwrap_err().is_invalid_input());
        let mut bad = options();
        bad.client_id = Some("  ".into());
        assert!(
            bad.client("X")
                .unwrap_err()
                .to_string()
                .contains("client_id")
        );
        let mut bad = options();
        bad.env = Some(Env::from_pairs([(
            AZURE_AUTHORITY_HOST,
            "http://login.example.com",
        )]));
        let err = bad.client("X").unwrap_err();
        assert!(err.to_string().contains(AZURE_AUTHORITY_HOST), "{err}");
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
