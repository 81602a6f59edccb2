//! Azure ML's protocol: App Service's, with the secret in a `secret` header and the client id
//! in a `clientid` parameter.

use super::app_service;
use super::protocol::{Protocol, Settings, TokenFields};
use crate::testing::loopback_http::{Outgoing, RecordedRequest};

pub(super) const PATH: &str = "/azureml/token";

pub(super) struct AzureMl;

impl Protocol for AzureMl {
    fn check(&self, settings: &Settings, request: &RecordedRequest) -> Option<Outgoing> {
        app_service::check_secret_and_resource(settings, request, "secret")
    }

    fn requested_client_id<'r>(&self, request: &'r RecordedRequest) -> Option<&'r str> {
        request.query("clientid")
    }

    fn token_body(&self, token: &TokenFields<'_>) -> Vec<u8> {
        app_service::token_body(token)
    }
}
