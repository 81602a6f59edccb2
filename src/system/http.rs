//! The HTTP seam: [`Http`], one client for identity endpoints, with a [`RetryPolicy`].
//!
//! Everything the crate sends over HTTP goes through [`Http::send`]: it caps response bodies,
//! bounds the wait for each response and every pause in its body, and the whole exchange by a
//! budget, never follows redirects, keeps loopback and link-local endpoints (IMDS) and secret
//! headers away from proxies, sends secret headers over plain http only to loopback and
//! link-local hosts, and keeps secrets (secret headers, request bodies, response bodies, query
//! strings) out of `Debug`, errors and logs.

use std::borrow::Cow;
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
const DEFAULT_READ_STALL_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// No attempt starts with less time than this: it could not even connect.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(1);
/// No throttled retry comes sooner than this, whatever `Retry-After: 0` or a tiny initial delay
/// say: a 429 is retried until the budget runs out, and must not become a busy loop.
const MIN_THROTTLED_WAIT: Duration = Duration::from_millis(100);
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
/// - **Timeouts**: a connect timeout; a [time to the response head](HttpBuilder::timeout) per
///   attempt (connecting, sending, and waiting until the status line and headers have arrived);
///   and a [read-stall timeout](HttpBuilder::read_stall_timeout) for each pause while the body
///   arrives. A body that keeps arriving is not cut off however long it takes in all; the
///   [`RetryPolicy`]'s budget bounds everything, every attempt and wait included.
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
/// - **Secret headers** ([`HttpRequest::secret_header`]): a request carrying one is sent over
///   plain `http` only to a loopback or link-local host (anything else fails with
///   [`HttpErrorKind::Insecure`] before a byte is sent), and never through a proxy.
///
/// # Proxies
///
/// Requests to loopback (`127.0.0.0/8`, `::1`, `localhost`) and link-local (`169.254.0.0/16`,
/// where IMDS lives, and `fe80::/10`) hosts **never** go through a proxy, whatever the
/// environment says: a proxy must not see (or answer for) a managed identity endpoint. Nor do
/// requests carrying a [secret header](HttpRequest::secret_header), wherever they go.
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
    clients: Result<Backend, Error>,
}

/// Where requests go.
enum Backend {
    Network(Clients),
    Transport(Arc<dyn HttpTransport>),
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

    /// A new client with this one's settings that trusts exactly one server certificate (see
    /// [`HttpBuilder::pin_server_certificate_sha1`]); one that sends to an [`HttpTransport`]
    /// keeps sending there.
    pub(crate) fn pinned_to_server_certificate_sha1(
        &self,
        thumbprint: [u8; 20],
    ) -> Result<Http, Error> {
        self.inner
            .config
            .clone()
            .pin_server_certificate_sha1(thumbprint)
            .build()
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
        let backend = match &self.inner.clients {
            Ok(backend) => backend,
            Err(error) => {
                return Err(HttpError::new(
                    HttpErrorKind::Other,
                    format!("no HTTP client to reach {}", target.authority),
                )
                .with_source(error.clone()));
            }
        };
        let local = is_local(&request.url);
        if let Some(name) = request.secret_header_name()
            && request.url.scheme() == "http"
            && !local
        {
            return Err(HttpError::new(
                HttpErrorKind::Insecure,
                format!(
                    "refusing to send the secret header `{name}` over plain http to {}: only loopback and link-local endpoints may receive secrets without TLS",
                    target.authority
                ),
            )
            .with_fix("use an https URL for this endpoint"));
        }
        let config = &self.inner.config;
        let head_timeout = request.timeout.unwrap_or(config.timeout);
        let stall_timeout = request
            .read_stall_timeout
            .unwrap_or(config.read_stall_timeout);
        tracing::trace!(
            method = request.method.as_str(),
            endpoint = %target.endpoint,
            "sending HTTP request"
        );
        // Nothing stands between us and a loopback or link-local port: when the host's own
        // network stack says nothing listens there, asking again will not change that.
        let refusal_is_final = local;
        retry_loop(
            policy,
            head_timeout,
            refusal_is_final,
            &target.endpoint,
            |limits| self.attempt(backend, request, &target, limits, stall_timeout),
        )
        .await
    }

    /// One attempt through the network or the configured [`HttpTransport`].
    async fn attempt(
        &self,
        backend: &Backend,
        request: &HttpRequest,
        target: &Target,
        limits: AttemptLimits,
        stall: Duration,
    ) -> Result<HttpResponse, HttpError> {
        match backend {
            Backend::Network(clients) => {
                // A secret header never goes through a proxy: over https a proxy could not
                // read it, but it has no business relaying an identity endpoint's traffic
                // either.
                let client = if goes_direct(request) {
                    &clients.direct
                } else {
                    &clients.proxied
                };
                self.attempt_network(client, request, target, limits, stall)
                    .await
            }
            Backend::Transport(transport) => {
                let sent = tokio::time::timeout(limits.head, transport.send(request)).await;
                let Ok(answer) = sent else {
                    return Err(HttpError::new(
                        HttpErrorKind::Timeout,
                        format!(
                            "no response from {} within {}",
                            target.endpoint,
                            fmt_duration(limits.head)
                        ),
                    ));
                };
                let mut response = answer?;
                let max = self.inner.config.max_body_bytes;
                if response.body.len() > max {
                    return Err(HttpError::body_too_large(target, max));
                }
                response.clock = self.inner.config.clock.clone();
                Ok(response)
            }
        }
    }

    /// One attempt over the network: connect, send and read the response head within
    /// `limits.head`, then the (capped) body with no pause longer than `stall`, everything
    /// within `limits.total`.
    async fn attempt_network(
        &self,
        client: &reqwest::Client,
        request: &HttpRequest,
        target: &Target,
        limits: AttemptLimits,
        stall: Duration,
    ) -> Result<HttpResponse, HttpError> {
        let config = &self.inner.config;
        let started = monotonic_now();
        let mut builder = client
            .request(request.method.clone(), request.url.clone())
            .headers(request.headers.clone());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let mut response = match tokio::time::timeout(limits.head, builder.send()).await {
            Ok(sent) => {
                sent.map_err(|e| HttpError::from_reqwest(e, target, config.connect_timeout))?
            }
            Err(_elapsed) => {
                return Err(HttpError::new(
                    HttpErrorKind::Timeout,
                    format!(
                        "no response from {} within {}",
                        target.endpoint,
                        fmt_duration(limits.head)
                    ),
                ));
            }
        };
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
        loop {
            let spent = monotonic_now().saturating_duration_since(started);
            let left = limits.total.saturating_sub(spent);
            let wait = stall.min(left);
            let chunk = match tokio::time::timeout(wait, response.chunk()).await {
                Ok(chunk) => {
                    chunk.map_err(|e| HttpError::from_reqwest(e, target, config.connect_timeout))?
                }
                Err(_elapsed) if wait < stall => {
                    return Err(HttpError::new(
                        HttpErrorKind::Timeout,
                        format!(
                            "the response body from {} was still arriving when the time allowed ran out ({})",
                            target.endpoint,
                            fmt_duration(limits.total)
                        ),
                    ));
                }
                Err(_elapsed) => {
                    return Err(HttpError::new(
                        HttpErrorKind::Timeout,
                        format!(
                            "the response body from {} stalled: nothing arrived for {}",
                            target.endpoint,
                            fmt_duration(stall)
                        ),
                    ));
                }
            };
            let Some(chunk) = chunk else {
                break;
            };
            if chunk.len() > max - body.len() {
                return Err(HttpError::body_too_large(target, max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse::from_parts(
            status,
            headers,
            body.freeze(),
            config.clock.clone(),
        ))
    }
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.inner.config;
        let mut d = f.debug_struct("Http");
        d.field("connect_timeout", &config.connect_timeout)
            .field("timeout", &config.timeout)
            .field("read_stall_timeout", &config.read_stall_timeout)
            .field("max_body_bytes", &config.max_body_bytes)
            .field("clock", &config.clock);
        match &self.inner.clients {
            Ok(Backend::Transport(transport)) => {
                d.field("transport", transport);
            }
            Ok(Backend::Network(_)) => {}
            Err(error) => {
                d.field("unusable", &error.message());
            }
        }
        d.finish()
    }
}

/// Settings for an [`Http`] client; see [`Http::builder`].
#[derive(Debug, Clone)]
pub struct HttpBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    read_stall_timeout: Duration,
    max_body_bytes: usize,
    clock: Clock,
    pinned_sha1: Option<[u8; 20]>,
    transport: Option<Arc<dyn HttpTransport>>,
}

impl Default for HttpBuilder {
    fn default() -> Self {
        HttpBuilder {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            read_stall_timeout: DEFAULT_READ_STALL_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            clock: Clock::system(),
            pinned_sha1: None,
            transport: None,
        }
    }
}

impl HttpBuilder {
    /// How long to wait for a TCP (and TLS) connection. Default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt may wait for the response to start: from connecting until the
    /// status line and headers have arrived (the time to first byte). Default 30 s. The body
    /// is bounded separately, by [`read_stall_timeout`](Self::read_stall_timeout), so a large
    /// or slow body that keeps arriving is not cut off. A request can override it with
    /// [`HttpRequest::timeout`]; what is left of the retry budget can shorten it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest pause allowed while the response body arrives: between the head and the
    /// first piece of body, and between one piece and the next. Default 10 s. A body that
    /// keeps arriving may take longer in all; what is left of the retry budget bounds it. A
    /// request can override it with [`HttpRequest::read_stall_timeout`].
    pub fn read_stall_timeout(mut self, timeout: Duration) -> Self {
        self.read_stall_timeout = timeout;
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

    /// Sends every request to `transport` instead of the network: an in-memory endpoint for
    /// tests and simulations. Retries, budgets, the time to the response head, the body cap and
    /// the refusal to send secrets over plain http to a remote host all apply as usual; the
    /// connect and read-stall timeouts, TLS settings and proxies do not (there is no
    /// connection). No network client is built.
    pub fn transport(mut self, transport: Arc<dyn HttpTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Builds the client.
    ///
    /// Fails with [`ErrorKind::InvalidInput`] for a zero timeout or body cap, and with
    /// [`ErrorKind::Other`] when TLS or the underlying client cannot be set up.
    pub fn build(self) -> Result<Http, Error> {
        if self.connect_timeout.is_zero()
            || self.timeout.is_zero()
            || self.read_stall_timeout.is_zero()
        {
            return Err(Error::invalid_input(
                CREDENTIAL,
                "the connect, request and read-stall timeouts must be greater than zero",
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(Error::invalid_input(
                CREDENTIAL,
                "max_body_bytes must be greater than zero",
            ));
        }
        if let Some(transport) = self.transport.clone() {
            return Ok(Http {
                inner: Arc::new(HttpInner {
                    config: self,
                    clients: Ok(Backend::Transport(transport)),
                }),
            });
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
                clients: Ok(Backend::Network(Clients { direct, proxied })),
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
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch))),
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

/// Whether `request` bypasses the proxies: loopback and link-local hosts, and any request with
/// a secret header.
fn goes_direct(request: &HttpRequest) -> bool {
    is_local(&request.url) || request.secret_header_name().is_some()
}

/// A server certificate other than the pinned one.
#[derive(Debug)]
struct PinMismatch;

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("it is not the certificate pinned by its SHA-1 thumbprint")
    }
}

impl StdError for PinMismatch {}

/// Whether `url`'s host is loopback or link-local: never proxied, and the only hosts a secret
/// header may reach over plain http.
pub(crate) fn is_local(url: &Url) -> bool {
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
// Transports
// ---------------------------------------------------------------------------------------------

/// What an [`HttpTransport`] returns for one attempt.
pub type TransportFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'a>>;

/// Where an [`Http`] client built with [`HttpBuilder::transport`] sends its requests instead of
/// the network: an in-memory endpoint, for tests and simulations that need many clients, or
/// faults, without sockets.
///
/// One call is one attempt. Answer with [`HttpResponse::new`] for any status, or fail with
/// [`HttpError::new`] as the network would (`ConnectionRefused`, `ConnectionReset`…); a future
/// that never finishes is a hang, cut off by the client's timeouts. The client's retries,
/// budgets and body cap apply to what the transport returns.
///
/// ```
/// use std::sync::Arc;
/// use azure_credentials::system::{
///     Http, HttpRequest, HttpResponse, HttpTransport, RetryPolicy, TransportFuture,
/// };
///
/// #[derive(Debug)]
/// struct AlwaysBusy;
///
/// impl HttpTransport for AlwaysBusy {
///     fn send<'a>(&'a self, _request: &'a HttpRequest) -> TransportFuture<'a> {
///         Box::pin(async { Ok(HttpResponse::new(503, [("retry-after", "1")], "busy")) })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let http = Http::builder().transport(Arc::new(AlwaysBusy)).build().unwrap();
/// let request = HttpRequest::get("http://127.0.0.1/token".parse().unwrap());
/// let response = http.send(&request, &RetryPolicy::none()).await.unwrap();
/// assert_eq!(response.status(), 503);
/// # }
/// ```
pub trait HttpTransport: Send + Sync + fmt::Debug + 'static {
    /// One attempt at `request`.
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a>;
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
    read_stall_timeout: Option<Duration>,
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
            read_stall_timeout: None,
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
    /// it) and shown as `<redacted>` by `Debug`. [`Http::send`] sends a request carrying one
    /// over plain `http` only to a loopback or link-local host (else it fails with
    /// [`HttpErrorKind::Insecure`] without sending anything), and never through a proxy.
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
    fn secret_header_name(&self) -> Option<&str> {
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

    /// Overrides the client's [time to the response head](HttpBuilder::timeout) for this
    /// request (e.g. a short IMDS probe, or an endpoint's service level).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Overrides the client's [read-stall timeout](HttpBuilder::read_stall_timeout) for this
    /// request: the longest pause allowed while the body arrives.
    pub fn read_stall_timeout(mut self, timeout: Duration) -> Self {
        self.read_stall_timeout = Some(timeout);
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

    /// The value of header `name` (case-insensitive), for an [`HttpTransport`]. It may be a
    /// secret ([`secret_header`](Self::secret_header)): do not log it.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body, for an [`HttpTransport`]. A form body carries client secrets and
    /// assertions: do not log it.
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
    /// A response with `status`, `headers` and `body`, for an [`HttpTransport`] to answer
    /// with. Headers whose name or value is not valid HTTP are left out.
    pub fn new<N, V>(
        status: u16,
        headers: impl IntoIterator<Item = (N, V)>,
        body: impl Into<Bytes>,
    ) -> Self
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_ref().as_bytes()),
                HeaderValue::from_str(value.as_ref()),
            ) {
                map.append(name, value);
            }
        }
        HttpResponse::from_parts(status, map, body.into(), Clock::system())
    }

    fn from_parts(status: u16, headers: HeaderMap, body: Bytes, clock: Clock) -> Self {
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
        HttpResponse::from_parts(status, map, Bytes::copy_from_slice(body), clock)
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
    /// certificate. The message says what was wrong with the certificate.
    Tls,
    /// The response head did not arrive in time, the body stalled, or the connect timed out.
    Timeout,
    /// The response body exceeded [`HttpBuilder::max_body_bytes`].
    BodyTooLarge,
    /// The connection broke: reset, closed before the response was complete, or a malformed
    /// response.
    Io,
    /// The request would have sent a [secret header](HttpRequest::secret_header) over plain
    /// `http` to a host that is neither loopback nor link-local. Nothing was sent.
    Insecure,
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
            HttpErrorKind::Tls
            | HttpErrorKind::BodyTooLarge
            | HttpErrorKind::Insecure
            | HttpErrorKind::Other => false,
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
            HttpErrorKind::Insecure => "insecure request",
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
/// connection refused by 127.0.0.1:4567 after 1 attempt (0 ms)
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
    /// The connection was reset, or closed before the response head: the retry loop tries
    /// once more at once.
    dropped: bool,
    /// What to do about it, when the failure itself says (an untrusted certificate).
    fix: Option<Cow<'static, str>>,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl HttpError {
    /// An error of `kind` saying `message` (no secrets in it), for an [`HttpTransport`] to fail
    /// an attempt as the network would.
    pub fn new(kind: HttpErrorKind, message: impl Into<String>) -> Self {
        HttpError {
            kind,
            message: message.into(),
            attempts: 0,
            elapsed: Duration::ZERO,
            dropped: false,
            fix: None,
            source: None,
        }
    }

    /// A connection that broke before the response head arrived (reset, or closed): an
    /// [`HttpErrorKind::Io`] error that the retry policy retries once at once, as it does for
    /// the network's.
    pub fn connection_dropped(message: impl Into<String>) -> Self {
        let mut error = HttpError::new(HttpErrorKind::Io, message);
        error.dropped = true;
        error
    }

    fn with_fix(mut self, fix: impl Into<Cow<'static, str>>) -> Self {
        self.fix = Some(fix.into());
        self
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
        let Classified {
            kind,
            message,
            dropped,
            fix,
        } = classify(&error, target, connect_timeout);
        let mut classified = HttpError::new(kind, message).with_source(error);
        classified.dropped = dropped;
        classified.fix = fix;
        classified
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> HttpErrorKind {
        self.kind
    }

    /// This failure as `credential`'s [`Error`]: a timeout is [`ErrorKind::Timeout`], an
    /// insecure request [`ErrorKind::InvalidInput`], a body too large or an invalid request
    /// [`ErrorKind::Other`], anything else [`ErrorKind::Io`]. The message is this error's (with
    /// attempts and elapsed time); its fix, when it has one (an untrusted certificate), becomes
    /// the error's; its cause becomes the source. Sources that read some failures differently
    /// (managed identity: a refused connection means "not on Azure") look at
    /// [`HttpError::kind`] first.
    pub(crate) fn to_credential_error(&self, credential: impl Into<Cow<'static, str>>) -> Error {
        let kind = match self.kind {
            HttpErrorKind::Timeout => ErrorKind::Timeout,
            HttpErrorKind::Insecure => ErrorKind::InvalidInput,
            HttpErrorKind::BodyTooLarge | HttpErrorKind::Other => ErrorKind::Other,
            _ => ErrorKind::Io,
        };
        let mut error = Error::new(kind, credential, self.to_string());
        if let Some(fix) = &self.fix {
            error = error.with_fix(fix.clone());
        }
        match &self.source {
            Some(source) => error.with_shared_source(source.clone()),
            None => error,
        }
    }

    /// What to do about this failure, when the failure itself says: how to trust a corporate
    /// CA for an untrusted certificate, `https` for an insecure request.
    pub fn fix(&self) -> Option<&str> {
        self.fix.as_deref()
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

/// What [`classify`] makes of a reqwest error.
struct Classified {
    kind: HttpErrorKind,
    message: String,
    dropped: bool,
    fix: Option<Cow<'static, str>>,
}

impl Classified {
    fn new(kind: HttpErrorKind, message: String) -> Self {
        Classified {
            kind,
            message,
            dropped: false,
            fix: None,
        }
    }

    fn dropped(message: String) -> Self {
        Classified {
            dropped: true,
            ..Classified::new(HttpErrorKind::Io, message)
        }
    }
}

/// Maps a reqwest error to a kind and a message, from the most specific evidence to the least:
/// the OS error kinds, rustls's and hyper's errors anywhere in the source chain, then reqwest's
/// own flags.
fn classify(error: &reqwest::Error, target: &Target, connect_timeout: Duration) -> Classified {
    let authority = &target.authority;
    let endpoint = &target.endpoint;
    let mut io_kind = None;
    let mut tls = None;
    let mut closed_early = false;
    let mut malformed = false;
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(err) = next {
        if let Some(rustls_error) = err.downcast_ref::<rustls::Error>() {
            tls.get_or_insert(rustls_error);
        }
        if let Some(hyper_error) = err.downcast_ref::<hyper::Error>() {
            closed_early |= hyper_error.is_incomplete_message();
            malformed |= hyper_error.is_parse();
        }
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
    let unreachable = |why: &str| {
        Classified::new(
            HttpErrorKind::Unreachable,
            format!("cannot reach {authority}: {why}"),
        )
    };
    match io_kind {
        Some(io::ErrorKind::ConnectionRefused) => {
            return Classified::new(
                HttpErrorKind::ConnectionRefused,
                format!("connection refused by {authority}"),
            );
        }
        Some(io::ErrorKind::NetworkUnreachable) => return unreachable("network unreachable"),
        Some(io::ErrorKind::HostUnreachable) => return unreachable("no route to host"),
        Some(io::ErrorKind::NetworkDown) => return unreachable("the network is down"),
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
        return Classified::new(HttpErrorKind::Timeout, message);
    }
    if error.is_connect() {
        if let Some(tls) = tls {
            return tls_failure(tls, target);
        }
        let message = if error.is_dns() {
            format!("could not resolve {}", target.host)
        } else {
            format!("could not connect to {authority}")
        };
        return Classified::new(HttpErrorKind::Connect, message);
    }
    match io_kind {
        Some(
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe,
        ) => Classified::dropped(format!("the connection to {endpoint} was reset")),
        // Over TLS, a peer that closes without a `close_notify` before answering is a dropped
        // connection like a plain close before the head.
        Some(io::ErrorKind::UnexpectedEof) if error.is_request() && !malformed => {
            Classified::dropped(format!(
                "{endpoint} closed the connection before sending a response"
            ))
        }
        Some(io::ErrorKind::UnexpectedEof) => Classified::new(
            HttpErrorKind::Io,
            format!("the connection to {endpoint} closed before the response was complete"),
        ),
        // `chunk()` reports body errors as decode errors.
        _ if error.is_body() || error.is_decode() => Classified::new(
            HttpErrorKind::Io,
            format!("the connection to {endpoint} broke while reading the response body"),
        ),
        _ if error.is_request() && closed_early && !malformed => Classified::dropped(format!(
            "{endpoint} closed the connection before sending a response"
        )),
        _ if error.is_request() && malformed => Classified::new(
            HttpErrorKind::Io,
            format!("{endpoint} sent a malformed response"),
        ),
        _ if error.is_request() => Classified::new(
            HttpErrorKind::Io,
            format!("{endpoint} closed the connection or sent a malformed response"),
        ),
        _ => Classified::new(
            HttpErrorKind::Other,
            format!("the request to {endpoint} failed"),
        ),
    }
}

/// A failed TLS handshake, saying what was wrong with the certificate when that was it.
fn tls_failure(error: &rustls::Error, target: &Target) -> Classified {
    let authority = &target.authority;
    let rustls::Error::InvalidCertificate(problem) = error else {
        return Classified::new(
            HttpErrorKind::Tls,
            format!("the TLS handshake with {authority} failed: {error}"),
        );
    };
    let (why, fix) = certificate_problem(problem, &target.host);
    let mut classified = Classified::new(
        HttpErrorKind::Tls,
        format!(
            "the TLS handshake with {authority} failed: the server's certificate is not trusted: {why}"
        ),
    );
    classified.fix = fix;
    classified
}

/// Why a certificate was refused, in words, and what to do about it.
fn certificate_problem(
    problem: &rustls::CertificateError,
    host: &str,
) -> (String, Option<Cow<'static, str>>) {
    use rustls::CertificateError as E;
    const CLOCK: &str = "check this machine's clock";
    match problem {
        E::UnknownIssuer => (
            "it is not signed by a trusted certificate authority (a self-signed certificate, or \
             a proxy that inspects TLS re-signing it with its own CA)"
                .to_owned(),
            Some(Cow::Borrowed(TRUST_A_CA)),
        ),
        E::Expired | E::ExpiredContext { .. } => {
            ("it has expired".to_owned(), Some(Cow::Borrowed(CLOCK)))
        }
        E::NotValidYet | E::NotValidYetContext { .. } => {
            ("it is not valid yet".to_owned(), Some(Cow::Borrowed(CLOCK)))
        }
        E::NotValidForName | E::NotValidForNameContext { .. } => (
            format!("it is not valid for the name {host}"),
            Some(Cow::Borrowed(
                "check the host name in the endpoint URL; a proxy that inspects TLS may also present a certificate for another name",
            )),
        ),
        E::Revoked => ("it has been revoked".to_owned(), None),
        E::BadEncoding => ("it is malformed".to_owned(), None),
        E::BadSignature
        | E::UnsupportedSignatureAlgorithmContext { .. }
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            ("its signature cannot be verified".to_owned(), None)
        }
        E::Other(other) => (other.0.to_string(), None),
        other => (format!("{other:?}"), None),
    }
}

/// How to make the platform verifier trust a corporate CA. On Linux and other Unix systems
/// (not Apple's) it reads the roots once, when the client is built, through
/// `rustls-native-certs`: `SSL_CERT_FILE` / `SSL_CERT_DIR` when either is set (instead of the
/// system store, not in addition to it), else the system's bundle.
#[cfg(all(unix, not(target_vendor = "apple")))]
const TRUST_A_CA: &str = "if your network inspects TLS with a corporate CA, add that CA's \
     certificate to the system's trust store (update-ca-certificates, update-ca-trust) or point \
     SSL_CERT_FILE at a PEM bundle holding it and the public roots (SSL_CERT_FILE and \
     SSL_CERT_DIR replace the system store rather than add to it), then restart the process";
#[cfg(windows)]
const TRUST_A_CA: &str = "if your network inspects TLS with a corporate CA, add that CA's \
     certificate to the Windows certificate store (Trusted Root Certification Authorities)";
#[cfg(target_vendor = "apple")]
const TRUST_A_CA: &str = "if your network inspects TLS with a corporate CA, add that CA's \
     certificate to the keychain and mark it trusted";
#[cfg(not(any(unix, windows)))]
const TRUST_A_CA: &str = "if your network inspects TLS with a corporate CA, add that CA's \
     certificate to the system's trust store";

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
/// - **Server errors and transport failures** (the statuses in
///   [`retry_statuses`](Self::with_retry_statuses) other than 429; refused, failed, broken or
///   timed-out connections when [`retry_transport_errors`](Self::with_retry_transport_errors))
///   are retried up to [`max_retries`](Self::with_max_retries) times. The delay before retry
///   `n` (0-based) is `min(initial_delay × 2ⁿ, max_delay)`, multiplied by a random factor in
///   `[1 − jitter, 1 + jitter]`.
/// - **Throttling** (429, when it is in the retry statuses) is retried until the budget runs
///   out, not a count of times: a herd of clients throttled together is served as fast as the
///   server allows, and none fails while the budget could still serve it. Without
///   `Retry-After` the delay is the same exponential curve, spread by a factor in
///   `[1 − throttle_jitter/2, 1 + throttle_jitter/2]`; a throttled retry never comes sooner
///   than 100 ms.
/// - **`Retry-After`** (or `retry-after-ms`) on a retried response is a floor: the retry is
///   never sent sooner. A random extra of up to `min(max(wait, initial_delay), max_delay) ×
///   throttle_jitter` goes on top (never below), so that clients told the same time do not all
///   come back at the same instant. A `Retry-After` longer than
///   [`max_retry_after`](Self::with_max_retry_after) is not waited for: the response comes
///   back at once so the caller can report (and remember) the throttling.
/// - **A dropped connection** (reset, or closed before the response head) is retried once at
///   once, then like any transport failure.
/// - **A refused connection to a loopback or link-local host** is not retried: nothing lies
///   between the client and that port, so the refusal is the answer (nothing listens there).
/// - No retry starts when its wait would overrun the [budget](Self::with_budget), and
///   `max_retries` of 0 turns every retry off, throttling included.
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
    throttle_jitter: f64,
    budget: Duration,
    retry_statuses: Vec<u16>,
    max_retry_after: Duration,
    retry_transport_errors: bool,
    /// Statuses retried on a fixed schedule of their own: (status, delay, max retries).
    fixed_schedules: Vec<(u16, Duration, u32)>,
}

impl Default for RetryPolicy {
    /// 3 retries, 800 ms doubling up to 10 s, jitter 0.2, throttle jitter 1, a 60 s budget,
    /// statuses 408, 429 (until the budget runs out), 500, 502, 503 and 504, `Retry-After`
    /// honoured up to 60 s, transport errors retried.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_delay: Duration::from_millis(800),
            max_delay: Duration::from_secs(10),
            jitter: 0.2,
            throttle_jitter: 1.0,
            budget: Duration::from_secs(60),
            retry_statuses: vec![408, 429, 500, 502, 503, 504],
            max_retry_after: Duration::from_secs(60),
            retry_transport_errors: true,
            fixed_schedules: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// The policy of every managed identity source, after Microsoft's IMDS guidance: 404, 408
    /// and 5xx up to four times on an exponential curve (1, 2, 4, 8 s, jittered); 429 until the
    /// budget runs out (IMDS allows about 20 requests a second per VM: a start-up herd of 200
    /// processes needs 10 s, and with the jitter on top of `Retry-After` all are served in
    /// about 12 s); 410 ("updating") every 10 s, up to 8 times; a `Retry-After` over 30 s
    /// not waited for; everything within 90 s.
    pub fn managed_identity() -> Self {
        RetryPolicy::default()
            .with_max_retries(4)
            .with_initial_delay(Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(8))
            .with_budget(Duration::from_secs(90))
            .with_retry_statuses([404, 408, 429].into_iter().chain(500..=599))
            // IMDS answers 410 while it updates, for up to 70 s.
            .with_fixed_schedule(410, Duration::from_secs(10), 8)
            .with_max_retry_after(Duration::from_secs(30))
    }

    /// The policy of the Entra ID credentials: the default, retrying throttling and server
    /// errors only (429, 500, 502, 503, 504) and broken connections: a 400 or 401 from Entra
    /// will not change by asking again.
    pub fn entra() -> Self {
        RetryPolicy::default().with_retry_statuses([429, 500, 502, 503, 504])
    }

    /// One attempt, no retries (e.g. an IMDS probe).
    pub fn none() -> Self {
        RetryPolicy::default().with_max_retries(0)
    }

    /// How many times to retry a server error or a transport failure after the first attempt.
    /// Throttling (429) is retried until the budget runs out instead; 0 turns every retry off.
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

    /// The spread of server-directed and throttled waits, as a fraction (default 1): after a
    /// `Retry-After` of `wait`, a random extra of up to `min(max(wait, initial_delay),
    /// max_delay) × throttle_jitter` on top of it; after a 429 without one, the exponential
    /// delay times a factor in `[1 − throttle_jitter/2, 1 + throttle_jitter/2]`. Wide on
    /// purpose: clients throttled together must come back spread out, or they meet the limit
    /// together again. Clamped to `[0, 1]`; NaN means `0`, which makes these waits exact.
    pub fn with_throttle_jitter(mut self, jitter: f64) -> Self {
        self.throttle_jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        self
    }

    /// The total time for all attempts and waits. Each attempt's time to the response head is
    /// cut to what is left, and so is the time its body may take; the first attempt always
    /// gets at least a millisecond.
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

    /// The spread of server-directed and throttled waits, as a fraction.
    pub fn throttle_jitter(&self) -> f64 {
        self.throttle_jitter
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

    /// The delay before retry `retry` (0-based) on the exponential curve, before jitter.
    fn curve(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_delay)
    }

    /// The computed delay before retry `retry` (0-based), jitter applied.
    fn delay(&self, retry: u32) -> Duration {
        scale(
            self.curve(retry),
            1.0 + self.jitter * (2.0 * random() - 1.0),
        )
    }

    /// The delay before retry `retry` (0-based) after a 429 without `Retry-After`.
    fn throttled_delay(&self, retry: u32) -> Duration {
        let factor = 1.0 + self.throttle_jitter * (random() - 0.5);
        scale(self.curve(retry), factor).max(MIN_THROTTLED_WAIT)
    }

    /// The random extra that goes on top of a `Retry-After` of `wait`.
    fn extra_after(&self, wait: Duration) -> Duration {
        let span = wait.max(self.initial_delay).min(self.max_delay);
        scale(span, self.throttle_jitter * random())
    }
}

/// A random number in `[0, 1)`.
fn random() -> f64 {
    fastrand::f64()
}

/// `duration × factor`, or `duration` when that is not a duration (NaN, negative, too long).
fn scale(duration: Duration, factor: f64) -> Duration {
    if factor == 1.0 {
        return duration;
    }
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor).unwrap_or(duration)
}

/// The time one attempt may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AttemptLimits {
    /// Until the response head has arrived.
    head: Duration,
    /// In all, body included: what is left of the budget.
    total: Duration,
}

/// Runs `attempt` until it yields a final outcome under `policy`. `attempt` gets its limits:
/// `head_timeout` to the response head and the rest of the budget in all, both cut to what is
/// left of the budget. With `refusal_is_final` (a loopback or link-local endpoint), a refused
/// connection is not retried.
async fn retry_loop<F, Fut>(
    policy: &RetryPolicy,
    head_timeout: Duration,
    refusal_is_final: bool,
    endpoint: &str,
    mut attempt: F,
) -> Result<HttpResponse, HttpError>
where
    F: FnMut(AttemptLimits) -> Fut,
    Fut: Future<Output = Result<HttpResponse, HttpError>>,
{
    let start = monotonic_now();
    let budget = policy.budget;
    let mut attempts: u32 = 0;
    // Whether a dropped connection was already retried at once (that retry is off the curve).
    let mut retried_at_once = false;
    loop {
        let left = budget.saturating_sub(monotonic_now().saturating_duration_since(start));
        let limits = AttemptLimits {
            head: head_timeout.min(left).max(MIN_ATTEMPT_TIME),
            total: left.max(MIN_ATTEMPT_TIME),
        };
        attempts = attempts.saturating_add(1);
        let outcome = attempt(limits).await;
        let elapsed = monotonic_now().saturating_duration_since(start);
        // Retry only when the wait still leaves a useful slice of the budget for the attempt;
        // `room` is the longest wait that does.
        let room = budget.checked_sub(elapsed.saturating_add(MIN_ATTEMPT_TIME));
        let fits = |wait: Duration| room.is_some_and(|room| wait <= room);
        let retries_left = attempts <= policy.max_retries;
        // The position on the exponential curve: every retry so far but the one made at once.
        let curve_step = (attempts - 1).saturating_sub(u32::from(retried_at_once));
        let delay = match outcome {
            Ok(mut response) => {
                response.attempts = attempts;
                response.elapsed = elapsed;
                let status = response.status;
                let fixed = policy.fixed_schedules.iter().find(|(s, _, _)| *s == status);
                let throttled = status == 429 && fixed.is_none();
                let retryable = match fixed {
                    Some((_, _, max_retries)) => attempts <= *max_retries,
                    // Until the budget runs out, unless retries are off altogether.
                    None if throttled => {
                        policy.max_retries > 0 && policy.retry_statuses.contains(&status)
                    }
                    None => retries_left && policy.retry_statuses.contains(&status),
                };
                if !retryable {
                    return Ok(response);
                }
                let delay = match response.retry_after() {
                    Some(wait) if wait > policy.max_retry_after => {
                        tracing::debug!(
                            status,
                            attempt = attempts,
                            retry_after = ?wait,
                            %endpoint,
                            "HTTP Retry-After exceeds the policy's maximum; not retrying"
                        );
                        return Ok(response);
                    }
                    Some(wait) => {
                        let wait = if throttled {
                            wait.max(MIN_THROTTLED_WAIT)
                        } else {
                            wait
                        };
                        if !fits(wait) {
                            return Ok(response);
                        }
                        // Never sooner than asked; the jitter goes on top, within the budget.
                        let spare = room.unwrap_or_default().saturating_sub(wait);
                        wait.saturating_add(policy.extra_after(wait).min(spare))
                    }
                    None => match fixed {
                        Some((_, every, _)) => *every,
                        None if throttled => policy.throttled_delay(curve_step),
                        None => policy.delay(curve_step),
                    },
                };
                if !fits(delay) {
                    return Ok(response);
                }
                tracing::debug!(
                    status,
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
                if refusal_is_final && error.kind == HttpErrorKind::ConnectionRefused {
                    tracing::debug!(%endpoint, "a local endpoint refused the connection; not retrying");
                    return Err(error);
                }
                let delay = if error.dropped && !retried_at_once {
                    retried_at_once = true;
                    Duration::ZERO
                } else {
                    policy.delay(curve_step)
                };
                if !fits(delay) {
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
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
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
        HttpResponse::from_parts(status, map, Bytes::new(), Clock::system())
    }

    fn transport_error(kind: HttpErrorKind) -> HttpError {
        HttpError::new(kind, "fake failure".to_owned())
    }

    fn exact(policy: RetryPolicy) -> RetryPolicy {
        policy.with_jitter(0.0).with_throttle_jitter(0.0)
    }

    /// Runs the retry loop over a scripted transport; returns the outcome and each attempt's
    /// timeout.
    async fn run(
        policy: &RetryPolicy,
        mut script: impl FnMut(u32) -> Result<HttpResponse, HttpError>,
    ) -> (Result<HttpResponse, HttpError>, Vec<Duration>) {
        let timeouts = RefCell::new(Vec::new());
        let outcome = retry_loop(
            policy,
            Duration::from_secs(30),
            false,
            "fake:80/",
            |limits| {
                let mut timeouts = timeouts.borrow_mut();
                timeouts.push(limits.head);
                let outcome = script(u32::try_from(timeouts.len()).unwrap());
                async move { outcome }
            },
        )
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
    async fn retry_after_replaces_the_backoff_as_a_floor() {
        let script = |n| {
            Ok(match n {
                1 => response(503, &[("retry-after", "2")]),
                _ => response(200, &[]),
            })
        };
        let (outcome, _) = run(&exact(RetryPolicy::default()), script).await;
        let response = outcome.unwrap();
        assert_eq!((response.status(), response.attempts()), (200, 2));
        assert_eq!(response.elapsed(), Duration::from_secs(2));
        // With the default throttle jitter, up to min(max(2 s, 800 ms), 10 s) more on top.
        let (outcome, _) = run(&RetryPolicy::default(), script).await;
        let elapsed = outcome.unwrap().elapsed();
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed <= Duration::from_secs(4),
            "{elapsed:?}"
        );
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
        let outcome = retry_loop(
            &policy,
            Duration::from_secs(4),
            false,
            "fake:80/",
            |limits| {
                timeouts.borrow_mut().push(limits);
                let timeout = limits.head;
                async move {
                    tokio::time::sleep(timeout).await;
                    Err(transport_error(HttpErrorKind::Timeout))
                }
            },
        )
        .await;
        // 0-4 attempt, 4-5 wait, 5-9 attempt, 9-11 wait, 11-12 attempt (1 s left), stop.
        let error = outcome.unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::Timeout);
        assert_eq!(error.attempts(), 3);
        assert_eq!(error.elapsed(), Duration::from_secs(12));
        let limits = |head, total| AttemptLimits {
            head: Duration::from_secs(head),
            total: Duration::from_secs(total),
        };
        assert_eq!(
            timeouts.into_inner(),
            vec![limits(4, 12), limits(4, 7), limits(1, 1)]
        );
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

    /// The IMDS policy's shape (the managed identity credential's own is private).
    #[tokio::test(start_paused = true)]
    async fn a_retry_after_is_a_floor_and_the_jitter_goes_on_top() {
        fastrand::seed(11);
        let policy = RetryPolicy::managed_identity();
        let mut waits = Vec::new();
        for _ in 0..200 {
            let (outcome, _) = run(&policy, |n| {
                Ok(match n {
                    1 => response(429, &[("retry-after", "2")]),
                    _ => response(200, &[]),
                })
            })
            .await;
            waits.push(outcome.unwrap().elapsed());
        }
        let (min, max) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
        assert!(
            *min >= Duration::from_secs(2),
            "sent before Retry-After: {min:?}"
        );
        assert!(*max <= Duration::from_secs(4), "{max:?}");
        // Throttled clients do not all come back at the same instant.
        assert!(*max - *min >= Duration::from_secs(1), "{min:?}..{max:?}");
    }

    /// A token bucket, as IMDS throttles: `rate` per second, `burst` at once, 429 with
    /// `Retry-After: 1` beyond it.
    struct Bucket {
        tokens: f64,
        last: tokio::time::Instant,
        rate: f64,
        burst: f64,
    }

    impl Bucket {
        fn take(&mut self, now: tokio::time::Instant) -> bool {
            let refill = (now - self.last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + refill).min(self.burst);
            self.last = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                true
            } else {
                false
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_start_up_herd_is_served_within_one_and_a_half_times_n_over_rate() {
        // Issue 17: 200 processes start together against an IMDS allowing 20 requests a second
        // (burst 5). Serving them all takes 10 s; every one must get its token within 15 s,
        // and none may come back before the Retry-After it was given.
        fastrand::seed(17);
        let start = monotonic_now();
        let bucket = Arc::new(parking_lot::Mutex::new(Bucket {
            tokens: 5.0,
            last: start,
            rate: 20.0,
            burst: 5.0,
        }));
        let policy = RetryPolicy::managed_identity();
        let mut herd = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let bucket = bucket.clone();
            let policy = policy.clone();
            herd.spawn(async move {
                let not_before = parking_lot::Mutex::new(start);
                let outcome = retry_loop(
                    &policy,
                    Duration::from_secs(10),
                    true,
                    "imds:80/",
                    |_limits| {
                        let now = monotonic_now();
                        assert!(now >= *not_before.lock(), "sent before its Retry-After");
                        let served = bucket.lock().take(now);
                        let answer = if served {
                            response(200, &[])
                        } else {
                            *not_before.lock() = now + Duration::from_secs(1);
                            response(429, &[("retry-after", "1")])
                        };
                        async move { Ok(answer) }
                    },
                )
                .await;
                let response = outcome.unwrap();
                (
                    response.status(),
                    response.attempts(),
                    monotonic_now() - start,
                )
            });
        }
        let mut last = Duration::ZERO;
        let mut requests = 0;
        while let Some(joined) = herd.join_next().await {
            let (status, attempts, done) = joined.unwrap();
            assert_eq!(status, 200, "a call the budget could have served failed");
            last = last.max(done);
            requests += attempts;
        }
        assert!(
            last <= Duration::from_secs(15),
            "the last token took {last:?}"
        );
        assert!(requests < 2000, "{requests} requests");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_local_connection_is_final_and_a_remote_one_is_retried() {
        let refused = |_| Err(transport_error(HttpErrorKind::ConnectionRefused));
        let policy = exact(RetryPolicy::default());
        let local = retry_loop(
            &policy,
            Duration::from_secs(30),
            true,
            "127.0.0.1:80/",
            |_| async { refused(0) },
        )
        .await
        .unwrap_err();
        assert_eq!((local.attempts(), local.elapsed()), (1, Duration::ZERO));
        let remote = retry_loop(
            &policy,
            Duration::from_secs(30),
            false,
            "10.0.0.1:80/",
            |_| async { refused(0) },
        )
        .await
        .unwrap_err();
        assert_eq!(remote.attempts(), 4);
        // Other transport failures of a local endpoint are still retried.
        let broken = retry_loop(
            &policy,
            Duration::from_secs(30),
            true,
            "127.0.0.1:80/",
            |_| async { Err(transport_error(HttpErrorKind::Timeout)) },
        )
        .await
        .unwrap_err();
        assert_eq!(broken.attempts(), 4);
    }

    fn dropped() -> HttpError {
        let mut error = transport_error(HttpErrorKind::Io);
        error.dropped = true;
        error
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_connection_is_retried_once_at_once_then_on_the_curve() {
        let policy = exact(RetryPolicy::default());
        // Dropped once: the retry follows at once.
        let (outcome, _) = run(&policy, |n| {
            if n < 2 {
                Err(dropped())
            } else {
                Ok(response(200, &[]))
            }
        })
        .await;
        let response = outcome.unwrap();
        assert_eq!(
            (response.attempts(), response.elapsed()),
            (2, Duration::ZERO)
        );
        // Dropped every time: at once, then 800 ms, 1.6 s (the curve from its start).
        let error = run(&policy, |_| Err(dropped())).await.0.unwrap_err();
        assert_eq!(
            (error.attempts(), error.elapsed()),
            (4, Duration::from_millis(800 + 1600))
        );
        // Other broken connections back off from the first retry.
        let error = run(&policy, |_| Err(transport_error(HttpErrorKind::Io)))
            .await
            .0
            .unwrap_err();
        assert_eq!(
            (error.attempts(), error.elapsed()),
            (4, Duration::from_millis(800 + 1600 + 3200))
        );
        // No retries means none, at once or not.
        let error = run(&RetryPolicy::none(), |_| Err(dropped()))
            .await
            .0
            .unwrap_err();
        assert_eq!(error.attempts(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_retried_until_the_budget_runs_out_not_max_retries() {
        let policy = exact(
            RetryPolicy::default()
                .with_max_retries(2)
                .with_initial_delay(Duration::from_secs(1))
                .with_max_delay(Duration::from_secs(4))
                .with_budget(Duration::from_secs(30)),
        );
        let (outcome, _) = run(&policy, |_| Ok(response(429, &[]))).await;
        let throttled = outcome.unwrap();
        // Waits of 1, 2, 4, 4, 4, 4, 4 and 4 s: attempts at 0, 1, 3, 7, 11, ... 27 s; the next
        // would start past the 30 s budget.
        assert_eq!(throttled.status(), 429);
        assert_eq!(throttled.attempts(), 9, "{throttled:?}");
        assert_eq!(throttled.elapsed(), Duration::from_secs(27));
        // Server errors keep the count.
        let (outcome, _) = run(&policy, |_| Ok(response(503, &[]))).await;
        assert_eq!(outcome.unwrap().attempts(), 3);
        // No retries means none.
        let (outcome, _) = run(&RetryPolicy::none(), |_| Ok(response(429, &[]))).await;
        assert_eq!(outcome.unwrap().attempts(), 1);
        // A 429 that is not in the retry statuses is not retried.
        let no_429 = policy.clone().with_retry_statuses([503]);
        let (outcome, _) = run(&no_429, |_| Ok(response(429, &[]))).await;
        assert_eq!(outcome.unwrap().attempts(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_retry_is_never_a_busy_loop() {
        let policy = exact(
            RetryPolicy::default()
                .with_initial_delay(Duration::ZERO)
                .with_budget(Duration::from_secs(2)),
        );
        for headers in [&[("retry-after", "0")][..], &[]] {
            let (outcome, _) = run(&policy, |_| Ok(response(429, headers))).await;
            let throttled = outcome.unwrap();
            // One attempt every 100 ms at most.
            assert!(throttled.attempts() <= 20, "{throttled:?}");
            assert!(throttled.attempts() >= 15, "{throttled:?}");
        }
    }

    #[test]
    fn throttled_delays_spread_around_the_curve() {
        let policy = RetryPolicy::default().with_initial_delay(Duration::from_secs(2));
        let delays: Vec<_> = (0..1000).map(|_| policy.throttled_delay(0)).collect();
        let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(*min >= Duration::from_secs(1) && *max <= Duration::from_secs(3));
        assert!(
            *max - *min > Duration::from_millis(1500),
            "{min:?}..{max:?}"
        );
        let exact = policy.with_throttle_jitter(0.0);
        assert_eq!(exact.throttled_delay(1), Duration::from_secs(4));
        assert_eq!(exact.extra_after(Duration::from_secs(5)), Duration::ZERO);
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
        assert_eq!(default.throttle_jitter(), 1.0);
        assert_eq!(
            RetryPolicy::none()
                .with_throttle_jitter(f64::NAN)
                .throttle_jitter(),
            0.0
        );
        assert_eq!(
            RetryPolicy::none()
                .with_throttle_jitter(3.0)
                .throttle_jitter(),
            1.0
        );
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
            assert!(is_local(&Url::parse(url).unwrap()), "{url}");
        }
        for url in [
            "https://login.microsoftonline.com/tenant/oauth2/v2.0/token",
            "http://10.0.0.1/",
            "http://[2001:db8::1]/",
            "http://localhost.example.com/",
            "http://169.255.0.1/",
        ] {
            assert!(!is_local(&Url::parse(url).unwrap()), "{url}");
        }
    }

    #[test]
    fn secret_headers_never_go_through_a_proxy() {
        let remote = Url::parse("https://identity.example.com/token").unwrap();
        let local = Url::parse("http://127.0.0.1:8081/msi/token").unwrap();
        assert!(!goes_direct(
            &HttpRequest::get(remote.clone()).header("Accept", "x")
        ));
        assert!(goes_direct(&HttpRequest::get(local)));
        assert!(goes_direct(
            &HttpRequest::get(remote).secret_header("Secret", &Secret::new("s"))
        ));
    }

    #[test]
    fn certificate_problems_are_said_in_words() {
        use rustls::CertificateError as E;
        let host = "login.example.com";
        let (why, fix) = certificate_problem(&E::UnknownIssuer, host);
        assert!(
            why.contains("not signed by a trusted certificate authority"),
            "{why}"
        );
        assert_eq!(fix.as_deref(), Some(TRUST_A_CA));
        let (why, fix) = certificate_problem(&E::Expired, host);
        assert_eq!(why, "it has expired");
        assert!(fix.unwrap().contains("clock"));
        let (why, _) = certificate_problem(&E::NotValidForName, host);
        assert_eq!(why, "it is not valid for the name login.example.com");
        let pinned = E::Other(rustls::OtherError(Arc::new(PinMismatch)));
        let (why, fix) = certificate_problem(&pinned, host);
        assert_eq!(
            why,
            "it is not the certificate pinned by its SHA-1 thumbprint"
        );
        assert_eq!(fix, None);
        #[cfg(all(unix, not(target_vendor = "apple")))]
        assert!(TRUST_A_CA.contains("SSL_CERT_FILE"));
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
            "no response from 169.254.169.254:80/metadata/identity/oauth2/token within 1 s",
        );
        error.attempts = 3;
        error.elapsed = Duration::from_millis(4200);
        assert_eq!(
            error.to_string(),
            "no response from 169.254.169.254:80/metadata/identity/oauth2/token within 1 s (3 attempts, 4.2 s)"
        );
        let mut refused = HttpError::new(
            HttpErrorKind::ConnectionRefused,
            "connection refused by 127.0.0.1:4567",
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
            Http::builder().read_stall_timeout(Duration::ZERO),
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
        /// Writes `head` at once, then `body` `chunk` bytes at a time, sleeping `every` before
        /// each piece (tokio time), then closes.
        Trickle {
            head: Vec<u8>,
            body: Vec<u8>,
            chunk: usize,
            every: Duration,
        },
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
                        Reply::Trickle {
                            head,
                            body,
                            chunk,
                            every,
                        } => {
                            let _ = stream.write_all(&head).await;
                            for piece in body.chunks(chunk) {
                                tokio::time::sleep(every).await;
                                if stream.write_all(piece).await.is_err() {
                                    break;
                                }
                            }
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
    async fn a_secret_header_over_plain_http_to_a_non_local_host_is_refused_unsent() {
        // 0.0.0.0 and [::] are neither loopback nor link-local. (Linux would route them to this
        // host, so even a regression of this rule sends nothing off the machine.)
        let port = MockImdsPort::refused();
        for host in ["0.0.0.0", "[::]"] {
            let url = Url::parse(&format!("http://{host}:{port}/msi/token")).unwrap();
            let request = HttpRequest::get(url)
                .secret_header("X-IDENTITY-HEADER", &Secret::new("identity-header-SECRET"));
            let error = Http::shared()
                .send(&request, &RetryPolicy::default())
                .await
                .unwrap_err();
            assert_eq!(error.attempts(), 0, "{error}");
            let text = error.to_string();
            assert!(text.contains("plain http"), "{text}");
            assert!(text.contains("x-identity-header"), "{text}");
            assert!(!format!("{text} {error:?}").contains("SECRET"), "{text}");
        }
    }

    /// A loopback port with nothing listening.
    struct MockImdsPort;

    impl MockImdsPort {
        fn refused() -> u16 {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        }
    }

    #[cfg(feature = "testing")]
    #[tokio::test]
    async fn an_untrusted_server_certificate_says_so_and_how_to_trust_a_ca() {
        let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = generated.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
        let mock = crate::testing::MockImds::start().await;
        let base = mock.serve_tls(vec![cert], key).await;
        let error = Http::shared()
            .send(&HttpRequest::get(base), &RetryPolicy::default())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::Tls);
        assert_eq!(error.attempts(), 1, "not retried");
        let text = error.to_string();
        assert!(
            text.contains("the server's certificate is not trusted"),
            "{text}"
        );
        assert!(
            text.contains("not signed by a trusted certificate authority"),
            "{text}"
        );
        let credential_error = error.to_credential_error("Test");
        let fix = credential_error.fix().unwrap_or_default();
        assert!(fix.contains("SSL_CERT_FILE"), "{fix}");
        assert_eq!(mock.request_count(), 0);
    }

    /// A TLS server that closes its first connection without a TLS `close_notify` after
    /// reading the request (an abrupt close before the response head), then answers `{}`.
    async fn tls_server_that_drops_the_first_connection() -> (Url, [u8; 20]) {
        use tokio::io::AsyncWriteExt;
        let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = generated.cert.der().clone();
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for connection in 0.. {
                let (stream, _) = listener.accept().await.unwrap();
                let mut tls = acceptor.accept(stream).await.unwrap();
                let mut buf = vec![0; 4096];
                let _ = tls.read(&mut buf).await.unwrap();
                if connection == 0 {
                    drop(tls); // no close_notify
                    continue;
                }
                tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                    .await
                    .unwrap();
                tls.shutdown().await.unwrap();
            }
        });
        let mut thumbprint = [0; 20];
        thumbprint.copy_from_slice(sha1.as_ref());
        (format!("https://{addr}/token").parse().unwrap(), thumbprint)
    }

    #[tokio::test(start_paused = true)]
    async fn a_tls_connection_closed_abruptly_before_the_response_is_retried_at_once() {
        let (url, thumbprint) = tls_server_that_drops_the_first_connection().await;
        let http = Http::builder()
            .pin_server_certificate_sha1(thumbprint)
            .build()
            .unwrap();
        let started = monotonic_now();
        let response = http
            .send(&HttpRequest::get(url), &RetryPolicy::default())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.attempts(), 2);
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "retried at once, not after the backoff: {:?}",
            started.elapsed()
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

    fn trickle(body: &[u8], chunk: usize, every: Duration) -> Reply {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        Reply::Trickle {
            head: head.into_bytes(),
            body: body.to_vec(),
            chunk,
            every,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_body_is_read_whole_past_the_head_timeout() {
        // 100 bytes, 5 a second: 20 s in all, against 2 s to the head and 3 s per pause.
        let body = [b'x'; 100];
        let server = Server::start(vec![trickle(&body, 5, Duration::from_secs(1))]).await;
        let request = HttpRequest::get(server.url("/slow"))
            .timeout(Duration::from_secs(2))
            .read_stall_timeout(Duration::from_secs(3));
        let response = Http::shared()
            .send(&request, &RetryPolicy::default())
            .await
            .unwrap();
        assert_eq!(response.body(), body);
        assert_eq!(response.attempts(), 1);
        assert_eq!(response.elapsed(), Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_times_out_after_the_stall_timeout() {
        let server = Server::start(vec![trickle(b"{\"a\":1}", 3, Duration::from_secs(3600))]).await;
        let request = HttpRequest::get(server.url("/stall?secret=QUERY-VALUE"))
            .read_stall_timeout(Duration::from_secs(4));
        let error = Http::shared()
            .send(&request, &RetryPolicy::none())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::Timeout);
        assert_eq!(error.elapsed(), Duration::from_secs(4));
        assert_eq!(
            error.to_string(),
            format!(
                "the response body from {}/stall stalled: nothing arrived for 4 s (1 attempt, 4 s)",
                server.addr
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_still_arriving_when_the_budget_runs_out_is_cut_there() {
        // 1 byte a second for 100 s, against a 30 s budget: steady, but too slow.
        let body = [b'x'; 100];
        let server = Server::start(vec![trickle(&body, 1, Duration::from_secs(1))]).await;
        let policy = RetryPolicy::default().with_budget(Duration::from_secs(30));
        let error = Http::shared()
            .send(&HttpRequest::get(server.url("/slow")), &policy)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::Timeout);
        assert_eq!(
            (error.attempts(), error.elapsed()),
            (1, Duration::from_secs(30))
        );
        assert!(error.to_string().contains("still arriving"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_closed_before_the_head_is_retried_at_once_garbage_is_not() {
        let server =
            Server::start(vec![Reply::Raw(Vec::new()), http("HTTP/1.1 200 OK", b"ok")]).await;
        let policy = exact(RetryPolicy::default());
        let response = Http::shared()
            .send(&HttpRequest::get(server.url("/")), &policy)
            .await
            .unwrap();
        assert_eq!(
            (response.attempts(), response.elapsed()),
            (2, Duration::ZERO)
        );

        let server = Server::start(vec![
            Reply::Raw(b"garbage\r\n\r\n".to_vec()),
            http("HTTP/1.1 200 OK", b"ok"),
        ])
        .await;
        let response = Http::shared()
            .send(&HttpRequest::get(server.url("/")), &policy)
            .await
            .unwrap();
        assert_eq!(
            (response.attempts(), response.elapsed()),
            (2, Duration::from_millis(800))
        );
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
                &exact(RetryPolicy::default()),
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
        let quick = RetryPolicy::default().with_initial_delay(Duration::from_millis(1));
        let response = Http::shared().send(&request, &quick).await.unwrap();
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
        assert_eq!(
            error.attempts(),
            1,
            "a refused loopback port is not retried"
        );

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

    // ---- transports ----------------------------------------------------------------------

    /// Answers with a script, one entry per attempt, and counts attempts.
    #[derive(Debug, Default)]
    struct Scripted {
        replies: parking_lot::Mutex<Vec<Result<HttpResponse, HttpError>>>,
        attempts: std::sync::atomic::AtomicU32,
    }

    impl HttpTransport for Scripted {
        fn send<'a>(&'a self, _request: &'a HttpRequest) -> TransportFuture<'a> {
            self.attempts
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let reply = self.replies.lock().remove(0);
            Box::pin(async move { reply })
        }
    }

    fn scripted(replies: Vec<Result<HttpResponse, HttpError>>) -> (Arc<Scripted>, Http) {
        let transport = Arc::new(Scripted {
            replies: parking_lot::Mutex::new(replies),
            ..Default::default()
        });
        let http = Http::builder()
            .transport(transport.clone())
            .build()
            .unwrap();
        (transport, http)
    }

    #[tokio::test(start_paused = true)]
    async fn a_transport_gets_the_clients_retries_and_limits() {
        let (transport, http) = scripted(vec![
            Err(HttpError::connection_dropped("reset")),
            Ok(HttpResponse::new(503, [("retry-after", "1")], "")),
            Ok(HttpResponse::new(
                200,
                [("content-type", "application/json")],
                "{}",
            )),
        ]);
        let request = HttpRequest::get("http://127.0.0.1/token".parse().unwrap());
        let response = http.send(&request, &RetryPolicy::default()).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert_eq!(response.attempts(), 3);
        assert_eq!(
            transport.attempts.load(std::sync::atomic::Ordering::SeqCst),
            3
        );

        // The body cap applies.
        let (_, http) = scripted(vec![Ok(HttpResponse::new(
            200,
            [("a", "b")],
            vec![b'x'; 2 << 20],
        ))]);
        let error = http.send(&request, &RetryPolicy::none()).await.unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::BodyTooLarge);
    }

    #[tokio::test(start_paused = true)]
    async fn a_transport_that_never_answers_is_cut_off_by_the_head_timeout() {
        #[derive(Debug)]
        struct Silent;
        impl HttpTransport for Silent {
            fn send<'a>(&'a self, _request: &'a HttpRequest) -> TransportFuture<'a> {
                Box::pin(std::future::pending())
            }
        }
        let http = Http::builder()
            .transport(Arc::new(Silent))
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let request = HttpRequest::get("http://127.0.0.1/token".parse().unwrap());
        let started = monotonic_now();
        let error = http.send(&request, &RetryPolicy::none()).await.unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::Timeout);
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_transport_never_sees_a_secret_bound_for_a_remote_host_over_plain_http() {
        let (transport, http) = scripted(vec![]);
        let request = HttpRequest::get("http://example.com/token".parse().unwrap())
            .secret_header("X-IDENTITY-HEADER", &Secret::new("s"));
        let error = http.send(&request, &RetryPolicy::none()).await.unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::Insecure);
        assert_eq!(
            transport.attempts.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
    }
}
