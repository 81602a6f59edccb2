//! What every managed identity protocol the mock speaks is: the [`Protocol`] trait its file
//! implements, the [`Settings`] its checks read, the [`TokenFields`] a token answer is made of,
//! and the shapes several protocols share (IMDS's error and token bodies).

use std::path::PathBuf;

use serde::Serialize;

use crate::Secret;
use crate::testing::loopback_http::{Outgoing, RecordedRequest};

/// One managed identity endpoint's protocol (each is served at its own path).
pub(super) trait Protocol: Sync {
    /// The method its token requests use.
    fn method(&self) -> &'static str {
        "GET"
    }

    /// The checks the real endpoint makes before it looks at the request: `Some` answer when
    /// the request fails one.
    fn check(&self, settings: &Settings, request: &RecordedRequest) -> Option<Outgoing>;

    /// The client id the request asks for, as this protocol names it.
    fn requested_client_id<'r>(&self, request: &'r RecordedRequest) -> Option<&'r str> {
        request.query("client_id")
    }

    /// Whether token answers name the requested ids (an older Arc agent ignores them).
    fn echoes_ids(&self, _settings: &Settings) -> bool {
        true
    }

    /// A token answer's body, in this endpoint's shape.
    fn token_body(&self, token: &TokenFields<'_>) -> Vec<u8>;
}

/// What the tests configured about the protocols' checks.
pub(super) struct Settings {
    /// The secret the App Service, Azure ML and Service Fabric endpoints expect; any value
    /// while `None`.
    pub(super) identity_secret: Option<Secret>,
    /// Whether IMDS (and Cloud Shell) require `Metadata: true`.
    pub(super) require_metadata: bool,
    /// The key file the Arc challenge names, and its contents.
    pub(super) arc_key: Option<(PathBuf, Secret)>,
    /// Whether the Arc endpoint's token answers name the requested identity.
    pub(super) arc_echo: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            identity_secret: None,
            require_metadata: true,
            arc_key: None,
            arc_echo: true,
        }
    }
}

impl Settings {
    /// A secret header is accepted when it is present and, once a secret is set, equal to it.
    pub(super) fn secret_matches(&self, given: Option<&str>) -> bool {
        match (given, &self.identity_secret) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(given), Some(expected)) => Secret::new(given) == *expected,
        }
    }
}

/// What a token answer is made of, before it takes the asked endpoint's shape.
pub(super) struct TokenFields<'a> {
    pub(super) access_token: &'a str,
    pub(super) resource: &'a str,
    pub(super) client_id: &'a str,
    pub(super) object_id: Option<&'a str>,
    pub(super) msi_res_id: Option<&'a str>,
    /// The mock's clock at the request, in Unix seconds.
    pub(super) now: i64,
    pub(super) expires_in: u64,
    pub(super) refresh_in: Option<u64>,
}

impl TokenFields<'_> {
    /// `now + expires_in`, as the string every protocol sends.
    pub(super) fn expires_on(&self) -> String {
        self.now
            .saturating_add(i64::try_from(self.expires_in).unwrap_or(i64::MAX))
            .to_string()
    }

    /// `refresh_in` as a string, when there is one.
    pub(super) fn refresh_in(&self) -> Option<String> {
        self.refresh_in.map(|s| s.to_string())
    }
}

/// Whether the request carries `Metadata: true`.
pub(super) fn has_metadata(request: &RecordedRequest) -> bool {
    request
        .header("metadata")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The requested resource: the `resource` query parameter, or form field (Cloud Shell), when
/// present and not empty.
pub(super) fn resource(request: &RecordedRequest) -> Option<String> {
    if let Some(resource) = request.query("resource").filter(|r| !r.is_empty()) {
        return Some(resource.to_owned());
    }
    url::form_urlencoded::parse(request.body())
        .find(|(name, _)| name == "resource")
        .map(|(_, value)| value.into_owned())
        .filter(|r| !r.is_empty())
}

/// IMDS's error body: `{"error":"…","error_description":"…"}` (also Cloud Shell's and Arc's).
pub(super) fn imds_error(error: &str, description: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": error, "error_description": description }))
        .expect("serializing strings cannot fail")
}

/// IMDS's 400 to a request without `Metadata: true`.
pub(super) fn missing_metadata() -> Outgoing {
    Outgoing::json(
        400,
        imds_error("invalid_request", "Required metadata header not specified"),
    )
}

/// IMDS's 400 to a request without a resource.
pub(super) fn missing_resource() -> Outgoing {
    Outgoing::json(
        400,
        imds_error(
            "invalid_request",
            "Required audience parameter not specified",
        ),
    )
}

/// IMDS's token body, every value a string (also Cloud Shell's and Arc's). Field order follows
/// the real service's.
pub(super) fn imds_token(token: &TokenFields<'_>) -> Vec<u8> {
    #[derive(Serialize)]
    struct ImdsToken<'a> {
        access_token: &'a str,
        client_id: &'a str,
        expires_in: &'a str,
        expires_on: &'a str,
        ext_expires_in: &'a str,
        not_before: &'a str,
        resource: &'a str,
        token_type: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        refresh_in: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        object_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        msi_res_id: Option<&'a str>,
    }
    let expires_in = token.expires_in.to_string();
    let refresh_in = token.refresh_in();
    serde_json::to_vec(&ImdsToken {
        access_token: token.access_token,
        client_id: token.client_id,
        expires_in: &expires_in,
        expires_on: &token.expires_on(),
        ext_expires_in: &expires_in,
        not_before: &token.now.to_string(),
        resource: token.resource,
        token_type: "Bearer",
        refresh_in: refresh_in.as_deref(),
        object_id: token.object_id,
        msi_res_id: token.msi_res_id,
    })
    .expect("serializing strings cannot fail")
}
