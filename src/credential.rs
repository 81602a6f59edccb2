//! [`TokenCredential`], [`AccessToken`], [`TokenRequestOptions`] and [`TokenFuture`].

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use time::OffsetDateTime;

use crate::setters::setters;
use crate::{Error, Secret};

/// Something that can produce an Azure access token: the trait every credential implements
/// and every consumer takes, usually as `Arc<dyn TokenCredential>`.
///
/// `get_token` returns a [`TokenFuture`], which callers simply `.await`. When the token is
/// already cached the future is ready at once and nothing is allocated; otherwise it wraps the
/// credential's asynchronous work. This keeps the trait dyn compatible without the heap
/// allocation per call that an `async fn` behind `async_trait` would cost.
///
/// ```
/// use std::sync::Arc;
/// use azure_credentials::{TokenCredential, Error, AccessToken};
///
/// async fn list_vaults(credential: Arc<dyn TokenCredential>) -> Result<(), Error> {
///     let token: AccessToken = credential
///         .get_token(&["https://management.azure.com/.default"], None)
///         .await?;
///     // send `Authorization: Bearer {token.token().expose()}` ...
///     # let _ = token;
///     Ok(())
/// }
/// ```
///
/// Implementing it for a type of your own: return [`TokenFuture::ready`] when you have the
/// answer, or [`TokenFuture::new`] around an `async` block.
///
/// ```
/// use azure_credentials::{AccessToken, TokenCredential, TokenFuture, TokenRequestOptions};
///
/// #[derive(Debug)]
/// struct FromSomewhere;
///
/// impl TokenCredential for FromSomewhere {
///     fn get_token<'a>(
///         &'a self,
///         scopes: &'a [&'a str],
///         _options: Option<&'a TokenRequestOptions>,
///     ) -> TokenFuture<'a> {
///         TokenFuture::new(async move {
///             let expires_on = time::macros::datetime!(2030-01-01 0:00 UTC);
///             Ok(AccessToken::new(format!("token for {}", scopes.join(" ")), expires_on))
///         })
///     }
/// }
/// ```
pub trait TokenCredential: Send + Sync + fmt::Debug {
    /// Gets a token for `scopes` (usually one, `"<resource>/.default"`).
    ///
    /// # Errors
    ///
    /// Every failure is an [`Error`]; its [`ErrorKind`](crate::ErrorKind) says what to do:
    /// [`Unavailable`](crate::ErrorKind::Unavailable) when this source cannot try here (a chain
    /// moves on), [`Authentication`](crate::ErrorKind::Authentication) when the provider refused,
    /// [`ServiceFailure`](crate::ErrorKind::ServiceFailure), [`Timeout`](crate::ErrorKind::Timeout)
    /// or [`Throttled`](crate::ErrorKind::Throttled) when it failed, did not answer or asked us to
    /// slow down, [`InvalidInput`](crate::ErrorKind::InvalidInput) for an invalid scope, tenant or
    /// claims.
    fn get_token<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: Option<&'a TokenRequestOptions>,
    ) -> TokenFuture<'a>;
}

/// `credential` as a shared trait object, for the APIs that take `impl TokenCredential`: an
/// `Arc<dyn TokenCredential>` is kept as it is (not wrapped in a second `Arc`, which would cost
/// every call another indirection), anything else is put in an `Arc`.
pub(crate) fn shared(credential: impl TokenCredential + 'static) -> Arc<dyn TokenCredential> {
    let any: &dyn Any = &credential;
    match any.downcast_ref::<Arc<dyn TokenCredential>>() {
        Some(shared) => shared.clone(),
        None => Arc::new(credential),
    }
}

/// Implements [`TokenCredential`] by handing the call on: `delegate_token_credential!(Type =>
/// field)` asks the field (a credential, or anything with a `get_token` of the same shape);
/// `delegate_token_credential!(deref Arc<T>, ..)` asks what a pointer points to.
macro_rules! delegate_token_credential {
    ($type:ty => $field:ident) => {
        impl $crate::TokenCredential for $type {
            fn get_token<'a>(
                &'a self,
                scopes: &'a [&'a str],
                options: Option<&'a $crate::TokenRequestOptions>,
            ) -> $crate::TokenFuture<'a> {
                self.$field.get_token(scopes, options)
            }
        }
    };
    (deref $($pointer:ty),* $(,)?) => {
        $(
            impl<T: TokenCredential + ?Sized> TokenCredential for $pointer {
                fn get_token<'a>(
                    &'a self,
                    scopes: &'a [&'a str],
                    options: Option<&'a TokenRequestOptions>,
                ) -> TokenFuture<'a> {
                    (**self).get_token(scopes, options)
                }
            }
        )*
    };
}
pub(crate) use delegate_token_credential;

delegate_token_credential!(deref Arc<T>, Box<T>, &T);

type BoxedTokenFuture<'a> = Pin<Box<dyn Future<Output = Result<AccessToken, Error>> + Send + 'a>>;

/// The future returned by [`TokenCredential::get_token`]: either ready at once (a cache hit,
/// no allocation) or wrapping the credential's asynchronous work.
#[must_use = "futures do nothing unless awaited"]
pub struct TokenFuture<'a> {
    state: FutureState<'a>,
}

enum FutureState<'a> {
    Ready(Option<Result<AccessToken, Error>>),
    Pending(BoxedTokenFuture<'a>),
}

impl<'a> TokenFuture<'a> {
    /// A future that is already complete: what an implementation returns when it has the answer
    /// at hand (no allocation).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{AccessToken, TokenFuture};
    /// use time::macros::datetime;
    ///
    /// let future = TokenFuture::ready(Ok(AccessToken::new("token", datetime!(2030-01-01 0:00 UTC))));
    /// ```
    pub fn ready(result: Result<AccessToken, Error>) -> Self {
        TokenFuture {
            state: FutureState::Ready(Some(result)),
        }
    }

    /// Wraps asynchronous work (this allocates once).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{AccessToken, TokenFuture};
    /// use time::macros::datetime;
    ///
    /// let future = TokenFuture::new(async {
    ///     // ... ask an identity provider ...
    ///     Ok(AccessToken::new("token", datetime!(2030-01-01 0:00 UTC)))
    /// });
    /// ```
    pub fn new(future: impl Future<Output = Result<AccessToken, Error>> + Send + 'a) -> Self {
        TokenFuture {
            state: FutureState::Pending(Box::pin(future)),
        }
    }

    /// Applies `f` to the result: at once when it is ready (no allocation), else when the work
    /// completes.
    pub(crate) fn map(
        self,
        f: impl FnOnce(Result<AccessToken, Error>) -> Result<AccessToken, Error> + Send + 'a,
    ) -> Self {
        match self.state {
            FutureState::Ready(Some(result)) => TokenFuture::ready(f(result)),
            state => {
                let future = TokenFuture { state };
                TokenFuture::new(async move { f(future.await) })
            }
        }
    }
}

impl Future for TokenFuture<'_> {
    type Output = Result<AccessToken, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            FutureState::Ready(result) => {
                Poll::Ready(result.take().expect("TokenFuture polled after completion"))
            }
            FutureState::Pending(future) => future.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for TokenFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            FutureState::Ready(Some(_)) => "ready",
            FutureState::Ready(None) => "complete",
            FutureState::Pending(_) => "pending",
        };
        f.debug_struct("TokenFuture")
            .field("state", &state)
            .finish()
    }
}

/// Per-request options for [`TokenCredential::get_token`].
///
/// ```
/// use azure_credentials::TokenRequestOptions;
///
/// let options = TokenRequestOptions::default()
///     .with_tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47")
///     .with_enable_cae(true);
/// assert_eq!(options.tenant_id(), Some("72f988bf-86f1-41af-91ab-2d7cd011db47"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequestOptions {
    tenant_id: Option<String>,
    claims: Option<String>,
    enable_cae: bool,
}

impl TokenRequestOptions {
    setters! {
        /// Requests a token from another tenant than the credential's own, where the credential
        /// supports it and allows that tenant.
        with_tenant_id(tenant_id: impl Into<String>) => Some(tenant_id);

        /// Answers a claims challenge (CAE, MFA): the decoded JSON from a resource's
        /// `WWW-Authenticate` header. A request with claims always bypasses the cache.
        with_claims(claims: impl Into<String>) => Some(claims);

        /// Asks for a token the caller can handle continuous access evaluation (CAE) challenges for.
        with_enable_cae(enable: bool) => enable_cae;
    }

    /// The requested tenant, if any.
    pub fn tenant_id(&self) -> Option<&str> {
        self.tenant_id.as_deref()
    }

    /// The claims challenge, if any.
    pub fn claims(&self) -> Option<&str> {
        self.claims.as_deref()
    }

    /// Whether the caller handles CAE challenges.
    pub fn enable_cae(&self) -> bool {
        self.enable_cae
    }
}

/// An access token and what is known about it.
///
/// Cloning is one reference-count increment: the token string and its details are shared.
/// `Debug` never shows the token itself.
#[derive(Clone)]
pub struct AccessToken {
    inner: Arc<TokenInner>,
}

#[derive(Clone)]
struct TokenInner {
    token: Secret,
    expires_on: OffsetDateTime,
    refresh_on: Option<OffsetDateTime>,
    source: Cow<'static, str>,
    tenant_id: Option<Arc<str>>,
    client_id: Option<Arc<str>>,
    user: Option<Arc<TokenUser>>,
}

/// The signed-in user a token is for (user credentials only).
#[derive(Clone)]
struct TokenUser {
    username: Option<Box<str>>,
    object_id: Option<Box<str>>,
}

impl AccessToken {
    /// A token that expires at `expires_on`; the `with_*` methods add what else is known about it.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::AccessToken;
    /// use time::macros::datetime;
    ///
    /// let token = AccessToken::new("eyJ0eXAi...", datetime!(2030-01-01 1:00 UTC))
    ///     .with_refresh_on(datetime!(2030-01-01 0:30 UTC))
    ///     .with_source("MyTokenSource")
    ///     .with_tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47");
    /// assert_eq!(token.source(), "MyTokenSource");
    /// assert!(!format!("{token:?}").contains("eyJ0eXAi"));
    /// ```
    pub fn new(token: impl Into<Secret>, expires_on: OffsetDateTime) -> Self {
        AccessToken {
            inner: Arc::new(TokenInner {
                token: token.into(),
                expires_on,
                refresh_on: None,
                source: Cow::Borrowed(""),
                tenant_id: None,
                client_id: None,
                user: None,
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut TokenInner {
        Arc::make_mut(&mut self.inner)
    }

    /// Sets when the token should be refreshed (the provider's `refresh_in`, as a time).
    pub fn with_refresh_on(mut self, refresh_on: OffsetDateTime) -> Self {
        self.inner_mut().refresh_on = Some(refresh_on);
        self
    }

    /// Sets the credential that produced the token, e.g. `"ManagedIdentityCredential"`.
    pub fn with_source(mut self, source: impl Into<Cow<'static, str>>) -> Self {
        self.inner_mut().source = source.into();
        self
    }

    /// Sets the tenant the token was issued in.
    pub fn with_tenant_id(mut self, tenant_id: impl Into<Arc<str>>) -> Self {
        self.inner_mut().tenant_id = Some(tenant_id.into());
        self
    }

    /// Sets the client (application) id of the identity the token represents.
    pub fn with_client_id(mut self, client_id: impl Into<Arc<str>>) -> Self {
        self.inner_mut().client_id = Some(client_id.into());
        self
    }

    /// Sets the signed-in user's name (`preferred_username`, usually an email address), for
    /// tokens that act for a user.
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        let user = self.user_mut();
        user.username = Some(username.into().into_boxed_str());
        self
    }

    /// Sets the object id (`oid`) of the user or service principal the token is for.
    pub fn with_object_id(mut self, object_id: impl Into<String>) -> Self {
        let user = self.user_mut();
        user.object_id = Some(object_id.into().into_boxed_str());
        self
    }

    fn user_mut(&mut self) -> &mut TokenUser {
        let user = self.inner_mut().user.get_or_insert_with(|| {
            Arc::new(TokenUser {
                username: None,
                object_id: None,
            })
        });
        Arc::make_mut(user)
    }

    /// The token. Send it as `Authorization: Bearer <token>`.
    pub fn token(&self) -> &Secret {
        &self.inner.token
    }

    /// When the token expires.
    pub fn expires_on(&self) -> OffsetDateTime {
        self.inner.expires_on
    }

    /// When the token should be refreshed. Tokens returned through the cache carry the time the
    /// cache will refresh them: ask again after it and you get a fresh one.
    pub fn refresh_on(&self) -> Option<OffsetDateTime> {
        self.inner.refresh_on
    }

    /// The credential that produced the token (empty when unknown).
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// The tenant the token was issued in, when known.
    pub fn tenant_id(&self) -> Option<&str> {
        self.inner.tenant_id.as_deref()
    }

    /// The client (application) id of the identity, when known.
    pub fn client_id(&self) -> Option<&str> {
        self.inner.client_id.as_deref()
    }

    /// The signed-in user's name (`preferred_username` of the id token), for tokens a user
    /// credential got; `None` otherwise.
    pub fn username(&self) -> Option<&str> {
        self.inner.user.as_ref()?.username.as_deref()
    }

    /// The object id (`oid`) of the identity the token is for, when known (user credentials).
    pub fn object_id(&self) -> Option<&str> {
        self.inner.user.as_ref()?.object_id.as_deref()
    }

    /// Whether two handles share the same token allocation (a cache hit returns the same one).
    pub fn ptr_eq(&self, other: &AccessToken) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// A copy whose reference count is not shared with `self` (the cache's per-thread copies).
    pub(crate) fn deep_copy(&self) -> Self {
        let mut inner = (*self.inner).clone();
        inner.token = inner.token.deep_copy();
        AccessToken {
            inner: Arc::new(inner),
        }
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let mut d = f.debug_struct("AccessToken");
        d.field("token", &inner.token)
            .field("expires_on", &inner.expires_on)
            .field("refresh_on", &inner.refresh_on);
        if !inner.source.is_empty() {
            d.field("source", &inner.source);
        }
        if let Some(tenant) = &inner.tenant_id {
            d.field("tenant_id", tenant);
        }
        if let Some(client) = &inner.client_id {
            d.field("client_id", client);
        }
        if let Some(username) = self.username() {
            d.field("username", &username);
        }
        if let Some(object_id) = self.object_id() {
            d.field("object_id", &object_id);
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[derive(Debug)]
    struct Nothing;

    impl TokenCredential for Nothing {
        fn get_token<'a>(
            &'a self,
            _scopes: &'a [&'a str],
            _options: Option<&'a TokenRequestOptions>,
        ) -> TokenFuture<'a> {
            TokenFuture::ready(Err(Error::unavailable("Nothing", "nothing here")))
        }
    }

    #[test]
    fn a_shared_credential_is_taken_as_it_is_and_anything_else_is_put_in_an_arc() {
        let already: Arc<dyn TokenCredential> = Arc::new(Nothing);
        assert!(Arc::ptr_eq(&shared(already.clone()), &already));
        // An `Arc` of a concrete type is a credential of its own: wrapped, still working.
        let concrete = shared(Arc::new(Nothing));
        assert!(format!("{concrete:?}").contains("Nothing"));
        let _ = shared(Nothing);
    }

    #[test]
    fn access_token_debug_hides_the_token() {
        let token = AccessToken::new("eyJ-very-secret", datetime!(2030-01-01 0:00 UTC))
            .with_source("ManagedIdentityCredential")
            .with_client_id("client-1");
        let printed = format!("{token:?}");
        assert!(!printed.contains("eyJ-very-secret"), "{printed}");
        assert!(printed.contains("ManagedIdentityCredential") && printed.contains("client-1"));
    }

    #[test]
    fn clone_shares_and_deep_copy_does_not() {
        let token = AccessToken::new("t", datetime!(2030-01-01 0:00 UTC));
        assert!(token.ptr_eq(&token.clone()));
        let copy = token.deep_copy();
        assert!(!token.ptr_eq(&copy));
        assert_eq!(copy.token(), token.token());
        assert_eq!(copy.expires_on(), token.expires_on());
    }

    #[tokio::test]
    async fn ready_future_resolves_without_polling_twice() {
        let token = AccessToken::new("t", datetime!(2030-01-01 0:00 UTC));
        let got = TokenFuture::ready(Ok(token.clone())).await.unwrap();
        assert!(got.ptr_eq(&token));
        let got = TokenFuture::new(async move { Ok(token) }).await.unwrap();
        assert_eq!(got.token().expose(), "t");
    }

    #[test]
    fn options_builders() {
        let o = TokenRequestOptions::default()
            .with_tenant_id("t")
            .with_claims("{}")
            .with_enable_cae(true);
        assert_eq!(o.tenant_id(), Some("t"));
        assert_eq!(o.claims(), Some("{}"));
        assert!(o.enable_cae());
    }
}
