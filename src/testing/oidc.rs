//! [`MockAzureDevOpsOidc`] and [`MockGitHubOidc`]: loopback stand-ins for the endpoints that
//! hand a CI job its OIDC token (Azure DevOps' `oidctoken`, GitHub Actions' ID token), with
//! [`MockOidcReply`], their scripted answers. Both run on the shared loopback server and share
//! everything but the protocol checks and the answer's field name.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use serde_json::json;

use super::loopback_http::{
    Action, Canned, Delivery, Handler, JSON, LoopbackServer, Outgoing, RecordedRequest, Script,
    scripted_mock_methods, scripted_reply_methods, token_reply_methods,
};
use crate::Secret;
use crate::system::Clock;

/// The path of the Azure DevOps mock's OIDC endpoint (a real one names the plan and the job).
const DEVOPS_PATH: &str = "/contoso/0000-project/_apis/distributedtask/hubs/build/plans/0000-plan/jobs/0000-job/oidctoken";
/// The path of the GitHub mock's ID token endpoint.
const GITHUB_PATH: &str =
    "/00000000-run/_apis/distributedtask/hubs/Actions/plans/0000-plan/jobs/0000-job/idtoken";
const SIGN_IN_PAGE: &[u8] = b"<!DOCTYPE html>\n<html><head><title>Azure DevOps Services | Sign In</title></head><body><form action=\"https://login.microsoftonline.com/\">Sign in</form></body></html>\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    AzureDevOps,
    GitHub,
}

impl Protocol {
    fn server_name(self) -> &'static str {
        match self {
            Protocol::AzureDevOps => "mock-azure-devops-oidc",
            Protocol::GitHub => "mock-github-oidc",
        }
    }
}

/// Defines a mock type over [`OidcServer`] with the shared methods.
macro_rules! oidc_mock {
    ($(#[$doc:meta])* $Mock:ident, $protocol:expr, $url_doc:literal) => {
        $(#[$doc])*
        pub struct $Mock {
            server: LoopbackServer,
            shared: Arc<Shared>,
        }

        impl $Mock {
            /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
            ///
            /// # Panics
            ///
            /// Outside a tokio runtime, or if no loopback port can be bound.
            pub async fn start() -> $Mock {
                let shared = Arc::new(Shared {
                    protocol: $protocol,
                    state: Mutex::new(State {
                        script: Script::new(MockOidcReply::auto_token()),
                        clock: Clock::system(),
                        expected: None,
                        requests: Vec::new(),
                        issued: 0,
                    }),
                });
                let server = LoopbackServer::start($protocol.server_name(), shared.clone()).await;
                $Mock { server, shared }
            }

            #[doc = $url_doc]
            pub fn request_url(&self) -> String {
                self.shared.url(self.server.addr())
            }

            scripted_mock_methods!(MockOidcReply, "[`MockOidcReply::auto_token`]");

            /// Refuses requests whose bearer token is not `token` (401).
            pub fn expect_token(&self, token: &str) {
                self.shared.state.lock().expected = Some(Secret::new(token));
            }

            /// The clock that dates the tokens' `iat`, `nbf` and `exp` (initially the system
            /// clock).
            pub fn set_clock(&self, clock: Clock) {
                self.shared.state.lock().clock = clock;
            }

            /// Every request received, in arrival order, including refused ones.
            pub fn requests(&self) -> Vec<RecordedRequest> {
                self.shared.state.lock().requests.clone()
            }

            /// How many requests were received.
            pub fn request_count(&self) -> usize {
                self.shared.state.lock().requests.len()
            }
        }

        impl fmt::Debug for $Mock {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let state = self.shared.state.lock();
                f.debug_struct(stringify!($Mock))
                    .field("addr", &self.server.addr())
                    .field("queued", &state.script.queued())
                    .field("expects_token", &state.expected.is_some())
                    .field("request_count", &state.requests.len())
                    .finish()
            }
        }
    };
}

oidc_mock!(
    /// A loopback HTTP/1.1 server speaking Azure DevOps' OIDC token endpoint, the one
    /// `SYSTEM_OIDCREQUESTURI` names in a pipeline job, for tests of
    /// [`AzurePipelinesCredential`](crate::AzurePipelinesCredential).
    ///
    /// Requests that pass the checks are answered from a FIFO script of [`MockOidcReply`]s,
    /// then from a default reply (initially [`MockOidcReply::auto_token`]), as
    /// `{"oidcToken":"<JWT>"}`. Every answer carries Azure DevOps' diagnostic headers
    /// `x-vss-e2eid: mock-e2eid-<n>` and `x-msedge-ref: Ref A: mock-msedge-ref-<n>` (`n`
    /// counts the requests, from 1). Every request is recorded.
    ///
    /// | check | answer |
    /// | --- | --- |
    /// | `POST` | 405 |
    /// | `X-TFS-FedAuthRedirect: Suppress` | 203 with a sign-in page (what Azure DevOps sends to a browser) |
    /// | `Authorization: Bearer <token>`, the token [`expect_token`](Self::expect_token) names if set | 401 |
    /// | `api-version=7.1` and a `serviceConnectionId` in the query | 400 |
    ///
    /// ```
    /// use azure_credentials::testing::{MockAzureDevOpsOidc, MockOidcReply};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let devops = MockAzureDevOpsOidc::start().await;
    /// devops.expect_token("system-access-token");
    /// devops.push(MockOidcReply::sign_in_page());
    /// // Use devops.request_url() as SYSTEM_OIDCREQUESTURI in the credential's Env.
    /// # let _ = devops.request_url();
    /// # }
    /// ```
    MockAzureDevOpsOidc,
    Protocol::AzureDevOps,
    "The value for `SYSTEM_OIDCREQUESTURI`: `http://127.0.0.1:PORT/…/oidctoken`."
);

oidc_mock!(
    /// A loopback HTTP/1.1 server speaking GitHub Actions' ID token endpoint, the one
    /// `ACTIONS_ID_TOKEN_REQUEST_URL` names in a job with `permissions: id-token: write`, for
    /// tests of [`GitHubActionsCredential`](crate::GitHubActionsCredential).
    ///
    /// Requests that pass the checks are answered from a FIFO script of [`MockOidcReply`]s,
    /// then from a default reply (initially [`MockOidcReply::auto_token`]), as
    /// `{"count":…,"value":"<JWT>"}` whose `aud` claim is the `audience` asked for. Every
    /// request is recorded.
    ///
    /// | check | answer |
    /// | --- | --- |
    /// | `GET` | 405 |
    /// | `Authorization: bearer <token>` (scheme in any case), the token [`expect_token`](Self::expect_token) names if set | 401 |
    ///
    /// ```
    /// use azure_credentials::testing::{MockGitHubOidc, MockOidcReply};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let github = MockGitHubOidc::start().await;
    /// github.expect_token("actions-request-token");
    /// github.push(MockOidcReply::error(500, "Internal Server Error"));
    /// // Use github.request_url() as ACTIONS_ID_TOKEN_REQUEST_URL in the credential's Env.
    /// # let _ = github.request_url();
    /// # }
    /// ```
    MockGitHubOidc,
    Protocol::GitHub,
    "The value for `ACTIONS_ID_TOKEN_REQUEST_URL`: `http://127.0.0.1:PORT/…/idtoken?api-version=2.0`."
);

/// One scripted answer of a [`MockAzureDevOpsOidc`] or [`MockGitHubOidc`]. `Debug` never
/// shows a token or a raw body.
#[derive(Clone, Debug)]
#[must_use = "a MockOidcReply does nothing until it is pushed to a mock"]
pub struct MockOidcReply {
    kind: ReplyKind,
    delivery: Delivery,
}

#[derive(Clone, Debug)]
enum ReplyKind {
    Token {
        value: Option<Secret>,
        expires_in: u64,
        #[allow(dead_code)] // the shared reply methods set it; OIDC answers have no such field
        refresh_in: Option<u64>,
    },
    Error {
        status: u16,
        message: String,
    },
    Canned(Canned),
}

impl MockOidcReply {
    scripted_reply_methods!(
        MockOidcReply,
        "mock ([`MockAzureDevOpsOidc`], [`MockGitHubOidc`])"
    );

    token_reply_methods!(
        MockOidcReply,
        600,
        "A JWT-shaped token (not signed) whose `exp` is 600 s after the mock's clock, with \
         `sub` `mock-oidc-subject` and the signature part `mock-oidc-signature-<nnnn>` (`nnnn` \
         counts the tokens served, from `0001`), which leak tests can look for."
    );

    /// An error with this status and `{"message": message}` (Azure DevOps adds its
    /// `typeName`, as it does).
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number.
    pub fn error(status: u16, message: &str) -> Self {
        super::loopback_http::check_status(status);
        MockOidcReply::new(ReplyKind::Error {
            status,
            message: message.to_owned(),
        })
    }

    /// Azure DevOps' answer to a request its sign-in flow intercepts: `203 Non-Authoritative
    /// Information` with an HTML sign-in page.
    pub fn sign_in_page() -> Self {
        MockOidcReply::raw(203, Some("text/html; charset=utf-8"), SIGN_IN_PAGE.to_vec())
    }

    fn answer(self, protocol: Protocol, audience: Option<&str>, state: &mut State) -> Outgoing {
        let action = match self.kind {
            ReplyKind::Token {
                value, expires_in, ..
            } => {
                state.issued += 1;
                let token = match value {
                    Some(value) => value.expose().to_owned(),
                    None => jwt(state, protocol, audience, expires_in),
                };
                let body = match protocol {
                    Protocol::AzureDevOps => json!({ "oidcToken": token }),
                    Protocol::GitHub => json!({ "count": token.len(), "value": token }),
                };
                Action::respond(200, JSON, body.to_string().into_bytes())
            }
            ReplyKind::Error { status, message } => {
                Action::respond(status, JSON, error_body(protocol, &message))
            }
            ReplyKind::Canned(canned) => canned.action(),
        };
        Outgoing::scripted(action, self.delivery)
    }
}

/// An unsigned JWT of the kind the CI systems issue.
fn jwt(state: &State, protocol: Protocol, audience: Option<&str>, expires_in: u64) -> String {
    let now = state.clock.now().unix_timestamp();
    let (issuer, default_audience) = match protocol {
        Protocol::AzureDevOps => (
            "https://vstoken.dev.azure.com/00000000-0000-0000-0000-000000000000",
            "api://AzureADTokenExchange",
        ),
        Protocol::GitHub => (
            "https://token.actions.githubusercontent.com",
            "https://github.com/mock-owner",
        ),
    };
    let claims = json!({
        "iss": issuer,
        "aud": audience.unwrap_or(default_audience),
        "sub": "mock-oidc-subject",
        "iat": now,
        "nbf": now,
        "exp": now.saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX)),
    });
    format!(
        "{}.{}.mock-oidc-signature-{:04}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        state.issued
    )
}

fn error_body(protocol: Protocol, message: &str) -> Vec<u8> {
    let body = match protocol {
        Protocol::AzureDevOps => json!({
            "$id": "1",
            "innerException": null,
            "message": message,
            "typeName": "Microsoft.TeamFoundation.DistributedTask.WebApi.MockException, Microsoft.TeamFoundation.DistributedTask.WebApi",
            "typeKey": "MockException",
            "errorCode": 0,
            "eventId": 3000,
        }),
        Protocol::GitHub => json!({ "message": message }),
    };
    body.to_string().into_bytes()
}

// ---------------------------------------------------------------------------------------------

struct Shared {
    protocol: Protocol,
    state: Mutex<State>,
}

struct State {
    script: Script<MockOidcReply>,
    clock: Clock,
    expected: Option<Secret>,
    requests: Vec<RecordedRequest>,
    issued: u64,
}

impl Shared {
    fn url(&self, addr: SocketAddr) -> String {
        match self.protocol {
            Protocol::AzureDevOps => format!("http://{addr}{DEVOPS_PATH}"),
            Protocol::GitHub => format!("http://{addr}{GITHUB_PATH}?api-version=2.0"),
        }
    }
}

impl Handler for Shared {
    fn answer(&self, request: RecordedRequest, _local: SocketAddr) -> Outgoing {
        let mut state = self.state.lock();
        let n = state.requests.len() + 1;
        let outgoing = match self.check(&request, &state) {
            Err(action) => Outgoing::new(action),
            Ok(()) => {
                let audience = request.query("audience").map(str::to_owned);
                let reply = state.script.next();
                reply.answer(self.protocol, audience.as_deref(), &mut state)
            }
        };
        state.requests.push(request);
        match self.protocol {
            // Azure DevOps puts its trace ids on every answer.
            Protocol::AzureDevOps => outgoing
                .with_header("x-vss-e2eid", format!("mock-e2eid-{n}"))
                .with_header("x-msedge-ref", format!("Ref A: mock-msedge-ref-{n}")),
            Protocol::GitHub => outgoing,
        }
    }
}

impl Shared {
    /// The protocol checks: `Err` is the answer to a request that fails one.
    fn check(&self, request: &RecordedRequest, state: &State) -> Result<(), Action> {
        let refuse = |status: u16, message: &str| {
            Err(Action::respond(
                status,
                JSON,
                error_body(self.protocol, message),
            ))
        };
        let method = match self.protocol {
            Protocol::AzureDevOps => "POST",
            Protocol::GitHub => "GET",
        };
        if request.method() != method {
            return refuse(405, "The requested resource does not support this method.");
        }
        if self.protocol == Protocol::AzureDevOps
            && !request
                .header("x-tfs-fedauthredirect")
                .is_some_and(|v| v.eq_ignore_ascii_case("Suppress"))
        {
            return Err(Action::respond(
                203,
                "text/html; charset=utf-8",
                SIGN_IN_PAGE.to_vec(),
            ));
        }
        let token = request.header("authorization").and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            let scheme_ok = match self.protocol {
                Protocol::AzureDevOps => scheme == "Bearer",
                Protocol::GitHub => scheme.eq_ignore_ascii_case("bearer"),
            };
            scheme_ok.then_some(token)
        });
        let authorized = token.is_some_and(|token| {
            state
                .expected
                .as_ref()
                .is_none_or(|expected| *expected == Secret::new(token))
        });
        if !authorized {
            return refuse(401, "The request requires authentication.");
        }
        if self.protocol == Protocol::AzureDevOps
            && (request.query("api-version") != Some("7.1")
                || request
                    .query("serviceConnectionId")
                    .is_none_or(str::is_empty))
        {
            return refuse(
                400,
                "The request needs api-version=7.1 and a serviceConnectionId.",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::*;
    use crate::system::{Http, HttpRequest, HttpResponse, RetryPolicy};

    async fn send(request: HttpRequest) -> HttpResponse {
        Http::builder()
            .build()
            .unwrap()
            .send(&request, &RetryPolicy::none())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_devops_mock_checks_the_protocol_and_marks_every_answer() {
        let mock = MockAzureDevOpsOidc::start().await;
        mock.expect_token("right");
        let base = Url::parse(&mock.request_url()).unwrap();
        let mut url = base.clone();
        url.query_pairs_mut()
            .append_pair("api-version", "7.1")
            .append_pair("serviceConnectionId", "c0");
        let post = |url: &Url, token: &str| {
            HttpRequest::post(url.clone())
                .header("X-TFS-FedAuthRedirect", "Suppress")
                .secret_header("Authorization", &Secret::new(format!("Bearer {token}")))
        };
        let cases = [
            (HttpRequest::get(url.clone()), 405),
            (
                HttpRequest::post(url.clone())
                    .secret_header("Authorization", &Secret::new("Bearer right")),
                203,
            ),
            (post(&url, "wrong"), 401),
            (post(&base, "right"), 400),
            (post(&url, "right"), 200),
        ];
        for (n, (request, status)) in cases.into_iter().enumerate() {
            let response = send(request).await;
            assert_eq!(response.status(), status, "case {n}");
            assert_eq!(
                response.header("x-vss-e2eid"),
                Some(format!("mock-e2eid-{}", n + 1).as_str())
            );
            assert!(response.header("x-msedge-ref").is_some());
        }
        let ok = send(post(&url, "right")).await;
        let body: serde_json::Value = serde_json::from_slice(ok.body()).unwrap();
        assert!(
            body["oidcToken"]
                .as_str()
                .unwrap()
                .ends_with(".mock-oidc-signature-0002")
        );
        assert_eq!(mock.request_count(), 6);
        assert_eq!(mock.requests()[4].query("serviceConnectionId"), Some("c0"));
        let printed = format!("{:?}", mock.requests());
        assert!(!printed.contains("right"), "{printed}");
    }

    #[tokio::test]
    async fn the_github_mock_answers_the_audience_asked_for() {
        let mock = MockGitHubOidc::start().await;
        let mut url = Url::parse(&mock.request_url()).unwrap();
        url.query_pairs_mut().append_pair("audience", "api://X");
        let response = send(
            HttpRequest::get(url.clone())
                .secret_header("Authorization", &Secret::new("BEARER anything")),
        )
        .await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        let jwt = body["value"].as_str().unwrap();
        let claims = crate::jwt::Claims::of(jwt).unwrap();
        assert!(claims.expires_on().is_some());
        let payload = jwt.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["aud"], "api://X");
        assert_eq!(send(HttpRequest::get(url.clone())).await.status(), 401);
        assert_eq!(send(HttpRequest::post(url)).await.status(), 405);
        assert_eq!(mock.request_count(), 3);
    }
}
