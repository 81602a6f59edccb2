//! [`CrossProcessLock`]: an exclusive lock on `{cache file}.lockfile` shared by every process
//! that uses the cache, held around each read-modify-write.
//!
//! The lock is std's `File::lock` family (`flock` on Unix, `LockFileEx` on Windows), the same
//! kind Python's msal-extensions takes on the same file name (portalocker), so this crate and
//! Python tools exclude each other. The lock file itself is never deleted by us; since other
//! tools may delete theirs on release, a lock is only kept once the path still names the file
//! that was locked.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{PersistError, PersistErrorKind};
use super::file::{create_private_dir, parent_dir};

/// The first pause between attempts; pauses double up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const MAX_PAUSE: Duration = Duration::from_millis(25);

/// An exclusive cross-process lock on a lock file, released on drop.
#[derive(Debug)]
pub(crate) struct CrossProcessLock {
    file: File,
    #[cfg_attr(not(test), allow(dead_code))]
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
            let file = open_lock_file(lock_path)?;
            match file.try_lock() {
                Ok(()) => {
                    if still_names(&file, lock_path) {
                        return Ok(Self {
                            file,
                            path: lock_path.to_path_buf(),
                        });
                    }
                    // Another tool deleted or replaced the file after we opened it: the lock
                    // we hold excludes nobody. Try again on the file the path names now.
                }
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(PersistError::io(
                        format!("could not lock {}", lock_path.display()),
                        e,
                    ));
                }
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
        // Closing the file releases the lock too; unlocking first makes the release immediate
        // even if the descriptor was duplicated.
        let _ = self.file.unlock();
    }
}

fn open_lock_file(path: &Path) -> Result<File, PersistError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    options.open(path).map_err(|e| {
        let is_link = std::fs::symlink_metadata(path)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        if is_link {
            PersistError::new(
                PersistErrorKind::NotRegular,
                format!(
                    "the token cache lock file {} is a symbolic link; delete it (it is \
                     recreated)",
                    path.display()
                ),
            )
        } else {
            PersistError::io(format!("could not open {}", path.display()), e)
        }
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
        let file = open_lock_file(&path).unwrap();
        assert!(still_names(&file, &path));
        std::fs::remove_file(&path).unwrap();
        assert!(!still_names(&file, &path));
        let _replacement = open_lock_file(&path).unwrap();
        assert!(!still_names(&file, &path));
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
