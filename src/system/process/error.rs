//! [`ProcessError`] and [`ProcessErrorKind`]: why a program could not be run to completion.

use crate::setters::debug_fields;
use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::time::Duration;

/// The program's file name, for messages and logs: `/usr/bin/az` → `az`.
pub(super) fn program_name(program: &OsStr) -> String {
    if program.is_empty() {
        return "<empty program name>".to_owned();
    }
    Path::new(program)
        .file_name()
        .unwrap_or(program)
        .to_string_lossy()
        .into_owned()
}

/// Why a program could not be run to completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProcessErrorKind {
    /// The program does not exist (on Unix also: its script interpreter does not exist).
    NotFound,
    /// The program exists but may not be executed.
    PermissionDenied,
    /// The program did not finish within the command's timeout and was killed.
    Timeout,
    /// Starting, waiting for or reading from the program failed otherwise.
    Io,
}

/// The error of an [`Executor`](super::Executor): the program could not be started, waited for or
/// read from, or ran out of time.
///
/// The message names the program by file name (`az was not found`,
/// `az did not finish within 10 s and was killed`); the caller adds what to change, such as its
/// timeout option. It never contains the program's output. The underlying I/O error, when
/// there is one, is available through [`std::error::Error::source`].
#[derive(thiserror::Error)]
#[error("{message}")]
pub struct ProcessError {
    kind: ProcessErrorKind,
    program: String,
    message: String,
    #[source]
    source: Option<io::Error>,
}

impl ProcessError {
    /// An error of `kind` for `program` (a name or a path; messages use its file name), for
    /// scripted executors. For [`ProcessErrorKind::Timeout`] prefer
    /// [`ProcessError::timed_out`], whose message names the limit.
    pub fn new(kind: ProcessErrorKind, program: impl AsRef<OsStr>) -> Self {
        let program = program_name(program.as_ref());
        let message = match kind {
            ProcessErrorKind::NotFound => format!("{program} was not found"),
            ProcessErrorKind::PermissionDenied => {
                format!("{program} could not be run: permission denied")
            }
            ProcessErrorKind::Timeout => {
                format!("{program} did not finish in time and was killed")
            }
            ProcessErrorKind::Io => format!("{program} could not be run"),
        };
        ProcessError {
            kind,
            program,
            message,
            source: None,
        }
    }

    /// A [`ProcessErrorKind::Timeout`] error: `program` ran longer than `limit` and was killed.
    pub fn timed_out(program: impl AsRef<OsStr>, limit: Duration) -> Self {
        let program = program_name(program.as_ref());
        let message = format!(
            "{program} did not finish within {} and was killed",
            format_duration(limit)
        );
        ProcessError {
            kind: ProcessErrorKind::Timeout,
            program,
            message,
            source: None,
        }
    }

    /// An [`ProcessErrorKind::Io`] error with its own message and cause.
    pub(super) fn io(name: &str, message: String, source: io::Error) -> Self {
        ProcessError {
            kind: ProcessErrorKind::Io,
            program: name.to_owned(),
            message,
            source: Some(source),
        }
    }

    pub(super) fn with_source(mut self, source: io::Error) -> Self {
        self.source = Some(source);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ProcessErrorKind {
        self.kind
    }

    /// The program's file name, e.g. `az`.
    pub fn program(&self) -> &str {
        &self.program
    }
}

/// `10 s` for whole seconds, `1500 ms` otherwise.
fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

// Written out so that a field added later cannot leak output by derive.
debug_fields!(ProcessError {
    kind,
    program,
    message,
    source
});

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::system::Output;

    #[test]
    fn scripted_outputs_and_errors() {
        let output = Output::new(Some(0), b"{}".to_vec(), Vec::new()).with_truncation(true, false);
        assert!(output.success() && output.stdout_truncated() && !output.stderr_truncated());
        assert_eq!(Output::new(None, Vec::new(), Vec::new()).code(), None);

        let err = ProcessError::new(ProcessErrorKind::NotFound, "/usr/bin/azd");
        assert_eq!(err.to_string(), "azd was not found");
        assert!(err.source().is_none());
        let err = ProcessError::timed_out("az", Duration::from_millis(1500));
        assert_eq!(err.kind(), ProcessErrorKind::Timeout);
        assert_eq!(
            err.to_string(),
            "az did not finish within 1500 ms and was killed"
        );
        assert_eq!(
            ProcessError::new(ProcessErrorKind::Io, "").to_string(),
            "<empty program name> could not be run"
        );
    }
}
