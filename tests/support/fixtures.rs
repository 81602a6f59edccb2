//! The recorded payloads under `fixtures/`, and scratch directories on the real file system.

use std::path::{Path, PathBuf};

use azure_credentials::system::Output;

/// `fixtures/{relative}`.
pub fn path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(relative)
}

/// The bytes of `fixtures/{dir}/{name}`.
pub fn read(dir: &str, name: &str) -> Vec<u8> {
    std::fs::read(path(dir).join(name)).unwrap_or_else(|e| panic!("fixtures/{dir}/{name}: {e}"))
}

/// The text of `fixtures/{dir}/{name}`.
pub fn read_to_string(dir: &str, name: &str) -> String {
    String::from_utf8(read(dir, name)).unwrap_or_else(|e| panic!("fixtures/{dir}/{name}: {e}"))
}

/// A test certificate or key: `fixtures/certs/{name}`.
pub fn cert(name: &str) -> PathBuf {
    path("certs").join(name)
}

/// The certificate with its chain (leaf and CA) and the key, and its password: the
/// password-protected PKCS#12 file when the crate reads PKCS#12 (feature `pkcs12`), else the
/// same certificate, chain and key in PEM.
#[allow(dead_code)] // Not every test binary uses it.
pub fn chain_cert() -> (PathBuf, Option<&'static str>) {
    if cfg!(feature = "pkcs12") {
        (cert("client.pfx"), Some("fixture-password"))
    } else {
        (cert("client-chain.pem"), None)
    }
}

/// What a developer tool printed in one recorded case, `fixtures/{tool}/{case}/` (`tool` is
/// `azure_cli`, `azure_developer_cli` or `azure_powershell`): its stdout, stderr and exit code.
pub fn tool_output(tool: &str, case: &str) -> Output {
    let dir = format!("{tool}/{case}");
    let code = read_to_string(&dir, "exit_code")
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("fixtures/{dir}/exit_code: {e}"));
    Output::new(Some(code), read(&dir, "stdout"), read(&dir, "stderr"))
}

/// An empty directory of this test process's own under the target directory (emptied if a
/// previous run left it), for files that must be real: `{prefix}-{pid}-{name}`.
pub fn scratch_dir(prefix: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
