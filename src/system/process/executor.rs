//! [`TokioExecutor`]: the real executor, and the process group it kills on timeout.

use std::io;
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::error::program_name;
use super::{Command, Executor, Output, ProcessError, ProcessErrorKind};
use crate::system::monotonic_now;

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
///     tracing::warn!(code = ?output.code(), "az failed");
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
    id: Option<i32>,
}

impl ProcessGroup {
    #[cfg(unix)]
    fn new(child_pid: Option<u32>) -> Self {
        // A group id that is not positive is never signalled (unix::kill_process_group).
        let id = child_pid.and_then(|pid| i32::try_from(pid).ok());
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
            crate::system::unix::kill_process_group(id);
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

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    #[cfg(unix)]
    use std::path::Path;
    #[cfg(unix)]
    use std::time::Duration;

    use super::*;
    #[cfg(unix)]
    use crate::system::Env;
    #[cfg(unix)]
    use crate::system::process::tests::{TempDir, write_file};

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
}
