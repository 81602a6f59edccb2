//! [`MockEntra`]: a loopback stand-in for the Microsoft Entra ID v2 token endpoint.

use std::any::Any;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use ring::{digest, signature};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::loopback_http::{self, Action, Incoming, JSON, Outgoing, check_status};
use crate::Secret;
use crate::catch_unwind::CatchUnwind;
use crate::der;
use crate::system::Clock;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const FORM: &str = "application/x-www-form-urlencoded";
/// Clock skew the mock tolerates on `nbf`, as Entra does (a few minutes).
const SKEW_SECS: i64 = 300;
/// The `Server` header of every answer.
const SERVER: &str = "mock-entra";
const OVERSIZED_HEAD: &[u8] =
    br#"{"token_type":"Bearer","expires_in":3599,"access_token":"mock-entra-token-oversized-"#;
const OVERSIZED_TAIL: &[u8] = br#""}"#;

/// A loopback HTTP/1.1 server speaking the Microsoft Entra ID v2 token endpoint
/// (`POST /{tenant}/oauth2/v2.0/token`, and ADFS's `POST /adfs/oauth2/token`), for tests.
///
/// It listens on `127.0.0.1` only. Requests that pass the protocol checks are answered from a
/// FIFO script of [`MockEntraReply`]s, then from a default reply (initially
/// [`MockEntraReply::auto_token`]). Every request is recorded with its form body, so tests can
/// check exactly what a credential sent.
///
/// Checks made before the script, each answered with an Entra-shaped error:
///
/// | check | answer |
/// | --- | --- |
/// | path is a token endpoint | 404 |
/// | `POST` with a form body | 405 / 400 `invalid_request` |
/// | `grant_type=client_credentials`, `client_id`, `scope` present | 400 `unsupported_grant_type` / `invalid_request` (`AADSTS900144`) |
/// | a `client_secret`, or a `client_assertion` of type jwt-bearer | 401 `invalid_client` (`AADSTS7000218`) |
/// | the secret matches [`expect_client_secret`](Self::expect_client_secret), if set | 401 `invalid_client` (`AADSTS7000215`) |
/// | the assertion verifies against [`verify_assertions_with`](Self::verify_assertions_with), if set: signature (PS256 or RS256), thumbprint, `aud`, `iss`, `sub`, `nbf`, `exp` | 401 `invalid_client` (`AADSTS700027`, or `AADSTS700024` when expired) |
///
/// Dropping the mock stops the server; a panic in a server task is re-raised by the drop.
///
/// ```
/// use azure_credentials::testing::{MockEntra, MockEntraReply};
/// use azure_credentials::ClientSecretCredential;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), azure_credentials::Error> {
/// let entra = MockEntra::start().await;
/// entra.push(MockEntraReply::error(401, "invalid_client", 7000215, "Invalid client secret provided."));
/// let credential = ClientSecretCredential::builder()
///     .tenant_id("contoso")
///     .client_id("my-app")
///     .secret("not the secret")
///     .authority_host(entra.authority_host())
///     .build()?;
/// // The first request is refused with AADSTS7000215; later ones get `mock-entra-token-<n>`.
/// # let _ = credential;
/// # Ok(())
/// # }
/// ```
pub struct MockEntra {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl MockEntra {
    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or if no loopback port can be bound.
    pub async fn start() -> MockEntra {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("MockEntra: cannot bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("MockEntra: the listener has no local address");
        let (count_tx, _) = watch::channel(0usize);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                default: MockEntraReply::auto_token(),
                clock: Clock::system(),
                secret: None,
                trusted: None,
                requests: Vec::new(),
                tokens_issued: 0,
                gate: None,
            }),
            panic: Mutex::new(None),
            count: count_tx,
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        MockEntra {
            addr,
            shared,
            accept_task,
        }
    }

    /// The authority host to hand a credential: `http://127.0.0.1:PORT`.
    pub fn authority_host(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token endpoint of `tenant`: `http://127.0.0.1:PORT/{tenant}/oauth2/v2.0/token`.
    pub fn token_endpoint(&self, tenant: &str) -> String {
        format!("http://{}/{tenant}/oauth2/v2.0/token", self.addr)
    }

    /// Queues `reply` for the next token request that passes the protocol checks.
    pub fn push(&self, reply: MockEntraReply) {
        self.shared.state.lock().queue.push_back(reply);
    }

    /// Queues several replies, in order.
    pub fn push_many(&self, replies: impl IntoIterator<Item = MockEntraReply>) {
        self.shared.state.lock().queue.extend(replies);
    }

    /// The reply used when the queue is empty (initially [`MockEntraReply::auto_token`]).
    pub fn set_default(&self, reply: MockEntraReply) {
        self.shared.state.lock().default = reply;
    }

    /// The clock assertions' `nbf` and `exp` are judged by (initially the system clock).
    pub fn set_clock(&self, clock: Clock) {
        self.shared.state.lock().clock = clock;
    }

    /// Refuses requests whose `client_secret` is not `secret` (`AADSTS7000215`).
    pub fn expect_client_secret(&self, secret: &str) {
        self.shared.state.lock().secret = Some(Secret::new(secret));
    }

    /// Verifies every `client_assertion` against this certificate (PEM or DER): a JWT signed
    /// with its key (PS256 with `x5t#S256`, or RS256 with `x5t`), `aud` the endpoint asked,
    /// `iss` = `sub` = `client_id`, valid `nbf` / `exp`. Failures are answered
    /// `AADSTS700027` (`AADSTS700024` when expired).
    ///
    /// # Panics
    ///
    /// If `certificate` holds no RSA certificate.
    pub fn verify_assertions_with(&self, certificate: &[u8]) {
        let der = CertificateDer::from_pem_slice(certificate)
            .map(|c| c.to_vec())
            .unwrap_or_else(|_| certificate.to_vec());
        let key = der::certificate_public_key(&der)
            .filter(|pk| pk.algorithm == der::OID_RSA)
            .map(|pk| pk.key.to_vec())
            .expect("MockEntra::verify_assertions_with: not an RSA certificate");
        let trusted = Trusted {
            key,
            x5t_s256: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &der)),
            x5t: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der)),
        };
        self.shared.state.lock().trusted = Some(trusted);
    }

    /// Every request received, in arrival order, including those the checks refused.
    pub fn requests(&self) -> Vec<EntraRequest> {
        self.shared.state.lock().requests.clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        self.shared.state.lock().requests.len()
    }

    /// Forgets the recorded requests (the script and default reply are kept).
    pub fn clear_requests(&self) {
        self.shared.state.lock().requests.clear();
        self.shared.count.send_replace(0);
    }

    /// Holds every answer (requests are still read and recorded) until the returned gate is
    /// released or dropped, so a test can act while a request is in flight.
    pub fn hold_replies(&self) -> ReplyGate {
        let (tx, rx) = watch::channel(false);
        self.shared.state.lock().gate = Some(rx);
        ReplyGate { tx }
    }

    /// Waits until at least `n` requests were received (since the last
    /// [`clear_requests`](Self::clear_requests)).
    pub async fn wait_for_requests(&self, n: usize) {
        let mut rx = self.shared.count.subscribe();
        // The sender lives as long as `self`.
        let _ = rx.wait_for(|count| *count >= n).await;
    }
}

impl fmt::Debug for MockEntra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("MockEntra")
            .field("addr", &self.addr)
            .field("queued", &state.queue.len())
            .field("expects_secret", &state.secret.is_some())
            .field("verifies_assertions", &state.trusted.is_some())
            .field("request_count", &state.requests.len())
            .finish()
    }
}

impl Drop for MockEntra {
    fn drop(&mut self) {
        self.accept_task.abort();
        let payload = self.shared.panic.lock().take();
        if let Some(payload) = payload
            && !std::thread::panicking()
        {
            std::panic::resume_unwind(payload);
        }
    }
}

/// Returned by [`MockEntra::hold_replies`]: held answers go out when it is released or dropped.
#[derive(Debug)]
pub struct ReplyGate {
    tx: watch::Sender<bool>,
}

impl ReplyGate {
    /// Lets the held answers (and later ones) go.
    pub fn release(self) {}
}

impl Drop for ReplyGate {
    fn drop(&mut self) {
        self.tx.send_replace(true);
    }
}

/// One scripted answer of a [`MockEntra`] to a token request.
///
/// Tokens look like Entra's: `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,
/// "access_token":"mock-entra-token-1"}`. Errors carry Entra's fields: `error`,
/// `error_description` (`AADSTS<code>: <text>` then trace id, correlation id and timestamp lines),
/// `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`. `Debug` never shows a
/// token or a raw body.
#[derive(Clone)]
#[must_use = "a MockEntraReply does nothing until it is pushed to a MockEntra"]
pub struct MockEntraReply {
    kind: ReplyKind,
    delay: Option<Duration>,
    headers: Vec<(String, String)>,
    /// Send the body `.0` bytes at a time, waiting `.1` before each piece.
    trickle: Option<(usize, Duration)>,
}

#[derive(Clone)]
enum ReplyKind {
    Token {
        value: Option<Secret>,
        expires_in: u64,
        refresh_in: Option<u64>,
    },
    Error {
        status: u16,
        error: String,
        code: u32,
        description: String,
    },
    Raw {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    ShortBody {
        status: u16,
        body: Vec<u8>,
        content_length: usize,
    },
    Oversized {
        bytes: usize,
    },
    Hang,
    Close,
    Reset,
}

impl MockEntraReply {
    fn new(kind: ReplyKind) -> Self {
        MockEntraReply {
            kind,
            delay: None,
            headers: Vec::new(),
            trickle: None,
        }
    }

    /// A token `mock-entra-token-<n>` (`n` counts the tokens served, from 1), living 3599 s.
    /// Leak tests can look for the `mock-entra-token-` prefix.
    pub fn auto_token() -> Self {
        MockEntraReply::new(ReplyKind::Token {
            value: None,
            expires_in: 3599,
            refresh_in: None,
        })
    }

    /// A token with this value, living 3599 s.
    pub fn token(value: &str) -> Self {
        MockEntraReply::new(ReplyKind::Token {
            value: Some(Secret::new(value)),
            expires_in: 3599,
            refresh_in: None,
        })
    }

    /// Sets a token's `expires_in`.
    ///
    /// # Panics
    ///
    /// If this is not a token reply.
    pub fn expires_in(mut self, secs: u64) -> Self {
        match &mut self.kind {
            ReplyKind::Token { expires_in, .. } => *expires_in = secs,
            _ => panic!("MockEntraReply::expires_in applies to token replies only"),
        }
        self
    }

    /// Adds `refresh_in` to a token.
    ///
    /// # Panics
    ///
    /// If this is not a token reply.
    pub fn refresh_in(mut self, secs: u64) -> Self {
        match &mut self.kind {
            ReplyKind::Token { refresh_in, .. } => *refresh_in = Some(secs),
            _ => panic!("MockEntraReply::refresh_in applies to token replies only"),
        }
        self
    }

    /// An Entra error, e.g. `error(401, "invalid_client", 7000215, "Invalid client secret
    /// provided.")`.
    pub fn error(status: u16, error: &str, code: u32, description: &str) -> Self {
        MockEntraReply::new(ReplyKind::Error {
            status,
            error: error.to_owned(),
            code,
            description: description.to_owned(),
        })
    }

    /// A response with this status and raw body, `Content-Type: application/json`.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        MockEntraReply::raw(status, Some(JSON), body)
    }

    /// A response with this status, `Content-Type` (none when `None`) and body bytes, sent as
    /// they are with a matching `Content-Length`: JSON after a UTF-8 byte order mark, JSON cut
    /// short, plain text, bytes that are not UTF-8.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number, or the content type contains a line break.
    pub fn raw(status: u16, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Self {
        check_status(status);
        assert!(
            content_type.is_none_or(|c| !c.contains(['\r', '\n'])),
            "MockEntraReply::raw: invalid content type {content_type:?}"
        );
        MockEntraReply::new(ReplyKind::Raw {
            status,
            content_type: content_type.map(str::to_owned),
            body: body.into(),
        })
    }

    /// An HTML page, as a proxy or captive portal sends.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number.
    pub fn html(status: u16) -> Self {
        MockEntraReply::raw(
            status,
            Some("text/html; charset=utf-8"),
            b"<!DOCTYPE html>\n<html><head><title>Blocked</title></head><body><h1>Access denied by the proxy</h1></body></html>\n".to_vec(),
        )
    }

    /// A redirect: this status with `Location: location` and an empty body, as a captive
    /// portal sends. Clients of the crate never follow it.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number, or `location` contains a line break.
    pub fn redirect(status: u16, location: &str) -> Self {
        MockEntraReply::raw(status, None, Vec::new()).with_header("Location", location)
    }

    /// A JSON response that announces `content_length` bytes but sends only `body`, then
    /// closes the connection: a body cut short in transit.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number, or `body` is not shorter than `content_length`.
    pub fn short_body(status: u16, body: impl Into<Vec<u8>>, content_length: usize) -> Self {
        check_status(status);
        let body = body.into();
        assert!(
            body.len() < content_length,
            "MockEntraReply::short_body: {} bytes is not short of {content_length}",
            body.len()
        );
        MockEntraReply::new(ReplyKind::ShortBody {
            status,
            body,
            content_length,
        })
    }

    /// A 200 with a token-looking JSON body of exactly `bytes` bytes (and a matching
    /// `Content-Length`), to test response size limits. The token in it starts with
    /// `mock-entra-token-`, for leak checks.
    pub fn oversized(bytes: usize) -> Self {
        MockEntraReply::new(ReplyKind::Oversized { bytes })
    }

    /// A token ([`auto_token`](Self::auto_token)) whose body arrives slowly: the head (with
    /// the full `Content-Length`) at once, then `chunk_bytes` bytes every `every`. Shorthand
    /// for `MockEntraReply::auto_token().with_trickle(chunk_bytes, every)`.
    ///
    /// # Panics
    ///
    /// If `chunk_bytes` is zero.
    pub fn trickle(chunk_bytes: usize, every: Duration) -> Self {
        MockEntraReply::auto_token().with_trickle(chunk_bytes, every)
    }

    /// Reads the request and never answers; the connection stays open until the
    /// [`MockEntra`] is dropped. Test timeouts with it under paused tokio time.
    pub fn hang() -> Self {
        MockEntraReply::new(ReplyKind::Hang)
    }

    /// Reads the request, then closes the connection without an answer.
    pub fn close() -> Self {
        MockEntraReply::new(ReplyKind::Close)
    }

    /// Reads the request, then resets the connection (a TCP RST) without an answer.
    pub fn reset() -> Self {
        MockEntraReply::new(ReplyKind::Reset)
    }

    /// Sends this reply's body `chunk_bytes` bytes at a time, waiting `every` before each
    /// piece; the head, with the full `Content-Length`, goes out at once (after
    /// [`with_delay`](Self::with_delay)). Ignored by the faults that send no body. A very long
    /// `every` plays a body that stalls after its headers.
    ///
    /// # Panics
    ///
    /// If `chunk_bytes` is zero.
    pub fn with_trickle(mut self, chunk_bytes: usize, every: Duration) -> Self {
        assert!(
            chunk_bytes > 0,
            "MockEntraReply::with_trickle: chunk_bytes must be at least 1"
        );
        self.trickle = Some((chunk_bytes, every));
        self
    }

    /// Waits this long before answering.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Adds a response header, e.g. `("Retry-After", "2")`.
    ///
    /// # Panics
    ///
    /// If the name or value holds a line break or the name a colon.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        assert!(
            !name.is_empty() && !name.contains([':', '\r', '\n']) && !value.contains(['\r', '\n']),
            "MockEntraReply::with_header: invalid header {name:?}"
        );
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

impl fmt::Debug for MockEntraReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            ReplyKind::Token { expires_in, .. } => format!("Token(expires_in: {expires_in})"),
            ReplyKind::Error {
                status,
                error,
                code,
                ..
            } => {
                format!("Error({status} {error} AADSTS{code})")
            }
            ReplyKind::Raw { status, body, .. } => format!("Raw({status}, <{} bytes>)", body.len()),
            ReplyKind::ShortBody {
                status,
                body,
                content_length,
            } => format!(
                "ShortBody({status}, <{} of {content_length} bytes>)",
                body.len()
            ),
            ReplyKind::Oversized { bytes } => format!("Oversized({bytes} bytes)"),
            ReplyKind::Hang => "Hang".to_owned(),
            ReplyKind::Close => "Close".to_owned(),
            ReplyKind::Reset => "Reset".to_owned(),
        };
        f.debug_struct("MockEntraReply")
            .field("kind", &kind)
            .field("delay", &self.delay)
            .field("trickle", &self.trickle)
            .finish_non_exhaustive()
    }
}

/// One request received by a [`MockEntra`]. `Debug` shows the path and form field *names*
/// only: the form holds secrets and assertions.
#[derive(Clone)]
pub struct EntraRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    form: Vec<(String, String)>,
    assertion: Option<MockAssertion>,
}

impl EntraRequest {
    /// The method, e.g. `"POST"`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path, e.g. `/contoso/oauth2/v2.0/token`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tenant the path names (`adfs` for ADFS's endpoint).
    pub fn tenant(&self) -> Option<&str> {
        tenant_of(&self.path)
    }

    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of the form field `name`, decoded.
    pub fn form(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every form field, decoded, in the order sent.
    pub fn form_pairs(&self) -> &[(String, String)] {
        &self.form
    }

    /// The form field names, in the order sent.
    pub fn form_names(&self) -> Vec<&str> {
        self.form.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The `client_assertion`, decoded, when it is a JWT.
    pub fn assertion(&self) -> Option<&MockAssertion> {
        self.assertion.as_ref()
    }
}

impl fmt::Debug for EntraRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("form_names", &self.form_names())
            .finish_non_exhaustive()
    }
}

/// A client assertion JWT as the mock decoded it.
#[derive(Clone)]
pub struct MockAssertion {
    header: Value,
    claims: Value,
    verified: Option<Result<(), String>>,
}

impl MockAssertion {
    /// The JOSE header, e.g. `{"alg":"PS256","typ":"JWT","x5t#S256":"…"}`.
    pub fn header(&self) -> &Value {
        &self.header
    }

    /// The claims: `aud`, `iss`, `sub`, `jti`, `nbf`, `exp`.
    pub fn claims(&self) -> &Value {
        &self.claims
    }

    /// `None` when no certificate was configured with
    /// [`MockEntra::verify_assertions_with`]; otherwise whether the assertion verified, and if
    /// not, why.
    pub fn verified(&self) -> Option<&Result<(), String>> {
        self.verified.as_ref()
    }
}

impl fmt::Debug for MockAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockAssertion")
            .field("alg", &self.header.get("alg"))
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------

struct Shared {
    state: Mutex<State>,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    count: watch::Sender<usize>,
}

struct Trusted {
    /// The certificate's `RSAPublicKey`.
    key: Vec<u8>,
    x5t_s256: String,
    x5t: String,
}

struct State {
    queue: VecDeque<MockEntraReply>,
    default: MockEntraReply,
    clock: Clock,
    secret: Option<Secret>,
    trusted: Option<Trusted>,
    requests: Vec<EntraRequest>,
    tokens_issued: u64,
    gate: Option<watch::Receiver<bool>>,
}

/// What the server sends back, once the gate (if any) opens.
struct Answer {
    outgoing: Outgoing,
    gate: Option<watch::Receiver<bool>>,
}

fn tenant_of(path: &str) -> Option<&str> {
    if path == "/adfs/oauth2/token" {
        return Some("adfs");
    }
    let tenant = path.strip_prefix('/')?.strip_suffix("/oauth2/v2.0/token")?;
    (!tenant.is_empty() && !tenant.contains('/')).then_some(tenant)
}

impl State {
    fn answer(&mut self, request: Received, addr: SocketAddr) -> Answer {
        let url = format!("http://{addr}{}", request.path);
        let form: Vec<(String, String)> = if request
            .header("content-type")
            .is_some_and(|ct| ct.starts_with(FORM))
        {
            url::form_urlencoded::parse(&request.body)
                .into_owned()
                .collect()
        } else {
            Vec::new()
        };
        let field = |name: &str| {
            form.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let assertion = field("client_assertion").and_then(|jwt| {
            let now = self.clock.now().unix_timestamp();
            decode_assertion(jwt, self.trusted.as_ref(), &url, field("client_id"), now)
        });
        let checked = self.check(&request, &form, assertion.as_ref());
        let outgoing = match checked {
            Err((status, content_type, body)) => {
                Outgoing::new(Action::respond(status, content_type, body))
            }
            Ok(()) => {
                let reply = self
                    .queue
                    .pop_front()
                    .unwrap_or_else(|| self.default.clone());
                Outgoing {
                    delay: reply.delay,
                    headers: reply.headers,
                    trickle: reply.trickle,
                    action: self.render(reply.kind),
                }
            }
        };
        self.requests.push(EntraRequest {
            method: request.method,
            path: request.path,
            headers: request.headers,
            form,
            assertion,
        });
        Answer {
            outgoing,
            gate: self.gate.clone(),
        }
    }

    /// The protocol checks: `Err` is the answer to a request that fails one.
    fn check(
        &self,
        request: &Received,
        form: &[(String, String)],
        assertion: Option<&MockAssertion>,
    ) -> Result<(), (u16, &'static str, Vec<u8>)> {
        let field = |name: &str| {
            form.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let n = self.requests.len() as u64 + 1;
        if tenant_of(&request.path).is_none() {
            return Err(error_response(
                404,
                "invalid_request",
                90002,
                "Tenant not found: the path is not a token endpoint.",
                n,
            ));
        }
        if request.method != "POST" {
            return Err(error_response(
                405,
                "invalid_request",
                900561,
                "The endpoint only accepts POST requests.",
                n,
            ));
        }
        if !request
            .header("content-type")
            .is_some_and(|ct| ct.starts_with(FORM))
        {
            return Err(error_response(
                400,
                "invalid_request",
                900144,
                "The request body must be application/x-www-form-urlencoded.",
                n,
            ));
        }
        if field("grant_type") != Some("client_credentials") {
            return Err(error_response(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
                n,
            ));
        }
        for required in ["client_id", "scope"] {
            if field(required).is_none_or(str::is_empty) {
                let description =
                    format!("The request body must contain the following parameter: '{required}'.");
                return Err(error_response(
                    400,
                    "invalid_request",
                    900144,
                    &description,
                    n,
                ));
            }
        }
        match (field("client_secret"), field("client_assertion")) {
            (Some(secret), None) => {
                if self
                    .secret
                    .as_ref()
                    .is_some_and(|s| *s != Secret::new(secret))
                {
                    return Err(error_response(
                        401,
                        "invalid_client",
                        7000215,
                        "Invalid client secret provided.",
                        n,
                    ));
                }
            }
            (None, Some(_)) => {
                if field("client_assertion_type") != Some(ASSERTION_TYPE) {
                    return Err(error_response(
                        400,
                        "invalid_request",
                        900144,
                        "The request body must contain the following parameter: 'client_assertion_type'.",
                        n,
                    ));
                }
                if self.trusted.is_some() {
                    match assertion.and_then(|a| a.verified.as_ref()) {
                        Some(Ok(())) => {}
                        Some(Err(why)) if why.starts_with("expired") => {
                            return Err(error_response(
                                400,
                                "invalid_client",
                                700024,
                                "Client assertion is not within its valid time range.",
                                n,
                            ));
                        }
                        _ => {
                            return Err(error_response(
                                401,
                                "invalid_client",
                                700027,
                                "Client assertion failed signature validation.",
                                n,
                            ));
                        }
                    }
                }
            }
            _ => {
                return Err(error_response(
                    401,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                    n,
                ));
            }
        }
        Ok(())
    }

    fn render(&mut self, kind: ReplyKind) -> Action {
        let n = self.requests.len() as u64 + 1;
        match kind {
            ReplyKind::Token {
                value,
                expires_in,
                refresh_in,
            } => {
                self.tokens_issued += 1;
                let token = match value {
                    Some(v) => v.expose().to_owned(),
                    None => format!("mock-entra-token-{}", self.tokens_issued),
                };
                let mut body = json!({
                    "token_type": "Bearer",
                    "expires_in": expires_in,
                    "ext_expires_in": expires_in,
                    "access_token": token,
                });
                if let Some(refresh_in) = refresh_in {
                    body["refresh_in"] = json!(refresh_in);
                }
                Action::respond(200, JSON, body.to_string().into_bytes())
            }
            ReplyKind::Error {
                status,
                error,
                code,
                description,
            } => {
                let (status, content_type, body) =
                    error_response(status, &error, code, &description, n);
                Action::respond(status, content_type, body)
            }
            ReplyKind::Raw {
                status,
                content_type,
                body,
            } => Action::Respond {
                status,
                content_type: content_type.map(Cow::Owned),
                body,
            },
            ReplyKind::ShortBody {
                status,
                body,
                content_length,
            } => Action::ShortBody {
                status,
                body,
                content_length,
            },
            ReplyKind::Oversized { bytes } => Action::Oversized {
                bytes,
                prefix: OVERSIZED_HEAD,
                suffix: OVERSIZED_TAIL,
            },
            ReplyKind::Hang => Action::Hang,
            ReplyKind::Close => Action::Close,
            ReplyKind::Reset => Action::Reset,
        }
    }
}

/// An error body as Entra sends it.
fn error_response(
    status: u16,
    error: &str,
    code: u32,
    description: &str,
    n: u64,
) -> (u16, &'static str, Vec<u8>) {
    let trace_id = format!("7ace0000-0000-4000-8000-{n:012x}");
    let correlation_id = format!("c0de0000-0000-4000-8000-{n:012x}");
    let timestamp = "2030-01-01 00:00:00Z";
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, JSON, body.to_string().into_bytes())
}

/// Decodes a JWT assertion and, with a trusted certificate, verifies it.
fn decode_assertion(
    jwt: &str,
    trusted: Option<&Trusted>,
    audience: &str,
    client_id: Option<&str>,
    now: i64,
) -> Option<MockAssertion> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let signature = URL_SAFE_NO_PAD.decode(s).ok()?;
    let verified = trusted.map(|trusted| {
        let signed = &jwt[..h.len() + 1 + c.len()];
        let (alg, thumbprint_field, thumbprint): (
            &'static dyn signature::VerificationAlgorithm,
            _,
            _,
        ) = match header.get("alg").and_then(Value::as_str) {
            Some("PS256") => (
                &signature::RSA_PSS_2048_8192_SHA256,
                "x5t#S256",
                &trusted.x5t_s256,
            ),
            Some("RS256") => (&signature::RSA_PKCS1_2048_8192_SHA256, "x5t", &trusted.x5t),
            other => return Err(format!("unsupported alg {other:?}")),
        };
        if header.get(thumbprint_field).and_then(Value::as_str) != Some(thumbprint.as_str()) {
            return Err(format!("{thumbprint_field} does not match the certificate"));
        }
        signature::UnparsedPublicKey::new(alg, &trusted.key)
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| "bad signature".to_owned())?;
        if claims.get("aud").and_then(Value::as_str) != Some(audience) {
            return Err(format!("aud is not {audience}"));
        }
        for name in ["iss", "sub"] {
            if client_id.is_none() || claims.get(name).and_then(Value::as_str) != client_id {
                return Err(format!("{name} is not the client id"));
            }
        }
        let nbf = claims.get("nbf").and_then(Value::as_i64).ok_or("no nbf")?;
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or("no exp")?;
        if nbf > now + SKEW_SECS {
            return Err("not valid yet (nbf)".to_owned());
        }
        if exp <= now {
            return Err("expired (exp)".to_owned());
        }
        Ok(())
    });
    Some(MockAssertion {
        header,
        claims,
        verified,
    })
}

// ---------------------------------------------------------------------------------------------
// The HTTP/1.1 server: one request per connection, Content-Length bodies.

struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    let accepting = async {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        loopback_http::no_delay(&stream);
                        connections.spawn(serve_connection(stream, shared.clone()));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    };
    let Err(payload) = CatchUnwind::new(accepting).await;
    shared.panic.lock().get_or_insert(payload);
}

async fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    if let Err(payload) = CatchUnwind::new(handle_connection(&mut stream, &shared)).await {
        shared.panic.lock().get_or_insert(payload);
    }
}

async fn handle_connection(stream: &mut TcpStream, shared: &Shared) -> io::Result<()> {
    let Some(request) = read_request(stream).await? else {
        return Ok(());
    };
    let addr = stream.local_addr()?;
    let answer = {
        let mut state = shared.state.lock();
        let answer = state.answer(request, addr);
        shared.count.send_replace(state.requests.len());
        answer
    };
    if let Some(mut gate) = answer.gate {
        let _ = gate.wait_for(|open| *open).await;
    }
    loopback_http::send(stream, answer.outgoing, SERVER).await
}

/// Reads one request with the mocks' shared reader; `None` if the client went away or sent
/// something unusable (the connection is then closed without an answer).
async fn read_request(stream: &mut TcpStream) -> io::Result<Option<Received>> {
    Ok(match loopback_http::read_request(stream).await? {
        Incoming::Request(request) => {
            let (method, path, headers, body) = request.into_parts();
            Some(Received {
                method,
                path,
                headers,
                body,
            })
        }
        Incoming::Reject { .. } | Incoming::Gone => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_from_paths() {
        assert_eq!(tenant_of("/contoso/oauth2/v2.0/token"), Some("contoso"));
        assert_eq!(tenant_of("/adfs/oauth2/token"), Some("adfs"));
        assert_eq!(tenant_of("/oauth2/v2.0/token"), None);
        assert_eq!(tenant_of("/a/b/oauth2/v2.0/token"), None);
        assert_eq!(tenant_of("/metadata/identity/oauth2/token"), None);
    }

    #[test]
    fn error_bodies_look_like_entra() {
        let (status, _, body) = error_response(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
            3,
        );
        assert_eq!(status, 401);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error_codes"], json!([7000215]));
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .starts_with("AADSTS7000215: Invalid client secret provided.")
        );
        assert_eq!(v["correlation_id"], "c0de0000-0000-4000-8000-000000000003");
    }

    #[test]
    fn garbage_assertions_are_not_decoded() {
        assert!(decode_assertion("not-a-jwt", None, "aud", None, 0).is_none());
        assert!(decode_assertion("a.b.c", None, "aud", None, 0).is_none());
        assert!(decode_assertion("a.b.c.d", None, "aud", None, 0).is_none());
    }

    /// Posts a valid client-credentials request and reads until the server closes; `None` when
    /// the connection was reset.
    async fn post(mock: &MockEntra) -> Option<Vec<u8>> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = "client_id=app&client_secret=s&grant_type=client_credentials&scope=x%2F.default";
        let raw = format!(
            "POST /contoso/oauth2/v2.0/token HTTP/1.1\r\nHost: login\r\nContent-Type: {FORM}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = TcpStream::connect(mock.addr).await.unwrap();
        stream.write_all(raw.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.ok().map(|_| out)
    }

    fn split(response: &[u8]) -> (String, &[u8]) {
        let end = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (
            String::from_utf8(response[..end].to_vec()).unwrap(),
            &response[end + 4..],
        )
    }

    #[tokio::test]
    async fn faults_go_on_the_wire_as_scripted() {
        let mock = MockEntra::start().await;
        mock.push_many([
            MockEntraReply::raw(200, Some("text/plain"), b"\xEF\xBB\xBF{}".to_vec()),
            MockEntraReply::redirect(302, "https://portal.example/"),
            MockEntraReply::short_body(200, "{\"a\"", 100),
            MockEntraReply::oversized(100_000),
            MockEntraReply::close(),
            MockEntraReply::reset(),
        ]);
        let response = post(&mock).await.unwrap();
        let (head, body) = split(&response);
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(head.contains("Content-Type: text/plain\r\n"), "{head}");
        assert_eq!(body, b"\xEF\xBB\xBF{}");

        let response = post(&mock).await.unwrap();
        let (head, body) = split(&response);
        assert!(head.starts_with("HTTP/1.1 302 Found"), "{head}");
        assert!(head.contains("Location: https://portal.example/"), "{head}");
        assert!(!head.contains("Content-Type"), "{head}");
        assert!(body.is_empty());

        let response = post(&mock).await.unwrap();
        let (head, body) = split(&response);
        assert!(head.contains("Content-Length: 100\r\n"), "{head}");
        assert_eq!(body, b"{\"a\"");

        let response = post(&mock).await.unwrap();
        let (head, body) = split(&response);
        assert!(head.contains("Content-Length: 100000\r\n"), "{head}");
        assert_eq!(body.len(), 100_000);
        assert!(body.starts_with(b"{\"token_type\":\"Bearer\""));
        assert!(body.ends_with(b"\"}"));

        assert_eq!(
            post(&mock).await,
            Some(Vec::new()),
            "closed without an answer"
        );
        assert_eq!(post(&mock).await, None, "reset");
        assert_eq!(mock.request_count(), 6);
        // Debug never shows a body.
        let printed = format!("{:?}", MockEntraReply::raw(200, None, "secret-body"));
        assert!(!printed.contains("secret-body"), "{printed}");
    }

    #[tokio::test(start_paused = true)]
    async fn trickle_and_hang_take_tokio_time() {
        let mock = MockEntra::start().await;
        mock.push(MockEntraReply::trickle(10, Duration::from_secs(1)));
        let started = crate::system::monotonic_now();
        let response = post(&mock).await.unwrap();
        let (_, body) = split(&response);
        let pieces = body.len().div_ceil(10);
        assert_eq!(
            crate::system::monotonic_now() - started,
            Duration::from_secs(u64::try_from(pieces).unwrap())
        );
        let token: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(token["access_token"], "mock-entra-token-1");

        mock.push(MockEntraReply::hang());
        let hung = tokio::time::timeout(Duration::from_secs(3600), post(&mock)).await;
        assert!(hung.is_err(), "a hung request is never answered");
    }
}
