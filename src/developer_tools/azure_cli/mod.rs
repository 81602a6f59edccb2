//! [`AzureCliCredential`]: tokens of the user logged in with the Azure CLI (`az login`).

pub(crate) mod ini;
pub(crate) mod msal_cache;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::devtool::{self, Tool};
use super::options::{DeveloperToolOptions, LoginChecked, ToolRunner, devtool_setters};
use crate::context::seam_setters;
use crate::credential::delegate_token_credential;
use crate::setters::debug_fields;
use crate::system::{Clock, Fs, Output};
use crate::tenant::TenantPolicy;
use crate::{
    AccessToken, CachedCredential, Context, Error, ErrorKind, TokenFetcher, TokenRequest, env_vars,
};

pub(crate) const NAME: &str = "AzureCliCredential";

pub(crate) const TOOL: Tool = Tool {
    credential: NAME,
    program: "az",
    windows_fallback: None,
    display_name: "the Azure CLI",
    config_dir_var: Some(env_vars::AZURE_CONFIG_DIR),
    default_config_dir: ".azure",
    login_files: &["azureProfile.json", "msal_token_cache.json"],
    install_fix: "install the Azure CLI (https://aka.ms/azure-cli) or add the directory holding `az` to PATH",
    login_fix: "run `az login` (add `--tenant <tenant>` for another tenant) and try again",
    login_markers: &["az login", "az account set"],
};

/// Tokens of the user logged in with the Azure CLI: `az account get-access-token`.
///
/// Tokens are cached like every other source's (the other SDKs run `az` on every call, at
/// 0.3–3 s each), yet a new `az login` takes effect at once: the credential watches the CLI's
/// `azureProfile.json` and `msal_token_cache.json` in `AZURE_CONFIG_DIR` (default `~/.azure`)
/// and drops its cached tokens when either changes (looking at most once a second).
/// Concurrent callers share one `az` process.
///
/// Before running `az`, the credential reads the CLI's own token cache (read-only) and answers
/// from it when the token there is, beyond doubt, the one `az` would return; anything unusual
/// runs `az` instead. Turn this off with [`AzureCliCredentialBuilder::fast_path`] or
/// [`AzureCliCredential::FAST_PATH_ENV_VAR`]`=0`. The crate's README lists the rules.
///
/// `az` is found on `PATH` (`az.cmd` on Windows) and run directly, without a shell, with
/// discrete arguments, closed stdin, a safe working directory, `AZURE_CORE_NO_COLOR=true` and the
/// caller's environment, under a timeout (10 s by default) that kills it and everything it
/// started. Scope, tenant and subscription are validated before anything runs.
///
/// ```no_run
/// use azure_credentials::{AzureCliCredential, TokenCredential};
///
/// # async fn example() -> Result<(), azure_credentials::Error> {
/// let credential = AzureCliCredential::builder()
///     .subscription("00000000-0000-0000-0000-000000000000")
///     .process_timeout(std::time::Duration::from_secs(30))
///     .build()?;
/// let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AzureCliCredential {
    credential: LoginChecked,
    tenant_id: Option<String>,
    subscription: Option<String>,
    timeout: Duration,
    fast_path: bool,
}

impl AzureCliCredential {
    /// The environment variable that turns the fast path off: set it to `0`, `false`, `no` or
    /// `off` and the credential always runs `az` instead of reading the CLI's token cache.
    pub const FAST_PATH_ENV_VAR: &'static str = env_vars::AZURE_CREDENTIALS_CLI_FAST_PATH;

    /// The credential with default options: the process environment, the shared cache, a 10 s
    /// timeout, the subscription and tenant `az` itself defaults to. Nothing runs until the first
    /// token is asked for; `az` missing or logged out is reported then.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `AZURE_ADDITIONALLY_ALLOWED_TENANTS` names an invalid tenant.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::AzureCliCredential;
    ///
    /// let credential = AzureCliCredential::new()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// Options for the credential, validated by [`build`](AzureCliCredentialBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::AzureCliCredential;
    ///
    /// let credential = AzureCliCredential::builder()
    ///     .subscription("00000000-0000-0000-0000-000000000000") // or .tenant_id(..), not both
    ///     .fast_path(false) // always run az
    ///     .build()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn builder() -> AzureCliCredentialBuilder {
        AzureCliCredentialBuilder::default()
    }

    /// The cached credential underneath (its identity, or to [invalidate](CachedCredential::invalidate)
    /// its tokens by hand).
    pub fn cached(&self) -> &CachedCredential {
        self.credential.cached()
    }
}

debug_fields!(AzureCliCredential as NAME { tenant_id, subscription, timeout, fast_path });

delegate_token_credential!(AzureCliCredential => credential);

/// Options for an [`AzureCliCredential`].
#[derive(Clone)]
pub struct AzureCliCredentialBuilder {
    context: Context,
    options: DeveloperToolOptions,
    fast_path: bool,
}

impl Default for AzureCliCredentialBuilder {
    fn default() -> Self {
        AzureCliCredentialBuilder {
            context: Context::default(),
            options: DeveloperToolOptions::default(),
            fast_path: true,
        }
    }
}

debug_fields!(AzureCliCredentialBuilder {
    tenant_id: options.tenant_id,
    subscription: options.subscription,
    timeout: options.process_timeout,
    fast_path,
    ..
});

impl AzureCliCredentialBuilder {
    seam_setters!(
        env = "Reads `PATH`, `AZURE_CONFIG_DIR`, `HOME`, ...: `AZURE_CONFIG_DIR` read here is \
               also passed to `az`; the rest of `az`'s environment is the process's.",
        fs = "The CLI's files are read from it (the fast path, the login watch).",
        cache,
        executor,
    );

    devtool_setters!(
        tenant_id = "Ask `az` for tokens of this tenant (`--tenant`). Cannot be combined with \
                     [`subscription`](Self::subscription).",
        subscription = "Ask `az` for tokens of this subscription's account and tenant \
                        (`--subscription`), by id (preferred) or name. Cannot be combined with \
                        [`tenant_id`](Self::tenant_id).",
        additionally_allowed_tenants,
        process_timeout = "A cold `az` on a slow machine or in CI can need more.",
    );

    /// Whether to answer from the CLI's own token cache when that is certain to give what `az`
    /// would (default: yes). [`AzureCliCredential::FAST_PATH_ENV_VAR`]`=0` turns it off whatever this says.
    pub fn fast_path(mut self, enabled: bool) -> Self {
        self.fast_path = enabled;
        self
    }

    /// Validates the options and builds the credential. Spawns nothing.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the tenant id or subscription holds characters that cannot be one (they would
    /// reach `az`'s command line), when both are set (`az` accepts only one), or when
    /// `AZURE_ADDITIONALLY_ALLOWED_TENANTS` names an invalid tenant.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{AzureCliCredential, ErrorKind};
    ///
    /// let error = AzureCliCredential::builder()
    ///     .subscription("my subscription; rm -rf ~")
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// ```
    pub fn build(self) -> Result<AzureCliCredential, Error> {
        let setup = self.options.setup(&TOOL, &self.context)?;
        let DeveloperToolOptions {
            tenant_id,
            subscription,
            process_timeout: timeout,
            ..
        } = self.options;
        let fast_path =
            self.fast_path && !devtool::is_off(&setup.env, AzureCliCredential::FAST_PATH_ENV_VAR);
        let identity = setup
            .identity(tenant_id.as_deref())
            .with("subscription", subscription.clone().unwrap_or_default());
        tracing::debug!(
            credential = NAME,
            tenant = ?tenant_id,
            subscription = ?subscription,
            fast_path,
            watched = ?setup.watched(),
            "credential built"
        );
        let fetcher = CliFetcher {
            runner: setup.runner(),
            fs: setup.fs.clone(),
            clock: setup.clock().clone(),
            tenant_id: tenant_id.clone(),
            subscription: subscription.clone(),
            tenants: setup.tenants.clone(),
            config_dir: setup.config_dir.clone(),
            fast_path,
        };
        Ok(AzureCliCredential {
            credential: setup.credential(identity, fetcher),
            tenant_id,
            subscription,
            timeout,
            fast_path,
        })
    }
}

/// Runs `az` (or answers from its cache) for the cache.
struct CliFetcher {
    runner: ToolRunner,
    fs: Fs,
    clock: Clock,
    tenant_id: Option<String>,
    subscription: Option<String>,
    tenants: TenantPolicy,
    config_dir: Option<PathBuf>,
    fast_path: bool,
}

debug_fields!(CliFetcher {
    tenant_id,
    subscription,
    timeout: runner.timeout,
    config_dir,
    fast_path,
    ..
});

#[async_trait]
impl TokenFetcher for CliFetcher {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let (scope, resource, tenant) =
            devtool::resource_request(NAME, request, self.tenant_id.as_deref())?;
        if let Some(claims) = request.claims() {
            return Err(claims_error(scope, tenant, claims));
        }
        if self.fast_path
            && let Some(token) = self.read_cli_cache(resource, tenant)
        {
            return Ok(token);
        }
        self.run_az(resource, tenant).await
    }

    fn resolve_tenant<'a>(&'a self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        let resolved = self.tenants.resolve(requested)?;
        if resolved.is_some() && self.subscription.is_some() {
            return Err(Error::invalid_input(
                NAME,
                "a tenant was requested, but the credential is configured with a subscription and az accepts only one of them",
            )
            .with_fix("request no tenant, or build the credential with tenant_id instead of subscription"));
        }
        Ok(resolved)
    }
}

impl CliFetcher {
    /// The fast path: the token `az` would return, from its own cache, when that is certain.
    fn read_cli_cache(&self, resource: &str, tenant: Option<&str>) -> Option<AccessToken> {
        let config_dir = self.config_dir.as_deref()?;
        let scope = format!("{resource}/.default");
        let query = msal_cache::Query {
            fs: &self.fs,
            env: &self.runner.env,
            config_dir,
            scope: &scope,
            tenant,
            subscription: self.subscription.as_deref(),
            now: self.clock.now().unix_timestamp(),
        };
        match msal_cache::lookup(&query) {
            Ok(found) => {
                let expires_on = OffsetDateTime::from_unix_timestamp(found.expires_on).ok()?;
                // Refresh no later than az itself would stop returning this token.
                let az_refresh = found.expires_on.saturating_sub(300);
                let refresh = found.refresh_on.map_or(az_refresh, |r| r.min(az_refresh));
                let mut token = AccessToken::new(found.secret, expires_on)
                    .with_source(NAME)
                    .with_tenant_id(found.tenant);
                if let Ok(refresh_on) = OffsetDateTime::from_unix_timestamp(refresh) {
                    token = token.with_refresh_on(refresh_on);
                }
                let token = crate::jwt::identify(token);
                tracing::debug!(
                    credential = NAME,
                    expires_on = %token.expires_on(),
                    "token read from the Azure CLI's token cache (fast path)"
                );
                Some(token)
            }
            Err(reason) => {
                tracing::debug!(credential = NAME, reason, "fast path not taken; running az");
                None
            }
        }
    }

    async fn run_az(&self, resource: &str, tenant: Option<&str>) -> Result<AccessToken, Error> {
        let mut command = self
            .runner
            .command([
                "account",
                "get-access-token",
                "--output",
                "json",
                "--resource",
                resource,
            ])?
            .env(env_vars::AZURE_CORE_NO_COLOR, "true");
        if let Some(tenant) = tenant {
            command = command.args(["--tenant", tenant]);
        } else if let Some(subscription) = &self.subscription {
            command = command.args(["--subscription", subscription]);
        }
        let failure = |output: &Output| {
            let stderr = String::from_utf8_lossy(output.stderr());
            TOOL.failure(output, &stderr)
        };
        let too_long = || unexpected_output("more output than a token reply");
        let output = self.runner.run(command, failure, too_long).await?;
        parse_output(output.stdout())
    }
}

/// A claims challenge needs an interactive login, which `az` cannot do on its own.
fn claims_error(scope: &str, tenant: Option<&str>, claims: &str) -> Error {
    let command = format!(
        "az login --claims-challenge {} --scope {scope}",
        devtool::base64(claims.as_bytes())
    );
    devtool::claims_challenge_error(
        NAME,
        command,
        "--tenant",
        tenant,
        "login",
        " (Azure CLI 2.76 or newer)",
    )
}

fn unexpected_output(what: &str) -> Error {
    Error::new(
        ErrorKind::Other,
        NAME,
        format!("az account get-access-token returned {what}"),
    )
    .with_fix("run `az account get-access-token --output json` to see what it returns; update the Azure CLI if it is old")
}

#[derive(Deserialize)]
struct CliOutput {
    #[serde(rename = "accessToken")]
    access_token: String,
    #[serde(default)]
    expires_on: Option<EpochSeconds>,
    #[serde(rename = "expiresOn", default)]
    expires_on_local: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EpochSeconds {
    Int(i64),
    Text(String),
}

/// The token from `az`'s JSON. `expires_on` (epoch seconds, az ≥ 2.54) is preferred;
/// `expiresOn` is local time without a zone, used only when the local offset is known.
pub(crate) fn parse_output(stdout: &[u8]) -> Result<AccessToken, Error> {
    // Never echo the output: it holds the token.
    let output: CliOutput = serde_json::from_slice(stdout)
        .map_err(|_| unexpected_output("output that is not a token reply"))?;
    if output.access_token.is_empty() {
        return Err(unexpected_output("an empty token"));
    }
    let expires_on = match output.expires_on {
        Some(EpochSeconds::Int(secs)) => OffsetDateTime::from_unix_timestamp(secs).ok(),
        Some(EpochSeconds::Text(text)) => text
            .trim()
            .parse()
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
        None => match output.expires_on_local.as_deref() {
            Some(local) => Some(parse_local_expiry(local)?),
            None => None,
        },
    }
    .ok_or_else(|| unexpected_output("a token without a valid expiry"))?;
    let mut token = AccessToken::new(output.access_token, expires_on).with_source(NAME);
    if let Some(tenant) = output.tenant.filter(|t| !t.is_empty()) {
        token = token.with_tenant_id(tenant);
    }
    Ok(crate::jwt::identify(token))
}

/// `expiresOn` of az before 2.54: `2026-11-27 19:15:56.000000`, the machine's local time.
/// The local offset is asked of the system through `time`, which refuses on Unix in
/// multi-threaded processes (reading the zone there is not thread-safe); then the token is
/// refused rather than guessed, since a wrong guess could keep an expired token in use.
fn parse_local_expiry(text: &str) -> Result<OffsetDateTime, Error> {
    let (naive, offset) = crate::date::civil(text.trim())
        .ok_or_else(|| unexpected_output("an expiry that is not a date"))?;
    if let Some(offset) = offset {
        return Ok(naive.assume_offset(offset));
    }
    from_local_time(naive, |at| UtcOffset::local_offset_at(at).ok()).ok_or_else(|| {
        Error::new(
            ErrorKind::Other,
            NAME,
            "az reported the token's expiry only in local time (Azure CLI older than 2.54), and this process cannot determine its time zone offset safely",
        )
        .with_fix("update the Azure CLI to 2.54 or newer (`az upgrade`)")
    })
}

/// The instant whose local time (by `offset_at`, the zone's offset at an instant) is `local`.
/// The offset is looked up twice: first at `local` read as UTC, then at the instant that gives,
/// since near a daylight-saving change the two differ (an expiry an hour late otherwise). A
/// reading whose offset is the one in force at it wins; when both are (an hour that happens
/// twice) or neither is (an hour that is skipped), the earlier: an expiry read early only
/// refreshes sooner. `None` when the offset cannot be had.
fn from_local_time(
    local: PrimitiveDateTime,
    offset_at: impl Fn(OffsetDateTime) -> Option<UtcOffset>,
) -> Option<OffsetDateTime> {
    let first_offset = offset_at(local.assume_utc())?;
    let first = local.assume_offset(first_offset);
    let second_offset = offset_at(first)?;
    let second = local.assume_offset(second_offset);
    let consistent = |at: OffsetDateTime, offset| offset_at(at) == Some(offset);
    Some(
        match (
            consistent(first, first_offset),
            consistent(second, second_offset),
        ) {
            (true, false) => first,
            (false, true) => second,
            _ => first.min(second),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn expires_on_wins_and_may_be_a_string() {
        let token = parse_output(
            br#"{"accessToken":"t","expiresOn":"1999-01-01 00:00:00.000000","expires_on":"1893459600"}"#,
        )
        .unwrap();
        assert_eq!(token.expires_on(), datetime!(2030-01-01 1:00 UTC));
        let err = parse_output(br#"{"accessToken":"t"}"#).unwrap_err();
        assert!(err.to_string().contains("without a valid expiry"), "{err}");
        let err = parse_output(br#"{"accessToken":"t","expiresOn":"soon"}"#).unwrap_err();
        assert!(err.to_string().contains("not a date"), "{err}");
    }

    /// New York in 2026: EDT (-4) from 2026-03-08 07:00 UTC to 2026-11-01 06:00 UTC, else
    /// EST (-5). Local 02:00-03:00 on March 8 never happens; 01:00-02:00 on November 1 twice.
    fn new_york(at: OffsetDateTime) -> Option<UtcOffset> {
        let summer = at >= datetime!(2026-03-08 7:00 UTC) && at < datetime!(2026-11-01 6:00 UTC);
        UtcOffset::from_hms(if summer { -4 } else { -5 }, 0, 0).ok()
    }

    #[test]
    fn a_local_expiry_is_read_with_the_offset_in_force_at_it_across_daylight_saving_changes() {
        for (local, utc) in [
            // Hours after the change to summer time: EDT, though the same hours read as UTC
            // fall before the change (an hour late before the fix).
            (datetime!(2026-03-08 05:00), datetime!(2026-03-08 9:00 UTC)),
            (datetime!(2026-03-08 03:30), datetime!(2026-03-08 7:30 UTC)),
            // After the change back: EST, though read as UTC they fall before it.
            (datetime!(2026-11-01 03:00), datetime!(2026-11-01 8:00 UTC)),
            // Far from both.
            (datetime!(2026-07-01 12:00), datetime!(2026-07-01 16:00 UTC)),
            (datetime!(2026-01-15 12:00), datetime!(2026-01-15 17:00 UTC)),
            // The hour that happens twice: the earlier reading (EDT).
            (datetime!(2026-11-01 01:30), datetime!(2026-11-01 5:30 UTC)),
            // The skipped hour: the earlier of the two readings.
            (datetime!(2026-03-08 02:30), datetime!(2026-03-08 6:30 UTC)),
        ] {
            assert_eq!(from_local_time(local, new_york), Some(utc), "{local}");
        }
        assert_eq!(from_local_time(datetime!(2026-01-15 12:00), |_| None), None);
    }
}
