//! The HTTP seam: [`Http`], one client for identity endpoints, with a [`RetryPolicy`].
//!
//! Everything the crate sends over HTTP goes through [`Http::send`]: it caps response bodies,
//! bounds every attempt and the whole exchange in time, never follows redirects, keeps loopback
//! and link-local endpoints (IMDS) away from proxies, and keeps secrets (secret headers, request
//! bodies, response bodies, query strings) out of `Debug`, errors and logs.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::Ipv6Addr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use time::PrimitiveDateTime;
use url::{Host, Url};

use super::clock::{Clock, monotonic_now};
use crate::{Error, ErrorKind, Secret};

/// The name errors from building a client carry.
const CREDENTIAL: &str = "Http";
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// No attempt starts with less time than this: it could not even connect.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(1);
const USER_AGENT: &str = concat!("azure-credentials/", env!("CARGO_PKG_VERSION"));
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

// ---------------------------------------------------------------------------------------------
// Http and its builder
// ---------------------------------------------------------------------------------------------

/// The HTTP client every credential uses to reach its identity endpoint.
///
/// Cloning is cheap (the client is shared). Most code uses [`Http::shared`]; build your own with
/// [`Http::builder`] to change timeouts, the body cap or the clock.
///
/// What it does for every request:
///
/// - **Timeouts**: a connect timeout, and a timeout per attempt that covers the whole exchange
///   (connect, send, headers and body). [`RetryPolicy`]'s budget bounds all attempts and waits.
/// - **No redirects**: identity endpoints never redirect, so a `3xx` is returned as a response
///   instead of being followed (a redirect could carry a secret header to another host).
/// - **Capped bodies**: a response body larger than [`HttpBuilder::max_body_bytes`] fails with
///   [`HttpErrorKind::BodyTooLarge`] as soon as the excess is seen; nothing unbounded is
///   buffered.
/// - **TLS** is rustls with the *ring* provider and the operating system's certificate verifier
///   (`rustls-platform-verifier`). No process-wide rustls provider is installed.
/// - **No connection pooling**: each attempt opens a new connection. Token requests are rare, and
///   a pooled connection belongs to the tokio runtime that opened it, while the shared client
///   is used from many runtimes.
///
/// # Proxies
///
/// Requests to loopback (`127.0.0.0/8`, `::1`, `localhost`) and link-local (`169.254.0.0/16`,
/// where IMDS lives, and `fe80::/10`) hosts **never** go through a proxy, whatever the
/// environment says: a proxy must not see (or answer for) a managed identity endpoint.
///
/// Every other request follows the proxy environment variables, read **once, when the client is
/// built** (for [`Http::shared`]: on its first use), with curl's rules:
///
/// - `HTTPS_PROXY`/`https_proxy` for `https://` URLs, `HTTP_PROXY`/`http_proxy` for `http://`
///   URLs, `ALL_PROXY`/`all_proxy` for both when the specific one is unset; credentials in the
///   proxy URL are sent as `Proxy-Authorization`;
/// - `NO_PROXY`/`no_proxy`: a comma-separated list of domains (matching subdomains too), IP
///   addresses or CIDR ranges, or `*`, that bypass the proxy;
/// - when `REQUEST_METHOD` is set (the process is a CGI script) all proxy variables are ignored
///   (the "httpoxy" defence).
///
/// The operating system's proxy settings (Windows registry, macOS System Configuration) are
/// **not** read: that needs reqwest's `system-proxy` feature, which this crate does not enable.
/// SOCKS proxies are not supported either (reqwest's `socks` feature is off): a `socks5://`
/// proxy makes requests fail to connect. An unparsable proxy URL is ignored.
#[derive(Clone)]
pub struct Http {
    inner: Arc<HttpInner>,
}

struct HttpInner {
    config: HttpBuilder,
    /// `Err` only for [`Http::shared`] when building failed: it must return an `Http`, so the
    /// failure is reported by every `send` instead of a panic.
    clients: Result<Clients, Error>,
}

struct Clients {
    /// No proxy, ever: for loopback and link-local destinations.
    direct: reqwest::Client,
    /// Proxies from the environment, for everything else.
    proxied: reqwest::Client,
}

impl Http {
    /// The process-wide client with default settings, built on first use.
    ///
    /// If building it fails (the platform's certificate verifier cannot be set up), every
    /// request made with it fails with [`HttpErrorKind::Other`] and the reason as its source.
    pub fn shared() -> Http {
        static SHARED: OnceLock<Http> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let config = HttpBuilder::default();
                config.clone().build().unwrap_or_else(|error| {
                    tracing::warn!(%error, "could not build the shared HTTP client");
                    Http {
                        inner: Arc::new(HttpInner {
                            config,
                            clients: Err(error),
                        }),
                    }
                })
            })
            .clone()
    }

    /// A builder for a client with non-default settings.
    pub fn builder() -> HttpBuilder {
        HttpBuilder::default()
    }

    /// Sends `request`, retrying as `policy` says, and returns the last response.
    ///
    /// Any HTTP status is a response (`Ok`), including the ones `policy` retried until it gave up;
    /// [`HttpResponse::attempts`] says how many attempts were made. An error means no usable
    /// response: the connection failed, timed out, broke, or the body was too large.
    pub async fn send(
        &self,
        request: &HttpRequest,
        policy: &RetryPolicy,
    ) -> Result<HttpResponse, HttpError> {
        let target = Target::of(&request.url);
        if let Some(problem) = &request.problem {
            return Err(HttpError::new(
                HttpErrorKind::Other,
                format!("invalid request to {}: {problem}", target.endpoint),
            ));
        }
        if !matches!(request.url.scheme(), "http" | "https") || request.url.host().is_none() {
            return Err(HttpError::new(
                HttpErrorKind::Other,
                format!(
                    "invalid request: `{}://{}` is not an http or https URL with a host",
                    request.url.scheme(),
                    target.endpoint
                ),
            ));
        }
        let clients = match &self.inner.clients {
            Ok(clients) => clients,
            Err(error) => {
                return Err(HttpError::new(
                    HttpErrorKind::Other,
                    format!("no HTTP client to reach {}", target.authority),
                )
                .with_source(error.clone()));
            }
        };
        let client = if bypasses_proxy(&request.url) {
            &clients.direct
        } else {
            &clients.proxied
        };
        let attempt_timeout = request.timeout.unwrap_or(self.inner.config.timeout);
        tracing::trace!(
            method = request.method.as_str(),
            endpoint = %target.endpoint,
            "sending HTTP request"
        );
        retry_loop(policy, attempt_timeout, &target.endpoint, |timeout| {
            self.attempt(client, request, &target, timeout)
        })
        .await
    }

    /// One attempt: connect, send, read the head and the (capped) body, all within `timeout`.
    async fn attempt(
        &self,
        client: &reqwest::Client,
        request: &HttpRequest,
        target: &Target,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        let config = &self.inner.config;
        let exchange = async {
            let mut builder = client
                .request(request.method.clone(), request.url.clone())
                .headers(request.headers.clone());
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            let mut response = builder
                .send()
                .await
                .map_err(|e| HttpError::from_reqwest(e, target, config.connect_timeout))?;
            let status = response.status().as_u16();
            let headers = std::mem::take(response.headers_mut());
            let max = config.max_body_bytes;
            let declared = response.content_length();
            if let Some(len) = declared
                && len > u64::try_from(max).unwrap_or(u64::MAX)
            {
                return Err(HttpError::body_too_large(target, max));
            }
            // The declared length is at most `max` here, so this never over-allocates.
            let capacity = declared.map_or(0, |len| usize::try_from(len).unwrap_or(max));
            let mut body = BytesMut::with_capacity(capacity);
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| HttpError::from_reqwest(e, target, config.connect_timeout))?
            {
                if chunk.len() > max - body.len() {
                    return Err(HttpError::body_too_large(target, max));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(HttpResponse::new(
                status,
                headers,
                body.freeze(),
                config.clock.clone(),
            ))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Err(HttpError::new(
                HttpErrorKind::Timeout,
                format!(
                    "no response from {} within {}",
                    target.endpoint,
                    fmt_duration(timeout)
                ),
            )),
        }
    }
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.inner.config;
        let mut d = f.debug_struct("Http");
        d.field("connect_timeout", &config.connect_timeout)
            .field("timeout", &config.timeout)
            .field("max_body_bytes", &config.max_body_bytes)
            .field("clock", &config.clock);
        if let Err(error) = &self.inner.clients {
            d.field("unusable", &error.message());
        }
        d.finish()
    }
}

/// Settings for an [`Http`] client; see [`Http::builder`].
#[derive(Debug, Clone)]
pub struct HttpBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    max_body_bytes: usize,
    clock: Clock,
    pinned_sha1: Option<[u8; 20]>,
}

impl Default for HttpBuilder {
    fn default() -> Self {
        HttpBuilder {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            clock: Clock::system(),
            pinned_sha1: None,
        }
    }
}

impl HttpBuilder {
    /// How long to wait for a TCP (and TLS) connection. Default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt may take, from connecting to the last byte of the body. Default
    /// 30 s. A request can override it with [`HttpRequest::timeout`]; the retry budget can
    /// shorten it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response body accepted, in bytes. Default 1 MiB (token responses are a few
    /// KB).
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// The wall clock `Retry-After` dates are measured against. Default: the system clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Trusts exactly one server certificate, named by the SHA-1 thumbprint of its DER
    /// encoding, instead of the CA roots: a Service Fabric cluster's certificate is
    /// self-signed and the cluster hands its thumbprint to the application. The host name is
    /// not checked; the pin is the server's identity. The handshake's signatures still are.
    pub fn pin_server_certificate_sha1(mut self, thumbprint: [u8; 20]) -> Self {
        self.pinned_sha1 = Some(thumbprint);
        self
    }

    /// Builds the client.
    ///
    /// Fails with [`ErrorKind::InvalidInput`] for a zero timeout or body cap, and with
    /// [`ErrorKind::Other`] when TLS or the underlying client cannot be set up.
    pub fn build(self) -> Result<Http, Error> {
        if self.connect_timeout.is_zero() || self.timeout.is_zero() {
            return Err(Error::invalid_input(
                CREDENTIAL,
                "the connect timeout and the request timeout must be greater than zero",
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(Error::invalid_input(
                CREDENTIAL,
                "max_body_bytes must be greater than zero",
            ));
        }
        let tls = tls_config(self.pinned_sha1)?;
        let direct = self.client(tls.clone()).no_proxy().build();
        let proxied = self.client(tls).build();
        let (direct, proxied) = match (direct, proxied) {
            (Ok(direct), Ok(proxied)) => (direct, proxied),
            (Err(e), _) | (_, Err(e)) => {
                return Err(Error::new(
                    ErrorKind::Other,
                    CREDENTIAL,
                    "could not build the HTTP client",
                )
                .with_source(e.without_url()));
            }
        };
        Ok(Http {
            inner: Arc::new(HttpInner {
                config: self,
                clients: Ok(Clients { direct, proxied }),
            }),
        })
    }

    fn client(&self, tls: rustls::ClientConfig) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            // reqwest is built without a rustls provider: it must be handed a full config.
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .connect_timeout(self.connect_timeout)
            .pool_max_idle_per_host(0)
            .user_agent(USER_AGENT)
    }
}

/// rustls with *ring* and the platform verifier, without touching the process-wide provider.
///
/// A system without CA certificates (a minimal container) makes the platform verifier fail; the
/// client then trusts Mozilla's roots as bundled in `webpki-roots`, and says so once.
fn tls_config(pinned_sha1: Option<[u8; 20]>) -> Result<rustls::ClientConfig, Error> {
    use rustls_platform_verifier::BuilderVerifierExt;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            Error::new(
                ErrorKind::Other,
                CREDENTIAL,
                "the TLS provider supports no safe protocol version",
            )
            .with_source(e)
        })?;
    if let Some(sha1) = pinned_sha1 {
        let verifier = PinnedCertificate { sha1, provider };
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth());
    }
    let config = match builder.clone().with_platform_verifier() {
        Ok(builder) => builder.with_no_client_auth(),
        Err(error) => {
            tracing::warn!(
                %error,
                "no usable CA certificates on this system; trusting the Mozilla roots bundled with this crate"
            );
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(config)
}

/// Accepts exactly the server certificate whose DER encoding has this SHA-1 digest.
#[derive(Debug)]
struct PinnedCertificate {
    sha1: [u8; 20],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, end_entity);
        // Not secret, but there is no reason to compare early-exit either.
        let differs = digest
            .as_ref()
            .iter()
            .zip(self.sha1)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differs == 0 {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server's certificate does not match the pinned thumbprint".to_owned(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Whether `url`'s host is loopback or link-local, which never goes through a proxy.
fn bypasses_proxy(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback() || ip.is_link_local(),
        Some(Host::Ipv6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => v4.is_loopback() || v4.is_link_local(),
            None => ip.is_loopback() || is_ipv6_link_local(ip),
        },
        Some(Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            domain == "localhost" || domain.ends_with(".localhost")
        }
        None => false,
    }
}

fn is_ipv6_link_local(ip: Ipv6Addr) -> bool {
    (ip.segments()[0] & 0xffc0) == 0xfe80
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// One HTTP request to an identity endpoint.
///
/// `Debug` shows the method, `scheme://host:port/path`, the *names* of the query parameters and
/// headers and the body's length: never a query value, a header value or the body (a form body
/// carries client secrets and assertions).
#[derive(Clone)]
pub struct HttpRequest {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
    timeout: Option<Duration>,
    /// The first invalid header, reported by [`Http::send`] so that building never panics.
    problem: Option<String>,
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
            problem: None,
        }
    }

    /// Sets a header, replacing any earlier value. An invalid name or value makes
    /// [`Http::send`] fail with [`HttpErrorKind::Other`].
    pub fn header(self, name: &str, value: impl Into<String>) -> Self {
        let value = HeaderValue::try_from(value.into());
        self.insert_header(name, value.ok())
    }

    /// Sets a header whose value is a secret: it is marked sensitive (HTTP/2 never indexes
    /// it) and shown as `<redacted>` by `Debug`.
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

    /// Overrides the client's per-attempt timeout for this request (e.g. a short IMDS probe).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The method, e.g. `"GET"`.
    pub fn method(&self) -> &str {
        self.method.as_str()
    }

    /// The URL, query included (do not log it: the query may carry identifiers).
    pub fn url(&self) -> &Url {
        &self.url
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
struct HeaderNames<'a>(&'a HeaderMap);

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

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// A complete HTTP response, any status, with its body read (and capped).
///
/// `Debug` shows the status, header names and the body's length: never the body, which
/// carries tokens.
#[derive(Clone)]
pub struct HttpResponse {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
    attempts: u32,
    elapsed: Duration,
    /// For `Retry-After` dates.
    clock: Clock,
}

impl HttpResponse {
    fn new(status: u16, headers: HeaderMap, body: Bytes, clock: Clock) -> Self {
        HttpResponse {
            status,
            headers,
            body,
            attempts: 1,
            elapsed: Duration::ZERO,
            clock,
        }
    }

    /// A response as the parsers' fuzz targets and property tests make it up: header names or
    /// values that HTTP would not carry are left out.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn for_fuzzing(
        status: u16,
        headers: &[(&str, &[u8])],
        body: &[u8],
        clock: Clock,
    ) -> Self {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            ) {
                map.append(name, value);
            }
        }
        HttpResponse::new(status, map, Bytes::copy_from_slice(body), clock)
    }

    /// The status code, e.g. `200`.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of header `name` (case-insensitive), when present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Content-Type` header.
    pub(crate) fn content_type(&self) -> Option<&str> {
        self.header(CONTENT_TYPE.as_str())
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// How many attempts the retry loop made, this response's included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The time from the first attempt's start to this response, waits between retries included.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// How long the server asked us to wait before trying again, if it said so validly.
    ///
    /// Read from `retry-after-ms` or `x-ms-retry-after-ms` (milliseconds), else `Retry-After`
    /// (whole seconds, or an IMF-fixdate HTTP date measured against the client's [`Clock`]).
    /// Garbage, negative numbers and dates in the past give `None`.
    pub fn retry_after(&self) -> Option<Duration> {
        for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
            if let Some(ms) = self.header(name).and_then(parse_digits) {
                return Some(Duration::from_millis(ms));
            }
        }
        let value = self.header("retry-after")?.trim();
        if let Some(secs) = parse_digits(value) {
            return Some(Duration::from_secs(secs));
        }
        let format = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        let date = PrimitiveDateTime::parse(value, format).ok()?.assume_utc();
        let wait = date - self.clock.now();
        if wait.is_negative() {
            // A past date is most likely clock skew: let the caller's backoff decide.
            return None;
        }
        Duration::try_from(wait).ok()
    }
}

/// A non-negative decimal integer, surrounding whitespace allowed.
fn parse_digits(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &HeaderNames(&self.headers))
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("attempts", &self.attempts)
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What kind of failure an [`HttpError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpErrorKind {
    /// Nothing listens on the port: the endpoint does not exist here.
    ConnectionRefused,
    /// The network or the host is unreachable, or the network is down.
    Unreachable,
    /// Any other failure to connect, such as a name that did not resolve.
    Connect,
    /// The TLS handshake failed: the server's certificate is not trusted (or not the pinned
    /// one), or no protocol was agreed. Not retried: another attempt would meet the same
    /// certificate.
    Tls,
    /// An attempt (or the connect) did not complete in time.
    Timeout,
    /// The response body exceeded [`HttpBuilder::max_body_bytes`].
    BodyTooLarge,
    /// The connection broke: reset, closed before the response was complete, or a malformed
    /// response.
    Io,
    /// Anything else, such as an invalid request.
    Other,
}

impl HttpErrorKind {
    /// Whether another attempt might succeed (when the policy retries transport errors).
    fn is_transient(self) -> bool {
        match self {
            HttpErrorKind::ConnectionRefused
            | HttpErrorKind::Unreachable
            | HttpErrorKind::Connect
            | HttpErrorKind::Timeout
            | HttpErrorKind::Io => true,
            HttpErrorKind::Tls | HttpErrorKind::BodyTooLarge | HttpErrorKind::Other => false,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            HttpErrorKind::ConnectionRefused => "connection refused",
            HttpErrorKind::Unreachable => "unreachable",
            HttpErrorKind::Connect => "connect failed",
            HttpErrorKind::Tls => "TLS handshake failed",
            HttpErrorKind::Timeout => "timed out",
            HttpErrorKind::BodyTooLarge => "body too large",
            HttpErrorKind::Io => "I/O error",
            HttpErrorKind::Other => "error",
        }
    }
}

impl fmt::Display for HttpErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An HTTP exchange that produced no usable response.
///
/// The message names the endpoint as `host:port` or `host:port/path` (never the query) and says
/// how many attempts were made:
///
/// ```text
/// connection refused by 127.0.0.1:4567 after 1 attempt (12 ms)
/// no response from 169.254.169.254:80/metadata/identity/oauth2/token within 1 s (3 attempts, 4.2 s)
/// ```
///
/// The cause, with its URL removed, is available through [`std::error::Error::source`].
#[derive(Clone)]
pub struct HttpError {
    kind: HttpErrorKind,
    /// What happened, without the attempts (which the retry loop adds later).
    message: String,
    attempts: u32,
    elapsed: Duration,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl HttpError {
    fn new(kind: HttpErrorKind, message: String) -> Self {
        HttpError {
            kind,
            message,
            attempts: 0,
            elapsed: Duration::ZERO,
            source: None,
        }
    }

    fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    fn body_too_large(target: &Target, max: usize) -> Self {
        HttpError::new(
            HttpErrorKind::BodyTooLarge,
            format!(
                "the response from {} is larger than the {max}-byte limit",
                target.endpoint
            ),
        )
    }

    /// Classifies a reqwest error. The URL is removed first: its query may carry identifiers.
    fn from_reqwest(error: reqwest::Error, target: &Target, connect_timeout: Duration) -> Self {
        let error = error.without_url();
        let (kind, message) = classify(&error, target, connect_timeout);
        HttpError::new(kind, message).with_source(error)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> HttpErrorKind {
        self.kind
    }

    /// This failure as `credential`'s [`Error`]: a timeout is [`ErrorKind::Timeout`], a body
    /// too large or an invalid request [`ErrorKind::Other`], anything else [`ErrorKind::Io`].
    /// The message is this error's (with attempts and elapsed time); its cause becomes the
    /// source. Sources that read some failures differently (managed identity: a refused
    /// connection means "not on Azure") look at [`HttpError::kind`] first.
    pub(crate) fn to_credential_error(
        &self,
        credential: impl Into<std::borrow::Cow<'static, str>>,
    ) -> Error {
        let kind = match self.kind {
            HttpErrorKind::Timeout => ErrorKind::Timeout,
            HttpErrorKind::BodyTooLarge | HttpErrorKind::Other => ErrorKind::Other,
            _ => ErrorKind::Io,
        };
        let error = Error::new(kind, credential, self.to_string());
        match &self.source {
            Some(source) => error.with_shared_source(source.clone()),
            None => error,
        }
    }

    /// How many attempts were made (0 when the request was invalid and nothing was sent).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The time from the first attempt's start to the failure, waits between retries included.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
}

/// Maps a reqwest error to a kind and a message, from the most specific evidence to the least:
/// the OS error kinds anywhere in the source chain, then reqwest's own flags.
fn classify(
    error: &reqwest::Error,
    target: &Target,
    connect_timeout: Duration,
) -> (HttpErrorKind, String) {
    let authority = &target.authority;
    let endpoint = &target.endpoint;
    let mut io_kind = None;
    let mut tls = false;
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(err) = next {
        tls |= err.is::<rustls::Error>();
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if io_kind.is_none() && io.kind() != io::ErrorKind::Other {
                io_kind = Some(io.kind());
            }
            // io::Error::source skips the error it wraps (which may itself be an io::Error
            // wrapping a rustls error), so step into it directly.
            if let Some(inner) = io.get_ref() {
                next = Some(inner as &(dyn StdError + 'static));
                continue;
            }
        }
        next = err.source();
    }
    match io_kind {
        Some(io::ErrorKind::ConnectionRefused) => {
            return (
                HttpErrorKind::ConnectionRefused,
                format!("connection refused by {authority}"),
            );
        }
        Some(io::ErrorKind::NetworkUnreachable) => {
            return (
                HttpErrorKind::Unreachable,
                format!("cannot reach {authority}: network unreachable"),
            );
        }
        Some(io::ErrorKind::HostUnreachable) => {
            return (
                HttpErrorKind::Unreachable,
                format!("cannot reach {authority}: no route to host"),
            );
        }
        Some(io::ErrorKind::NetworkDown) => {
            return (
                HttpErrorKind::Unreachable,
                format!("cannot reach {authority}: the network is down"),
            );
        }
        _ => {}
    }
    if error.is_timeout() {
        let message = if error.is_connect() {
            format!(
                "could not connect to {authority} within {}",
                fmt_duration(connect_timeout)
            )
        } else {
            format!("no response from {endpoint} (timed out)")
        };
        return (HttpErrorKind::Timeout, message);
    }
    if error.is_connect() {
        if tls {
            return (
                HttpErrorKind::Tls,
                format!("the TLS handshake with {authority} failed"),
            );
        }
        let message = if error.is_dns() {
            format!("could not resolve {}", target.host)
        } else {
            format!("could not connect to {authority}")
        };
        return (HttpErrorKind::Connect, message);
    }
    let message = match io_kind {
        Some(
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe,
        ) => format!("the connection to {endpoint} was reset"),
        Some(io::ErrorKind::UnexpectedEof) => {
            format!("the connection to {endpoint} closed before the response was complete")
        }
        // `chunk()` reports body errors as decode errors.
        _ if error.is_body() || error.is_decode() => {
            format!("the connection to {endpoint} broke while reading the response body")
        }
        _ if error.is_request() => {
            format!("{endpoint} closed the connection or sent a malformed response")
        }
        _ => {
            return (
                HttpErrorKind::Other,
                format!("the request to {endpoint} failed"),
            );
        }
    };
    (HttpErrorKind::Io, message)
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        let attempts = self.attempts;
        let plural = if attempts == 1 { "" } else { "s" };
        let elapsed = fmt_duration(self.elapsed);
        match self.kind {
            _ if attempts == 0 => Ok(()),
            // These messages already end with a limit ("within 1 s", "byte limit").
            HttpErrorKind::Timeout | HttpErrorKind::BodyTooLarge => {
                write!(f, " ({attempts} attempt{plural}, {elapsed})")
            }
            _ => write!(f, " after {attempts} attempt{plural} ({elapsed})"),
        }
    }
}

impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("HttpError");
        d.field("kind", &self.kind)
            .field("message", &self.message)
            .field("attempts", &self.attempts)
            .field("elapsed", &self.elapsed);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for HttpError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

// ---------------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------------

/// When and how [`Http::send`] retries.
///
/// The delay before retry `n` (0-based) is `min(initial_delay × 2ⁿ, max_delay)`, multiplied by
/// a random factor in `[1 − jitter, 1 + jitter]`. A `Retry-After` on a retryable response
/// replaces that delay (not jittered); one longer than `max_retry_after` is not waited for: the
/// response comes back at once so the caller can report the throttling. No retry starts when
/// its wait would overrun the budget.
///
/// ```
/// use std::time::Duration;
/// use azure_credentials::system::RetryPolicy;
///
/// let imds = RetryPolicy::default()
///     .with_max_retries(5)
///     .with_retry_statuses([404, 410, 429, 500, 502, 503, 504])
///     .with_budget(Duration::from_secs(75));
/// assert_eq!(imds.max_retries(), 5);
/// assert_eq!(RetryPolicy::none().max_retries(), 0);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    max_retries: u32,
    initial_delay: Duration,
    max_delay: Duration,
    jitter: f64,
    budget: Duration,
    retry_statuses: Vec<u16>,
    max_retry_after: Duration,
    retry_transport_errors: bool,
    /// Statuses retried on a fixed schedule of their own: (status, delay, max retries).
    fixed_schedules: Vec<(u16, Duration, u32)>,
}

impl Default for RetryPolicy {
    /// 3 retries, 800 ms doubling up to 10 s, jitter 0.2, a 60 s budget, statuses 408, 429, 500,
    /// 502, 503 and 504, `Retry-After` honoured up to 60 s, transport errors retried.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_delay: Duration::from_millis(800),
            max_delay: Duration::from_secs(10),
            jitter: 0.2,
            budget: Duration::from_secs(60),
            retry_statuses: vec![408, 429, 500, 502, 503, 504],
            max_retry_after: Duration::from_secs(60),
            retry_transport_errors: true,
            fixed_schedules: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries (e.g. an IMDS probe).
    pub fn none() -> Self {
        RetryPolicy::default().with_max_retries(0)
    }

    /// How many times to retry after the first attempt.
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// The delay before the first retry; each later one doubles it.
    pub fn with_initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The longest computed delay (before jitter).
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The random spread of each delay, as a fraction: `0.2` multiplies each delay by a factor
    /// in `[0.8, 1.2]`. Clamped to `[0, 1]`; NaN means `0`.
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        self
    }

    /// The total time for all attempts and waits. Each attempt's timeout is cut to what is left,
    /// but the first attempt always gets at least a millisecond.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// The response statuses that are retried.
    pub fn with_retry_statuses(mut self, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.retry_statuses = statuses.into_iter().collect();
        self
    }

    /// The longest `Retry-After` that is waited for; a longer one ends the retries.
    pub fn with_max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Whether connection failures, timeouts and broken connections are retried.
    pub fn with_retry_transport_errors(mut self, retry: bool) -> Self {
        self.retry_transport_errors = retry;
        self
    }

    /// Retries `status` every `delay` (or its `Retry-After`), up to `max_retries` times in all,
    /// instead of on the exponential curve: for a status that announces how long an outage
    /// lasts, such as IMDS's 410 ("updating, back within 70 seconds"). The status counts as
    /// retryable; the budget still bounds everything.
    pub fn with_fixed_schedule(mut self, status: u16, delay: Duration, max_retries: u32) -> Self {
        self.fixed_schedules.retain(|(s, _, _)| *s != status);
        self.fixed_schedules.push((status, delay, max_retries));
        self
    }

    /// How many times to retry after the first attempt.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The delay before the first retry.
    pub fn initial_delay(&self) -> Duration {
        self.initial_delay
    }

    /// The longest computed delay (before jitter).
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The random spread of each delay, as a fraction.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The total time for all attempts and waits.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// The response statuses that are retried.
    pub fn retry_statuses(&self) -> &[u16] {
        &self.retry_statuses
    }

    /// The longest `Retry-After` that is waited for.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// Whether transport errors are retried.
    pub fn retry_transport_errors(&self) -> bool {
        self.retry_transport_errors
    }

    /// The computed delay before retry `retry` (0-based), jitter applied.
    fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        let base = self
            .initial_delay
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_delay);
        if self.jitter == 0.0 {
            return base;
        }
        let spread = 1.0 + self.jitter * (2.0 * fastrand::f64() - 1.0);
        Duration::try_from_secs_f64(base.as_secs_f64() * spread).unwrap_or(base)
    }
}

/// Runs `attempt` until it yields a final outcome under `policy`. `attempt` gets the timeout for
/// that attempt: `attempt_timeout`, cut to what is left of the budget.
async fn retry_loop<F, Fut>(
    policy: &RetryPolicy,
    attempt_timeout: Duration,
    endpoint: &str,
    mut attempt: F,
) -> Result<HttpResponse, HttpError>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<HttpResponse, HttpError>>,
{
    let start = monotonic_now();
    let budget = policy.budget;
    // Retry only when the wait still leaves a useful slice of the budget for the attempt.
    let fits = |elapsed: Duration, delay: Duration| {
        elapsed
            .saturating_add(delay)
            .saturating_add(MIN_ATTEMPT_TIME)
            <= budget
    };
    let mut attempts: u32 = 0;
    loop {
        let left = budget.saturating_sub(monotonic_now().saturating_duration_since(start));
        let timeout = attempt_timeout.min(left).max(MIN_ATTEMPT_TIME);
        attempts = attempts.saturating_add(1);
        let outcome = attempt(timeout).await;
        let elapsed = monotonic_now().saturating_duration_since(start);
        let retries_left = attempts <= policy.max_retries;
        let delay = match outcome {
            Ok(mut response) => {
                response.attempts = attempts;
                response.elapsed = elapsed;
                let fixed = policy
                    .fixed_schedules
                    .iter()
                    .find(|(status, _, _)| *status == response.status);
                let retryable = match fixed {
                    Some((_, _, max_retries)) => attempts <= *max_retries,
                    None => retries_left && policy.retry_statuses.contains(&response.status),
                };
                if !retryable {
                    return Ok(response);
                }
                let delay = match response.retry_after() {
                    Some(wait) if wait > policy.max_retry_after => {
                        tracing::debug!(
                            status = response.status,
                            attempt = attempts,
                            retry_after = ?wait,
                            %endpoint,
                            "HTTP Retry-After exceeds the policy's maximum; not retrying"
                        );
                        return Ok(response);
                    }
                    Some(wait) => wait,
                    None => match fixed {
                        Some((_, every, _)) => *every,
                        None => policy.delay(attempts - 1),
                    },
                };
                if !fits(elapsed, delay) {
                    return Ok(response);
                }
                tracing::debug!(
                    status = response.status,
                    attempt = attempts,
                    ?delay,
                    %endpoint,
                    "retrying HTTP request"
                );
                delay
            }
            Err(mut error) => {
                error.attempts = attempts;
                error.elapsed = elapsed;
                if !policy.retry_transport_errors || !retries_left || !error.kind.is_transient() {
                    return Err(error);
                }
                let delay = policy.delay(attempts - 1);
                if !fits(elapsed, delay) {
                    return Err(error);
                }
                tracing::debug!(
                    error = %error.kind,
                    attempt = attempts,
                    ?delay,
                    %endpoint,
                    "retrying HTTP request"
                );
                delay
            }
        };
        tokio::time::sleep(delay).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Printing URLs and durations without secrets
// ---------------------------------------------------------------------------------------------

/// The parts of a URL that may appear in messages: never the query, fragment or user info.
struct Target {
    host: String,
    /// `host:port`.
    authority: String,
    /// `host:port/path`.
    endpoint: String,
}

impl Target {
    fn of(url: &Url) -> Self {
        let host = url.host_str().unwrap_or("<no host>").to_owned();
        let authority = match url.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let endpoint = format!("{authority}{}", url.path());
        Target {
            host,
            authority,
            endpoint,
        }
    }
}

/// `scheme://host:port/path`.
fn redacted_url(url: &Url) -> String {
    format!("{}://{}", url.scheme(), Target::of(url).endpoint)
}

/// `12 ms`, `1 s`, `4.2 s`.
fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{} ms", d.as_millis());
    }
    let tenths = (d.as_millis() + 50) / 100;
    if tenths.is_multiple_of(10) {
        format!("{} s", tenths / 10)
    } else {
        format!("{}.{} s", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::ManualClock;
    use std::cell::RefCell;
    use std::net::SocketAddr;
    use time::macros::datetime;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    // ---- fake transport for the retry loop --------------------------------------------------

    fn response(status: u16, headers: &[(&'static str, &str)]) -> HttpResponse {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        HttpResponse::new(status, map, Bytes::new(), Clock::system())
    }

    fn transport_error(kind: HttpErrorKind) -> HttpError {
        HttpError::new(kind, "fake failure".to_owned())
    }

    fn exact(policy: RetryPolicy) -> RetryPolicy {
        policy.with_jitter(0.0)
    }

    /// Runs the retry loop over a scripted transport; returns the outcome and each attempt's
    /// timeout.
    async fn run(
        policy: &RetryPolicy,
        mut script: impl FnMut(u32) -> Result<HttpResponse, HttpError>,
    ) -> (Result<HttpResponse, HttpError>, Vec<Duration>) {
        let timeouts = RefCell::new(Vec::new());
        let outcome = retry_loop(policy, Duration::from_secs(30), "fake:80/", |timeout| {
            let mut timeouts = timeouts.borrow_mut();
            timeouts.push(timeout);
            let outcome = script(u32::try_from(timeouts.len()).unwrap());
            async move { outcome }
        })
        .await;
        (outcome, timeouts.into_inner())
    }

    #[tokio::test(start_paused = true)]
    async fn server_errors_are_retried_with_exact_backoff_until_success() {
        let policy = exact(RetryPolicy::default());
        let (outcome, _) = run(&policy, |n| {
            Ok(response(if n < 3 { 500 } else { 200 }, &[]))
        })
        .await;
        let response = outcome.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.attempts(), 3);
        assert_eq!(response.elapsed(), Duration::from_millis(800 + 1600));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_replaces_the_backoff() {
        let policy = RetryPolicy::default(); // jitter on: Retry-After is not jittered
        let (outcome, _) = run(&policy, |n| {
            Ok(match n {
                1 => response(429, &[("retry-after", "2")]),
                _ => response(200, &[]),
            })
        })
        .await;
        let response = outcome.unwrap();
        assert_eq!((response.status(), response.attempts()), (200, 2));
        assert_eq!(response.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_above_the_maximum_returns_the_response_at_once() {
        let policy = RetryPolicy::default().with_max_retry_after(Duration::from_secs(60));
        let (outcome, timeouts) =
            run(&policy, |_| Ok(response(429, &[("retry-after", "120")]))).await;
        let response = outcome.unwrap();
        assert_eq!((response.status(), response.attempts()), (429, 1));
        assert_eq!(response.elapsed(), Duration::ZERO);
        assert_eq!(response.retry_after(), Some(Duration::from_secs(120)));
        assert_eq!(timeouts.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn non_retryable_status_is_returned_after_one_attempt() {
        let (outcome, timeouts) = run(&RetryPolicy::default(), |_| Ok(response(400, &[]))).await;
        assert_eq!(outcome.unwrap().attempts(), 1);
        assert_eq!(timeouts.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn persistent_server_errors_stop_after_max_retries() {
        let policy = exact(RetryPolicy::default().with_max_retries(3));
        let (outcome, _) = run(&policy, |_| Ok(response(500, &[]))).await;
        let response = outcome.unwrap();
        assert_eq!((response.status(), response.attempts()), (500, 4));
        assert_eq!(response.elapsed(), Duration::from_millis(800 + 1600 + 3200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_schedule_status_is_retried_on_its_own_schedule() {
        // IMDS-like: 3 quick retries in general, but 410 every 10 s up to 8 times.
        let policy = exact(
            RetryPolicy::default()
                .with_max_retries(3)
                .with_budget(Duration::from_secs(120))
                .with_fixed_schedule(410, Duration::from_secs(10), 8),
        );
        let (outcome, _) = run(&policy, |_| Ok(response(410, &[]))).await;
        let gone = outcome.unwrap();
        assert_eq!((gone.status(), gone.attempts()), (410, 9));
        assert_eq!(gone.elapsed(), Duration::from_secs(80));
        // Other statuses keep the general curve.
        let (outcome, _) = run(&policy, |_| Ok(response(500, &[]))).await;
        assert_eq!(outcome.unwrap().attempts(), 4);
        // A Retry-After on the status still wins.
        let calls = RefCell::new(0);
        let (outcome, _) = run(&policy, |_| {
            *calls.borrow_mut() += 1;
            if *calls.borrow() == 1 {
                Ok(response(410, &[("Retry-After", "3")]))
            } else {
                Ok(response(200, &[]))
            }
        })
        .await;
        assert_eq!(outcome.unwrap().elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_small_budget_stops_the_retries_early() {
        let policy = exact(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_secs(1))
                .with_budget(Duration::from_millis(2500)),
        );
        let (outcome, _) = run(&policy, |_| Ok(response(503, &[]))).await;
        let response = outcome.unwrap();
        // Waits 1 s, then the 2 s wait would overrun the budget.
        assert_eq!((response.status(), response.attempts()), (503, 2));
        assert_eq!(response.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn each_attempt_timeout_is_cut_to_the_budget_left() {
        let policy = exact(
            RetryPolicy::default()
                .with_max_retries(5)
                .with_initial_delay(Duration::from_secs(1))
                .with_budget(Duration::from_secs(12)),
        );
        let timeouts = RefCell::new(Vec::new());
        let outcome = retry_loop(&policy, Duration::from_secs(4), "fake:80/", |timeout| {
            timeouts.borrow_mut().push(timeout);
            async move {
                tokio::time::sleep(timeout).await;
                Err(transport_error(HttpErrorKind::Timeout))
            }
        })
        .await;
        // 0-4 attempt, 4-5 wait, 5-9 attempt, 9-11 wait, 11-12 attempt (1 s left), stop.
        let error = outcome.unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::Timeout);
        assert_eq!(error.attempts(), 3);
        assert_eq!(error.elapsed(), Duration::from_secs(12));
        let secs = |s| Duration::from_secs(s);
        assert_eq!(timeouts.into_inner(), vec![secs(4), secs(4), secs(1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn transport_errors_are_retried_only_when_enabled() {
        let flaky = |n| {
            if n < 3 {
                Err(transport_error(HttpErrorKind::ConnectionRefused))
            } else {
                Ok(response(200, &[]))
            }
        };
        let on = exact(RetryPolicy::default());
        let response = run(&on, flaky).await.0.unwrap();
        assert_eq!((response.status(), response.attempts()), (200, 3));
        assert_eq!(response.elapsed(), Duration::from_millis(2400));

        let off = RetryPolicy::default().with_retry_transport_errors(false);
        let error = run(&off, flaky).await.0.unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::ConnectionRefused);
        assert_eq!((error.attempts(), error.elapsed()), (1, Duration::ZERO));

        // A body that is too large will be too large again.
        let (outcome, timeouts) =
            run(&on, |_| Err(transport_error(HttpErrorKind::BodyTooLarge))).await;
        assert_eq!(outcome.unwrap_err().attempts(), 1);
        assert_eq!(timeouts.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn transport_errors_stop_after_max_retries() {
        let policy = exact(RetryPolicy::default().with_max_retries(2));
        let error = run(&policy, |_| Err(transport_error(HttpErrorKind::Io)))
            .await
            .0
            .unwrap_err();
        assert_eq!(
            (error.attempts(), error.elapsed()),
            (3, Duration::from_millis(2400))
        );
        assert!(
            error.to_string().ends_with("after 3 attempts (2.4 s)"),
            "{error}"
        );
    }

    #[test]
    fn delays_double_up_to_the_cap_and_jitter_stays_in_bounds() {
        let policy = exact(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(3)),
        );
        let delays: Vec<_> = (0..5).map(|n| policy.delay(n).as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 3000, 3000]);
        // Enormous retry numbers saturate instead of overflowing.
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(3));
        let unbounded = policy
            .clone()
            .with_max_delay(Duration::MAX)
            .with_jitter(1.0);
        let _ = unbounded.delay(200);

        let jittered = policy.with_jitter(0.2);
        for _ in 0..1000 {
            let d = jittered.delay(1);
            assert!(
                d >= Duration::from_millis(800) && d <= Duration::from_millis(1200),
                "{d:?}"
            );
        }
    }

    #[test]
    fn policy_defaults_and_setters() {
        let default = RetryPolicy::default();
        assert_eq!(default.max_retries(), 3);
        assert_eq!(default.initial_delay(), Duration::from_millis(800));
        assert_eq!(default.max_delay(), Duration::from_secs(10));
        assert_eq!(default.jitter(), 0.2);
        assert_eq!(default.budget(), Duration::from_secs(60));
        assert_eq!(default.retry_statuses(), [408, 429, 500, 502, 503, 504]);
        assert_eq!(default.max_retry_after(), Duration::from_secs(60));
        assert!(default.retry_transport_errors());
        assert_eq!(RetryPolicy::none().max_retries(), 0);
        assert_eq!(RetryPolicy::none().with_jitter(f64::NAN).jitter(), 0.0);
        assert_eq!(RetryPolicy::none().with_jitter(7.0).jitter(), 1.0);
        assert_eq!(RetryPolicy::none().with_jitter(-1.0).jitter(), 0.0);
    }

    // ---- Retry-After ------------------------------------------------------------------------

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let secs = |v| response(429, &[("Retry-After", v)]).retry_after();
        assert_eq!(secs("2"), Some(Duration::from_secs(2)));
        assert_eq!(secs(" 0 "), Some(Duration::ZERO));
        let ms = response(429, &[("retry-after-ms", "1500"), ("retry-after", "9")]);
        assert_eq!(ms.retry_after(), Some(Duration::from_millis(1500)));
        let x_ms = response(429, &[("x-ms-retry-after-ms", "250")]);
        assert_eq!(x_ms.retry_after(), Some(Duration::from_millis(250)));
        // A bad millisecond header falls through to Retry-After.
        let bad_ms = response(429, &[("retry-after-ms", "soon"), ("retry-after", "3")]);
        assert_eq!(bad_ms.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(response(429, &[]).retry_after(), None);
    }

    #[test]
    fn retry_after_rejects_garbage_and_negatives() {
        for value in [
            "",
            "soon",
            "-5",
            "1.5",
            "+3",
            "1e3",
            "99999999999999999999999",
            "Sun, 06 Nov 1994",
        ] {
            let response = response(429, &[("retry-after", value)]);
            assert_eq!(response.retry_after(), None, "{value:?}");
        }
        let negative_ms = response(429, &[("retry-after-ms", "-100")]);
        assert_eq!(negative_ms.retry_after(), None);
    }

    #[test]
    fn retry_after_http_dates_are_measured_against_the_clock() {
        let manual = ManualClock::new(datetime!(1994-11-06 8:49:00 UTC));
        let mut response = response(503, &[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        response.clock = manual.clock();
        assert_eq!(response.retry_after(), Some(Duration::from_secs(37)));
        manual.advance(Duration::from_secs(37));
        assert_eq!(response.retry_after(), Some(Duration::ZERO));
        // In the past: probably clock skew, left to the backoff.
        manual.advance(Duration::from_secs(1));
        assert_eq!(response.retry_after(), None);
    }

    // ---- small pieces -----------------------------------------------------------------------

    #[test]
    fn loopback_and_link_local_hosts_bypass_proxies() {
        for url in [
            "http://127.0.0.1:8080/x",
            "http://127.5.6.7/",
            "http://[::1]:9/",
            "http://localhost/",
            "http://LocalHost./",
            "http://imds.localhost/",
            "http://169.254.169.254/metadata/identity/oauth2/token",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(bypasses_proxy(&Url::parse(url).unwrap()), "{url}");
        }
        for url in [
            "https://login.microsoftonline.com/tenant/oauth2/v2.0/token",
            "http://10.0.0.1/",
            "http://[2001:db8::1]/",
            "http://localhost.example.com/",
            "http://169.255.0.1/",
        ] {
            assert!(!bypasses_proxy(&Url::parse(url).unwrap()), "{url}");
        }
    }

    #[test]
    fn durations_print_briefly() {
        assert_eq!(fmt_duration(Duration::from_millis(12)), "12 ms");
        assert_eq!(fmt_duration(Duration::from_secs(1)), "1 s");
        assert_eq!(fmt_duration(Duration::from_millis(4210)), "4.2 s");
        assert_eq!(fmt_duration(Duration::from_millis(59_960)), "60 s");
    }

    #[test]
    fn error_messages_count_attempts() {
        let mut error = HttpError::new(
            HttpErrorKind::Timeout,
            "no response from 169.254.169.254:80/metadata/identity/oauth2/token within 1 s".into(),
        );
        error.attempts = 3;
        error.elapsed = Duration::from_millis(4200);
        assert_eq!(
            error.to_string(),
            "no response from 169.254.169.254:80/metadata/identity/oauth2/token within 1 s (3 attempts, 4.2 s)"
        );
        let mut refused = HttpError::new(
            HttpErrorKind::ConnectionRefused,
            "connection refused by 127.0.0.1:4567".into(),
        );
        refused.attempts = 1;
        refused.elapsed = Duration::from_millis(12);
        assert_eq!(
            refused.to_string(),
            "connection refused by 127.0.0.1:4567 after 1 attempt (12 ms)"
        );
    }

    #[test]
    fn builder_rejects_zero_limits() {
        for builder in [
            Http::builder().timeout(Duration::ZERO),
            Http::builder().connect_timeout(Duration::ZERO),
            Http::builder().max_body_bytes(0),
        ] {
            let error = builder.build().unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidInput);
            assert_eq!(error.credential(), "Http");
        }
        let http = Http::builder()
            .timeout(Duration::from_secs(7))
            .build()
            .unwrap();
        assert!(format!("{http:?}").contains("7s"), "{http:?}");
    }

    #[test]
    fn send_futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let http = Http::shared();
        let request = HttpRequest::get(Url::parse("http://127.0.0.1:1/").unwrap());
        let policy = RetryPolicy::none();
        let future = http.send(&request, &policy);
        assert_send(&future);
    }

    #[tokio::test]
    async fn invalid_requests_fail_without_echoing_values() {
        let url = Url::parse("http://127.0.0.1:1/token?client_id=abc").unwrap();
        let request = HttpRequest::get(url).header("X-Test", "line\nbreak-VALUE");
        assert!(format!("{request:?}").contains("invalid value"));
        let error = Http::shared()
            .send(&request, &RetryPolicy::none())
            .await
            .unwrap_err();
        assert_eq!((error.kind(), error.attempts()), (HttpErrorKind::Other, 0));
        let text = format!("{error} {error:?}");
        assert!(
            text.contains("x-test") && !text.contains("VALUE") && !text.contains("abc"),
            "{text}"
        );

        let bad_name =
            HttpRequest::get(Url::parse("http://127.0.0.1:1/").unwrap()).header("bad name", "v");
        let error = Http::shared()
            .send(&bad_name, &RetryPolicy::none())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("invalid header name"), "{error}");

        let file = HttpRequest::get(Url::parse("file:///etc/passwd").unwrap());
        let error = Http::shared()
            .send(&file, &RetryPolicy::none())
            .await
            .unwrap_err();
        assert_eq!((error.kind(), error.attempts()), (HttpErrorKind::Other, 0));
    }

    // ---- real loopback ----------------------------------------------------------------------

    /// What the test server does with one connection, after reading its request.
    enum Reply {
        /// Writes these bytes, then closes.
        Raw(Vec<u8>),
        /// Never answers; keeps the connection open.
        Hang,
    }

    /// A request as the server saw it.
    #[derive(Debug, Clone)]
    struct Received {
        head: String,
        body: Vec<u8>,
    }

    /// A raw HTTP/1.1 server on 127.0.0.1: one scripted reply per connection, in order.
    struct Server {
        addr: SocketAddr,
        received: Arc<parking_lot::Mutex<Vec<Received>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Server {
        async fn start(replies: Vec<Reply>) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let received = Arc::new(parking_lot::Mutex::new(Vec::new()));
            let log = received.clone();
            let task = tokio::spawn(async move {
                let mut hung = Vec::new();
                for reply in replies {
                    let Ok((mut stream, _)) = listener.accept().await else {
                        return;
                    };
                    let request = read_request(&mut stream).await;
                    log.lock().push(request);
                    match reply {
                        Reply::Raw(bytes) => {
                            // The client may hang up early (body too large): not an error here.
                            let _ = stream.write_all(&bytes).await;
                            let _ = stream.shutdown().await;
                        }
                        Reply::Hang => hung.push(stream),
                    }
                }
                std::future::pending::<()>().await;
            });
            Server {
                addr,
                received,
                task,
            }
        }

        fn url(&self, path_and_query: &str) -> Url {
            Url::parse(&format!("http://{}{path_and_query}", self.addr)).unwrap()
        }

        fn received(&self) -> Vec<Received> {
            self.received.lock().clone()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn read_request(stream: &mut TcpStream) -> Received {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    let head = String::from_utf8_lossy(&buf).into_owned();
                    return Received {
                        head,
                        body: Vec::new(),
                    };
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = buf[head_end..].to_vec();
        while body.len() < length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        Received { head, body }
    }

    /// A complete response: `head` is the status line and headers; Content-Length is added.
    fn http(head: &str, body: &[u8]) -> Reply {
        let mut bytes = format!(
            "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        Reply::Raw(bytes)
    }

    fn small_http(max_body_bytes: usize) -> Http {
        Http::builder()
            .max_body_bytes(max_body_bytes)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn a_json_response_comes_back_whole() {
        let json = br#"{"access_token":"eyJ0","expires_in":"3599","token_type":"Bearer"}"#;
        let server = Server::start(vec![http(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nX-Ms-Request-Id: r-1",
            json,
        )])
        .await;
        let request =
            HttpRequest::get(server.url("/metadata/identity/oauth2/token?api-version=2018-02-01"))
                .header("Metadata", "true");
        let response = Http::shared()
            .send(&request, &RetryPolicy::default())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.body(), json);
        assert_eq!(
            response.content_type(),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(response.header("x-ms-request-id"), Some("r-1"));
        assert_eq!(response.header("X-MS-REQUEST-ID"), Some("r-1"));
        assert_eq!(response.attempts(), 1);
        let received = server.received();
        assert_eq!(received.len(), 1);
        let head = received[0].head.to_ascii_lowercase();
        assert!(
            head.starts_with(
                "get /metadata/identity/oauth2/token?api-version=2018-02-01 http/1.1\r\n"
            ),
            "{head}"
        );
        assert!(head.contains("\r\nmetadata: true\r\n"), "{head}");
        assert!(
            head.contains(&format!("user-agent: {}", USER_AGENT.to_ascii_lowercase())),
            "{head}"
        );
    }

    #[tokio::test]
    async fn a_secret_header_is_sent_but_never_printed() {
        let server = Server::start(vec![http("HTTP/1.1 200 OK", b"{}")]).await;
        let secret = Secret::new("identity-header-SECRET-123");
        let request = HttpRequest::get(server.url("/msi/token"))
            .secret_header("X-IDENTITY-HEADER", &secret)
            .header("Accept", "application/json");
        let printed = format!("{request:?} {request:#?}");
        assert!(!printed.contains("SECRET-123"), "{printed}");
        assert!(
            printed.contains("x-identity-header: <redacted>"),
            "{printed}"
        );
        assert!(printed.contains("accept"), "{printed}");

        Http::shared()
            .send(&request, &RetryPolicy::none())
            .await
            .unwrap();
        let head = server.received()[0].head.clone();
        assert!(
            head.contains("x-identity-header: identity-header-SECRET-123\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn a_form_body_arrives_intact() {
        let server = Server::start(vec![http("HTTP/1.1 200 OK", b"{}")]).await;
        let request = HttpRequest::post(server.url("/tenant/oauth2/v2.0/token")).form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", "a&b=c d+é"),
            ("scope", "https://vault.azure.net/.default"),
        ]);
        assert_eq!(request.method(), "POST");
        Http::shared()
            .send(&request, &RetryPolicy::none())
            .await
            .unwrap();
        let received = &server.received()[0];
        assert!(
            received
                .head
                .starts_with("POST /tenant/oauth2/v2.0/token HTTP/1.1")
        );
        assert!(
            received
                .head
                .to_ascii_lowercase()
                .contains("content-type: application/x-www-form-urlencoded")
        );
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&received.body)
            .into_owned()
            .collect();
        assert_eq!(
            pairs,
            [
                ("grant_type".to_owned(), "client_credentials".to_owned()),
                ("client_secret".to_owned(), "a&b=c d+é".to_owned()),
                (
                    "scope".to_owned(),
                    "https://vault.azure.net/.default".to_owned()
                ),
            ]
        );
    }

    #[tokio::test]
    async fn a_declared_length_over_the_cap_is_rejected_at_once() {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 5000000\r\nConnection: close\r\n\r\n";
        let server = Server::start(vec![Reply::Raw(head.as_bytes().to_vec())]).await;
        let request = HttpRequest::get(server.url("/big"));
        let error = small_http(1024)
            .send(&request, &RetryPolicy::default())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::BodyTooLarge);
        assert_eq!(error.attempts(), 1, "a too-large body is not retried");
        assert!(
            error
                .to_string()
                .contains("larger than the 1024-byte limit"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_chunked_body_growing_past_the_cap_is_rejected() {
        let mut bytes =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        let chunk = vec![b'x'; 16 * 1024];
        for _ in 0..128 {
            bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            bytes.extend_from_slice(&chunk);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
        let server = Server::start(vec![Reply::Raw(bytes)]).await;
        let request = HttpRequest::get(server.url("/stream"));
        let error = small_http(64 * 1024)
            .send(&request, &RetryPolicy::none())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::BodyTooLarge);
    }

    #[tokio::test]
    async fn a_body_within_the_cap_is_accepted_chunked() {
        let body = "{\"a\":1}";
        let bytes = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        );
        let server = Server::start(vec![Reply::Raw(bytes.into_bytes())]).await;
        let response = small_http(body.len())
            .send(&HttpRequest::get(server.url("/")), &RetryPolicy::none())
            .await
            .unwrap();
        assert_eq!(response.body(), body.as_bytes());
    }

    #[tokio::test]
    async fn a_closed_port_is_connection_refused() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = Url::parse(&format!(
            "http://127.0.0.1:{port}/metadata?client_id=QUERY-VALUE"
        ))
        .unwrap();
        let error = Http::shared()
            .send(&HttpRequest::get(url), &RetryPolicy::none())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::ConnectionRefused);
        assert_eq!(error.attempts(), 1);
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "connection refused by 127.0.0.1:{port} after 1 attempt ("
            )),
            "{text}"
        );
        let source = std::error::Error::source(&error).expect("the cause is kept");
        let everything = format!("{text} {error:?} {source} {source:?}");
        assert!(!everything.contains("QUERY-VALUE"), "{everything}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_never_answers_times_out() {
        let server = Server::start(vec![Reply::Hang]).await;
        let request = HttpRequest::get(server.url("/hang?secret=QUERY-VALUE"))
            .timeout(Duration::from_secs(2));
        let error = Http::shared()
            .send(&request, &RetryPolicy::none())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::Timeout);
        assert_eq!(error.attempts(), 1);
        assert!(
            error.elapsed() >= Duration::from_secs(2)
                && error.elapsed() < Duration::from_millis(2100)
        );
        let text = error.to_string();
        let expected = format!(
            "no response from {}/hang within 2 s (1 attempt, 2 s)",
            server.addr
        );
        assert_eq!(text, expected);
        assert!(!format!("{error:?}").contains("QUERY-VALUE"));
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_io_error() {
        let mut bytes =
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n".to_vec();
        bytes.extend_from_slice(&[b'{'; 50]);
        let server = Server::start(vec![Reply::Raw(bytes)]).await;
        let error = Http::shared()
            .send(&HttpRequest::get(server.url("/half")), &RetryPolicy::none())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::Io, "{error:?}");
        assert_eq!(error.attempts(), 1);
    }

    #[tokio::test]
    async fn a_connection_closed_without_a_response_is_an_io_error() {
        let server = Server::start(vec![
            Reply::Raw(Vec::new()),
            Reply::Raw(b"garbage\r\n\r\n".to_vec()),
        ])
        .await;
        for _ in 0..2 {
            let error = Http::shared()
                .send(&HttpRequest::get(server.url("/")), &RetryPolicy::none())
                .await
                .unwrap_err();
            assert_eq!(error.kind(), HttpErrorKind::Io, "{error:?}");
        }
    }

    #[tokio::test]
    async fn redirects_are_returned_not_followed() {
        let server = Server::start(vec![
            http(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere",
                b"",
            ),
            http("HTTP/1.1 200 OK", b"followed"),
        ])
        .await;
        let request = HttpRequest::get(server.url("/token"));
        let response = Http::shared()
            .send(&request, &RetryPolicy::default())
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
        assert_eq!(
            response.header("location"),
            Some("http://127.0.0.1:1/elsewhere")
        );
        assert_eq!(server.received().len(), 1);
    }

    #[tokio::test]
    async fn retries_open_a_new_connection_per_attempt() {
        let server = Server::start(vec![
            http(
                "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0",
                b"busy",
            ),
            http("HTTP/1.1 200 OK", b"ok"),
        ])
        .await;
        let response = Http::shared()
            .send(
                &HttpRequest::get(server.url("/token")),
                &RetryPolicy::default(),
            )
            .await
            .unwrap();
        assert_eq!((response.status(), response.attempts()), (200, 2));
        assert_eq!(response.body(), b"ok");
        assert_eq!(server.received().len(), 2);
    }

    // Logs are checked by tests/no_secrets_in_logs.rs, alone in its binary: a thread-local
    // subscriber in a unit test races with tracing's callsite cache while other tests run.
    #[tokio::test]
    async fn secrets_never_reach_debug_or_errors() {
        let server = Server::start(vec![
            http(
                "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0",
                b"BODY-SECRET",
            ),
            http(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json",
                b"{\"access_token\":\"BODY-SECRET\"}",
            ),
        ])
        .await;
        let request = HttpRequest::post(server.url("/token?client_id=QUERY-SECRET&api-version=1"))
            .secret_header("Authorization", &Secret::new("HEADER-SECRET"))
            .form(&[("client_secret", "FORM-SECRET")]);
        let response = Http::shared()
            .send(&request, &RetryPolicy::default())
            .await
            .unwrap();
        assert_eq!((response.status(), response.attempts()), (200, 2));

        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut refused_url = request.url().clone();
        refused_url.set_port(Some(port)).unwrap();
        let refused = HttpRequest::post(refused_url)
            .secret_header("Authorization", &Secret::new("HEADER-SECRET"))
            .form(&[("client_secret", "FORM-SECRET")]);
        let policy = exact(RetryPolicy::default().with_initial_delay(Duration::from_millis(1)));
        let error = Http::shared().send(&refused, &policy).await.unwrap_err();
        assert_eq!(error.attempts(), 4);

        let printed = format!(
            "{request:?}\n{request:#?}\n{refused:?}\n{response:?}\n{response:#?}\n{error}\n{error:?}\n{error:#?}"
        );
        for secret in [
            "QUERY-SECRET",
            "HEADER-SECRET",
            "FORM-SECRET",
            "BODY-SECRET",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        // What is shown instead: names and lengths.
        assert!(
            printed.contains("client_id") && printed.contains("api-version"),
            "{printed}"
        );
        assert!(printed.contains("authorization: <redacted>"), "{printed}");
        assert!(printed.contains("<25 bytes>"), "{printed}");
        assert!(
            printed.contains(&format!("http://{}/token", server.addr)),
            "{printed}"
        );
    }
}
