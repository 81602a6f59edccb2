//! [`AzureDeveloperCliCredential`]: tokens of the user logged in with the Azure Developer CLI
//! (`azd auth login`).

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::devtool::{self, Tool};
use super::options::{DeveloperToolOptions, LoginChecked, ToolRunner, devtool_setters};
use crate::context::seam_setters;
use crate::credential::delegate_token_credential;
use crate::scope::validate_scopes;
use crate::setters::debug_fields;
use crate::system::Output;
use crate::tenant::TenantPolicy;
use crate::{
    AccessToken, CachedCredential, Context, Error, ErrorKind, TokenFetcher, TokenRequest, env_vars,
};

pub(crate) const NAME: &str = "AzureDeveloperCliCredential";

pub(crate) const TOOL: Tool = Tool {
    credential: NAME,
    program: "azd",
    windows_fallback: None,
    display_name: "the Azure Developer CLI",
    config_dir_var: Some(env_vars::AZD_CONFIG_DIR),
    default_config_dir: ".azd",
    login_files: &["config.json"],
    install_fix: "install the Azure Developer CLI (https://aka.ms/azd-install) or add the directory holding `azd` to PATH",
    login_fix: "run `azd auth login` (add `--tenant-id <tenant>` for another tenant) and try again",
    login_markers: &["azd auth login"],
};

/// Tokens of the user logged in with the Azure Developer CLI: `azd auth token`.
///
/// Cached like every other source, with a new `azd auth login` taking effect at once: the
/// credential watches `config.json` in `AZD_CONFIG_DIR` (default `~/.azd`), where azd records
/// the logged-in account, and drops its cached tokens when it changes. Concurrent callers share
/// one `azd` process. `azd` is found on `PATH` and run directly with discrete arguments, closed
/// stdin, a safe working directory and a timeout (10 s by default) that kills it.
///
/// Unlike az, azd reports expiry in UTC (RFC 3339), and takes several scopes at once.
///
/// ```no_run
/// use azure_credentials::{AzureDeveloperCliCredential, TokenCredential};
///
/// # async fn example() -> Result<(), azure_credentials::Error> {
/// let credential = AzureDeveloperCliCredential::new()?;
/// let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AzureDeveloperCliCredential {
    credential: LoginChecked,
    tenant_id: Option<String>,
    timeout: Duration,
}

impl AzureDeveloperCliCredential {
    /// The credential with default options: the process environment, the shared cache, a 10 s
    /// timeout and the tenant `azd` itself defaults to. Nothing runs until the first token is asked
    /// for.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `AZURE_ADDITIONALLY_ALLOWED_TENANTS` names an invalid tenant.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::AzureDeveloperCliCredential;
    ///
    /// let credential = AzureDeveloperCliCredential::new()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// Options for the credential, validated by [`build`](AzureDeveloperCliCredentialBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::AzureDeveloperCliCredential;
    ///
    /// let credential = AzureDeveloperCliCredential::builder()
    ///     .tenant_id("contoso.onmicrosoft.com")
    ///     .build()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn builder() -> AzureDeveloperCliCredentialBuilder {
        AzureDeveloperCliCredentialBuilder::default()
    }

    /// The cached credential underneath.
    pub fn cached(&self) -> &CachedCredential {
        self.credential.cached()
    }
}

debug_fields!(AzureDeveloperCliCredential as NAME { tenant_id, timeout });

delegate_token_credential!(AzureDeveloperCliCredential => credential);

/// Options for an [`AzureDeveloperCliCredential`].
#[derive(Clone, Default)]
pub struct AzureDeveloperCliCredentialBuilder {
    context: Context,
    options: DeveloperToolOptions,
}

debug_fields!(AzureDeveloperCliCredentialBuilder {
    tenant_id: options.tenant_id,
    timeout: options.process_timeout,
    ..
});

impl AzureDeveloperCliCredentialBuilder {
    seam_setters!(
        env = "Reads `PATH`, `AZD_CONFIG_DIR`, `HOME`, ...: `AZD_CONFIG_DIR` read here is also \
               passed to `azd`.",
        fs = "azd's login file is watched there.",
        cache,
        executor,
    );

    devtool_setters!(
        tenant_id = "Ask `azd` for tokens of this tenant (`--tenant-id`).",
        additionally_allowed_tenants,
        process_timeout,
    );

    /// Validates the options and builds the credential. Spawns nothing.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the tenant id holds characters that cannot be one (it would reach `azd`'s command
    /// line), or `AZURE_ADDITIONALLY_ALLOWED_TENANTS` names an invalid tenant.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{AzureDeveloperCliCredential, ErrorKind};
    ///
    /// let error = AzureDeveloperCliCredential::builder()
    ///     .tenant_id("contoso; rm -rf ~")
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// ```
    pub fn build(self) -> Result<AzureDeveloperCliCredential, Error> {
        let setup = self.options.setup(&TOOL, &self.context)?;
        let DeveloperToolOptions {
            tenant_id,
            process_timeout: timeout,
            ..
        } = self.options;
        let identity = setup.identity(tenant_id.as_deref());
        let fetcher = AzdFetcher {
            runner: setup.runner(),
            tenant_id: tenant_id.clone(),
            tenants: setup.tenants.clone(),
        };
        Ok(AzureDeveloperCliCredential {
            credential: setup.credential(identity, fetcher),
            tenant_id,
            timeout,
        })
    }
}

struct AzdFetcher {
    runner: ToolRunner,
    tenant_id: Option<String>,
    tenants: TenantPolicy,
}

debug_fields!(AzdFetcher {
    tenant_id,
    timeout: runner.timeout,
    ..
});

#[async_trait]
impl TokenFetcher for AzdFetcher {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        validate_scopes(NAME, request.scopes())?;
        let mut command =
            self.runner
                .command(["auth", "token", "--output", "json", "--no-prompt"])?;
        for scope in request.scopes() {
            command = command.args(["--scope", scope]);
        }
        if let Some(tenant) = request.tenant_id().or(self.tenant_id.as_deref()) {
            command = command.args(["--tenant-id", tenant]);
        }
        if let Some(claims) = request.claims() {
            command = command.args(["--claims", &devtool::base64(claims.as_bytes())]);
        }
        let failure = |output: &Output| {
            let stderr = stderr_text(output.stderr());
            if stderr.contains("unknown flag: --claims") {
                return Error::authentication(
                    NAME,
                    "the resource asked for a claims challenge, and this azd is too old to pass it on",
                )
                .with_fix("update the Azure Developer CLI to 1.18.1 or newer");
            }
            TOOL.failure(output, &stderr)
        };
        let too_long = || unexpected_output("more output than a token reply");
        let output = self.runner.run(command, failure, too_long).await?;
        parse_output(output.stdout())
    }

    fn resolve_tenant<'a>(&'a self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        self.tenants.resolve(requested)
    }
}

/// azd writes errors as JSON lines (`{"type":"consoleMessage","data":{"message":...}}`, or an
/// object with `error`) or plain text; this is the text of each line.
pub(crate) fn stderr_text(stderr: &[u8]) -> String {
    let raw = String::from_utf8_lossy(stderr);
    let mut text = String::with_capacity(raw.len());
    for line in raw.lines() {
        let message = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| {
                v.get("error")
                    .and_then(|e| e.as_str())
                    .or_else(|| v.pointer("/data/message").and_then(|m| m.as_str()))
                    .map(str::to_owned)
            });
        text.push_str(message.as_deref().unwrap_or(line));
        text.push('\n');
    }
    text
}

fn unexpected_output(what: &str) -> Error {
    Error::new(
        ErrorKind::Other,
        NAME,
        format!("azd auth token returned {what}"),
    )
    .with_fix("run `azd auth token --output json --scope <scope>` to see what it returns; update azd if it is old")
}

#[derive(Deserialize)]
struct AzdOutput {
    token: String,
    #[serde(rename = "expiresOn")]
    expires_on: String,
}

/// `{"token": "...", "expiresOn": "2026-01-01T00:00:00Z"}`: the expiry is UTC in RFC 3339 (an
/// explicit offset is honoured), never local time.
pub(crate) fn parse_output(stdout: &[u8]) -> Result<AccessToken, Error> {
    let output: AzdOutput = serde_json::from_slice(stdout)
        .map_err(|_| unexpected_output("output that is not a token reply"))?;
    if output.token.is_empty() {
        return Err(unexpected_output("an empty token"));
    }
    let expires_on = crate::date::rfc3339(output.expires_on.trim())
        .ok_or_else(|| unexpected_output("an expiry that is not an RFC 3339 time"))?;
    // azd does not say which tenant, nor who; the token does.
    Ok(crate::jwt::identify(
        AccessToken::new(output.token, expires_on).with_source(NAME),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn expiry_is_utc_not_local_time() {
        let token = parse_output(br#"{"token":"t","expiresOn":"2030-01-01T10:00:00Z"}"#).unwrap();
        assert_eq!(token.expires_on(), datetime!(2030-01-01 10:00 UTC));
        let token =
            parse_output(br#"{"token":"t","expiresOn":"2030-01-01T12:00:00+02:00"}"#).unwrap();
        assert_eq!(token.expires_on(), datetime!(2030-01-01 10:00 UTC));
        for bad in [
            &br#"{"token":"t","expiresOn":"2030-01-01 10:00:00"}"#[..],
            br#"{"token":"","expiresOn":"2030-01-01T10:00:00Z"}"#,
            b"not json",
        ] {
            assert_eq!(parse_output(bad).unwrap_err().kind(), ErrorKind::Other);
        }
    }

    #[test]
    fn json_stderr_lines_become_text() {
        let stderr = br#"{"type":"consoleMessage","timestamp":"2030-01-01T00:00:00Z","data":{"message":"\nERROR: fetching token: not logged in, run `azd auth login` to login\n"}}
plain line"#;
        let text = stderr_text(stderr);
        assert!(
            text.contains("ERROR: fetching token: not logged in"),
            "{text}"
        );
        assert!(text.contains("plain line"));
        assert_eq!(stderr_text(br#"{"error":"boom"}"#).trim(), "boom");
    }
}
