//! Azure Cloud Shell (`MSI_ENDPOINT` alone).

use url::Url;

use crate::system::HttpRequest;

/// `POST $MSI_ENDPOINT` with the form `resource=…` and `Metadata: true`. Cloud Shell has no
/// user-assigned identities.
pub(super) fn token_request(url: &Url, resource: &str) -> HttpRequest {
    HttpRequest::post(url.clone())
        .header("Metadata", "true")
        .form(&[("resource", resource)])
}
