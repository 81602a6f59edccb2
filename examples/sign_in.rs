//! Signs a user in and prints who signed in: `cargo run --example sign_in -- --device-code` or
//! `-- --browser`, against a real tenant (any work or school account, through the Azure
//! development client unless `--client-id` names your own), or against the bundled loopback
//! mock of Microsoft Entra ID with `--mock` (no Azure account, no browser: a scripted user).
//!
//! The sign-in's `AuthenticationRecord` (who signed in, no secret) is saved to `--record`
//! (default `sign_in_record.json`); a later run reads it and asks for that user. Without a
//! persistent token cache the user's refresh token lives only in the process, so a second run
//! still prompts (with the user pre-filled); within one run, a second credential built from
//! the record is silent — the example shows that too.
//!
//! Options: `--tenant <id>` (default `organizations`), `--client-id <id>`, `--scope <scope>`
//! (default ARM's), `--record <path>`, `--timeout <seconds>` (default 300).

// A command-line example prints to the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use azure_credentials::system::{Env, TokioExecutor};
use azure_credentials::testing::{MockBrowser, MockEntra, MockUser};
use azure_credentials::{
    AuthenticationRecord, BrowserCommand, DeviceCodeCredential, Error,
    InteractiveBrowserCredential, TokenCache, TokenCredential,
};

#[derive(Default)]
struct Args {
    browser: bool,
    mock: bool,
    tenant: Option<String>,
    client_id: Option<String>,
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
            "--tenant" => args.tenant = Some(it.next()?),
            "--client-id" => args.client_id = Some(it.next()?),
            "--scope" => args.scope = Some(it.next()?),
            "--record" => args.record = Some(it.next()?.into()),
            "--timeout" => args.timeout = Some(it.next()?.parse().ok()?),
            _ => return None,
        }
    }
    args.browser = flow?;
    Some(args)
}

/// What the example signs in with: a credential of either kind, behind one interface.
enum Credential {
    DeviceCode(DeviceCodeCredential),
    Browser(InteractiveBrowserCredential),
}

impl Credential {
    async fn authenticate(&self, scopes: &[&str]) -> Result<AuthenticationRecord, Error> {
        match self {
            Credential::DeviceCode(c) => c.authenticate(scopes).await,
            Credential::Browser(c) => c.authenticate(scopes).await,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(args) = parse() else {
        eprintln!(
            "usage: sign_in (--device-code | --browser) [--mock] [--tenant ID] [--client-id ID] \
             [--scope SCOPE] [--record PATH] [--timeout SECONDS]"
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

async fn run(args: Args) -> Result<(), Error> {
    let scope = args
        .scope
        .clone()
        .unwrap_or_else(|| "https://management.azure.com/.default".to_owned());
    let scopes = [scope.as_str()];
    let record_path = args
        .record
        .clone()
        .unwrap_or_else(|| PathBuf::from("sign_in_record.json"));
    let saved = std::fs::read_to_string(&record_path)
        .ok()
        .and_then(|json| AuthenticationRecord::deserialize(&json).ok());
    // The mock plays Entra ID and its user; the real thing needs no set-up.
    let mock = if args.mock {
        let entra = MockEntra::start().await;
        entra.set_user(MockUser::new("ada@contoso.example").name("Ada Lovelace"));
        // The scripted user approves at once; poll every second instead of five.
        entra.set_device_code(1, 900);
        Some(entra)
    } else {
        None
    };
    // One cache for the two credentials below: the second finds the user's refresh token.
    let cache = TokenCache::builder().build();
    let build = |record: Option<AuthenticationRecord>| -> Result<Credential, Error> {
        let timeout = Duration::from_secs(args.timeout.unwrap_or(300));
        if args.browser {
            let mut builder = InteractiveBrowserCredential::builder()
                .cache(cache.clone())
                .timeout(timeout);
            if let Some(entra) = &mock {
                builder = builder
                    .authority_host(entra.authority_host())
                    .env(Env::empty())
                    .browser_command(BrowserCommand::new("mock-browser"))
                    .executor(Arc::new(MockBrowser::new()));
            } else {
                builder = builder.executor(Arc::new(TokioExecutor::new()));
            }
            if let Some(tenant) = &args.tenant {
                builder = builder.tenant_id(tenant);
            }
            if let Some(client) = &args.client_id {
                builder = builder.client_id(client);
            }
            if let Some(record) = record {
                builder = builder.authentication_record(record);
            }
            builder.build().map(Credential::Browser)
        } else {
            let mut builder = DeviceCodeCredential::builder()
                .cache(cache.clone())
                .timeout(timeout)
                .prompt(|code| eprintln!("{}", code.message()));
            if let Some(entra) = &mock {
                builder = builder
                    .authority_host(entra.authority_host())
                    .env(Env::empty());
            }
            if let Some(tenant) = &args.tenant {
                builder = builder.tenant_id(tenant);
            }
            if let Some(client) = &args.client_id {
                builder = builder.client_id(client);
            }
            if let Some(record) = record {
                builder = builder.authentication_record(record);
            }
            builder.build().map(Credential::DeviceCode)
        }
    };
    // A record saved against the mock names a port that is gone: only reuse one that matches.
    let saved = saved.filter(|record| match &mock {
        Some(entra) => entra.authority_host().ends_with(record.authority()),
        None => !record.authority().starts_with("127.0.0.1"),
    });
    if let Some(record) = &saved {
        println!(
            "{} names {} (tenant {}); asking for that user",
            record_path.display(),
            record.username(),
            record.tenant_id()
        );
    }

    let credential = build(saved)?;
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
    std::fs::write(&record_path, record.serialize()).map_err(|e| {
        Error::new(
            azure_credentials::ErrorKind::Io,
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

    // A second credential for the same user, in the same process: silent.
    let silent = match build(Some(record))? {
        Credential::DeviceCode(c) => Arc::new(c) as Arc<dyn TokenCredential>,
        Credential::Browser(c) => Arc::new(c) as Arc<dyn TokenCredential>,
    };
    let token = silent.get_token(&scopes, None).await?;
    println!(
        "a second credential built from the record got a token silently: user {}, tenant {}, expires {}",
        token.username().unwrap_or("?"),
        token.tenant_id().unwrap_or("?"),
        token.expires_on()
    );
    Ok(())
}
