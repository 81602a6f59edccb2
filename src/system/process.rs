//! The process seam: [`Executor`] runs a [`Command`] and hands back its [`Output`].
//!
//! The developer-tool credentials (`az`, `azd`) reach their tools only through an
//! `Arc<dyn Executor>`: [`TokioExecutor`] in production, a scripted executor in tests. A child's
//! stdout carries an access token and its stderr can too, so neither ever reaches `Debug`, an
//! error message or a log line.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::system::{Env, monotonic_now};

/// How long a [`Command`] may run unless told otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many bytes of each stream a [`Command`] keeps unless told otherwise (1 MiB).
const DEFAULT_MAX_OUTPUT: usize = 1024 * 1024;

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

/// The real [`Executor`], built on `tokio::process`.
///
/// - The program is spawned directly with discrete arguments, never through a shell, so an
///   argument cannot inject a command.
/// - Stdin is closed, so a tool that prompts fails at once instead of hanging.
/// - The environment is inherited, plus the command's [additions](Command::env).
/// - Stdout and stderr are read concurrently, each capped at
///   [`max_output`](Command::max_output); the excess is read and dropped so the child never
///   blocks on a full pipe, and [`Output`] records the truncation.
/// - The whole run is bounded by the command's [`timeout`](Command::timeout): past it the child
///   is killed and reaped, and the error is [`ProcessErrorKind::Timeout`].
/// - Dropping the future returned by [`run`](Executor::run) (a cancelled caller) kills the child.
/// - On Unix the child runs in a process group of its own, and a timeout or a cancelled caller
///   kills the whole group: the Azure CLI's `az` is a bash script that starts Python without
///   `exec`, and killing the script alone would leave Python running. Grandchildren that move
///   to a session or group of their own escape this; on Windows only the direct child is
///   killed.
///
/// # Panics
///
/// `run` must be called inside a Tokio runtime with I/O enabled (`enable_all`), as any use of
/// `tokio::process`.
///
/// ```no_run
/// use std::time::Duration;
/// use azure_credentials::system::{Command, Executor, TokioExecutor};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let command = Command::new("az")
///     .args(["account", "show", "--output", "json"])
///     .timeout(Duration::from_secs(30));
/// let output = TokioExecutor::new().run(&command).await?;
/// if !output.success() {
///     eprintln!("az exited with {:?}", output.code());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioExecutor {
    // Private so options can be added without breaking anyone.
    _private: (),
}

impl TokioExecutor {
    /// The real executor.
    pub fn new() -> Self {
        TokioExecutor::default()
    }
}

#[async_trait]
impl Executor for TokioExecutor {
    async fn run(&self, command: &Command) -> Result<Output, ProcessError> {
        let name = program_name(&command.program);

        let mut child_command = tokio::process::Command::new(&command.program);
        child_command
            .args(&command.args)
            .envs(command.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &command.current_dir {
            child_command.current_dir(dir);
        }
        // Its own process group, so a timeout or a cancelled caller can kill everything it
        // started: `az` on Linux and macOS is a bash script that runs Python without `exec`,
        // and killing only the script would leave Python running.
        #[cfg(unix)]
        child_command.process_group(0);
        #[cfg(windows)]
        {
            // CREATE_NO_WINDOW: a GUI application must not flash a console window for `az.cmd`.
            child_command.creation_flags(0x0800_0000);
        }

        let started = monotonic_now();
        let mut child = child_command
            .spawn()
            .map_err(|e| spawn_error(&name, command, e))?;
        // Declared after `child`, so it is dropped first: a cancelled caller kills the group
        // before tokio's `kill_on_drop` kills (and reaps) the child, while the group id is
        // still held by the unreaped child and cannot name another process group.
        let mut group = ProcessGroup::new(child.id());
        tracing::debug!(
            program = %name,
            args = command.args.len(),
            pid = ?child.id(),
            "spawned process"
        );

        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let max = command.max_output;
        // Both pipes and the exit status together, so neither pipe can fill up and stall the
        // child while we wait on the other.
        let finished = tokio::time::timeout(command.timeout, async {
            tokio::join!(
                read_capped(stdout, max),
                read_capped(stderr, max),
                child.wait()
            )
        })
        .await;

        let Ok((stdout, stderr, status)) = finished else {
            // The whole group: the child and whatever it started (and did not move to a group
            // of its own). Then the child itself, in case the group kill was refused; that
            // fails only when the child has already exited (a grandchild holds the pipes).
            group.kill();
            let _ = child.start_kill();
            // SIGKILL cannot be ignored, so this returns promptly; it reaps the child so no
            // zombie is left behind.
            let _ = child.wait().await;
            tracing::debug!(
                program = %name,
                timeout = ?command.timeout,
                "process did not finish in time and was killed"
            );
            return Err(ProcessError::timed_out(&command.program, command.timeout));
        };

        // Exited and reaped: its id may be reused, so the group must not be signalled again.
        group.disarm();
        let status = status.map_err(|e| {
            ProcessError::io(&name, format!("waiting for {name} to exit failed"), e)
        })?;
        let read_failed =
            |e| ProcessError::io(&name, format!("reading the output of {name} failed"), e);
        let (stdout, stdout_truncated) = stdout.map_err(read_failed)?;
        let (stderr, stderr_truncated) = stderr.map_err(read_failed)?;

        tracing::debug!(
            program = %name,
            %status,
            elapsed = ?monotonic_now().saturating_duration_since(started),
            stdout_len = stdout.len(),
            stderr_len = stderr.len(),
            stdout_truncated,
            stderr_truncated,
            "process exited"
        );
        Ok(Output {
            code: status.code(),
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
        })
    }
}

/// The process group of a spawned child (Unix), killed on timeout or when the run is dropped
/// before the child was reaped.
struct ProcessGroup {
    #[cfg(unix)]
    id: Option<rustix::process::Pid>,
}

impl ProcessGroup {
    #[cfg(unix)]
    fn new(child_pid: Option<u32>) -> Self {
        let id = child_pid
            .and_then(|pid| i32::try_from(pid).ok())
            .and_then(rustix::process::Pid::from_raw);
        ProcessGroup { id }
    }

    #[cfg(not(unix))]
    fn new(_child_pid: Option<u32>) -> Self {
        ProcessGroup {}
    }

    /// Sends SIGKILL to every process of the group (at most once).
    fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(id) = self.id.take() {
            // ESRCH (the group is already gone) is the only expected failure.
            let _ = rustix::process::kill_process_group(id, rustix::process::Signal::KILL);
        }
    }

    /// The child has been reaped: never signal its group id again.
    fn disarm(&mut self) {
        #[cfg(unix)]
        {
            self.id = None;
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads `pipe` to its end, keeping the first `max` bytes and reporting whether there were
/// more. The rest is read and dropped rather than left in the pipe: a child blocked on a full
/// pipe would never exit.
async fn read_capped<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    max: usize,
) -> io::Result<(Vec<u8>, bool)> {
    let Some(mut pipe) = pipe else {
        return Ok((Vec::new(), false));
    };
    let mut kept = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX);
    (&mut pipe).take(limit).read_to_end(&mut kept).await?;
    let discarded = tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await?;
    Ok((kept, discarded > 0))
}

/// Maps a failure to start the program to its kind.
fn spawn_error(name: &str, command: &Command, error: io::Error) -> ProcessError {
    match error.kind() {
        io::ErrorKind::NotFound => {
            // A missing working directory fails the spawn with the same error as a missing
            // program; do not send the user looking for the wrong thing.
            if let Some(dir) = &command.current_dir
                && !dir.is_dir()
            {
                let message = format!(
                    "{name} could not be started: its working directory {} does not exist",
                    dir.display()
                );
                return ProcessError::io(name, message, error);
            }
            ProcessError::new(ProcessErrorKind::NotFound, &command.program).with_source(error)
        }
        io::ErrorKind::PermissionDenied => {
            ProcessError::new(ProcessErrorKind::PermissionDenied, &command.program)
                .with_source(error)
        }
        _ => ProcessError::new(ProcessErrorKind::Io, &command.program).with_source(error),
    }
}

/// The program's file name, for messages and logs: `/usr/bin/az` → `az`.
fn program_name(program: &OsStr) -> String {
    if program.is_empty() {
        return "<empty program name>".to_owned();
    }
    Path::new(program)
        .file_name()
        .unwrap_or(program)
        .to_string_lossy()
        .into_owned()
}

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
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    current_dir: Option<PathBuf>,
    timeout: Duration,
    max_output: usize,
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

    /// Bounds the whole run, from spawn until the program has exited and closed its output;
    /// past it the program is killed. The default is 10 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many bytes of stdout, and separately of stderr, to keep; the rest is read and
    /// dropped. The default is 1 MiB.
    #[must_use]
    pub fn max_output(mut self, max_output: usize) -> Self {
        self.max_output = max_output;
        self
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

/// What a finished program left: its exit code and its (capped) stdout and stderr.
///
/// Both streams may hold an access token, so `Debug` shows the exit code and the lengths only.
#[derive(Clone)]
pub struct Output {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stdout_truncated: bool,
    stderr_truncated: bool,
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

/// The error of an [`Executor`]: the program could not be started, waited for or read from,
/// or ran out of time.
///
/// The message names the program by file name (`az was not found`,
/// `az did not finish within 10 s and was killed`); the caller adds what to change, such as its
/// timeout option. It never contains the program's output. The underlying I/O error, when
/// there is one, is available through [`std::error::Error::source`].
pub struct ProcessError {
    kind: ProcessErrorKind,
    program: String,
    message: String,
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
    fn io(name: &str, message: String, source: io::Error) -> Self {
        ProcessError {
            kind: ProcessErrorKind::Io,
            program: name.to_owned(),
            message,
            source: Some(source),
        }
    }

    fn with_source(mut self, source: io::Error) -> Self {
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

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written out so that a field added later cannot leak output by derive.
        f.debug_struct("ProcessError")
            .field("kind", &self.kind)
            .field("program", &self.program)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for ProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Finds `name` the way a shell would, in the `PATH` of `env`: the first regular file that is
/// executable (Unix: any execute bit). On Windows each extension of `PATHEXT` (default
/// `.COM;.EXE;.BAT;.CMD`) is tried, so `az` finds `az.cmd`; a name that already ends in one of
/// them is tried as is.
///
/// A name with a directory part (`/opt/az/bin/az`, `./az`) is not searched for: it is returned
/// if it is an executable file. Relative and empty `PATH` entries are skipped, so a program in
/// the current directory is never picked up by accident (the reason Go's `exec.LookPath`
/// refuses them too).
///
/// This reads file metadata, which blocks; it is cheap, but call it off the hot path.
pub(crate) fn resolve_program(env: &Env, name: &str) -> Option<PathBuf> {
    let path = env.var("PATH");
    lookup(
        path.as_deref().map(OsStr::new),
        name,
        &executable_extensions(env),
    )
}

#[cfg(windows)]
fn executable_extensions(env: &Env) -> Vec<String> {
    parse_pathext(env.var_non_empty("PATHEXT").as_deref())
}

#[cfg(not(windows))]
fn executable_extensions(_env: &Env) -> Vec<String> {
    Vec::new()
}

/// `PATHEXT` as lower-case extensions with their dot; the Windows default when it is unset or
/// holds nothing usable.
#[cfg_attr(not(windows), allow(dead_code))]
fn parse_pathext(value: Option<&str>) -> Vec<String> {
    let parse = |v: &str| -> Vec<String> {
        v.split(';')
            .map(str::trim)
            .filter(|e| e.len() > 1 && e.starts_with('.'))
            .map(str::to_ascii_lowercase)
            .collect()
    };
    match value.map(parse) {
        Some(exts) if !exts.is_empty() => exts,
        _ => parse(".COM;.EXE;.BAT;.CMD"),
    }
}

/// The search behind [`resolve_program`]; `exts` is empty except on Windows.
fn lookup(path_var: Option<&OsStr>, name: &str, exts: &[String]) -> Option<PathBuf> {
    if name.is_empty() || name.contains('\0') {
        return None;
    }
    let candidates = candidate_names(name, exts);
    let has_dir = Path::new(name)
        .parent()
        .is_some_and(|p| !p.as_os_str().is_empty());
    if has_dir {
        return candidates
            .into_iter()
            .map(PathBuf::from)
            .find(|p| is_executable(p));
    }
    std::env::split_paths(path_var?)
        .filter(|dir| dir.is_absolute())
        .flat_map(|dir| candidates.iter().map(move |c| dir.join(c)))
        .find(|p| is_executable(p))
}

/// The file names to try for `name`: itself, or (Windows) itself with each extension unless
/// it already has one of them. Never the bare name on Windows: the Azure CLI ships a bash
/// script `az` beside `az.cmd`, which Windows cannot run.
fn candidate_names(name: &str, exts: &[String]) -> Vec<String> {
    if exts.is_empty() {
        return vec![name.to_owned()];
    }
    let has_known_ext = Path::new(name)
        .extension()
        .and_then(OsStr::to_str)
        .is_some_and(|ext| {
            exts.iter().any(|e| {
                e.strip_prefix('.')
                    .is_some_and(|e| e.eq_ignore_ascii_case(ext))
            })
        });
    if has_known_ext {
        vec![name.to_owned()]
    } else {
        exts.iter().map(|e| format!("{name}{e}")).collect()
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// A fresh directory under the system temp dir, removed on drop.
    #[cfg(unix)]
    struct TempDir(PathBuf);

    #[cfg(unix)]
    impl TempDir {
        fn new(label: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "azure-credentials-process-{}-{}-{label}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            // create_dir, not create_dir_all: fails rather than reuse something already there.
            std::fs::create_dir(&path).expect("create temp dir");
            TempDir(path)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    #[cfg(unix)]
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[cfg(unix)]
    fn write_file(path: &Path, contents: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, contents).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// `sh -c script`, with a timeout generous enough never to fire in a healthy test.
    #[cfg(unix)]
    fn sh(script: &str) -> Command {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .timeout(Duration::from_secs(60))
    }

    async fn run(command: &Command) -> Result<Output, ProcessError> {
        TokioExecutor::new().run(command).await
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn captures_exit_code_stdout_and_stderr() {
        let output = run(&sh("printf out; printf err >&2; exit 3"))
            .await
            .unwrap();
        assert_eq!(output.code(), Some(3));
        assert!(!output.success());
        assert_eq!(output.stdout(), b"out");
        assert_eq!(output.stderr(), b"err");
        assert!(!output.stdout_truncated() && !output.stderr_truncated());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn arguments_are_passed_literally_without_a_shell() {
        let hostile = "a; echo injected $(id) `id` | cat > /dev/null && \"quoted\" 'single'";
        let output = run(&sh(r#"printf %s "$1""#).arg("sh").arg(hostile))
            .await
            .unwrap();
        assert!(output.success());
        assert_eq!(output.stdout(), hostile.as_bytes());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn stdin_is_closed() {
        // `cat` would wait forever on an open stdin.
        let output = run(&Command::new("cat").timeout(Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(output.success());
        assert!(output.stdout().is_empty());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn env_additions_and_the_inherited_environment_reach_the_child() {
        let command = sh(r#"printf '%s\n%s' "$AZC_PROCESS_TEST" "$PATH""#)
            .env("AZC_PROCESS_TEST", "first")
            .env("AZC_PROCESS_TEST", "hello world");
        let output = run(&command).await.unwrap();
        let stdout = String::from_utf8(output.stdout().to_vec()).unwrap();
        let (added, path) = stdout.split_once('\n').unwrap();
        assert_eq!(added, "hello world");
        assert_eq!(Some(path.to_owned()), Env::process().var("PATH"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn working_directory_is_honoured() {
        let dir = TempDir::new("cwd");
        let output = run(&sh("pwd -P").current_dir(dir.path())).await.unwrap();
        let printed = String::from_utf8(output.stdout().to_vec()).unwrap();
        let expected = dir.path().canonicalize().unwrap();
        assert_eq!(Path::new(printed.trim_end()), expected);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn output_is_capped_and_the_rest_drained() {
        let command = Command::new("head")
            .args(["-c", "5242880", "/dev/zero"])
            .max_output(64 * 1024)
            .timeout(Duration::from_secs(60));
        let output = run(&command).await.unwrap();
        // `head` exits 0 only if every write succeeded: the pipe was drained, not closed.
        assert_eq!(output.code(), Some(0));
        assert_eq!(output.stdout().len(), 64 * 1024);
        assert!(output.stdout_truncated());
        assert!(output.stderr().is_empty() && !output.stderr_truncated());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn both_streams_are_read_concurrently() {
        // Each stream far exceeds a pipe buffer (64 KiB on Linux): reading one after the other
        // would deadlock.
        let command = sh("head -c 1000000 /dev/zero >&2; head -c 1000000 /dev/zero");
        let output = run(&command).await.unwrap();
        assert!(output.success());
        assert_eq!(output.stdout().len(), 1_000_000);
        assert_eq!(output.stderr().len(), 1_000_000);
        assert!(!output.stdout_truncated() && !output.stderr_truncated());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn output_of_exactly_the_cap_is_not_truncated() {
        let output = run(&sh("printf 12345678").max_output(8)).await.unwrap();
        assert_eq!(output.stdout(), b"12345678");
        assert!(!output.stdout_truncated());
        let output = run(&sh("printf 123456789").max_output(8)).await.unwrap();
        assert_eq!(output.stdout(), b"12345678");
        assert!(output.stdout_truncated());
    }

    // Paused time: the runtime auto-advances to the deadline as soon as it is idle. The child
    // reports its pid through a FIFO read by a blocking task, and tokio does not auto-advance
    // while a blocking task runs, so the timeout fires only after the child has started.
    #[cfg(unix)]
    #[tokio::test(start_paused = true)]
    async fn timeout_kills_and_reaps_the_child_and_hides_output() {
        let dir = TempDir::new("timeout");
        let fifo = dir.path().join("pid");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());

        let reader = {
            let fifo = fifo.clone();
            tokio::task::spawn_blocking(move || std::fs::read_to_string(fifo))
        };
        let command = Command::new("/bin/sh")
            .arg("-c")
            .arg(r#"printf MARKER-OUT; printf MARKER-ERR >&2; echo $$ > "$1"; exec sleep 30"#)
            .arg("sh")
            .arg(&fifo)
            .timeout(Duration::from_secs(5));
        let result = run(&command).await;
        if !reader.is_finished() {
            // The child never opened the FIFO: release the reader so the test fails, not hangs.
            drop(std::fs::OpenOptions::new().write(true).open(&fifo));
        }
        let pid: u32 = reader.await.unwrap().unwrap().trim().parse().unwrap();

        let err = result.unwrap_err();
        assert_eq!(err.kind(), ProcessErrorKind::Timeout);
        assert_eq!(err.program(), "sh");
        assert_eq!(
            err.to_string(),
            "sh did not finish within 5 s and was killed"
        );
        let printed = format!("{err} {err:?} {err:#?}");
        assert!(!printed.contains("MARKER"), "{printed}");

        // Killed and reaped: no process, not even a zombie, is left with that pid.
        #[cfg(target_os = "linux")]
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still exists"
        );
        let alive = std::process::Command::new("/bin/sh")
            .args(["-c", r#"kill -0 "$1" 2>/dev/null"#, "sh"])
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(!alive.success(), "pid {pid} still exists");
    }

    // Like `az`: a script that starts a long-running program without `exec` (a grandchild of
    // ours). On timeout the grandchild must die with the script. It holds the write end of a
    // FIFO read by a plain thread (not a blocking task, so paused time can still advance): the
    // reader sees end-of-file when the grandchild dies, and "survived" if it lived on.
    #[cfg(unix)]
    #[tokio::test(start_paused = true)]
    async fn timeout_kills_the_grandchildren_too() {
        let dir = TempDir::new("group");
        let ready = dir.path().join("ready");
        let alive = dir.path().join("alive");
        for fifo in [&ready, &alive] {
            let made = std::process::Command::new("mkfifo")
                .arg(fifo)
                .status()
                .unwrap();
            assert!(made.success());
        }
        let alive_reader = {
            let alive = alive.clone();
            std::thread::spawn(move || std::fs::read_to_string(alive))
        };
        // Paused time does not advance while this blocking task runs, so the timeout can only
        // fire once the grandchild is up and holds the FIFO.
        let ready_reader = {
            let ready = ready.clone();
            tokio::task::spawn_blocking(move || std::fs::read_to_string(ready))
        };
        let grandchild = r#"exec 3>"$1"; echo $$ > "$2"; sleep 30; echo survived >&3"#;
        let script = format!(
            r#"/bin/sh -c '{grandchild}' grandchild "$1" "$2" & sleep 30; echo parent-done"#
        );
        let command = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&alive)
            .arg(&ready)
            .timeout(Duration::from_secs(5));
        let result = run(&command).await;
        let grandchild_pid = ready_reader.await.unwrap().unwrap();
        assert_eq!(result.unwrap_err().kind(), ProcessErrorKind::Timeout);
        let after = alive_reader.join().unwrap().unwrap();
        assert_eq!(
            after,
            "",
            "grandchild {} outlived the timeout",
            grandchild_pid.trim()
        );
    }

    #[tokio::test]
    async fn missing_program_is_not_found() {
        for program in [
            "azure-credentials-no-such-program",
            "/nonexistent-dir/azure-credentials-no-such-program",
        ] {
            let err = run(&Command::new(program)).await.unwrap_err();
            assert_eq!(err.kind(), ProcessErrorKind::NotFound, "{err:?}");
            assert_eq!(err.program(), "azure-credentials-no-such-program");
            assert_eq!(
                err.to_string(),
                "azure-credentials-no-such-program was not found"
            );
            let source = err.source().unwrap().downcast_ref::<io::Error>().unwrap();
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn missing_working_directory_is_not_reported_as_a_missing_program() {
        let dir = TempDir::new("nocwd");
        let gone = dir.path().join("gone");
        let err = run(&sh("true").current_dir(&gone)).await.unwrap_err();
        assert_eq!(err.kind(), ProcessErrorKind::Io);
        assert!(err.to_string().contains("working directory"), "{err}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn file_without_execute_bit_is_permission_denied() {
        let dir = TempDir::new("noexec");
        let script = dir.path().join("tool");
        write_file(&script, "#!/bin/sh\nexit 0\n", 0o644);
        let err = run(&Command::new(&script)).await.unwrap_err();
        assert_eq!(err.kind(), ProcessErrorKind::PermissionDenied, "{err:?}");
        assert_eq!(err.to_string(), "tool could not be run: permission denied");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn debug_never_shows_output() {
        let output = run(&sh("printf MARKER-OUT; printf MARKER-ERR >&2"))
            .await
            .unwrap();
        assert_eq!(output.stdout(), b"MARKER-OUT");
        let printed = format!("{output:?} {output:#?}");
        assert!(!printed.contains("MARKER"), "{printed}");
        assert!(printed.contains("stdout_len: 10"), "{printed}");
    }

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

    #[cfg(unix)]
    #[test]
    fn resolve_program_finds_the_first_executable_file_on_path() {
        let first = TempDir::new("path1");
        let second = TempDir::new("path2");
        write_file(&first.path().join("tool"), "#!/bin/sh\n", 0o644); // not executable
        write_file(&second.path().join("tool"), "#!/bin/sh\n", 0o755);
        write_file(&second.path().join("data"), "", 0o644);
        std::fs::create_dir(second.path().join("dir")).unwrap();
        let entries = [
            Path::new("relative/bin"),
            Path::new(""),
            first.path(),
            second.path(),
        ];
        let path = std::env::join_paths(entries)
            .unwrap()
            .into_string()
            .unwrap();
        let env = Env::empty().with("PATH", path);

        assert_eq!(
            resolve_program(&env, "tool"),
            Some(second.path().join("tool"))
        );
        assert_eq!(resolve_program(&env, "data"), None);
        assert_eq!(resolve_program(&env, "dir"), None);
        assert_eq!(resolve_program(&env, "missing"), None);
        assert_eq!(resolve_program(&env, ""), None);
        assert_eq!(resolve_program(&env, "to\0ol"), None);
        assert_eq!(resolve_program(&Env::empty(), "tool"), None);

        // A path is checked, not searched for.
        let explicit = second.path().join("tool");
        let explicit = explicit.to_str().unwrap();
        assert_eq!(
            resolve_program(&Env::empty(), explicit),
            Some(PathBuf::from(explicit))
        );
        let not_exec = first.path().join("tool");
        assert_eq!(resolve_program(&env, not_exec.to_str().unwrap()), None);
    }

    #[cfg(unix)]
    #[test]
    fn relative_path_entries_are_skipped() {
        let dir = TempDir::new("relative");
        write_file(&dir.path().join("tool"), "#!/bin/sh\n", 0o755);
        let absolute = Env::empty().with("PATH", dir.path().to_str().unwrap());
        assert_eq!(
            resolve_program(&absolute, "tool"),
            Some(dir.path().join("tool"))
        );
        // The same directory spelled relative to the current one: never searched.
        let relative = Env::empty().with("PATH", relative_to_cwd(dir.path()));
        assert_eq!(resolve_program(&relative, "tool"), None);
    }

    /// `dir` (absolute) spelled relative to the current directory.
    #[cfg(unix)]
    fn relative_to_cwd(dir: &Path) -> String {
        let cwd = std::env::current_dir().unwrap();
        let ups = cwd.components().count() - 1;
        let mut relative = "../".repeat(ups);
        relative.push_str(dir.strip_prefix("/").unwrap().to_str().unwrap());
        relative
    }

    // The Windows rules run on every platform through `lookup`, so Linux CI covers them.
    #[cfg(unix)]
    #[test]
    fn pathext_prefers_az_cmd_over_the_bash_script() {
        let dir = TempDir::new("pathext");
        write_file(&dir.path().join("az"), "#!/bin/bash\n", 0o755);
        write_file(&dir.path().join("az.cmd"), "@echo off\n", 0o755);
        let exts = parse_pathext(None);
        let path = dir.path().as_os_str();

        assert_eq!(
            lookup(Some(path), "az", &exts),
            Some(dir.path().join("az.cmd"))
        );
        assert_eq!(
            lookup(Some(path), "az.cmd", &exts),
            Some(dir.path().join("az.cmd"))
        );
        let explicit = dir.path().join("az");
        assert_eq!(
            lookup(None, explicit.to_str().unwrap(), &exts),
            Some(dir.path().join("az.cmd"))
        );
    }

    #[test]
    fn pathext_parsing() {
        assert_eq!(parse_pathext(None), [".com", ".exe", ".bat", ".cmd"]);
        assert_eq!(parse_pathext(Some(".EXE;; .Cmd ;bat;.")), [".exe", ".cmd"]);
        assert_eq!(parse_pathext(Some(";;")), [".com", ".exe", ".bat", ".cmd"]);
        assert_eq!(candidate_names("az", &[]), ["az"]);
        assert_eq!(
            candidate_names("az", &parse_pathext(Some(".EXE;.CMD"))),
            ["az.exe", "az.cmd"]
        );
        assert_eq!(candidate_names("az.Cmd", &parse_pathext(None)), ["az.Cmd"]);
    }
}
