//! The CI systems' OIDC endpoints (Azure DevOps' `oidctoken`, GitHub Actions' ID token): their
//! answer, read into an assertion or an error by a whole credential.
//!
//! The target goes through the public credentials ([`AzurePipelinesCredential`],
//! [`GitHubActionsCredential`]) rather than the functions that read the answer
//! (`entra::assertion_source::oidc_token`, `refused_answer`, each source's `assertion`): those
//! are private to the credentials and may move, the credentials' behaviour is what users see.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::checks::{assert_no_body_secret, assert_not_a_panic, shown};
use super::endpoint::{SCOPE, block_on};
use super::{BASE_UNIX_NANOS, Input, TENANT, clock_at, strip_bom};
use crate::system::{
    Env, Http, HttpRequest, HttpResponse, HttpTransport, RetryPolicy, TransportFuture,
};
use crate::{
    AccessToken, AzurePipelinesCredential, Context, Error, GitHubActionsCredential, TokenCache,
    TokenCredential,
};

const CLIENT_ID: &str = "5f3c1d2e-8a4b-4c6d-9e0f-1a2b3c4d5e6f";
const SERVICE_CONNECTION_ID: &str = "0c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f";
/// The job's credentials for the OIDC request (`System.AccessToken`, GitHub's request token):
/// secrets no error may show.
const SYSTEM_ACCESS_TOKEN: &str = "Sy5tem-Acce55-T0ken-8f3a91c2d4e6";
const GITHUB_REQUEST_TOKEN: &str = "Gh-Req-T0ken-2b7d4f6a8c0e1357";
/// The Entra token the exchange of any assertion gets.
const ENTRA_TOKEN: &str = "entra-token-for-the-fuzzed-assertion";

/// A CI system's OIDC endpoint and Entra's token endpoint in memory: a request with an
/// `Authorization` header (the OIDC request) gets the input's answer, one without (the
/// exchange) a token, after its `client_assertion` is noted.
#[derive(Debug)]
struct CiEndpoint {
    oidc_answer: HttpResponse,
    entra_answer: HttpResponse,
    oidc_requests: AtomicUsize,
    assertions: Mutex<Vec<String>>,
}

impl HttpTransport for CiEndpoint {
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
        let answer = if request.header_value("authorization").is_some() {
            self.oidc_requests.fetch_add(1, Ordering::Relaxed);
            self.oidc_answer.clone()
        } else {
            let body = request.body().unwrap_or_default();
            let assertion = url::form_urlencoded::parse(body)
                .find(|(name, _)| name == "client_assertion")
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default();
            self.assertions.lock().push(assertion);
            self.entra_answer.clone()
        };
        Box::pin(async move { Ok(answer) })
    }
}

/// One [`oidc_response`] case: which CI system, and the answer's head.
struct OidcCase<'a> {
    github: bool,
    status: u16,
    headers: Vec<(&'static str, &'a [u8])>,
}

/// What a case did: the credential's answer, the OIDC requests sent, the assertions exchanged.
struct Outcome {
    result: Result<AccessToken, Error>,
    oidc_requests: usize,
    assertions: Vec<String>,
}

impl OidcCase<'_> {
    fn run(&self, body: &[u8]) -> Outcome {
        let clock = clock_at(BASE_UNIX_NANOS);
        let entra_body = format!(
            r#"{{"token_type":"Bearer","access_token":"{ENTRA_TOKEN}","expires_in":3600}}"#
        );
        let json: &[(&str, &[u8])] = &[("content-type", b"application/json")];
        let endpoint = Arc::new(CiEndpoint {
            oidc_answer: HttpResponse::for_fuzzing(self.status, &self.headers, body, clock.clock()),
            entra_answer: HttpResponse::for_fuzzing(
                200,
                json,
                entra_body.as_bytes(),
                clock.clock(),
            ),
            oidc_requests: AtomicUsize::new(0),
            assertions: Mutex::new(Vec::new()),
        });
        let http = Http::builder()
            .transport(endpoint.clone())
            .clock(clock.clock())
            .build()
            .expect("an HTTP client on a transport");
        let cache = TokenCache::builder()
            .clock(clock.clock())
            .jitter_seed(0)
            .build();
        let context = Context::default().with_http(http).with_cache(cache);
        let result = if self.github {
            let env = Env::from_pairs([
                (
                    "ACTIONS_ID_TOKEN_REQUEST_URL",
                    "https://pipelines.actions.example/00000000-run/_apis/idtoken?api-version=2.0",
                ),
                ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", GITHUB_REQUEST_TOKEN),
                ("AZURE_TENANT_ID", TENANT),
                ("AZURE_CLIENT_ID", CLIENT_ID),
            ]);
            let credential = GitHubActionsCredential::builder()
                .context(context.with_env(env))
                .authority_host("https://login.microsoftonline.com")
                .retry_policy(RetryPolicy::none())
                .build()
                .expect("a valid GitHub Actions configuration");
            block_on(credential.get_token(&[SCOPE], None))
        } else {
            let env = Env::from_pairs([(
                "SYSTEM_OIDCREQUESTURI",
                "https://dev.azure.com/contoso/p/_apis/distributedtask/hubs/build/plans/1/jobs/2/oidctoken",
            )]);
            let credential = AzurePipelinesCredential::builder()
                .context(context.with_env(env))
                .tenant_id(TENANT)
                .client_id(CLIENT_ID)
                .service_connection_id(SERVICE_CONNECTION_ID)
                .system_access_token(SYSTEM_ACCESS_TOKEN)
                .authority_host("https://login.microsoftonline.com")
                .retry_policy(RetryPolicy::none())
                .build()
                .expect("a valid Azure Pipelines configuration");
            block_on(credential.get_token(&[SCOPE], None))
        };
        let assertions = std::mem::take(&mut *endpoint.assertions.lock());
        Outcome {
            result,
            oidc_requests: endpoint.oidc_requests.load(Ordering::Relaxed),
            assertions,
        }
    }
}

/// A CI system's answer to the OIDC token request, through a real [`AzurePipelinesCredential`]
/// or [`GitHubActionsCredential`] (one `get_token`, no retries; Entra answers any exchange
/// with a token). Checked: nothing panics; one OIDC request; a token means the answer was a
/// success (2xx for Azure DevOps, 200 for GitHub) and the one assertion exchanged is the
/// body's `oidcToken` (Azure DevOps) or `value` (GitHub), trimmed; an error means no exchange,
/// and shows neither the job's request token nor the body's `oidcToken` or `value` (8 bytes or
/// more, see [`super::checks`]).
///
/// Layout: `[u8 selector: bit 0 GitHub, else Azure DevOps][u16 status][field Content-Type]
/// [field Retry-After][field x-vss-e2eid][field x-msedge-ref][body]`.
pub fn oidc_response(data: &[u8]) {
    let mut input = Input::new(data);
    let github = input.u8() & 1 == 1;
    let status = input.u16();
    let mut headers = Vec::new();
    for name in ["content-type", "retry-after", "x-vss-e2eid", "x-msedge-ref"] {
        if let Some(value) = input.field() {
            headers.push((name, value));
        }
    }
    let case = OidcCase {
        github,
        status,
        headers,
    };
    let body = input.rest();
    let outcome = case.run(body);
    assert_eq!(
        outcome.oidc_requests, 1,
        "{} OIDC requests",
        outcome.oidc_requests
    );
    let field = if github { "value" } else { "oidcToken" };
    match &outcome.result {
        Ok(token) => {
            assert_eq!(token.token().expose(), ENTRA_TOKEN);
            let success = if github {
                status == 200
            } else {
                (200..300).contains(&status)
            };
            assert!(success, "a token from an answer with status {status}");
            let json: serde_json::Value =
                serde_json::from_slice(strip_bom(body)).unwrap_or_default();
            let expected = json.get(field).and_then(|t| t.as_str()).map(str::trim);
            assert_eq!(
                outcome.assertions.len(),
                1,
                "{} exchanges",
                outcome.assertions.len()
            );
            assert_eq!(
                Some(outcome.assertions[0].as_str()),
                expected,
                "the assertion exchanged is not the body's {field}"
            );
        }
        Err(error) => {
            assert_not_a_panic(error);
            assert!(
                outcome.assertions.is_empty(),
                "an error after an exchange Entra accepted: {error}"
            );
            let text = shown(error);
            for secret in [SYSTEM_ACCESS_TOKEN, GITHUB_REQUEST_TOKEN] {
                assert!(
                    !text.contains(secret),
                    "the job's request token in the error: {text}"
                );
            }
            assert_no_body_secret(error, body, &["oidcToken", "value"], |body| {
                case.run(body).result
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(github: bool, status: u16) -> OidcCase<'static> {
        OidcCase {
            github,
            status,
            headers: vec![("content-type", b"application/json")],
        }
    }

    /// The target's checks of a token only bite if its answers reach the exchange.
    #[test]
    fn the_targets_token_answers_reach_the_exchange_as_the_assertion() {
        for (github, body) in [
            (false, &br#"{"oidcToken":" eyJ.devops.assertion "}"#[..]),
            (true, br#"{"count":18,"value":"eyJ.github.assertion"}"#),
        ] {
            let outcome = case(github, 200).run(body);
            let token = outcome.result.expect("a token");
            assert_eq!(token.token().expose(), ENTRA_TOKEN);
            assert_eq!(outcome.oidc_requests, 1);
            let expected = if github {
                "eyJ.github.assertion"
            } else {
                "eyJ.devops.assertion"
            };
            assert_eq!(outcome.assertions, [expected]);
        }
    }

    #[test]
    fn the_targets_refusals_are_errors_without_an_exchange() {
        for github in [false, true] {
            let outcome = case(github, 401).run(br#"{"message":"no"}"#);
            let error = outcome.result.expect_err("a refusal");
            assert_eq!(error.status(), Some(401), "{error}");
            assert!(outcome.assertions.is_empty());
        }
    }
}
