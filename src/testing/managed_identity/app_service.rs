//! App Service's protocol: `GET` with the secret in `X-IDENTITY-HEADER`; answers in its own
//! shapes (also Azure ML's).

use serde::Serialize;

use super::protocol::{Protocol, Settings, TokenFields, resource};
use crate::testing::loopback_http::{Outgoing, RecordedRequest};

pub(super) const PATH: &str = "/msi/token";

pub(super) struct AppService;

impl Protocol for AppService {
    fn check(&self, settings: &Settings, request: &RecordedRequest) -> Option<Outgoing> {
        check_secret_and_resource(settings, request, "x-identity-header")
    }

    fn token_body(&self, token: &TokenFields<'_>) -> Vec<u8> {
        token_body(token)
    }
}

/// The secret in the `header` header (401 when missing or wrong), then a resource (400).
pub(super) fn check_secret_and_resource(
    settings: &Settings,
    request: &RecordedRequest,
    header: &str,
) -> Option<Outgoing> {
    if !settings.secret_matches(request.header(header)) {
        return Some(Outgoing::json(
            401,
            error_body(
                401,
                "The secret header is missing or does not match the configured secret",
            ),
        ));
    }
    resource(request)
        .is_none()
        .then(|| Outgoing::json(400, error_body(400, "The resource parameter is required")))
}

/// App Service's token body: `expires_on` a string, no `expires_in`, `ext_expires_in` or
/// `not_before`. Field order follows the real service's.
pub(super) fn token_body(token: &TokenFields<'_>) -> Vec<u8> {
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
    let refresh_in = token.refresh_in();
    serde_json::to_vec(&AppServiceToken {
        access_token: token.access_token,
        expires_on: &token.expires_on(),
        resource: token.resource,
        token_type: "Bearer",
        client_id: token.client_id,
        refresh_in: refresh_in.as_deref(),
    })
    .expect("serializing strings cannot fail")
}

/// App Service's error body: `{"statusCode":…,"message":"…"}`.
fn error_body(status: u16, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "statusCode": status, "message": message }))
        .expect("serializing strings cannot fail")
}
