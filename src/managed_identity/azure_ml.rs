//! Azure Machine Learning compute (`MSI_ENDPOINT` + `MSI_SECRET`).

use url::Url;

use crate::Secret;
use crate::system::HttpRequest;

const API_VERSION: &str = "2017-09-01";

/// `GET $MSI_ENDPOINT?api-version=2017-09-01&resource=…&clientid=…` with `secret: $MSI_SECRET`.
/// The parameter is `clientid`, without an underscore, in this API version; without a
/// user-assigned id it is `DEFAULT_IDENTITY_CLIENT_ID`.
pub(super) fn token_request(
    url: &Url,
    secret: &Secret,
    resource: &str,
    client_id: Option<&str>,
) -> HttpRequest {
    let mut url = url.clone();
    url.query_pairs_mut()
        .append_pair("api-version", API_VERSION)
        .append_pair("resource", resource);
    if let Some(client_id) = client_id {
        url.query_pairs_mut().append_pair("clientid", client_id);
    }
    HttpRequest::get(url).secret_header("secret", secret)
}
