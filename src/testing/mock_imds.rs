//! [`MockImds`]: a loopback stand-in for the Azure Instance Metadata Service (IMDS) and the App
//! Service managed identity endpoint, scriptable to misbehave on purpose.

use std::any::Any;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use url::Url;

use super::loopback_http::{
    self, Action, Incoming, JSON, Outgoing, check_status, read_request, reason, reject, send,
};
use crate::Secret;
use crate::catch_unwind::CatchUnwind;
use crate::system::Clock;

const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
const APP_SERVICE_PATH: &str = "/msi/token";
const AZURE_ML_PATH: &str = "/azureml/token";
const CLOUD_SHELL_PATH: &str = "/cloudshell/token";
const SERVICE_FABRIC_PATH: &str = "/servicefabric/token";
const ARC_PATH: &str = "/arc/token";
/// The `Server` header of every answer.
const SERVER: &str = "mock-imds";
/// Header names whose values `Debug` output shows; every other value is redacted, since a
/// request may carry a secret under any name.
const PLAIN_HEADERS: [&str; 8] = [
    "accept",
    "content-length",
    "content-type",
    "host",
    "metadata",
    "user-agent",
    "connection",
    "transfer-encoding",
];

/// A loopback HTTP/1.1 server speaking the IMDS and App Service managed identity token
/// protocols, for tests, benches and demos.
///
/// It listens on `127.0.0.1` only and never sends traffic anywhere else. Token requests that pass
/// the protocol checks are answered from a FIFO script of [`MockReply`]s, then from a default
/// reply (initially [`MockReply::auto_token`]). Every request is recorded.
///
/// | Path | Checks, before the script is consulted |
/// | --- | --- |
/// | `/metadata/identity/oauth2/token` (IMDS) | `GET` (405); `Metadata: true` (400, as real IMDS; see [`require_metadata_header`](Self::require_metadata_header)); a `resource` parameter (400) |
/// | `/msi/token` (App Service) | `GET` (405); an `X-IDENTITY-HEADER` (401; see [`set_identity_header`](Self::set_identity_header)); a `resource` parameter (400) |
/// | anything else | 404 |
///
/// Every response carries `Connection: close`, and the connection is closed after it.
///
/// Dropping the `MockImds` stops the server: open connections (including [hung](MockReply::hang)
/// ones) are closed. If a server task panicked, the drop re-raises that panic, so a bug in the
/// mock fails the test that hit it.
///
/// ```
/// use azure_credentials::testing::{MockImds, MockReply};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mock = MockImds::start().await;
/// mock.push(MockReply::status(503).with_header("Retry-After", "2"));
/// mock.push(MockReply::token("second-try"));
/// // Point the credential under test at `mock.imds_endpoint()`: its first request gets a 503,
/// // its retry gets a token, and later requests get `mock-imds-token-<n>` tokens.
/// assert_eq!(mock.imds_endpoint().path(), "/metadata/identity/oauth2/token");
/// assert_eq!(mock.token_request_count(), 0);
/// # }
/// ```
pub struct MockImds {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
    /// TLS fronts started by [`MockImds::serve_tls`].
    tls_tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl MockImds {
    /// The `client_id` of the tokens the mock issues when the request names none.
    pub const DEFAULT_CLIENT_ID: &'static str = "7a1d5c9e-3f2b-4e8a-9c6d-0b1e2f3a4b5c";

    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime (current-thread or
    /// multi-thread). Each connection is served on its own task.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or if no loopback port can be bound.
    pub async fn start() -> MockImds {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("MockImds: cannot bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("MockImds: the listener has no local address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
            panic: Mutex::new(None),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        MockImds {
            addr,
            shared,
            accept_task,
            tls_tasks: Mutex::new(Vec::new()),
        }
    }

    /// Starts an https front for this mock on another loopback port, presenting `chain` (leaf
    /// first) with `key`, and returns its base URL (`https://127.0.0.1:PORT/`). A Service Fabric
    /// cluster's endpoint is https with a self-signed certificate that clients pin: generate
    /// one in the test (e.g. with `rcgen`) and hand its thumbprint to the credential.
    ///
    /// # Panics
    ///
    /// If the certificate or key is unusable, or no loopback port can be bound.
    pub async fn serve_tls(
        &self,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Url {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("MockImds: TLS protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("MockImds: the certificate and key do not make a TLS server");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("MockImds: cannot bind 127.0.0.1:0");
        let tls_addr = listener
            .local_addr()
            .expect("MockImds: the listener has no local address");
        let plain = self.addr;
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                loopback_http::no_delay(&stream);
                connections.spawn(async move {
                    // A client that rejects the certificate ends the handshake: nothing to do.
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut backend) = TcpStream::connect(plain).await else {
                        return;
                    };
                    loopback_http::no_delay(&backend);
                    if tokio::io::copy_bidirectional(&mut tls, &mut backend)
                        .await
                        .is_err()
                    {
                        // The plain server reset the connection (or the client did): pass the
                        // reset on instead of a close, as a server speaking TLS itself would.
                        let _ = tls.get_ref().0.set_zero_linger();
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        self.tls_tasks.lock().push(task);
        Url::parse(&format!("https://{tls_addr}/")).expect("a socket address makes a valid URL")
    }

    /// A loopback address with nothing listening on it, for "connection refused" tests.
    ///
    /// The port was free a moment ago; another process could take it in between, which is
    /// unlikely enough for tests.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub fn refused_address() -> SocketAddr {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("MockImds: cannot bind 127.0.0.1:0");
        listener
            .local_addr()
            .expect("MockImds: the listener has no local address")
        // The listener is dropped here, so connecting to the address is refused.
    }

    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).expect("a socket address makes a valid URL")
    }

    /// The IMDS token endpoint: `http://127.0.0.1:PORT/metadata/identity/oauth2/token`.
    pub fn imds_endpoint(&self) -> Url {
        self.endpoint(IMDS_PATH)
    }

    /// The App Service token endpoint (what `IDENTITY_ENDPOINT` holds on App Service):
    /// `http://127.0.0.1:PORT/msi/token`.
    pub fn app_service_endpoint(&self) -> Url {
        self.endpoint(APP_SERVICE_PATH)
    }

    /// An Azure ML token endpoint (what `MSI_ENDPOINT` holds, with `MSI_SECRET`):
    /// `http://127.0.0.1:PORT/azureml/token`. It checks the `secret` header like the App Service
    /// endpoint checks `X-IDENTITY-HEADER`.
    pub fn azure_ml_endpoint(&self) -> Url {
        self.endpoint(AZURE_ML_PATH)
    }

    /// A Cloud Shell token endpoint (what `MSI_ENDPOINT` holds alone):
    /// `http://127.0.0.1:PORT/cloudshell/token`. It takes a POST with a `resource` form field and
    /// `Metadata: true`.
    pub fn cloud_shell_endpoint(&self) -> Url {
        self.endpoint(CLOUD_SHELL_PATH)
    }

    /// A Service Fabric token endpoint path, `/servicefabric/token`, checking the `Secret`
    /// header. Real clusters serve it over https with a self-signed certificate: put a TLS
    /// front before it with [`MockImds::serve_tls`].
    pub fn service_fabric_endpoint(&self) -> Url {
        self.endpoint(SERVICE_FABRIC_PATH)
    }

    /// An Azure Arc agent's token endpoint: `http://127.0.0.1:PORT/arc/token`. Without the
    /// right `Authorization: Basic <key>` it answers 401 with
    /// `WWW-Authenticate: Basic realm=<key path>`; see [`MockImds::set_arc_key`].
    pub fn arc_endpoint(&self) -> Url {
        self.endpoint(ARC_PATH)
    }

    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base_url();
        url.set_path(path);
        url
    }

    /// Queues `reply` for the next token request that passes the protocol checks.
    pub fn push(&self, reply: MockReply) {
        self.shared.state.lock().queue.push_back(reply);
    }

    /// Queues several replies, in order.
    pub fn push_many(&self, replies: impl IntoIterator<Item = MockReply>) {
        self.shared.state.lock().queue.extend(replies);
    }

    /// The reply used when the queue is empty (initially [`MockReply::auto_token`]).
    pub fn set_default(&self, reply: MockReply) {
        self.shared.state.lock().default = reply;
    }

    /// Throttles token requests as IMDS does: a token bucket of `burst` requests refilled at
    /// `per_second` (IMDS documents about 20 a second per VM; `burst` 5), and past it `429`
    /// with `Retry-After` (whole seconds, at least 1) instead of the next reply. Time is
    /// tokio's clock, so it follows paused time in tests. Throttled requests are recorded like
    /// the others and counted by [`throttled_count`](Self::throttled_count).
    pub fn rate_limit(&self, per_second: f64, burst: u32, retry_after: Duration) {
        self.shared.state.lock().rate_limit = Some(RateLimit {
            per_second,
            burst: f64::from(burst),
            retry_after,
            tokens: f64::from(burst),
            last: crate::system::monotonic_now(),
        });
    }

    /// Token requests answered `429` by the [rate limit](Self::rate_limit).
    pub fn throttled_count(&self) -> usize {
        self.shared.state.lock().throttled
    }

    /// The clock the token replies' `expires_on` and `not_before` are computed from (initially
    /// the system clock). Pass a [`ManualClock`](crate::system::ManualClock)'s clock to make
    /// them predictable.
    pub fn set_clock(&self, clock: Clock) {
        self.shared.state.lock().clock = clock;
    }

    /// The secret the App Service endpoint expects in `X-IDENTITY-HEADER`; a request with
    /// another value gets 401. Until this is called any value is accepted, but the header must
    /// be present.
    pub fn set_identity_header(&self, secret: &str) {
        self.shared.state.lock().identity_secret = Some(Secret::new(secret));
    }

    /// The key file the Arc endpoint's challenge names, and the contents it then expects in
    /// `Authorization: Basic <contents>`. Write the same file where the credential will look.
    pub fn set_arc_key(&self, path: impl Into<std::path::PathBuf>, contents: &str) {
        self.shared.state.lock().arc_key = Some((path.into(), Secret::new(contents)));
    }

    /// Whether the Arc endpoint's token replies name the requested user-assigned identity
    /// (`client_id`, `object_id`, `msi_res_id`), as current agents do (default `true`); `false`
    /// plays an older agent that ignores the request and returns the system identity's token.
    pub fn arc_echoes_user_assigned_id(&self, echo: bool) {
        self.shared.state.lock().arc_echo = echo;
    }

    /// Whether the IMDS endpoint requires the `Metadata: true` header (default `true`, as real
    /// IMDS does: without it the answer is a 400, which availability probes rely on).
    pub fn require_metadata_header(&self, required: bool) {
        self.shared.state.lock().require_metadata = required;
    }

    /// Every request received, in arrival order, including those answered by the protocol
    /// checks. Input that could not be parsed as an HTTP request (answered 400, 413, 431 or 501)
    /// is not recorded.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state.lock().requests.clone()
    }

    /// How many requests were received (the length of [`requests`](Self::requests)).
    pub fn request_count(&self) -> usize {
        self.shared.state.lock().requests.len()
    }

    /// How many requests passed the protocol checks and were answered from the script (or the
    /// default reply).
    pub fn token_request_count(&self) -> usize {
        self.shared.state.lock().token_requests
    }

    /// Forgets the recorded requests and resets [`token_request_count`](Self::token_request_count).
    /// The script, the default reply and the numbering of auto tokens are kept.
    pub fn clear_requests(&self) {
        let mut state = self.shared.state.lock();
        state.requests.clear();
        state.token_requests = 0;
    }
}

impl fmt::Debug for MockImds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("MockImds")
            .field("addr", &self.addr)
            .field("queued", &state.queue)
            .field("default", &state.default)
            .field("require_metadata", &state.require_metadata)
            // Never the secret itself.
            .field(
                "identity_header",
                &if state.identity_secret.is_some() {
                    "<set>"
                } else {
                    "<any>"
                },
            )
            .field("clock", &state.clock)
            .field("request_count", &state.requests.len())
            .field("token_request_count", &state.token_requests)
            .finish()
    }
}

impl Drop for MockImds {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.accept_task.abort();
        for task in self.tls_tasks.lock().drain(..) {
            task.abort();
        }
        let payload = self.shared.panic.lock().take();
        if let Some(payload) = payload {
            // A second panic while unwinding would abort the process and hide the first one.
            if !std::thread::panicking() {
                std::panic::resume_unwind(payload);
            }
        }
    }
}

/// One scripted answer of a [`MockImds`] to a token request: a token, an error, or a fault.
///
/// Build one with a constructor, then adjust it with [`with_delay`](Self::with_delay),
/// [`with_header`](Self::with_header), [`with_trickle`](Self::with_trickle) and, for tokens,
/// [`expires_in`](Self::expires_in), [`refresh_in`](Self::refresh_in) and
/// [`client_id`](Self::client_id). For a payload no constructor has, [`raw`](Self::raw) sends
/// any status, content type and bytes; [`redirect`](Self::redirect) and
/// [`short_body`](Self::short_body) cover a 3xx and a body cut short of its `Content-Length`.
///
/// Token replies have the shape of the endpoint that was asked. From IMDS, every value a string:
///
/// ```text
/// {"access_token":"mock-imds-token-1","client_id":"…","expires_in":"3600","expires_on":"1893459600",
///  "ext_expires_in":"3600","not_before":"1893456000","resource":"https://vault.azure.net","token_type":"Bearer"}
/// ```
///
/// From App Service, without `expires_in`, `ext_expires_in` and `not_before`:
///
/// ```text
/// {"access_token":"mock-imds-token-1","expires_on":"1893459600","resource":"https://vault.azure.net","token_type":"Bearer","client_id":"…"}
/// ```
///
/// `expires_on` is the mock's clock at the request plus `expires_in`; `resource` echoes the
/// request; `client_id` echoes the request's `client_id` parameter, or is
/// [`MockImds::DEFAULT_CLIENT_ID`].
///
/// `Debug` output never shows a token, a raw body or a sensitive header value.
#[derive(Clone)]
#[must_use = "a MockReply does nothing until it is pushed to a MockImds"]
pub struct MockReply {
    kind: ReplyKind,
    delay: Option<Duration>,
    headers: Vec<(String, String)>,
    /// Send the body `.0` bytes at a time, waiting `.1` before each piece.
    trickle: Option<(usize, Duration)>,
}

#[derive(Clone, Debug)]
enum ReplyKind {
    Token {
        value: TokenValue,
        expires_in: u64,
        refresh_in: Option<u64>,
        /// Named instead of the echo of the request's id.
        client_id: Option<String>,
    },
    Json {
        status: u16,
        body: RawBody,
    },
    Raw {
        status: u16,
        content_type: Option<String>,
        body: RawBytes,
    },
    ShortBody {
        status: u16,
        body: RawBytes,
        content_length: usize,
    },
    Error {
        status: u16,
        error: String,
        description: String,
    },
    Html {
        status: u16,
    },
    MalformedJson,
    Oversized {
        bytes: usize,
    },
    Hang,
    Close,
    Reset,
    HalfBody,
    /// Panics inside the server task, to test that the panic reaches the test.
    #[cfg(test)]
    Panic,
}

#[derive(Clone, Debug)]
enum TokenValue {
    /// `mock-imds-token-<n>`.
    Auto,
    Fixed(Secret),
}

/// A raw body that may hold a token: `Debug` shows its length only.
#[derive(Clone)]
struct RawBody(String);

impl fmt::Debug for RawBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

/// Raw body bytes that may hold a token: `Debug` shows their length only.
#[derive(Clone)]
struct RawBytes(Vec<u8>);

impl fmt::Debug for RawBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl MockReply {
    fn new(kind: ReplyKind) -> Self {
        MockReply {
            kind,
            delay: None,
            headers: Vec::new(),
            trickle: None,
        }
    }

    /// A token `mock-imds-token-<n>`, where `n` counts the token replies (of any kind) the mock
    /// has served, starting at 1; it expires in 3600 seconds. This is the initial default reply.
    ///
    /// Leak tests can look for the `mock-imds-token-` prefix in logs and error messages.
    pub fn auto_token() -> Self {
        MockReply::new(ReplyKind::Token {
            value: TokenValue::Auto,
            expires_in: 3600,
            refresh_in: None,
            client_id: None,
        })
    }

    /// A token with this value, expiring in 3600 seconds.
    pub fn token(value: &str) -> Self {
        MockReply::new(ReplyKind::Token {
            value: TokenValue::Fixed(Secret::new(value)),
            expires_in: 3600,
            refresh_in: None,
            client_id: None,
        })
    }

    /// Sets the token's lifetime: `expires_in`, and `expires_on` = now + `secs`.
    ///
    /// # Panics
    ///
    /// If this is not a token reply.
    pub fn expires_in(mut self, secs: u64) -> Self {
        match &mut self.kind {
            ReplyKind::Token { expires_in, .. } => *expires_in = secs,
            _ => panic!("MockReply::expires_in applies to token replies only"),
        }
        self
    }

    /// Adds a `refresh_in` field (seconds, as a string like the other values).
    ///
    /// # Panics
    ///
    /// If this is not a token reply.
    pub fn refresh_in(mut self, secs: u64) -> Self {
        match &mut self.kind {
            ReplyKind::Token { refresh_in, .. } => *refresh_in = Some(secs),
            _ => panic!("MockReply::refresh_in applies to token replies only"),
        }
        self
    }

    /// Makes the token reply name this `client_id`, whatever the request asked for: an endpoint
    /// that answers for another identity than the one requested.
    ///
    /// # Panics
    ///
    /// If this is not a token reply.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        match &mut self.kind {
            ReplyKind::Token { client_id, .. } => *client_id = Some(id.into()),
            _ => panic!("MockReply::client_id applies to token replies only"),
        }
        self
    }

    /// A response with this status, `Content-Type` (none when `None`) and body bytes, sent
    /// as they are with a matching `Content-Length`: any payload a test needs, such as JSON
    /// after a UTF-8 byte order mark, plain text, or bytes that are not UTF-8.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number, or the content type contains a line break.
    pub fn raw(status: u16, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Self {
        check_status(status);
        assert!(
            content_type.is_none_or(|c| !c.contains(['\r', '\n'])),
            "MockReply::raw: invalid content type {content_type:?}"
        );
        MockReply::new(ReplyKind::Raw {
            status,
            content_type: content_type.map(str::to_owned),
            body: RawBytes(body.into()),
        })
    }

    /// A redirect: this status (a 3xx, say) with `Location: location` and an empty body, as a
    /// captive portal or a proxy sends. Clients of the crate never follow it.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number, or `location` contains a line break.
    pub fn redirect(status: u16, location: &str) -> Self {
        MockReply::raw(status, None, Vec::new()).with_header("Location", location)
    }

    /// A response with this status and `Content-Type: application/json` that announces
    /// `content_length` bytes but sends only `body`, then closes the connection: a body cut
    /// short in transit. ([`half_body`](Self::half_body) is one such reply.)
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number, or `body` is not shorter than `content_length`.
    pub fn short_body(status: u16, body: impl Into<Vec<u8>>, content_length: usize) -> Self {
        check_status(status);
        let body = body.into();
        assert!(
            body.len() < content_length,
            "MockReply::short_body: {} bytes is not short of {content_length}",
            body.len()
        );
        MockReply::new(ReplyKind::ShortBody {
            status,
            body: RawBytes(body),
            content_length,
        })
    }

    /// A response with this status and raw body, `Content-Type: application/json`.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        check_status(status);
        MockReply::new(ReplyKind::Json {
            status,
            body: RawBody(body.into()),
        })
    }

    /// An error in IMDS's shape: `{"error":"…","error_description":"…"}`, e.g.
    /// `MockReply::error(400, "invalid_request", "Identity not found")`.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number.
    pub fn error(status: u16, error: &str, description: &str) -> Self {
        check_status(status);
        MockReply::new(ReplyKind::Error {
            status,
            error: error.to_owned(),
            description: description.to_owned(),
        })
    }

    /// An error in IMDS's shape with a generic description (one that no SDK special-cases,
    /// unlike `Identity not found` or `unreachable`).
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number.
    pub fn status(status: u16) -> Self {
        check_status(status);
        let error = match status {
            429 => "too_many_requests",
            500.. => "server_error",
            _ => "invalid_request",
        };
        let description = format!("The mock IMDS answered {status} {}", reason(status));
        MockReply::new(ReplyKind::Error {
            status,
            error: error.to_owned(),
            description,
        })
    }

    /// An HTML page with `Content-Type: text/html`: what a proxy or captive portal answering on
    /// `169.254.169.254` sends.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number.
    pub fn html(status: u16) -> Self {
        check_status(status);
        MockReply::new(ReplyKind::Html { status })
    }

    /// A 200 whose JSON body is cut short. The partial token in it starts with
    /// `mock-imds-token-` too, so a credential that echoes the body into an error is caught by
    /// the same leak checks.
    pub fn malformed_json() -> Self {
        MockReply::new(ReplyKind::MalformedJson)
    }

    /// A 200 with a JSON-looking body of exactly `bytes` bytes (and a matching
    /// `Content-Length`), written in chunks, to test response size limits.
    pub fn oversized(bytes: usize) -> Self {
        MockReply::new(ReplyKind::Oversized { bytes })
    }

    /// Reads the request and never answers; the connection stays open until the [`MockImds`]
    /// is dropped. Test timeouts with it under paused tokio time.
    pub fn hang() -> Self {
        MockReply::new(ReplyKind::Hang)
    }

    /// Reads the request, then closes the connection without a response.
    pub fn close() -> Self {
        MockReply::new(ReplyKind::Close)
    }

    /// Reads the request, then resets the connection (a TCP RST, as a crashing peer or a
    /// middlebox would): the client sees "connection reset" rather than an orderly close.
    pub fn reset() -> Self {
        MockReply::new(ReplyKind::Reset)
    }

    /// Sends a 200's status line and headers with `Content-Length: 1000`, then 10 bytes of body,
    /// then closes the connection.
    pub fn half_body() -> Self {
        MockReply::new(ReplyKind::HalfBody)
    }

    /// A token ([`auto_token`](Self::auto_token)) whose body arrives slowly: the status line
    /// and headers (with the full `Content-Length`) at once, then `chunk_bytes` bytes of body
    /// every `every`. Shorthand for `MockReply::auto_token().with_trickle(chunk_bytes, every)`.
    ///
    /// A body of about 400 bytes sent 10 bytes a second takes 40 seconds in all while never
    /// pausing longer than a second: a client must bound the pauses, not the whole transfer.
    ///
    /// # Panics
    ///
    /// If `chunk_bytes` is zero.
    pub fn trickle(chunk_bytes: usize, every: Duration) -> Self {
        MockReply::auto_token().with_trickle(chunk_bytes, every)
    }

    #[cfg(test)]
    fn panic_for_test() -> Self {
        MockReply::new(ReplyKind::Panic)
    }

    /// Waits this long (`tokio::time::sleep`, free under paused time) before answering.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Sends this reply's body `chunk_bytes` bytes at a time, waiting `every`
    /// (`tokio::time::sleep`) before each piece; the status line and headers, with the full
    /// `Content-Length`, go out at once (after [`with_delay`](Self::with_delay)). Applies to
    /// every reply with a body (tokens, errors, JSON, HTML, [`oversized`](Self::oversized));
    /// ignored by the faults that send none. A very long `every` plays a body that stalls
    /// after its headers.
    ///
    /// # Panics
    ///
    /// If `chunk_bytes` is zero.
    pub fn with_trickle(mut self, chunk_bytes: usize, every: Duration) -> Self {
        assert!(
            chunk_bytes > 0,
            "MockReply::with_trickle: chunk_bytes must be at least 1"
        );
        self.trickle = Some((chunk_bytes, every));
        self
    }

    /// Adds a response header, e.g. `with_header("Retry-After", "2")`. Ignored by the faults
    /// that send no headers ([`hang`](Self::hang), [`close`](Self::close)).
    ///
    /// # Panics
    ///
    /// If the name is empty or either contains a line break: the response must stay parseable.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        assert!(
            !name.is_empty() && !name.contains([':', '\r', '\n']) && !value.contains(['\r', '\n']),
            "MockReply::with_header: invalid header {name:?}"
        );
        self.headers.push((name, value));
        self
    }
}

impl fmt::Debug for MockReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("MockReply");
        d.field("kind", &self.kind);
        if let Some(delay) = self.delay {
            d.field("delay", &delay);
        }
        if let Some((chunk_bytes, every)) = self.trickle {
            d.field(
                "trickle",
                &format_args!("{chunk_bytes} bytes every {every:?}"),
            );
        }
        if !self.headers.is_empty() {
            d.field("headers", &RedactedHeaders(&self.headers));
        }
        d.finish()
    }
}

/// One request received by a [`MockImds`].
///
/// `Debug` output shows the query parameter names (not their values), the values of a few plain
/// headers (`Metadata`, `Host`, `Content-Type` and the like) with every other redacted, and only
/// the length of the body.
#[derive(Clone)]
pub struct RecordedRequest {
    method: String,
    target: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RecordedRequest {
    /// A request as the loopback reader parsed it.
    pub(super) fn new(
        method: String,
        target: String,
        url: &Url,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Self {
        RecordedRequest {
            method,
            path: url.path().to_owned(),
            query: url.query_pairs().into_owned().collect(),
            target,
            headers,
            body,
        }
    }

    /// Method, path, headers and body, for mocks that keep their own record.
    pub(super) fn into_parts(self) -> (String, String, Vec<(String, String)>, Vec<u8>) {
        (self.method, self.path, self.headers, self.body)
    }

    /// The method, e.g. `"GET"`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target exactly as sent, e.g.
    /// `/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path, without the query, e.g. `/metadata/identity/oauth2/token`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The first value of the query parameter `name`, percent-decoded.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every query parameter, percent-decoded, in order.
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.query
    }

    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body (empty for a request without one).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The request's `resource` parameter, when present and not empty.
    /// The requested resource: the `resource` query parameter, or form field (Cloud Shell).
    fn resource(&self) -> Option<String> {
        if let Some(resource) = self.query("resource").filter(|r| !r.is_empty()) {
            return Some(resource.to_owned());
        }
        url::form_urlencoded::parse(&self.body)
            .find(|(name, _)| name == "resource")
            .map(|(_, value)| value.into_owned())
            .filter(|r| !r.is_empty())
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field(
                "query_names",
                &self.query.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .field("headers", &RedactedHeaders(&self.headers))
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// Headers as a `Debug` map with the values of sensitive ones hidden.
struct RedactedHeaders<'a>(&'a [(String, String)]);

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.0 {
            if PLAIN_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s)) {
                map.entry(name, value);
            } else {
                map.entry(name, &format_args!("<redacted>"));
            }
        }
        map.finish()
    }
}

struct Shared {
    state: Mutex<State>,
    /// The first panic of a server task, re-raised when the `MockImds` is dropped.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Shared {
    fn record_panic(&self, payload: Box<dyn Any + Send>) {
        self.panic.lock().get_or_insert(payload);
    }
}

struct State {
    queue: VecDeque<MockReply>,
    default: MockReply,
    clock: Clock,
    identity_secret: Option<Secret>,
    require_metadata: bool,
    arc_key: Option<(std::path::PathBuf, Secret)>,
    arc_echo: bool,
    requests: Vec<RecordedRequest>,
    token_requests: usize,
    /// Token replies served, for the numbering of auto tokens.
    tokens_issued: u64,
    rate_limit: Option<RateLimit>,
    throttled: usize,
}

/// A token bucket in front of the token requests (see [`MockImds::rate_limit`]).
struct RateLimit {
    per_second: f64,
    burst: f64,
    retry_after: Duration,
    tokens: f64,
    last: tokio::time::Instant,
}

impl RateLimit {
    /// Takes a token from the bucket if there is one.
    fn admit(&mut self) -> bool {
        let now = crate::system::monotonic_now();
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.per_second;
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Imds,
    AppService,
    AzureMl,
    CloudShell,
    ServiceFabric,
    AzureArc,
}

impl State {
    fn new() -> Self {
        State {
            queue: VecDeque::new(),
            default: MockReply::auto_token(),
            clock: Clock::system(),
            identity_secret: None,
            require_metadata: true,
            arc_key: None,
            arc_echo: true,
            requests: Vec::new(),
            token_requests: 0,
            tokens_issued: 0,
            rate_limit: None,
            throttled: 0,
        }
    }

    /// Records `request` and decides the answer: a protocol-check failure, or the next
    /// scripted reply. Done under one lock so arrival order, script order and token numbers
    /// agree.
    fn answer(&mut self, request: RecordedRequest) -> Outgoing {
        let outgoing = self.check_and_reply(&request);
        self.requests.push(request);
        outgoing
    }

    fn check_and_reply(&mut self, request: &RecordedRequest) -> Outgoing {
        let endpoint = match request.path() {
            IMDS_PATH => Endpoint::Imds,
            APP_SERVICE_PATH => Endpoint::AppService,
            AZURE_ML_PATH => Endpoint::AzureMl,
            CLOUD_SHELL_PATH => Endpoint::CloudShell,
            SERVICE_FABRIC_PATH => Endpoint::ServiceFabric,
            ARC_PATH => Endpoint::AzureArc,
            _ => {
                return Outgoing::json(
                    404,
                    imds_error("not_found", "The mock IMDS serves no such path"),
                );
            }
        };
        let method = if endpoint == Endpoint::CloudShell {
            "POST"
        } else {
            "GET"
        };
        if request.method() != method {
            let mut outgoing = Outgoing::json(
                405,
                imds_error("invalid_request", "The requested method is not allowed"),
            );
            outgoing
                .headers
                .push(("Allow".to_owned(), method.to_owned()));
            return outgoing;
        }
        if let Some(refusal) = self.protocol_check(endpoint, request) {
            return refusal;
        }
        if let Some(limit) = &mut self.rate_limit
            && !limit.admit()
        {
            self.throttled += 1;
            let mut outgoing = Outgoing::json(
                429,
                imds_error("too_many_requests", "Too many requests; please retry later"),
            );
            let seconds = limit.retry_after.as_secs().max(1);
            outgoing
                .headers
                .push(("Retry-After".to_owned(), seconds.to_string()));
            return outgoing;
        }
        let reply = self
            .queue
            .pop_front()
            .unwrap_or_else(|| self.default.clone());
        self.token_requests += 1;
        let action = self.action(reply.kind, endpoint, request);
        Outgoing {
            delay: reply.delay,
            headers: reply.headers,
            trickle: reply.trickle,
            action,
        }
    }

    /// The checks the real endpoint makes before it looks at the request: `Some` answer when
    /// the request fails one.
    fn protocol_check(&self, endpoint: Endpoint, request: &RecordedRequest) -> Option<Outgoing> {
        let has_metadata = request
            .header("metadata")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        match endpoint {
            Endpoint::Imds | Endpoint::CloudShell => {
                if self.require_metadata && !has_metadata {
                    return Some(Outgoing::json(
                        400,
                        imds_error("invalid_request", "Required metadata header not specified"),
                    ));
                }
                if request.resource().is_none() {
                    return Some(Outgoing::json(
                        400,
                        imds_error(
                            "invalid_request",
                            "Required audience parameter not specified",
                        ),
                    ));
                }
            }
            Endpoint::AppService | Endpoint::AzureMl => {
                let header = if endpoint == Endpoint::AppService {
                    "x-identity-header"
                } else {
                    "secret"
                };
                if !self.secret_matches(request.header(header)) {
                    return Some(Outgoing::json(
                        401,
                        app_service_error(
                            401,
                            "The secret header is missing or does not match the configured secret",
                        ),
                    ));
                }
                if request.resource().is_none() {
                    return Some(Outgoing::json(
                        400,
                        app_service_error(400, "The resource parameter is required"),
                    ));
                }
            }
            Endpoint::ServiceFabric => {
                if !self.secret_matches(request.header("secret")) {
                    return Some(Outgoing::json(
                        401,
                        service_fabric_error(
                            "SecretHeaderNotFound",
                            "Secret is not found in the request headers.",
                        ),
                    ));
                }
                if request.resource().is_none() {
                    return Some(Outgoing::json(
                        400,
                        service_fabric_error(
                            "ArgumentNullOrEmpty",
                            "Value cannot be null or empty. Parameter name: resource",
                        ),
                    ));
                }
            }
            Endpoint::AzureArc => {
                if !has_metadata {
                    return Some(Outgoing::json(
                        400,
                        imds_error("invalid_request", "Required metadata header not specified"),
                    ));
                }
                let authorized = match (&self.arc_key, request.header("authorization")) {
                    (Some((_, key)), Some(given)) => given
                        .strip_prefix("Basic ")
                        .is_some_and(|k| Secret::new(k) == *key),
                    _ => false,
                };
                if !authorized {
                    let mut challenge = Outgoing::json(
                        401,
                        imds_error("unauthorized", "Authorization header required"),
                    );
                    if let Some((path, _)) = &self.arc_key {
                        challenge.headers.push((
                            "WWW-Authenticate".to_owned(),
                            format!("Basic realm={}", path.display()),
                        ));
                    }
                    return Some(challenge);
                }
                if request.resource().is_none() {
                    return Some(Outgoing::json(
                        400,
                        imds_error(
                            "invalid_request",
                            "Required audience parameter not specified",
                        ),
                    ));
                }
            }
        }
        None
    }

    /// A secret header is accepted when it is present and, once a secret is set, equal to it.
    fn secret_matches(&self, given: Option<&str>) -> bool {
        match (given, &self.identity_secret) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(given), Some(expected)) => Secret::new(given) == *expected,
        }
    }

    fn action(&mut self, kind: ReplyKind, endpoint: Endpoint, request: &RecordedRequest) -> Action {
        match kind {
            ReplyKind::Token {
                value,
                expires_in,
                refresh_in,
                client_id: named_client_id,
            } => {
                self.tokens_issued += 1;
                let value = match value {
                    TokenValue::Auto => format!("mock-imds-token-{}", self.tokens_issued),
                    TokenValue::Fixed(secret) => secret.expose().to_owned(),
                };
                let now = self.clock.now().unix_timestamp();
                let resource = request.resource().unwrap_or_default();
                // An older Arc agent ignores the requested identity and answers for the
                // system-assigned one.
                let echo = endpoint != Endpoint::AzureArc || self.arc_echo;
                let client_id = match endpoint {
                    Endpoint::AzureMl => request.query("clientid"),
                    _ => request.query("client_id"),
                }
                .filter(|_| echo);
                let client_id = named_client_id
                    .as_deref()
                    .or(client_id)
                    .unwrap_or(MockImds::DEFAULT_CLIENT_ID);
                let fields = TokenFields {
                    access_token: &value,
                    resource: &resource,
                    client_id,
                    object_id: request.query("object_id").filter(|_| echo),
                    msi_res_id: request.query("msi_res_id").filter(|_| echo),
                    now,
                    expires_in,
                    refresh_in,
                };
                Action::respond(200, JSON, fields.body(endpoint))
            }
            ReplyKind::Json { status, body } => Action::respond(status, JSON, body.0.into_bytes()),
            ReplyKind::Raw {
                status,
                content_type,
                body,
            } => Action::Respond {
                status,
                content_type: content_type.map(Cow::Owned),
                body: body.0,
            },
            ReplyKind::ShortBody {
                status,
                body,
                content_length,
            } => Action::ShortBody {
                status,
                body: body.0,
                content_length,
            },
            ReplyKind::Error {
                status,
                error,
                description,
            } => Action::respond(status, JSON, imds_error(&error, &description)),
            ReplyKind::Html { status } => Action::respond(status, HTML, HTML_PAGE.to_vec()),
            ReplyKind::MalformedJson => Action::respond(200, JSON, MALFORMED_JSON.to_vec()),
            ReplyKind::Oversized { bytes } => Action::Oversized {
                bytes,
                prefix: OVERSIZED_HEAD,
                suffix: OVERSIZED_TAIL,
            },
            ReplyKind::Hang => Action::Hang,
            ReplyKind::Close => Action::Close,
            ReplyKind::Reset => Action::Reset,
            ReplyKind::HalfBody => Action::ShortBody {
                status: 200,
                body: HALF_BODY.to_vec(),
                content_length: 1000,
            },
            #[cfg(test)]
            ReplyKind::Panic => panic!("deliberate panic in the mock IMDS server"),
        }
    }
}

const HTML: &str = "text/html; charset=utf-8";
const HTML_PAGE: &[u8] = b"<!DOCTYPE html>\n<html><head><title>Access Denied</title></head>\
<body><h1>Access Denied</h1><p>Your request was blocked by the network proxy.</p></body></html>\n";
const MALFORMED_JSON: &[u8] = br#"{"access_token":"mock-imds-token-malformed","expires_in":"36"#;
const OVERSIZED_HEAD: &[u8] = br#"{"access_token":"mock-imds-token-oversized-"#;
const OVERSIZED_TAIL: &[u8] = br#"","token_type":"Bearer"}"#;
const HALF_BODY: &[u8] = br#"{"access_t"#;

/// What a token reply is made of, before it takes the asked endpoint's shape.
struct TokenFields<'a> {
    access_token: &'a str,
    resource: &'a str,
    client_id: &'a str,
    object_id: Option<&'a str>,
    msi_res_id: Option<&'a str>,
    now: i64,
    expires_in: u64,
    refresh_in: Option<u64>,
}

impl TokenFields<'_> {
    fn body(&self, endpoint: Endpoint) -> Vec<u8> {
        // IMDS sends every value as a string; App Service sends expires_on as a string too.
        let expires_in = self.expires_in.to_string();
        let expires_on = self
            .now
            .saturating_add(i64::try_from(self.expires_in).unwrap_or(i64::MAX))
            .to_string();
        let refresh_in = self.refresh_in.map(|s| s.to_string());
        let result = match endpoint {
            Endpoint::Imds | Endpoint::CloudShell | Endpoint::AzureArc => {
                serde_json::to_vec(&ImdsToken {
                    access_token: self.access_token,
                    client_id: self.client_id,
                    expires_in: &expires_in,
                    expires_on: &expires_on,
                    ext_expires_in: &expires_in,
                    not_before: &self.now.to_string(),
                    resource: self.resource,
                    token_type: "Bearer",
                    refresh_in: refresh_in.as_deref(),
                    object_id: self.object_id,
                    msi_res_id: self.msi_res_id,
                })
            }
            Endpoint::ServiceFabric => serde_json::to_vec(&ServiceFabricToken {
                access_token: self.access_token,
                expires_on: &expires_on,
                token_type: "Bearer",
                resource: self.resource,
            }),
            Endpoint::AppService | Endpoint::AzureMl => serde_json::to_vec(&AppServiceToken {
                access_token: self.access_token,
                expires_on: &expires_on,
                resource: self.resource,
                token_type: "Bearer",
                client_id: self.client_id,
                refresh_in: refresh_in.as_deref(),
            }),
        };
        result.expect("serializing strings cannot fail")
    }
}

// Field order follows the real services' responses.
#[derive(Serialize)]
struct ImdsToken<'a> {
    access_token: &'a str,
    client_id: &'a str,
    expires_in: &'a str,
    expires_on: &'a str,
    ext_expires_in: &'a str,
    not_before: &'a str,
    resource: &'a str,
    token_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_in: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    msi_res_id: Option<&'a str>,
}

#[derive(Serialize)]
struct ServiceFabricToken<'a> {
    access_token: &'a str,
    expires_on: &'a str,
    token_type: &'a str,
    resource: &'a str,
}

#[derive(Serialize)]
struct AppServiceToken<'a> {
    access_token: &'a str,
    expires_on: &'a str,
    resource: &'a str,
    token_type: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_in: Option<&'a str>,
}

fn imds_error(error: &str, description: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": error, "error_description": description }))
        .expect("serializing strings cannot fail")
}

fn service_fabric_error(code: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": { "code": code, "message": message } }))
        .expect("serializing strings cannot fail")
}

fn app_service_error(status: u16, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "statusCode": status, "message": message }))
        .expect("serializing strings cannot fail")
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // The connections belong to this task: aborting it drops the set, which aborts them all.
    let mut connections = JoinSet::new();
    let accepting = async {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        loopback_http::no_delay(&stream);
                        connections.spawn(serve_connection(stream, shared.clone()));
                    }
                    Err(error) => {
                        // Typically too many open files: back off instead of spinning.
                        tracing::debug!(%error, "mock IMDS: accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                // Reap finished connections so the set does not grow without bound.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    };
    // The loop only ends by panicking.
    let Err(payload) = CatchUnwind::new(accepting).await;
    shared.record_panic(payload);
}

async fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    // The stream outlives the guarded work, so a panic is recorded before the client sees the
    // connection close, and dropping the MockImds right after reliably re-raises it.
    let served = CatchUnwind::new(handle_connection(&mut stream, &shared)).await;
    match served {
        Ok(Ok(())) => {}
        // The client went away; nothing to answer.
        Ok(Err(error)) => tracing::trace!(%error, "mock IMDS: connection ended early"),
        Err(payload) => shared.record_panic(payload),
    }
}

async fn handle_connection(stream: &mut TcpStream, shared: &Shared) -> io::Result<()> {
    let request = match read_request(stream).await? {
        Incoming::Request(request) => request,
        Incoming::Reject { status, message } => {
            return reject(stream, status, message, SERVER).await;
        }
        Incoming::Gone => return Ok(()),
    };
    let (method, path) = (request.method.clone(), request.path.clone());
    let outgoing = shared.state.lock().answer(request);
    tracing::debug!(%method, %path, "mock IMDS: answering");
    send(stream, outgoing, SERVER).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{ManualClock, monotonic_now};
    use crate::testing::loopback_http::MAX_BODY;
    use serde_json::Value;
    use time::macros::datetime;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A parsed response, as a raw client sees it.
    #[derive(Debug)]
    struct Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Response {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap_or_else(|e| {
                panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body))
            })
        }

        /// The top-level keys in the order sent (a `serde_json::Value` sorts them).
        fn keys(&self) -> Vec<String> {
            let map: serde_json::Map<String, Value> = self.json().as_object().unwrap().clone();
            let body = String::from_utf8_lossy(&self.body);
            let mut keys: Vec<_> = map.keys().cloned().collect();
            keys.sort_by_key(|k| body.find(&format!("\"{k}\":")).unwrap());
            keys
        }

        fn content_length(&self) -> usize {
            self.header("content-length").unwrap().parse().unwrap()
        }
    }

    fn parse_response(raw: &[u8]) -> Response {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
        let head = std::str::from_utf8(&raw[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        let status = status_line[9..12].parse().unwrap();
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_owned(), v.trim().to_owned())
            })
            .collect();
        Response {
            status,
            headers,
            body: raw[end + 4..].to_vec(),
        }
    }

    /// Sends raw bytes, then reads until the server closes.
    async fn roundtrip(addr: SocketAddr, raw: impl AsRef<[u8]>) -> Vec<u8> {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(raw.as_ref()).await.unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        out
    }

    fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> String {
        let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: 169.254.169.254\r\n");
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() {
            raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        raw.push_str("\r\n");
        raw.push_str(body);
        raw
    }

    async fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Response {
        parse_response(&roundtrip(addr, request("GET", target, headers, "")).await)
    }

    const VAULT: &str = "https%3A%2F%2Fvault.azure.net";

    fn imds_target(resource: &str) -> String {
        format!("{IMDS_PATH}?api-version=2018-02-01&resource={resource}")
    }

    async fn imds(mock: &MockImds) -> Response {
        get(mock.addr(), &imds_target(VAULT), &[("Metadata", "true")]).await
    }

    async fn app_service(mock: &MockImds, identity_header: Option<&str>) -> Response {
        let target = format!("{APP_SERVICE_PATH}?api-version=2019-08-01&resource={VAULT}");
        let headers: Vec<_> = identity_header
            .map(|v| ("X-IDENTITY-HEADER", v))
            .into_iter()
            .collect();
        get(mock.addr(), &target, &headers).await
    }

    fn token_of(response: &Response) -> String {
        assert_eq!(response.status, 200, "{response:?}");
        response.json()["access_token"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn auto_tokens_count_up_in_imds_shape() {
        let mock = MockImds::start().await;
        let first = imds(&mock).await;
        assert_eq!(token_of(&first), "mock-imds-token-1");
        assert_eq!(token_of(&imds(&mock).await), "mock-imds-token-2");

        assert_eq!(first.header("connection"), Some("close"));
        assert_eq!(first.content_length(), first.body.len());
        assert!(
            first
                .header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        let json = first.json();
        assert_eq!(
            first.keys(),
            [
                "access_token",
                "client_id",
                "expires_in",
                "expires_on",
                "ext_expires_in",
                "not_before",
                "resource",
                "token_type"
            ]
        );
        assert_eq!(json["expires_in"], "3600");
        assert_eq!(json["resource"], "https://vault.azure.net");
        assert_eq!(json["token_type"], "Bearer");
        assert_eq!(json["client_id"], MockImds::DEFAULT_CLIENT_ID);
        assert!(
            json["expires_on"]
                .as_str()
                .unwrap()
                .bytes()
                .all(|b| b.is_ascii_digit())
        );
        assert_eq!(mock.token_request_count(), 2);
        assert_eq!(mock.request_count(), 2);
    }

    #[tokio::test]
    async fn endpoints_are_loopback_urls() {
        let mock = MockImds::start().await;
        let port = mock.addr().port();
        assert!(mock.addr().ip().is_loopback());
        assert_eq!(
            mock.base_url().as_str(),
            format!("http://127.0.0.1:{port}/")
        );
        assert_eq!(
            mock.imds_endpoint().as_str(),
            format!("http://127.0.0.1:{port}/metadata/identity/oauth2/token")
        );
        assert_eq!(
            mock.app_service_endpoint().as_str(),
            format!("http://127.0.0.1:{port}/msi/token")
        );
    }

    #[tokio::test]
    async fn script_is_served_in_order_then_the_default() {
        let mock = MockImds::start().await;
        mock.push(MockReply::token("first"));
        mock.push_many([MockReply::token("second"), MockReply::status(500)]);
        assert_eq!(token_of(&imds(&mock).await), "first");
        assert_eq!(token_of(&imds(&mock).await), "second");
        let error = imds(&mock).await;
        assert_eq!(error.status, 500);
        assert_eq!(error.json()["error"], "server_error");
        // Two token replies were served before: this is the third.
        assert_eq!(token_of(&imds(&mock).await), "mock-imds-token-3");

        mock.set_default(MockReply::status(503));
        assert_eq!(imds(&mock).await.status, 503);
        assert_eq!(imds(&mock).await.status, 503);
        assert_eq!(mock.token_request_count(), 6);
    }

    #[tokio::test]
    async fn imds_without_metadata_header_is_400_and_keeps_the_script() {
        let mock = MockImds::start().await;
        mock.push(MockReply::token("kept"));
        let response = get(mock.addr(), &imds_target(VAULT), &[]).await;
        assert_eq!(response.status, 400);
        assert_eq!(
            response.body,
            br#"{"error":"invalid_request","error_description":"Required metadata header not specified"}"#
        );
        // A probe without a query gets the same answer.
        let probe = get(mock.addr(), IMDS_PATH, &[]).await;
        assert_eq!(probe.status, 400);
        assert_eq!(
            probe.json()["error_description"],
            "Required metadata header not specified"
        );
        // `Metadata: false` is not enough either.
        let wrong = get(mock.addr(), &imds_target(VAULT), &[("Metadata", "false")]).await;
        assert_eq!(wrong.status, 400);

        assert_eq!(mock.request_count(), 3);
        assert_eq!(mock.token_request_count(), 0);
        assert_eq!(token_of(&imds(&mock).await), "kept");

        mock.require_metadata_header(false);
        let lenient = get(mock.addr(), &imds_target(VAULT), &[]).await;
        assert_eq!(token_of(&lenient), "mock-imds-token-2");
    }

    #[tokio::test]
    async fn imds_without_resource_is_400() {
        let mock = MockImds::start().await;
        for target in [
            format!("{IMDS_PATH}?api-version=2018-02-01"),
            format!("{IMDS_PATH}?api-version=2018-02-01&resource="),
        ] {
            let response = get(mock.addr(), &target, &[("Metadata", "true")]).await;
            assert_eq!(response.status, 400);
            assert_eq!(
                response.body,
                br#"{"error":"invalid_request","error_description":"Required audience parameter not specified"}"#
            );
        }
        assert_eq!(mock.token_request_count(), 0);
    }

    #[tokio::test]
    async fn app_service_checks_the_identity_header() {
        let mock = MockImds::start().await;
        mock.push(MockReply::token("app-service-token"));

        let missing = app_service(&mock, None).await;
        assert_eq!(missing.status, 401);
        assert_eq!(missing.json()["statusCode"], 401);
        assert!(missing.json()["message"].is_string());

        // Before a secret is set, any value is accepted.
        let any = app_service(&mock, Some("whatever")).await;
        assert_eq!(token_of(&any), "app-service-token");

        mock.set_identity_header("the-right-secret");
        let wrong = app_service(&mock, Some("the-wrong-secret")).await;
        assert_eq!(wrong.status, 401);
        assert!(!String::from_utf8_lossy(&wrong.body).contains("the-right-secret"));
        let right = app_service(&mock, Some("the-right-secret")).await;
        assert_eq!(token_of(&right), "mock-imds-token-2");

        let no_resource = get(
            mock.addr(),
            &format!("{APP_SERVICE_PATH}?api-version=2019-08-01"),
            &[("X-IDENTITY-HEADER", "the-right-secret")],
        )
        .await;
        assert_eq!(no_resource.status, 400);
        assert_eq!(no_resource.json()["statusCode"], 400);
        assert_eq!(mock.token_request_count(), 2);
    }

    #[tokio::test]
    async fn app_service_reply_has_its_own_shape() {
        let mock = MockImds::start().await;
        let target =
            format!("{APP_SERVICE_PATH}?api-version=2019-08-01&resource={VAULT}&client_id=my-uami");
        let response = get(mock.addr(), &target, &[("X-IDENTITY-HEADER", "s")]).await;
        let json = response.json();
        assert_eq!(
            response.keys(),
            [
                "access_token",
                "expires_on",
                "resource",
                "token_type",
                "client_id"
            ]
        );
        assert_eq!(json["client_id"], "my-uami");
        assert_eq!(json["resource"], "https://vault.azure.net");
        assert!(json.get("expires_in").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_throttles_past_its_burst_and_refills_with_time() {
        let mock = MockImds::start().await;
        mock.rate_limit(20.0, 5, Duration::from_secs(1));
        for _ in 0..5 {
            assert_eq!(imds(&mock).await.status, 200);
        }
        let throttled = imds(&mock).await;
        assert_eq!(throttled.status, 429);
        assert_eq!(throttled.header("retry-after"), Some("1"));
        assert_eq!(mock.throttled_count(), 1);
        // 20 a second: one more after 50 ms.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(imds(&mock).await.status, 200);
        assert_eq!(imds(&mock).await.status, 429);
        assert_eq!(
            mock.token_request_count(),
            6,
            "throttled requests take no reply"
        );
    }

    #[tokio::test]
    async fn expires_on_follows_the_clock() {
        let mock = MockImds::start().await;
        let start = datetime!(2030-01-01 0:00 UTC);
        let manual = ManualClock::new(start);
        mock.set_clock(manual.clock());
        let t0 = start.unix_timestamp();

        let json = imds(&mock).await.json();
        assert_eq!(json["expires_on"], (t0 + 3600).to_string());
        assert_eq!(json["not_before"], t0.to_string());

        manual.advance(Duration::from_secs(100));
        mock.push(
            MockReply::token("long")
                .expires_in(86_399)
                .refresh_in(43_200),
        );
        let json = imds(&mock).await.json();
        assert_eq!(json["expires_in"], "86399");
        assert_eq!(json["ext_expires_in"], "86399");
        assert_eq!(json["expires_on"], (t0 + 100 + 86_399).to_string());
        assert_eq!(json["refresh_in"], "43200");

        let app = app_service(&mock, Some("s")).await.json();
        assert_eq!(app["expires_on"], (t0 + 100 + 3600).to_string());
    }

    #[tokio::test]
    async fn error_replies_have_the_imds_shape() {
        let mock = MockImds::start().await;
        mock.push(MockReply::error(
            400,
            "invalid_request",
            "Identity not found",
        ));
        mock.push(MockReply::json(200, r#"{"foo":1}"#));
        let response = imds(&mock).await;
        assert_eq!(response.status, 400);
        assert_eq!(
            response.body,
            br#"{"error":"invalid_request","error_description":"Identity not found"}"#
        );
        let raw = imds(&mock).await;
        assert_eq!(raw.status, 200);
        assert_eq!(raw.body, br#"{"foo":1}"#);
    }

    #[tokio::test]
    async fn html_reply() {
        let mock = MockImds::start().await;
        mock.push(MockReply::html(403));
        let response = imds(&mock).await;
        assert_eq!(response.status, 403);
        assert!(
            response
                .header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert!(response.body.starts_with(b"<!DOCTYPE html>"));
        assert_eq!(response.content_length(), response.body.len());
    }

    #[tokio::test]
    async fn malformed_json_reply() {
        let mock = MockImds::start().await;
        mock.push(MockReply::malformed_json());
        let response = imds(&mock).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.content_length(), response.body.len());
        assert!(serde_json::from_slice::<Value>(&response.body).is_err());
    }

    #[tokio::test]
    async fn oversized_reply_is_read_fully() {
        let mock = MockImds::start().await;
        let size = 5 * 1024 * 1024;
        mock.push(MockReply::oversized(size));
        let response = imds(&mock).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.content_length(), size);
        assert_eq!(response.body.len(), size);
        assert!(response.body.starts_with(br#"{"access_token":""#));
        assert!(response.body.ends_with(br#""}"#));

        // Sizes smaller than the JSON frame are still exact.
        mock.push(MockReply::oversized(5));
        assert_eq!(imds(&mock).await.body, br#"{"acc"#);
    }

    #[tokio::test(start_paused = true)]
    async fn hang_times_out_and_closes_when_dropped() {
        let mock = MockImds::start().await;
        mock.push(MockReply::hang());
        let mut stream = TcpStream::connect(mock.addr()).await.unwrap();
        let raw = request("GET", &imds_target(VAULT), &[("Metadata", "true")], "");
        stream.write_all(raw.as_bytes()).await.unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await;
        assert!(read.is_err(), "the hung reply answered: {read:?}");
        assert_eq!(mock.token_request_count(), 1);

        drop(mock);
        let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf))
            .await
            .expect("the connection stayed open after the mock was dropped")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn close_reply_sends_nothing() {
        let mock = MockImds::start().await;
        mock.push(MockReply::close());
        let raw = request("GET", &imds_target(VAULT), &[("Metadata", "true")], "");
        assert!(roundtrip(mock.addr(), raw).await.is_empty());
        assert_eq!(token_of(&imds(&mock).await), "mock-imds-token-1");
    }

    #[tokio::test]
    async fn reset_reply_resets_the_connection() {
        let mock = MockImds::start().await;
        mock.push(MockReply::reset());
        let mut stream = TcpStream::connect(mock.addr()).await.unwrap();
        let raw = request("GET", &imds_target(VAULT), &[("Metadata", "true")], "");
        stream.write_all(raw.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let err = stream.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert!(out.is_empty());
        // The server keeps serving.
        assert_eq!(token_of(&imds(&mock).await), "mock-imds-token-1");
    }

    #[tokio::test]
    async fn half_body_reply_stops_early() {
        let mock = MockImds::start().await;
        mock.push(MockReply::half_body());
        let response = imds(&mock).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.content_length(), 1000);
        assert_eq!(response.body.len(), 10);
    }

    #[tokio::test]
    async fn raw_reply_sends_the_bytes_as_they_are() {
        let mock = MockImds::start().await;
        let body = b"\xEF\xBB\xBF{\"a\":1}\xFF".to_vec();
        mock.push(MockReply::raw(403, Some("text/plain"), body.clone()));
        mock.push(MockReply::raw(200, None, ""));
        let response = imds(&mock).await;
        assert_eq!(response.status, 403);
        assert_eq!(response.header("content-type"), Some("text/plain"));
        assert_eq!(response.body, body);
        assert_eq!(response.content_length(), body.len());
        let response = imds(&mock).await;
        assert_eq!(response.header("content-type"), None);
        assert_eq!(response.content_length(), 0);
        // Debug shows the length, never the bytes.
        let printed = format!("{:?}", MockReply::raw(200, None, "secret-bytes"));
        assert!(!printed.contains("secret-bytes"), "{printed}");
    }

    #[tokio::test]
    async fn redirect_reply_names_the_location() {
        let mock = MockImds::start().await;
        mock.push(MockReply::redirect(302, "http://portal.example/login"));
        let response = imds(&mock).await;
        assert_eq!(response.status, 302);
        assert_eq!(
            response.header("location"),
            Some("http://portal.example/login")
        );
        assert!(response.body.is_empty());
    }

    #[tokio::test]
    async fn short_body_reply_announces_more_than_it_sends() {
        let mock = MockImds::start().await;
        mock.push(MockReply::short_body(200, r#"{"access_token":"ab"#, 500));
        let response = imds(&mock).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.content_length(), 500);
        assert_eq!(response.body, br#"{"access_token":"ab"#);
    }

    #[test]
    #[should_panic(expected = "not short of")]
    fn short_body_must_be_short() {
        let _ = MockReply::short_body(200, "abc", 3);
    }

    #[tokio::test]
    async fn a_token_reply_can_name_another_client_id() {
        let mock = MockImds::start().await;
        mock.push(MockReply::auto_token().client_id("someone-else"));
        let target = format!("{}&client_id=requested", imds_target(VAULT));
        let response = get(mock.addr(), &target, &[("Metadata", "true")]).await;
        assert_eq!(response.json()["client_id"], "someone-else");
    }

    #[tokio::test(start_paused = true)]
    async fn delay_uses_tokio_time() {
        let mock = MockImds::start().await;
        mock.push(MockReply::token("late").with_delay(Duration::from_secs(30)));
        let started = monotonic_now();
        let response = imds(&mock).await;
        assert_eq!(token_of(&response), "late");
        assert!(monotonic_now() - started >= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn trickle_sends_the_body_piece_by_piece() {
        let mock = MockImds::start().await;
        mock.push(MockReply::trickle(10, Duration::from_secs(1)));
        let mut stream = imds_stream(&mock).await;
        let started = monotonic_now();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        // The head arrives at once, with the full length.
        while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0);
            raw.extend_from_slice(&buf[..n]);
        }
        assert_eq!(monotonic_now() - started, Duration::ZERO);
        let mut reads = 0;
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            assert!(n <= 10, "{n}");
            reads += 1;
            raw.extend_from_slice(&buf[..n]);
        }
        let response = parse_response(&raw);
        assert_eq!(response.body.len(), response.content_length());
        assert_eq!(token_of(&response), "mock-imds-token-1");
        let pieces = response.body.len().div_ceil(10);
        assert_eq!(reads, pieces);
        assert_eq!(
            monotonic_now() - started,
            Duration::from_secs(u64::try_from(pieces).unwrap())
        );
    }

    #[tokio::test]
    async fn extra_headers_are_sent() {
        let mock = MockImds::start().await;
        mock.push(
            MockReply::status(429)
                .with_header("Retry-After", "2")
                .with_header("x-ms-request-id", "abc"),
        );
        let response = imds(&mock).await;
        assert_eq!(response.status, 429);
        assert_eq!(response.header("retry-after"), Some("2"));
        assert_eq!(response.header("x-ms-request-id"), Some("abc"));
        assert_eq!(response.json()["error"], "too_many_requests");
    }

    #[tokio::test]
    async fn requests_are_recorded() {
        let mock = MockImds::start().await;
        let target = format!("{}&client_id=a%20b+c&object_id=x", imds_target(VAULT));
        imds(&mock).await;
        get(
            mock.addr(),
            &target,
            &[("metadata", "TRUE"), ("X-Custom", "v")],
        )
        .await;
        let post = request("POST", IMDS_PATH, &[("Metadata", "true")], "resource=x&y=1");
        let post = parse_response(&roundtrip(mock.addr(), post).await);
        assert_eq!(post.status, 405);
        assert_eq!(post.header("allow"), Some("GET"));
        get(mock.addr(), "/somewhere/else", &[]).await;

        let requests = mock.requests();
        assert_eq!(requests.len(), 4);
        assert_eq!(mock.token_request_count(), 2);

        let second = &requests[1];
        assert_eq!(second.method(), "GET");
        assert_eq!(second.path(), IMDS_PATH);
        assert_eq!(second.target(), target);
        assert_eq!(second.query("resource"), Some("https://vault.azure.net"));
        assert_eq!(second.query("client_id"), Some("a b c"));
        assert_eq!(second.query("missing"), None);
        assert_eq!(second.query_pairs().len(), 4);
        assert_eq!(
            second.query_pairs()[0],
            ("api-version".into(), "2018-02-01".into())
        );
        assert_eq!(second.header("METADATA"), Some("TRUE"));
        assert_eq!(second.header("x-custom"), Some("v"));
        assert!(second.body().is_empty());

        assert_eq!(requests[2].method(), "POST");
        assert_eq!(requests[2].body(), b"resource=x&y=1");
        assert_eq!(requests[3].path(), "/somewhere/else");

        mock.clear_requests();
        assert_eq!(mock.request_count(), 0);
        assert_eq!(mock.token_request_count(), 0);
        assert_eq!(token_of(&imds(&mock).await), "mock-imds-token-3");
    }

    #[tokio::test]
    async fn unknown_path_is_404() {
        let mock = MockImds::start().await;
        let response = get(
            mock.addr(),
            "/metadata/instance?api-version=2021-02-01",
            &[],
        )
        .await;
        assert_eq!(response.status, 404);
        assert_eq!(mock.token_request_count(), 0);
    }

    #[tokio::test]
    async fn absolute_form_target_is_understood() {
        // What a client that uses the mock as its HTTP proxy sends.
        let mock = MockImds::start().await;
        let target = format!("http://169.254.169.254{}", imds_target(VAULT));
        let response = get(mock.addr(), &target, &[("Metadata", "true")]).await;
        assert_eq!(token_of(&response), "mock-imds-token-1");
        assert_eq!(mock.requests()[0].path(), IMDS_PATH);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hundred_concurrent_requests() {
        let mock = Arc::new(MockImds::start().await);
        let mut tasks = JoinSet::new();
        for _ in 0..100 {
            let mock = mock.clone();
            tasks.spawn(async move { token_of(&imds(&mock).await) });
        }
        let mut tokens = tasks.join_all().await;
        tokens.sort();
        let mut expected: Vec<_> = (1..=100).map(|n| format!("mock-imds-token-{n}")).collect();
        expected.sort();
        assert_eq!(tokens, expected);
        assert_eq!(mock.token_request_count(), 100);
        assert_eq!(mock.request_count(), 100);
    }

    #[tokio::test]
    async fn debug_output_hides_secrets() {
        let mock = MockImds::start().await;
        mock.set_identity_header("identity-header-secret");
        mock.push(
            MockReply::token("scripted-token-secret")
                .with_header("Authorization", "Bearer header-secret")
                .with_header("Retry-After", "2"),
        );
        mock.push(MockReply::json(
            200,
            r#"{"access_token":"raw-body-secret"}"#,
        ));

        let reply_debug = format!(
            "{:?} {:#?}",
            MockReply::token("scripted-token-secret"),
            MockReply::json(200, "raw-body-secret")
        );
        let mock_debug = format!("{mock:?} {mock:#?}");
        for debug in [&reply_debug, &mock_debug] {
            for secret in [
                "scripted-token-secret",
                "raw-body-secret",
                "header-secret",
                "identity-header-secret",
            ] {
                assert!(!debug.contains(secret), "{secret} in {debug}");
            }
        }
        assert!(mock_debug.contains("Retry-After"), "{mock_debug}");

        let target = format!("{APP_SERVICE_PATH}?api-version=2019-08-01&resource={VAULT}");
        let raw = request(
            "GET",
            &target,
            &[
                ("X-IDENTITY-HEADER", "identity-header-secret"),
                ("Authorization", "Bearer request-secret"),
                ("secret", "ml-secret"),
            ],
            "body-secret",
        );
        let served = parse_response(&roundtrip(mock.addr(), raw).await);
        assert_eq!(token_of(&served), "scripted-token-secret");
        imds(&mock).await; // the raw body
        imds(&mock).await; // an auto token
        let recorded = mock.requests();
        let debug = format!("{recorded:?} {recorded:#?} {mock:?}");
        for secret in [
            "identity-header-secret",
            "request-secret",
            "ml-secret",
            "body-secret",
            "scripted-token-secret",
            "raw-body-secret",
            "mock-imds-token-",
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(debug.contains("X-IDENTITY-HEADER"), "{debug}");
    }

    #[tokio::test]
    async fn bad_input_is_400_and_the_server_keeps_serving() {
        let mock = MockImds::start().await;
        let cases: [&[u8]; 9] = [
            b"GARBAGE\r\n\r\n",
            b"GET /x\r\n\r\n",
            b"GET /x HTTP/1.1 extra\r\n\r\n",
            b"GET /x HTTP/2.0\r\n\r\n",
            b"G(T /x HTTP/1.1\r\n\r\n",
            b"GET /x HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET /x HTTP/1.1\r\nX: \xff\xfe\r\n\r\n",
            b"GET /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
            b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ];
        for case in cases {
            let response = parse_response(&roundtrip(mock.addr(), case).await);
            assert_eq!(response.status, 400, "{}", String::from_utf8_lossy(case));
        }
        let folded = b"GET /x HTTP/1.1\r\nX: a\r\n b\r\n\r\n";
        assert_eq!(
            parse_response(&roundtrip(mock.addr(), folded).await).status,
            400
        );
        let chunked = request("POST", IMDS_PATH, &[("Transfer-Encoding", "chunked")], "");
        assert_eq!(
            parse_response(&roundtrip(mock.addr(), chunked).await).status,
            501
        );

        // Early disconnects: mid-head, and mid-body.
        for partial in [
            &b"GET /metadata/ident"[..],
            b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
        ] {
            let mut stream = TcpStream::connect(mock.addr()).await.unwrap();
            stream.write_all(partial).await.unwrap();
            drop(stream);
        }
        // Connect and say nothing.
        drop(TcpStream::connect(mock.addr()).await.unwrap());

        assert_eq!(mock.request_count(), 0);
        assert_eq!(token_of(&imds(&mock).await), "mock-imds-token-1");
    }

    #[tokio::test]
    async fn oversized_requests_are_refused() {
        let mock = MockImds::start().await;
        let huge_header = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(70_000));
        let response = parse_response(&roundtrip(mock.addr(), huge_header).await);
        assert_eq!(response.status, 431);

        let huge_body = format!(
            "POST {IMDS_PATH} HTTP/1.1\r\nContent-Length: {len}\r\n\r\n{}",
            "b".repeat(MAX_BODY + 1),
            len = MAX_BODY + 1
        );
        let response = parse_response(&roundtrip(mock.addr(), huge_body).await);
        assert_eq!(response.status, 413);

        assert_eq!(token_of(&imds(&mock).await), "mock-imds-token-1");
    }

    #[tokio::test]
    async fn refused_address_refuses() {
        let addr = MockImds::refused_address();
        assert!(addr.ip().is_loopback());
        let error = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    #[should_panic(expected = "deliberate panic in the mock IMDS server")]
    async fn server_panic_is_raised_when_dropped() {
        let mock = MockImds::start().await;
        mock.push(MockReply::panic_for_test());
        let raw = request("GET", &imds_target(VAULT), &[("Metadata", "true")], "");
        assert!(roundtrip(mock.addr(), raw).await.is_empty());
        drop(mock);
    }

    #[test]
    #[should_panic(expected = "token replies only")]
    fn expires_in_on_a_non_token_reply_panics() {
        let _ = MockReply::status(500).expires_in(10);
    }

    #[test]
    fn runs_on_a_runtime_that_is_dropped_first() {
        // The MockImds outlives its runtime: dropping it must not panic.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mock = runtime.block_on(async {
            let mock = MockImds::start().await;
            mock.push(MockReply::hang());
            let _ = imds_stream(&mock).await;
            mock
        });
        drop(runtime);
        drop(mock);
    }

    async fn imds_stream(mock: &MockImds) -> TcpStream {
        let mut stream = TcpStream::connect(mock.addr()).await.unwrap();
        let raw = request("GET", &imds_target(VAULT), &[("Metadata", "true")], "");
        stream.write_all(raw.as_bytes()).await.unwrap();
        stream
    }
}
