//! The Instance Metadata Service's protocol: `GET` with `Metadata: true`.

use super::protocol::{
    Protocol, Settings, TokenFields, has_metadata, imds_token, missing_metadata, missing_resource,
    resource,
};
use crate::testing::loopback_http::{Outgoing, RecordedRequest};

pub(super) const PATH: &str = "/metadata/identity/oauth2/token";

pub(super) struct Imds;

impl Protocol for Imds {
    /// `Metadata: true` (unless the test turned that off: without it real IMDS answers 400,
    /// which availability probes rely on), and a resource.
    fn check(&self, settings: &Settings, request: &RecordedRequest) -> Option<Outgoing> {
        if settings.require_metadata && !has_metadata(request) {
            return Some(missing_metadata());
        }
        resource(request).is_none().then(missing_resource)
    }

    fn token_body(&self, token: &TokenFields<'_>) -> Vec<u8> {
        imds_token(token)
    }
}
