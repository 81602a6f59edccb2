//! Azure Machine Learning compute (`MSI_ENDPOINT` + `MSI_SECRET`).

use super::source::{
    Ask, Detection, Endpoint, ManagedIdentitySource, Source, UserAssignedId, secret_url,
};
use crate::env_vars::{DEFAULT_IDENTITY_CLIENT_ID, MSI_ENDPOINT, MSI_SECRET};
use crate::system::HttpRequest;
use crate::{CacheIdentity, Error, Secret};

const API_VERSION: &str = "2017-09-01";

/// `MSI_ENDPOINT` with `MSI_SECRET`. The endpoint receives the secret: https, or local http.
pub(super) fn detect(detection: &Detection<'_>) -> Result<Option<Endpoint>, Error> {
    let Some([url, secret]) = detection.all([MSI_ENDPOINT, MSI_SECRET]) else {
        return Ok(None);
    };
    let default_client_id = detection.env.var_non_empty(DEFAULT_IDENTITY_CLIENT_ID);
    let source = AzureMl {
        secret: Secret::new(secret),
        default_client_id,
    };
    let url = secret_url(MSI_ENDPOINT, &url)?;
    Endpoint::found(ManagedIdentitySource::AzureMl, url, source)
}

struct AzureMl {
    /// `MSI_SECRET`.
    secret: Secret,
    /// `DEFAULT_IDENTITY_CLIENT_ID`: the identity asked for when none is chosen.
    default_client_id: Option<String>,
}

impl Source for AzureMl {
    fn check_id(&self, id: &UserAssignedId) -> Result<(), &'static str> {
        match id {
            UserAssignedId::ClientId(_) => Ok(()),
            _ => Err("Azure ML selects user-assigned identities by client id only"),
        }
    }

    /// `GET $MSI_ENDPOINT?api-version=2017-09-01&resource=…&clientid=…` with
    /// `secret: $MSI_SECRET`. The parameter is `clientid`, without an underscore, in this API
    /// version; without a user-assigned id it is `DEFAULT_IDENTITY_CLIENT_ID`.
    fn token_request(&self, ask: &Ask<'_>) -> HttpRequest {
        let client_id = match ask.id {
            Some(UserAssignedId::ClientId(client_id)) => Some(client_id.as_str()),
            _ => self.default_client_id.as_deref(),
        };
        let mut url = ask.url(API_VERSION);
        if let Some(client_id) = client_id {
            url.query_pairs_mut().append_pair("clientid", client_id);
        }
        HttpRequest::get(url).secret_header("secret", &self.secret)
    }

    /// The default identity decides whose token this is when none is chosen.
    fn partition(&self, identity: CacheIdentity, id: Option<&UserAssignedId>) -> CacheIdentity {
        let identity = match (&self.default_client_id, id) {
            (Some(default), None) => identity.with("default client id", default.as_str()),
            _ => identity,
        };
        identity.with_secret(self.secret.expose().as_bytes())
    }
}
