//! [`MockEntraReply`]: one scripted answer of the Entra mock, and Entra's answer shapes.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::Secret;
use crate::testing::loopback_http::{
    Action, Canned, Delivery, JSON, Outgoing, scripted_reply_methods, token_reply_methods,
};

const OVERSIZED_HEAD: &[u8] =
    br#"{"token_type":"Bearer","expires_in":3599,"access_token":"mock-entra-token-oversized-"#;
const OVERSIZED_TAIL: &[u8] = br#""}"#;

/// One scripted answer of a [`MockEntra`](super::MockEntra) to a token request.
///
/// Tokens look like Entra's: `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,
/// "access_token":"mock-entra-token-1"}`. Errors carry Entra's fields: `error`,
/// `error_description` (`AADSTS<code>: <text>` then trace id, correlation id and timestamp lines),
/// `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`. `Debug` never shows a
/// token or a raw body.
#[derive(Clone, Debug)]
#[must_use = "a MockEntraReply does nothing until it is pushed to a MockEntra"]
pub struct MockEntraReply {
    kind: ReplyKind,
    delivery: Delivery,
}

#[derive(Clone, Debug)]
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
    Oversized {
        bytes: usize,
    },
    Canned(Canned),
}

impl MockEntraReply {
    scripted_reply_methods!(MockEntraReply, "[`MockEntra`](super::MockEntra)");

    token_reply_methods!(
        MockEntraReply,
        3599,
        "A token `mock-entra-token-<n>` (`n` counts the tokens served, from 1), living 3599 s; \
         for an on-behalf-of request `mock-entra-token-<n>-for-<user assertion>`, so a test can \
         tell whose token it got. Leak tests can look for the `mock-entra-token-` prefix."
    );

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

    /// Still pending (polling a device code before the user signed in): 400
    /// `authorization_pending`, `AADSTS70016`. Pushed before a token, it plays a user who
    /// signs in after a few polls.
    pub fn authorization_pending() -> Self {
        MockEntraReply::error(
            400,
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )
    }

    /// Polling a device code too fast: 400 `slow_down` (the client adds 5 s to its
    /// interval).
    pub fn slow_down() -> Self {
        MockEntraReply::error(
            400,
            "slow_down",
            70016,
            "OAuth 2.0 device flow error. The client is polling too frequently; slow down.",
        )
    }

    /// The user declined the device code sign-in: 400 `authorization_declined`,
    /// `AADSTS70000`.
    pub fn authorization_declined() -> Self {
        MockEntraReply::error(
            400,
            "authorization_declined",
            70000,
            "The user denied the authorization request.",
        )
    }

    /// The device code expired before the user signed in: 400 `expired_token`,
    /// `AADSTS70020`.
    pub fn expired_token() -> Self {
        MockEntraReply::error(
            400,
            "expired_token",
            70020,
            "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
        )
    }

    /// The device code is not one Entra knows: 400 `bad_verification_code`, `AADSTS70019`.
    pub fn bad_verification_code() -> Self {
        MockEntraReply::error(
            400,
            "bad_verification_code",
            70019,
            "The provided value for the input parameter 'device_code' is not valid.",
        )
    }

    /// A refused grant: 400 `invalid_grant` with this code, e.g. `invalid_grant(50076, "Due to
    /// a configuration change made by your administrator, or because you moved to a new
    /// location, you must use multi-factor authentication to access the resource.")` or
    /// `invalid_grant(700082, "The refresh token has expired due to inactivity.")`.
    pub fn invalid_grant(code: u32, description: &str) -> Self {
        MockEntraReply::error(400, "invalid_grant", code, description)
    }

    /// Whether this reply is a token (which a user grant adds its user-flow fields to).
    pub(super) fn is_token(&self) -> bool {
        matches!(self.kind, ReplyKind::Token { .. })
    }

    /// The answer: `tokens_issued` numbers the tokens, `n` the request (for the ids in error
    /// bodies); an automatic token for an on-behalf-of request names its `user_assertion`;
    /// a token answering a user grant gets the `extras` (`scope`, `refresh_token`,
    /// `id_token`, `client_info`).
    pub(super) fn answer(
        self,
        tokens_issued: &mut u64,
        n: u64,
        user_assertion: Option<&str>,
        extras: Option<Map<String, Value>>,
    ) -> Outgoing {
        let action = match self.kind {
            ReplyKind::Token {
                value,
                expires_in,
                refresh_in,
            } => {
                *tokens_issued += 1;
                let token = match (value, user_assertion) {
                    (Some(v), _) => v.expose().to_owned(),
                    (None, None) => format!("mock-entra-token-{tokens_issued}"),
                    (None, Some(assertion)) => {
                        format!("mock-entra-token-{tokens_issued}-for-{assertion}")
                    }
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
                if let (Some(extras), Some(object)) = (extras, body.as_object_mut()) {
                    object.extend(extras);
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
            ReplyKind::Oversized { bytes } => Action::Oversized {
                bytes,
                prefix: OVERSIZED_HEAD,
                suffix: OVERSIZED_TAIL,
            },
            ReplyKind::Canned(canned) => canned.action(),
        };
        Outgoing::scripted(action, self.delivery)
    }
}

/// An error body as Entra sends it.
pub(super) fn error_response(
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

/// The OpenID configuration document of `tenant` at `base` (`scheme://host:port`): the fields
/// MSAL reads from it (the endpoints, and the issuer it checks for authorities it does not
/// know).
pub(super) fn openid_configuration(base: &str, tenant: &str) -> Outgoing {
    let body = json!({
        "issuer": format!("{base}/{tenant}/v2.0"),
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "tenant_region_scope": null,
    });
    Outgoing::new(Action::respond(200, JSON, body.to_string().into_bytes()))
}
