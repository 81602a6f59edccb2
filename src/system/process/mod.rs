//! The process seam: [`Executor`] runs a [`Command`] and hands back its [`Output`].
//!
//! The developer-tool credentials (`az`, `azd`) reach their tools only through an
//! `Arc<dyn Executor>`: [`TokioExecutor`] in production, a scripted executor in tests. A child's
//! stdout carries an access token and its stderr can too, so neither ever reaches `Debug`, an
//! error message or a log line.
//!
//! Where things live: the [`Executor`] trait here; [`Command`] in `command.rs`, [`Output`] in
//! `output.rs`, [`ProcessError`] in `error.rs`, [`TokioExecutor`] (spawn, caps, timeout, group
//! kill) in `executor.rs`, the `PATH` search in `resolve.rs`.

mod command;
mod error;
mod executor;
mod output;
mod resolve;
#[cfg(test)]
mod tests;

use std::fmt;

use async_trait::async_trait;

pub use command::Command;
pub use error::{ProcessError, ProcessErrorKind};
pub use executor::TokioExecutor;
pub use output::Output;
pub(crate) use resolve::resolve_program;

/// Runs child processes: the seam between the developer-tool credentials and the operating
/// system.
///
/// Credentials hold an `Arc<dyn Executor>`; production uses [`TokioExecutor`], tests script the
/// output. An implementation must run the program directly with its discrete arguments (never
/// through a shell), honour the command's [timeout](Command::get_timeout) and
/// [output cap](Command::get_max_output), and never put the child's output in an error.
///
/// A scripted executor for a test:
///
/// ```
/// use async_trait::async_trait;
/// use azure_credentials::system::{Command, Executor, Output, ProcessError};
///
/// #[derive(Debug)]
/// struct LoggedOut;
///
/// #[async_trait]
/// impl Executor for LoggedOut {
///     async fn run(&self, _command: &Command) -> Result<Output, ProcessError> {
///         Ok(Output::new(Some(1), Vec::new(), b"ERROR: Please run 'az login'".to_vec()))
///     }
/// }
/// ```
#[async_trait]
pub trait Executor: Send + Sync + fmt::Debug {
    /// Runs `command` to completion and returns its exit status and (capped) output.
    ///
    /// A non-zero exit status is an `Ok` [`Output`]: only failing to start, wait for or read
    /// from the program, or running out of time, is a [`ProcessError`].
    async fn run(&self, command: &Command) -> Result<Output, ProcessError>;
}
