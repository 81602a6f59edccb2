//! What the developer-tool credentials (`az`, `azd`, `pwsh`) share: running the tool safely, turning
//! its failures into errors without echoing its output, and noticing a new login.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::scope::{scope_to_resource, single_scope};
use crate::system::{
    Command, Env, FileStamp, Fs, Output, ProcessError, ProcessErrorKind, resolve_program,
};
use crate::{Error, ErrorKind, TokenRequest, env_vars};

/// How often a credential looks at the tool's login files, at most.
const LOGIN_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How much of each output stream is kept: a token reply is a few kilobytes.
pub(crate) const MAX_OUTPUT: usize = 256 * 1024;

/// A developer tool: how it is named in messages and how to get it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool {
    /// The credential's type name, e.g. `"AzureCliCredential"`.
    pub(crate) credential: &'static str,
    /// The program, e.g. `"az"`.
    pub(crate) program: &'static str,
    /// On Windows, the program run when `program` is not on `PATH` (`powershell` for `pwsh`).
    pub(crate) windows_fallback: Option<&'static str>,
    /// The tool in prose, e.g. `"the Azure CLI"`.
    pub(crate) display_name: &'static str,
    /// The variable naming its configuration directory, e.g. `AZURE_CONFIG_DIR` (passed on to
    /// the tool when set), if the tool has one.
    pub(crate) config_dir_var: Option<&'static str>,
    /// The configuration directory under the home directory when the variable is not set.
    pub(crate) default_config_dir: &'static str,
    /// The files in the configuration directory that change when the user logs in or out.
    pub(crate) login_files: &'static [&'static str],
    /// What to do when it is missing.
    pub(crate) install_fix: &'static str,
    /// What to do when the user is not logged in.
    pub(crate) login_fix: &'static str,
    /// Text in stderr that means "log in first" (when no `AADSTS` code is there too).
    pub(crate) login_markers: &'static [&'static str],
}

impl Tool {
    /// The program's path: found on the `PATH` of `env` (with `PATHEXT` on Windows, so `az`
    /// finds `az.cmd`), else the Windows fallback's, or an `Unavailable` error.
    pub(crate) fn resolve(&self, env: &Env) -> Result<PathBuf, Error> {
        self.programs(cfg!(windows))
            .find_map(|program| resolve_program(env, program))
            .ok_or_else(|| self.not_installed())
    }

    /// The programs looked for, in order.
    fn programs(&self, windows: bool) -> impl Iterator<Item = &'static str> {
        let fallback = self.windows_fallback.filter(|_| windows);
        std::iter::once(self.program).chain(fallback)
    }

    pub(crate) fn not_installed(&self) -> Error {
        Error::unavailable(
            self.credential,
            format!("{} was not found on PATH", self.program),
        )
        .with_fix(self.install_fix)
    }

    /// A command for the program at `path`: the safe working directory, closed stdin (the
    /// executor's rule), the caller's timeout and a small output cap.
    pub(crate) fn command(&self, path: PathBuf, env: &Env, timeout: Duration) -> Command {
        Command::new(path)
            .current_dir(safe_working_dir(env))
            .timeout(timeout)
            .max_output(MAX_OUTPUT)
    }

    /// The error for a run that could not complete.
    pub(crate) fn process_error(&self, error: ProcessError) -> Error {
        let credential = self.credential;
        match error.kind() {
            ProcessErrorKind::NotFound => self.not_installed().with_source(error),
            ProcessErrorKind::PermissionDenied => Error::unavailable(
                credential,
                format!("{} could not be run: permission denied", self.program),
            )
            .with_fix(format!(
                "make {} executable, or put a working one first on PATH",
                self.program
            ))
            .with_source(error),
            ProcessErrorKind::Timeout => {
                Error::new(ErrorKind::Timeout, credential, error.to_string()).with_fix(format!(
                    "raise the limit with {credential}::builder().process_timeout(..); run `{}` yourself to see why it is slow",
                    self.program
                ))
            }
            _ => Error::new(
                ErrorKind::Io,
                credential,
                format!("{} could not be run", self.program),
            )
            .with_source(error),
        }
    }

    /// The error for a run that ended without success: exit 127 or the shell's "not found" is
    /// "not installed"; `AADSTS` codes are an authentication failure; a request to log in (and no
    /// `AADSTS` code) is "unavailable"; anything else is an authentication failure with the
    /// line of stderr that says what went wrong ([`summarize`]), scrubbed.
    pub(crate) fn failure(&self, output: &Output, stderr_text: &str) -> Error {
        let credential = self.credential;
        let program = self.program;
        let not_found = output.code() == Some(127)
            || stderr_text.contains("' is not recognized")
            || stderr_text
                .lines()
                .any(|l| l.contains(&format!("{program}:")) && l.contains("not found"));
        if not_found {
            return self.not_installed();
        }
        let summary = summarize(stderr_text);
        let status = match output.code() {
            Some(code) => format!("exited with code {code}"),
            None => "was killed by a signal".to_owned(),
        };
        let codes = aadsts_codes(stderr_text);
        if !codes.is_empty() {
            return Error::authentication(credential, format!("{program} {status}: {summary}"))
                .with_aadsts_codes(codes)
                .with_fix(self.login_fix);
        }
        if self.login_markers.iter().any(|m| stderr_text.contains(m)) {
            return Error::unavailable(credential, format!("not logged in: {summary}"))
                .with_fix(self.login_fix);
        }
        Error::authentication(credential, format!("{program} {status}: {summary}")).with_fix(
            format!("run the command yourself to see the whole error; `{program} --version` shows whether it works at all"),
        )
    }
}

/// What a tool that speaks in resources (az, pwsh) is asked for: the one scope, validated, its
/// resource, and the tenant (the request's, resolved, else `default_tenant`).
pub(crate) fn resource_request<'a>(
    credential: &'static str,
    request: &'a TokenRequest,
    default_tenant: Option<&'a str>,
) -> Result<(&'a str, &'a str, Option<&'a str>), Error> {
    let scopes: Vec<&str> = request.scopes().iter().map(String::as_str).collect();
    let scope = single_scope(credential, &scopes)?;
    let tenant = request.tenant_id().or(default_tenant);
    Ok((scope, scope_to_resource(scope), tenant))
}

/// A directory the tool runs in that no one but an administrator can write to: a malicious
/// `az` helper module in the application's directory must not be picked up (Python's `-m`
/// puts the working directory on its module path).
fn safe_working_dir(env: &Env) -> PathBuf {
    if cfg!(windows) {
        env.var_non_empty(env_vars::SYSTEMROOT)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(r"C:\Windows"))
    } else {
        PathBuf::from("/bin")
    }
}

/// The user's home directory from `env`, for tools' default config directories.
pub(crate) fn home_dir(env: &Env) -> Option<PathBuf> {
    let home = if cfg!(windows) {
        env.var_non_empty(env_vars::USERPROFILE)
    } else {
        env.var_non_empty(env_vars::HOME)
    };
    home.map(PathBuf::from)
}

/// Whether a variable is set to a value that turns a feature off (`0`, `false`, `no`, `off`).
pub(crate) fn is_off(env: &Env, name: &str) -> bool {
    env.var_non_empty(name).is_some_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "0" | "false" | "no" | "off"
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Stderr: summarized, never dumped, never echoing a token.

/// The line of stderr that says what went wrong, scrubbed ([`crate::scrub`]): the exception
/// at the end of a Python traceback (the last one, for a chain of them: `KeyError: 'x'`,
/// `requests.exceptions.ConnectionError: …`), else the last `ERROR:` line other than az's
/// banner for unexpected errors (without the prefix), else the first line with text.
pub(crate) fn summarize(stderr: &str) -> String {
    let line = exception_line(stderr)
        .or_else(|| last_error_line(stderr))
        .or_else(|| {
            let first = stderr.lines().map(str::trim).find(|l| !l.is_empty())?;
            Some(first.strip_prefix("ERROR:").map_or(first, str::trim))
        });
    match line.map(crate::scrub::line) {
        Some(line) if !line.is_empty() => line,
        _ => "no error message".to_owned(),
    }
}

/// What az prints before a traceback, saying only that there is one.
const UNEXPECTED_ERROR_BANNER: &str =
    "The command failed with an unexpected error. Here is the traceback:";

/// The exception line closing the last traceback: the first unindented line after its header
/// (the frames and their source lines are indented).
fn exception_line(stderr: &str) -> Option<&str> {
    let mut lines = stderr.lines();
    // Resume after the last header.
    let mut after_last_header = None;
    while let Some(line) = lines.next() {
        if line.trim() == "Traceback (most recent call last):" {
            after_last_header = Some(lines.clone());
        }
    }
    after_last_header?
        .find(|l| !l.trim().is_empty() && !l.starts_with(char::is_whitespace))
        .map(str::trim)
}

fn last_error_line(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .rev()
        .filter_map(|l| l.trim().strip_prefix("ERROR:"))
        .map(str::trim)
        .find(|l| !l.is_empty() && *l != UNEXPECTED_ERROR_BANNER)
}

/// The distinct `AADSTS` codes in `text`, in order of appearance.
pub(crate) fn aadsts_codes(text: &str) -> Vec<u32> {
    let mut codes = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("AADSTS") {
        rest = &rest[i + "AADSTS".len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(code) = digits.parse::<u32>()
            && !codes.contains(&code)
        {
            codes.push(code);
        }
    }
    codes
}

/// A claims challenge (e.g. multi-factor authentication) needs an interactive `sign_in`,
/// which the tool cannot do on its own: the error says so, and its fix is to run `command`
/// (the tool's sign-in with the challenge), with `tenant_flag tenant` added when a tenant was
/// named, `where_` saying where and with which version.
pub(crate) fn claims_challenge_error(
    credential: &'static str,
    mut command: String,
    tenant_flag: &str,
    tenant: Option<&str>,
    sign_in: &str,
    where_: &str,
) -> Error {
    if let Some(tenant) = tenant {
        command.push(' ');
        command.push_str(tenant_flag);
        command.push(' ');
        command.push_str(tenant);
    }
    Error::authentication(
        credential,
        format!(
            "the resource asked for a claims challenge (e.g. multi-factor authentication), which needs an interactive {sign_in}"
        ),
    )
    .with_fix(format!("run `{command}`{where_}, then try again"))
}

/// Standard base64 with padding, for claims challenges on a command line.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Login state: a new `az login` must take effect at once, even though tokens are cached.

/// Watches a tool's login files (modification time and length) so that cached tokens are
/// dropped when the user logs in again, switches account or logs out.
///
/// Looking costs a `stat` per file, so it is done at most once per
/// [`LOGIN_CHECK_INTERVAL`]; between looks, a call costs one relaxed atomic load.
pub(crate) struct LoginWatch {
    fs: Fs,
    paths: Vec<PathBuf>,
    stamps: Mutex<Vec<Option<FileStamp>>>,
    /// Unix nanoseconds (the cache's clock) before which no one looks again.
    next_check: AtomicI64,
}

impl LoginWatch {
    /// A watch over `paths`, which records their state now.
    pub(crate) fn new(fs: Fs, paths: Vec<PathBuf>, now: i64) -> Self {
        let stamps = stamps(&fs, &paths);
        LoginWatch {
            fs,
            paths,
            stamps: Mutex::new(stamps),
            next_check: AtomicI64::new(now.saturating_add(interval_nanos())),
        }
    }

    /// The recorded state as text, for the cache identity: credentials created under one login
    /// share tokens; one created after a new login does not inherit tokens of the old one.
    pub(crate) fn fingerprint(&self) -> String {
        let stamps = self.stamps.lock();
        let parts: Vec<String> = stamps
            .iter()
            .map(|s| match s {
                None => "none".to_owned(),
                Some(s) => {
                    let nanos = s
                        .modified
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos())
                        .unwrap_or(0);
                    format!("{}@{nanos}", s.len)
                }
            })
            .collect();
        parts.join(",")
    }

    /// Whether it is time to look again (the hot path: one relaxed load).
    #[inline]
    pub(crate) fn due(&self, now: i64) -> bool {
        now >= self.next_check.load(Ordering::Relaxed)
    }

    /// Looks at the files if no one else is doing so and the interval has passed; true when
    /// they changed since the last look.
    #[cold]
    pub(crate) fn changed(&self, now: i64) -> bool {
        let next = self.next_check.load(Ordering::Relaxed);
        if now < next
            || self
                .next_check
                .compare_exchange(
                    next,
                    now.saturating_add(interval_nanos()),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return false;
        }
        let current = stamps(&self.fs, &self.paths);
        let mut last = self.stamps.lock();
        if *last == current {
            return false;
        }
        *last = current;
        true
    }

    /// The watched files.
    pub(crate) fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

fn interval_nanos() -> i64 {
    i64::try_from(LOGIN_CHECK_INTERVAL.as_nanos()).unwrap_or(i64::MAX)
}

fn stamps(fs: &Fs, paths: &[PathBuf]) -> Vec<Option<FileStamp>> {
    paths.iter().map(|p| fs.stamp(p).ok()).collect()
}

/// `dir/name` for each name.
pub(crate) fn files_in(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|n| dir.join(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_the_line_that_says_what_went_wrong() {
        // A chain of tracebacks: the last exception.
        let chain = "ERROR: The command failed with an unexpected error. Here is the traceback:\nERROR: boom\nTraceback (most recent call last):\n  File \"a.py\", line 1, in f\n    x()\nOSError: first\n\nThe above exception was the direct cause of the following exception:\n\nTraceback (most recent call last):\n  File \"b.py\", line 2, in g\n    y()\n    ^^^\nmsal.exceptions.Foo: second\nTo check existing issues, please visit: https://github.com/Azure/azure-cli/issues\n";
        assert_eq!(summarize(chain), "msal.exceptions.Foo: second");
        // Only the banner and the message: the message.
        let banner = "ERROR: The command failed with an unexpected error. Here is the traceback:\nERROR: the real problem\n";
        assert_eq!(summarize(banner), "the real problem");
        assert_eq!(
            summarize(
                "ERROR: The command failed with an unexpected error. Here is the traceback:\n"
            ),
            "The command failed with an unexpected error. Here is the traceback:"
        );
        // A header and nothing after it.
        assert_eq!(
            summarize("ERROR: x\nTraceback (most recent call last):\n  File \"a\"\n"),
            "x"
        );
        assert_eq!(summarize("WARNING: w\nERROR: one\nERROR: two\n"), "two");
    }

    #[test]
    fn summary_scrubs_what_it_takes() {
        let stderr = "WARNING: something\nERROR: AADSTS700082: The refresh token has expired.\nTrace:\n  eyJhbGciOi.secret";
        assert_eq!(
            summarize(stderr),
            "AADSTS700082: The refresh token has expired."
        );
        assert_eq!(summarize("\n\n  plain failure \n"), "plain failure");
        assert_eq!(summarize(""), "no error message");
        let jwt = "ERROR: bad token eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl here";
        assert_eq!(summarize(jwt), "bad token <redacted> here");
        let keyed = r#"ERROR: response {"accessToken": "abc", "x": 1}"#;
        assert_eq!(
            summarize(keyed),
            r#"response {"accessToken": "<redacted>", "x": 1}"#
        );
        let guid = "ERROR: Subscription '00000000-0000-0000-0000-000000000000' not found.";
        assert!(summarize(guid).contains("00000000-0000-0000-0000-000000000000"));
        let long = format!("ERROR: {}", "word ".repeat(200));
        assert!(summarize(&long).len() <= crate::scrub::MAX_BYTES + '…'.len_utf8());
    }

    #[test]
    fn the_windows_fallback_is_looked_for_on_windows_only() {
        let tool = Tool {
            program: "pwsh",
            windows_fallback: Some("powershell"),
            ..crate::developer_tools::azure_cli::TOOL
        };
        assert_eq!(
            tool.programs(true).collect::<Vec<_>>(),
            ["pwsh", "powershell"]
        );
        assert_eq!(tool.programs(false).collect::<Vec<_>>(), ["pwsh"]);
    }

    #[test]
    fn aadsts_codes_are_found_once_each() {
        assert_eq!(
            aadsts_codes("AADSTS700082: x AADSTS50076 y AADSTS700082"),
            [700082, 50076]
        );
        assert!(aadsts_codes("AADSTS: nothing").is_empty());
    }

    #[test]
    fn base64_matches_the_standard() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            (
                r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#,
                "eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19",
            ),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn login_watch_looks_at_most_once_per_interval() {
        let fs = Fs::memory();
        let path = PathBuf::from("/cfg/azureProfile.json");
        fs.write(&path, "one");
        let second = 1_000_000_000;
        let watch = LoginWatch::new(fs.clone(), vec![path.clone()], 0);
        let before = watch.fingerprint();
        assert!(!watch.due(second - 1));
        fs.write(&path, "two");
        assert!(watch.due(second));
        assert!(watch.changed(second));
        assert_ne!(watch.fingerprint(), before);
        // Not again within the interval, even though it changed again.
        fs.write(&path, "three");
        assert!(!watch.changed(second + 1));
        assert!(watch.changed(2 * second));
        assert!(!watch.changed(3 * second));
        fs.remove(&path);
        assert!(watch.changed(4 * second));
        assert_eq!(watch.fingerprint(), "none");
    }
}
