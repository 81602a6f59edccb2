//! AzureDeveloperCliCredential: every output and failure in `fixtures/azure_developer_cli/`
//! through a scripted executor, its command line, validation, caching, and a real stand-in.

mod support;
use support::fixtures;
use support::tools::{self, Setup, TENANT_B, last_args};

use std::path::Path;
use std::time::Duration;

use azure_credentials::system::{Env, Output};
use azure_credentials::{
    AzureDeveloperCliCredential, AzureDeveloperCliCredentialBuilder, ErrorKind, TokenCredential,
    TokenRequestOptions,
};
use time::macros::datetime;

const ARM: [&str; 1] = ["https://management.azure.com/.default"];

/// `azd` "on PATH" (a stand-in that is never run), a home directory, and the `extra` variables.
fn azd_env(extra: &[(&str, &str)]) -> Env {
    tools::tool_env("azure_developer_cli", &[("HOME", "/home/dev")], extra)
}

impl Setup {
    /// A builder on the scripted executor in [`azd_env`].
    fn builder(&self) -> AzureDeveloperCliCredentialBuilder {
        AzureDeveloperCliCredential::builder().context(self.context(azd_env(&[])))
    }

    fn credential(&self) -> AzureDeveloperCliCredential {
        self.builder().build().unwrap()
    }

    fn args(&self) -> Vec<String> {
        last_args(&self.executor)
    }
}

#[tokio::test]
async fn success_parses_utc_expiry_and_runs_the_documented_command() {
    let s = Setup::new("azure_developer_cli");
    s.replays("success");
    let token = s
        .credential()
        .get_token(
            &[
                "https://management.azure.com/.default",
                "https://vault.azure.net/.default",
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(token.token().expose(), "fixture-azd-token-success");
    assert_eq!(token.expires_on(), datetime!(2030-01-01 1:00 UTC));
    assert_eq!(token.source(), "AzureDeveloperCliCredential");
    assert_eq!(
        s.args(),
        [
            "auth",
            "token",
            "--output",
            "json",
            "--no-prompt",
            "--scope",
            "https://management.azure.com/.default",
            "--scope",
            "https://vault.azure.net/.default"
        ]
    );
    let command = s.executor.last_command().unwrap();
    assert_eq!(
        command.program(),
        fixtures::path("azure_developer_cli/bin/azd").as_os_str()
    );
    #[cfg(unix)]
    assert_eq!(command.get_current_dir(), Some(Path::new("/bin")));
}

#[tokio::test]
async fn tenants_go_to_tenant_id() {
    let s = Setup::new("azure_developer_cli");
    s.always_replays("success");
    let credential = s.builder().tenant_id(TENANT_B).build().unwrap();
    credential.get_token(&ARM, None).await.unwrap();
    assert_eq!(s.args()[7..], ["--tenant-id", TENANT_B]);

    let other = TokenRequestOptions::default().with_tenant_id("contoso.onmicrosoft.com");
    s.credential().get_token(&ARM, Some(&other)).await.unwrap();
    assert_eq!(s.args()[7..], ["--tenant-id", "contoso.onmicrosoft.com"]);
    let err = credential.get_token(&ARM, Some(&other)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn failures_are_classified() {
    for (case, kind, text, codes) in [
        (
            "not_logged_in",
            ErrorKind::Unavailable,
            "not logged in: fetching token: not logged in, run `azd auth login` to login",
            &[][..],
        ),
        (
            "not_logged_in_plain",
            ErrorKind::Unavailable,
            "not logged in",
            &[],
        ),
        (
            "aadsts_error",
            ErrorKind::Authentication,
            "azd exited with code 1: fetching token: failed to authenticate:",
            &[70043],
        ),
        ("exit_127", ErrorKind::Unavailable, "azd was not found", &[]),
        ("garbage_stdout", ErrorKind::Other, "not a token reply", &[]),
    ] {
        let s = Setup::new("azure_developer_cli");
        s.replays(case);
        let err = s.credential().get_token(&ARM, None).await.unwrap_err();
        let message = err.to_string();
        assert_eq!(err.kind(), kind, "{case}: {message}");
        assert!(message.contains(text), "{case}: {message}");
        assert_eq!(err.aadsts_codes(), codes, "{case}");
        assert!(!message.contains('\n'), "{case}: {message}");
        assert!(!message.contains("fixture-azd-token"), "{message}");
    }
}

#[tokio::test]
async fn claims_are_passed_on_and_an_old_azd_is_named() {
    let s = Setup::new("azure_developer_cli");
    s.replays("unknown_claims_flag");
    let options = TokenRequestOptions::default().with_claims(r#"{"access_token":{}}"#);
    let err = s
        .credential()
        .get_token(&ARM, Some(&options))
        .await
        .unwrap_err();
    assert!(s.args().ends_with(&[
        "--claims".to_owned(),
        "eyJhY2Nlc3NfdG9rZW4iOnt9fQ==".to_owned()
    ]));
    assert_eq!(err.kind(), ErrorKind::Authentication);
    assert!(err.fix().unwrap().contains("1.18.1"), "{err}");
}

#[tokio::test]
async fn timeout_names_the_option_and_invalid_input_runs_nothing() {
    let s = Setup::new("azure_developer_cli");
    let credential = s.credential();
    s.assert_timeout_names_the_option("azd", &credential, "AzureDeveloperCliCredential")
        .await;
    let runs = s.executor.run_count();
    for scopes in [&["bad scope"][..], &[], &["ok/.default", "x;y"]] {
        let err = s.credential().get_token(scopes, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{scopes:?}");
    }
    assert_eq!(s.executor.run_count(), runs);
    assert_eq!(
        s.builder()
            .tenant_id("bad tenant")
            .build()
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn cached_until_azd_login_changes() {
    let s = Setup::new("azure_developer_cli");
    s.always_replays("success");
    let config = Path::new("/home/dev/.azd/config.json");
    s.fs.write(
        config,
        r#"{"auth":{"account":{"currentUser":{"homeAccountId":"a"}}}}"#,
    );
    let credential = s.credential();
    credential.get_token(&ARM, None).await.unwrap();
    credential.get_token(&ARM, None).await.unwrap();
    assert_eq!(s.executor.run_count(), 1);
    s.fs.write(
        config,
        r#"{"auth":{"account":{"currentUser":{"homeAccountId":"b"}}}}"#,
    );
    s.clock.advance(Duration::from_secs(1));
    credential.get_token(&ARM, None).await.unwrap();
    assert_eq!(s.executor.run_count(), 2);
}

#[cfg(unix)]
#[tokio::test]
async fn a_real_stand_in_answers() {
    let dir = support::tools::stand_in(
        "azd",
        "echo '{\"token\": \"fixture-azd-token-stand-in\", \"expiresOn\": \"2030-01-01T01:00:00Z\"}'\n",
    );
    let s = Setup::new("azure_developer_cli");
    let credential = AzureDeveloperCliCredential::builder()
        .env(Env::from_pairs([("PATH", dir.to_str().unwrap())]))
        .cache(s.cache.clone())
        .build()
        .unwrap();
    let token = credential.get_token(&ARM, None).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(token.token().expose(), "fixture-azd-token-stand-in");
}

#[tokio::test]
async fn disabled_multitenant_auth_keeps_a_requested_tenant_off_the_command_line() {
    let s = Setup::new("azure_developer_cli");
    s.always_replays("success");
    let credential = s
        .builder()
        .env(azd_env(&[("AZURE_IDENTITY_DISABLE_MULTITENANTAUTH", "1")]))
        .build()
        .unwrap();
    let other = TokenRequestOptions::default().with_tenant_id(TENANT_B);
    credential.get_token(&ARM, Some(&other)).await.unwrap();
    assert!(
        !s.args().iter().any(|a| a == "--tenant-id"),
        "{:?}",
        s.args()
    );
    assert!(!s.args().iter().any(|a| a == TENANT_B), "{:?}", s.args());
}

#[tokio::test]
async fn absurd_expiries_never_panic() {
    for expires_on in [
        "9999-12-31T23:59:59-23:59",
        "-9999-01-01T00:00:00+23:59",
        "0000-01-01T00:00:00Z",
        "2030-01-01T00:00:00+99:00",
    ] {
        let s = Setup::new("azure_developer_cli");
        let stdout =
            format!(r#"{{"token": "fixture-azd-token-absurd", "expiresOn": "{expires_on}"}}"#);
        s.executor
            .push_output(Output::new(Some(0), stdout.into_bytes(), Vec::new()));
        // Either refused or served: what matters is an answer, not a panic.
        match s.credential().get_token(&ARM, None).await {
            Ok(token) => assert_eq!(token.token().expose(), "fixture-azd-token-absurd"),
            Err(err) => assert!(!err.to_string().contains("panicked"), "{expires_on}: {err}"),
        }
    }
}

#[tokio::test]
async fn the_token_says_who_and_which_tenant() {
    let s = Setup::new("azure_developer_cli");
    let jwt = support::jwt::jwt(
        &format!(
            r#"{{"tid":"{TENANT_B}","oid":"00000000-0000-0000-0000-0000000000d1","upn":"dev@contoso.example"}}"#
        ),
        "signature",
    );
    let stdout = format!(r#"{{"token": "{jwt}", "expiresOn": "2030-01-01T01:00:00Z"}}"#);
    s.executor
        .push_output(Output::new(Some(0), stdout.into_bytes(), Vec::new()));
    let token = s.credential().get_token(&ARM, None).await.unwrap();
    assert_eq!(token.tenant_id(), Some(TENANT_B));
    assert_eq!(token.username(), Some("dev@contoso.example"));
    assert_eq!(
        token.object_id(),
        Some("00000000-0000-0000-0000-0000000000d1")
    );
}
