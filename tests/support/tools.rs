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
