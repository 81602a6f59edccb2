//! What the developer-tool builders (`az`, `azd`, `pwsh`) share: their options and setters, what
//! building makes of them (the tool's environment, config directory, tenant rules and login
//! watch), and the login check in front of the cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::devtool::{LoginWatch, Tool};
use crate::scope::{validate_subscription, validate_tenant_id};
use crate::system::{Clock, Command, Env, Executor, Fs, Output};
use crate::tenant::TenantPolicy;
use crate::{
    CacheIdentity, CachedCredential, Context, Error, TokenFetcher, TokenFuture, TokenRequestOptions,
};

/// How long a tool may run by default.
pub(crate) const DEFAULT_PROCESS_TIMEOUT: Duration = Duration::from_secs(10);

/// The options every developer-tool builder has (`subscription` only where the tool takes one).
#[derive(Debug, Clone)]
pub(crate) struct DeveloperToolOptions {
    pub(crate) tenant_id: Option<String>,
    pub(crate) subscription: Option<String>,
    pub(crate) additionally_allowed_tenants: Option<Vec<String>>,
    pub(crate) process_timeout: Duration,
}

impl Default for DeveloperToolOptions {
    fn default() -> Self {
        DeveloperToolOptions {
            tenant_id: None,
            subscription: None,
            additionally_allowed_tenants: None,
            process_timeout: DEFAULT_PROCESS_TIMEOUT,
        }
    }
}

/// Adds the shared setters to a developer-tool builder whose `options` field is a
/// [`DeveloperToolOptions`]: `devtool_setters!(tenant_id = "...", subscription = "...",
/// additionally_allowed_tenants, process_timeout)` (any subset, in that order; the string is
/// a paragraph of the builder's own, required for `tenant_id` and `subscription`).
macro_rules! devtool_setters {
    ($($option:ident $(= $doc:literal)?),* $(,)?) => {
        $($crate::developer_tools::options::devtool_setters!(@one $option [$($doc)?]);)*
    };
    (@one tenant_id [$doc:literal]) => {
        $crate::setters::option_setter!(#[doc = $doc] tenant_id: String => options.tenant_id);
    };
    (@one subscription [$doc:literal]) => {
        $crate::setters::option_setter!(
            #[doc = $doc]
            subscription: String => options.subscription
        );
    };
    (@one additionally_allowed_tenants [$($doc:literal)?]) => {
        $crate::setters::allowed_tenants_setter!(
            options.additionally_allowed_tenants,
            "With no [`tenant_id`](Self::tenant_id) configured any tenant may be requested."
        );
    };
    (@one process_timeout [$($doc:literal)?]) => {
        /// How long the tool may run before it is killed and the call fails with
        /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout). Default: 10 s.
        $(#[doc = ""] #[doc = $doc])?
        pub fn process_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options.process_timeout = timeout;
            self
        }
    };
}
pub(crate) use devtool_setters;

/// What a developer-tool credential is built from, besides its own options.
pub(crate) struct ToolSetup {
    pub(crate) env: Env,
    pub(crate) fs: Fs,
    pub(crate) tenants: TenantPolicy,
    /// The tool's configuration directory: the variable's value, else the default under the
    /// home directory.
    pub(crate) config_dir: Option<PathBuf>,
    runner: ToolRunner,
    context: Context,
    clock: Clock,
    watch: Arc<LoginWatch>,
    tool: &'static Tool,
}

impl DeveloperToolOptions {
    /// Validates the options (tenant, subscription, not both) and sets up what every tool
    /// credential needs from `context`. Spawns nothing.
    pub(crate) fn setup(&self, tool: &'static Tool, context: &Context) -> Result<ToolSetup, Error> {
        let credential = tool.credential;
        if let Some(tenant) = &self.tenant_id {
            validate_tenant_id(credential, tenant)?;
        }
        if let Some(subscription) = &self.subscription {
            validate_subscription(credential, subscription)?;
        }
        if self.tenant_id.is_some() && self.subscription.is_some() {
            return Err(Error::invalid_input(
                credential,
                format!(
                    "both a tenant and a subscription are set, and {} accepts only one of them",
                    tool.program
                ),
            )
            .with_fix(
                "set either tenant_id or subscription (the subscription implies its tenant)",
            ));
        }
        let env = context.env();
        let tenants = TenantPolicy::new(
            credential,
            self.tenant_id.as_deref(),
            self.additionally_allowed_tenants.as_deref(),
            &env,
        )?;
        let fs = context.fs();
        let clock = context.clock();
        let explicit_config_dir = tool.config_dir_var.and_then(|var| env.var_non_empty(var));
        let config_dir = explicit_config_dir
            .as_deref()
            .map(PathBuf::from)
            .or_else(|| super::devtool::home_dir(&env).map(|h| h.join(tool.default_config_dir)));
        let watched = config_dir
            .as_deref()
            .map(|d| super::devtool::files_in(d, tool.login_files))
            .unwrap_or_default();
        let watch = Arc::new(LoginWatch::new(fs.clone(), watched, clock.unix_nanos()));
        let runner = ToolRunner {
            tool,
            env: env.clone(),
            executor: context.executor(),
            timeout: self.process_timeout,
            explicit_config_dir,
        };
        Ok(ToolSetup {
            env,
            fs,
            tenants,
            config_dir,
            runner,
            context: context.clone(),
            clock,
            watch,
            tool,
        })
    }
}

impl ToolSetup {
    /// What runs the tool.
    pub(crate) fn runner(&self) -> ToolRunner {
        self.runner.clone()
    }

    /// The clock of the context's cache.
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The login files watched.
    pub(crate) fn watched(&self) -> &[PathBuf] {
        self.watch.paths()
    }

    /// The cache identity of a credential for `tenant`: its config directory and the login
    /// state at build time (credentials built under one login share tokens; one built after a
    /// new login does not inherit the old one's). Add what else tells credentials apart.
    pub(crate) fn identity(&self, tenant: Option<&str>) -> CacheIdentity {
        CacheIdentity::new(self.tool.credential)
            .with(
                "config_dir",
                self.config_dir
                    .as_deref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
            )
            .with("tenant", tenant.unwrap_or_default())
            .with("login_state", self.watch.fingerprint())
    }

    /// The credential: `fetcher` behind the context's cache, behind the login check.
    pub(crate) fn credential(
        &self,
        identity: CacheIdentity,
        fetcher: impl TokenFetcher,
    ) -> LoginChecked {
        LoginChecked {
            credential: self.context.cache().credential(identity, fetcher),
            watch: self.watch.clone(),
            clock: self.clock.clone(),
            tool: self.tool,
        }
    }
}

/// How a credential runs its tool: found on the `PATH` of its environment, run by its executor
/// under its timeout, with the configuration directory it read passed on.
#[derive(Clone)]
pub(crate) struct ToolRunner {
    tool: &'static Tool,
    pub(crate) env: Env,
    executor: Arc<dyn Executor>,
    pub(crate) timeout: Duration,
    explicit_config_dir: Option<String>,
}

impl ToolRunner {
    /// A command for the tool with `args` (see [`Tool::command`]); unavailable when the tool is
    /// not on `PATH`.
    pub(crate) fn command<'a>(
        &self,
        args: impl IntoIterator<Item = &'a str>,
    ) -> Result<Command, Error> {
        let program = self.tool.resolve(&self.env)?;
        Ok(self
            .tool
            .command(program, &self.env, self.timeout)
            .args(args))
    }

    /// Runs `command` with the configuration directory passed on: the output of a run that
    /// succeeded, else the error — one for a run that could not complete, `failure(output)` for
    /// one that failed, `too_long()` for output past the cap.
    pub(crate) async fn run(
        &self,
        mut command: Command,
        failure: impl FnOnce(&Output) -> Error,
        too_long: impl FnOnce() -> Error,
    ) -> Result<Output, Error> {
        if let (Some(var), Some(dir)) = (self.tool.config_dir_var, &self.explicit_config_dir) {
            command = command.env(var, dir);
        }
        let output = self
            .executor
            .run(&command)
            .await
            .map_err(|e| self.tool.process_error(e))?;
        if !output.success() {
            return Err(failure(&output));
        }
        if output.stdout_truncated() {
            return Err(too_long());
        }
        Ok(output)
    }
}

/// A developer tool's cached credential that drops its tokens when the tool's login files
/// change (a new login must take effect at once), looking at most once a second.
#[derive(Clone)]
pub(crate) struct LoginChecked {
    credential: CachedCredential,
    watch: Arc<LoginWatch>,
    clock: Clock,
    tool: &'static Tool,
}

impl LoginChecked {
    /// The cached credential underneath.
    pub(crate) fn cached(&self) -> &CachedCredential {
        &self.credential
    }

    /// Checks the login (a hit costs a clock read and a relaxed load), then asks the cache.
    #[inline]
    pub(crate) fn get_token<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: Option<&'a TokenRequestOptions>,
    ) -> TokenFuture<'a> {
        let now = self.clock.unix_nanos();
        if self.watch.due(now) && self.watch.changed(now) {
            tracing::debug!(
                credential = self.tool.credential,
                "{}'s login state changed; dropping cached tokens",
                self.tool.display_name
            );
            self.credential.invalidate();
        }
        self.credential.get_token(scopes, options)
    }
}
