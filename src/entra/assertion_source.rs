//! Where a federated credential's client assertion comes from, and the one exchange of it for
//! an Entra token: [`AssertionSource`] is what each credential implements (a callback of the
//! user's, the workload identity token file, Azure DevOps' and GitHub's OIDC endpoints);
//! [`AssertionFetcher`] asks the source, exchanges, and when Entra says the assertion expired
//! (`AADSTS700024`) asks the source for a fresh one and retries once. Below them, what the
//! sources that ask a CI system's OIDC endpoint share.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use url::Url;

use super::{ClientProof, EntraClient};
use crate::scrub;
use crate::system::{Http, HttpRequest, HttpResponse, RetryPolicy, is_local, redacted_url};
use crate::{AccessToken, Error, ErrorKind, Secret, TokenFetcher, TokenRequest};

/// Entra's "client assertion is not within its valid time range".
pub(crate) const AADSTS_ASSERTION_EXPIRED: u32 = 700024;

/// A source of client assertions (federated tokens). Called only when a token must be fetched,
/// never on cache hits.
#[async_trait]
pub(crate) trait AssertionSource: Send + Sync + fmt::Debug + 'static {
    /// The assertion for the next token request. Errors carry the credential's name.
    async fn assertion(&self) -> Result<Secret, Error>;

    /// A new assertion after Entra refused the last one as expired; by default the same as
    /// [`assertion`](Self::assertion), which gets a new one every time.
    async fn fresh_assertion(&self) -> Result<Secret, Error> {
        self.assertion().await
    }

    /// What the source adds to the error of the retry with a fresh assertion.
    fn explain_rejection(&self, error: Error, _assertion: &Secret) -> Error {
        error
    }
}

/// Behind the cache of every federated credential: the source's assertion, exchanged.
#[derive(Debug)]
pub(crate) struct AssertionFetcher {
    pub(crate) client: EntraClient,
    pub(crate) source: Arc<dyn AssertionSource>,
}

impl AssertionFetcher {
    async fn exchange(
        &self,
        request: &TokenRequest,
        assertion: &Secret,
    ) -> Result<AccessToken, Error> {
        self.client
            .request_token(request, &|_, _| {
                Ok(ClientProof::Assertion(assertion.clone()))
            })
            .await
    }
}

#[async_trait]
impl TokenFetcher for AssertionFetcher {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let assertion = self.source.assertion().await?;
        match self.exchange(request, &assertion).await {
            Err(error) if error.aadsts_codes().contains(&AADSTS_ASSERTION_EXPIRED) => {
                let fresh = self.source.fresh_assertion().await?;
                self.exchange(request, &fresh)
                    .await
                    .map_err(|error| self.source.explain_rejection(error, &fresh))
            }
            other => other,
        }
    }

    fn resolve_tenant<'a>(&'a self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        self.client.resolve_tenant(requested)
    }
}

/// What can be wrong with a CI system's answer that carries an OIDC token in a JSON field.
pub(crate) enum OidcAnswerProblem {
    /// The body is not a JSON object (a sign-in page, a proxy's page).
    NotJson {
        /// The body looks like HTML.
        html: bool,
    },
    /// The JSON has no non-empty string in the field.
    NoToken,
}

/// The token in `field` of a JSON answer.
pub(crate) fn oidc_token(
    response: &HttpResponse,
    field: &str,
) -> Result<Secret, OidcAnswerProblem> {
    let body = response.body();
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        let start = body
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
        let html = body.get(start) == Some(&b'<')
            || response
                .header("content-type")
                .is_some_and(|ct| ct.to_ascii_lowercase().contains("html"));
        return Err(OidcAnswerProblem::NotJson { html });
    };
    match object.get(field) {
        Some(Value::String(token)) if !token.trim().is_empty() => Ok(Secret::new(token.trim())),
        _ => Err(OidcAnswerProblem::NoToken),
    }
}

/// The error kind of a CI system's refusal: throttled (429), failed (5xx), else refused.
fn refusal_kind(status: u16) -> ErrorKind {
    match status {
        429 => ErrorKind::Throttled,
        500..=599 => ErrorKind::ServiceFailure,
        _ => ErrorKind::Authentication,
    }
}

/// The endpoint a CI system names in `variable` (raw): https, or http to a loopback host
/// (tests), since a secret header goes with it; no user information, no fragment.
pub(crate) fn ci_endpoint(
    credential: &'static str,
    variable: &'static str,
    raw: &str,
    set_by: &str,
) -> Result<Url, Error> {
    let invalid = |why: &str| {
        Error::invalid_input(credential, format!("{variable} is not a usable URL: {why}"))
            .with_fix(format!("leave {variable} as {set_by} sets it"))
    };
    let mut url = Url::parse(raw.trim()).map_err(|_| invalid("not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_local(&url) => {}
        _ => return Err(invalid("it must be https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not hold user information"));
    }
    url.set_fragment(None);
    Ok(url)
}

/// A CI system's OIDC endpoint: its URL, the `Authorization` value made of the job's token,
/// and the HTTP seam and retry policy that ask it. `Debug` shows the URL redacted.
pub(crate) struct OidcEndpoint {
    pub(crate) http: Http,
    pub(crate) url: Url,
    /// `Bearer {the job's token}`.
    pub(crate) authorization: Secret,
    pub(crate) retry: RetryPolicy,
}

impl fmt::Debug for OidcEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redacted_url(&self.url), f)
    }
}

impl OidcEndpoint {
    /// Sends `request` (to [`url`](Self::url), with the method and the system's own headers)
    /// with `Accept: application/json` and the authorization through the HTTP seam; a failure
    /// to get an answer is the credential's error, with a fix naming the endpoint and the
    /// `machine` that must reach it.
    pub(crate) async fn send(
        &self,
        credential: &'static str,
        request: HttpRequest,
        machine: &str,
    ) -> Result<HttpResponse, Error> {
        let request = request
            .header("Accept", "application/json")
            .secret_header("Authorization", &self.authorization);
        self.http.send(&request, &self.retry).await.map_err(|e| {
            let error = Error::from_http(credential, &e);
            if error.fix().is_some() {
                return error;
            }
            error.with_fix(format!(
                "check that the {machine} can reach {} (proxy, firewall, DNS)",
                redacted_url(&self.url)
            ))
        })
    }
}

/// The error of a CI system's non-2xx answer: `what` (which names the status), the `message`
/// of its JSON body (scrubbed, first sentence), the status, `Retry-After` and `fix`.
pub(crate) fn refused_answer(
    credential: &'static str,
    response: &HttpResponse,
    what: String,
    fix: String,
) -> Error {
    let status = response.status();
    let said = serde_json::from_slice::<Value>(response.body())
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(scrub::sentence))
        .map(|m| m.trim_end_matches('.').to_owned())
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    let mut error = Error::new(refusal_kind(status), credential, format!("{what}{said}"))
        .with_status(status)
        .with_fix(fix);
    if let Some(retry_after) = response.retry_after() {
        error = error.with_retry_after(retry_after);
    }
    error
}
