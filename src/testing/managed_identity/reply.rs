//! [`MockReply`]: one scripted answer of the managed identity mock, and how it becomes the
//! bytes of the asked endpoint's protocol.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::MockManagedIdentity;
use super::protocol::{Protocol, Settings, TokenFields, imds_error, resource};
use crate::Secret;
use crate::testing::loopback_http::{
    Action, Canned, Delivery, JSON, Outgoing, RecordedRequest, check_status, reason,
    scripted_reply_methods,
};

const HTML: &str = "text/html; charset=utf-8";
const HTML_PAGE: &[u8] = b"<!DOCTYPE html>\n<html><head><title>Access Denied</title></head>\
<body><h1>Access Denied</h1><p>Your request was blocked by the network proxy.</p></body></html>\n";
const MALFORMED_JSON: &[u8] = br#"{"access_token":"mock-imds-token-malformed","expires_in":"36"#;
const OVERSIZED_HEAD: &[u8] = br#"{"access_token":"mock-imds-token-oversized-"#;
const OVERSIZED_TAIL: &[u8] = br#"","token_type":"Bearer"}"#;
const HALF_BODY: &[u8] = br#"{"access_t"#;

/// One scripted answer of a [`MockManagedIdentity`] to a token request: a token, an error, or a fault.
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
/// [`MockManagedIdentity::DEFAULT_CLIENT_ID`].
///
/// `Debug` output never shows a token, a raw body or a sensitive header value.
#[derive(Clone, Debug)]
#[must_use = "a MockReply does nothing until it is pushed to a MockManagedIdentity"]
pub struct MockReply {
    kind: ReplyKind,
    delivery: Delivery,
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
    Error {
        status: u16,
        error: String,
        description: String,
    },
    Oversized {
        bytes: usize,
    },
    Canned(Canned),
    /// Panics inside the server task, to test that the panic reaches the test.
    #[cfg(test)]
    Panic,
}

#[derive(Clone, Debug)]
enum TokenValue {
    /// `mock-imds-token-<n>`.
    Auto,
    /// An Entra-shaped JWT whose signature part is `mock-imds-token-<n>`.
    Jwt,
    Fixed(Secret),
}

impl MockReply {
    scripted_reply_methods!(MockReply, "[`MockManagedIdentity`]");

    /// A token `mock-imds-token-<n>`, where `n` counts the token replies (of any kind) the mock
    /// has served, starting at 1; it expires in 3600 seconds. This is the initial default reply.
    ///
    /// Leak tests can look for the `mock-imds-token-` prefix in logs and error messages.
    pub fn auto_token() -> Self {
        MockReply::token_of(TokenValue::Auto)
    }

    /// A token shaped like an Entra ID access token, for resources that read it (Azurite's OAuth
    /// mode, a test's own checks): an unsigned JWT, header `{"typ":"JWT","alg":"RS256","kid":"mock"}`,
    /// claims
    ///
    /// ```text
    /// {"aud":"<the requested resource>","iss":"https://sts.windows.net/<TENANT_ID>/","iat":…,"nbf":…,"exp":…,
    ///  "appid":"<client id>","appidacr":"2","idtyp":"app","oid":"…","sub":"…","tid":"<TENANT_ID>","ver":"1.0"}
    /// ```
    ///
    /// `iat` and `nbf` are the mock's clock at the request and `exp` is `expires_in` (3600
    /// seconds unless [changed](Self::expires_in)) later, as `expires_on` says; `appid` is the
    /// `client_id` the reply names; `tid` is [`MockManagedIdentity::TENANT_ID`]. The signature
    /// part is `mock-imds-token-<n>`, numbered as [`auto_token`](Self::auto_token)'s tokens, so
    /// leak tests find these tokens by the same prefix.
    pub fn jwt() -> Self {
        MockReply::token_of(TokenValue::Jwt)
    }

    /// A token with this value, expiring in 3600 seconds.
    pub fn token(value: &str) -> Self {
        MockReply::token_of(TokenValue::Fixed(Secret::new(value)))
    }

    fn token_of(value: TokenValue) -> Self {
        MockReply::new(ReplyKind::Token {
            value,
            expires_in: 3600,
            refresh_in: None,
            client_id: None,
        })
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

    /// A response with this status and raw body, `Content-Type: application/json`.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        MockReply::raw(status, Some(JSON), body.into())
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
        MockReply::error(status, error, &description)
    }

    /// An HTML page with `Content-Type: text/html`: what a proxy or captive portal answering on
    /// `169.254.169.254` sends.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number.
    pub fn html(status: u16) -> Self {
        MockReply::raw(status, Some(HTML), HTML_PAGE)
    }

    /// A 200 whose JSON body is cut short. The partial token in it starts with
    /// `mock-imds-token-` too, so a credential that echoes the body into an error is caught by
    /// the same leak checks.
    pub fn malformed_json() -> Self {
        MockReply::raw(200, Some(JSON), MALFORMED_JSON)
    }

    /// A 200 with a JSON-looking body of exactly `bytes` bytes (and a matching
    /// `Content-Length`), written in chunks, to test response size limits.
    pub fn oversized(bytes: usize) -> Self {
        MockReply::new(ReplyKind::Oversized { bytes })
    }

    /// Sends a 200's status line and headers with `Content-Length: 1000`, then 10 bytes of body,
    /// then closes the connection.
    pub fn half_body() -> Self {
        MockReply::short_body(200, HALF_BODY, 1000)
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
    pub(super) fn panic_for_test() -> Self {
        MockReply::new(ReplyKind::Panic)
    }

    /// The answer to `request`, in `protocol`'s shape. `tokens_issued` numbers the tokens;
    /// `now` is the mock's clock in Unix seconds.
    pub(super) fn answer(
        self,
        protocol: &dyn Protocol,
        settings: &Settings,
        request: &RecordedRequest,
        tokens_issued: &mut u64,
        now: i64,
    ) -> Outgoing {
        let action = match self.kind {
            ReplyKind::Token {
                value,
                expires_in,
                refresh_in,
                client_id: named_client_id,
            } => {
                *tokens_issued += 1;
                let resource = resource(request).unwrap_or_default();
                let echo = protocol.echoes_ids(settings);
                let client_id = protocol.requested_client_id(request).filter(|_| echo);
                let client_id = named_client_id
                    .as_deref()
                    .or(client_id)
                    .unwrap_or(MockManagedIdentity::DEFAULT_CLIENT_ID);
                let value = match value {
                    TokenValue::Auto => format!("mock-imds-token-{tokens_issued}"),
                    TokenValue::Jwt => {
                        entra_jwt(&resource, client_id, now, expires_in, *tokens_issued)
                    }
                    TokenValue::Fixed(secret) => secret.expose().to_owned(),
                };
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
                Action::respond(200, JSON, protocol.token_body(&fields))
            }
            ReplyKind::Error {
                status,
                error,
                description,
            } => Action::respond(status, JSON, imds_error(&error, &description)),
            ReplyKind::Oversized { bytes } => Action::Oversized {
                bytes,
                prefix: OVERSIZED_HEAD,
                suffix: OVERSIZED_TAIL,
            },
            ReplyKind::Canned(canned) => canned.action(),
            #[cfg(test)]
            ReplyKind::Panic => panic!("deliberate panic in the mock IMDS server"),
        };
        Outgoing::scripted(action, self.delivery)
    }
}

/// [`MockReply::jwt`]'s token: an unsigned JWT with the claims of an Entra ID v1 access token
/// issued to a managed identity.
fn entra_jwt(resource: &str, client_id: &str, now: i64, expires_in: u64, number: u64) -> String {
    let tenant = MockManagedIdentity::TENANT_ID;
    let claims = serde_json::json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": now,
        "nbf": now,
        "exp": now.saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX)),
        "appid": client_id,
        "appidacr": "2",
        "idtyp": "app",
        "oid": MANAGED_IDENTITY_OBJECT_ID,
        "sub": MANAGED_IDENTITY_OBJECT_ID,
        "tid": tenant,
        "ver": "1.0",
    });
    format!(
        "{}.{}.mock-imds-token-{number}",
        URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256","kid":"mock"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
    )
}

/// The object id in [`MockReply::jwt`]'s tokens.
const MANAGED_IDENTITY_OBJECT_ID: &str = "5e0b6a1f-9c3d-4f27-8a41-2d7c6b9e0f13";
