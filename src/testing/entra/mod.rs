//! [`MockEntra`]: a loopback stand-in for the Microsoft Entra ID v2 endpoints: its script,
//! record, routing and the token endpoint's client checks here, its replies in `reply.rs`, the
//! client assertions it decodes and verifies in `assertion.rs`, the user flows (users, codes,
//! device codes, refresh tokens, the public-client grants) in `user.rs`, the authorization
//! endpoint's sign-in page in `sign_in_page.rs`. The server is the shared loopback one.

mod assertion;
mod reply;
mod sign_in_page;
mod token_checks;
mod user;

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
use user::UserFlows;

pub use assertion::MockAssertion;
pub use reply::MockEntraReply;
pub use user::{MockSignIn, MockUser};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The `grant_type` of on-behalf-of requests.
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const FORM: &str = "application/x-www-form-urlencoded";
/// The `Server` header of every answer.
const SERVER: &str = "mock-entra";

/// A loopback HTTP/1.1 server speaking the Microsoft Entra ID v2 endpoints, for tests: the
/// token endpoint (`POST /{tenant}/oauth2/v2.0/token`, and ADFS's `POST /adfs/oauth2/token`),
/// the device code endpoint (`POST /{tenant}/oauth2/v2.0/devicecode`), the authorization
/// endpoint (`GET /{tenant}/oauth2/v2.0/authorize`, an HTML sign-in page) and the OpenID
/// configuration document MSAL reads before anything else
/// (`GET /{tenant}/v2.0/.well-known/openid-configuration`: `token_endpoint`,
/// `authorization_endpoint`, `device_authorization_endpoint`, `issuer`
/// (`{authority}/{tenant}/v2.0`), naming the https front of [`serve_tls`](Self::serve_tls)
/// when asked through it).
///
/// It listens on `127.0.0.1` only. Token requests that pass the protocol checks are answered
/// from a FIFO script of [`MockEntraReply`]s, then from a default reply (initially
/// [`MockEntraReply::auto_token`]). Every request, to any endpoint, is recorded with its form
/// body and query, so tests can check exactly what a credential sent.
///
/// Checks made before the script, each answered with an Entra-shaped error:
///
/// | check | answer |
/// | --- | --- |
/// | path is a token endpoint | 404 |
/// | `POST` with a form body | 405 / 400 `invalid_request` |
/// | `grant_type` is `client_credentials`, on-behalf-of's `urn:ietf:params:oauth:grant-type:jwt-bearer`, or a user grant below; `client_id`, `scope` present (client credentials, on-behalf-of) | 400 `unsupported_grant_type` / `invalid_request` (`AADSTS900144`) |
/// | on-behalf-of: `requested_token_use=on_behalf_of` and an `assertion` shaped like a JWT | 400 `invalid_request` (`AADSTS900144`, `AADSTS90014`) / `invalid_grant` (`AADSTS50027`) |
/// | `urn:ietf:params:oauth:grant-type:device_code`: `client_id`, `device_code` present; the device code was issued by the device code endpoint to this client, not redeemed, not expired (by [`set_clock`](Self::set_clock)'s clock) | 400 `invalid_request` (`AADSTS900144`) / `invalid_grant` (`AADSTS70000`) / `expired_token` (`AADSTS70020`) |
/// | `authorization_code`: `client_id`, `code`, `redirect_uri` present; the code was issued by the authorization endpoint or [`issue_authorization_code`](Self::issue_authorization_code), less than 10 minutes ago, not redeemed, for this client and this exact redirect URI; with PKCE, `code_verifier` hashes (S256) to the challenge | 400 `invalid_request` (`AADSTS900144`) / `invalid_grant` (`AADSTS70000`, `AADSTS70008`, `AADSTS54005`, `AADSTS700005`, `AADSTS500117`, `AADSTS50148`, `AADSTS501481`) |
/// | `refresh_token`: `client_id`, `refresh_token`, `scope` present; the refresh token was issued by this mock to this client and not [revoked](Self::revoke_refresh_tokens) | 400 `invalid_request` (`AADSTS900144`) / `invalid_grant` (`AADSTS700082`, `AADSTS700005`) |
/// | client credentials and on-behalf-of: a `client_secret`, or a `client_assertion` of type jwt-bearer (the user grants are public clients: neither needed, each checked when sent) | 401 `invalid_client` (`AADSTS7000218`) |
/// | the secret matches [`expect_client_secret`](Self::expect_client_secret), if set | 401 `invalid_client` (`AADSTS7000215`) |
/// | the assertion is the one [`expect_client_assertion`](Self::expect_client_assertion) names, if set | 400 `invalid_request` (`AADSTS70021`, no matching federated identity record) |
/// | the assertion verifies against [`verify_assertions_with`](Self::verify_assertions_with), if set: signature (PS256 or RS256), thumbprint, `aud`, `iss`, `sub`, `nbf`, `exp` | 401 `invalid_client` (`AADSTS700027`, or `AADSTS700024` when expired) |
///
/// An automatic token answering an on-behalf-of request names the user assertion it was
/// issued for (`mock-entra-token-<n>-for-<assertion>`), so a test can check whose token each
/// caller got.
///
/// A token (scripted or automatic) answering a user grant also carries the user-flow fields:
/// `scope` (the scopes asked for, without `openid`, `profile`, `offline_access`), a new
/// `refresh_token` (`mock-entra-refresh-<n>`; earlier ones stay valid), an `id_token` for the
/// [`MockUser`] (header `{"typ":"JWT","alg":"RS256","kid":"mock"}`, claims `aud`, `iss`
/// (`{authority}/{tid}/v2.0`), `iat`, `nbf`, `exp`, `tid`, `oid`, `sub`, `preferred_username`,
/// `name`, `ver`, and `nonce` when the authorize request had one; signature `mock-signature`)
/// and `client_info` (base64url of `{"uid":"<oid>","utid":"<tid>"}`). The code or device code
/// it redeemed is then spent; an error reply leaves it unspent.
///
/// The device code endpoint answers from [`set_device_code`](Self::set_device_code)'s
/// settings (`device_code` `mock-entra-device-code-<n>`, `user_code` `MOCK<n, 5 digits>`,
/// `verification_uri` `http://127.0.0.1:PORT/devicelogin`), after its own FIFO
/// ([`push_device_code_reply`](Self::push_device_code_reply)); `client_id` and `scope` are
/// required (400 `invalid_request`).
///
/// The authorization endpoint checks `client_id`, `redirect_uri`, `response_type=code`,
/// `code_challenge` with `code_challenge_method=S256`, `response_mode` (`query` if given) and a
/// redirect URI of `http://localhost[:port]/...` or `http://127.0.0.1[:port]/...`, answering a
/// 400 HTML page that does not redirect when one fails. Otherwise it answers a sign-in page
/// that sends the browser to the redirect URI (`window.location.replace`, and a link
/// `<a id="continue" href="...">` for clients without JavaScript such as
/// [`MockBrowser`](super::MockBrowser)) as [`set_sign_in`](Self::set_sign_in) says.
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
                user: UserFlows::default(),
                tls: None,
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

    /// The device code endpoint of `tenant`:
    /// `http://127.0.0.1:PORT/{tenant}/oauth2/v2.0/devicecode`.
    pub fn devicecode_endpoint(&self, tenant: &str) -> String {
        format!(
            "http://{}/{tenant}/oauth2/v2.0/devicecode",
            self.server.addr()
        )
    }

    /// The authorization endpoint of `tenant`:
    /// `http://127.0.0.1:PORT/{tenant}/oauth2/v2.0/authorize`.
    pub fn authorize_endpoint(&self, tenant: &str) -> String {
        format!(
            "http://{}/{tenant}/oauth2/v2.0/authorize",
            self.server.addr()
        )
    }

    /// Starts an https front for this mock on another loopback port, presenting `chain` (leaf
    /// first) with `key`, and returns its base URL, the authority host to hand a client that
    /// insists on https (Python azure-identity and MSAL refuse http authorities): generate a
    /// certificate for `127.0.0.1` in the test (e.g. with `rcgen`) and make the client trust
    /// it. Requests through the front are served and recorded as the others; the OpenID
    /// configuration document asked through it names https endpoints on the front's port.
    ///
    /// # Panics
    ///
    /// If the certificate or key is unusable, or no loopback port can be bound.
    pub async fn serve_tls(
        &self,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> url::Url {
        let url = self.server.serve_tls(chain, key).await;
        self.shared.state.lock().tls = url.port().map(|port| format!("127.0.0.1:{port}"));
        url
    }

    scripted_mock_methods!(MockEntraReply, "[`MockEntraReply::auto_token`]");

    /// The user the next sign-ins (authorize pages, device codes) are for: the claims of the
    /// id tokens and `client_info` (initially [`MockUser::default`]). Codes and refresh tokens
    /// issued earlier keep the user they were issued for.
    pub fn set_user(&self, user: MockUser) {
        self.shared.state.lock().user.user = user;
    }

    /// What the user does on the next sign-in pages (initially [`MockSignIn::Approve`]).
    pub fn set_sign_in(&self, sign_in: MockSignIn) {
        self.shared.state.lock().user.sign_in = sign_in;
    }

    /// The `interval` and `expires_in` (seconds) of the next device codes (initially 5 and
    /// 900). A device code polled after `expires_in` (by [`set_clock`](Self::set_clock)'s
    /// clock) is refused with `expired_token`.
    pub fn set_device_code(&self, interval_secs: u64, expires_in_secs: u64) {
        let mut state = self.shared.state.lock();
        state.user.device_interval = interval_secs;
        state.user.device_expires_in = expires_in_secs;
    }

    /// Queues `reply` for the next device code request that passes the checks (a FIFO of its
    /// own, apart from the token endpoint's), e.g. `MockEntraReply::error(400,
    /// "invalid_client", 7000218, "...")` for an app without public client flows, or a fault.
    pub fn push_device_code_reply(&self, reply: MockEntraReply) {
        self.shared
            .state
            .lock()
            .user
            .device_replies
            .push_back(reply);
    }

    /// Refuses every refresh token issued so far (`invalid_grant`, `AADSTS700082`); later
    /// ones are valid.
    pub fn revoke_refresh_tokens(&self) {
        self.shared.state.lock().user.revoke_refresh_tokens();
    }

    /// An authorization code for `client_id` and `redirect_uri`, as if the current
    /// [`MockUser`] signed in on a web app's own redirect (no PKCE, no nonce): for testing a
    /// credential that redeems a code it was handed.
    pub fn issue_authorization_code(&self, client_id: &str, redirect_uri: &str) -> String {
        let mut state = self.shared.state.lock();
        let now = state.clock.now().unix_timestamp();
        state.user.issue_code(
            &user::CodeRequest {
                client_id,
                redirect_uri,
                challenge: None,
                nonce: None,
                scope: "",
            },
            now,
        )
    }

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

/// One request received by a [`MockEntra`], to any of its endpoints. `Debug` shows the path and
/// the query parameter and form field *names* only: the form holds secrets, assertions, codes
/// and refresh tokens.
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
        endpoint_of(self.request.path()).and_then(|(_, tenant)| tenant)
    }

    /// The first value of the query parameter `name`, percent-decoded (the authorization
    /// endpoint's parameters, e.g. `prompt`, `login_hint`, `code_challenge_method`).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.request.query(name)
    }

    /// Every query parameter, percent-decoded, in the order sent.
    pub fn query_pairs(&self) -> &[(String, String)] {
        self.request.query_pairs()
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
            .field(
                "query_names",
                &self
                    .query_pairs()
                    .iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>(),
            )
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
    user: UserFlows,
    /// The https front's `127.0.0.1:PORT`, once [`MockEntra::serve_tls`] started one.
    tls: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Token,
    DeviceCode,
    Authorize,
    /// The device code flow's verification page.
    DeviceLogin,
    /// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
    OpenIdConfiguration,
}

/// The endpoint a path names, and its tenant (none for the verification page).
fn endpoint_of(path: &str) -> Option<(Endpoint, Option<&str>)> {
    match path {
        "/adfs/oauth2/token" => return Some((Endpoint::Token, Some("adfs"))),
        "/devicelogin" => return Some((Endpoint::DeviceLogin, None)),
        _ => {}
    }
    let (tenant, rest) = path.strip_prefix('/')?.split_once('/')?;
    let endpoint = match rest {
        "oauth2/v2.0/token" => Endpoint::Token,
        "oauth2/v2.0/devicecode" => Endpoint::DeviceCode,
        "oauth2/v2.0/authorize" => Endpoint::Authorize,
        "v2.0/.well-known/openid-configuration" => Endpoint::OpenIdConfiguration,
        _ => return None,
    };
    (!tenant.is_empty()).then_some((endpoint, Some(tenant)))
}

/// The tenant of a token endpoint path.
fn tenant_of(path: &str) -> Option<&str> {
    match endpoint_of(path)? {
        (Endpoint::Token, tenant) => tenant,
        _ => None,
    }
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
        let authority = format!("http://{addr}");
        let now = self.clock.now().unix_timestamp();
        let n = self.requests.len() as u64 + 1;
        let mut outgoing = match endpoint_of(request.path()) {
            Some((Endpoint::DeviceCode, _)) => {
                self.user
                    .device_code(&request, &form, &authority, &mut self.tokens_issued, now, n)
            }
            Some((Endpoint::Authorize, _)) => {
                sign_in_page::authorize(&mut self.user, &request, now)
            }
            Some((Endpoint::DeviceLogin, _)) => sign_in_page::device_login(),
            Some((Endpoint::OpenIdConfiguration, tenant)) => {
                // Through the https front, the client's `Host` is the front's address.
                let base = match &self.tls {
                    Some(front) if request.header("host") == Some(front.as_str()) => {
                        format!("https://{front}")
                    }
                    _ => authority.clone(),
                };
                reply::openid_configuration(&base, tenant.unwrap_or_default())
            }
            // Not an endpoint: the token endpoint's checks answer 404.
            Some((Endpoint::Token, _)) | None => {
                match self.check(&request, &form, assertion.as_ref(), now) {
                    Err((status, content_type, body)) => {
                        Outgoing::new(Action::respond(status, content_type, body))
                    }
                    Ok(grant) => {
                        let reply = self.script.next();
                        let user_assertion = (field("grant_type") == Some(JWT_BEARER_GRANT))
                            .then(|| field("assertion"))
                            .flatten();
                        let extras = grant
                            .filter(|_| reply.is_token())
                            .map(|grant| self.user.redeem(grant, &authority, now));
                        reply.answer(&mut self.tokens_issued, n, user_assertion, extras)
                    }
                }
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
}

#[cfg(test)]
mod sign_in_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod user_test_support;
#[cfg(test)]
mod user_tests;
