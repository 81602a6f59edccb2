//! The cache document kept in the Linux Secret Service (GNOME Keyring, KWallet) over D-Bus, as
//! Python's msal-extensions (`LibsecretPersistence`, through azure-identity) keeps it, so the
//! two share the secret:
//!
//! - one item in the default collection whose secret is the whole document (`text/plain`, as
//!   libsecret stores a password), label `MSALCache`;
//! - attributes `xdg:schema` = the cache file name (`msal.cache.nocae`: libsecret's schema name,
//!   which it stores as that attribute) and `MsalClientID` = `Microsoft.Developer.IdentityService`;
//! - the plain file of the same name is only a change signal: its modification time is set on
//!   each save (msal-extensions touches it), its contents are never tokens of ours.
//!
//! The bus is the one the credential's `Env` names (`DBUS_SESSION_BUS_ADDRESS`, else
//! `$XDG_RUNTIME_DIR/bus`), so a test's credential never reaches the developer's own keyring.
//!
//! The secret-service crate's blocking calls run zbus's own tokio runtime with `block_on`, which
//! panics on a thread inside a runtime (our callers are synchronous code inside `get_token`):
//! every call is made on a short-lived thread of its own, and waited for at most
//! [`BUS_TIMEOUT`] (or [`PROMPT_TIMEOUT`] when it may show the user a prompt): a bus or a
//! keyring that never answers fails the call, it never hangs `build()` or `get_token`. A call
//! given up on keeps its thread until the bus answers or the connection dies; later calls wait
//! for it no longer than their own bound.

use std::collections::HashMap;
use std::fmt;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use secret_service::EncryptionType;
use secret_service::blocking::SecretService;

use super::error::{PersistError, PersistErrorKind};
use super::file::MAX_CACHE_BYTES;
use crate::system::Env;

/// The attribute name and value azure-identity (Python) gives every cache item.
const CLIENT_ATTRIBUTE: (&str, &str) = ("MsalClientID", "Microsoft.Developer.IdentityService");
/// Where libsecret keeps the schema name.
const SCHEMA_ATTRIBUTE: &str = "xdg:schema";
/// azure-identity's label (its "account name").
const LABEL: &str = "MSALCache";
/// libsecret's content type for a password stored as a string.
const CONTENT_TYPE: &str = "text/plain";

/// The longest a call that needs no prompt waits for the Secret Service (connecting, the
/// probe made while a credential is built): a service that answers does so in milliseconds;
/// one that has not answered in this long is taken as absent (as when there is no bus).
pub(crate) const BUS_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a call that may show the user a prompt (unlocking a locked keyring or item)
/// waits: time for a person to type a password, not forever for a prompt nobody sees
/// (a headless session, an SSH login).
pub(crate) const PROMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The session bus address the credential's environment names: `DBUS_SESSION_BUS_ADDRESS`,
/// else `unix:path=$XDG_RUNTIME_DIR/bus` (what libdbus and zbus fall back to).
pub(crate) fn session_bus(env: &Env) -> Option<String> {
    env.var_non_empty(crate::env_vars::DBUS_SESSION_BUS_ADDRESS)
        .or_else(|| {
            env.var_non_empty(crate::env_vars::XDG_RUNTIME_DIR)
                .map(|dir| format!("unix:path={dir}/bus"))
        })
}

/// One connection to the Secret Service of a bus address, shared by the caches of the process.
struct Bus {
    address: String,
    /// Connected on first use; dropped after a failure so the next call reconnects.
    service: Mutex<Option<SecretService<'static>>>,
}

impl Bus {
    /// The process's one connection for `address`.
    fn of(address: &str) -> Arc<Bus> {
        static BUSES: OnceLock<Mutex<HashMap<String, Arc<Bus>>>> = OnceLock::new();
        BUSES
            .get_or_init(Default::default)
            .lock()
            .entry(address.to_owned())
            .or_insert_with(|| {
                Arc::new(Bus {
                    address: address.to_owned(),
                    service: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Runs `f` with the connected service on a thread of its own (see the module's note),
    /// waiting at most `timeout` for it.
    fn with<T: Send + 'static>(
        self: &Arc<Self>,
        doing: &'static str,
        timeout: Duration,
        f: impl FnOnce(&SecretService<'static>) -> Result<T, secret_service::Error> + Send + 'static,
    ) -> Result<T, PersistError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        let bus = self.clone();
        let spawned = std::thread::Builder::new()
            .name("azure-credentials-secret-service".to_owned())
            .spawn(move || {
                // A call given up on may still hold the connection: wait for it no longer
                // than this call's own bound.
                let Some(mut service) = bus.service.try_lock_for(timeout) else {
                    return;
                };
                let result = (|| {
                    if service.is_none() {
                        *service = Some(connect(&bus.address)?);
                    }
                    let Some(connected) = service.as_ref() else {
                        return Err(secret_service::Error::Unavailable);
                    };
                    f(connected)
                })();
                if result.is_err() {
                    *service = None;
                }
                let _ = sender.send(result);
            });
        if let Err(error) = spawned {
            return Err(PersistError::io(
                format!("could not start a thread to ask the Secret Service while it {doing}"),
                error,
            ));
        }
        match receiver.recv_timeout(timeout) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(service_error(doing, &error)),
            Err(RecvTimeoutError::Timeout) => Err(PersistError::new(
                PersistErrorKind::Io,
                format!(
                    "the Secret Service at {} did not answer within {} s while it {doing} (a bus \
                     that does not answer, or a keyring prompt nobody answered)",
                    self.address,
                    timeout.as_secs_f32()
                ),
            )),
            // The thread ended without an answer: it panicked, or an earlier call still held
            // the connection for the whole wait.
            Err(RecvTimeoutError::Disconnected) => Err(PersistError::new(
                PersistErrorKind::Io,
                format!(
                    "the Secret Service client failed (or an earlier call still held the \
                     connection) while it {doing}"
                ),
            )),
        }
    }
}

fn connect(address: &str) -> Result<SecretService<'static>, secret_service::Error> {
    let connection = zbus::blocking::connection::Builder::address(address)
        .and_then(|builder| builder.build())
        .map_err(secret_service::Error::Zbus)?;
    SecretService::connect_with_existing(EncryptionType::Dh, connection)
}

/// A Secret Service error as ours; its text names D-Bus failures, never the secret.
fn service_error(doing: &str, error: &secret_service::Error) -> PersistError {
    PersistError::new(
        PersistErrorKind::Io,
        format!("the Secret Service (GNOME Keyring, KWallet) failed while it {doing}: {error}"),
    )
}

/// Whether the Secret Service at `address` answers with a default collection that is (or could
/// be) unlocked: the test the persistence makes before choosing it over a plain file.
/// Connecting and looking are bounded by [`BUS_TIMEOUT`], an unlock (which may prompt the user)
/// by [`PROMPT_TIMEOUT`].
pub(crate) fn available(address: &str) -> Result<(), PersistError> {
    available_within(address, BUS_TIMEOUT, PROMPT_TIMEOUT)
}

/// [`available`] with the given bounds.
pub(crate) fn available_within(
    address: &str,
    bus_timeout: Duration,
    prompt_timeout: Duration,
) -> Result<(), PersistError> {
    let bus = Bus::of(address);
    let locked = bus.with("opened the default collection", bus_timeout, |service| {
        service.get_default_collection()?.is_locked()
    })?;
    if locked {
        bus.with(
            "unlocked the default collection",
            prompt_timeout,
            |service| service.get_default_collection()?.ensure_unlocked(),
        )?;
    }
    Ok(())
}

/// The cache document of one name kept as the secret of one Secret Service item.
pub(crate) struct SecretStore {
    bus: Arc<Bus>,
    /// libsecret's schema name: the cache file's name, `{name}{suffix}`.
    schema: String,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("address", &self.bus.address)
            .field("schema", &self.schema)
            .finish()
    }
}

impl SecretStore {
    pub(crate) fn new(address: &str, schema: String) -> Self {
        SecretStore {
            bus: Bus::of(address),
            schema,
        }
    }

    pub(crate) fn address(&self) -> &str {
        &self.bus.address
    }
}

/// The attributes of the item of the cache file named `schema`.
fn attributes(schema: &str) -> HashMap<&str, &str> {
    HashMap::from([
        (SCHEMA_ATTRIBUTE, schema),
        (CLIENT_ATTRIBUTE.0, CLIENT_ATTRIBUTE.1),
    ])
}

impl SecretStore {
    /// The secret; `None` when no item has it. An unlocked item is preferred; a locked one is
    /// unlocked first (which may prompt the user, as libsecret does).
    pub(crate) fn read(&self) -> Result<Option<Vec<u8>>, PersistError> {
        let schema = self.schema.clone();
        let secret = self
            .bus
            .with("read the token cache", PROMPT_TIMEOUT, move |service| {
                let found = service.search_items(attributes(&schema))?;
                let item = match (found.unlocked.first(), found.locked.first()) {
                    (Some(item), _) => item,
                    (None, Some(item)) => {
                        item.ensure_unlocked()?;
                        item
                    }
                    (None, None) => return Ok(None),
                };
                item.get_secret().map(Some)
            })?;
        match secret {
            Some(bytes) if bytes.len() as u64 > MAX_CACHE_BYTES => Err(PersistError::new(
                PersistErrorKind::TooLarge,
                format!(
                    "the token cache secret {} in the Secret Service is larger than {} MiB; \
                     clear it with secret-tool clear {SCHEMA_ATTRIBUTE} {}",
                    self.schema,
                    MAX_CACHE_BYTES >> 20,
                    self.schema
                ),
            )),
            other => Ok(other),
        }
    }

    /// Stores `bytes` as the secret, replacing the item of the same attributes, in the default
    /// collection (unlocked first).
    pub(crate) fn write(&self, bytes: &[u8]) -> Result<(), PersistError> {
        if bytes.len() as u64 > MAX_CACHE_BYTES {
            return Err(PersistError::new(
                PersistErrorKind::TooLarge,
                format!(
                    "the token cache {} is larger than {} MiB and was not stored",
                    self.schema,
                    MAX_CACHE_BYTES >> 20
                ),
            ));
        }
        let (schema, bytes) = (self.schema.clone(), bytes.to_vec());
        self.bus
            .with("stored the token cache", PROMPT_TIMEOUT, move |service| {
                let collection = service.get_default_collection()?;
                collection.ensure_unlocked()?;
                collection.create_item(LABEL, attributes(&schema), &bytes, true, CONTENT_TYPE)?;
                Ok(())
            })
    }
}
