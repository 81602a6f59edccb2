//! [`PersistError`]: why the persistent cache could not be read, written or locked.

use std::fmt;
use std::io;

/// What kind of failure a [`PersistError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PersistErrorKind {
    /// The file system failed (permission denied, disk full, ...); the cause is the `source()`.
    Io,
    /// The file or its directory belongs to another user.
    #[cfg_attr(not(unix), allow(dead_code))]
    WrongOwner,
    /// The file can be read or written, or its directory written, by other users.
    #[cfg_attr(not(unix), allow(dead_code))]
    InsecureMode,
    /// The path is a symbolic link, a directory or another non-regular file.
    NotRegular,
    /// The file is larger than the cache ever writes.
    TooLarge,
    /// Another process held the cross-process lock for the whole wait.
    LockTimeout,
    /// The platform's protection of the secret (DPAPI, the Keychain) failed; the cause is the
    /// `source()` or named in the message.
    #[cfg_attr(not(any(windows, target_os = "macos")), allow(dead_code))]
    Protection,
    /// The file's bytes are not encrypted as the platform's store encrypts them (a damaged or
    /// unencrypted file): set aside like a file that is not a cache document.
    #[cfg_attr(not(windows), allow(dead_code))]
    Undecryptable,
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

    /// A failure of `kind` whose cause is the OS error `source`.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn with_source(
        kind: PersistErrorKind,
        message: impl Into<String>,
        source: io::Error,
    ) -> Self {
        Self {
            kind,
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
