//! [`MockManagedIdentity`]: a loopback mock of managed identity. One file per protocol it speaks
//! (`imds.rs`, `app_service.rs`, `azure_ml.rs`, `cloud_shell.rs`, `service_fabric.rs`,
//! `azure_arc.rs`) behind the [`Protocol`](protocol::Protocol) trait; this file holds the
//! mock's public face, its script and its record; `reply.rs` the scripted [`MockReply`]. The
//! server itself is the shared loopback one.

mod app_service;
mod azure_arc;
mod azure_ml;
mod cloud_shell;
mod imds;
mod protocol;
mod reply;
mod service_fabric;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use url::Url;

use super::loopback_http::{
    self, Handler, LoopbackServer, Outgoing, RecordedRequest, Script, scripted_mock_methods,
};
use crate::Secret;
use crate::system::Clock;
use protocol::{Protocol, Settings, imds_error};

pub use reply::MockReply;

/// The protocols the mock speaks, and the path each is served at.
const PROTOCOLS: [(&str, &dyn Protocol); 6] = [
    (imds::PATH, &imds::Imds),
    (app_service::PATH, &app_service::AppService),
    (azure_ml::PATH, &azure_ml::AzureMl),
    (cloud_shell::PATH, &cloud_shell::CloudShell),
    (service_fabric::PATH, &service_fabric::ServiceFabric),
    (azure_arc::PATH, &azure_arc::AzureArc),
];
/// The `Server` header of every answer.
const SERVER: &str = "mock-imds";

/// For the `impl` of [`MockManagedIdentity`]: `pub fn $name(&self) -> Url`, the URL of `$path` on the
/// mock, for each protocol, with its docs.
macro_rules! endpoints {
    ($($(#[$doc:meta])* $name:ident => $path:expr;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> Url {
                self.endpoint($path)
            }
        )*
    };
}

/// A loopback mock of managed identity: an HTTP/1.1 server speaking the token protocols of
/// IMDS, App Service, Azure ML, Cloud Shell, Service Fabric and the Azure Arc agent, each at its
/// own path, for tests, benches and demos.
///
/// It listens on `127.0.0.1` only and never sends traffic anywhere else. Token requests that pass
/// the protocol checks are answered from a FIFO script of [`MockReply`]s, then from a default
/// reply (initially [`MockReply::auto_token`]). Every request is recorded.
///
/// | Path | Checks, before the script is consulted |
/// | --- | --- |
/// | `/metadata/identity/oauth2/token` (IMDS) | `GET` (405); `Metadata: true` (400, as real IMDS; see [`require_metadata_header`](Self::require_metadata_header)); a `resource` parameter (400) |
/// | `/msi/token` (App Service) | `GET` (405); an `X-IDENTITY-HEADER` (401; see [`set_identity_header`](Self::set_identity_header)); a `resource` parameter (400) |
/// | `/azureml/token`, `/cloudshell/token`, `/servicefabric/token`, `/arc/token` | see [`azure_ml_endpoint`](Self::azure_ml_endpoint), [`cloud_shell_endpoint`](Self::cloud_shell_endpoint), [`service_fabric_endpoint`](Self::service_fabric_endpoint), [`arc_endpoint`](Self::arc_endpoint) |
/// | anything else | 404 |
///
/// Every response carries `Connection: close`, and the connection is closed after it.
///
/// Dropping the `MockManagedIdentity` stops the server: open connections (including [hung](MockReply::hang)
/// ones) are closed. If a server task panicked, the drop re-raises that panic, so a bug in the
/// mock fails the test that hit it.
///
/// ```
/// use azure_credentials::testing::{MockManagedIdentity, MockReply};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mock = MockManagedIdentity::start().await;
/// mock.push(MockReply::status(503).with_header("Retry-After", "2"));
/// mock.push(MockReply::token("second-try"));
/// // Point the credential under test at `mock.imds_endpoint()`: its first request gets a 503,
/// // its retry gets a token, and later requests get `mock-imds-token-<n>` tokens.
/// assert_eq!(mock.imds_endpoint().path(), "/metadata/identity/oauth2/token");
/// assert_eq!(mock.token_request_count(), 0);
/// # }
/// ```
pub struct MockManagedIdentity {
    server: LoopbackServer,
    shared: Arc<Shared>,
}

impl MockManagedIdentity {
    /// The `client_id` of the tokens the mock issues when the request names none.
    pub const DEFAULT_CLIENT_ID: &'static str = "7a1d5c9e-3f2b-4e8a-9c6d-0b1e2f3a4b5c";

    /// The tenant (`tid`, and in `iss`) of [`MockReply::jwt`]'s tokens.
    pub const TENANT_ID: &'static str = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";

    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime (current-thread or
    /// multi-thread). Each connection is served on its own task.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or if no loopback port can be bound.
    pub async fn start() -> MockManagedIdentity {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
        });
        let server = LoopbackServer::start(SERVER, shared.clone()).await;
        MockManagedIdentity { server, shared }
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
        self.server.serve_tls(chain, key).await
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
        loopback_http::refused_address("MockManagedIdentity")
    }

    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn base_url(&self) -> Url {
        self.server.base_url()
    }

    endpoints! {
        /// The IMDS token endpoint: `http://127.0.0.1:PORT/metadata/identity/oauth2/token`.
        imds_endpoint => imds::PATH;

        /// The App Service token endpoint (what `IDENTITY_ENDPOINT` holds on App Service):
        /// `http://127.0.0.1:PORT/msi/token`.
        app_service_endpoint => app_service::PATH;

        /// An Azure ML token endpoint (what `MSI_ENDPOINT` holds, with `MSI_SECRET`):
        /// `http://127.0.0.1:PORT/azureml/token`. It checks the `secret` header like the App
        /// Service endpoint checks `X-IDENTITY-HEADER`.
        azure_ml_endpoint => azure_ml::PATH;

        /// A Cloud Shell token endpoint (what `MSI_ENDPOINT` holds alone):
        /// `http://127.0.0.1:PORT/cloudshell/token`. It takes a POST with a `resource` form
        /// field and `Metadata: true`.
        cloud_shell_endpoint => cloud_shell::PATH;

        /// A Service Fabric token endpoint path, `/servicefabric/token`, checking the `Secret`
        /// header. Real clusters serve it over https with a self-signed certificate: put a TLS
        /// front before it with [`MockManagedIdentity::serve_tls`].
        service_fabric_endpoint => service_fabric::PATH;

        /// An Azure Arc agent's token endpoint: `http://127.0.0.1:PORT/arc/token`. Without the
        /// right `Authorization: Basic <key>` it answers 401 with
        /// `WWW-Authenticate: Basic realm=<key path>`; see [`MockManagedIdentity::set_arc_key`].
        arc_endpoint => azure_arc::PATH;
    }

    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base_url();
        url.set_path(path);
        url
    }

    scripted_mock_methods!(MockReply, "[`MockReply::auto_token`]");

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
        self.shared.state.lock().settings.identity_secret = Some(Secret::new(secret));
    }

    /// The key file the Arc endpoint's challenge names, and the contents it then expects in
    /// `Authorization: Basic <contents>`. Write the same file where the credential will look.
    pub fn set_arc_key(&self, path: impl Into<std::path::PathBuf>, contents: &str) {
        self.shared.state.lock().settings.arc_key = Some((path.into(), Secret::new(contents)));
    }

    /// Whether the Arc endpoint's token replies name the requested user-assigned identity
    /// (`client_id`, `object_id`, `msi_res_id`), as current agents do (default `true`); `false`
    /// plays an older agent that ignores the request and returns the system identity's token.
    pub fn arc_echoes_user_assigned_id(&self, echo: bool) {
        self.shared.state.lock().settings.arc_echo = echo;
    }

    /// Whether the IMDS endpoint requires the `Metadata: true` header (default `true`, as real
    /// IMDS does: without it the answer is a 400, which availability probes rely on).
    pub fn require_metadata_header(&self, required: bool) {
        self.shared.state.lock().settings.require_metadata = required;
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

impl fmt::Debug for MockManagedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("MockManagedIdentity")
            .field("addr", &self.server.addr())
            .field("script", &state.script)
            .field("require_metadata", &state.settings.require_metadata)
            // Never the secret itself.
            .field(
                "identity_header",
                &if state.settings.identity_secret.is_some() {
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

struct Shared {
    state: Mutex<State>,
}

impl Handler for Shared {
    /// Records `request` and decides the answer: a protocol-check failure, or the next
    /// scripted reply. Done under one lock so arrival order, script order and token numbers
    /// agree.
    fn answer(&self, request: RecordedRequest, _local: SocketAddr) -> Outgoing {
        let mut state = self.state.lock();
        let outgoing = state.check_and_reply(&request);
        state.requests.push(request);
        outgoing
    }
}

struct State {
    script: Script<MockReply>,
    clock: Clock,
    settings: Settings,
    requests: Vec<RecordedRequest>,
    token_requests: usize,
    /// Token replies served, for the numbering of auto tokens.
    tokens_issued: u64,
    rate_limit: Option<RateLimit>,
    throttled: usize,
}

/// A token bucket in front of the token requests (see [`MockManagedIdentity::rate_limit`]).
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

impl State {
    fn new() -> Self {
        State {
            script: Script::new(MockReply::auto_token()),
            clock: Clock::system(),
            settings: Settings::default(),
            requests: Vec::new(),
            token_requests: 0,
            tokens_issued: 0,
            rate_limit: None,
            throttled: 0,
        }
    }

    fn check_and_reply(&mut self, request: &RecordedRequest) -> Outgoing {
        let Some((_, protocol)) = PROTOCOLS.into_iter().find(|(p, _)| *p == request.path()) else {
            return Outgoing::json(
                404,
                imds_error("not_found", "The mock IMDS serves no such path"),
            );
        };
        let method = protocol.method();
        if request.method() != method {
            return Outgoing::json(
                405,
                imds_error("invalid_request", "The requested method is not allowed"),
            )
            .with_header("Allow", method);
        }
        if let Some(refusal) = protocol.check(&self.settings, request) {
            return refusal;
        }
        if let Some(limit) = &mut self.rate_limit
            && !limit.admit()
        {
            self.throttled += 1;
            let seconds = limit.retry_after.as_secs().max(1);
            return Outgoing::json(
                429,
                imds_error("too_many_requests", "Too many requests; please retry later"),
            )
            .with_header("Retry-After", seconds.to_string());
        }
        let reply = self.script.next();
        self.token_requests += 1;
        let now = self.clock.now().unix_timestamp();
        reply.answer(
            protocol,
            &self.settings,
            request,
            &mut self.tokens_issued,
            now,
        )
    }
}
