//! [`Command`]: what to run, with which arguments, environment additions, limits.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::setters::setters;

/// How long a [`Command`] may run unless told otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many bytes of each stream a [`Command`] keeps unless told otherwise (1 MiB).
const DEFAULT_MAX_OUTPUT: usize = 1024 * 1024;

/// A program to run: its arguments, environment additions, working directory, timeout and
/// output cap.
///
/// `Debug` shows the program, the arguments and the *names* of the added variables, never
/// their values.
///
/// ```
/// use std::time::Duration;
/// use azure_credentials::system::Command;
///
/// let command = Command::new("az")
///     .args(["account", "get-access-token", "--output", "json"])
///     .env("AZURE_CORE_NO_COLOR", "true")
///     .timeout(Duration::from_secs(30));
/// assert_eq!(command.get_args().len(), 4);
/// assert_eq!(command.get_timeout(), Duration::from_secs(30));
/// assert_eq!(command.get_max_output(), 1024 * 1024);
/// ```
#[derive(Clone)]
pub struct Command {
    pub(super) program: OsString,
    pub(super) args: Vec<OsString>,
    pub(super) envs: Vec<(OsString, OsString)>,
    pub(super) current_dir: Option<PathBuf>,
    pub(super) timeout: Duration,
    pub(super) max_output: usize,
}

impl Command {
    /// A command that runs `program` (a file name looked up in `PATH` by the operating system,
    /// or a path) with no arguments, a 10 s timeout and 1 MiB of output kept per stream.
    pub fn new(program: impl Into<OsString>) -> Self {
        Command {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            current_dir: None,
            timeout: DEFAULT_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
        }
    }

    /// Adds one argument, passed to the program as is (no shell interprets it).
    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Adds arguments, each passed to the program as is.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets `name=value` in the child's environment, on top of the inherited one. Setting the
    /// same name again replaces the value.
    #[must_use]
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        let (name, value) = (name.as_ref(), value.as_ref().to_os_string());
        match self.envs.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.envs.push((name.to_os_string(), value)),
        }
        self
    }

    /// Runs the program in `dir` instead of the current directory.
    #[must_use]
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    setters! {
        /// Bounds the whole run, from spawn until the program has exited and closed its output;
        /// past it the program is killed. The default is 10 s.
        #[must_use]
        timeout(timeout: Duration) => timeout;

        /// How many bytes of stdout, and separately of stderr, to keep; the rest is read and
        /// dropped. The default is 1 MiB.
        #[must_use]
        max_output(max_output: usize) => max_output;
    }

    /// The program to run.
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments, in order.
    pub fn get_args(&self) -> &[OsString] {
        &self.args
    }

    /// The variables added to the inherited environment, in the order first set.
    pub fn get_envs(&self) -> impl ExactSizeIterator<Item = (&OsStr, &OsStr)> {
        self.envs
            .iter()
            .map(|(n, v)| (n.as_os_str(), v.as_os_str()))
    }

    /// The working directory, when one was set.
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.current_dir.as_deref()
    }

    /// The limit on the whole run.
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }

    /// How many bytes of each stream are kept.
    pub fn get_max_output(&self) -> usize {
        self.max_output
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values of added variables may be secret; their names are not.
        let env_names: Vec<&OsStr> = self.envs.iter().map(|(n, _)| n.as_os_str()).collect();
        f.debug_struct("Command")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env_names", &env_names)
            .field("current_dir", &self.current_dir)
            .field("timeout", &self.timeout)
            .field("max_output", &self.max_output)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_defaults_and_debug_hide_env_values() {
        let command = Command::new("/usr/bin/az")
            .args(["account", "get-access-token"])
            .env("AZURE_CONFIG_DIR", "secret-looking-value")
            .current_dir("/tmp");
        assert_eq!(command.program(), "/usr/bin/az");
        assert_eq!(command.get_args(), ["account", "get-access-token"]);
        assert_eq!(
            command.get_envs().collect::<Vec<_>>(),
            [(
                OsStr::new("AZURE_CONFIG_DIR"),
                OsStr::new("secret-looking-value")
            )]
        );
        assert_eq!(command.get_current_dir(), Some(Path::new("/tmp")));
        assert_eq!(command.get_timeout(), Duration::from_secs(10));
        assert_eq!(command.get_max_output(), 1024 * 1024);
        let printed = format!("{command:?}");
        assert!(printed.contains("AZURE_CONFIG_DIR"), "{printed}");
        assert!(printed.contains("get-access-token"), "{printed}");
        assert!(!printed.contains("secret-looking-value"), "{printed}");
    }
}
