//! The developer tools: az, azd and Azure PowerShell.

use super::*;

/// A stand-in for `az` / `azd`: each run prints a new token, valid for an hour by `clock`, for
/// the tenant on its command line (or a default one), and runs are counted.
#[derive(Debug)]
struct StandInCli {
    runs: AtomicUsize,
    azd: bool,
    clock: Clock,
}

impl StandInCli {
    fn new(azd: bool, clock: &ManualClock) -> Arc<StandInCli> {
        Arc::new(StandInCli {
            runs: AtomicUsize::new(0),
            azd,
            clock: clock.clock(),
        })
    }
}

#[async_trait]
impl Executor for StandInCli {
    async fn run(&self, command: &Command) -> Result<Output, ProcessError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let args: Vec<String> = command
            .get_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let tenant = args
            .windows(2)
            .find(|w| w[0] == "--tenant" || w[0] == "--tenant-id")
            .map_or("dddddddd-0000-4000-8000-00000000000d", |w| w[1].as_str());
        let token = unique_token("cli-token");
        let expires_on = self.clock.now() + time::Duration::HOUR;
        let stdout = if self.azd {
            let expires_on = expires_on.format(&Rfc3339).unwrap();
            format!(r#"{{"token": "{token}", "expiresOn": "{expires_on}"}}"#)
        } else {
            format!(
                r#"{{"accessToken": "{token}", "expires_on": {}, "tenant": "{tenant}", "tokenType": "Bearer"}}"#,
                expires_on.unix_timestamp()
            )
        };
        Ok(Output::new(Some(0), stdout.into_bytes(), Vec::new()))
    }
}

fn cli_upstream(cli: &StandInCli) -> Upstream<'_> {
    Upstream {
        requests: Box::new(|| cli.runs.load(Ordering::SeqCst)),
        prime: Box::new(|| {}),
    }
}

/// A developer tool's configuration directory, named directly or through `HOME`:
/// (label, model, variable, value).
fn config_dirs(variable: &'static str, dir: &str) -> [(String, String, &'static str, String); 3] {
    [
        (
            format!("{variable}=/home/one/{dir}"),
            format!("/home/one/{dir}"),
            variable,
            format!("/home/one/{dir}"),
        ),
        (
            "HOME=/home/one".to_owned(),
            format!("/home/one/{dir}"),
            "HOME",
            "/home/one".to_owned(),
        ),
        (
            format!("{variable}=/home/two/{dir}"),
            format!("/home/two/{dir}"),
            variable,
            format!("/home/two/{dir}"),
        ),
    ]
}

fn tool_env(tool: &str, (variable, value): (&str, &str)) -> Env {
    let bin = fixtures::path(tool).join("bin");
    Env::from_pairs([
        ("PATH", bin.display().to_string()),
        (variable, value.to_owned()),
    ])
}

/// The configurations of a developer tool for every configuration directory × choice: labelled
/// "{dir} {choice}", modelled "{dir model} {choice}"; `build` makes the credential from the
/// environment naming the directory (and the stand-in `tool`'s bin on PATH), the choice's value
/// and the cache.
fn config_dir_configs<T: Copy + 'static>(
    tool: &str,
    (variable, dir): (&'static str, &str),
    choices: &[(&'static str, T)],
    build: impl Fn(&Env, T, &TokenCache) -> Arc<dyn TokenCredential> + 'static,
) -> Vec<Config> {
    let build = Rc::new(build);
    let mut configs = Vec::new();
    for (dir_label, dir_model, variable, value) in config_dirs(variable, dir) {
        for &(label, choice) in choices {
            let (build, env) = (build.clone(), tool_env(tool, (variable, &value)));
            configs.push(Config::new(
                format!("{dir_label} {label}"),
                format!("{dir_model} {label}"),
                move |cache| build(&env, choice, cache),
            ));
        }
    }
    configs
}

#[tokio::test]
async fn an_azure_cli_credential_never_gets_the_token_of_another_tenant_subscription_or_config_dir()
{
    let clock = ManualClock::new(T0);
    let cli = StandInCli::new(false, &clock);
    // Tenants and subscriptions are compared exactly (see the file's header).
    // (label, (tenant, subscription))
    let choices = [
        ("no tenant", (None, None)),
        ("tenant a", (Some(TENANTS[0].1), None)),
        ("tenant A", (Some(TENANTS[1].1), None)),
        ("tenant b", (Some(TENANTS[2].1), None)),
        ("subscription s1", (None, Some("Subscription One"))),
        ("subscription s2", (None, Some("Subscription Two"))),
    ];
    let dir = ("AZURE_CONFIG_DIR", ".azure");
    let stand_in = cli.clone();
    let configs = config_dir_configs("azure_cli", dir, &choices, move |env, choice, cache| {
        let (tenant, subscription) = choice;
        let mut builder = AzureCliCredential::builder()
            .env(env.clone())
            .fs(Fs::memory())
            .executor(stand_in.clone())
            .cache(cache.clone());
        if let Some(tenant) = tenant {
            builder = builder.tenant_id(tenant);
        }
        if let Some(subscription) = subscription {
            builder = builder.subscription(subscription);
        }
        Arc::new(builder.build().unwrap())
    });
    check_every_pair(&configs, &cli_upstream(&cli), &clock).await;
}

#[tokio::test]
async fn an_azure_developer_cli_credential_never_gets_the_token_of_another_tenant_or_config_dir() {
    let clock = ManualClock::new(T0);
    let azd = StandInCli::new(true, &clock);
    let tenants = [
        ("no tenant", None),
        ("tenant a", Some(TENANTS[0].1)),
        ("tenant A", Some(TENANTS[1].1)),
        ("tenant b", Some(TENANTS[2].1)),
    ];
    let dir = ("AZD_CONFIG_DIR", ".azd");
    let stand_in = azd.clone();
    let configs = config_dir_configs(
        "azure_developer_cli",
        dir,
        &tenants,
        move |env, tenant, cache| {
            let mut builder = AzureDeveloperCliCredential::builder()
                .env(env.clone())
                .fs(Fs::memory())
                .executor(stand_in.clone())
                .cache(cache.clone());
            if let Some(tenant) = tenant {
                builder = builder.tenant_id(tenant);
            }
            Arc::new(builder.build().unwrap())
        },
    );
    check_every_pair(&configs, &cli_upstream(&azd), &clock).await;
}
