//! [`ScriptedExecutor`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::system::{Command, Executor, Output, ProcessError, ProcessErrorKind};

/// An [`Executor`] that runs nothing: each run takes the next scripted result, and every
/// [`Command`] it was given is recorded. For testing the developer-tool credentials (`az`,
/// `azd`) without the tools.
///
/// Cloning gives another handle to the same script and records, so a test keeps one handle and
/// gives the credential an `Arc` of another. A run with nothing scripted fails with a
/// [`ProcessErrorKind::Io`] error, never hangs.
///
/// ```
/// use std::sync::Arc;
/// use azure_credentials::system::{Command, Executor, Output};
/// use azure_credentials::testing::ScriptedExecutor;
///
/// # async fn run() {
/// let executor = ScriptedExecutor::new();
/// executor.push_output(Output::new(Some(1), Vec::new(), b"ERROR: Please run 'az login' to setup account.".to_vec()));
/// let output = executor.run(&Command::new("az").arg("account")).await.unwrap();
/// assert_eq!(output.code(), Some(1));
/// assert_eq!(executor.run_count(), 1);
/// assert_eq!(executor.commands()[0].get_args(), ["account"]);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct ScriptedExecutor {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    script: Mutex<VecDeque<Result<Output, ProcessError>>>,
    repeat: Mutex<Option<Output>>,
    commands: Mutex<Vec<Command>>,
    runs: AtomicUsize,
    held: AtomicUsize,
    delay: Mutex<Duration>,
    gate: Mutex<Option<tokio::sync::watch::Receiver<bool>>>,
}

impl ScriptedExecutor {
    /// An executor with an empty script.
    pub fn new() -> Self {
        ScriptedExecutor::default()
    }

    /// Queues the result of one run.
    pub fn push(&self, result: Result<Output, ProcessError>) {
        self.inner.script.lock().push_back(result);
    }

    /// Queues the output of one run.
    pub fn push_output(&self, output: Output) {
        self.push(Ok(output));
    }

    /// Queues one run that fails with `error`.
    pub fn push_error(&self, error: ProcessError) {
        self.push(Err(error));
    }

    /// Answers every run with `output` once the script is empty (instead of failing).
    pub fn repeat_output(&self, output: Output) {
        *self.inner.repeat.lock() = Some(output);
    }

    /// Makes every run take `delay` first (a `tokio::time::sleep`, so paused time skips it).
    pub fn set_delay(&self, delay: Duration) {
        *self.inner.delay.lock() = delay;
    }

    /// Holds every run (started now or later) at its start until the returned gate is released
    /// or dropped, so a test can observe callers while a process "runs" without timing anything.
    pub fn hold(&self) -> RunGate {
        let (tx, rx) = tokio::sync::watch::channel(false);
        *self.inner.gate.lock() = Some(rx);
        RunGate { tx }
    }

    /// How many runs are waiting at a gate from [`hold`](Self::hold).
    pub fn held(&self) -> usize {
        self.inner.held.load(Ordering::SeqCst)
    }

    /// How many times a command was run (including runs still waiting at a gate).
    pub fn run_count(&self) -> usize {
        self.inner.runs.load(Ordering::SeqCst)
    }

    /// Every command run so far, in order.
    pub fn commands(&self) -> Vec<Command> {
        self.inner.commands.lock().clone()
    }

    /// The most recent command, if any.
    pub fn last_command(&self) -> Option<Command> {
        self.inner.commands.lock().last().cloned()
    }
}

impl fmt::Debug for ScriptedExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Scripted outputs may hold tokens: show counts only.
        f.debug_struct("ScriptedExecutor")
            .field("scripted", &self.inner.script.lock().len())
            .field("runs", &self.run_count())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Executor for ScriptedExecutor {
    async fn run(&self, command: &Command) -> Result<Output, ProcessError> {
        self.inner.runs.fetch_add(1, Ordering::SeqCst);
        self.inner.commands.lock().push(command.clone());
        let gate = self.inner.gate.lock().clone();
        if let Some(mut gate) = gate {
            self.inner.held.fetch_add(1, Ordering::SeqCst);
            // A dropped gate releases too.
            let _ = gate.wait_for(|open| *open).await;
            self.inner.held.fetch_sub(1, Ordering::SeqCst);
        }
        let delay = *self.inner.delay.lock();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let next = self.inner.script.lock().pop_front();
        match next {
            Some(result) => result,
            None => match self.inner.repeat.lock().clone() {
                Some(output) => Ok(output),
                None => Err(ProcessError::new(ProcessErrorKind::Io, command.program())),
            },
        }
    }
}

/// Returned by [`ScriptedExecutor::hold`]: held runs continue when it is released or dropped.
#[derive(Debug)]
pub struct RunGate {
    tx: tokio::sync::watch::Sender<bool>,
}

impl RunGate {
    /// Lets held runs (and later ones) continue.
    pub fn release(self) {}
}

impl Drop for RunGate {
    fn drop(&mut self) {
        let _ = self.tx.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_the_script_in_order_then_fails_or_repeats() {
        let executor = ScriptedExecutor::new();
        executor.push_output(Output::new(Some(0), b"one".to_vec(), Vec::new()));
        executor.push_error(ProcessError::new(ProcessErrorKind::NotFound, "az"));
        let command = Command::new("az").args(["a", "b"]).env("X", "1");
        assert_eq!(executor.run(&command).await.unwrap().stdout(), b"one");
        assert_eq!(
            executor.run(&command).await.unwrap_err().kind(),
            ProcessErrorKind::NotFound
        );
        assert_eq!(
            executor.run(&command).await.unwrap_err().kind(),
            ProcessErrorKind::Io
        );
        executor.repeat_output(Output::new(Some(3), Vec::new(), Vec::new()));
        assert_eq!(executor.run(&command).await.unwrap().code(), Some(3));
        assert_eq!(executor.run_count(), 4);
        assert_eq!(executor.commands().len(), 4);
        assert_eq!(executor.last_command().unwrap().get_args(), ["a", "b"]);
        let printed = format!("{executor:?}");
        assert!(printed.contains("runs: 4"), "{printed}");
    }

    #[tokio::test(start_paused = true)]
    async fn gate_and_delay() {
        let executor = ScriptedExecutor::new();
        executor.repeat_output(Output::new(Some(0), Vec::new(), Vec::new()));
        executor.set_delay(Duration::from_secs(30));
        let gate = executor.hold();
        let task = {
            let executor = executor.clone();
            tokio::spawn(async move { executor.run(&Command::new("az")).await })
        };
        while executor.held() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(!task.is_finished());
        gate.release();
        assert!(task.await.unwrap().unwrap().success());
    }
}
