//! The plain-file store: one cache file readable by its user only, replaced atomically.
//!
//! Every write goes to a fresh temp file in the same directory (`{name}.tmp-{pid}-{random}`,
//! created `0600` with `O_EXCL`), is fsynced, renamed over the file, and the directory is
//! fsynced: a reader, or a process that starts after a crash, sees the old or the new contents,
//! never a mix. Writers are expected to hold the [`CrossProcessLock`](super::lock::CrossProcessLock):
//! a successful write removes every other `{name}.tmp-*` file, which under the lock can only be
//! left over by a writer that died (a concurrent writer without the lock would see its rename
//! fail, never a torn file).

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::error::{PersistError, PersistErrorKind};

/// The largest cache file read or written; MSAL caches are kilobytes, a few hundred accounts
/// stay far below this.
pub(crate) const MAX_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// Attempts at a fresh temp or set-aside name before giving up (collisions need a random clash
/// or a second set-aside within the same second).
const NAME_ATTEMPTS: u32 = 16;

/// The plain-file store: the cache file readable by its user only.
#[derive(Debug, Clone)]
pub(crate) struct FileStore {
    path: PathBuf,
}

/// What identifies a version of the cache file cheaply; it changes when the file is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    /// The inode on Unix (each write renames a new file into place); 0 elsewhere.
    file_id: u64,
}

impl FileStore {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The cache file's contents; `None` when the file (or its directory) does not exist.
    ///
    /// Refuses a file or directory owned by another user, a file that other users may read or
    /// write, a directory that other users may write, a symbolic link or other non-regular
    /// file, and a file larger than [`MAX_CACHE_BYTES`].
    pub(crate) fn read(&self) -> Result<Option<Vec<u8>>, PersistError> {
        let dir = self.dir();
        match std::fs::metadata(dir) {
            Ok(metadata) => check_dir(dir, &metadata)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(io_error(
                    "could not inspect the token cache directory",
                    dir,
                    e,
                ));
            }
        }
        let file = match open_for_read(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                if let Ok(metadata) = std::fs::symlink_metadata(&self.path) {
                    check_existing_file(&self.path, &metadata)?;
                }
                return Err(io_error(
                    "could not open the token cache file",
                    &self.path,
                    e,
                ));
            }
        };
        let metadata = file
            .metadata()
            .map_err(|e| io_error("could not inspect the token cache file", &self.path, e))?;
        check_existing_file(&self.path, &metadata)?;
        let mut contents = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
        // The file may grow between the check and the read: read one byte past the cap to know.
        file.take(MAX_CACHE_BYTES.saturating_add(1))
            .read_to_end(&mut contents)
            .map_err(|e| io_error("could not read the token cache file", &self.path, e))?;
        if contents.len() as u64 > MAX_CACHE_BYTES {
            return Err(too_large(&self.path));
        }
        Ok(Some(contents))
    }

    /// Atomically replaces the contents: parent directories created `0700`, a temp file in the
    /// same directory created `0600` (`O_EXCL`), written, fsynced, renamed over the file, then
    /// the directory fsynced. Refuses what [`read`](Self::read) refuses (an existing file that
    /// is a link, another user's, or readable by others is left as it is).
    pub(crate) fn write(&self, bytes: &[u8]) -> Result<(), PersistError> {
        if bytes.len() as u64 > MAX_CACHE_BYTES {
            return Err(too_large(&self.path));
        }
        let name = self.file_name()?;
        let dir = self.dir();
        create_private_dir(dir)?;
        match std::fs::symlink_metadata(&self.path) {
            Ok(metadata) => check_existing_file(&self.path, &metadata)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io_error(
                    "could not inspect the token cache file",
                    &self.path,
                    e,
                ));
            }
        }
        let (temp_path, mut temp) = create_temp(dir, name)
            .map_err(|e| io_error("could not create a temp file beside", &self.path, e))?;
        let written = temp
            .write_all(bytes)
            .and_then(|()| temp.sync_all())
            .and_then(|()| {
                drop(temp);
                std::fs::rename(&temp_path, &self.path)
            });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp_path);
            return Err(io_error(
                "could not write the token cache file",
                &self.path,
                e,
            ));
        }
        sync_dir(dir).map_err(|e| io_error("could not sync the token cache directory", dir, e))?;
        remove_stale_temps(dir, name);
        Ok(())
    }

    /// Sets the file's modification time to `now` (always later than before, to the nanosecond),
    /// creating it empty (`0600`) when it is missing: the change signal of a document kept
    /// elsewhere (the Secret Service), as msal-extensions touches it. The contents are left as
    /// they are. A file readable by others is accepted (Python creates it `0644`; it holds no
    /// secret of ours); a link, a non-regular file or another user's file is refused.
    #[cfg_attr(
        not(any(target_os = "macos", all(feature = "secret-service", not(windows)))),
        allow(dead_code)
    )]
    pub(crate) fn touch(&self, now: SystemTime) -> Result<(), PersistError> {
        let metadata = match std::fs::symlink_metadata(&self.path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.write(&[]),
            Err(e) => {
                return Err(io_error(
                    "could not inspect the token cache signal file",
                    &self.path,
                    e,
                ));
            }
        };
        if !metadata.file_type().is_file() {
            return check_existing_file(&self.path, &metadata);
        }
        #[cfg(unix)]
        check_owner(
            &self.path,
            "file",
            std::os::unix::fs::MetadataExt::uid(&metadata),
        )?;
        let modified = match metadata.modified() {
            Ok(before) if before >= now => before + std::time::Duration::from_nanos(1),
            _ => now,
        };
        open_for_read(&self.path)
            .and_then(|file| file.set_modified(modified))
            .map_err(|e| io_error("could not touch the token cache signal file", &self.path, e))
    }

    /// Renames the file to `{name}.corrupt-{unix_seconds}` (`-1`, `-2`, ... appended when that
    /// exists) and returns the new path; a warning is the caller's.
    pub(crate) fn set_aside(&self, unix_seconds: i64) -> Result<PathBuf, PersistError> {
        let name = self.file_name()?;
        let dir = self.dir();
        let mut base = OsString::from(name);
        base.push(format!(".corrupt-{unix_seconds}"));
        for attempt in 0..NAME_ATTEMPTS {
            let mut candidate = base.clone();
            if attempt > 0 {
                candidate.push(format!("-{attempt}"));
            }
            let target = dir.join(candidate);
            if std::fs::symlink_metadata(&target).is_ok() {
                continue;
            }
            return std::fs::rename(&self.path, &target)
                .map(|()| target)
                .map_err(|e| io_error("could not set aside the token cache file", &self.path, e));
        }
        Err(PersistError::new(
            PersistErrorKind::Io,
            format!(
                "could not set aside the token cache file {}: {NAME_ATTEMPTS} files named {}* \
                 exist already; delete the old ones",
                self.path.display(),
                Path::new(&base).display(),
            ),
        ))
    }

    /// A cheap stamp that changes when the file is replaced; `None` when it cannot be read.
    pub(crate) fn stamp(&self) -> Option<FileStamp> {
        let metadata = std::fs::symlink_metadata(&self.path).ok()?;
        #[cfg(unix)]
        let file_id = std::os::unix::fs::MetadataExt::ino(&metadata);
        #[cfg(not(unix))]
        let file_id = 0;
        Some(FileStamp {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            file_id,
        })
    }

    fn dir(&self) -> &Path {
        parent_dir(&self.path)
    }

    fn file_name(&self) -> Result<&OsStr, PersistError> {
        self.path.file_name().ok_or_else(|| {
            PersistError::new(
                PersistErrorKind::NotRegular,
                format!(
                    "the token cache path {} does not name a file; give it a file name",
                    self.path.display()
                ),
            )
        })
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Creates `dir` and its missing parents `0700`, then checks it as [`FileStore::read`] does.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), PersistError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| io_error("could not create the token cache directory", dir, e))?;
    let metadata = std::fs::metadata(dir)
        .map_err(|e| io_error("could not inspect the token cache directory", dir, e))?;
    check_dir(dir, &metadata)
}

/// A directory must be this user's and not writable by others (who could swap the file). Its
/// read bits are not checked: Python's msal-extensions creates `~/.IdentityService` with
/// `os.makedirs`' default mode, `0755` under the usual umask.
fn check_dir(dir: &Path, metadata: &Metadata) -> Result<(), PersistError> {
    if !metadata.is_dir() {
        return Err(PersistError::new(
            PersistErrorKind::NotRegular,
            format!(
                "the token cache directory {} is not a directory; remove it or choose another \
                 cache location",
                dir.display()
            ),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        check_owner(dir, "directory", metadata.uid())?;
        let mode = metadata.mode() & 0o7777;
        // Group-writable is fine when the group is the user's own primary group (a user
        // private group: with umask 002, Python creates `~/.IdentityService` 0775).
        let own_group = metadata.gid() == crate::system::unix::effective_gid();
        if mode & 0o002 != 0 || (mode & 0o020 != 0 && !own_group) {
            return Err(PersistError::new(
                PersistErrorKind::InsecureMode,
                format!(
                    "the token cache directory {} can be written by other users (mode {mode:04o}); \
                     run `chmod 700 {}`",
                    dir.display(),
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

/// An existing cache file must be a regular file of this user's, private to it, and not larger
/// than the cap.
fn check_existing_file(path: &Path, metadata: &Metadata) -> Result<(), PersistError> {
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        let what = if file_type.is_symlink() {
            "a symbolic link (the cache is never read or written through a link)"
        } else if file_type.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(PersistError::new(
            PersistErrorKind::NotRegular,
            format!(
                "the token cache path {} is {what}; replace it with a regular file or delete it",
                path.display()
            ),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        check_owner(path, "file", metadata.uid())?;
        let mode = metadata.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(PersistError::new(
                PersistErrorKind::InsecureMode,
                format!(
                    "the token cache file {} can be accessed by other users (mode {mode:04o}); \
                     run `chmod 600 {}` (or delete it if it may have been read)",
                    path.display(),
                    path.display()
                ),
            ));
        }
    }
    if metadata.len() > MAX_CACHE_BYTES {
        return Err(too_large(path));
    }
    Ok(())
}

#[cfg(unix)]
fn check_owner(path: &Path, what: &str, uid: u32) -> Result<(), PersistError> {
    let euid = crate::system::unix::effective_uid();
    if uid == euid {
        return Ok(());
    }
    Err(PersistError::new(
        PersistErrorKind::WrongOwner,
        format!(
            "the token cache {what} {} belongs to user {uid}, not to this process's user {euid}; \
             the cache is only used when it is the user's own: remove it, fix its owner \
             (`chown`), or choose another cache location",
            path.display()
        ),
    ))
}

fn too_large(path: &Path) -> PersistError {
    PersistError::new(
        PersistErrorKind::TooLarge,
        format!(
            "the token cache file {} is larger than {} MiB; move it aside (the cache starts \
             empty) or choose another cache location",
            path.display(),
            MAX_CACHE_BYTES / (1024 * 1024)
        ),
    )
}

fn io_error(doing: &str, path: &Path, source: io::Error) -> PersistError {
    PersistError::io(format!("{doing} {}", path.display()), source)
}

/// Opens for reading without following a final symbolic link; a FIFO opens at once (and is
/// refused after `fstat`) instead of waiting for a writer.
fn open_for_read(path: &Path) -> io::Result<File> {
    crate::system::open_for_read_nofollow(path)
}

/// `{name}.tmp-`: the prefix of every temp file of the cache file `name`.
fn temp_prefix(name: &OsStr) -> OsString {
    let mut prefix = OsString::from(name);
    prefix.push(".tmp-");
    prefix
}

/// A new temp file beside the cache file, created exclusively, `0600`, not through a link.
fn create_temp(dir: &Path, name: &OsStr) -> io::Result<(PathBuf, File)> {
    let mut last_error = None;
    for _ in 0..NAME_ATTEMPTS {
        let mut temp_name = temp_prefix(name);
        temp_name.push(format!("{}-{:016x}", std::process::id(), fastrand::u64(..)));
        let path = dir.join(temp_name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options
                .mode(0o600)
                .custom_flags(crate::system::unix::O_NOFOLLOW);
        }
        match options.open(&path) {
            Ok(file) => {
                // The umask can only have removed bits; make the mode exactly 0600.
                #[cfg(unix)]
                if let Err(e) =
                    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
                {
                    drop(file);
                    let _ = std::fs::remove_file(&path);
                    return Err(e);
                }
                return Ok((path, file));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free temp file name")))
}

/// Makes a rename in `dir` durable (Unix; Windows has no directory handles to sync).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Removes the temp files that writers which died mid-write left (see the module docs).
fn remove_stale_temps(dir: &Path, name: &OsStr) {
    let prefix = temp_prefix(name);
    let prefix = prefix.as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().as_encoded_bytes().starts_with(prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The temp files of `path` that exist now (for tests).
#[cfg(test)]
pub(crate) fn temp_files(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name() else {
        return Vec::new();
    };
    let prefix = temp_prefix(name);
    let Ok(entries) = std::fs::read_dir(parent_dir(path)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .as_encoded_bytes()
                .starts_with(prefix.as_encoded_bytes())
        })
        .map(|entry| entry.path())
        .collect()
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    use std::io::Write as _;

    use super::*;
    use crate::cache::persist::tests::scratch_dir;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[cfg(unix)]
    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Asserts `error` is `kind` and its message names `path` and contains `fix`.
    fn assert_refused(error: PersistError, kind: PersistErrorKind, path: &Path, fix: &str) {
        assert_eq!(error.kind(), kind, "{error}");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(fix), "{message}");
    }

    #[test]
    fn a_missing_file_or_directory_reads_as_none() {
        let dir = scratch_dir("missing");
        assert!(
            FileStore::new(dir.join("msal.cache"))
                .read()
                .unwrap()
                .is_none()
        );
        let deeper = dir.join("not-yet").join("msal.cache");
        assert!(FileStore::new(deeper).read().unwrap().is_none());
    }

    #[cfg(unix)]
    #[test]
    fn a_write_creates_the_file_0600_and_its_directories_0700() {
        let dir = scratch_dir("modes");
        let identity_service = dir.join(".IdentityService");
        let path = identity_service.join("sub").join("msal.cache.nocae");
        let store = FileStore::new(path.clone());
        store.write(b"{}").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&identity_service), 0o700);
        assert_eq!(mode(&identity_service.join("sub")), 0o700);
        assert_eq!(store.read().unwrap().unwrap(), b"{}");
        // A replacement is a new file, 0600 again.
        store.write(b"{\"AccessToken\":{}}").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(store.read().unwrap().unwrap(), b"{\"AccessToken\":{}}");
        assert!(temp_files(&path).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_file_readable_by_others_is_refused_and_left_alone() {
        let dir = scratch_dir("insecure-file");
        let path = dir.join("msal.cache");
        std::fs::write(&path, b"{}").unwrap();
        set_mode(&dir, 0o700);
        for insecure in [0o644, 0o640, 0o604, 0o660] {
            set_mode(&path, insecure);
            let store = FileStore::new(path.clone());
            let fix = format!("chmod 600 {}", path.display());
            assert_refused(
                store.read().unwrap_err(),
                PersistErrorKind::InsecureMode,
                &path,
                &fix,
            );
            assert_refused(
                store.write(b"new").unwrap_err(),
                PersistErrorKind::InsecureMode,
                &path,
                &fix,
            );
            assert_eq!(mode(&path), insecure);
            assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_writable_by_others_is_refused() {
        let dir = scratch_dir("insecure-dir");
        let cache_dir = dir.join(".IdentityService");
        std::fs::create_dir(&cache_dir).unwrap();
        set_mode(&cache_dir, 0o777);
        let store = FileStore::new(cache_dir.join("msal.cache"));
        let fix = format!("chmod 700 {}", cache_dir.display());
        assert_refused(
            store.read().unwrap_err(),
            PersistErrorKind::InsecureMode,
            &cache_dir,
            &fix,
        );
        assert_refused(
            store.write(b"{}").unwrap_err(),
            PersistErrorKind::InsecureMode,
            &cache_dir,
            &fix,
        );
        assert!(!cache_dir.join("msal.cache").exists());
        // Writable by a group that is not the user's own: refused too.
        if crate::system::unix::effective_uid() == 0 {
            set_mode(&cache_dir, 0o770);
            std::os::unix::fs::chown(&cache_dir, None, Some(65534)).unwrap();
            assert_refused(
                store.read().unwrap_err(),
                PersistErrorKind::InsecureMode,
                &cache_dir,
                &fix,
            );
            let own_gid = crate::system::unix::effective_gid();
            std::os::unix::fs::chown(&cache_dir, None, Some(own_gid)).unwrap();
        } else {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: the foreign-group case needs root"
            );
        }
        // What Python's msal-extensions creates (os.makedirs under umask 022 or, with a user
        // private group, 002): accepted.
        for python_mode in [0o755, 0o775] {
            set_mode(&cache_dir, python_mode);
            store.write(b"{}").unwrap();
            assert_eq!(store.read().unwrap().unwrap(), b"{}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_neither_read_nor_written_through() {
        let dir = scratch_dir("symlink");
        let target = dir.join("target");
        std::fs::write(&target, b"not the cache").unwrap();
        set_mode(&target, 0o600);
        let path = dir.join("msal.cache");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let store = FileStore::new(path.clone());
        let fix = "replace it with a regular file or delete it";
        assert_refused(
            store.read().unwrap_err(),
            PersistErrorKind::NotRegular,
            &path,
            fix,
        );
        assert_refused(
            store.write(b"{}").unwrap_err(),
            PersistErrorKind::NotRegular,
            &path,
            fix,
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"not the cache");
        assert!(
            std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_directory_in_place_of_the_file_is_refused() {
        let dir = scratch_dir("dir-as-file");
        let path = dir.join("msal.cache");
        std::fs::create_dir(&path).unwrap();
        let store = FileStore::new(path.clone());
        let fix = "replace it with a regular file or delete it";
        assert_refused(
            store.read().unwrap_err(),
            PersistErrorKind::NotRegular,
            &path,
            fix,
        );
        assert_refused(
            store.write(b"{}").unwrap_err(),
            PersistErrorKind::NotRegular,
            &path,
            fix,
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_file_or_directory_of_another_user_is_refused() {
        if crate::system::unix::effective_uid() != 0 {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: changing a file's owner needs root"
            );
            return;
        }
        let nobody = Some(65534);
        let dir = scratch_dir("wrong-owner");
        set_mode(&dir, 0o700);
        let fix = "remove it, fix its owner (`chown`), or choose another cache location";

        // The file.
        let path = dir.join("msal.cache");
        std::fs::write(&path, b"{}").unwrap();
        set_mode(&path, 0o600);
        std::os::unix::fs::chown(&path, nobody, nobody).unwrap();
        let store = FileStore::new(path.clone());
        assert_refused(
            store.read().unwrap_err(),
            PersistErrorKind::WrongOwner,
            &path,
            fix,
        );
        assert_refused(
            store.write(b"new").unwrap_err(),
            PersistErrorKind::WrongOwner,
            &path,
            fix,
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");

        // The directory.
        let other_dir = dir.join(".IdentityService");
        std::fs::create_dir(&other_dir).unwrap();
        set_mode(&other_dir, 0o700);
        std::os::unix::fs::chown(&other_dir, nobody, nobody).unwrap();
        let store = FileStore::new(other_dir.join("msal.cache"));
        assert_refused(
            store.read().unwrap_err(),
            PersistErrorKind::WrongOwner,
            &other_dir,
            fix,
        );
        assert_refused(
            store.write(b"{}").unwrap_err(),
            PersistErrorKind::WrongOwner,
            &other_dir,
            fix,
        );
        assert!(!other_dir.join("msal.cache").exists());
    }

    #[test]
    fn a_file_over_16_mib_is_refused_and_never_written() {
        let dir = scratch_dir("too-large");
        let path = dir.join("msal.cache");
        let store = FileStore::new(path.clone());
        let fix = "move it aside";
        assert_refused(
            store
                .write(&vec![b' '; MAX_CACHE_BYTES as usize + 1])
                .unwrap_err(),
            PersistErrorKind::TooLarge,
            &path,
            fix,
        );
        assert!(!path.exists());
        store.write(b"{}").unwrap();
        // Sparse: no 16 MiB written to disk.
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(MAX_CACHE_BYTES + 1)
            .unwrap();
        assert_refused(
            store.read().unwrap_err(),
            PersistErrorKind::TooLarge,
            &path,
            fix,
        );
    }

    #[test]
    fn set_aside_renames_the_file_and_the_next_read_sees_none() {
        let dir = scratch_dir("set-aside");
        let path = dir.join("msal.cache");
        let store = FileStore::new(path.clone());
        store.write(b"{not json").unwrap();
        let aside = store.set_aside(1_790_000_000).unwrap();
        assert_eq!(aside, dir.join("msal.cache.corrupt-1790000000"));
        assert_eq!(std::fs::read(&aside).unwrap(), b"{not json");
        assert!(store.read().unwrap().is_none());
        assert!(store.stamp().is_none());

        // A second one within the same second keeps the first.
        store.write(b"{again").unwrap();
        let second = store.set_aside(1_790_000_000).unwrap();
        assert_eq!(second, dir.join("msal.cache.corrupt-1790000000-1"));
        assert_eq!(std::fs::read(&aside).unwrap(), b"{not json");
        assert_eq!(std::fs::read(&second).unwrap(), b"{again");
        assert!(store.read().unwrap().is_none());
        // Nothing to set aside: an I/O error naming the file.
        let error = store.set_aside(1_790_000_001).unwrap_err();
        assert_eq!(error.kind(), PersistErrorKind::Io);
        assert!(error.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn the_stamp_changes_when_the_file_is_replaced() {
        let dir = scratch_dir("stamp");
        let store = FileStore::new(dir.join("msal.cache"));
        assert!(store.stamp().is_none());
        store.write(b"{}").unwrap();
        let first = store.stamp().unwrap();
        assert_eq!(store.stamp(), Some(first));
        // Same length, so only the time or the inode can tell.
        store.write(b"[]").unwrap();
        assert_ne!(store.stamp(), Some(first));
    }

    #[cfg(unix)]
    #[test]
    fn touch_creates_an_empty_private_signal_and_then_only_moves_its_time_forward() {
        let dir = scratch_dir("touch");
        let store = FileStore::new(dir.join("msal.cache.nocae"));
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000);
        store.touch(now).unwrap();
        assert_eq!(mode(store.path()), 0o600);
        assert_eq!(std::fs::read(store.path()).unwrap(), b"");
        // A file Python created (0644, with whatever it holds) is touched, not rewritten.
        std::fs::write(store.path(), b"python's").unwrap();
        set_mode(store.path(), 0o644);
        store.touch(now).unwrap();
        let first = store.stamp().unwrap();
        // The same instant again (a coarse clock): still a new stamp.
        store.touch(now).unwrap();
        assert_ne!(store.stamp(), Some(first));
        assert_eq!(std::fs::read(store.path()).unwrap(), b"python's");
        // A link is refused.
        let link = FileStore::new(dir.join("link"));
        std::os::unix::fs::symlink(store.path(), link.path()).unwrap();
        let error = link.touch(now).unwrap_err();
        assert_eq!(error.kind(), PersistErrorKind::NotRegular);
    }

    #[cfg(unix)]
    #[test]
    fn stale_temp_files_of_dead_writers_are_removed_by_the_next_write() {
        let dir = scratch_dir("stale-temps");
        set_mode(&dir, 0o700);
        let path = dir.join("msal.cache");
        std::fs::write(dir.join("msal.cache.tmp-1-00000000deadbeef"), b"partial").unwrap();
        std::fs::write(
            dir.join("msal.cache.nocae.tmp-1-0000000000000001"),
            b"other",
        )
        .unwrap();
        FileStore::new(path.clone()).write(b"{}").unwrap();
        assert!(temp_files(&path).is_empty());
        // Another cache's temp files are not this store's to remove.
        assert!(dir.join("msal.cache.nocae.tmp-1-0000000000000001").exists());
    }
}
