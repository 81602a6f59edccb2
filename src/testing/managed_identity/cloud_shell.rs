//! Azure Cloud Shell's protocol: `POST` with a `resource` form field and `Metadata: true`.

use super::protocol::{Protocol, Settings, TokenFields, imds_token};
use crate::testing::loopback_http::{Outgoing, RecordedRequest};

pub(super) const PATH: &str = "/cloudshell/token";

pub(super) struct CloudShell;

impl Protocol for CloudShell {
    fn method(&self) -> &'static str {
        "POST"
    }

    /// The same checks as IMDS, with the same answers.
    fn check(&self, settings: &Settings, request: &RecordedRequest) -> Option<Outgoing> {
        super::imds::Imds.check(settings, request)
    }

    fn token_body(&self, token: &TokenFields<'_>) -> Vec<u8> {
        imds_token(token)
    }
}
