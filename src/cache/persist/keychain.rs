//! macOS: the cache document as a generic password of the login Keychain, as Python's
//! msal-extensions (`KeychainPersistence`, through azure-identity) keeps it, so the two share
//! it:
//!
//! - service `Microsoft.Developer.IdentityService`;
//! - account `MSALCache` for the default cache `msal.cache.nocae`, else the cache file's name
//!   (`msal.cache.cae`, `{name}.nocae`): azure-identity's choice, kept for compatibility;
//! - the file `~/.IdentityService/{name}{suffix}` is only a change signal, touched on each save
//!   as msal-extensions touches it.
//!
//! Compile-checked only (`cargo check --target x86_64-apple-darwin`): no test runs it on a Mac.

use security_framework::passwords::{get_generic_password, set_generic_password};

use super::error::{PersistError, PersistErrorKind};
use super::file::MAX_CACHE_BYTES;

/// azure-identity's Keychain service for every persistent cache.
const SERVICE: &str = "Microsoft.Developer.IdentityService";
/// azure-identity's account for the default cache (`DEFAULT_FILE`).
const DEFAULT_ACCOUNT: &str = "MSALCache";
const DEFAULT_FILE: &str = "msal.cache.nocae";
/// `errSecItemNotFound`.
const ITEM_NOT_FOUND: i32 = -25300;

/// The cache document of one name kept as one generic password.
#[derive(Debug)]
pub(crate) struct KeychainStore {
    account: String,
}

impl KeychainStore {
    /// The item of the cache file named `file` (`msal.cache.nocae`).
    pub(crate) fn new(file: String) -> Self {
        let account = if file == DEFAULT_FILE {
            DEFAULT_ACCOUNT.to_owned()
        } else {
            file
        };
        KeychainStore { account }
    }

    /// The secret; `None` when there is no item yet. The Keychain may ask the user to allow
    /// access (an item another program created), as it does for Python.
    pub(crate) fn read(&self) -> Result<Option<Vec<u8>>, PersistError> {
        match get_generic_password(SERVICE, &self.account) {
            Ok(bytes) if bytes.len() as u64 > MAX_CACHE_BYTES => Err(PersistError::new(
                PersistErrorKind::TooLarge,
                format!(
                    "the token cache in the Keychain (service {SERVICE}, account {}) is larger \
                     than {} MiB; delete it with `security delete-generic-password -s {SERVICE} \
                     -a {}`",
                    self.account,
                    MAX_CACHE_BYTES >> 20,
                    self.account
                ),
            )),
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.code() == ITEM_NOT_FOUND => Ok(None),
            Err(error) => Err(self.failed("read", error)),
        }
    }

    /// Stores `bytes` as the secret, replacing the item's.
    pub(crate) fn write(&self, bytes: &[u8]) -> Result<(), PersistError> {
        if bytes.len() as u64 > MAX_CACHE_BYTES {
            return Err(PersistError::new(
                PersistErrorKind::TooLarge,
                format!(
                    "the token cache is larger than {} MiB and was not stored in the Keychain",
                    MAX_CACHE_BYTES >> 20
                ),
            ));
        }
        set_generic_password(SERVICE, &self.account, bytes).map_err(|e| self.failed("write", e))
    }

    /// The Keychain's own message (`SecCopyErrorMessageString`) and status; never the secret.
    fn failed(&self, doing: &str, error: security_framework::base::Error) -> PersistError {
        PersistError::new(
            PersistErrorKind::Protection,
            format!(
                "the Keychain could not {doing} the token cache (service {SERVICE}, account {}): \
                 {error} (OSStatus {}); unlock the login keychain, or allow this program access \
                 to the item in Keychain Access",
                self.account,
                error.code()
            ),
        )
    }
}
