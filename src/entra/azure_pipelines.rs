//! [`AzurePipelinesCredential`]: an Azure Pipelines job's OIDC token for a service connection
//! with workload identity federation, exchanged for an Entra token.

use async_trait::async_trait;
use url::Url;

use super::assertion_source::{
    AssertionSource, OidcAnswerProblem, OidcEndpoint, ci_endpoint, oidc_token, refused_answer,
};
use super::{ClientAssertionCredential, EntraOptions, entra_debug, entra_setters};
use crate::context::seam_setters;
use crate::credential::delegate_token_credential;
use crate::env_vars::SYSTEM_OIDCREQUESTURI;
use crate::scope::quoted;
use crate::scrub;
use crate::setters::{debug_fields, setters};
use crate::system::{HttpRequest, HttpResponse, RetryPolicy, redacted_url};
use crate::{Context, Error, ErrorKind, Secret};

const NAME: &str = "AzurePipelinesCredential";
const API_VERSION: &str = "7.1";
/// What Azure DevOps support asks for, on every answer.
const TRACE_HEADERS: [&str; 2] = ["x-vss-e2eid", "x-msedge-ref"];
const ACCESS_TOKEN_FIX: &str = "pass the job's access token to the credential (map it into the step's environment with `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`) and check that the pipeline is allowed to use the service connection";

/// An Azure Pipelines job authenticating as the app registration (or managed identity) of an
/// Azure Resource Manager service connection that uses workload identity federation.
///
/// Each time a token must be fetched, it asks the job's OIDC endpoint (`SYSTEM_OIDCREQUESTURI`,
/// set by the agent) for a token of the service connection with the job's
/// `System.AccessToken`, and exchanges that as the client assertion. It works only inside an
/// Azure Pipelines job: elsewhere [`build`](AzurePipelinesCredentialBuilder::build) fails with
/// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable).
///
/// ```no_run
/// use azure_credentials::{AzurePipelinesCredential, TokenCredential};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // In the pipeline: `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)` on the step.
/// let credential = AzurePipelinesCredential::new(
///     "contoso.onmicrosoft.com",
///     "00000000-0000-0000-0000-000000000001",
///     "00000000-0000-0000-0000-00000000000c", // the service connection's id
///     std::env::var("SYSTEM_ACCESSTOKEN")?,
/// )?;
/// let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
///
/// A failed OIDC request reports the status and Azure DevOps' `x-vss-e2eid` and `x-msedge-ref`
/// values (quote them to Azure DevOps support), never the access token.
#[derive(Clone)]
pub struct AzurePipelinesCredential {
    credential: ClientAssertionCredential,
    service_connection_id: String,
}

impl AzurePipelinesCredential {
    /// A credential for the service connection `service_connection_id`, whose app registration
    /// is `client_id` in `tenant_id`, with the job's `System.AccessToken`.
    ///
    /// # Errors
    ///
    /// As [`AzurePipelinesCredentialBuilder::build`]: [`ErrorKind::InvalidInput`] for a
    /// missing or invalid value, [`ErrorKind::Unavailable`] outside Azure Pipelines.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{AzurePipelinesCredential, ErrorKind};
    /// # let in_a_pipeline = std::env::var_os("SYSTEM_OIDCREQUESTURI").is_some();
    ///
    /// let credential = AzurePipelinesCredential::new(
    ///     "contoso.onmicrosoft.com",
    ///     "00000000-0000-0000-0000-000000000001",
    ///     "00000000-0000-0000-0000-00000000000c",
    ///     std::env::var("SYSTEM_ACCESSTOKEN").unwrap_or_default(),
    /// );
    /// # if !in_a_pipeline {
    /// // Outside a pipeline job (or without the access token) it does not build.
    /// assert!(credential.is_err());
    /// # }
    /// ```
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        service_connection_id: impl Into<String>,
        system_access_token: impl Into<Secret>,
    ) -> Result<Self, Error> {
        AzurePipelinesCredential::builder()
            .tenant_id(tenant_id)
            .client_id(client_id)
            .service_connection_id(service_connection_id)
            .system_access_token(system_access_token)
            .build()
    }

    /// Options for an Azure Pipelines credential, validated by
    /// [`build`](AzurePipelinesCredentialBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::AzurePipelinesCredential;
    /// use azure_credentials::system::Env;
    ///
    /// let credential = AzurePipelinesCredential::builder()
    ///     .tenant_id("contoso.onmicrosoft.com")
    ///     .client_id("00000000-0000-0000-0000-000000000001")
    ///     .service_connection_id("00000000-0000-0000-0000-00000000000c")
    ///     .system_access_token("the job's System.AccessToken")
    ///     // What the agent sets in a job (here given, to build outside one).
    ///     .env(Env::from_pairs([(
    ///         "SYSTEM_OIDCREQUESTURI",
    ///         "https://dev.azure.com/contoso/0000/_apis/distributedtask/hubs/build/plans/1/jobs/2/oidctoken",
    ///     )]))
    ///     .build()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn builder() -> AzurePipelinesCredentialBuilder {
        AzurePipelinesCredentialBuilder::default()
    }

    /// The service connection's id.
    pub fn service_connection_id(&self) -> &str {
        &self.service_connection_id
    }
}

delegate_token_credential!(AzurePipelinesCredential => credential);

entra_debug!(AzurePipelinesCredential(credential) { service_connection_id });

/// Options of an [`AzurePipelinesCredential`]; see [`AzurePipelinesCredential::builder`].
#[derive(Clone, Default)]
pub struct AzurePipelinesCredentialBuilder {
    context: Context,
    options: EntraOptions,
    service_connection_id: Option<String>,
    system_access_token: Option<Secret>,
}

impl AzurePipelinesCredentialBuilder {
    entra_setters!(
        tenant_id = "Required: the service connection's tenant.",
        client_id = "Required: the service connection's app registration or managed identity.",
        authority_host,
        additionally_allowed_tenants,
        retry_policy = "It applies to the OIDC request too.",
        persistence,
    );

    setters! {
        /// The service connection's id: the `resourceId` in the address of its page in Azure
        /// DevOps (Project settings → Service connections). Required.
        service_connection_id(id: impl Into<String>) => Some(service_connection_id);
        /// The job's `System.AccessToken` (`$(System.AccessToken)`, which a step must map into
        /// its environment, e.g. as `SYSTEM_ACCESSTOKEN`). Required.
        system_access_token(token: impl Into<Secret>) => Some(system_access_token);
    }

    seam_setters!(
        env = "`SYSTEM_OIDCREQUESTURI` and the `AZURE_*` options are read there.",
        http = "It sends the OIDC request and the token request.",
        cache,
    );

    /// Validates the options and builds the credential. Nothing is sent before the first token
    /// is asked for.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when the tenant id, client id, service connection id or
    /// access token is missing or invalid, or `SYSTEM_OIDCREQUESTURI` is not an https URL;
    /// [`ErrorKind::Unavailable`] when `SYSTEM_OIDCREQUESTURI` is not set (not an Azure
    /// Pipelines job).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{AzurePipelinesCredential, ErrorKind};
    /// use azure_credentials::system::Env;
    ///
    /// let error = AzurePipelinesCredential::builder()
    ///     .tenant_id("contoso.onmicrosoft.com")
    ///     .client_id("00000000-0000-0000-0000-000000000001")
    ///     .service_connection_id("00000000-0000-0000-0000-00000000000c")
    ///     .system_access_token("the job's System.AccessToken")
    ///     .env(Env::empty())
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::Unavailable);
    /// assert!(error.to_string().contains("Azure Pipelines"));
    /// ```
    pub fn build(self) -> Result<AzurePipelinesCredential, Error> {
        let service_connection_id = self
            .service_connection_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                Error::invalid_input(NAME, "no service_connection_id was given").with_fix(
                    "set the builder's service_connection_id: the resourceId in the address of the service connection's page in Azure DevOps",
                )
            })?
            .to_owned();
        if !service_connection_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Error::invalid_input(
                NAME,
                format!(
                    "invalid service connection id {}",
                    quoted(&service_connection_id)
                ),
            )
            .with_fix("the service connection id is a GUID: the resourceId in the address of the service connection's page in Azure DevOps"));
        }
        let access_token = self
            .system_access_token
            .filter(|t| !t.expose().trim().is_empty())
            .ok_or_else(|| {
                Error::invalid_input(NAME, "no system_access_token was given (or it is empty)")
                    .with_fix(ACCESS_TOKEN_FIX)
            })?;
        let retry = self
            .options
            .retry
            .clone()
            .unwrap_or_else(RetryPolicy::entra);
        let client = self.options.client(NAME, &self.context)?;
        let Some(raw) = self.context.env().var_non_empty(SYSTEM_OIDCREQUESTURI) else {
            return Err(Error::unavailable(
                NAME,
                format!("{SYSTEM_OIDCREQUESTURI} is not set: this credential runs only in Azure Pipelines jobs"),
            )
            .with_fix(format!(
                "run it in an Azure Pipelines job (the agent sets {SYSTEM_OIDCREQUESTURI}); elsewhere use another credential, e.g. DefaultAzureCredential"
            )));
        };
        let endpoint = oidc_endpoint(&raw, &service_connection_id)?;
        let authorization =
            Secret::new(format!("Bearer {}", access_token.expose().trim()).as_str());
        let identity = ClientAssertionCredential::identity(&client)
            .with("service_connection_id", service_connection_id.clone())
            .with("oidc_endpoint", redacted_url(&endpoint))
            .with_secret(access_token.expose().as_bytes());
        let source = PipelinesOidc {
            endpoint: OidcEndpoint {
                http: self.context.http(),
                url: endpoint,
                authorization,
                retry,
            },
            service_connection_id: service_connection_id.clone(),
        };
        Ok(AzurePipelinesCredential {
            credential: ClientAssertionCredential::from_source(
                client,
                identity,
                source,
                &self.context.cache(),
                self.options.persistent_caches(NAME, &self.context)?,
            ),
            service_connection_id,
        })
    }
}

debug_fields!(AzurePipelinesCredentialBuilder {
    options,
    service_connection_id,
    system_access_token,
    ..
});

/// `{SYSTEM_OIDCREQUESTURI}?api-version=7.1&serviceConnectionId={id}`: https, or http to a
/// loopback host (tests), since the access token goes with it.
fn oidc_endpoint(raw: &str, service_connection_id: &str) -> Result<Url, Error> {
    let mut url = ci_endpoint(
        NAME,
        SYSTEM_OIDCREQUESTURI,
        raw,
        "the Azure Pipelines agent",
    )?;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    url.query_pairs_mut()
        .append_pair("api-version", API_VERSION)
        .append_pair("serviceConnectionId", service_connection_id);
    Ok(url)
}

/// The job's OIDC endpoint as the source of assertions: one request per token fetch.
struct PipelinesOidc {
    /// Authorized by `Bearer {System.AccessToken}`.
    endpoint: OidcEndpoint,
    service_connection_id: String,
}

debug_fields!(PipelinesOidc {
    endpoint,
    service_connection_id,
});

#[async_trait]
impl AssertionSource for PipelinesOidc {
    async fn assertion(&self) -> Result<Secret, Error> {
        let request = HttpRequest::post(self.endpoint.url.clone())
            .header("Content-Type", "application/json")
            .header("X-TFS-FedAuthRedirect", "Suppress");
        tracing::debug!(
            credential = NAME,
            endpoint = %redacted_url(&self.endpoint.url),
            service_connection_id = %self.service_connection_id,
            "requesting an OIDC token from Azure DevOps"
        );
        let response = self.endpoint.send(NAME, request, "agent").await?;
        let trace = trace_ids(&response);
        let status = response.status();
        if !(200..300).contains(&status) {
            return Err(self.refused(&response, &trace));
        }
        match oidc_token(&response, "oidcToken") {
            Ok(token) => {
                tracing::debug!(credential = NAME, "Azure DevOps issued an OIDC token");
                Ok(token)
            }
            Err(OidcAnswerProblem::NotJson { html }) => Err(Error::authentication(
                NAME,
                format!(
                    "Azure DevOps answered the OIDC token request with status {status} and {}, not JSON{trace}: the system access token is likely missing, expired or without rights to this service connection",
                    if html { "an HTML page (a sign-in page?)" } else { "a body" }
                ),
            )
            .with_status(status)
            .with_fix(ACCESS_TOKEN_FIX)),
            Err(OidcAnswerProblem::NoToken) => Err(Error::new(
                ErrorKind::ServiceFailure,
                NAME,
                format!("Azure DevOps' answer to the OIDC token request has no oidcToken{trace}"),
            )
            .with_status(status)
            .with_fix("try again; if it persists, quote the x-vss-e2eid and x-msedge-ref values to Azure DevOps support")),
        }
    }
}

impl PipelinesOidc {
    /// The error of a non-2xx answer: status, Azure DevOps' message, its trace ids.
    fn refused(&self, response: &HttpResponse, trace: &str) -> Error {
        let status = response.status();
        let fix = match status {
            401 | 403 => ACCESS_TOKEN_FIX.to_owned(),
            400 | 404 => format!(
                "check the service connection id {} (the resourceId in the address of the service connection's page) and that it uses workload identity federation",
                quoted(&self.service_connection_id)
            ),
            _ => "try again; if it persists, quote the x-vss-e2eid and x-msedge-ref values to Azure DevOps support".to_owned(),
        };
        let error = refused_answer(
            NAME,
            response,
            format!("the OIDC token request to Azure DevOps failed with status {status}{trace}"),
            fix,
        );
        match response.header(TRACE_HEADERS[0]) {
            Some(e2eid) => error.with_correlation_id(scrub::line(e2eid)),
            None => error,
        }
    }
}

/// ` (x-vss-e2eid: …, x-msedge-ref: …)` with the headers the answer has, or nothing.
fn trace_ids(response: &HttpResponse) -> String {
    let found: Vec<String> = TRACE_HEADERS
        .iter()
        .filter_map(|name| {
            let value = scrub::line(response.header(name)?);
            (!value.is_empty()).then(|| format!("{name}: {value}"))
        })
        .collect();
    if found.is_empty() {
        String::new()
    } else {
        format!(" ({})", found.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_gets_the_api_version_and_the_service_connection() {
        let url = oidc_endpoint(
            "https://dev.azure.com/contoso/p/_apis/distributedtask/hubs/build/plans/1/jobs/2/oidctoken/",
            "abc-123",
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://dev.azure.com/contoso/p/_apis/distributedtask/hubs/build/plans/1/jobs/2/oidctoken?api-version=7.1&serviceConnectionId=abc-123"
        );
        for bad in [
            "not a url",
            "http://dev.azure.com/x",
            "ftp://dev.azure.com/x",
            "https://user:pw@dev.azure.com/x",
        ] {
            let error = oidc_endpoint(bad, "abc").unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidInput, "{bad}");
            assert!(error.to_string().contains(SYSTEM_OIDCREQUESTURI), "{error}");
        }
        assert!(oidc_endpoint("http://127.0.0.1:8080/oidctoken", "abc").is_ok());
    }
}
