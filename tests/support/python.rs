//! Python virtualenvs under the target directory, for the tests that run the other SDKs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The python of a virtualenv `target/tmp/{name}-venv` with `requirement` (e.g.
/// `msal==1.39.0`) installed from PyPI, made on the first call and reused while it exists;
/// `None` after printing a visible `SKIPPED: ...` line when python3 cannot make one or PyPI
/// cannot be reached.
pub fn venv(name: &str, requirement: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-venv"));
    let python = dir.join("bin").join("python");
    let ready = dir.join("installed");
    if std::fs::read_to_string(&ready).is_ok_and(|done| done == requirement) {
        return Some(python);
    }
    let created = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&dir)
        .output();
    match created {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            println!(
                "SKIPPED: python3 -m venv failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Err(e) => {
            println!("SKIPPED: python3 cannot be run: {e}");
            return None;
        }
    }
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--timeout",
            "30",
            requirement,
        ])
        .output();
    match installed {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            println!(
                "SKIPPED: {requirement} could not be installed from PyPI: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Err(e) => {
            println!("SKIPPED: pip cannot be run: {e}");
            return None;
        }
    }
    std::fs::write(&ready, requirement).unwrap();
    Some(python)
}
