//! The real thing: a token for this machine's identity from `DefaultAzureCredential`.
//!
//! ```text
//! cargo run --example get_token -- --scope https://management.azure.com/.default
//!     [--tenant <tenant id>] [--explain] [--json] [--show-token]
//! ```
//!
//! Prints the selected credential, the token's identity and expiry (the token itself only with
//! `--show-token`), or why no credential worked. `--explain` prints what the chain makes of the
//! environment without asking for a token. `--json` prints one JSON object for scripts.
//!
//! Exit codes: 0 a token; 2 bad usage; on an error, the code README.md's table of error kinds
//! gives its kind (`exit_codes_are_the_readme_tables` checks): 2 invalid input; 3 no
//! credential is available here; 4 a credential was refused (authentication failed); 5 a
//! timeout, throttling, a failing identity service (a 5xx, a malformed answer) or another
//! failure.

// A command-line tool prints to the terminal.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use azure_credentials::{
    DefaultAzureCredential, Error, ErrorKind, TokenCredential, TokenRequestOptions,
};

struct Args {
    scope: String,
    tenant: Option<String>,
    explain: bool,
    json: bool,
    show_token: bool,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: get_token [--scope <scope>] [--tenant <tenant id>] [--explain] [--json] [--show-token]\n\
         default scope: https://management.azure.com/.default"
    );
    ExitCode::from(2)
}

fn parse() -> Option<Args> {
    let mut args = Args {
        scope: "https://management.azure.com/.default".to_owned(),
        tenant: None,
        explain: false,
        json: false,
        show_token: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--scope" => args.scope = it.next()?,
            "--tenant" => args.tenant = Some(it.next()?),
            "--explain" => args.explain = true,
            "--json" => args.json = true,
            "--show-token" => args.show_token = true,
            _ => return None,
        }
    }
    Some(args)
}

fn exit_code(error: &Error) -> ExitCode {
    ExitCode::from(exit_status(error.kind()))
}

fn exit_status(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidInput => 2,
        ErrorKind::Unavailable => 3,
        ErrorKind::Authentication | ErrorKind::AuthenticationRequired => 4,
        // Timeout, Throttled, ServiceFailure, Io, Other.
        _ => 5,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(args) = parse() else {
        return usage();
    };
    let credential = match DefaultAzureCredential::new() {
        Ok(credential) => credential,
        Err(error) => {
            eprintln!("{error}");
            return exit_code(&error);
        }
    };
    if args.explain {
        println!("{}", credential.explain());
        return ExitCode::SUCCESS;
    }
    let options = args
        .tenant
        .as_ref()
        .map(|tenant| TokenRequestOptions::default().with_tenant_id(tenant.clone()));
    match credential
        .get_token(&[args.scope.as_str()], options.as_ref())
        .await
    {
        Ok(token) => {
            if args.json {
                let mut out = serde_json::json!({
                    "source": token.source(),
                    "expires_on": token.expires_on().unix_timestamp(),
                    "refresh_on": token.refresh_on().map(|t| t.unix_timestamp()),
                    "tenant_id": token.tenant_id(),
                    "client_id": token.client_id(),
                    "username": token.username(),
                    "object_id": token.object_id(),
                });
                if args.show_token {
                    out["token"] = token.token().expose().into();
                }
                println!("{out}");
            } else {
                println!("source:     {}", token.source());
                println!("tenant:     {}", token.tenant_id().unwrap_or("(unknown)"));
                println!("client id:  {}", token.client_id().unwrap_or("(unknown)"));
                if let Some(user) = token.username() {
                    println!("user:       {user}");
                }
                println!("expires on: {}", token.expires_on());
                if args.show_token {
                    println!("token:      {}", token.token().expose());
                }
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            if args.json {
                let attempts: Vec<_> = error
                    .attempts()
                    .iter()
                    .map(|a| serde_json::json!({"credential": a.credential, "kind": a.error.kind().to_string(), "error": a.error.to_string(), "elapsed_ms": a.elapsed.as_millis() as u64}))
                    .collect();
                let out = serde_json::json!({
                    "error": error.to_string(),
                    "kind": error.kind().to_string(),
                    "attempts": attempts,
                });
                println!("{out}");
            } else {
                eprintln!("{error}");
            }
            exit_code(&error)
        }
    }
}

#[cfg(test)]
#[path = "../tests/support/readme.rs"]
mod readme;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_readme_tables() {
        let rows = readme::table("error-kinds");
        assert_eq!(rows.len(), ErrorKind::ALL.len());
        for (kind, row) in ErrorKind::ALL.iter().zip(&rows) {
            assert_eq!(row[0], format!("`{kind:?}`"));
            assert_eq!(row[3], exit_status(*kind).to_string(), "{kind:?}");
        }
    }
}
