//! Opening the sign-in page: the system's opener (`xdg-open`, `open`, the Windows URL
//! handler), started detached so the user's browser outlives the sign-in, or a
//! [`BrowserCommand`] run through the [`Executor`] for the sign-in's duration.

use std::ffi::OsString;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use crate::system::resolve_program;
use crate::system::{Command, Env, Executor};

/// A browser program for [`InteractiveBrowserCredential`](crate::InteractiveBrowserCredential)
/// to show the sign-in page in, instead of the system's default browser: `program`, then
/// `args`, then the page's URL as the last argument.
///
/// It runs through the credential's [`Executor`] while the sign-in lasts and is **stopped when
/// the sign-in ends** (signed in, failed, timed out or cancelled): for a browser dedicated to
/// the sign-in, such as a kiosk window or a headless browser in tests. The system's default
/// browser (the default) is started detached instead, and keeps running.
///
/// ```
/// use azure_credentials::BrowserCommand;
///
/// let chromium = BrowserCommand::new("chromium")
///     .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]);
/// # let _ = chromium;
/// ```
#[derive(Clone, Debug)]
pub struct BrowserCommand {
    program: OsString,
    args: Vec<OsString>,
}

impl BrowserCommand {
    /// Runs `program` (found in `PATH` unless it names a path).
    pub fn new(program: impl Into<OsString>) -> Self {
        BrowserCommand {
            program: program.into(),
            args: Vec::new(),
        }
    }

    /// Arguments before the URL.
    pub fn args(mut self, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
}

/// How the sign-in page is shown.
#[derive(Clone, Debug)]
pub(crate) enum Launcher {
    /// The system's opener, detached.
    System,
    /// A program through the executor, stopped when the sign-in ends.
    Command {
        command: BrowserCommand,
        executor: Arc<dyn Executor>,
    },
}

impl Launcher {
    /// Shows `url`. Returns when the opener has finished (or, for a [`BrowserCommand`], when
    /// the browser exits): `Ok` when it seems to have worked, `Err(why)` when no browser could
    /// be opened. The future may be dropped at any time (the sign-in ended): a browser command
    /// is then stopped, the system's opener is not.
    pub(crate) async fn open(&self, url: &str, env: &Env, limit: Duration) -> Result<(), String> {
        match self {
            Launcher::System => open_system(url, env).await,
            Launcher::Command { command, executor } => {
                let run = Command::new(command.program.clone())
                    .args(command.args.iter())
                    .arg(url)
                    .timeout(limit);
                let name = command.program.to_string_lossy().into_owned();
                match executor.run(&run).await {
                    Ok(output) if output.success() => Ok(()),
                    Ok(output) => Err(match output.code() {
                        Some(code) => format!("{name} exited with code {code}"),
                        None => format!("{name} was stopped by a signal"),
                    }),
                    Err(error) => Err(error.to_string()),
                }
            }
        }
    }
}

/// The system's opener for a URL, and the arguments before the URL.
fn system_opener() -> (&'static str, &'static [&'static str]) {
    if cfg!(target_os = "macos") {
        ("open", &[])
    } else if cfg!(windows) {
        // Not `cmd /c start`: cmd would parse the `&`s of the URL.
        ("rundll32", &["url.dll,FileProtocolHandler"])
    } else {
        ("xdg-open", &[])
    }
}

/// Starts the system's opener detached (its own process group, no stdin or output, never
/// killed by us: it may be the user's browser itself) and waits for it to exit.
async fn open_system(url: &str, env: &Env) -> Result<(), String> {
    let (name, args) = system_opener();
    let Some(program) = resolve_program(env, name) else {
        return Err(format!("{name} was not found in PATH"));
    };
    let mut command = tokio::process::Command::new(&program);
    command
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(false);
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| format!("{name} could not be started: {e}"))?;
    match child.wait().await {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(match status.code() {
            Some(code) => format!("{name} exited with code {code}"),
            None => format!("{name} was stopped by a signal"),
        }),
        Err(e) => Err(format!("{name} could not be waited for: {e}")),
    }
}
