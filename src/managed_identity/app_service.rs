//! App Service, Azure Functions, Container Apps and Automation (`IDENTITY_ENDPOINT` +
//! `IDENTITY_HEADER`).

use url::Url;

use super::{UserAssignedId, append_id};
use crate::Secret;
use crate::system::HttpRequest;

const API_VERSION: &str = "2019-08-01";

/// `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=…[&client_id|object_id|mi_res_id=…]`
/// with `X-IDENTITY-HEADER: $IDENTITY_HEADER` (and `Metadata: true`, which Automation needs).
/// The resource id parameter is `mi_res_id` here, not IMDS's `msi_res_id`.
pub(super) fn token_request(
    url: &Url,
    secret: &Secret,
    resource: &str,
    id: Option<&UserAssignedId>,
) -> HttpRequest {
    let mut url = url.clone();
    url.query_pairs_mut()
        .append_pair("api-version", API_VERSION)
        .append_pair("resource", resource);
    append_id(&mut url, id, "mi_res_id");
    HttpRequest::get(url)
        .secret_header("X-IDENTITY-HEADER", secret)
        .header("Metadata", "true")
}
