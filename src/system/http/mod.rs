//! The HTTP seam: [`Http`], one client for identity endpoints, with a [`RetryPolicy`].
//!
//! Everything the crate sends over HTTP goes through [`Http::send`]: it caps response bodies,
//! bounds the wait for each response and every pause in its body, and the whole exchange by a
//! budget, never follows redirects, keeps loopback and link-local endpoints (IMDS) and secret
//! headers away from proxies, sends secret headers over plain http only to loopback and
//! link-local hosts, and keeps secrets (secret headers, request bodies, response bodies, query
//! strings) out of `Debug`, errors and logs.
//!
//! Where things live: this file holds the client and its builder (one attempt over the network
//! or a transport); `request.rs` and `response.rs` the two messages; `error.rs` the error, its
//! kinds and how reqwest's and rustls's failures are classified; `retry.rs` the policy and the
//! loop that applies it; `tls.rs` the rustls configuration and certificate pinning;
//! `transport.rs` the in-memory transport trait; `target.rs` what of a URL may be shown and
//! which hosts are local.

mod error;
mod request;
mod response;
mod retry;
mod target;
#[cfg(test)]
mod tests;
mod tls;
mod transport;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::BytesMut;

use super::clock::{Clock, monotonic_now};
use crate::setters::setters;
use error::fmt_duration;
pub use error::{HttpError, HttpErrorKind};
pub use request::HttpRequest;
pub use response::HttpResponse;
pub use retry::RetryPolicy;
use retry::{AttemptLimits, retry_loop};
use target::Target;
pub(crate) use target::{is_local, redacted_url};
use tls::tls_config;
pub use transport::{HttpTransport, TransportFuture};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_READ_STALL_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
const USER_AGENT: &str = concat!("azure-credentials/", env!("CARGO_PKG_VERSION"));

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
    clients: Result<Backend, HttpError>,
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

    /// Whether `self` and `other` are handles to one client.
    #[cfg(test)]
    pub(crate) fn is_same_client(&self, other: &Http) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
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
    ) -> Result<Http, HttpError> {
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
                    return Err(HttpError::no_response(target, limits.head));
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
            Err(_elapsed) => return Err(HttpError::no_response(target, limits.head)),
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
                d.field("unusable", &format_args!("{error}"));
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
    setters! {
        /// How long to wait for a TCP (and TLS) connection. Default 5 s.
        connect_timeout(timeout: Duration) => connect_timeout;

        /// How long one attempt may wait for the response to start: from connecting until the
        /// status line and headers have arrived (the time to first byte). Default 30 s. The body
        /// is bounded separately, by [`read_stall_timeout`](Self::read_stall_timeout), so a large
        /// or slow body that keeps arriving is not cut off. A request can override it with
        /// [`HttpRequest::timeout`]; what is left of the retry budget can shorten it.
        timeout(timeout: Duration) => timeout;

        /// The longest pause allowed while the response body arrives: between the head and the
        /// first piece of body, and between one piece and the next. Default 10 s. A body that
        /// keeps arriving may take longer in all; what is left of the retry budget bounds it. A
        /// request can override it with [`HttpRequest::read_stall_timeout`].
        read_stall_timeout(timeout: Duration) => read_stall_timeout;

        /// The largest response body accepted, in bytes. Default 1 MiB (token responses are a few
        /// KB).
        max_body_bytes(max: usize) => max_body_bytes;

        /// The wall clock `Retry-After` dates are measured against. Default: the system clock.
        clock(clock: Clock) => clock;

        /// Trusts exactly one server certificate, named by the SHA-1 thumbprint of its DER
        /// encoding, instead of the CA roots: a Service Fabric cluster's certificate is
        /// self-signed and the cluster hands its thumbprint to the application. The host name is
        /// not checked; the pin is the server's identity. The handshake's signatures still are.
        pin_server_certificate_sha1(thumbprint: [u8; 20]) => Some(pinned_sha1);

        /// Sends every request to `transport` instead of the network: an in-memory endpoint for
        /// tests and simulations. Retries, budgets, the time to the response head, the body cap and
        /// the refusal to send secrets over plain http to a remote host all apply as usual; the
        /// connect and read-stall timeouts, TLS settings and proxies do not (there is no
        /// connection). No network client is built.
        transport(transport: Arc<dyn HttpTransport>) => Some(transport);
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`HttpErrorKind::InvalidConfig`] for a zero timeout or body cap, and
    /// [`HttpErrorKind::Other`] when TLS or the underlying client cannot be set up.
    pub fn build(self) -> Result<Http, HttpError> {
        if self.connect_timeout.is_zero()
            || self.timeout.is_zero()
            || self.read_stall_timeout.is_zero()
        {
            return Err(HttpError::new(
                HttpErrorKind::InvalidConfig,
                "the connect, request and read-stall timeouts must be greater than zero",
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(HttpError::new(
                HttpErrorKind::InvalidConfig,
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
                return Err(HttpError::new(
                    HttpErrorKind::Other,
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

/// Whether `request` bypasses the proxies: loopback and link-local hosts, and any request with
/// a secret header.
fn goes_direct(request: &HttpRequest) -> bool {
    is_local(&request.url) || request.secret_header_name().is_some()
}
