//! [`GitHubActionsCredential`]: a GitHub Actions job's OIDC ID token exchanged for an Entra
//! token, as the `azure/login` action does (no Azure SDK has this credential).

use async_trait::async_trait;
use url::Url;

use super::assertion_source::{
    AssertionSource, OidcAnswerProblem, OidcEndpoint, ci_endpoint, oidc_token, refused_answer,
};
use super::{ClientAssertionCredential, EntraOptions, entra_debug, entra_setters};
use crate::context::seam_setters;
use crate::credential::delegate_token_credential;
use crate::env_vars::{ACTIONS_ID_TOKEN_REQUEST_TOKEN, ACTIONS_ID_TOKEN_REQUEST_URL};
use crate::scope::quoted;
use crate::setters::setters;
use crate::system::{HttpRequest, HttpResponse, RetryPolicy, redacted_url};
use crate::{Context, Error, ErrorKind, Secret};

const NAME: &str = "GitHubActionsCredential";
/// The audience Entra expects of federated tokens in the public cloud.
const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";
const PERMISSION_FIX: &str = "give the job `permissions: id-token: write` in the workflow file (GitHub then sets ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN for its steps)";

/// A GitHub Actions job authenticating as an app registration (or user-assigned managed
/// identity) with a federated identity credential that trusts the repository's workflows
/// (issuer `https://token.actions.githubusercontent.com`).
///
/// Each time a token must be fetched, it asks GitHub for a new ID token
/// (`ACTIONS_ID_TOKEN_REQUEST_URL` with `audience=api://AzureADTokenExchange`, authorized by
/// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`) and exchanges it as the client assertion. GitHub's tokens
/// live a few minutes, so one is never kept: every exchange gets its own. The job needs
/// `permissions: id-token: write`; without it [`build`](GitHubActionsCredentialBuilder::build)
/// fails with [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable).
///
/// The client and tenant come from `AZURE_CLIENT_ID` and `AZURE_TENANT_ID` (set them in the
/// workflow, e.g. from repository variables) unless the builder gives them.
///
/// ```no_run
/// use azure_credentials::{GitHubActionsCredential, TokenCredential};
///
/// # async fn run() -> Result<(), azure_credentials::Error> {
/// let credential = GitHubActionsCredential::new()?;
/// let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct GitHubActionsCredential {
    credential: ClientAssertionCredential,
    audience: String,
}

impl GitHubActionsCredential {
    /// A credential configured from the process environment: GitHub's `ACTIONS_ID_TOKEN_*`
    /// variables and `AZURE_CLIENT_ID` / `AZURE_TENANT_ID`.
    ///
    /// # Errors
    ///
    /// As [`GitHubActionsCredentialBuilder::build`]: [`ErrorKind::Unavailable`] outside a
    /// GitHub Actions job with `id-token: write`, [`ErrorKind::InvalidInput`] when the client
    /// or tenant id is missing or a value is invalid.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use azure_credentials::GitHubActionsCredential;
    ///
    /// let credential = GitHubActionsCredential::new()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn new() -> Result<Self, Error> {
        GitHubActionsCredential::builder().build()
    }

    /// Options for a GitHub Actions credential, validated by
    /// [`build`](GitHubActionsCredentialBuilder::build); unset values come from the
    /// environment.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use azure_credentials::{GitHubActionsCredential, authority_hosts};
    ///
    /// // Azure Government: its authority host and its audience for federated tokens.
    /// let credential = GitHubActionsCredential::builder()
    ///     .tenant_id("contoso.onmicrosoft.us")
    ///     .client_id("00000000-0000-0000-0000-000000000001")
    ///     .authority_host(authority_hosts::AZURE_GOVERNMENT)
    ///     .audience("api://AzureADTokenExchangeUSGov")
    ///     .build()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn builder() -> GitHubActionsCredentialBuilder {
        GitHubActionsCredentialBuilder::default()
    }

    /// The audience the ID tokens are requested for.
    pub fn audience(&self) -> &str {
        &self.audience
    }
}

delegate_token_credential!(GitHubActionsCredential => credential);

entra_debug!(GitHubActionsCredential(credential) { audience });

/// Options of a [`GitHubActionsCredential`]; see [`GitHubActionsCredential::builder`].
/// Unset values come from the environment.
#[derive(Debug, Clone, Default)]
pub struct GitHubActionsCredentialBuilder {
    context: Context,
    options: EntraOptions,
    audience: Option<String>,
}

impl GitHubActionsCredentialBuilder {
    entra_setters!(
        tenant_id = "Default: `AZURE_TENANT_ID`.",
        client_id = "The app registration or user-assigned managed identity whose federated \
                     identity credential trusts the workflow. Default: `AZURE_CLIENT_ID`.",
        authority_host,
        additionally_allowed_tenants,
        retry_policy = "It applies to the ID token request too.",
        persistence,
    );

    setters! {
        /// The audience of the ID tokens: the one the federated identity credential expects.
        /// Default: `api://AzureADTokenExchange` (the public cloud); Azure Government uses
        /// `api://AzureADTokenExchangeUSGov` and Azure China `api://AzureADTokenExchangeChina`.
        audience(audience: impl Into<String>) => Some(audience);
    }

    seam_setters!(
        env = "GitHub's `ACTIONS_ID_TOKEN_*` variables and the `AZURE_*` options are read there.",
        http = "It sends the ID token request and the token request.",
        cache,
    );

    /// Validates the configuration and builds the credential. Nothing is sent before the
    /// first token is asked for.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] when `ACTIONS_ID_TOKEN_REQUEST_URL` or
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN` is not set (not a GitHub Actions job, or one without
    /// `permissions: id-token: write`); [`ErrorKind::InvalidInput`] when the client id or
    /// tenant id is missing, or a value (the audience, the request URL) is invalid.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{ErrorKind, GitHubActionsCredential};
    /// use azure_credentials::system::Env;
    ///
    /// let error = GitHubActionsCredential::builder().env(Env::empty()).build().unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::Unavailable);
    /// assert!(error.to_string().contains("id-token: write"));
    /// ```
    pub fn build(self) -> Result<GitHubActionsCredential, Error> {
        let env = self.context.env();
        let (url, token) = match (
            env.var_non_empty(ACTIONS_ID_TOKEN_REQUEST_URL),
            env.var_non_empty(ACTIONS_ID_TOKEN_REQUEST_TOKEN),
        ) {
            (Some(url), Some(token)) => (url, token),
            (url, _) => {
                let missing = match url {
                    None => format!(
                        "{ACTIONS_ID_TOKEN_REQUEST_URL} and {ACTIONS_ID_TOKEN_REQUEST_TOKEN} are"
                    ),
                    Some(_) => format!("{ACTIONS_ID_TOKEN_REQUEST_TOKEN} is"),
                };
                return Err(Error::unavailable(
                    NAME,
                    format!(
                        "{missing} not set: not a GitHub Actions job allowed to request ID tokens"
                    ),
                )
                .with_fix(PERMISSION_FIX));
            }
        };
        let mut options = self.options;
        if let Some((missing, verb)) = options.ids_or_env(&env) {
            return Err(Error::invalid_input(
                NAME,
                format!("the job can request ID tokens but {missing} {verb} not set"),
            )
            .with_fix(format!(
                "set {missing} in the workflow's env (e.g. from repository variables: ${{{{ vars.AZURE_CLIENT_ID }}}}), or the builder's tenant_id and client_id"
            )));
        }
        let audience = self
            .audience
            .as_deref()
            .map(str::trim)
            .unwrap_or(DEFAULT_AUDIENCE)
            .to_owned();
        if audience.is_empty() || !audience.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid_input(
                NAME,
                format!("invalid audience {}", quoted(&audience)),
            )
            .with_fix(format!(
                "use the audience of the federated identity credential, {DEFAULT_AUDIENCE} in the public cloud"
            )));
        }
        let retry = options.retry.clone().unwrap_or_else(RetryPolicy::entra);
        let client = options.client(NAME, &self.context)?;
        let endpoint = id_token_endpoint(&url, &audience)?;
        let authorization = Secret::new(format!("bearer {}", token.trim()).as_str());
        let identity = ClientAssertionCredential::identity(&client)
            .with("audience", audience.clone())
            .with("id_token_endpoint", redacted_url(&endpoint))
            .with_secret(endpoint.as_str().as_bytes())
            .with_secret(token.as_bytes());
        let source = GitHubIdToken(OidcEndpoint {
            http: self.context.http(),
            url: endpoint,
            authorization,
            retry,
        });
        Ok(GitHubActionsCredential {
            credential: ClientAssertionCredential::from_source(
                client,
                identity,
                source,
                &self.context.cache(),
                options.persistent_caches(NAME, &self.context)?,
            ),
            audience,
        })
    }
}

/// `ACTIONS_ID_TOKEN_REQUEST_URL` with `audience` set (URL-encoded, replacing any), whether
/// or not the URL has a query: https, or http to a loopback host (tests).
fn id_token_endpoint(raw: &str, audience: &str) -> Result<Url, Error> {
    let mut url = ci_endpoint(
        NAME,
        ACTIONS_ID_TOKEN_REQUEST_URL,
        raw,
        "the GitHub Actions runner",
    )?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| name != "audience")
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    url.query_pairs_mut()
        .extend_pairs(kept)
        .append_pair("audience", audience);
    Ok(url)
}

/// GitHub's ID token endpoint as the source of assertions: a new token per exchange.
/// Authorized by `bearer {ACTIONS_ID_TOKEN_REQUEST_TOKEN}`.
#[derive(Debug)]
struct GitHubIdToken(OidcEndpoint);

#[async_trait]
impl AssertionSource for GitHubIdToken {
    async fn assertion(&self) -> Result<Secret, Error> {
        let endpoint = &self.0;
        tracing::debug!(
            credential = NAME,
            endpoint = %redacted_url(&endpoint.url),
            "requesting an ID token from GitHub Actions"
        );
        let request = HttpRequest::get(endpoint.url.clone());
        let response = endpoint.send(NAME, request, "runner").await?;
        let status = response.status();
        if status != 200 {
            return Err(refused(&response));
        }
        match oidc_token(&response, "value") {
            Ok(token) => {
                tracing::debug!(credential = NAME, "GitHub Actions issued an ID token");
                Ok(token)
            }
            Err(problem) => {
                let what = match problem {
                    OidcAnswerProblem::NotJson { html: true } => "is an HTML page, not JSON",
                    OidcAnswerProblem::NotJson { html: false } => "is not JSON",
                    OidcAnswerProblem::NoToken => "has no value (the ID token)",
                };
                Err(Error::new(
                    ErrorKind::ServiceFailure,
                    NAME,
                    format!("GitHub's answer to the ID token request {what}"),
                )
                .with_status(status)
                .with_fix(
                    "try again; a proxy between the runner and GitHub may have answered instead",
                ))
            }
        }
    }
}

/// The error of a non-200 answer: status and GitHub's message.
fn refused(response: &HttpResponse) -> Error {
    let status = response.status();
    let fix = match status {
        401 | 403 => format!(
            "{PERMISSION_FIX}; the request token is valid only while the job runs, in the job's own steps"
        ),
        _ => "try again later (GitHub's status page: https://www.githubstatus.com)".to_owned(),
    };
    refused_answer(
        NAME,
        response,
        format!("the ID token request to GitHub Actions failed with status {status}"),
        fix,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audience_is_added_encoded_with_or_without_a_query() {
        for (raw, expected) in [
            (
                "https://pipelines.actions.githubusercontent.com/abc/idtoken?api-version=2.0",
                "https://pipelines.actions.githubusercontent.com/abc/idtoken?api-version=2.0&audience=api%3A%2F%2FAzureADTokenExchange",
            ),
            (
                "https://pipelines.actions.githubusercontent.com/abc/idtoken",
                "https://pipelines.actions.githubusercontent.com/abc/idtoken?audience=api%3A%2F%2FAzureADTokenExchange",
            ),
            (
                "https://pipelines.actions.githubusercontent.com/abc/idtoken?audience=old&api-version=2.0",
                "https://pipelines.actions.githubusercontent.com/abc/idtoken?api-version=2.0&audience=api%3A%2F%2FAzureADTokenExchange",
            ),
        ] {
            assert_eq!(
                id_token_endpoint(raw, DEFAULT_AUDIENCE).unwrap().as_str(),
                expected
            );
        }
        for bad in ["nope", "http://pipelines.actions.githubusercontent.com/x"] {
            let error = id_token_endpoint(bad, DEFAULT_AUDIENCE).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidInput);
            assert!(
                error.to_string().contains(ACTIONS_ID_TOKEN_REQUEST_URL),
                "{error}"
            );
        }
    }
}
