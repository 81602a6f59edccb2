//! Service Fabric's protocol: `GET` with the secret in a `Secret` header (served over https
//! through the server's TLS front); answers in its own shapes.

use serde::Serialize;

use super::protocol::{Protocol, Settings, TokenFields, resource};
use crate::testing::loopback_http::{Outgoing, RecordedRequest};

pub(super) const PATH: &str = "/servicefabric/token";

pub(super) struct ServiceFabric;

impl Protocol for ServiceFabric {
    fn check(&self, settings: &Settings, request: &RecordedRequest) -> Option<Outgoing> {
        if !settings.secret_matches(request.header("secret")) {
            return Some(Outgoing::json(
                401,
                error_body(
                    "SecretHeaderNotFound",
                    "Secret is not found in the request headers.",
                ),
            ));
        }
        resource(request).is_none().then(|| {
            Outgoing::json(
                400,
                error_body(
                    "ArgumentNullOrEmpty",
                    "Value cannot be null or empty. Parameter name: resource",
                ),
            )
        })
    }

    fn token_body(&self, token: &TokenFields<'_>) -> Vec<u8> {
        #[derive(Serialize)]
        struct ServiceFabricToken<'a> {
            access_token: &'a str,
            expires_on: &'a str,
            token_type: &'a str,
            resource: &'a str,
        }
        serde_json::to_vec(&ServiceFabricToken {
            access_token: token.access_token,
            expires_on: &token.expires_on(),
            token_type: "Bearer",
            resource: token.resource,
        })
        .expect("serializing strings cannot fail")
    }
}

/// Service Fabric's error body: `{"error":{"code":"…","message":"…"}}`.
fn error_body(code: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": { "code": code, "message": message } }))
        .expect("serializing strings cannot fail")
}
