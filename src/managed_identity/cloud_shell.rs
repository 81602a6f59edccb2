//! Azure Cloud Shell (`MSI_ENDPOINT` alone).

use super::source::{
    Ask, Detection, Endpoint, ManagedIdentitySource, Source, UserAssignedId, env_url,
};
use crate::Error;
use crate::env_vars::MSI_ENDPOINT;
use crate::system::HttpRequest;

/// `MSI_ENDPOINT` without `MSI_SECRET` (Azure ML, detected before, has both).
pub(super) fn detect(detection: &Detection<'_>) -> Result<Option<Endpoint>, Error> {
    match detection.env.var_non_empty(MSI_ENDPOINT) {
        Some(url) => Endpoint::found(
            ManagedIdentitySource::CloudShell,
            env_url(MSI_ENDPOINT, &url)?,
            CloudShell,
        ),
        None => Ok(None),
    }
}

struct CloudShell;

impl Source for CloudShell {
    /// `POST $MSI_ENDPOINT` with the form `resource=…` and `Metadata: true`.
    fn token_request(&self, ask: &Ask<'_>) -> HttpRequest {
        HttpRequest::post(ask.url.clone())
            .header("Metadata", "true")
            .form(&[("resource", ask.resource)])
    }

    fn check_id(&self, _id: &UserAssignedId) -> Result<(), &'static str> {
        Err("Cloud Shell has no user-assigned identities")
    }
}
