//! [`WorkloadIdentityCredential`]: a Kubernetes service account token exchanged for an Entra
//! token (Azure Kubernetes Service workload identity, and any other federated identity).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use time::OffsetDateTime;

use crate::context::seam_setters;
use crate::credential::delegate_token_credential;
use crate::entra::assertion_source::{AADSTS_ASSERTION_EXPIRED, AssertionSource};
use crate::entra::{ClientAssertionCredential, EntraOptions, entra_debug, entra_setters};
use crate::env_vars::{AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_TENANT_ID};
use crate::scope::quoted;
use crate::setters::debug_fields;
use crate::system::{Clock, FileStamp, Fs};
use crate::{Context, Error, ErrorKind, Secret};

pub(crate) const NAME: &str = "WorkloadIdentityCredential";
/// A token file read longer ago than this is read again before it is used.
const REREAD_AFTER: Duration = Duration::from_secs(5 * 60);
/// The largest token file read (a service account token is 1-2 KB).
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// A workload identity: the service account token that Kubernetes projects into the pod (a
/// file) is exchanged for a Microsoft Entra token of the app registration or user-assigned
/// managed identity that trusts it (a federated identity credential).
///
/// Configured by the AKS workload identity webhook through `AZURE_FEDERATED_TOKEN_FILE`,
/// `AZURE_CLIENT_ID`, `AZURE_TENANT_ID` and `AZURE_AUTHORITY_HOST`; the builder's values take
/// precedence over them.
///
/// ```no_run
/// use azure_credentials::{TokenCredential, WorkloadIdentityCredential};
///
/// # async fn run() -> Result<(), azure_credentials::Error> {
/// let credential = WorkloadIdentityCredential::new()?;
/// let token = credential.get_token(&["https://vault.azure.net/.default"], None).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
///
/// Kubernetes rotates the token file (hourly by default), so the credential never holds on to
/// it: the file is read at the first token request and read again when it changed on disk (its
/// modification time or length), when the copy in memory is older than five minutes, and right
/// after Entra rejects the assertion as expired (`AADSTS700024`), in which case the request is
/// retried once with the fresh contents. A missing or empty file is an error naming the path,
/// and it is not remembered: the next request looks again.
///
/// It is a [`ClientAssertionCredential`] whose assertion is the token file's contents.
#[derive(Clone)]
pub struct WorkloadIdentityCredential {
    credential: ClientAssertionCredential,
    token_file: PathBuf,
}

impl WorkloadIdentityCredential {
    /// A credential configured from the process environment: what the AKS workload identity webhook
    /// sets (`AZURE_FEDERATED_TOKEN_FILE`, `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`,
    /// `AZURE_AUTHORITY_HOST`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) when `AZURE_FEDERATED_TOKEN_FILE` is not set, and [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when it is set but
    /// `AZURE_CLIENT_ID` or `AZURE_TENANT_ID` is not, or a value is invalid.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use azure_credentials::WorkloadIdentityCredential;
    ///
    /// let credential = WorkloadIdentityCredential::new()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn new() -> Result<Self, Error> {
        WorkloadIdentityCredential::builder().build()
    }

    /// Options for a workload identity credential, validated by
    /// [`build`](WorkloadIdentityCredentialBuilder::build); unset values come from the environment.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::WorkloadIdentityCredential;
    /// use azure_credentials::system::Env;
    ///
    /// let credential = WorkloadIdentityCredential::builder()
    ///     .env(Env::from_pairs([
    ///         ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/azure-identity-token"),
    ///         ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
    ///         ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
    ///     ]))
    ///     .build()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn builder() -> WorkloadIdentityCredentialBuilder {
        WorkloadIdentityCredentialBuilder::default()
    }

    /// The token file the credential reads.
    pub fn token_file_path(&self) -> &Path {
        &self.token_file
    }
}

delegate_token_credential!(WorkloadIdentityCredential => credential);

entra_debug!(WorkloadIdentityCredential(credential) { token_file });

/// Options of a [`WorkloadIdentityCredential`]; see [`WorkloadIdentityCredential::builder`].
/// Unset values come from the environment.
#[derive(Debug, Clone, Default)]
pub struct WorkloadIdentityCredentialBuilder {
    context: Context,
    options: EntraOptions,
    token_file: Option<PathBuf>,
}

impl WorkloadIdentityCredentialBuilder {
    entra_setters!(
        tenant_id = "Default: `AZURE_TENANT_ID`.",
        client_id = "The app registration or user-assigned managed identity that trusts the \
                     service account. Default: `AZURE_CLIENT_ID`.",
        authority_host,
        additionally_allowed_tenants,
        retry_policy,
    );

    /// The file holding the service account token. Default: `AZURE_FEDERATED_TOKEN_FILE`.
    pub fn token_file_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.token_file = Some(path.into());
        self
    }

    seam_setters!(
        env = "The `AZURE_*` variables are read there.",
        fs = "The token file is read there.",
        http,
        cache = "Its clock also times the token file's re-reads.",
    );

    /// Validates the configuration and builds the credential. The token file is not read yet (a
    /// pod's file may appear a moment after the process starts).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) when no token file is configured (neither the builder nor
    /// `AZURE_FEDERATED_TOKEN_FILE`), and [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when one is but the client id or tenant id is
    /// missing, or a value is invalid.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{ErrorKind, WorkloadIdentityCredential};
    /// use azure_credentials::system::Env;
    ///
    /// let not_in_a_pod = WorkloadIdentityCredential::builder().env(Env::empty()).build();
    /// assert_eq!(not_in_a_pod.unwrap_err().kind(), ErrorKind::Unavailable);
    /// ```
    pub fn build(self) -> Result<WorkloadIdentityCredential, Error> {
        let env = self.context.env();
        let mut options = self.options;
        let token_file = self
            .token_file
            .filter(|p| !p.as_os_str().is_empty())
            .or_else(|| {
                env.var_non_empty(AZURE_FEDERATED_TOKEN_FILE)
                    .map(PathBuf::from)
            });
        let missing_ids = options.ids_or_env(&env);
        let Some(token_file) = token_file else {
            return Err(Error::unavailable(
                NAME,
                format!("not configured: {AZURE_FEDERATED_TOKEN_FILE} is not set"),
            )
            .with_fix(format!(
                "on AKS, enable workload identity for the pod (label azure.workload.identity/use: \"true\" and a service account annotated with the client id); elsewhere set {AZURE_FEDERATED_TOKEN_FILE}, {AZURE_CLIENT_ID} and {AZURE_TENANT_ID}"
            )));
        };
        if let Some((missing, verb)) = missing_ids {
            return Err(Error::invalid_input(
                NAME,
                format!("the token file is configured but {missing} {verb} not set"),
            )
            .with_fix(format!(
                "set {missing} (or the builder's tenant_id and client_id); on AKS the workload identity webhook sets them when the service account is annotated with azure.workload.identity/client-id"
            )));
        }
        let client = options.client(NAME, &self.context)?;
        let cache = self.context.cache();
        let identity = ClientAssertionCredential::identity(&client)
            .with_secret(token_file.as_os_str().as_encoded_bytes());
        let file = TokenFile {
            path: token_file.clone(),
            fs: self.context.fs(),
            clock: cache.clock().clone(),
            cached: Mutex::new(None),
        };
        Ok(WorkloadIdentityCredential {
            credential: ClientAssertionCredential::from_source(
                client, identity, file, &cache, None,
            ),
            token_file,
        })
    }
}

/// The token file as the source of assertions: read when it changed or got old, read again
/// at once when Entra says the assertion expired.
#[async_trait]
impl AssertionSource for TokenFile {
    async fn assertion(&self) -> Result<Secret, Error> {
        self.current()
    }

    async fn fresh_assertion(&self) -> Result<Secret, Error> {
        tracing::debug!(
            credential = NAME,
            token_file = %self.path.display(),
            "Microsoft Entra ID says the federated token expired; reading the token file again and retrying once"
        );
        self.reread()
    }

    fn explain_rejection(&self, error: Error, assertion: &Secret) -> Error {
        self.explain_expired(error, assertion)
    }
}

/// The token file and the last copy read from it.
struct TokenFile {
    path: PathBuf,
    fs: Fs,
    clock: Clock,
    cached: Mutex<Option<CachedAssertion>>,
}

struct CachedAssertion {
    assertion: Secret,
    read_at: OffsetDateTime,
    stamp: Option<FileStamp>,
}

debug_fields!(TokenFile { path, .. });

impl TokenFile {
    /// The assertion: the copy in memory while the file is unchanged on disk and the copy is
    /// younger than [`REREAD_AFTER`], else the file's contents, read now.
    fn current(&self) -> Result<Secret, Error> {
        let stamp = self.fs.stamp(&self.path).ok();
        let now = self.clock.now();
        if let Some(cached) = &*self.cached.lock()
            && stamp.is_some()
            && cached.stamp == stamp
            && now - cached.read_at < REREAD_AFTER
            && now >= cached.read_at
        {
            return Ok(cached.assertion.clone());
        }
        self.read(stamp, now)
    }

    /// The file's contents, read now whatever the copy in memory.
    fn reread(&self) -> Result<Secret, Error> {
        self.read(self.fs.stamp(&self.path).ok(), self.clock.now())
    }

    fn read(&self, stamp: Option<FileStamp>, now: OffsetDateTime) -> Result<Secret, Error> {
        let path = quoted(&self.path.display().to_string());
        let fix = "check that the service account token is projected into the pod (label azure.workload.identity/use: \"true\") and that AZURE_FEDERATED_TOKEN_FILE points at it";
        let bytes = self
            .fs
            .read(&self.path, MAX_TOKEN_FILE_BYTES)
            .map_err(|e| {
                let what = match e.kind() {
                    std::io::ErrorKind::NotFound => "does not exist",
                    std::io::ErrorKind::PermissionDenied => "cannot be read (permission denied)",
                    std::io::ErrorKind::InvalidData => "is larger than 64 KiB (not a token?)",
                    _ => "cannot be read",
                };
                Error::new(
                    ErrorKind::Io,
                    NAME,
                    format!("the federated token file {path} {what}"),
                )
                .with_fix(fix)
                .with_source(e)
            })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::new(
                ErrorKind::Io,
                NAME,
                format!("the federated token file {path} is not text (a JWT was expected)"),
            )
            .with_fix(fix)
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(Error::new(
                ErrorKind::Io,
                NAME,
                format!("the federated token file {path} is empty"),
            )
            .with_fix(fix));
        }
        let assertion = Secret::new(token);
        tracing::debug!(credential = NAME, token_file = %self.path.display(), "read the federated token file");
        *self.cached.lock() = Some(CachedAssertion {
            assertion: assertion.clone(),
            read_at: now,
            stamp,
        });
        Ok(assertion)
    }

    /// Adds to an "assertion expired" error when the token in the file expires (its `exp`
    /// claim: our own input, and not secret), so a stale file is obvious.
    fn explain_expired(&self, error: Error, assertion: &Secret) -> Error {
        if !error.aadsts_codes().contains(&AADSTS_ASSERTION_EXPIRED) {
            return error;
        }
        let expiry = jwt_expiry(assertion.expose())
            .map(|exp| format!("expires at {exp}"))
            .unwrap_or_else(|| "has no readable expiry".to_owned());
        let mut explained = Error::new(
            error.kind(),
            NAME,
            format!(
                "{} (the token in {}, read again just now, {expiry})",
                error.message(),
                quoted(&self.path.display().to_string())
            ),
        )
        .with_aadsts_codes(error.aadsts_codes().iter().copied())
        .with_fix("the federated token file is not being renewed: check the pod's service account token projection (kubelet renews it before it expires)");
        if let Some(status) = error.status() {
            explained = explained.with_status(status);
        }
        if let Some(id) = error.correlation_id() {
            explained = explained.with_correlation_id(id);
        }
        explained
    }
}

/// The `exp` claim of a JWT, without verifying anything.
fn jwt_expiry(jwt: &str) -> Option<OffsetDateTime> {
    crate::jwt::Claims::of(jwt)?.expires_on()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::ManualClock;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use time::macros::datetime;

    fn token_file(fs: Fs, clock: &ManualClock, path: &Path) -> TokenFile {
        TokenFile {
            path: path.to_owned(),
            fs,
            clock: clock.clock(),
            cached: Mutex::new(None),
        }
    }

    #[test]
    fn a_changed_file_is_read_again_at_once() {
        let fs = Fs::memory();
        let clock = ManualClock::new(datetime!(2030-01-01 0:00 UTC));
        let path = Path::new("/var/run/secrets/azure/tokens/azure-identity-token");
        fs.write(path, "token-one\n");
        let file = token_file(fs.clone(), &clock, path);
        assert_eq!(file.current().unwrap().expose(), "token-one");
        fs.write(path, "token-two");
        assert_eq!(file.current().unwrap().expose(), "token-two");
        fs.remove(path);
        let err = file.current().unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(err.to_string().contains("azure-identity-token"), "{err}");
    }

    #[test]
    fn an_unchanged_file_is_read_again_after_five_minutes() {
        // A real file rewritten with contents of the same length and its old modification
        // time: only the age rule can notice.
        let path =
            std::env::temp_dir().join(format!("azure-credentials-wi-{}", std::process::id()));
        std::fs::write(&path, "token-AAA").unwrap();
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        // New contents, the old modification time.
        let rewrite = |path: &Path, contents: &str| {
            std::fs::write(path, contents).unwrap();
            let file = std::fs::File::options().write(true).open(path).unwrap();
            file.set_modified(modified).unwrap();
        };
        let clock = ManualClock::new(datetime!(2030-01-01 0:00 UTC));
        let file = token_file(Fs::real(), &clock, &path);
        assert_eq!(file.current().unwrap().expose(), "token-AAA");

        rewrite(&path, "token-BBB");
        clock.advance(Duration::from_secs(4 * 60));
        assert_eq!(file.current().unwrap().expose(), "token-AAA");
        clock.advance(Duration::from_secs(61));
        assert_eq!(file.current().unwrap().expose(), "token-BBB");
        // reread ignores the age.
        rewrite(&path, "token-CCC");
        assert_eq!(file.current().unwrap().expose(), "token-BBB");
        assert_eq!(file.reread().unwrap().expose(), "token-CCC");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_clock_that_jumps_back_does_not_pin_an_old_copy() {
        let fs = Fs::memory();
        let clock = ManualClock::new(datetime!(2030-01-01 0:00 UTC));
        let path = Path::new("/token");
        fs.write(path, "one");
        let file = token_file(fs.clone(), &clock, path);
        file.current().unwrap();
        clock.set(datetime!(2029-01-01 0:00 UTC));
        // Same stamp, but the copy was read "in the future": read again.
        assert_eq!(file.current().unwrap().expose(), "one");
        assert_eq!(
            file.cached.lock().as_ref().unwrap().read_at,
            datetime!(2029-01-01 0:00 UTC)
        );
    }

    #[test]
    fn bad_files_are_errors_naming_the_path() {
        let fs = Fs::memory();
        let clock = ManualClock::new(datetime!(2030-01-01 0:00 UTC));
        let path = Path::new("/tokens/t");
        let file = token_file(fs.clone(), &clock, path);
        for (contents, says) in [
            (&b"  \n"[..], "is empty"),
            (&[0xff, 0xfe, 0x00][..], "is not text"),
            (&vec![b'x'; 70 * 1024][..], "larger than 64 KiB"),
        ] {
            fs.write(path, contents);
            let err = file.current().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Io);
            let text = err.to_string();
            assert!(
                text.contains(says) && text.contains("\"/tokens/t\""),
                "{text}"
            );
        }
    }

    #[test]
    fn expiry_of_a_jwt() {
        let jwt = format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"exp":1893456000,"sub":"system:serviceaccount:x:y"}"#)
        );
        assert_eq!(jwt_expiry(&jwt), Some(datetime!(2030-01-01 0:00 UTC)));
        assert_eq!(jwt_expiry("not-a-jwt"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
    }
}
