//! The file seam: reading small files (token files, certificates, CLI state) with a size cap.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;

/// Where credentials read files from: the real file system, or an in-memory one in tests.
///
/// Every read is capped: a credential never loads an unbounded file because a path pointed at
/// the wrong thing. Reads are synchronous; the files involved are a few kilobytes.
///
/// ```
/// use std::path::Path;
/// use azure_credentials::system::Fs;
///
/// let fs = Fs::memory();
/// fs.write("/var/run/secrets/azure/tokens/azure-identity-token", "eyJ...");
/// let token = fs.read(Path::new("/var/run/secrets/azure/tokens/azure-identity-token"), 64 * 1024)?;
/// assert_eq!(token, b"eyJ...");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Fs {
    kind: FsKind,
}

#[derive(Clone, Default)]
enum FsKind {
    #[default]
    Real,
    Memory(Arc<RwLock<MemoryFs>>),
}

#[derive(Default)]
struct MemoryFs {
    files: BTreeMap<PathBuf, MemoryFile>,
    /// Bumped on every write, so each write gets a later modification time.
    writes: u64,
}

struct MemoryFile {
    contents: Vec<u8>,
    modified: SystemTime,
}

/// What identifies a version of a file cheaply: its modification time and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// When the file was last modified.
    pub modified: SystemTime,
    /// Its length in bytes.
    pub len: u64,
}

impl Fs {
    /// The real file system (what credentials use unless told otherwise).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::WorkloadIdentityCredential;
    /// use azure_credentials::system::Fs;
    ///
    /// // The same as leaving it out.
    /// let builder = WorkloadIdentityCredential::builder().fs(Fs::real());
    /// ```
    pub fn real() -> Self {
        Fs { kind: FsKind::Real }
    }

    /// An empty in-memory file system; fill it with [`Fs::write`] (see the example above).
    pub fn memory() -> Self {
        Fs {
            kind: FsKind::Memory(Arc::default()),
        }
    }

    /// Writes a file of an in-memory file system (replacing it, with a later modification
    /// time). On the real file system this does nothing: credentials never write files.
    pub fn write(&self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) {
        if let FsKind::Memory(fs) = &self.kind {
            let mut fs = fs.write();
            fs.writes += 1;
            let modified = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(fs.writes);
            fs.files.insert(
                path.into(),
                MemoryFile {
                    contents: contents.into(),
                    modified,
                },
            );
        }
    }

    /// Removes a file of an in-memory file system (nothing on the real one).
    pub fn remove(&self, path: &Path) {
        if let FsKind::Memory(fs) = &self.kind {
            fs.write().files.remove(path);
        }
    }

    /// Reads a whole file of at most `max_bytes` bytes.
    ///
    /// # Errors
    ///
    /// What reading the file fails with ([`io::ErrorKind::NotFound`] for a missing file, the
    /// operating system's error otherwise); a file larger than `max_bytes` is
    /// [`io::ErrorKind::InvalidData`] and is not read past the limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::path::Path;
    /// use azure_credentials::system::Fs;
    ///
    /// let fs = Fs::memory();
    /// fs.write("/etc/app/token", vec![b'x'; 100]);
    /// let too_large = fs.read(Path::new("/etc/app/token"), 10).unwrap_err();
    /// assert_eq!(too_large.kind(), std::io::ErrorKind::InvalidData);
    /// let missing = fs.read(Path::new("/etc/app/other"), 10).unwrap_err();
    /// assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn read(&self, path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
        match &self.kind {
            FsKind::Real => read_capped(path, max_bytes),
            FsKind::Memory(fs) => {
                let fs = fs.read();
                let file = fs.files.get(path).ok_or_else(not_found)?;
                if file.contents.len() as u64 > max_bytes {
                    return Err(too_large(max_bytes));
                }
                Ok(file.contents.clone())
            }
        }
    }

    /// Reads a whole regular file of at most `max_bytes` bytes, refusing anything else without
    /// reading it. For a path an untrusted party names (the Azure Arc agent's key file): a FIFO
    /// there could block the reading thread forever, and a link could point anywhere.
    ///
    /// The type is checked before the file is opened (`symlink_metadata`) and again on the open
    /// file, which is opened with `O_NOFOLLOW | O_NONBLOCK` on Unix (and as the reparse point itself
    /// on Windows), so swapping the file in between gains nothing. Only the last component is
    /// checked: the directories on the way are the caller's to trust. The in-memory file system
    /// holds regular files only and reads them as [`Fs::read`] does.
    ///
    /// # Errors
    ///
    /// A symbolic link (not followed, even to a regular file), a directory, a FIFO, a socket or a
    /// device is [`io::ErrorKind::InvalidInput`]; a file larger than `max_bytes` is
    /// [`io::ErrorKind::InvalidData`]; otherwise what reading the file fails with.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::path::Path;
    /// use azure_credentials::system::Fs;
    ///
    /// let error = Fs::real().read_regular_file_nofollow(Path::new("/"), 4096).unwrap_err();
    /// assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput); // a directory
    /// ```
    pub fn read_regular_file_nofollow(&self, path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
        match &self.kind {
            FsKind::Real => read_regular_nofollow(path, max_bytes),
            FsKind::Memory(_) => self.read(path, max_bytes),
        }
    }

    /// The modification time and length of a file, without reading it.
    ///
    /// # Errors
    ///
    /// What reading the file's metadata fails with ([`io::ErrorKind::NotFound`] for a missing file).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::path::Path;
    /// use azure_credentials::system::Fs;
    ///
    /// let fs = Fs::memory();
    /// fs.write("/home/dev/.azure/azureProfile.json", "{}");
    /// let before = fs.stamp(Path::new("/home/dev/.azure/azureProfile.json"))?;
    /// fs.write("/home/dev/.azure/azureProfile.json", "{}");
    /// assert_ne!(fs.stamp(Path::new("/home/dev/.azure/azureProfile.json"))?, before);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stamp(&self, path: &Path) -> io::Result<FileStamp> {
        match &self.kind {
            FsKind::Real => {
                let metadata = std::fs::metadata(path)?;
                Ok(FileStamp {
                    modified: metadata.modified()?,
                    len: metadata.len(),
                })
            }
            FsKind::Memory(fs) => {
                let fs = fs.read();
                let file = fs.files.get(path).ok_or_else(not_found)?;
                Ok(FileStamp {
                    modified: file.modified,
                    len: file.contents.len() as u64,
                })
            }
        }
    }

    /// Whether `path` is a regular file (following symbolic links).
    pub fn is_file(&self, path: &Path) -> bool {
        match &self.kind {
            FsKind::Real => path.is_file(),
            FsKind::Memory(fs) => fs.read().files.contains_key(path),
        }
    }
}

impl fmt::Debug for Fs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FsKind::Real => f.write_str("Fs::Real"),
            FsKind::Memory(fs) => f
                .debug_tuple("Fs::Memory")
                .field(&fs.read().files.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

fn read_capped(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    read_open_file(std::fs::File::open(path)?, max_bytes)
}

fn read_regular_nofollow(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let metadata = std::fs::symlink_metadata(path)?;
    if !metadata.file_type().is_file() {
        return Err(not_regular(&metadata));
    }
    if metadata.len() > max_bytes {
        return Err(too_large(max_bytes));
    }
    // A link swapped in after the check fails to open (ELOOP); a FIFO opens at once instead
    // of waiting for a writer, and is refused below.
    read_open_file(open_for_read_nofollow(path)?, max_bytes)
}

/// Opens `path` for reading without following a final symbolic link (Unix: `O_NOFOLLOW`, and
/// `O_NONBLOCK` so a FIFO opens at once instead of waiting for a writer; Windows: the reparse
/// point itself). The caller checks what it opened (`fstat`).
pub(crate) fn open_for_read_nofollow(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use crate::system::unix::{O_NOFOLLOW, O_NONBLOCK};
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(O_NOFOLLOW | O_NONBLOCK);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        /// Opens a link (reparse point) itself rather than its target.
        const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
        options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
    }
    options.open(path)
}

/// Reads an open file if it is a regular file of at most `max_bytes`.
fn read_open_file(file: std::fs::File, max_bytes: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(not_regular(&metadata));
    }
    if metadata.len() > max_bytes {
        return Err(too_large(max_bytes));
    }
    // The file may grow between the check and the read: read one byte past the cap to know.
    let mut contents = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut contents)?;
    if contents.len() as u64 > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok(contents)
}

fn not_regular(metadata: &std::fs::Metadata) -> io::Error {
    let file_type = metadata.file_type();
    let what = if file_type.is_symlink() {
        "a symbolic link, not a regular file"
    } else if file_type.is_dir() {
        "a directory, not a regular file"
    } else {
        "not a regular file (a FIFO, socket or device?)"
    };
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such file")
}

fn too_large(max_bytes: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the file is larger than {max_bytes} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "azure-credentials-fs-{}-{name}",
            std::process::id()
        ))
    }

    #[test]
    fn real_reads_are_capped() {
        let path = temp_path("capped");
        std::fs::write(&path, vec![b'x'; 100]).unwrap();
        let fs = Fs::real();
        assert_eq!(fs.read(&path, 100).unwrap().len(), 100);
        assert_eq!(
            fs.read(&path, 99).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let stamp = fs.stamp(&path).unwrap();
        assert_eq!(stamp.len, 100);
        assert!(fs.is_file(&path));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            fs.read(&path, 100).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(!fs.is_file(&path));
    }

    #[test]
    fn a_directory_is_not_read() {
        let fs = Fs::real();
        assert!(fs.read(&std::env::temp_dir(), 1 << 20).is_err());
        assert!(!fs.is_file(&std::env::temp_dir()));
    }

    #[test]
    fn memory_files_change_stamp_on_write() {
        let fs = Fs::memory();
        let path = Path::new("/token");
        assert_eq!(
            fs.read(path, 10).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        fs.write(path, "one");
        let first = fs.stamp(path).unwrap();
        assert_eq!(fs.read(path, 10).unwrap(), b"one");
        fs.write(path, "two");
        assert_ne!(fs.stamp(path).unwrap(), first);
        assert_eq!(
            fs.read(path, 2).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        fs.remove(path);
        assert!(!fs.is_file(path));
        // Debug names files, never contents.
        fs.write("/secret-file", "secret-contents");
        let printed = format!("{fs:?}");
        assert!(printed.contains("/secret-file") && !printed.contains("secret-contents"));
    }

    #[test]
    fn a_regular_file_is_read_without_following_links() {
        let path = temp_path("regular-nofollow");
        std::fs::write(&path, "key").unwrap();
        let fs = Fs::real();
        assert_eq!(fs.read_regular_file_nofollow(&path, 3).unwrap(), b"key");
        assert_eq!(
            fs.read_regular_file_nofollow(&path, 2).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            fs.read_regular_file_nofollow(&path, 3).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let err = fs
            .read_regular_file_nofollow(&std::env::temp_dir(), 1 << 20)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("directory"), "{err}");

        let memory = Fs::memory();
        memory.write("/k.key", "key");
        assert_eq!(
            memory
                .read_regular_file_nofollow(Path::new("/k.key"), 3)
                .unwrap(),
            b"key"
        );
        assert_eq!(
            memory
                .read_regular_file_nofollow(Path::new("/k.key"), 2)
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn writing_to_the_real_fs_does_nothing() {
        let path = temp_path("never-written");
        Fs::real().write(&path, "x");
        assert!(!path.exists());
    }
}
