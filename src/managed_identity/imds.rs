//! The Instance Metadata Service (VMs, scale sets, AKS nodes, container instances): the source
//! when the environment names no other. Its address is a guess, so what answers there may not
//! be IMDS at all: it alone can be probed, and its foreign answers mean "no IMDS here".

use crate::env_vars::{
    AZURE_CREDENTIALS_IMDS_PROBE_TIMEOUT_MS, AZURE_POD_IDENTITY_AUTHORITY_HOST, IDENTITY_ENDPOINT,
};
use std::time::Duration;

use async_trait::async_trait;
use url::Url;

use super::response::{self, Shape};
use super::source::{Ask, Detection, Endpoint, ManagedIdentitySource, NAME, Source, env_url};
use crate::Error;
use crate::system::{Http, HttpErrorKind, HttpRequest, HttpResponse, RetryPolicy};

/// The environment variable that sets the probe's timeout, in milliseconds.
pub(super) const PROBE_TIMEOUT_ENV: &str = AZURE_CREDENTIALS_IMDS_PROBE_TIMEOUT_MS;
const API_VERSION: &str = "2018-02-01";
const HOST: &str = "http://169.254.169.254";
const PATH: &str = "/metadata/identity/oauth2/token";
const NOT_ON_AZURE_FIX: &str = "not running on Azure? Use a developer credential (az login)";

/// The builder's endpoint, else `AZURE_POD_IDENTITY_AUTHORITY_HOST`'s, else IMDS's own address.
pub(super) fn detect(detection: &Detection<'_>) -> Result<Endpoint, Error> {
    let env = detection.env;
    if env.var_non_empty(IDENTITY_ENDPOINT).is_some() {
        tracing::debug!(
            credential = NAME,
            "IDENTITY_ENDPOINT is set without IDENTITY_HEADER or IMDS_ENDPOINT; using IMDS"
        );
    }
    let (url, probe_allowed) = if let Some(url) = detection.imds_endpoint {
        (url.clone(), true)
    } else if let Some(host) = env.var_non_empty(AZURE_POD_IDENTITY_AUTHORITY_HOST) {
        let base = host.trim_end_matches('/');
        let url = env_url(AZURE_POD_IDENTITY_AUTHORITY_HOST, &format!("{base}{PATH}"))?;
        (url, false)
    } else {
        let url = Url::parse(&format!("{HOST}{PATH}")).expect("a constant URL");
        (url, true)
    };
    Ok(Endpoint {
        kind: ManagedIdentitySource::Imds,
        url,
        source: Box::new(Imds { probe_allowed }),
    })
}

struct Imds {
    /// False when the environment named the endpoint (`AZURE_POD_IDENTITY_AUTHORITY_HOST`).
    probe_allowed: bool,
}

impl Imds {
    /// `GET {endpoint}?api-version=2018-02-01&resource=…[&client_id|object_id|msi_res_id=…]`
    /// without the `Metadata` header, which IMDS answers at once with a 400: the cheapest way
    /// to learn whether IMDS is there. The token request adds the header.
    fn probe_request(ask: &Ask<'_>) -> HttpRequest {
        HttpRequest::get(ask.url_with_id(API_VERSION, "msi_res_id"))
    }

    /// What answered for IMDS's address with `what` is not IMDS: there is no IMDS here.
    fn not_imds(status: u16, what: &str) -> Error {
        Error::unavailable(
            NAME,
            format!("the IMDS endpoint answered {status} with {what}, not JSON: something other than IMDS answered (a proxy?)"),
        )
        .with_status(status)
        .with_fix("something on this network (a transparent proxy, a firewall, a captive portal) answers for 169.254.169.254; off Azure, use a developer credential (az login, or AZURE_TOKEN_CREDENTIALS=dev)")
    }
}

#[async_trait]
impl Source for Imds {
    /// The probe's request with `Metadata: true`.
    fn token_request(&self, ask: &Ask<'_>) -> HttpRequest {
        Imds::probe_request(ask).header("Metadata", "true")
    }

    fn probe_allowed(&self) -> bool {
        self.probe_allowed
    }

    /// One quick request without the `Metadata` header: any HTTP answer means IMDS is there.
    async fn probe(&self, http: &Http, ask: &Ask<'_>, timeout: Duration) -> Result<(), Error> {
        let request = Imds::probe_request(ask).timeout(timeout);
        let policy = RetryPolicy::none().with_budget(timeout);
        match http.send(&request, &policy).await {
            Ok(response) if is_unreachable_network(&response) => Err(unreachable_network()),
            // What answers for IMDS's address with a page or a redirect is not IMDS: say so now
            // rather than after the token request's retries (a proxy's 502 page cost 15 s).
            Ok(response) => match foreign_answer(&response) {
                Some(what) => {
                    tracing::debug!(
                        credential = NAME,
                        status = response.status(),
                        "IMDS probe answered with {what}: not IMDS"
                    );
                    Err(Imds::not_imds(response.status(), what))
                }
                None => {
                    tracing::debug!(credential = NAME, status = response.status(), elapsed = ?response.elapsed(), "IMDS probe answered: IMDS is present");
                    Ok(())
                }
            },
            Err(error) => {
                let what = match error.kind() {
                    HttpErrorKind::Timeout => {
                        format!("IMDS did not answer the probe within {timeout:?}")
                    }
                    HttpErrorKind::ConnectionRefused => "IMDS refused the connection".to_owned(),
                    HttpErrorKind::Unreachable => {
                        "IMDS is not reachable from this network".to_owned()
                    }
                    _ => format!("the IMDS probe failed: {error}"),
                };
                tracing::debug!(credential = NAME, kind = %error.kind(), elapsed = ?error.elapsed(), "IMDS probe failed: no managed identity here");
                let fix = if error.kind() == HttpErrorKind::Timeout {
                    format!("{NOT_ON_AZURE_FIX}. On a slow Azure host, raise {PROBE_TIMEOUT_ENV}")
                } else {
                    NOT_ON_AZURE_FIX.to_owned()
                };
                Err(Error::unavailable(NAME, what).with_fix(fix))
            }
        }
    }

    /// Docker Desktop's 403, and what IMDS never sends (a redirect, an HTML page, plain text
    /// with an error status): whatever answered for the guessed address is not IMDS.
    fn foreign_failure(&self, response: &HttpResponse) -> Option<Error> {
        if is_unreachable_network(response) {
            return Some(unreachable_network());
        }
        foreign_answer(response).map(|what| Imds::not_imds(response.status(), what))
    }

    fn not_the_endpoint(&self, status: u16, what: &str) -> Option<Error> {
        Some(Imds::not_imds(status, what))
    }

    fn any_400_means_no_identity(&self) -> bool {
        true
    }

    fn unreachable_fix(&self) -> Option<&'static str> {
        Some("this host does not look like an Azure VM; use a developer credential (az login) here")
    }
}

/// What an answer that is not a token is, when it cannot have come from IMDS (which always
/// answers in JSON and never redirects): a redirect, an HTML page, or plain text with an error
/// status. `None` for anything IMDS might have sent.
fn foreign_answer(response: &HttpResponse) -> Option<&'static str> {
    if (300..400).contains(&response.status()) {
        return Some("a redirect");
    }
    match response::shape(response.body()) {
        Shape::Markup => Some("an HTML page"),
        Shape::Text if !(200..300).contains(&response.status()) => Some("plain text"),
        _ => None,
    }
}

/// Docker Desktop answers for 169.254.169.254 with a 403 saying the network is unreachable.
fn is_unreachable_network(response: &HttpResponse) -> bool {
    response.status() == 403
        && String::from_utf8_lossy(response.body())
            .to_ascii_lowercase()
            .contains("unreachable")
}

fn unreachable_network() -> Error {
    Error::unavailable(
        NAME,
        "IMDS is unreachable from this network (a container without access to the host's metadata service?)",
    )
    .with_status(403)
    .with_fix(NOT_ON_AZURE_FIX)
}
