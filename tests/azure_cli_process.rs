//! AzureCliCredential running real processes: small scripts standing in for `az` on a temporary
//! PATH (given through the credential's `Env`). Covers the real command line, a stand-in that
//! never exits (killed with what it started, Timeout), a runaway stdout, and 50 concurrent
//! callers sharing one process.

#![cfg(unix)]

mod support;
use support::cache;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use azure_credentials::system::{Env, Fs, TokioExecutor};
use azure_credentials::{
    AccessToken, AzureCliCredential, Error, ErrorKind, TokenCache, TokenCredential,
};

const ARM: [&str; 1] = ["https://management.azure.com/.default"];

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "azure-credentials-cli-{}-{}-{label}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes an executable `az` script into the directory.
    fn az(&self, body: &str) {
        let path = self.0.join("az");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn mkfifo(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn credential(dir: &TempDir, timeout: Duration) -> AzureCliCredential {
    let clock = cache::manual_clock();
    AzureCliCredential::builder()
        .env(Env::from_pairs([
            ("PATH", dir.path().to_str().unwrap()),
            ("HOME", dir.path().to_str().unwrap()),
        ]))
        .executor(Arc::new(TokioExecutor::new()))
        .fs(Fs::real())
        .cache(TokenCache::builder().clock(clock.clock()).build())
        .process_timeout(timeout)
        .build()
        .unwrap()
}

/// What a credential running the `az` in `dir` (with a 60 s timeout) returns for [`ARM`].
async fn ask(dir: &TempDir) -> Result<AccessToken, Error> {
    credential(dir, Duration::from_secs(60))
        .get_token(&ARM, None)
        .await
}

const SUCCESS: &str = r#"{"accessToken": "fixture-cli-token-stand-in", "expiresOn": "2030-01-01 01:00:00.000000", "expires_on": 1893459600, "tenant": "72f988bf-86f1-41af-91ab-2d7cd011db47", "tokenType": "Bearer"}"#;

#[tokio::test]
async fn the_stand_in_gets_the_arguments_environment_and_directory() {
    let dir = TempDir::new("args");
    let log = dir.path().join("log");
    // Reads stdin too: closed stdin means it does not wait.
    dir.az(&format!(
        r#"printf '%s\n' "$@" > '{log}'; printf 'color=%s\n' "$AZURE_CORE_NO_COLOR" >> '{log}'; pwd -P >> '{log}'; cat > /dev/null; echo '{SUCCESS}'"#,
        log = log.display()
    ));
    let token = ask(&dir).await.unwrap();
    assert_eq!(token.token().expose(), "fixture-cli-token-stand-in");
    let log = std::fs::read_to_string(&log).unwrap();
    let bin = Path::new("/bin").canonicalize().unwrap();
    assert_eq!(
        log,
        format!(
            "account\nget-access-token\n--output\njson\n--resource\nhttps://management.azure.com\ncolor=true\n{}\n",
            bin.display()
        )
    );
}

#[tokio::test]
async fn a_failing_stand_in_is_classified_from_its_stderr() {
    let dir = TempDir::new("fail");
    dir.az(r#"echo "ERROR: Please run 'az login' to setup account." >&2; exit 1"#);
    let err = ask(&dir).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");

    let dir = TempDir::new("127");
    dir.az(r#"echo "az: line 3: /opt/az/bin/python3: No such file or directory" >&2; exit 127"#);
    let err = ask(&dir).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("not found on PATH"), "{err}");
}

#[tokio::test]
async fn a_runaway_stdout_is_capped_and_refused() {
    let dir = TempDir::new("huge");
    dir.az("head -c 5000000 /dev/zero | tr '\\0' x");
    let err = ask(&dir).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other, "{err}");
    assert!(err.to_string().contains("more output"), "{err}");
}

// Like the real `az` (a shell script that runs Python without `exec`), the stand-in starts a
// grandchild and waits. The grandchild holds the write end of the `alive` FIFO, read by a plain
// thread: end-of-file there means it died. Only once it holds that FIFO does it report the
// stand-in's pid on `ready` (so the kill cannot come before it is open, which would leave the
// reader waiting for a writer forever). Time is paused: it advances to the timeout only once
// the pid has arrived (a blocking task holds it back until then).
#[tokio::test(start_paused = true)]
async fn a_stand_in_that_never_exits_is_killed_with_its_children() {
    let dir = TempDir::new("hang");
    let ready = dir.mkfifo("ready");
    let alive = dir.mkfifo("alive");
    dir.az(&format!(
        r#"/bin/sh -c 'exec 3>"$1"; echo $PPID > "$2"; sleep 30; echo survived >&3' python '{alive}' '{ready}' &
wait"#,
        alive = alive.display(),
        ready = ready.display()
    ));
    let alive_reader = std::thread::spawn(move || std::fs::read_to_string(alive));
    let ready_reader = tokio::task::spawn_blocking(move || std::fs::read_to_string(ready));

    let err = credential(&dir, Duration::from_secs(7))
        .get_token(&ARM, None)
        .await
        .unwrap_err();
    let pid = ready_reader.await.unwrap().unwrap().trim().to_owned();

    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.to_string().contains("az did not finish within 7 s"),
        "{err}"
    );
    assert!(err.fix().unwrap().contains(".process_timeout("), "{err}");
    // The grandchild ("python") died with it...
    assert_eq!(alive_reader.join().unwrap().unwrap(), "");
    // ...and the stand-in was reaped: no zombie with its pid.
    #[cfg(target_os = "linux")]
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "{pid} still exists"
    );
    let _ = pid;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_callers_start_one_process() {
    let dir = TempDir::new("concurrent");
    let runs = dir.path().join("runs");
    let release = dir.mkfifo("release");
    // Each run leaves a line, then waits until the test lets it answer.
    dir.az(&format!(
        r#"echo run >> '{runs}'; read line < '{release}'; echo '{SUCCESS}'"#,
        runs = runs.display(),
        release = release.display()
    ));
    let credential = Arc::new(credential(&dir, Duration::from_secs(60)));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let credential = credential.clone();
            tokio::spawn(async move { credential.get_token(&ARM, None).await })
        })
        .collect();
    // Let every caller arrive while the first (and only) process waits.
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    tokio::task::spawn_blocking(move || std::fs::write(release, "go\n"))
        .await
        .unwrap()
        .unwrap();
    for task in tasks {
        let token = task.await.unwrap().unwrap();
        assert_eq!(token.token().expose(), "fixture-cli-token-stand-in");
    }
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "run\n");
}
