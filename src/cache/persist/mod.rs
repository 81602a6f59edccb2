//! Opt-in persistence of tokens across processes: [`TokenCachePersistence`] (the options), the
//! cache document of one name ([`PersistentCache`]: where it lives, read when it changed,
//! read-modify-write under a cross-process lock, a corrupt file set aside) and the fetcher
//! wrapper that reads it on a miss and writes it after a fetch (`persisted.rs`).
//!
//! - `msal_schema.rs`: MSAL's unified token cache JSON (the other SDKs' and az's format);
//! - `file.rs`, `lock.rs`: the file readable by its user only, and the lock around updates;
//! - `secret_service.rs` (feature `secret-service`): the document as a secret of the Linux
//!   Secret Service, the file then only a change signal;
//! - `dpapi.rs` (Windows): the file's bytes encrypted with DPAPI;
//! - `keychain.rs` (macOS): the document as a generic password of the login Keychain, the file
//!   then only a change signal.

#[cfg(windows)]
mod dpapi;
mod error;
mod file;
#[cfg(target_os = "macos")]
mod keychain;
mod lock;
pub(crate) mod msal_schema;
mod persisted;
#[cfg(all(feature = "secret-service", not(any(windows, target_os = "macos"))))]
mod secret_service;
#[cfg(test)]
mod tests;
#[cfg(feature = "user-sign-in")]
mod user_tokens;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;

use crate::system::Env;
use crate::{Error, ErrorKind};
use error::{PersistError, PersistErrorKind};
use file::FileStore;
use lock::CrossProcessLock;
use msal_schema::MsalCache;

#[cfg(feature = "user-sign-in")]
use persisted::off_the_runtime;
pub(crate) use persisted::{Persisted, PersistedCaches, TokenOwner};
#[cfg(feature = "user-sign-in")]
pub(crate) use user_tokens::{UserAccount, UserKey};

/// The cache name of the other Azure SDKs (Python, .NET, JS): tokens persisted under it are
/// shared with their applications of the same client id.
const DEFAULT_NAME: &str = "msal.cache";
/// The longest an update waits for another process's lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
const NAME: &str = "TokenCachePersistence";

/// Keeps a credential's tokens (and a signed-in user's refresh token) across processes, so a
/// command-line tool stays signed in between runs and a short-lived process does not fetch a
/// new token each time it starts. Off unless a credential's builder (or the
/// [`TokenCache`](crate::TokenCache)'s) is given one.
///
/// Tokens are kept in MSAL's token cache format under the name (default `msal.cache`, the
/// other Azure SDKs' name: a user signed in by a Python or .NET tool with the same client id is
/// signed in here, and the other way round), in `~/.IdentityService/<name>.nocae` (and `.cae`
/// for CAE tokens; `%LOCALAPPDATA%\.IdentityService` on Windows).
///
/// **Encryption**, as Python's azure-identity keeps the tokens:
/// - Windows: the file's bytes are encrypted for the user with DPAPI (`CryptProtectData`).
/// - macOS: the tokens are a generic password of the login Keychain (service
///   `Microsoft.Developer.IdentityService`); the file is only a change signal. This store is
///   compile-checked, not yet tested on a Mac.
/// - Linux, with the crate's feature `secret-service`: the tokens are a secret of the Secret
///   Service (GNOME Keyring, KWallet) on the D-Bus session bus of the credential's environment;
///   the file is only a change signal.
///
/// Without an encrypted store (Linux without the feature, no session bus, a locked or missing
/// keyring, a Secret Service that does not answer within a few seconds) a credential with
/// persistence fails to build unless
/// [`allow_unencrypted_storage`](Self::allow_unencrypted_storage) is set: then the file is
/// readable and writable by its user only (`0600` in a `0700` directory), written atomically,
/// and refused if another user owns it.
///
/// ```
/// use azure_credentials::{ClientSecretCredential, TokenCachePersistence};
///
/// let credential = ClientSecretCredential::builder()
///     .tenant_id("contoso.onmicrosoft.com")
///     .client_id("00000000-0000-0000-0000-000000000001")
///     .secret("value from the app registration")
///     .persistence(TokenCachePersistence::new().allow_unencrypted_storage(true))
///     .build()?;
/// # let _ = credential;
/// # Ok::<(), azure_credentials::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenCachePersistence {
    name: String,
    allow_unencrypted_storage: bool,
}

impl Default for TokenCachePersistence {
    fn default() -> Self {
        TokenCachePersistence {
            name: DEFAULT_NAME.to_owned(),
            allow_unencrypted_storage: false,
        }
    }
}

impl TokenCachePersistence {
    /// The default: name `msal.cache`, no unencrypted storage.
    pub fn new() -> Self {
        TokenCachePersistence::default()
    }

    /// The cache's name: letters, digits, `.`, `-` and `_`. Applications that should not
    /// share tokens use different names.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Whether tokens may be stored in a plain file (readable by the user only) when no
    /// encrypted store is available. Default: `false`. Windows and macOS always have one (DPAPI,
    /// the Keychain), so this matters on Linux only.
    pub fn allow_unencrypted_storage(mut self, allow: bool) -> Self {
        self.allow_unencrypted_storage = allow;
        self
    }

    /// Opens the two caches of this persistence (without and with CAE) for `credential`:
    /// checks the name, finds the location in `env`, and refuses when only unencrypted storage
    /// is possible and it is not allowed. Reads nothing yet.
    pub(crate) fn open(
        &self,
        credential: &'static str,
        env: &Env,
    ) -> Result<PersistedCaches, Error> {
        let valid = !self.name.is_empty()
            && self.name.len() <= 100
            && !self.name.starts_with('.')
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !valid {
            return Err(Error::invalid_input(
                credential,
                format!(
                    "the persistent cache name {} is not valid",
                    crate::scope::quoted(&self.name)
                ),
            )
            .with_fix("use letters, digits, '.', '-' and '_' (the default is msal.cache)"));
        }
        let encrypted = encrypted_store(env);
        if encrypted.is_err() && !self.allow_unencrypted_storage {
            let why = match &encrypted {
                Err(Some(why)) => format!("the Secret Service was not reachable ({why})"),
                _ => "this build has no encrypted store (the Secret Service needs the crate's \
                      feature secret-service)"
                    .to_owned(),
            };
            return Err(Error::new(
                ErrorKind::Unavailable,
                credential,
                format!("no encrypted token store is available: {why}"),
            )
            .with_fix(
                "on Linux, build with the feature secret-service and run a Secret Service (GNOME Keyring, KWallet) with an unlocked keyring on the session bus (DBUS_SESSION_BUS_ADDRESS); or set TokenCachePersistence::allow_unencrypted_storage(true) to keep tokens in a file readable by this user only; or leave persistence off",
            ));
        }
        let Some(dir) = directory(env) else {
            return Err(Error::new(
                ErrorKind::Unavailable,
                credential,
                "the persistent token cache has no home directory to live in (HOME is not set)",
            )
            .with_fix(
                "set HOME (USERPROFILE / LOCALAPPDATA on Windows), or leave persistence off",
            ));
        };
        let encrypted = encrypted.ok();
        let at = |suffix: &str| {
            let file = format!("{}{suffix}", self.name);
            PersistentCache::at(dir.join(&file), Backend::new(encrypted.clone(), file))
        };
        Ok(PersistedCaches {
            plain: at(".nocae"),
            cae: at(".cae"),
        })
    }
}

/// The encrypted store of this platform.
#[derive(Clone)]
enum EncryptedStore {
    /// The file encrypted with DPAPI.
    #[cfg(windows)]
    Dpapi,
    /// The login Keychain.
    #[cfg(target_os = "macos")]
    Keychain,
    /// The Secret Service at this session bus address.
    #[cfg(all(feature = "secret-service", not(any(windows, target_os = "macos"))))]
    SecretService(String),
}

/// Windows' store: DPAPI, always there.
#[cfg(windows)]
fn encrypted_store(_env: &Env) -> Result<EncryptedStore, Option<String>> {
    Ok(EncryptedStore::Dpapi)
}

/// macOS' store: the login Keychain, always there (a locked one asks the user when used).
#[cfg(target_os = "macos")]
fn encrypted_store(_env: &Env) -> Result<EncryptedStore, Option<String>> {
    Ok(EncryptedStore::Keychain)
}

/// The Secret Service of the session bus, if it answers (within
/// `secret_service::BUS_TIMEOUT`); else why not (`None`: there is no session bus to ask).
#[cfg(all(feature = "secret-service", not(any(windows, target_os = "macos"))))]
fn encrypted_store(env: &Env) -> Result<EncryptedStore, Option<String>> {
    let address = secret_service::session_bus(env).ok_or(None)?;
    match secret_service::available(&address) {
        Ok(()) => Ok(EncryptedStore::SecretService(address)),
        Err(error) => {
            tracing::debug!(error = %error, "the Secret Service is not available to the persistent token cache");
            Err(Some(error.to_string()))
        }
    }
}

/// No encrypted store in this build.
#[cfg(not(any(windows, target_os = "macos", feature = "secret-service")))]
fn encrypted_store(_env: &Env) -> Result<EncryptedStore, Option<String>> {
    Err(None)
}

/// Where a cache document is kept.
enum Backend {
    /// In the file itself.
    File,
    /// In the file, encrypted with DPAPI.
    #[cfg(windows)]
    Dpapi,
    /// In the Keychain; the file is a change signal.
    #[cfg(target_os = "macos")]
    Keychain(keychain::KeychainStore),
    /// In the Secret Service; the file is a change signal.
    #[cfg(all(feature = "secret-service", not(any(windows, target_os = "macos"))))]
    SecretService(secret_service::SecretStore),
}

impl Backend {
    /// The `encrypted` store's place for the cache file named `file`, else the file.
    #[cfg_attr(
        not(any(target_os = "macos", all(feature = "secret-service", not(windows)))),
        allow(unused_variables)
    )]
    fn new(encrypted: Option<EncryptedStore>, file: String) -> Backend {
        match encrypted {
            None => Backend::File,
            #[cfg(windows)]
            Some(EncryptedStore::Dpapi) => Backend::Dpapi,
            #[cfg(target_os = "macos")]
            Some(EncryptedStore::Keychain) => Backend::Keychain(keychain::KeychainStore::new(file)),
            #[cfg(all(feature = "secret-service", not(any(windows, target_os = "macos"))))]
            Some(EncryptedStore::SecretService(bus)) => {
                Backend::SecretService(secret_service::SecretStore::new(&bus, file))
            }
        }
    }

    /// What tells caches of the same file apart: the bus of their Secret Service.
    fn key(&self) -> Option<&str> {
        match self {
            #[cfg(all(feature = "secret-service", not(any(windows, target_os = "macos"))))]
            Backend::SecretService(store) => Some(store.address()),
            _ => None,
        }
    }

    /// Whether the document is the file's contents (which can be set aside when corrupt),
    /// not a secret kept elsewhere.
    fn in_the_file(&self) -> bool {
        match self {
            Backend::File => true,
            #[cfg(windows)]
            Backend::Dpapi => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The document's bytes as stored; `None` when there is none yet.
    fn read(&self, file: &FileStore) -> Result<Option<Vec<u8>>, PersistError> {
        match self {
            Backend::File => file.read(),
            // An empty file is no document (nothing we write is empty once encrypted).
            #[cfg(windows)]
            Backend::Dpapi => file
                .read()?
                .filter(|bytes| !bytes.is_empty())
                .map(|bytes| dpapi::unprotect(&bytes))
                .transpose(),
            #[cfg(target_os = "macos")]
            Backend::Keychain(keychain) => keychain.read(),
            #[cfg(all(feature = "secret-service", not(any(windows, target_os = "macos"))))]
            Backend::SecretService(secret) => secret.read(),
        }
    }

    /// Stores the document's bytes (the caller holds the lock); a store kept elsewhere also
    /// touches the file, its change signal.
    fn write(&self, file: &FileStore, bytes: &[u8]) -> Result<(), PersistError> {
        match self {
            Backend::File => file.write(bytes),
            #[cfg(windows)]
            Backend::Dpapi => file.write(&dpapi::protect(bytes)?),
            #[cfg(target_os = "macos")]
            Backend::Keychain(keychain) => keychain.write(bytes).and_then(|()| signal_change(file)),
            #[cfg(all(feature = "secret-service", not(any(windows, target_os = "macos"))))]
            Backend::SecretService(secret) => {
                secret.write(bytes).and_then(|()| signal_change(file))
            }
        }
    }
}

/// Touches the file of a document kept elsewhere (Keychain, Secret Service): its change signal.
#[cfg(any(target_os = "macos", all(feature = "secret-service", not(windows))))]
fn signal_change(file: &FileStore) -> Result<(), PersistError> {
    file.touch(crate::system::Clock::system().now().into())
}

/// `~/.IdentityService` (`%LOCALAPPDATA%\.IdentityService` on Windows): where the other Azure
/// SDKs keep their persistent caches.
fn directory(env: &Env) -> Option<PathBuf> {
    let base = if cfg!(windows) {
        env.var_non_empty("LOCALAPPDATA")
    } else {
        env.var_non_empty(crate::env_vars::HOME)
    }?;
    Some(Path::new(&base).join(".IdentityService"))
}

/// One persistent cache document, shared by every credential of the process that uses it.
pub(crate) struct PersistentCache {
    /// The document (`Backend::File`) or its change signal.
    store: FileStore,
    backend: Backend,
    lock_path: PathBuf,
    /// What was read last, and the store's stamp then: re-read only when the stamp changed.
    loaded: Mutex<Option<(file::FileStamp, Arc<MsalCache>)>>,
}

impl fmt::Debug for PersistentCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersistentCache")
            .field("path", &self.store.path())
            .finish_non_exhaustive()
    }
}

impl PersistentCache {
    /// The process's one cache at `path` in `backend`.
    fn at(path: PathBuf, backend: Backend) -> Arc<PersistentCache> {
        type Key = (PathBuf, Option<String>);
        static OPEN: OnceLock<Mutex<HashMap<Key, Arc<PersistentCache>>>> = OnceLock::new();
        let mut open = OPEN.get_or_init(Default::default).lock();
        open.entry((path.clone(), backend.key().map(str::to_owned)))
            .or_insert_with(|| {
                let mut lock_path = path.clone().into_os_string();
                lock_path.push(".lockfile");
                Arc::new(PersistentCache {
                    store: FileStore::new(path),
                    backend,
                    lock_path: PathBuf::from(lock_path),
                    loaded: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Runs `f` on the current document (read again only if the file changed).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&MsalCache) -> T) -> Result<T, Error> {
        let document = self.current()?;
        Ok(f(&document))
    }

    /// Changes the document under the cross-process lock: read what is there now, apply `f`,
    /// write it back atomically. Another process's entries are kept.
    pub(crate) fn update(&self, f: impl FnOnce(&mut MsalCache)) -> Result<(), Error> {
        let _lock =
            CrossProcessLock::acquire(&self.lock_path, LOCK_TIMEOUT).map_err(persist_error)?;
        let mut document = (*self.load_fresh()?).clone();
        f(&mut document);
        let bytes = document.to_bytes();
        self.backend
            .write(&self.store, &bytes)
            .map_err(persist_error)?;
        *self.loaded.lock() = self.store.stamp().map(|stamp| (stamp, Arc::new(document)));
        Ok(())
    }

    /// The document as last read, re-read if the file's stamp changed.
    fn current(&self) -> Result<Arc<MsalCache>, Error> {
        let stamp = self.store.stamp();
        if let (Some(stamp), Some((seen, document))) = (&stamp, &*self.loaded.lock())
            && stamp == seen
        {
            return Ok(document.clone());
        }
        // Under the lock: Python's msal-extensions rewrites the file in place while it holds
        // it, so a read without the lock could see half a document.
        let _lock =
            CrossProcessLock::acquire(&self.lock_path, LOCK_TIMEOUT).map_err(persist_error)?;
        self.load_fresh()
    }

    /// Reads the file now. A file that is not a cache document is set aside (renamed, with a
    /// warning) and the cache starts empty: a corrupt file never fails a token request.
    fn load_fresh(&self) -> Result<Arc<MsalCache>, Error> {
        let stamp = self.store.stamp();
        let parsed = match self.backend.read(&self.store) {
            Ok(None) => None,
            Ok(Some(bytes)) => Some(MsalCache::parse(&bytes).map_err(|e| e.to_string())),
            // Bytes DPAPI does not recognize: as damaged as a file that is not JSON.
            Err(error) if error.kind() == PersistErrorKind::Undecryptable => {
                Some(Err(error.to_string()))
            }
            Err(error) => return Err(persist_error(error)),
        };
        let document = match parsed {
            None => MsalCache::empty(),
            Some(Ok(document)) => document,
            Some(Err(error)) if !self.backend.in_the_file() => {
                // A secret cannot be set aside; the next write replaces it.
                tracing::warn!(
                    path = %self.store.path().display(),
                    error = %error,
                    "the persistent token cache's secret (Secret Service, Keychain) is not a token cache document; starting empty"
                );
                MsalCache::empty()
            }
            Some(Err(error)) => {
                let aside = self
                    .store
                    .set_aside(crate::system::Clock::system().now().unix_timestamp());
                tracing::warn!(
                    path = %self.store.path().display(),
                    error = %error,
                    set_aside = ?aside.as_ref().ok(),
                    "the persistent token cache is not a token cache document; set aside, starting empty"
                );
                MsalCache::empty()
            }
        };
        let document = Arc::new(document);
        if let Some(stamp) = stamp {
            *self.loaded.lock() = Some((stamp, document.clone()));
        }
        Ok(document)
    }
}

/// The crate's error for a persistence failure: `Io` for the file system and the lock,
/// `InvalidInput` for a file the user must fix (another user's, readable by others, not a
/// regular file).
fn persist_error(error: PersistError) -> Error {
    let kind = match error.kind() {
        PersistErrorKind::Io
        | PersistErrorKind::LockTimeout
        | PersistErrorKind::TooLarge
        | PersistErrorKind::Protection
        | PersistErrorKind::Undecryptable => ErrorKind::Io,
        PersistErrorKind::WrongOwner
        | PersistErrorKind::InsecureMode
        | PersistErrorKind::NotRegular => ErrorKind::InvalidInput,
    };
    Error::new(
        kind,
        NAME,
        format!("the persistent token cache failed: {error}"),
    )
    .with_source(error)
}
