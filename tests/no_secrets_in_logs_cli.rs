//! Runs the developer-tool credentials' scenarios (every az, azd and pwsh fixture, the fast path, a
//! login change, a real stand-in process, claims, timeouts) at TRACE level and fails if a token
//! appears in a log line, a `Debug` rendering or an error message.

mod support;
use support::fixtures::{self, tool_output};
use support::{cache, tools};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use support::log_capture::{LeakTest, Printed};

use azure_credentials::system::{Env, Fs, Output, ProcessError};
use azure_credentials::testing::ScriptedExecutor;
use azure_credentials::{
    AzureCliCredential, AzureDeveloperCliCredential, AzurePowerShellCredential, TokenCredential,
    TokenRequestOptions,
};

/// Every token value in the fixtures starts with one of these.
const SECRETS: &[&str] = &[
    "fixture-cli-token-",
    "fixture-azd-token-",
    "fixture-pwsh-token-",
    "fixture-cli-refresh-token",
    "eyJ0eXAiOiJKV1Qi",
];

const ARM: [&str; 1] = ["https://management.azure.com/.default"];

#[test]
fn no_token_reaches_logs_debug_or_errors() {
    let mut t = LeakTest::start();
    t.runtime.block_on(cli_scenarios(&mut t.seen));
    t.runtime.block_on(azd_scenarios(&mut t.seen));
    t.runtime.block_on(pwsh_scenarios(&mut t.seen));
    #[cfg(unix)]
    t.runtime.block_on(stand_in_scenario(&mut t.seen));

    t.assert_no_secrets(
        SECRETS,
        &[
            "token read from the Azure CLI's token cache",
            "fast path not taken",
            "login state changed",
            "token cached",
            "token fetch failed",
        ],
    );
}

async fn cli_scenarios(seen: &mut Printed) {
    let clock = cache::manual_clock();
    let executor = ScriptedExecutor::new();
    let bin = fixtures::path("azure_cli/bin");
    let fs = Fs::memory();
    for file in ["azureProfile.json", "msal_token_cache.json"] {
        let contents =
            std::fs::read(fixtures::path("azure_cli/config/default").join(file)).unwrap();
        fs.write(Path::new("/home/dev/.azure").join(file), contents);
    }
    let builder = AzureCliCredential::builder()
        .env(Env::from_pairs([
            ("PATH", bin.to_str().unwrap()),
            ("HOME", "/home/dev"),
        ]))
        .fs(fs.clone())
        .executor(Arc::new(executor.clone()))
        .cache(cache::deterministic_without_cooldown(clock.clock()));
    seen.debug(&builder);

    // The fast path, then a miss that runs az, then every recorded output.
    let fast = builder.clone().build().unwrap();
    seen.debug(&fast);
    seen.debug(&fast.get_token(&ARM, None).await.unwrap());
    executor.repeat_output(tool_output("azure_cli", "success"));
    let token = fast
        .get_token(&["https://cosmos.azure.com/.default"], None)
        .await
        .unwrap();
    seen.debug(&token);
    seen.debug(&executor);
    seen.debug(&executor.commands());

    let no_fast_path = |executor: &ScriptedExecutor| {
        builder
            .clone()
            .fast_path(false)
            .executor(Arc::new(executor.clone()))
            .cache(cache::deterministic_without_cooldown(clock.clock()))
            .build()
            .unwrap()
    };
    for case in [
        "success",
        "success_without_expires_on",
        "success_with_tenant",
        "not_logged_in",
        "refresh_failure_traceback",
        "aadsts_refresh_rejected",
        "aadsts_mfa_required",
        "unknown_subscription",
        "tenant_and_subscription",
        "unrecognized_arguments",
        "exit_127",
        "garbage_stdout",
        "empty_token",
    ] {
        let credential = no_fast_path(&tools::replaying("azure_cli", case));
        seen.outcome(&credential.get_token(&ARM, None).await);
    }
    // A token echoed on the first error line, and a runaway stdout.
    for output in [
        Output::new(
            Some(1),
            Vec::new(),
            b"ERROR: unexpected reply {\"accessToken\": \"fixture-cli-token-on-error-line\"} eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.c2ln".to_vec(),
        ),
        tool_output("azure_cli", "success").with_truncation(true, false),
    ] {
        let executor = ScriptedExecutor::new();
        executor.push_output(output);
        let credential = no_fast_path(&executor);
        seen.error(&credential.get_token(&ARM, None).await.unwrap_err());
    }
    let executor = ScriptedExecutor::new();
    executor.push_error(ProcessError::timed_out("az", Duration::from_secs(10)));
    let credential = no_fast_path(&executor);
    seen.error(&credential.get_token(&ARM, None).await.unwrap_err());

    // A claims challenge.
    let options = TokenRequestOptions::default().with_claims(r#"{"access_token":{}}"#);
    seen.error(
        &credential
            .get_token(&ARM, Some(&options))
            .await
            .unwrap_err(),
    );

    // A new login: the watch drops the cached tokens.
    for file in ["azureProfile.json", "msal_token_cache.json"] {
        let contents =
            std::fs::read(fixtures::path("azure_cli/config/after_login").join(file)).unwrap();
        fs.write(Path::new("/home/dev/.azure").join(file), contents);
    }
    clock.advance(Duration::from_secs(2));
    seen.debug(&fast.get_token(&ARM, None).await.unwrap());
}

async fn azd_scenarios(seen: &mut Printed) {
    let clock = cache::manual_clock();
    let bin = fixtures::path("azure_developer_cli/bin");
    for case in [
        "success",
        "not_logged_in",
        "not_logged_in_plain",
        "aadsts_error",
        "unknown_claims_flag",
        "exit_127",
        "garbage_stdout",
    ] {
        let credential = AzureDeveloperCliCredential::builder()
            .env(Env::from_pairs([("PATH", bin.to_str().unwrap())]))
            .fs(Fs::memory())
            .executor(scripted(Ok(tool_output("azure_developer_cli", case))))
            .cache(cache::deterministic_without_cooldown(clock.clock()))
            .build()
            .unwrap();
        seen.debug(&credential);
        seen.outcome(&credential.get_token(&ARM, None).await);
    }
}

/// An executor whose one run gives `result`.
fn scripted(result: Result<Output, ProcessError>) -> Arc<ScriptedExecutor> {
    let executor = ScriptedExecutor::new();
    executor.push(result);
    Arc::new(executor)
}

async fn pwsh_scenarios(seen: &mut Printed) {
    let clock = cache::manual_clock();
    let bin = fixtures::path("azure_powershell/bin");
    let jwt = support::jwt::jwt(
        r#"{"tid":"72f988bf-86f1-41af-91ab-2d7cd011db47"}"#,
        "fixture-pwsh-token-signature",
    );
    let jwt_line = Output::new(
        Some(0),
        format!("noise\nazure-credentials-token%{jwt}%1893459600\n").into_bytes(),
        Vec::new(),
    );
    let outputs = [
        "success",
        "old_az_accounts",
        "no_az_accounts",
        "not_logged_in",
        "not_logged_in_windows_powershell",
        "execution_policy",
        "authorization_manager",
        "claims_challenge",
        "garbage_stdout",
        "other_error",
    ]
    .into_iter()
    .map(|case| Ok(tool_output("azure_powershell", case)))
    .chain([
        Ok(jwt_line),
        Err(ProcessError::timed_out("pwsh", Duration::from_secs(10))),
    ]);
    for output in outputs {
        let credential = AzurePowerShellCredential::builder()
            .env(Env::from_pairs([("PATH", bin.to_str().unwrap())]))
            .fs(Fs::memory())
            .executor(scripted(output))
            .cache(cache::deterministic_without_cooldown(clock.clock()))
            .build()
            .unwrap();
        seen.debug(&credential);
        seen.outcome(&credential.get_token(&ARM, None).await);
    }
}

#[cfg(unix)]
async fn stand_in_scenario(seen: &mut Printed) {
    // The token is assembled by the script, so its text holds no marker.
    let dir = tools::stand_in(
        "az",
        "printf '{\"accessToken\": \"%s-%s\", \"expires_on\": 1893459600}' fixture-cli-token stand-in\nprintf 'WARNING: %s-%s\\n' fixture-cli-token on-stderr >&2\n",
    );
    let clock = cache::manual_clock();
    let credential = AzureCliCredential::builder()
        .env(Env::from_pairs([("PATH", dir.to_str().unwrap())]))
        .cache(cache::deterministic_without_cooldown(clock.clock()))
        .build()
        .unwrap();
    let token = credential.get_token(&ARM, None).await.unwrap();
    assert_eq!(token.token().expose(), "fixture-cli-token-stand-in");
    seen.debug(&token);
    std::fs::remove_dir_all(&dir).unwrap();
}
