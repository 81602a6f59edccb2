//! AzureCliCredential's fast path over crafted CLI config dirs in
//! `fixtures/azure_cli/config/`: the token az would return is read from its cache; anything
//! ambiguous or expiring runs az instead; a changed login drops cached tokens.
//!
//! The fixtures' tokens are dated relative to 2030-01-01 00:00 UTC, the tests' manual clock.

#[path = "../support/mod.rs"]
mod support;

// The fixtures' tests are here; crafted and random caches in in_memory.rs.
mod in_memory;
use support::cache;
use support::fixtures;
use support::tools::{TENANT_A, TENANT_B};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use azure_credentials::system::{Env, Fs, ManualClock, Output};
use azure_credentials::testing::ScriptedExecutor;
use azure_credentials::{
    AccessToken, AzureCliCredential, AzureCliCredentialBuilder, TokenCache, TokenCredential,
    TokenRequestOptions,
};
use time::macros::datetime;

const ARM: &str = "https://management.azure.com/.default";

const FROM_AZ: &str = "fixture-cli-token-from-az";

fn config_dir(name: &str) -> PathBuf {
    fixtures::path("azure_cli/config").join(name)
}

struct Setup {
    executor: ScriptedExecutor,
    clock: ManualClock,
    cache: TokenCache,
}

impl Setup {
    fn new() -> Self {
        let clock = cache::manual_clock();
        let executor = ScriptedExecutor::new();
        // What az says when it runs: a token the fast path never has.
        let stdout = format!(
            r#"{{"accessToken": "{FROM_AZ}", "expiresOn": "2030-01-01 01:00:00.000000", "expires_on": 1893459600, "tenant": "{TENANT_A}", "tokenType": "Bearer"}}"#
        );
        executor.repeat_output(Output::new(Some(0), stdout.into_bytes(), Vec::new()));
        Setup {
            executor,
            cache: cache::deterministic(clock.clock()),
            clock,
        }
    }

    /// A credential reading the fixture config dir `name` on the real file system.
    fn builder(&self, name: &str) -> AzureCliCredentialBuilder {
        self.builder_with(name, &[])
    }

    fn builder_with(&self, name: &str, vars: &[(&str, &str)]) -> AzureCliCredentialBuilder {
        let mut env = Env::from_pairs([
            ("PATH", fixtures::path("azure_cli/bin").to_str().unwrap()),
            ("AZURE_CONFIG_DIR", config_dir(name).to_str().unwrap()),
        ]);
        for (k, v) in vars {
            env = env.with(*k, *v);
        }
        AzureCliCredential::builder()
            .env(env)
            .fs(Fs::real())
            .executor(Arc::new(self.executor.clone()))
            .cache(self.cache.clone())
    }

    /// The token the credential returns for `scope`, and whether az ran for it.
    async fn token(&self, builder: AzureCliCredentialBuilder, scope: &str) -> (String, bool) {
        self.token_with(builder, scope, None).await
    }

    async fn token_with(
        &self,
        builder: AzureCliCredentialBuilder,
        scope: &str,
        options: Option<&TokenRequestOptions>,
    ) -> (String, bool) {
        let runs = self.executor.run_count();
        let credential = builder.build().unwrap();
        let token = credential.get_token(&[scope], options).await.unwrap();
        (
            token.token().expose().to_owned(),
            self.executor.run_count() > runs,
        )
    }
}

#[tokio::test]
async fn the_default_accounts_token_is_read_without_running_az() {
    let s = Setup::new();
    let credential = s.builder("default").build().unwrap();
    let token = credential
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .unwrap();
    // The entry whose target is exactly the scope wins over a longer-lived one containing it.
    assert_eq!(token.token().expose(), "fixture-cli-token-arm-exact");
    assert_eq!(token.tenant_id(), Some(TENANT_A));
    assert_eq!(token.expires_on(), datetime!(2030-01-01 0:40 UTC));
    assert_eq!(s.executor.run_count(), 0);
}

#[tokio::test]
async fn a_scope_inside_a_tokens_target_is_found() {
    let s = Setup::new();
    assert_eq!(
        s.token(s.builder("default"), "https://vault.azure.net/.default")
            .await,
        ("fixture-cli-token-vault".to_owned(), false)
    );
    // `--resource X` and `--scope X/.default` are one token to az: a scope without
    // `/.default` is asked for as `<scope>/.default`, which the cache does not hold here.
    assert_eq!(
        s.token(
            s.builder("default"),
            "https://vault.azure.net/user_impersonation"
        )
        .await,
        (FROM_AZ.to_owned(), true)
    );
}

#[tokio::test]
async fn another_tenant_is_served_from_its_own_entries() {
    let s = Setup::new();
    let other = TokenRequestOptions::default().with_tenant_id(TENANT_B);
    assert_eq!(
        s.token_with(
            s.builder("default"),
            "https://management.azure.com/.default",
            Some(&other)
        )
        .await,
        ("fixture-cli-token-arm-tenant-b".to_owned(), false)
    );
    assert_eq!(
        s.token(
            s.builder("default").tenant_id(TENANT_B),
            "https://management.azure.com/.default"
        )
        .await,
        ("fixture-cli-token-arm-tenant-b".to_owned(), false)
    );
    // A subscription picks its tenant (matched by name, case-insensitively).
    assert_eq!(
        s.token(
            s.builder("default").subscription("fabrikam prod"),
            "https://management.azure.com/.default"
        )
        .await,
        ("fixture-cli-token-arm-tenant-b".to_owned(), false)
    );
    // az maps an upper-case GUID (or a domain) through its own lookup: not certain.
    let upper = TokenRequestOptions::default().with_tenant_id(TENANT_B.to_uppercase());
    assert_eq!(
        s.token_with(
            s.builder("default"),
            "https://management.azure.com/.default",
            Some(&upper)
        )
        .await,
        (FROM_AZ.to_owned(), true)
    );
}

#[tokio::test]
async fn anything_uncertain_runs_az() {
    let s = Setup::new();
    for (scope, why) in [
        (
            "https://storage.azure.com/.default",
            "less than 5 minutes left",
        ),
        ("https://graph.microsoft.com/.default", "two usable entries"),
        (
            "https://database.windows.net/.default",
            "only another client's token",
        ),
        (
            "https://servicebus.azure.net/.default",
            "refresh_on has passed",
        ),
        (
            "https://ossrdbms-aad.database.windows.net/.default",
            "a target differing only in case",
        ),
        (
            "https://pas.windows.net/CheckMyAccess/Linux/.default",
            "an SSH certificate, not a bearer token",
        ),
        ("https://cosmos.azure.com/.default", "nothing cached"),
    ] {
        let (token, ran) = s.token(s.builder("default"), scope).await;
        assert!(ran && token == FROM_AZ, "{why}: {token}");
    }
    // refresh_on in the future is fine, and carried to the cache as the refresh time.
    let credential = s.builder("default").build().unwrap();
    let token = credential
        .get_token(&["https://eventhubs.azure.net/.default"], None)
        .await
        .unwrap();
    assert_eq!(
        token.token().expose(),
        "fixture-cli-token-eventhubs-refresh-later"
    );
    assert!(token.refresh_on().unwrap() <= datetime!(2030-01-01 0:30 UTC));
}

#[tokio::test]
async fn unusual_config_dirs_run_az() {
    let s = Setup::new();
    let arm = "https://management.azure.com/.default";
    for (dir, why) in [
        ("two_defaults", "two default subscriptions"),
        ("encrypted", "an encrypted token cache"),
        ("other_cloud_active", "another cloud is active"),
        ("two_accounts", "two accounts with the username"),
        ("service_principal", "a service principal login"),
        ("managed_identity", "a managed identity login"),
        ("cloud_shell", "a Cloud Shell login"),
        (
            "default_in_other_cloud",
            "no default subscription in AzureCloud",
        ),
        ("corrupt_cache", "a token cache that does not parse"),
        ("empty_cache", "an empty token cache"),
        ("no_such_dir", "no config dir"),
    ] {
        let (token, ran) = s.token(s.builder(dir), arm).await;
        assert!(ran && token == FROM_AZ, "{why}: {token}");
    }
    // Saying `encrypt_token_cache = false` and the cloud's name explicitly is fine.
    assert_eq!(
        s.token(s.builder("explicitly_plaintext"), arm).await,
        ("fixture-cli-token-arm-exact".to_owned(), false)
    );
    // The variable overrides the config file. (A fresh cache each: the token az gave for
    // "default" is cached under that config dir.)
    let s = Setup::new();
    let encrypted_by_env = s.builder_with("default", &[("AZURE_CORE_ENCRYPT_TOKEN_CACHE", "true")]);
    assert_eq!(
        s.token(encrypted_by_env, arm).await,
        (FROM_AZ.to_owned(), true)
    );
    let s = Setup::new();
    let other_cloud = s.builder_with("default", &[("AZURE_CLOUD_NAME", "AzureChinaCloud")]);
    assert_eq!(s.token(other_cloud, arm).await, (FROM_AZ.to_owned(), true));
}

#[tokio::test]
async fn the_fast_path_can_be_turned_off() {
    let s = Setup::new();
    let arm = "https://management.azure.com/.default";
    assert_eq!(
        s.token(s.builder("default").fast_path(false), arm).await,
        (FROM_AZ.to_owned(), true)
    );
    // A fresh cache each: az's token is cached after the first.
    let s = Setup::new();
    let off = s.builder_with("default", &[(AzureCliCredential::FAST_PATH_ENV_VAR, "0")]);
    assert_eq!(s.token(off, arm).await, (FROM_AZ.to_owned(), true));
    // The variable wins over the builder.
    let s = Setup::new();
    let off = s
        .builder_with("default", &[(AzureCliCredential::FAST_PATH_ENV_VAR, "off")])
        .fast_path(true);
    assert_eq!(s.token(off, arm).await, (FROM_AZ.to_owned(), true));
}

#[tokio::test]
async fn the_cli_files_are_never_written() {
    let dir = config_dir("default");
    let before: Vec<_> = ["azureProfile.json", "msal_token_cache.json"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    let s = Setup::new();
    s.token(
        s.builder("default"),
        "https://management.azure.com/.default",
    )
    .await;
    let after: Vec<_> = ["azureProfile.json", "msal_token_cache.json"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    assert_eq!(before, after);
}

/// An in-memory copy of a fixture config dir at `/home/dev/.azure`.
fn memory_config(fs: &Fs, name: &str) {
    for file in ["azureProfile.json", "msal_token_cache.json"] {
        let contents = std::fs::read(config_dir(name).join(file)).unwrap();
        fs.write(Path::new("/home/dev/.azure").join(file), contents);
    }
}

/// The token `credential` returns for ARM (which must be one).
async fn arm_token(credential: &AzureCliCredential) -> AccessToken {
    credential.get_token(&[ARM], None).await.unwrap()
}

#[tokio::test]
async fn a_new_login_drops_cached_tokens_within_a_second() {
    let s = Setup::new();
    let fs = Fs::memory();
    memory_config(&fs, "default");
    let credential = AzureCliCredential::builder()
        .env(Env::from_pairs([
            ("PATH", fixtures::path("azure_cli/bin").to_str().unwrap()),
            ("HOME", "/home/dev"),
        ]))
        .fs(fs.clone())
        .executor(Arc::new(s.executor.clone()))
        .cache(s.cache.clone())
        .build()
        .unwrap();
    let first = arm_token(&credential).await;
    assert_eq!(first.token().expose(), "fixture-cli-token-arm-exact");

    // `az login` as another account: new profile and token cache.
    memory_config(&fs, "after_login");
    // Within the second the files are not looked at: still the cached token.
    let cached = arm_token(&credential).await;
    assert!(cached.ptr_eq(&first));
    s.clock.advance(Duration::from_secs(1));
    let after = arm_token(&credential).await;
    assert_eq!(after.token().expose(), "fixture-cli-token-after-login");
    assert_eq!(after.tenant_id(), Some(TENANT_B));
    assert_eq!(s.executor.run_count(), 0);

    // A credential built after the login does not inherit the old login's tokens either.
    let later = AzureCliCredential::builder()
        .env(Env::from_pairs([("HOME", "/home/dev")]))
        .fs(fs.clone())
        .executor(Arc::new(s.executor.clone()))
        .cache(s.cache.clone())
        .build()
        .unwrap();
    assert_eq!(
        arm_token(&later).await.token().expose(),
        "fixture-cli-token-after-login"
    );

    // Only a change counts: looking again without one keeps the cached token.
    s.clock.advance(Duration::from_secs(5));
    assert!(arm_token(&credential).await.ptr_eq(&after));

    // `az logout`: the files go, the token goes, and az is asked (and says who is logged in).
    fs.remove(Path::new("/home/dev/.azure/azureProfile.json"));
    fs.remove(Path::new("/home/dev/.azure/msal_token_cache.json"));
    s.clock.advance(Duration::from_secs(1));
    assert_eq!(arm_token(&credential).await.token().expose(), FROM_AZ);
    assert_eq!(s.executor.run_count(), 1);
}
