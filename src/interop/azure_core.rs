//! [`AzureCoreCredential`]: this crate's credentials as an `azure_core` 1.x `TokenCredential`,
//! for the clients of the official Azure SDK for Rust.

use std::sync::Arc;

use ::azure_core::credentials as sdk;
use async_trait::async_trait;

use crate::credential::shared;
use crate::setters::debug_fields;
use crate::{AccessToken, Error, TokenCredential};

/// Any [`TokenCredential`] of this crate as an [`azure_core::credentials::TokenCredential`]
/// (azure_core 1.x), so the official Azure SDK for Rust clients can use it.
///
/// Wrap it in an `Arc` for the `Arc<dyn azure_core::credentials::TokenCredential>` every
/// client constructor takes (constructors in this crate return `Self`).
///
/// ```no_run
/// use std::sync::Arc;
/// use azure_credentials::{DefaultAzureCredential, interop::AzureCoreCredential};
/// # struct SecretClient;
/// # impl SecretClient {
/// #     fn new(_: &str, _: Arc<dyn azure_core::credentials::TokenCredential>, _: Option<()>)
/// #         -> azure_core::Result<Self> { Ok(SecretClient) }
/// # }
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let credential = Arc::new(AzureCoreCredential::new(DefaultAzureCredential::new()?));
/// // e.g. azure_security_keyvault_secrets::SecretClient
/// let client = SecretClient::new("https://my-vault.vault.azure.net/", credential, None)?;
/// # let _ = client; Ok(()) }
/// ```
///
/// # Tokens
///
/// Every `get_token` asks the wrapped credential, whose cache answers at once while the token is
/// fresh (the SDK's bearer-token policy also keeps the token until five minutes before it
/// expires, so it asks rarely). The token is copied into azure_core's
/// [`Secret`](azure_core::credentials::Secret), which does not print it either; `expires_on` is
/// the token's own expiry. azure_core's [`TokenRequestOptions`](azure_core::credentials::TokenRequestOptions)
/// carry no tenant, claims or CAE flag, so the wrapped credential is asked with none: it uses its
/// own tenant.
///
/// # Errors
///
/// Every [`Error`] becomes an [`azure_core::Error`] of kind
/// [`Credential`](azure_core::error::ErrorKind::Credential), whatever its
/// [`ErrorKind`](crate::ErrorKind): that is what the SDK's own credentials return and what its
/// retry policy leaves alone (this crate's sources already retry as their providers ask). The
/// message is this crate's, and the error itself is the source, so
/// `err.downcast_ref::<azure_credentials::Error>()` gives back its kind, HTTP status, `AADSTS`
/// codes and a chain's attempts. An SDK client's pipeline may wrap the error once more in a
/// message of its own (its retry policy adds "non-transport error occurred which will not be
/// retried", keeping the kind): print or walk the whole `source()` chain to reach this crate's.
/// The conversion is also available as `From`, so `?` works on this crate's errors in functions
/// that return `azure_core::Result`.
#[derive(Clone)]
pub struct AzureCoreCredential {
    credential: Arc<dyn TokenCredential>,
}

impl AzureCoreCredential {
    /// Wraps `credential`, e.g. a [`DefaultAzureCredential`](crate::DefaultAzureCredential);
    /// an `Arc<dyn TokenCredential>` is shared as it is, without another level of `Arc`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use azure_credentials::DefaultAzureCredential;
    /// use azure_credentials::interop::AzureCoreCredential;
    ///
    /// let credential: Arc<dyn azure_core::credentials::TokenCredential> =
    ///     Arc::new(AzureCoreCredential::new(DefaultAzureCredential::new()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(credential: impl TokenCredential + 'static) -> Self {
        AzureCoreCredential {
            credential: shared(credential),
        }
    }

    /// The wrapped credential.
    pub fn credential(&self) -> &Arc<dyn TokenCredential> {
        &self.credential
    }
}

// The credentials' own Debug shows identities and endpoints, never a secret.
debug_fields!(AzureCoreCredential { credential });

#[async_trait]
impl sdk::TokenCredential for AzureCoreCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<sdk::TokenRequestOptions<'_>>,
    ) -> ::azure_core::Result<sdk::AccessToken> {
        let token = self.credential.get_token(scopes, None).await?;
        Ok(token.into())
    }
}

impl From<AccessToken> for sdk::AccessToken {
    /// The token and its expiry (azure_core's token has no refresh time or origin).
    fn from(token: AccessToken) -> Self {
        sdk::AccessToken::new(token.token().expose().to_owned(), token.expires_on())
    }
}

impl From<Error> for ::azure_core::Error {
    /// An error of kind [`Credential`](azure_core::error::ErrorKind::Credential) that prints
    /// this crate's message and has this crate's error as its source.
    fn from(error: Error) -> Self {
        ::azure_core::Error::new(::azure_core::error::ErrorKind::Credential, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use time::macros::datetime;

    #[test]
    fn tokens_keep_value_and_expiry_and_stay_redacted() {
        let ours = AccessToken::new("eyJ-secret-token", datetime!(2030-01-01 0:00 UTC))
            .with_source("ManagedIdentityCredential");
        let theirs = sdk::AccessToken::from(ours);
        assert_eq!(theirs.token.secret(), "eyJ-secret-token");
        assert_eq!(theirs.expires_on, datetime!(2030-01-01 0:00 UTC));
        assert!(!format!("{theirs:?}").contains("eyJ-secret-token"));
    }

    #[test]
    fn every_kind_becomes_a_credential_error_with_our_message_and_source() {
        use std::error::Error as _;
        for kind in [
            ErrorKind::Unavailable,
            ErrorKind::Authentication,
            ErrorKind::ServiceFailure,
            ErrorKind::InvalidInput,
            ErrorKind::Timeout,
            ErrorKind::Throttled,
            ErrorKind::Io,
            ErrorKind::Other,
        ] {
            let io = std::io::Error::other("connection reset by peer");
            let ours = Error::new(kind, "ManagedIdentityCredential", "IMDS did not answer")
                .with_fix("check the network")
                .with_status(503)
                .with_source(io);
            let text = ours.to_string();
            let theirs = ::azure_core::Error::from(ours);
            assert_eq!(
                theirs.kind(),
                &::azure_core::error::ErrorKind::Credential,
                "{kind:?}"
            );
            assert_eq!(theirs.to_string(), text);
            let back = theirs
                .downcast_ref::<Error>()
                .expect("our error is the source");
            assert_eq!(back.kind(), kind);
            assert_eq!(back.status(), Some(503));
            let cause = theirs.source().and_then(|s| s.source()).unwrap();
            assert_eq!(cause.to_string(), "connection reset by peer");
        }
    }
}
