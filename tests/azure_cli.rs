//! AzureCliCredential through a scripted executor: every output and failure recorded in
//! `fixtures/azure_cli/`, the command line it runs, validation, caching and tenants.

mod support;
use support::callers::spawn_callers;
use support::fixtures::{self, tool_output};
use support::tools::{self, Setup, TENANT_A, TENANT_B, last_args};

#[cfg(unix)]
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use azure_credentials::system::{Env, Output, ProcessError, ProcessErrorKind};
use azure_credentials::{
    AzureCliCredential, AzureCliCredentialBuilder, ErrorKind, TokenCredential, TokenRequestOptions,
};
use time::macros::datetime;

const ARM: [&str; 1] = ["https://management.azure.com/.default"];
/// What az is asked for an [`ARM`] token, in its default tenant and subscription.
const AZ_ARGS_FOR_ARM: [&str; 6] = [
    "account",
    "get-access-token",
    "--output",
    "json",
    "--resource",
    "https://management.azure.com",
];

/// `az` "on PATH" (a stand-in that is never run) and a config dir that is empty in the
/// in-memory file system (so the fast path finds nothing), and the `extra` variables.
fn az_env(extra: &[(&str, &str)]) -> Env {
    let config_dir = [("AZURE_CONFIG_DIR", "/home/dev/.azure")];
    tools::tool_env("azure_cli", &config_dir, extra)
}

impl Setup {
    /// A builder on the scripted executor in [`az_env`].
    fn builder(&self) -> AzureCliCredentialBuilder {
        AzureCliCredential::builder().context(self.context(az_env(&[])))
    }

    fn credential(&self) -> AzureCliCredential {
        self.builder().build().unwrap()
    }
}

#[tokio::test]
async fn success_uses_expires_on_and_reports_the_tenant() {
    let s = Setup::new("azure_cli");
    s.replays("success");
    let token = s.credential().get_token(&ARM, None).await.unwrap();
    assert_eq!(token.token().expose(), "fixture-cli-token-success");
    assert_eq!(token.expires_on(), datetime!(2030-01-01 1:00 UTC));
    assert_eq!(token.tenant_id(), Some(TENANT_A));
    assert_eq!(token.source(), "AzureCliCredential");
}

#[tokio::test]
async fn runs_az_with_discrete_arguments_in_a_safe_directory() {
    let s = Setup::new("azure_cli");
    s.replays("success");
    s.credential().get_token(&ARM, None).await.unwrap();
    let command = s.executor.last_command().unwrap();
    assert_eq!(
        command.program(),
        fixtures::path("azure_cli/bin/az").as_os_str()
    );
    assert_eq!(last_args(&s.executor), AZ_ARGS_FOR_ARM);
    let envs: Vec<_> = command
        .get_envs()
        .map(|(k, v)| (k.to_str().unwrap(), v.to_str().unwrap()))
        .collect();
    assert!(envs.contains(&("AZURE_CORE_NO_COLOR", "true")), "{envs:?}");
    assert!(
        envs.contains(&("AZURE_CONFIG_DIR", "/home/dev/.azure")),
        "{envs:?}"
    );
    #[cfg(unix)]
    assert_eq!(command.get_current_dir(), Some(Path::new("/bin")));
    assert_eq!(command.get_timeout(), Duration::from_secs(10));
}

#[tokio::test]
async fn tenant_and_subscription_options_reach_the_command_line() {
    let s = Setup::new("azure_cli");
    s.replays("success_with_tenant");
    let credential = s.builder().tenant_id(TENANT_B).build().unwrap();
    let token = credential.get_token(&ARM, None).await.unwrap();
    // `--tenant` output has no subscription key; the token is still fine.
    assert_eq!(token.token().expose(), "fixture-cli-token-tenant-b");
    assert_eq!(token.tenant_id(), Some(TENANT_B));
    assert_eq!(last_args(&s.executor)[6..], ["--tenant", TENANT_B]);

    s.replays("success");
    let credential = s.builder().subscription("My Subscription").build().unwrap();
    credential.get_token(&ARM, None).await.unwrap();
    // One argument, spaces and all: no shell, no quoting.
    assert_eq!(
        last_args(&s.executor)[6..],
        ["--subscription", "My Subscription"]
    );
}

#[tokio::test]
async fn old_cli_without_expires_on_is_read_as_local_time_or_refused() {
    let s = Setup::new("azure_cli");
    s.replays("success_without_expires_on");
    match s.credential().get_token(&ARM, None).await {
        // The local offset was known: the naive time was read in it.
        Ok(token) => {
            let naive = datetime!(2030-01-01 1:00);
            let offset = time::UtcOffset::local_offset_at(naive.assume_utc()).unwrap();
            assert_eq!(token.expires_on(), naive.assume_offset(offset));
        }
        // Multi-threaded Unix processes cannot read the zone safely: refused, not guessed.
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::Other);
            assert!(err.to_string().contains("2.54"), "{err}");
        }
    }
}

#[tokio::test]
async fn failures_are_classified() {
    struct Case {
        fixture: &'static str,
        kind: ErrorKind,
        message: &'static str,
        codes: &'static [u32],
    }
    let cases = [
        Case {
            fixture: "not_logged_in",
            kind: ErrorKind::Unavailable,
            message: "not logged in: Please run 'az login' to setup account.",
            codes: &[],
        },
        // az's "unexpected error" banner says nothing; the exception at the end of the
        // traceback (the last one of a chain) says what went wrong.
        Case {
            fixture: "refresh_failure_traceback",
            kind: ErrorKind::Authentication,
            message: "az exited with code 1: socket.gaierror: [Errno -3] Temporary failure in name resolution",
            codes: &[],
        },
        Case {
            fixture: "traceback_connection_error",
            kind: ErrorKind::Authentication,
            message: "az exited with code 1: requests.exceptions.ConnectionError: HTTPSConnectionPool(host='login.microsoftonline.com', port=443): Max retries exceeded",
            codes: &[],
        },
        Case {
            fixture: "traceback_key_error",
            kind: ErrorKind::Authentication,
            message: "az exited with code 1: KeyError: 'access_token'",
            codes: &[],
        },
        Case {
            fixture: "traceback_corrupt_token_cache",
            kind: ErrorKind::Authentication,
            message: "az exited with code 1: json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
            codes: &[],
        },
        // A traceback without any ERROR: line: az failed before it could log.
        Case {
            fixture: "config_duplicate_section",
            kind: ErrorKind::Authentication,
            message: "az exited with code 1: configparser.DuplicateSectionError: While reading from '/home/dev/.azure/config' [line 4]: section 'core' already exists",
            codes: &[],
        },
        Case {
            fixture: "traceback_with_token",
            kind: ErrorKind::Authentication,
            message: "az exited with code 1: ValueError: refresh_token=<redacted> rejected: Bearer <redacted>",
            codes: &[],
        },
        Case {
            fixture: "aadsts_refresh_rejected",
            kind: ErrorKind::Authentication,
            message: "AADSTS700082: The refresh token has expired due to inactivity.",
            codes: &[700082],
        },
        Case {
            fixture: "aadsts_mfa_required",
            kind: ErrorKind::Authentication,
            message: "AADSTS50076",
            codes: &[50076],
        },
        Case {
            fixture: "unknown_subscription",
            kind: ErrorKind::Authentication,
            message: "Subscription 'nope' not found.",
            codes: &[],
        },
        Case {
            fixture: "tenant_and_subscription",
            kind: ErrorKind::Authentication,
            message: "Please specify only one of subscription and tenant",
            codes: &[],
        },
        Case {
            fixture: "unrecognized_arguments",
            kind: ErrorKind::Authentication,
            message: "az exited with code 2: unrecognized arguments",
            codes: &[],
        },
        Case {
            fixture: "exit_127",
            kind: ErrorKind::Unavailable,
            message: "az was not found on PATH",
            codes: &[],
        },
        Case {
            fixture: "garbage_stdout",
            kind: ErrorKind::Other,
            message: "returned output that is not a token reply",
            codes: &[],
        },
        Case {
            fixture: "empty_token",
            kind: ErrorKind::Other,
            message: "returned an empty token",
            codes: &[],
        },
    ];
    for case in cases {
        let s = Setup::new("azure_cli");
        s.replays(case.fixture);
        let err = s.credential().get_token(&ARM, None).await.unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), case.kind, "{}: {text}", case.fixture);
        assert!(text.starts_with("AzureCliCredential: "), "{text}");
        assert!(text.contains(case.message), "{}: {text}", case.fixture);
        assert_eq!(err.aadsts_codes(), case.codes, "{}", case.fixture);
        assert!(err.fix().is_some(), "{}: no fix in {text}", case.fixture);
        // One line, never the traceback, never a token.
        assert!(!text.contains('\n'), "{}: {text}", case.fixture);
        assert!(!text.contains("fixture-cli-token"), "{text}");
        assert!(!text.contains("Traceback"), "{text}");
        assert!(!text.contains("The command failed"), "{text}");
        assert!(!text.contains("eyJ") && !text.contains("0.ARoA"), "{text}");
    }
}

#[tokio::test]
async fn huge_stdout_is_refused_without_echoing_it() {
    let s = Setup::new("azure_cli");
    let mut huge = tool_output("azure_cli", "success").stdout().to_vec();
    huge.extend(std::iter::repeat_n(b' ', 4 * 1024 * 1024));
    s.executor
        .push_output(Output::new(Some(0), huge, Vec::new()).with_truncation(true, false));
    let err = s.credential().get_token(&ARM, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(
        err.to_string().contains("more output than a token reply"),
        "{err}"
    );
    assert!(!err.to_string().contains("fixture-cli-token"));
    // The credential asks the executor to keep little of a runaway stream.
    assert!(s.executor.last_command().unwrap().get_max_output() <= 1024 * 1024);
}

#[tokio::test]
async fn process_errors_are_classified() {
    let s = Setup::new("azure_cli");
    s.executor
        .push_error(ProcessError::new(ProcessErrorKind::NotFound, "az"));
    let err = s.credential().get_token(&ARM, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("install the Azure CLI"), "{err}");

    s.executor
        .push_error(ProcessError::timed_out("az", Duration::from_secs(10)));
    let err = s.credential().get_token(&ARM, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(
        err.to_string()
            .contains("az did not finish within 10 s and was killed"),
        "{err}"
    );
    assert!(
        err.fix()
            .unwrap()
            .contains("AzureCliCredential::builder().process_timeout("),
        "{err}"
    );

    s.executor
        .push_error(ProcessError::new(ProcessErrorKind::PermissionDenied, "az"));
    let err = s.credential().get_token(&ARM, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn az_missing_from_path_is_unavailable_and_nothing_runs() {
    let s = Setup::new("azure_cli");
    let credential = s
        .builder()
        .env(Env::from_pairs([(
            "PATH",
            "/nonexistent-azure-credentials-dir",
        )]))
        .build()
        .unwrap();
    let err = credential.get_token(&ARM, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.to_string().contains("az was not found on PATH"),
        "{err}"
    );
    assert_eq!(s.executor.run_count(), 0);
}

#[tokio::test]
async fn injection_attempts_are_refused_before_anything_runs() {
    let s = Setup::new("azure_cli");
    for scope in [
        "https://management.azure.com/.default; rm -rf ~",
        "https://x/.default\" --subscription \"evil",
        "$(curl evil)",
        "",
    ] {
        let err = s.credential().get_token(&[scope], None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{scope}");
    }
    let err = s
        .credential()
        .get_token(&["https://a/.default", "https://b/.default"], None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let options = TokenRequestOptions::default().with_tenant_id("tenant; az logout");
    let err = s
        .credential()
        .get_token(&ARM, Some(&options))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(s.executor.run_count(), 0);

    for bad in [
        s.builder().tenant_id("a b").build(),
        s.builder().tenant_id("x&y").build(),
        s.builder().subscription("sub\"; evil").build(),
        s.builder().subscription("   ").build(),
        s.builder()
            .additionally_allowed_tenants(["ok", "no way"])
            .build(),
        s.builder()
            .tenant_id(TENANT_A)
            .subscription("My Subscription")
            .build(),
    ] {
        assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}

#[tokio::test]
async fn tokens_are_cached_and_concurrent_callers_share_one_run() {
    let s = Setup::new("azure_cli");
    s.always_replays("success");
    let gate = s.executor.hold();
    let credential = Arc::new(s.credential());
    let tasks = spawn_callers(&credential, &ARM, 50);
    while s.executor.held() == 0 {
        tokio::task::yield_now().await;
    }
    gate.release();
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap().token().expose(),
            "fixture-cli-token-success"
        );
    }
    assert_eq!(s.executor.run_count(), 1);
    // Later calls are cache hits, also through another instance of the same configuration.
    credential.get_token(&ARM, None).await.unwrap();
    s.credential().get_token(&ARM, None).await.unwrap();
    assert_eq!(s.executor.run_count(), 1);
    // Past the token's hard limit the cache runs az again.
    s.clock.advance(Duration::from_secs(3600 - 20));
    credential.get_token(&ARM, None).await.unwrap();
    assert_eq!(s.executor.run_count(), 2);
}

#[tokio::test]
async fn per_request_tenants_follow_the_allow_list() {
    let s = Setup::new("azure_cli");
    s.always_replays("success_with_tenant");
    let other = TokenRequestOptions::default().with_tenant_id(TENANT_B);

    // No tenant configured: any tenant may be requested, with --tenant.
    s.credential().get_token(&ARM, Some(&other)).await.unwrap();
    assert_eq!(last_args(&s.executor)[6..], ["--tenant", TENANT_B]);

    // A configured tenant: others only when allowed.
    let fixed = s.builder().tenant_id(TENANT_A).build().unwrap();
    let err = fixed.get_token(&ARM, Some(&other)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("additionally_allowed_tenants"),
        "{err}"
    );
    let allowed = s
        .builder()
        .tenant_id(TENANT_A)
        .additionally_allowed_tenants([TENANT_B])
        .build()
        .unwrap();
    allowed.get_token(&ARM, Some(&other)).await.unwrap();
    assert_eq!(last_args(&s.executor)[6..], ["--tenant", TENANT_B]);
    let env_allowed = s
        .builder()
        .tenant_id(TENANT_A)
        .env(Env::from_pairs([
            ("PATH", fixtures::path("azure_cli/bin").to_str().unwrap()),
            ("AZURE_ADDITIONALLY_ALLOWED_TENANTS", "*"),
        ]))
        .build()
        .unwrap();
    env_allowed.get_token(&ARM, Some(&other)).await.unwrap();

    // A subscription and a tenant cannot both go to az.
    let with_subscription = s.builder().subscription("My Subscription").build().unwrap();
    let err = with_subscription
        .get_token(&ARM, Some(&other))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn a_claims_challenge_names_the_az_login_command() {
    let s = Setup::new("azure_cli");
    let options = TokenRequestOptions::default()
        .with_claims(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#);
    let credential = s.builder().tenant_id(TENANT_A).build().unwrap();
    let err = credential
        .get_token(&ARM, Some(&options))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication);
    let expected = format!(
        "az login --claims-challenge eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19 --scope https://management.azure.com/.default --tenant {TENANT_A}"
    );
    assert!(err.fix().unwrap().contains(&expected), "{err}");
    assert_eq!(s.executor.run_count(), 0);
}

#[tokio::test]
async fn timeout_option_reaches_the_command() {
    let s = Setup::new("azure_cli");
    s.replays("success");
    let credential = s
        .builder()
        .process_timeout(Duration::from_secs(45))
        .build()
        .unwrap();
    credential.get_token(&ARM, None).await.unwrap();
    assert_eq!(
        s.executor.last_command().unwrap().get_timeout(),
        Duration::from_secs(45)
    );
}

#[test]
fn debug_shows_configuration_only() {
    let s = Setup::new("azure_cli");
    let credential = s.builder().subscription("My Subscription").build().unwrap();
    let printed = format!("{credential:?}");
    assert!(printed.contains("My Subscription"), "{printed}");
    assert!(printed.contains("timeout"), "{printed}");
}

#[tokio::test]
async fn disabled_multitenant_auth_keeps_a_requested_tenant_off_the_command_line() {
    let s = Setup::new("azure_cli");
    s.always_replays("success");
    let credential = s
        .builder()
        .env(az_env(&[(
            "AZURE_IDENTITY_DISABLE_MULTITENANTAUTH",
            "true",
        )]))
        .build()
        .unwrap();
    let other = TokenRequestOptions::default().with_tenant_id(TENANT_B);
    credential.get_token(&ARM, Some(&other)).await.unwrap();
    // az's default tenant, as without a requested tenant.
    assert_eq!(last_args(&s.executor), AZ_ARGS_FOR_ARM);
}

#[tokio::test]
async fn absurd_expiries_from_az_never_panic() {
    for expires_on in [
        "-9223372036854775808",
        "9223372036854775807",
        "\"-9223372036854775808\"",
        "\"99999999999999999999\"",
        "1e300",
    ] {
        let s = Setup::new("azure_cli");
        let stdout = format!(
            r#"{{"accessToken": "fixture-cli-token-absurd", "expires_on": {expires_on}, "tokenType": "Bearer"}}"#
        );
        s.executor
            .push_output(Output::new(Some(0), stdout.into_bytes(), Vec::new()));
        let err = s.credential().get_token(&ARM, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Other, "{expires_on}: {err}");
        assert!(
            err.to_string().contains("expiry") || err.to_string().contains("not a token reply"),
            "{expires_on}: {err}"
        );
    }
    for expires_on_local in ["9999-12-31 23:59:59.000000", "0001-01-01 00:00:00.000000"] {
        let s = Setup::new("azure_cli");
        let stdout = format!(
            r#"{{"accessToken": "fixture-cli-token-absurd", "expiresOn": "{expires_on_local}"}}"#
        );
        s.executor
            .push_output(Output::new(Some(0), stdout.into_bytes(), Vec::new()));
        if let Err(err) = s.credential().get_token(&ARM, None).await {
            assert!(
                !err.to_string().contains("panicked"),
                "{expires_on_local}: {err}"
            );
        }
    }
}
