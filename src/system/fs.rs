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
    /// The real file system.
    pub fn real() -> Self {
        Fs { kind: FsKind::Real }
    }

    /// An empty in-memory file system; fill it with [`Fs::write`].
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

    /// Reads a whole file of at most `max_bytes` bytes. A larger file is an error of kind
    /// [`io::ErrorKind::InvalidData`] and is not read past the limit.
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

    /// The modification time and length of a file, without reading it.
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
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
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
    fn writing_to_the_real_fs_does_nothing() {
        let path = temp_path("never-written");
        Fs::real().write(&path, "x");
        assert!(!path.exists());
    }
}
