//! [`ObjectStoreCredential`]: this crate's credentials as `object_store`'s Azure credential
//! provider.

use std::borrow::Cow;
use std::sync::Arc;

use ::object_store::CredentialProvider;
use ::object_store::azure::AzureCredential;
use async_trait::async_trait;
use parking_lot::RwLock;

use crate::credential::shared;
use crate::setters::debug_fields;
use crate::{AccessToken, Error, TokenCredential};

/// The store name object_store's own Azure credentials put in their errors.
const STORE: &str = "MicrosoftAzure";

/// Any [`TokenCredential`] of this crate as the credential provider of `object_store`'s Azure
/// Blob / ADLS Gen2 store (object_store 0.14): it yields
/// [`AzureCredential::BearerToken`] for the storage scope,
/// [`STORAGE_SCOPE`](Self::STORAGE_SCOPE).
///
/// Wrap it in an `Arc` for the
/// [`AzureCredentialProvider`](object_store::azure::AzureCredentialProvider) that
/// `MicrosoftAzureBuilder::with_credentials` takes (constructors in this crate return `Self`).
///
/// ```no_run
/// use std::sync::Arc;
/// use azure_credentials::{DefaultAzureCredential, interop::ObjectStoreCredential};
/// use object_store::azure::MicrosoftAzureBuilder;
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let credential = Arc::new(ObjectStoreCredential::new(DefaultAzureCredential::new()?));
/// let store = MicrosoftAzureBuilder::new()
///     .with_account("mystorageaccount")
///     .with_container_name("data")
///     .with_credentials(credential)
///     .build()?;
/// # let _ = store; Ok(()) }
/// ```
///
/// # Tokens
///
/// object_store asks its credential provider once per request. Each call asks the wrapped
/// credential, whose cache answers at once while the token is fresh, refreshes it in the
/// background before it expires and lets concurrent requests share one fetch. The adapter
/// remembers only the last token it converted, so that while the token stays the same every
/// request gets the same `Arc<AzureCredential>` instead of a new copy of the token.
///
/// # Errors
///
/// An [`Error`] becomes [`object_store::Error::Generic`] with `store: "MicrosoftAzure"` (as
/// object_store's own Azure credentials report) and this crate's error as its `source`:
/// `source.downcast_ref::<azure_credentials::Error>()` gives back its kind, status and attempts.
pub struct ObjectStoreCredential {
    credential: Arc<dyn TokenCredential>,
    scope: Cow<'static, str>,
    last: RwLock<Option<Converted>>,
}

/// The last token handed out, and what it was converted to.
struct Converted {
    token: AccessToken,
    bearer: Arc<AzureCredential>,
}

impl ObjectStoreCredential {
    /// The scope of Azure Storage tokens, the same in every cloud.
    pub const STORAGE_SCOPE: &'static str = "https://storage.azure.com/.default";

    /// Wraps `credential`, e.g. a [`DefaultAzureCredential`](crate::DefaultAzureCredential), to
    /// get tokens for [`STORAGE_SCOPE`](Self::STORAGE_SCOPE); an `Arc<dyn TokenCredential>` is
    /// shared as it is, without another level of `Arc`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use azure_credentials::DefaultAzureCredential;
    /// use azure_credentials::interop::ObjectStoreCredential;
    ///
    /// let credential = Arc::new(ObjectStoreCredential::new(DefaultAzureCredential::new()?));
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn new(credential: impl TokenCredential + 'static) -> Self {
        ObjectStoreCredential {
            credential: shared(credential),
            scope: Cow::Borrowed(Self::STORAGE_SCOPE),
            last: RwLock::new(None),
        }
    }

    /// Gets tokens for another scope than [`STORAGE_SCOPE`](Self::STORAGE_SCOPE) (a
    /// storage-compatible service, a test).
    pub fn with_scope(mut self, scope: impl Into<Cow<'static, str>>) -> Self {
        self.scope = scope.into();
        *self.last.get_mut() = None;
        self
    }

    /// The wrapped credential.
    pub fn credential(&self) -> &Arc<dyn TokenCredential> {
        &self.credential
    }

    /// The scope tokens are requested for.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The bearer credential for `token`: the one handed out last when the token is the same.
    fn bearer(&self, token: AccessToken) -> Arc<AzureCredential> {
        if let Some(last) = &*self.last.read()
            // A cache hit on another thread is a copy of the same token, not the same handle.
            && (last.token.ptr_eq(&token)
                || (last.token.expires_on() == token.expires_on()
                    && last.token.token() == token.token()))
        {
            return last.bearer.clone();
        }
        let bearer = Arc::new(AzureCredential::BearerToken(
            token.token().expose().to_owned(),
        ));
        *self.last.write() = Some(Converted {
            token,
            bearer: bearer.clone(),
        });
        bearer
    }
}

// Not the last token: object_store's AzureCredential prints its token in Debug.
debug_fields!(ObjectStoreCredential {
    credential,
    scope,
    ..
});

#[async_trait]
impl CredentialProvider for ObjectStoreCredential {
    type Credential = AzureCredential;

    async fn get_credential(&self) -> ::object_store::Result<Arc<AzureCredential>> {
        let scopes = [&*self.scope];
        let token = self
            .credential
            .get_token(&scopes, None)
            .await
            .map_err(to_object_store_error)?;
        Ok(self.bearer(token))
    }
}

fn to_object_store_error(error: Error) -> ::object_store::Error {
    ::object_store::Error::Generic {
        store: STORE,
        source: Box::new(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, TokenFuture, TokenRequestOptions};
    use time::macros::datetime;

    /// Hands out one token, as a cache hit would.
    #[derive(Debug)]
    struct Fixed(AccessToken);

    impl TokenCredential for Fixed {
        fn get_token<'a>(
            &'a self,
            scopes: &'a [&'a str],
            _options: Option<&'a TokenRequestOptions>,
        ) -> TokenFuture<'a> {
            assert_eq!(scopes, [ObjectStoreCredential::STORAGE_SCOPE]);
            TokenFuture::ready(Ok(self.0.clone()))
        }
    }

    fn credential(token: &str) -> ObjectStoreCredential {
        ObjectStoreCredential::new(Fixed(AccessToken::new(
            token,
            datetime!(2100-01-01 0:00 UTC),
        )))
    }

    #[tokio::test]
    async fn yields_the_token_as_a_bearer_and_reuses_the_conversion() {
        let provider = credential("eyJ-storage-token");
        let first = provider.get_credential().await.unwrap();
        assert_eq!(
            *first,
            AzureCredential::BearerToken("eyJ-storage-token".into())
        );
        let second = provider.get_credential().await.unwrap();
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[test]
    fn a_new_token_is_a_new_bearer() {
        let provider = credential("t1");
        let first = provider.bearer(AccessToken::new("t1", datetime!(2100-01-01 0:00 UTC)));
        let same = provider.bearer(AccessToken::new("t1", datetime!(2100-01-01 0:00 UTC)));
        assert!(Arc::ptr_eq(&first, &same), "an equal copy converts once");
        let renewed = provider.bearer(AccessToken::new("t2", datetime!(2100-01-01 1:00 UTC)));
        assert_eq!(*renewed, AzureCredential::BearerToken("t2".into()));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let provider = credential("eyJ-storage-token");
        let _ = provider.bearer(AccessToken::new(
            "eyJ-storage-token",
            datetime!(2100-01-01 0:00 UTC),
        ));
        let printed = format!("{provider:?}");
        assert!(!printed.contains("eyJ-storage-token"), "{printed}");
        assert!(printed.contains("storage.azure.com"), "{printed}");
    }

    #[test]
    fn errors_are_generic_azure_errors_with_ours_as_the_source() {
        let ours = Error::unavailable("DefaultAzureCredential", "no credential produced a token");
        let theirs = to_object_store_error(ours.clone());
        let ::object_store::Error::Generic { store, source } = &theirs else {
            panic!("{theirs:?}");
        };
        assert_eq!(*store, "MicrosoftAzure");
        let back = source.downcast_ref::<Error>().unwrap();
        assert_eq!(back.kind(), ErrorKind::Unavailable);
        assert!(theirs.to_string().contains(&ours.to_string()), "{theirs}");
    }
}
