//! Signs a user in and prints who signed in:
//! `cargo run --features persistence,user-sign-in --example sign_in -- --device-code` or `-- --browser`,
//! against a real tenant (any work or school account, through the Azure
//! development client unless `--client-id` names your own), or against the bundled loopback
//! mock of Microsoft Entra ID with `--mock` (no Azure account, no browser: a scripted user).
//!
//! The sign-in's `AuthenticationRecord` (who signed in, no secret) is saved to `--record`
//! (default `sign_in_record.json`). With `--allow-unencrypted` the user's tokens are kept in
//! the persistent token cache (`~/.IdentityService/msal.cache.nocae`, readable by you only), and
//! the next run signs the same user in silently from the record and that cache. With `--mock`
//! the example shows that next run at once: it runs itself again as a second process, which
//! must get a token without anyone signing in (its cache lives under `target/`).
//!
//! Options: `--tenant <id>` (default `organizations`), `--client-id <id>`, `--authority <url>`,
//! `--scope <scope>` (default ARM's), `--record <path>`, `--timeout <seconds>` (default 300).

// A command-line example prints to the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use azure_credentials::system::{Env, TokioExecutor};
use azure_credentials::testing::{MockBrowser, MockEntra, MockUser};
use azure_credentials::{
    AuthenticationRecord, BrowserCommand, DeviceCodeCredential, Error, ErrorKind,
    InteractiveBrowserCredential, TokenCachePersistence, TokenCredential,
};

#[derive(Default, Clone)]
struct Args {
    browser: bool,
    mock: bool,
    second_run: bool,
    allow_unencrypted: bool,
    tenant: Option<String>,
    client_id: Option<String>,
    authority: Option<String>,
    scope: Option<String>,
    record: Option<PathBuf>,
    timeout: Option<u64>,
}

fn parse() -> Option<Args> {
    let mut args = Args::default();
    let mut flow = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--device-code" => flow = Some(false),
            "--browser" => flow = Some(true),
            "--mock" => args.mock = true,
            "--second-run" => args.second_run = true,
            "--allow-unencrypted" => args.allow_unencrypted = true,
            "--tenant" => args.tenant = Some(it.next()?),
            "--client-id" => args.client_id = Some(it.next()?),
            "--authority" => args.authority = Some(it.next()?),
            "--scope" => args.scope = Some(it.next()?),
            "--record" => args.record = Some(it.next()?.into()),
            "--timeout" => args.timeout = Some(it.next()?.parse().ok()?),
            _ => return None,
        }
    }
    args.browser = flow?;
    Some(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(args) = parse() else {
        eprintln!(
            "usage: sign_in (--device-code | --browser) [--mock] [--allow-unencrypted] \
             [--tenant ID] [--client-id ID] [--authority URL] [--scope SCOPE] [--record PATH] \
             [--timeout SECONDS]"
        );
        return ExitCode::from(2);
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Where the mock runs keep their persistent cache: not the user's own home.
fn mock_home() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/sign_in_mock_home")
}

async fn run(mut args: Args) -> Result<(), Error> {
    let scope = args
        .scope
        .clone()
        .unwrap_or_else(|| "https://management.azure.com/.default".to_owned());
    let scopes = [scope.as_str()];
    let record_path = args
        .record
        .clone()
        .unwrap_or_else(|| PathBuf::from("sign_in_record.json"));

    // The mock plays Entra ID and its user; a second run reuses the first run's mock.
    let mock = if args.mock && !args.second_run {
        let entra = MockEntra::start().await;
        entra.set_user(MockUser::new("ada@contoso.example").name("Ada Lovelace"));
        // The scripted user approves at once; poll every second instead of five.
        entra.set_device_code(1, 900);
        args.authority = Some(entra.authority_host());
        let _ = std::fs::remove_dir_all(mock_home());
        let _ = std::fs::remove_file(&record_path);
        Some(entra)
    } else {
        None
    };
    let env = if args.mock {
        Env::process().with("HOME", mock_home().to_string_lossy())
    } else {
        Env::process()
    };
    let persistence = (args.mock || args.allow_unencrypted)
        .then(|| TokenCachePersistence::new().allow_unencrypted_storage(true));
    let saved = std::fs::read_to_string(&record_path)
        .ok()
        .and_then(|json| AuthenticationRecord::deserialize(&json).ok());

    // The options both builders have, set the same way.
    macro_rules! with_options {
        ($builder:expr) => {{
            let mut b = $builder;
            if let Some(v) = &args.authority {
                b = b.authority_host(v);
            }
            if let Some(v) = &args.tenant {
                b = b.tenant_id(v);
            }
            if let Some(v) = &args.client_id {
                b = b.client_id(v);
            }
            if let Some(v) = &persistence {
                b = b.persistence(v.clone());
            }
            b
        }};
    }
    let build = |record: Option<AuthenticationRecord>,
                 silent: bool|
     -> Result<Arc<dyn Credential>, Error> {
        let timeout = Duration::from_secs(args.timeout.unwrap_or(300));
        if args.browser {
            let mut b = InteractiveBrowserCredential::builder()
                .env(env.clone())
                .timeout(timeout)
                .disable_automatic_authentication(silent);
            if args.mock {
                b = b
                    .browser_command(BrowserCommand::new("mock-browser"))
                    .executor(Arc::new(MockBrowser::new()));
            } else {
                b = b.executor(Arc::new(TokioExecutor::new()));
            }
            if let Some(v) = record {
                b = b.authentication_record(v);
            }
            Ok(Arc::new(with_options!(b).build()?))
        } else {
            let mut b = DeviceCodeCredential::builder()
                .env(env.clone())
                .timeout(timeout)
                .disable_automatic_authentication(silent)
                .prompt(|code| eprintln!("{}", code.message()));
            if let Some(v) = record {
                b = b.authentication_record(v);
            }
            Ok(Arc::new(with_options!(b).build()?))
        }
    };

    // A saved record: try that user silently first (the persisted cache has their tokens).
    if let Some(record) = saved
        && let Ok(credential) = build(Some(record.clone()), true)
    {
        match credential.get_token(&scopes, None).await {
            Ok(token) => {
                println!(
                    "signed in silently as {} from {} and the persistent cache (expires {})",
                    token.username().unwrap_or("?"),
                    record_path.display(),
                    token.expires_on()
                );
                return Ok(());
            }
            Err(error) if error.kind() == ErrorKind::AuthenticationRequired => {
                println!(
                    "{} names {}, who must sign in again",
                    record_path.display(),
                    record.username()
                );
            }
            Err(error) => return Err(error),
        }
    }

    if args.second_run {
        return Err(Error::new(
            ErrorKind::AuthenticationRequired,
            "sign_in example",
            "the second run was not silent",
        ));
    }

    let credential = build(None, false)?;
    let record = credential.authenticate(&scopes).await?;
    println!(
        "signed in: {} (tenant {}, home account {})",
        if record.username().is_empty() {
            "(no user name)"
        } else {
            record.username()
        },
        record.tenant_id(),
        record.home_account_id()
    );
    // Through the cache, so the token is persisted with the user's refresh token.
    credential.get_token(&scopes, None).await?;
    std::fs::write(&record_path, record.serialize()).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            "sign_in example",
            format!(
                "could not save the record to {}: {e}",
                record_path.display()
            ),
        )
    })?;
    println!(
        "saved the authentication record (no secret in it) to {}",
        record_path.display()
    );
    match &persistence {
        Some(_) => println!(
            "the user's tokens are kept in the persistent token cache: the next run is silent"
        ),
        None => println!(
            "tokens were not persisted (pass --allow-unencrypted to keep them in ~/.IdentityService, readable by you only): the next run signs in again"
        ),
    }

    if let Some(entra) = &mock {
        // The next run, as another process, against the same mock.
        let status = std::process::Command::new(std::env::current_exe().map_err(|e| {
            Error::new(
                ErrorKind::Io,
                "sign_in example",
                format!("could not find this program: {e}"),
            )
        })?)
        .args([
            if args.browser {
                "--browser"
            } else {
                "--device-code"
            },
            "--mock",
            "--second-run",
        ])
        .args(["--authority", &entra.authority_host()])
        .arg("--record")
        .arg(&record_path)
        .status()
        .map_err(|e| {
            Error::new(
                ErrorKind::Io,
                "sign_in example",
                format!("could not run the second process: {e}"),
            )
        })?;
        println!(
            "second process: {} ({} requests reached the mock in all)",
            if status.success() {
                "signed in silently"
            } else {
                "FAILED"
            },
            entra.request_count()
        );
        if !status.success() {
            return Err(Error::new(
                ErrorKind::Other,
                "sign_in example",
                "the second run was not silent",
            ));
        }
    }
    Ok(())
}

/// What the example needs of either credential.
trait Credential: TokenCredential {
    fn authenticate<'a>(
        &'a self,
        scopes: &'a [&'a str],
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<AuthenticationRecord, Error>> + 'a>,
    >;
}

impl Credential for DeviceCodeCredential {
    fn authenticate<'a>(
        &'a self,
        scopes: &'a [&'a str],
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<AuthenticationRecord, Error>> + 'a>,
    > {
        Box::pin(DeviceCodeCredential::authenticate(self, scopes))
    }
}

impl Credential for InteractiveBrowserCredential {
    fn authenticate<'a>(
        &'a self,
        scopes: &'a [&'a str],
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<AuthenticationRecord, Error>> + 'a>,
    > {
        Box::pin(InteractiveBrowserCredential::authenticate(self, scopes))
    }
}
