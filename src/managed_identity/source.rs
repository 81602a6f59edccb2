//! What every managed identity source is: the [`Source`] trait its file implements, the
//! [`Detection`] it reads the environment from, the [`Endpoint`] it makes when it finds itself,
//! the [`Ask`] and [`Transport`] of a token request, and the pieces the sources share (the public [`ManagedIdentitySource`] and [`UserAssignedId`], the
//! URL checks). The sources and `mod.rs` depend on this module; it depends on neither.

use crate::system::redacted_url;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use url::Url;

use crate::system::{Env, Fs, Http, HttpRequest, HttpResponse};
use crate::{CacheIdentity, Error};

pub(crate) const NAME: &str = "ManagedIdentityCredential";

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
    pub(super) fn kind(&self) -> &'static str {
        match self {
            UserAssignedId::ClientId(_) => "client id",
            UserAssignedId::ObjectId(_) => "object id",
            UserAssignedId::ResourceId(_) => "resource id",
        }
    }

    pub(super) fn value(&self) -> &str {
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

/// What a source's detection may read: the environment, the files (the Arc agent's), and the
/// builder's overrides of the guessed places.
pub(super) struct Detection<'a> {
    pub(super) env: &'a Env,
    pub(super) fs: &'a Fs,
    /// The builder's IMDS endpoint (a loopback mock in tests).
    pub(super) imds_endpoint: Option<&'a Url>,
    /// The builder's directory for the Arc agent's key file.
    pub(super) arc_key_directory: Option<&'a Path>,
}

impl Detection<'_> {
    /// The values of all of `names`, when every one is set (and not empty).
    pub(super) fn all<const N: usize>(&self, names: [&str; N]) -> Option<[String; N]> {
        let values: Vec<String> = names
            .iter()
            .map_while(|name| self.env.var_non_empty(name))
            .collect();
        values.try_into().ok()
    }
}

/// How a source finds itself: `Some` when the environment names it (an invalid configuration
/// is an error: detection stops there), `None` to let the next source look.
pub(super) type Detect = fn(&Detection<'_>) -> Result<Option<Endpoint>, Error>;

/// A source the environment names: which it is, its token endpoint, and how to talk to it.
pub(super) struct Endpoint {
    pub(super) kind: ManagedIdentitySource,
    /// The token endpoint (part of the cache key; shown without its query).
    pub(super) url: Url,
    pub(super) source: Box<dyn Source>,
}

impl Endpoint {
    /// What a source's `detect` returns when it found itself.
    pub(super) fn found(
        kind: ManagedIdentitySource,
        url: Url,
        source: impl Source + 'static,
    ) -> Result<Option<Endpoint>, Error> {
        Ok(Some(Endpoint {
            kind,
            url,
            source: Box::new(source),
        }))
    }
}

/// One token request's particulars: the endpoint, the resource, the user-assigned identity.
pub(super) struct Ask<'a> {
    pub(super) url: &'a Url,
    pub(super) resource: &'a str,
    pub(super) id: Option<&'a UserAssignedId>,
}

impl Ask<'_> {
    /// `{url}?api-version=…&resource=…`: the start of every source's token URL.
    pub(super) fn url(&self, api_version: &str) -> Url {
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("api-version", api_version)
            .append_pair("resource", self.resource);
        url
    }

    /// The same with the user-assigned id as `client_id`, `object_id`, or the parameter this
    /// source names a resource id with.
    pub(super) fn url_with_id(&self, api_version: &str, resource_id_param: &str) -> Url {
        let mut url = self.url(api_version);
        if let Some(id) = self.id {
            let name = match id {
                UserAssignedId::ClientId(_) => "client_id",
                UserAssignedId::ObjectId(_) => "object_id",
                UserAssignedId::ResourceId(_) => resource_id_param,
            };
            url.query_pairs_mut().append_pair(name, id.value());
        }
        url
    }
}

/// How a source's requests go out: with the credential's retry policy and attempt timeout, a
/// refused or unreachable endpoint already turned into [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable).
#[async_trait]
pub(super) trait Transport: Sync {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error>;
}

/// One hosting environment's managed identity endpoint: everything about it that differs from
/// the others. `mod.rs` detects, retries and caches; `answer.rs` reads answers by the rule all
/// sources share, asking the source at the points where they differ.
#[async_trait]
pub(super) trait Source: Send + Sync {
    /// The token request.
    fn token_request(&self, ask: &Ask<'_>) -> HttpRequest;

    /// Asks for a token: the final answer, read by `answer.rs`. One request, unless the source
    /// has more legs (Azure Arc's challenge).
    async fn request_token(
        &self,
        transport: &dyn Transport,
        ask: &Ask<'_>,
    ) -> Result<HttpResponse, Error> {
        transport.send(self.token_request(ask)).await
    }

    /// Whether this source can ask for the user-assigned identity `id`; `Err` says why not
    /// (e.g. "Cloud Shell has no user-assigned identities").
    fn check_id(&self, _id: &UserAssignedId) -> Result<(), &'static str> {
        Ok(())
    }

    /// Adds to the cache key what, besides the endpoint and the requested id, decides whose
    /// token an answer is: the secret sent, a pinned certificate, a default identity.
    fn partition(&self, identity: CacheIdentity, _id: Option<&UserAssignedId>) -> CacheIdentity {
        identity
    }

    /// The HTTP client to send with, made from the context's (Service Fabric pins the
    /// cluster's certificate).
    fn http(&self, http: Http) -> Result<Http, Error> {
        Ok(http)
    }

    /// Whether a credential chain may [probe](Self::probe) this endpoint before its first
    /// request: only where nothing but a guess says the endpoint is there.
    fn probe_allowed(&self) -> bool {
        false
    }

    /// One quick look (no retries, `timeout`) at whether the endpoint is there at all: `Err`
    /// ([`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable)) when it is not.
    async fn probe(&self, _http: &Http, _ask: &Ask<'_>, _timeout: Duration) -> Result<(), Error> {
        Ok(())
    }

    /// A failed answer this endpoint never sends, judged before the shared rule (IMDS: what
    /// answers for its guessed address is not IMDS); `None` to classify it by the rule.
    fn foreign_failure(&self, _response: &HttpResponse) -> Option<Error> {
        None
    }

    /// What it means that something other than the endpoint answered, with `what` (a
    /// redirect, an HTML page); `None` for the shared meaning: an endpoint the environment
    /// names is misconfigured or intercepted.
    fn not_the_endpoint(&self, _status: u16, _what: &str) -> Option<Error> {
        None
    }

    /// Whether every 400 means "no such identity here" (IMDS), not only one that says
    /// "Identity not found".
    fn any_400_means_no_identity(&self) -> bool {
        false
    }

    /// What to do when nothing listens at the endpoint.
    fn unreachable_fix(&self) -> Option<&'static str> {
        None
    }

    /// What to do when the TLS handshake with the endpoint fails.
    fn tls_fix(&self) -> Option<&'static str> {
        None
    }

    /// A token answer that names no id of the requested kind: accepted, unless the source is
    /// known to answer for another identity than the one asked for (older Arc agents).
    fn unconfirmed(&self, _id: &UserAssignedId) -> Result<(), Error> {
        Ok(())
    }

    /// What to do when a token answer names another identity than the one requested.
    fn wrong_identity_fix(&self) -> &'static str {
        "check the requested id; if it is right, the endpoint is not honouring user-assigned identities"
    }
}

/// An endpoint variable's value as an http(s) URL.
pub(super) fn env_url(variable: &str, value: &str) -> Result<Url, Error> {
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
pub(super) fn secret_url(variable: &str, value: &str) -> Result<Url, Error> {
    let url = env_url(variable, value)?;
    if url.scheme() == "http" && !crate::system::is_local(&url) {
        return Err(Error::invalid_input(
            NAME,
            format!(
                "{variable} ({}) is plain http to a host that is neither loopback nor link-local; the managed identity secret would cross the network in clear text",
                redacted_url(&url)
            ),
        )
        .with_fix(format!(
            "use an https URL in {variable}, or the local address the hosting environment provides (127.0.0.1, localhost or 169.254.x.x)"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which plain-http endpoints may receive a secret. URLs are only parsed here, never
    /// contacted (tests/managed_identity/ builds credentials with hostnames instead).
    #[test]
    fn a_secret_goes_over_plain_http_only_to_loopback_or_link_local_hosts() {
        for allowed in [
            "http://127.0.0.1:41741/msi/token",
            "http://localhost:8081/msi/token",
            "http://169.254.1.1/token",
            "http://[fe80::1]:40342/token",
            "https://10.1.2.3/msi/token",
        ] {
            assert!(secret_url("MSI_ENDPOINT", allowed).is_ok(), "{allowed}");
        }
        for refused in ["http://10.1.2.3:8081/msi/token", "http://192.168.0.4/token"] {
            let err = secret_url("MSI_ENDPOINT", refused).unwrap_err();
            assert!(err.to_string().contains("plain http"), "{refused}: {err}");
        }
    }
}
