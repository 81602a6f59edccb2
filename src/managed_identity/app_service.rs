//! App Service, Azure Functions, Container Apps and Automation (`IDENTITY_ENDPOINT` +
//! `IDENTITY_HEADER`).

use super::source::{
    Ask, Detection, Endpoint, ManagedIdentitySource, Source, UserAssignedId, secret_url,
};
use crate::env_vars::{IDENTITY_ENDPOINT, IDENTITY_HEADER};
use crate::system::HttpRequest;
use crate::{CacheIdentity, Error, Secret};

const API_VERSION: &str = "2019-08-01";

/// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` (Service Fabric, detected before, adds
/// `IDENTITY_SERVER_THUMBPRINT`). The endpoint receives the header: https, or local http.
pub(super) fn detect(detection: &Detection<'_>) -> Result<Option<Endpoint>, Error> {
    let Some([url, header]) = detection.all([IDENTITY_ENDPOINT, IDENTITY_HEADER]) else {
        return Ok(None);
    };
    let secret = Secret::new(header);
    Endpoint::found(
        ManagedIdentitySource::AppService,
        secret_url(IDENTITY_ENDPOINT, &url)?,
        AppService { secret },
    )
}

struct AppService {
    /// `IDENTITY_HEADER`.
    secret: Secret,
}

impl Source for AppService {
    /// `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=…[&client_id|object_id|mi_res_id=…]`
    /// with `X-IDENTITY-HEADER: $IDENTITY_HEADER` (and `Metadata: true`, which Automation
    /// needs). The resource id parameter is `mi_res_id` here, not IMDS's `msi_res_id`.
    fn token_request(&self, ask: &Ask<'_>) -> HttpRequest {
        HttpRequest::get(ask.url_with_id(API_VERSION, "mi_res_id"))
            .secret_header("X-IDENTITY-HEADER", &self.secret)
            .header("Metadata", "true")
    }

    fn partition(&self, identity: CacheIdentity, _id: Option<&UserAssignedId>) -> CacheIdentity {
        identity.with_secret(self.secret.expose().as_bytes())
    }
}
