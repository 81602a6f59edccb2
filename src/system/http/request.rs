//! [`HttpRequest`]: one request to an identity endpoint, secret headers marked.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::target::redacted_url;
// `Secret` is a leaf value type of the crate root (it imports nothing but std): a secret header
// takes one, so the seam depends on it as on any value type below it.
use crate::Secret;
use crate::setters::setters;

const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// One HTTP request to an identity endpoint.
///
/// `Debug` shows the method, `scheme://host:port/path`, the *names* of the query parameters and
/// headers and the body's length: never a query value, a header value or the body (a form body
/// carries client secrets and assertions).
#[derive(Clone)]
pub struct HttpRequest {
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) headers: HeaderMap,
    pub(super) body: Option<Bytes>,
    pub(super) timeout: Option<Duration>,
    pub(super) read_stall_timeout: Option<Duration>,
    /// The first invalid header, reported by [`Http::send`] so that building never panics.
    pub(super) problem: Option<String>,
}

impl HttpRequest {
    /// A `GET` request.
    pub fn get(url: Url) -> Self {
        HttpRequest::new(Method::GET, url)
    }

    /// A `POST` request.
    pub fn post(url: Url) -> Self {
        HttpRequest::new(Method::POST, url)
    }

    fn new(method: Method, url: Url) -> Self {
        HttpRequest {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            timeout: None,
            read_stall_timeout: None,
            problem: None,
        }
    }

    /// Sets a header, replacing any earlier value. An invalid name or value makes
    /// [`Http::send`](super::Http::send) fail with
    /// [`HttpErrorKind::Other`](super::HttpErrorKind::Other).
    pub fn header(self, name: &str, value: impl Into<String>) -> Self {
        let value = HeaderValue::try_from(value.into());
        self.insert_header(name, value.ok())
    }

    /// Sets a header whose value is a secret: it is marked sensitive (HTTP/2 never indexes it) and
    /// shown as `<redacted>` by `Debug`. [`Http::send`](super::Http::send) sends a request carrying
    /// one over plain `http` only to a loopback or link-local host (else it fails with
    /// [`HttpErrorKind::Insecure`](super::HttpErrorKind::Insecure) without sending anything), and
    /// never through a proxy.
    pub fn secret_header(self, name: &str, value: &Secret) -> Self {
        let value = HeaderValue::from_str(value.expose()).ok().map(|mut v| {
            v.set_sensitive(true);
            v
        });
        self.insert_header(name, value)
    }

    fn insert_header(mut self, name: &str, value: Option<HeaderValue>) -> Self {
        match (HeaderName::from_bytes(name.as_bytes()), value) {
            (Ok(name), Some(value)) => {
                self.headers.insert(name, value);
            }
            // The value is never echoed: it may be a secret.
            (Ok(name), None) => self.note_problem(format!("header `{name}` has an invalid value")),
            (Err(_), _) => self.note_problem(format!("invalid header name {name:?}")),
        }
        self
    }

    fn note_problem(&mut self, problem: String) {
        self.problem.get_or_insert(problem);
    }

    /// The name of the first header set with [`secret_header`](Self::secret_header).
    pub(super) fn secret_header_name(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(_, value)| value.is_sensitive())
            .map(|(name, _)| name.as_str())
    }

    /// Sets an `application/x-www-form-urlencoded` body (and its `Content-Type`).
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(FORM_CONTENT_TYPE));
        self.body = Some(Bytes::from(body));
        self
    }

    setters! {
        /// Overrides the client's [time to the response head](super::HttpBuilder::timeout) for this
        /// request (e.g. a short IMDS probe, or an endpoint's service level).
        timeout(timeout: Duration) => Some(timeout);

        /// Overrides the client's [read-stall timeout](super::HttpBuilder::read_stall_timeout) for this
        /// request: the longest pause allowed while the body arrives.
        read_stall_timeout(timeout: Duration) => Some(read_stall_timeout);
    }

    /// The method, e.g. `"GET"`.
    pub fn method(&self) -> &str {
        self.method.as_str()
    }

    /// The URL, query included (do not log it: the query may carry identifiers).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The value of header `name` (case-insensitive), for an
    /// [`HttpTransport`](super::HttpTransport). It may be a secret
    /// ([`secret_header`](Self::secret_header)): do not log it.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body, for an [`HttpTransport`](super::HttpTransport). A form body carries client secrets
    /// and assertions: do not log it.
    pub fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("HttpRequest");
        d.field("method", &self.method.as_str())
            .field("url", &format_args!("{}", redacted_url(&self.url)))
            .field("query", &QueryNames(&self.url))
            .field("headers", &HeaderNames(&self.headers));
        if let Some(body) = &self.body {
            d.field("body", &format_args!("<{} bytes>", body.len()));
        }
        if let Some(timeout) = self.timeout {
            d.field("timeout", &timeout);
        }
        if let Some(timeout) = self.read_stall_timeout {
            d.field("read_stall_timeout", &timeout);
        }
        if let Some(problem) = &self.problem {
            d.field("problem", problem);
        }
        d.finish()
    }
}

/// Debugs as the list of query parameter names.
struct QueryNames<'a>(&'a Url);

impl fmt::Debug for QueryNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.query_pairs().map(|(name, _)| name))
            .finish()
    }
}

/// Debugs as the list of header names, sensitive ones marked `<redacted>`.
pub(super) struct HeaderNames<'a>(pub(super) &'a HeaderMap);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (name, value) in self.0 {
            if value.is_sensitive() {
                list.entry(&format_args!("{name}: <redacted>"));
            } else {
                list.entry(&format_args!("{name}"));
            }
        }
        list.finish()
    }
}
