//! The developer tools' side of a test: what the credential asked the scripted executor to run.

use azure_credentials::testing::ScriptedExecutor;

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
    executor.push_output(super::fixtures::tool_output(tool, case));
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
