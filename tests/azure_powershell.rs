//! AzurePowerShellCredential: every output and failure in `fixtures/azure_powershell/` through a
//! scripted executor and through a real stand-in process (`fixtures/azure_powershell/stand_in.sh`),
//! the script it sends (decoded from `-EncodedCommand`), validation, caching and tenants.

mod support;
use support::fixtures::{self, tool_output};
use support::tools::{Setup, decode_encoded_command, last_args, tool_env};

use std::path::Path;
#[cfg(unix)]
use std::sync::Arc;
use std::time::Duration;

#[cfg(unix)]
use azure_credentials::TokenCache;
use azure_credentials::system::{Env, Output};
use azure_credentials::{
    AzurePowerShellCredential, AzurePowerShellCredentialBuilder, ErrorKind, TokenCredential,
    TokenRequestOptions,
};
use time::macros::datetime;

const ARM: [&str; 1] = ["https://management.azure.com/.default"];
const TENANT_B: &str = "0b1c3e5a-8d2f-4c6b-9a7e-1f2d3c4b5a69";

/// Each recorded failure: its kind, text in the message, text in the fix, `AADSTS` codes.
const FAILURES: &[(&str, ErrorKind, &str, &str, &[u32])] = &[
    (
        "old_az_accounts",
        ErrorKind::Unavailable,
        "Az.Accounts 1.9.5 is installed; 2.2.0 or newer is needed",
        "Update-Module Az.Accounts",
        &[],
    ),
    (
        "no_az_accounts",
        ErrorKind::Unavailable,
        "the Az.Accounts module (2.2.0 or newer) is not installed",
        "Install-Module Az.Accounts",
        &[],
    ),
    (
        "not_logged_in",
        ErrorKind::Unavailable,
        "not logged in: Run Connect-AzAccount to login.",
        "Connect-AzAccount",
        &[],
    ),
    (
        "not_logged_in_windows_powershell",
        ErrorKind::Unavailable,
        "not logged in: Run Connect-AzAccount to login.",
        "Connect-AzAccount",
        &[],
    ),
    (
        "execution_policy",
        ErrorKind::Unavailable,
        "execution policy keeps Az.Accounts from loading",
        "Set-ExecutionPolicy -Scope CurrentUser RemoteSigned",
        &[],
    ),
    (
        "authorization_manager",
        ErrorKind::Unavailable,
        "execution policy keeps Az.Accounts from loading: AuthorizationManager check failed.",
        "Set-ExecutionPolicy",
        &[],
    ),
    (
        "claims_challenge",
        ErrorKind::Authentication,
        "needs an interactive sign-in: Authentication failed against tenant 72f988bf-86f1-41af-91ab-2d7cd011db47.",
        "Connect-AzAccount",
        &[50076],
    ),
    (
        "garbage_stdout",
        ErrorKind::Other,
        "the Get-AzAccessToken script returned no token line",
        "Get-AzAccessToken -ResourceUrl",
        &[],
    ),
    (
        "other_error",
        ErrorKind::Authentication,
        "pwsh exited with code 1: Object reference not set to an instance of an object.",
        "run `Get-AzAccessToken -ResourceUrl <resource>` in PowerShell",
        &[],
    ),
];

impl Setup {
    /// `pwsh` "on PATH" (a stand-in that is never run), a home directory, and the `extra`
    /// variables.
    fn env(extra: &[(&str, &str)]) -> Env {
        tool_env("azure_powershell", &[("HOME", "/home/dev")], extra)
    }

    fn builder(&self) -> AzurePowerShellCredentialBuilder {
        AzurePowerShellCredential::builder().context(self.context(Self::env(&[])))
    }

    fn credential(&self) -> AzurePowerShellCredential {
        self.builder().build().unwrap()
    }

    /// The script of the last run.
    fn script(&self) -> String {
        script_of(&last_args(&self.executor))
    }
}

/// The script in a command line `-NoProfile -NonInteractive -EncodedCommand <script>`.
fn script_of(args: &[String]) -> String {
    assert_eq!(args.len(), 4, "{args:?}");
    assert_eq!(
        args[..3],
        ["-NoProfile", "-NonInteractive", "-EncodedCommand"]
    );
    decode_encoded_command(&args[3])
}

fn assert_failure(case: &str, err: &azure_credentials::Error) {
    let (_, kind, text, fix, codes) = FAILURES.iter().find(|f| f.0 == case).unwrap();
    let message = err.to_string();
    assert_eq!(err.kind(), *kind, "{case}: {message}");
    assert!(message.contains(text), "{case}: {message}");
    assert!(message.contains("AzurePowerShellCredential"), "{message}");
    assert!(err.fix().unwrap_or("").contains(fix), "{case}: {err:?}");
    assert_eq!(err.aadsts_codes(), *codes, "{case}");
    assert!(!message.contains('\n'), "{case}: {message}");
    assert!(!message.contains("fixture-pwsh-token"), "{case}: {message}");
    assert!(!format!("{err:?}").contains("fixture-pwsh-token"), "{case}");
}

#[tokio::test]
async fn success_reads_the_marker_line_among_noise_and_runs_pwsh_with_an_encoded_script() {
    let s = Setup::new("azure_powershell");
    s.replays("success");
    let token = s.credential().get_token(&ARM, None).await.unwrap();
    assert_eq!(token.token().expose(), "fixture-pwsh-token-success");
    assert_eq!(token.expires_on(), datetime!(2030-01-01 1:00 UTC));
    assert_eq!(token.source(), "AzurePowerShellCredential");

    let command = s.executor.last_command().unwrap();
    assert_eq!(
        command.program(),
        fixtures::path("azure_powershell/bin/pwsh").as_os_str()
    );
    assert_eq!(command.get_timeout(), Duration::from_secs(10));
    #[cfg(unix)]
    assert_eq!(command.get_current_dir(), Some(Path::new("/bin")));
    let script = s.script();
    assert!(
        script.contains("Import-Module -Name Az.Accounts -MinimumVersion $required"),
        "{script}"
    );
    assert!(script.contains("$required = [version]'2.2.0'"), "{script}");
    assert!(
        script.contains(
            "$request = @{ ResourceUrl = 'https://management.azure.com'; WarningAction = 'Ignore' }"
        ),
        "{script}"
    );
    assert!(script.contains("$tenant = ''"), "{script}");
    assert!(script.contains("$result = Get-AzAccessToken @request"));
    assert!(script.contains(
        "$module.Version -ge [version]'2.17.0' -and $module.Version -lt [version]'5.0.0'"
    ));
    assert!(script.contains("$request['AsSecureString'] = $true"));
    assert!(script.contains("ConvertFrom-SecureString -SecureString $token -AsPlainText"));
    assert!(script.contains("PtrToStringBSTR"));
}

#[tokio::test]
async fn the_tenant_of_the_token_is_reported() {
    let s = Setup::new("azure_powershell");
    let jwt = support::jwt::jwt(
        r#"{"tid":"72f988bf-86f1-41af-91ab-2d7cd011db47"}"#,
        "fixture-pwsh-token-signature",
    );
    s.executor.push_output(Output::new(
        Some(0),
        format!("azure-credentials-token%{jwt}%1893459600\n").into_bytes(),
        Vec::new(),
    ));
    let token = s.credential().get_token(&ARM, None).await.unwrap();
    assert_eq!(token.token().expose(), jwt);
    assert_eq!(
        token.tenant_id(),
        Some("72f988bf-86f1-41af-91ab-2d7cd011db47")
    );
}

#[tokio::test]
async fn tenants_reach_the_script_and_are_checked() {
    let s = Setup::new("azure_powershell");
    s.executor
        .repeat_output(tool_output("azure_powershell", "success"));
    let credential = s.builder().tenant_id(TENANT_B).build().unwrap();
    credential.get_token(&ARM, None).await.unwrap();
    assert!(
        s.script().contains(&format!("$tenant = '{TENANT_B}'")),
        "{}",
        s.script()
    );

    let other = TokenRequestOptions::default().with_tenant_id("contoso.onmicrosoft.com");
    s.credential().get_token(&ARM, Some(&other)).await.unwrap();
    assert!(s.script().contains("$tenant = 'contoso.onmicrosoft.com'"));
    let runs = s.executor.run_count();
    let err = credential.get_token(&ARM, Some(&other)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(s.executor.run_count(), runs);

    // With multi-tenant authentication off, a requested tenant stays out of the script.
    let credential = s
        .builder()
        .env(Setup::env(&[(
            "AZURE_IDENTITY_DISABLE_MULTITENANTAUTH",
            "1",
        )]))
        .build()
        .unwrap();
    let b = TokenRequestOptions::default().with_tenant_id(TENANT_B);
    credential.get_token(&ARM, Some(&b)).await.unwrap();
    assert!(s.script().contains("$tenant = ''"));
    assert!(!s.script().contains(TENANT_B));
}

#[tokio::test]
async fn failures_are_classified() {
    for (case, ..) in FAILURES {
        let s = Setup::new("azure_powershell");
        s.replays(case);
        let err = s.credential().get_token(&ARM, None).await.unwrap_err();
        assert_failure(case, &err);
    }
}

#[tokio::test]
async fn a_claims_challenge_names_the_connect_command_and_runs_nothing() {
    let s = Setup::new("azure_powershell");
    let options = TokenRequestOptions::default()
        .with_claims(r#"{"access_token":{}}"#)
        .with_tenant_id(TENANT_B);
    let err = s
        .credential()
        .get_token(&ARM, Some(&options))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
    assert!(err.to_string().contains("claims challenge"), "{err}");
    assert!(
        err.fix().unwrap().contains(&format!(
            "`Connect-AzAccount -ClaimsChallenge eyJhY2Nlc3NfdG9rZW4iOnt9fQ== -Tenant {TENANT_B}`"
        )),
        "{err:?}"
    );
    assert_eq!(s.executor.run_count(), 0);
}

#[tokio::test]
async fn timeout_names_the_option_and_invalid_input_runs_nothing() {
    let s = Setup::new("azure_powershell");
    let credential = s.credential();
    s.assert_timeout_names_the_option("pwsh", &credential, "AzurePowerShellCredential")
        .await;
    let runs = s.executor.run_count();
    for scopes in [
        &["bad scope"][..],
        &[],
        &[ARM[0], "https://vault.azure.net/.default"],
        &["https://x/.default'; Remove-Item ~; '"],
    ] {
        let err = s.credential().get_token(scopes, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{scopes:?}");
    }
    assert_eq!(s.executor.run_count(), runs);
    for tenant in ["bad tenant", "contoso'; Remove-Item ~; '"] {
        let err = s.builder().tenant_id(tenant).build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}

#[tokio::test]
async fn without_pwsh_on_path_it_is_unavailable() {
    let s = Setup::new("azure_powershell");
    let err = s
        .builder()
        .env(Env::from_pairs([("PATH", "/nonexistent")]))
        .build()
        .unwrap()
        .get_token(&ARM, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains("pwsh was not found on PATH"),
        "{err}"
    );
    assert!(err.fix().unwrap().contains("aka.ms/install-powershell"));
    assert_eq!(s.executor.run_count(), 0);
}

#[tokio::test]
async fn cached_until_the_powershell_context_changes() {
    let s = Setup::new("azure_powershell");
    s.executor
        .repeat_output(tool_output("azure_powershell", "success"));
    let context = Path::new("/home/dev/.Azure/AzureRmContext.json");
    s.fs.write(context, r#"{"DefaultContextKey":"a"}"#);
    let credential = s.credential();
    credential.get_token(&ARM, None).await.unwrap();
    credential.get_token(&ARM, None).await.unwrap();
    assert_eq!(s.executor.run_count(), 1);
    s.fs.write(
        context,
        r#"{"DefaultContextKey":"b (after Connect-AzAccount)"}"#,
    );
    s.clock.advance(Duration::from_secs(1));
    credential.get_token(&ARM, None).await.unwrap();
    assert_eq!(s.executor.run_count(), 2);
}

/// The recorded cases again, replayed by a real process.
#[cfg(unix)]
mod real_process {
    use super::*;

    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use azure_credentials::system::TokioExecutor;

    /// A `pwsh` in a scratch directory that replays `case` and logs its arguments.
    struct StandIn {
        dir: PathBuf,
    }

    impl StandIn {
        fn new(case: &str) -> Self {
            let dir = fixtures::scratch_dir("pwsh", case);
            let pwsh = dir.join("pwsh");
            std::fs::write(
                &pwsh,
                format!(
                    "#!/bin/sh\nexec /bin/sh '{}' '{}' '{}' \"$@\"\n",
                    fixtures::path("azure_powershell/stand_in.sh").display(),
                    fixtures::path("azure_powershell").join(case).display(),
                    dir.join("args").display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&pwsh, std::fs::Permissions::from_mode(0o755)).unwrap();
            StandIn { dir }
        }

        fn credential(&self, cache: &TokenCache) -> AzurePowerShellCredential {
            AzurePowerShellCredential::builder()
                .env(Env::from_pairs([
                    ("PATH", self.dir.to_str().unwrap()),
                    ("HOME", self.dir.to_str().unwrap()),
                ]))
                .executor(Arc::new(TokioExecutor::new()))
                .cache(cache.clone())
                .build()
                .unwrap()
        }

        fn args(&self) -> Vec<String> {
            let log = std::fs::read_to_string(self.dir.join("args")).unwrap();
            log.lines().map(str::to_owned).collect()
        }
    }

    impl Drop for StandIn {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[tokio::test]
    async fn a_real_stand_in_gets_the_encoded_script_and_answers() {
        let s = Setup::new("azure_powershell");
        let stand_in = StandIn::new("success");
        let token = stand_in
            .credential(&s.cache)
            .get_token(&["https://vault.azure.net/.default"], None)
            .await
            .unwrap();
        assert_eq!(token.token().expose(), "fixture-pwsh-token-success");
        let script = script_of(&stand_in.args());
        assert!(
            script.contains("ResourceUrl = 'https://vault.azure.net'"),
            "{script}"
        );
    }

    #[tokio::test]
    async fn real_stand_ins_fail_as_recorded() {
        for (case, ..) in FAILURES {
            let s = Setup::new("azure_powershell");
            let stand_in = StandIn::new(case);
            let err = stand_in
                .credential(&s.cache)
                .get_token(&ARM, None)
                .await
                .unwrap_err();
            assert_failure(case, &err);
        }
    }

    // Paused time: the 10 s limit passes as soon as the runtime has nothing else to do, and
    // the stand-in (waiting 30 s) is killed with its process group.
    #[tokio::test(start_paused = true)]
    async fn a_stand_in_that_hangs_times_out_after_ten_seconds() {
        let s = Setup::new("azure_powershell");
        let stand_in = StandIn::new("hang");
        let err = stand_in
            .credential(&s.cache)
            .get_token(&ARM, None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(
            err.to_string().contains("pwsh did not finish within 10 s"),
            "{err}"
        );
    }
}
