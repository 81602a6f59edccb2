//! [`CrossProcessLock`]: an exclusive lock on `{cache file}.lockfile` shared by every process
//! that uses the cache, held around each read-modify-write.
//!
//! Two protocols at once, as Python's msal-extensions uses both on the same file name: the
//! file's existence (msal-extensions creates it with `open(.., 'x')`, writes `pid argv0` and
//! deletes it on release; without portalocker that is its whole lock), and std's `File::lock`
//! on it (`flock` / `LockFileEx`, what msal-extensions takes with portalocker). So the lock is
//! taken by creating the file exclusively and locking it, and released by deleting it and
//! unlocking. A lock file left by a crashed process (older than [`STALE_AFTER`] and locked by
//! no one) is taken over, as msal-extensions with portalocker does after its 5 s wait. A lock is
//! only kept once the path still names the file that was locked.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{PersistError, PersistErrorKind};
use super::file::{create_private_dir, parent_dir};

/// The first pause between attempts; pauses double up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const MAX_PAUSE: Duration = Duration::from_millis(25);
/// A lock file this old that nobody holds a lock on is a crashed process's leftover.
const STALE_AFTER: Duration = Duration::from_secs(5);

/// An exclusive cross-process lock on a lock file, released on drop.
#[derive(Debug)]
pub(crate) struct CrossProcessLock {
    file: File,
    path: PathBuf,
}

impl CrossProcessLock {
    /// Takes the lock on `lock_path` (created `0600`, its directory `0700`, if missing),
    /// waiting at most about `timeout` for another process to release it. This blocks the
    /// thread: call it where blocking is allowed (`spawn_blocking`).
    ///
    /// The wait is counted in the pauses taken between attempts, not read from a clock, so
    /// a paused test clock cannot make it wait forever.
    pub(crate) fn acquire(lock_path: &Path, timeout: Duration) -> Result<Self, PersistError> {
        create_private_dir(parent_dir(lock_path))?;
        let mut waited = Duration::ZERO;
        let mut pause = FIRST_PAUSE;
        loop {
            if let Some(file) = try_take(lock_path)? {
                return Ok(Self {
                    file,
                    path: lock_path.to_path_buf(),
                });
            }
            if waited >= timeout {
                return Err(PersistError::new(
                    PersistErrorKind::LockTimeout,
                    format!(
                        "another process holds the token cache lock {} (waited {} ms); try \
                         again when it has finished, or give the cache a longer lock timeout",
                        lock_path.display(),
                        timeout.as_millis()
                    ),
                ));
            }
            let this_pause = pause.min(timeout.saturating_sub(waited));
            std::thread::sleep(this_pause);
            waited = waited.saturating_add(this_pause);
            pause = pause.saturating_mul(2).min(MAX_PAUSE);
        }
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for CrossProcessLock {
    fn drop(&mut self) {
        // Deleted while still locked (msal-extensions' release), then unlocked: closing the
        // file releases the lock too, unlocking first makes it immediate even if the
        // descriptor was duplicated.
        if still_names(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
        let _ = self.file.unlock();
    }
}

/// One attempt: create the lock file exclusively and lock it, or take over a stale one.
/// `Ok(None)` when another process holds it.
fn try_take(lock_path: &Path) -> Result<Option<File>, PersistError> {
    let (file, created) = match open_lock_file(lock_path, true) {
        Ok(file) => (file, true),
        Err(error) if error.already_exists() => {
            if std::fs::symlink_metadata(lock_path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(error.into_persist_error());
            }
            // Held under the existence protocol, by a flock, or stale.
            let stale = std::fs::symlink_metadata(lock_path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age >= STALE_AFTER);
            if !stale {
                return Ok(None);
            }
            match open_lock_file(lock_path, false) {
                Ok(file) => (file, false),
                // Deleted in between: its holder released it; try again.
                Err(_) => return Ok(None),
            }
        }
        Err(error) => return Err(error.into_persist_error()),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(PersistError::io(
                format!("could not lock {}", lock_path.display()),
                e,
            ));
        }
    }
    if !still_names(&file, lock_path) {
        // Deleted or replaced after we opened it: the lock excludes nobody.
        return Ok(None);
    }
    if !created {
        tracing::warn!(path = %lock_path.display(), "took over a stale token cache lock file");
    }
    // What msal-extensions writes: who holds it, for a person looking at a stuck lock.
    let mut owner = &file;
    let _ = std::io::Write::write_all(
        &mut owner,
        format!("{} azure-credentials", std::process::id()).as_bytes(),
    );
    Ok(Some(file))
}

/// Why the lock file could not be opened.
struct OpenError {
    path: PathBuf,
    error: std::io::Error,
}

impl OpenError {
    fn already_exists(&self) -> bool {
        self.error.kind() == std::io::ErrorKind::AlreadyExists
    }

    fn into_persist_error(self) -> PersistError {
        let is_link = std::fs::symlink_metadata(&self.path)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        if is_link {
            PersistError::new(
                PersistErrorKind::NotRegular,
                format!(
                    "the token cache lock file {} is a symbolic link; delete it (it is \
                     recreated)",
                    self.path.display()
                ),
            )
        } else {
            PersistError::io(
                format!("could not open {}", self.path.display()),
                self.error,
            )
        }
    }
}

/// Opens the lock file: `create_new` makes it exclusively (fails if it exists), else the
/// existing one is opened. Never follows a symbolic link.
fn open_lock_file(path: &Path, create_new: bool) -> Result<File, OpenError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    if create_new {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(0o600)
            .custom_flags(crate::system::unix::O_NOFOLLOW);
    }
    options.open(path).map_err(|error| OpenError {
        path: path.to_path_buf(),
        error,
    })
}

/// Whether `path` still names the open `file` (Unix: same device and inode).
fn still_names(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let (Ok(open), Ok(named)) = (file.metadata(), std::fs::symlink_metadata(path)) else {
            return false;
        };
        open.dev() == named.dev() && open.ino() == named.ino()
    }
    #[cfg(not(unix))]
    {
        // Windows does not delete a file another process has open without FILE_SHARE_DELETE.
        let _ = (file, path);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::persist::tests::scratch_dir;

    #[test]
    fn a_second_acquire_in_the_same_process_waits_too() {
        let dir = scratch_dir("lock-same-process");
        let path = dir.join("msal.cache.lockfile");
        let held = CrossProcessLock::acquire(&path, Duration::from_secs(1)).unwrap();
        let error = CrossProcessLock::acquire(&path, Duration::from_millis(20)).unwrap_err();
        assert_eq!(error.kind(), PersistErrorKind::LockTimeout);
        drop(held);
        CrossProcessLock::acquire(&path, Duration::ZERO).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_file_deleted_or_replaced_by_another_tool_is_not_trusted() {
        // msal-extensions may delete its lock file on release: a lock on a deleted file would
        // exclude nobody.
        let dir = scratch_dir("lock-deleted");
        let path = dir.join("msal.cache.lockfile");
        let file = open_lock_file(&path, true).ok().unwrap();
        assert!(still_names(&file, &path));
        std::fs::remove_file(&path).unwrap();
        assert!(!still_names(&file, &path));
        let _replacement = open_lock_file(&path, true).ok().unwrap();
        assert!(!still_names(&file, &path));
    }

    #[test]
    fn the_lock_file_exists_while_held_and_is_deleted_on_release_as_msal_extensions_expects() {
        let dir = scratch_dir("lock-existence");
        let path = dir.join("msal.cache.lockfile");
        let held = CrossProcessLock::acquire(&path, Duration::from_secs(1)).unwrap();
        assert!(path.exists());
        drop(held);
        assert!(
            !path.exists(),
            "msal-extensions without portalocker waits while it exists"
        );
    }

    #[test]
    fn a_fresh_lock_file_of_another_tool_is_waited_for_and_a_stale_one_taken_over() {
        let dir = scratch_dir("lock-other-tool");
        let path = dir.join("msal.cache.lockfile");
        // msal-extensions' file lock: the file exists, nothing flocks it.
        std::fs::write(&path, b"4242 python").unwrap();
        let error = CrossProcessLock::acquire(&path, Duration::from_millis(20)).unwrap_err();
        assert_eq!(error.kind(), PersistErrorKind::LockTimeout);
        // Left by a process that died a minute ago: taken over.
        let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let held = CrossProcessLock::acquire(&path, Duration::from_millis(20)).unwrap();
        drop(held);
        assert!(!path.exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_lock_file_is_refused() {
        let dir = scratch_dir("lock-symlink");
        let target = dir.join("elsewhere");
        let path = dir.join("msal.cache.lockfile");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let error = CrossProcessLock::acquire(&path, Duration::ZERO).unwrap_err();
        assert_eq!(error.kind(), PersistErrorKind::NotRegular);
        assert!(error.to_string().contains(&path.display().to_string()));
        assert!(!target.exists());
    }
}
