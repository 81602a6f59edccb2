//! The Azure Arc agent's protocol: IMDS's, behind a challenge. Without the right
//! `Authorization: Basic <key>` the agent answers 401 with `WWW-Authenticate: Basic
//! realm=<key path>`.

use super::protocol::{
    Protocol, Settings, TokenFields, has_metadata, imds_error, imds_token, missing_metadata,
    missing_resource, resource,
};
use crate::Secret;
use crate::testing::loopback_http::{Outgoing, RecordedRequest};

pub(super) const PATH: &str = "/arc/token";

pub(super) struct AzureArc;

impl Protocol for AzureArc {
    /// `Metadata: true` (always), the key, then a resource.
    fn check(&self, settings: &Settings, request: &RecordedRequest) -> Option<Outgoing> {
        if !has_metadata(request) {
            return Some(missing_metadata());
        }
        let authorized = match (&settings.arc_key, request.header("authorization")) {
            (Some((_, key)), Some(given)) => given
                .strip_prefix("Basic ")
                .is_some_and(|k| Secret::new(k) == *key),
            _ => false,
        };
        if !authorized {
            let challenge = Outgoing::json(
                401,
                imds_error("unauthorized", "Authorization header required"),
            );
            return Some(match &settings.arc_key {
                Some((path, _)) => challenge.with_header(
                    "WWW-Authenticate",
                    format!("Basic realm={}", path.display()),
                ),
                None => challenge,
            });
        }
        resource(request).is_none().then(missing_resource)
    }

    /// An older agent ignores the requested identity and answers for the system-assigned one.
    fn echoes_ids(&self, settings: &Settings) -> bool {
        settings.arc_echo
    }

    fn token_body(&self, token: &TokenFields<'_>) -> Vec<u8> {
        imds_token(token)
    }
}
