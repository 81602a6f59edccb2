//! [`PersistError`]: why the persistent cache could not be read, written or locked.

use std::fmt;
use std::io;

/// What kind of failure a [`PersistError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PersistErrorKind {
    /// The file system failed (permission denied, disk full, ...); the cause is the `source()`.
    Io,
    /// The file or its directory belongs to another user.
    WrongOwner,
    /// The file can be read or written, or its directory written, by other users.
    InsecureMode,
    /// The path is a symbolic link, a directory or another non-regular file.
    NotRegular,
    /// The file is larger than the cache ever writes.
    TooLarge,
    /// Another process held the cross-process lock for the whole wait.
    LockTimeout,
}

/// Why persistence failed. `Display` names the path and the fix, never file contents; an I/O
/// cause is the `source()`, not repeated in the message.
#[derive(Debug)]
pub(crate) struct PersistError {
    kind: PersistErrorKind,
    message: String,
    source: Option<io::Error>,
}

impl PersistError {
    pub(crate) fn new(kind: PersistErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An [`PersistErrorKind::Io`] failure: `message` says what was being done to which path.
    pub(crate) fn io(message: impl Into<String>, source: io::Error) -> Self {
        Self {
            kind: PersistErrorKind::Io,
            message: message.into(),
            source: Some(source),
        }
    }

    pub(crate) fn kind(&self) -> PersistErrorKind {
        self.kind
    }
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PersistError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
