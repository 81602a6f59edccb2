//! The developer tools' side of a test: a scripted executor with a deterministic cache, what
//! the credential asked it to run, and stand-ins for the tools.

use std::sync::Arc;

use std::time::Duration;

use azure_credentials::system::{Env, Fs, ManualClock, ProcessError};
use azure_credentials::testing::ScriptedExecutor;
use azure_credentials::{Context, ErrorKind, TokenCache, TokenCredential};

use super::cache;
use super::fixtures::tool_output;

/// The home tenant in the recorded outputs and configuration of az and azd.
pub const TENANT_A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The other tenant they name (`--tenant`, a second account).
pub const TENANT_B: &str = "0b1c3e5a-8d2f-4c6b-9a7e-1f2d3c4b5a69";

/// A developer tool's machine: a scripted executor with nothing scripted yet, an empty in-memory
/// file system, and a cache on a manual clock with no random spread and no failure cool-down.
pub struct Setup {
    /// The tool's directory under `fixtures/`: `azure_cli`, `azure_developer_cli` or
    /// `azure_powershell`.
    pub tool: &'static str,
    pub executor: ScriptedExecutor,
    pub clock: ManualClock,
    pub cache: TokenCache,
    pub fs: Fs,
}

impl Setup {
    pub fn new(tool: &'static str) -> Setup {
        let clock = cache::manual_clock();
        Setup {
            tool,
            executor: ScriptedExecutor::new(),
            cache: cache::deterministic_without_cooldown(clock.clock()),
            clock,
            fs: Fs::memory(),
        }
    }

    /// The next run of the tool prints what it printed in the recorded `case`.
    pub fn replays(&self, case: &str) {
        self.executor.push_output(tool_output(self.tool, case));
    }

    /// Every run of the tool prints what it printed in the recorded `case`.
    pub fn always_replays(&self, case: &str) {
        self.executor.repeat_output(tool_output(self.tool, case));
    }

    /// Makes the next run of `program` time out (killed after 10 s) and checks that `credential`
    /// then fails with a timeout whose fix names `source`'s `process_timeout` builder option.
    pub async fn assert_timeout_names_the_option(
        &self,
        program: &str,
        credential: &impl TokenCredential,
        source: &str,
    ) {
        self.executor
            .push_error(ProcessError::timed_out(program, Duration::from_secs(10)));
        let scope = ["https://management.azure.com/.default"];
        let err = credential.get_token(&scope, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        let option = format!("{source}::builder().process_timeout(");
        assert!(err.fix().unwrap().contains(&option), "{err}");
    }

    /// Its seams for a credential, with `env` as the environment.
    pub fn context(&self, env: Env) -> Context {
        Context::default()
            .with_env(env)
            .with_fs(self.fs.clone())
            .with_executor(Arc::new(self.executor.clone()))
            .with_cache(self.cache.clone())
    }
}

/// An environment of `base` variables with `extra` ones added (or replacing theirs).
pub fn env(base: &[(&str, &str)], extra: &[(&str, &str)]) -> Env {
    Env::from_pairs(base.iter().chain(extra).copied())
}

/// An environment with `tool`'s stand-in directory (`fixtures/<tool>/bin`) on `PATH`, the `base`
/// variables, and the `extra` ones added (or replacing theirs).
pub fn tool_env(tool: &str, base: &[(&str, &str)], extra: &[(&str, &str)]) -> Env {
    let bin = super::fixtures::path(tool).join("bin");
    let path = [("PATH", bin.to_str().unwrap())];
    Env::from_pairs(path.iter().chain(base).chain(extra).copied())
}

/// The arguments of the last command the executor ran (after the program).
pub fn last_args(executor: &ScriptedExecutor) -> Vec<String> {
    executor
        .last_command()
        .unwrap()
        .get_args()
        .iter()
        .map(|a| a.to_str().unwrap().to_owned())
        .collect()
}

/// An executor whose next command prints what `tool` printed in the recorded `case` (see
/// [`super::fixtures::tool_output`]).
pub fn replaying(tool: &str, case: &str) -> ScriptedExecutor {
    let executor = ScriptedExecutor::new();
    executor.push_output(tool_output(tool, case));
    executor
}

/// A directory of this test process's own holding one executable shell script, `name`, that runs
/// `script`: put it on `PATH` in place of a developer tool.
#[cfg(unix)]
pub fn stand_in(name: &str, script: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = super::fixtures::scratch_dir("stand-in", name);
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{script}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The script of a `-EncodedCommand` argument: base64 of UTF-16LE text.
pub fn decode_encoded_command(encoded: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = Vec::new();
    let (mut bits, mut count) = (0u32, 0);
    for c in encoded.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    assert_eq!(bytes.len() % 2, 0, "UTF-16 is two bytes a unit");
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).expect("UTF-16")
}
