//! [`MockEntra`]: a loopback stand-in for the Microsoft Entra ID v2 token endpoint: its
//! script, record and protocol checks here, its replies in `reply.rs`, the client assertions it
//! decodes and verifies in `assertion.rs`. The server is the shared loopback one.

mod assertion;
mod reply;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::loopback_http::{
    Action, Handler, LoopbackServer, Outgoing, RecordedRequest, Script, first_value,
    scripted_mock_methods,
};
use crate::Secret;
use crate::system::Clock;
use assertion::{Trusted, decode_assertion};
use reply::error_response;

pub use assertion::MockAssertion;
pub use reply::MockEntraReply;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The `grant_type` of on-behalf-of requests.
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const FORM: &str = "application/x-www-form-urlencoded";
/// The `Server` header of every answer.
const SERVER: &str = "mock-entra";

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
/// | `grant_type=client_credentials`, or on-behalf-of's `urn:ietf:params:oauth:grant-type:jwt-bearer`; `client_id`, `scope` present | 400 `unsupported_grant_type` / `invalid_request` (`AADSTS900144`) |
/// | on-behalf-of: `requested_token_use=on_behalf_of` and an `assertion` shaped like a JWT | 400 `invalid_request` (`AADSTS900144`, `AADSTS90014`) / `invalid_grant` (`AADSTS50027`) |
/// | a `client_secret`, or a `client_assertion` of type jwt-bearer | 401 `invalid_client` (`AADSTS7000218`) |
/// | the secret matches [`expect_client_secret`](Self::expect_client_secret), if set | 401 `invalid_client` (`AADSTS7000215`) |
/// | the assertion is the one [`expect_client_assertion`](Self::expect_client_assertion) names, if set | 400 `invalid_request` (`AADSTS70021`, no matching federated identity record) |
/// | the assertion verifies against [`verify_assertions_with`](Self::verify_assertions_with), if set: signature (PS256 or RS256), thumbprint, `aud`, `iss`, `sub`, `nbf`, `exp` | 401 `invalid_client` (`AADSTS700027`, or `AADSTS700024` when expired) |
///
/// An automatic token answering an on-behalf-of request names the user assertion it was
/// issued for (`mock-entra-token-<n>-for-<assertion>`), so a test can check whose token each
/// caller got.
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
    server: LoopbackServer,
    shared: Arc<Shared>,
}

impl MockEntra {
    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or if no loopback port can be bound.
    pub async fn start() -> MockEntra {
        let (count_tx, _) = watch::channel(0usize);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                script: Script::new(MockEntraReply::auto_token()),
                clock: Clock::system(),
                secret: None,
                assertion: None,
                trusted: None,
                requests: Vec::new(),
                tokens_issued: 0,
                gate: None,
            }),
            count: count_tx,
        });
        let server = LoopbackServer::start(SERVER, shared.clone()).await;
        MockEntra { server, shared }
    }

    /// The authority host to hand a credential: `http://127.0.0.1:PORT`.
    pub fn authority_host(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The token endpoint of `tenant`: `http://127.0.0.1:PORT/{tenant}/oauth2/v2.0/token`.
    pub fn token_endpoint(&self, tenant: &str) -> String {
        format!("http://{}/{tenant}/oauth2/v2.0/token", self.server.addr())
    }

    scripted_mock_methods!(MockEntraReply, "[`MockEntraReply::auto_token`]");

    /// The clock assertions' `nbf` and `exp` are judged by (initially the system clock).
    pub fn set_clock(&self, clock: Clock) {
        self.shared.state.lock().clock = clock;
    }

    /// Refuses requests whose `client_secret` is not `secret` (`AADSTS7000215`).
    pub fn expect_client_secret(&self, secret: &str) {
        self.shared.state.lock().secret = Some(Secret::new(secret));
    }

    /// Refuses requests whose `client_assertion` is not `assertion` (`AADSTS70021`, as Entra
    /// answers a federated token no federated identity credential trusts): for the
    /// credentials that send a token from elsewhere (a callback, a CI system's OIDC token).
    pub fn expect_client_assertion(&self, assertion: &str) {
        self.shared.state.lock().assertion = Some(Secret::new(assertion));
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
        let trusted = Trusted::from_certificate(certificate)
            .expect("MockEntra::verify_assertions_with: not an RSA certificate");
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
            .field("addr", &self.server.addr())
            .field("queued", &state.script.queued())
            .field("expects_secret", &state.secret.is_some())
            .field("expects_assertion", &state.assertion.is_some())
            .field("verifies_assertions", &state.trusted.is_some())
            .field("request_count", &state.requests.len())
            .finish()
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

/// One request received by a [`MockEntra`]. `Debug` shows the path and form field *names*
/// only: the form holds secrets and assertions.
#[derive(Clone)]
pub struct EntraRequest {
    request: RecordedRequest,
    form: Vec<(String, String)>,
    assertion: Option<MockAssertion>,
}

impl EntraRequest {
    /// The method, e.g. `"POST"`.
    pub fn method(&self) -> &str {
        self.request.method()
    }

    /// The path, e.g. `/contoso/oauth2/v2.0/token`.
    pub fn path(&self) -> &str {
        self.request.path()
    }

    /// The tenant the path names (`adfs` for ADFS's endpoint).
    pub fn tenant(&self) -> Option<&str> {
        tenant_of(self.request.path())
    }

    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.header(name)
    }

    /// The first value of the form field `name`, decoded.
    pub fn form(&self, name: &str) -> Option<&str> {
        first_value(&self.form, name)
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
            .field("method", &self.method())
            .field("path", &self.path())
            .field("form_names", &self.form_names())
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------

struct Shared {
    state: Mutex<State>,
    count: watch::Sender<usize>,
}

impl Handler for Shared {
    fn answer(&self, request: RecordedRequest, local: SocketAddr) -> Outgoing {
        let mut state = self.state.lock();
        let outgoing = state.answer(request, local);
        self.count.send_replace(state.requests.len());
        outgoing
    }
}

struct State {
    script: Script<MockEntraReply>,
    clock: Clock,
    secret: Option<Secret>,
    assertion: Option<Secret>,
    trusted: Option<Trusted>,
    requests: Vec<EntraRequest>,
    tokens_issued: u64,
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
    /// Records `request` and decides the answer, held while the gate (if any) is closed.
    fn answer(&mut self, request: RecordedRequest, addr: SocketAddr) -> Outgoing {
        let url = format!("http://{addr}{}", request.path());
        let form: Vec<(String, String)> = if request
            .header("content-type")
            .is_some_and(|ct| ct.starts_with(FORM))
        {
            url::form_urlencoded::parse(request.body())
                .into_owned()
                .collect()
        } else {
            Vec::new()
        };
        let field = |name: &str| first_value(&form, name);
        let assertion = field("client_assertion").and_then(|jwt| {
            let now = self.clock.now().unix_timestamp();
            decode_assertion(jwt, self.trusted.as_ref(), &url, field("client_id"), now)
        });
        let checked = self.check(&request, &form, assertion.as_ref());
        let mut outgoing = match checked {
            Err((status, content_type, body)) => {
                Outgoing::new(Action::respond(status, content_type, body))
            }
            Ok(()) => {
                let reply = self.script.next();
                let n = self.requests.len() as u64 + 1;
                let user_assertion = (field("grant_type") == Some(JWT_BEARER_GRANT))
                    .then(|| field("assertion"))
                    .flatten();
                reply.answer(&mut self.tokens_issued, n, user_assertion)
            }
        };
        outgoing.hold = self.gate.clone();
        self.requests.push(EntraRequest {
            request,
            form,
            assertion,
        });
        outgoing
    }

    /// The protocol checks: `Err` is the answer to a request that fails one.
    fn check(
        &self,
        request: &RecordedRequest,
        form: &[(String, String)],
        assertion: Option<&MockAssertion>,
    ) -> Result<(), (u16, &'static str, Vec<u8>)> {
        let field = |name: &str| first_value(form, name);
        let n = self.requests.len() as u64 + 1;
        if tenant_of(request.path()).is_none() {
            return Err(error_response(
                404,
                "invalid_request",
                90002,
                "Tenant not found: the path is not a token endpoint.",
                n,
            ));
        }
        if request.method() != "POST" {
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
        match field("grant_type") {
            Some("client_credentials") => {}
            Some(JWT_BEARER_GRANT) => check_on_behalf_of(form, n)?,
            _ => {
                return Err(error_response(
                    400,
                    "unsupported_grant_type",
                    70003,
                    "The app requested an unsupported grant type.",
                    n,
                ));
            }
        }
        require(form, &["client_id", "scope"], n)?;
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
            (None, Some(sent)) => {
                if field("client_assertion_type") != Some(ASSERTION_TYPE) {
                    return Err(error_response(
                        400,
                        "invalid_request",
                        900144,
                        "The request body must contain the following parameter: 'client_assertion_type'.",
                        n,
                    ));
                }
                if self
                    .assertion
                    .as_ref()
                    .is_some_and(|expected| *expected != Secret::new(sent))
                {
                    return Err(error_response(
                        400,
                        "invalid_request",
                        70021,
                        "No matching federated identity record found for presented assertion.",
                        n,
                    ));
                }
                if self.trusted.is_some() {
                    match assertion.and_then(MockAssertion::verified) {
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
}

/// Refuses a request lacking one of the `required` form fields (or sending it empty), as Entra
/// does (`AADSTS900144`).
fn require(
    form: &[(String, String)],
    required: &[&str],
    n: u64,
) -> Result<(), (u16, &'static str, Vec<u8>)> {
    match required
        .iter()
        .find(|name| first_value(form, name).is_none_or(str::is_empty))
    {
        None => Ok(()),
        Some(missing) => Err(error_response(
            400,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{missing}'."),
            n,
        )),
    }
}

/// The on-behalf-of fields: `requested_token_use=on_behalf_of` and an `assertion` shaped like
/// an access token (a JWS or JWE: three or five base64url parts).
fn check_on_behalf_of(
    form: &[(String, String)],
    n: u64,
) -> Result<(), (u16, &'static str, Vec<u8>)> {
    let field = |name: &str| first_value(form, name);
    require(form, &["requested_token_use", "assertion"], n)?;
    if field("requested_token_use") != Some("on_behalf_of") {
        return Err(error_response(
            400,
            "invalid_request",
            90014,
            "The value of 'requested_token_use' is not valid: only 'on_behalf_of' is supported.",
            n,
        ));
    }
    let jwt_shaped = field("assertion").is_some_and(|assertion| {
        let parts: Vec<&str> = assertion.split('.').collect();
        matches!(parts.len(), 3 | 5)
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    });
    if !jwt_shaped {
        return Err(error_response(
            400,
            "invalid_grant",
            50027,
            "JWT token is invalid or malformed.",
            n,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

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

    /// Posts a valid client-credentials request and reads until the server closes; `None` when
    /// the connection was reset.
    async fn post(mock: &MockEntra) -> Option<Vec<u8>> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = "client_id=app&client_secret=s&grant_type=client_credentials&scope=x%2F.default";
        let raw = format!(
            "POST /contoso/oauth2/v2.0/token HTTP/1.1\r\nHost: login\r\nContent-Type: {FORM}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(mock.server.addr())
            .await
            .unwrap();
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
