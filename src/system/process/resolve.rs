//! Finding a program in `PATH` the way a shell would.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::system::Env;

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
    #[cfg(unix)]
    use crate::system::process::tests::{TempDir, write_file};

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
