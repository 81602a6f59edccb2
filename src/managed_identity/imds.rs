//! The Instance Metadata Service (VMs, scale sets, AKS nodes, container instances).

use url::Url;

use super::{UserAssignedId, append_id};
use crate::system::HttpRequest;

const API_VERSION: &str = "2018-02-01";

/// `GET {endpoint}?api-version=2018-02-01&resource=…[&client_id|object_id|msi_res_id=…]` with
/// `Metadata: true`.
pub(super) fn token_request(url: &Url, resource: &str, id: Option<&UserAssignedId>) -> HttpRequest {
    probe_request(url, resource, id).header("Metadata", "true")
}

/// The same request without the `Metadata` header, which IMDS answers at once with a 400: the
/// cheapest way to learn whether IMDS is there.
pub(super) fn probe_request(url: &Url, resource: &str, id: Option<&UserAssignedId>) -> HttpRequest {
    let mut url = url.clone();
    url.query_pairs_mut()
        .append_pair("api-version", API_VERSION)
        .append_pair("resource", resource);
    append_id(&mut url, id, "msi_res_id");
    HttpRequest::get(url)
}
