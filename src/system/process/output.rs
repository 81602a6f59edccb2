//! [`Output`]: what a finished program left.

use std::fmt;

/// What a finished program left: its exit code and its (capped) stdout and stderr.
///
/// Both streams may hold an access token, so `Debug` shows the exit code and the lengths only.
#[derive(Clone)]
pub struct Output {
    pub(super) code: Option<i32>,
    pub(super) stdout: Vec<u8>,
    pub(super) stderr: Vec<u8>,
    pub(super) stdout_truncated: bool,
    pub(super) stderr_truncated: bool,
}

impl Output {
    /// An output with exit code `code` (`None`: killed by a signal), for scripted executors.
    /// Neither stream is marked truncated.
    pub fn new(code: Option<i32>, stdout: Vec<u8>, stderr: Vec<u8>) -> Self {
        Output {
            code,
            stdout,
            stderr,
            stdout_truncated: false,
            stderr_truncated: false,
        }
    }

    /// Marks which streams were cut at the command's output cap.
    #[must_use]
    pub fn with_truncation(mut self, stdout: bool, stderr: bool) -> Self {
        self.stdout_truncated = stdout;
        self.stderr_truncated = stderr;
        self
    }

    /// The exit code; `None` when the program was killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.code
    }

    /// Whether the program exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The program's stdout, up to the command's output cap. May hold a secret.
    pub fn stdout(&self) -> &[u8] {
        &self.stdout
    }

    /// The program's stderr, up to the command's output cap. May hold a secret.
    pub fn stderr(&self) -> &[u8] {
        &self.stderr
    }

    /// Whether the program wrote more to stdout than the cap, so [`stdout`](Output::stdout)
    /// holds only the beginning.
    pub fn stdout_truncated(&self) -> bool {
        self.stdout_truncated
    }

    /// Whether the program wrote more to stderr than the cap.
    pub fn stderr_truncated(&self) -> bool {
        self.stderr_truncated
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("code", &self.code)
            .field("stdout_len", &self.stdout.len())
            .field("stderr_len", &self.stderr.len())
            .field("stdout_truncated", &self.stdout_truncated)
            .field("stderr_truncated", &self.stderr_truncated)
            .finish()
    }
}
