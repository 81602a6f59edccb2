//! [`Persisted`]: a credential's fetcher behind the persistent cache — read on a miss (which is
//! when the in-memory cache calls a fetcher at all), written after a fetch. A hit of the
//! in-memory cache never gets here.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::PersistentCache;
use super::msal_schema::{AccessTokenQuery, NewAccessToken};
use crate::system::Clock;
use crate::{AccessToken, Error, TokenFetcher, TokenRequest};

/// Whose tokens a persisted fetcher reads and writes, as MSAL keys them.
pub(crate) struct TokenOwner {
    /// The credential's name, for the tokens read back and for log lines.
    pub(crate) credential: &'static str,
    /// The authority's host (`login.microsoftonline.com`): MSAL's `environment`.
    pub(crate) environment: String,
    pub(crate) client_id: String,
    /// The tenant of requests that name none.
    pub(crate) tenant: String,
    /// The signed-in user's home account id, `""` for an application's own tokens; `None`
    /// while a user credential knows no user yet (nothing is read or written then).
    pub(crate) home_account: Arc<dyn Fn() -> Option<String> + Send + Sync>,
    /// Puts on a token read back what the credential knows (the user's name, say).
    pub(crate) decorate: Arc<dyn Fn(AccessToken) -> AccessToken + Send + Sync>,
    /// What judges expiry (the cache's clock).
    pub(crate) clock: Clock,
}

/// A fetcher whose tokens are also kept in a persistent cache (two: MSAL keeps CAE tokens in a
/// cache of their own).
pub(crate) struct Persisted<F> {
    inner: F,
    owner: TokenOwner,
    caches: Option<PersistedCaches>,
}

/// The caches of one persistence: for tokens without and with CAE.
#[derive(Clone)]
pub(crate) struct PersistedCaches {
    pub(crate) plain: Arc<PersistentCache>,
    pub(crate) cae: Arc<PersistentCache>,
}

impl<F> Persisted<F> {
    /// `inner` behind `caches`, or as it is when there are none.
    pub(crate) fn new(inner: F, owner: TokenOwner, caches: Option<PersistedCaches>) -> Self {
        Persisted {
            inner,
            owner,
            caches,
        }
    }

    fn cache_for(&self, request: &TokenRequest) -> Option<&Arc<PersistentCache>> {
        let caches = self.caches.as_ref()?;
        Some(if request.enable_cae() {
            &caches.cae
        } else {
            &caches.plain
        })
    }

    /// The token a previous process (or credential) stored for `request`, if one is usable.
    async fn read(&self, request: &TokenRequest, now: OffsetDateTime) -> Option<AccessToken> {
        let cache = self.cache_for(request)?.clone();
        let home_account_id = (self.owner.home_account)()?;
        let realm = request.tenant_id().unwrap_or(&self.owner.tenant).to_owned();
        let (environment, client_id) =
            (self.owner.environment.clone(), self.owner.client_id.clone());
        let (scopes, query_realm) = (request.scopes().to_vec(), realm.clone());
        let credential = self.owner.credential;
        let found = off_the_runtime(move || {
            let query = AccessTokenQuery {
                environment: &environment,
                client_id: &client_id,
                realm: &query_realm,
                home_account_id: &home_account_id,
                scopes: &scopes,
            };
            cache
                .read(|document| document.find_access_token(&query, now.unix_timestamp()))
                .unwrap_or_else(|error| {
                    tracing::warn!(credential, error = %error, "the persistent token cache could not be read; fetching a token");
                    None
                })
        })
        .await??;
        let expires_on = OffsetDateTime::from_unix_timestamp(found.expires_on).ok()?;
        let mut token = AccessToken::new(found.secret, expires_on)
            .with_source(self.owner.credential)
            .with_tenant_id(realm)
            .with_client_id(self.owner.client_id.clone());
        if let Some(refresh_on) = found
            .refresh_on
            .and_then(|r| OffsetDateTime::from_unix_timestamp(r).ok())
        {
            token = token.with_refresh_on(refresh_on);
        }
        tracing::debug!(
            credential = self.owner.credential,
            expires_on = %token.expires_on(),
            "token read from the persistent token cache"
        );
        Some((self.owner.decorate)(token))
    }

    /// Keeps `token` for the next process; a failure is a warning, never the caller's error.
    async fn write(&self, request: &TokenRequest, token: &AccessToken, now: OffsetDateTime) {
        let Some(cache) = self.cache_for(request).cloned() else {
            return;
        };
        let Some(home_account_id) = (self.owner.home_account)() else {
            return;
        };
        let realm = request.tenant_id().unwrap_or(&self.owner.tenant).to_owned();
        let (environment, client_id) =
            (self.owner.environment.clone(), self.owner.client_id.clone());
        let scopes = request.scopes().to_vec();
        let secret = token.token().clone();
        let expires_on = token.expires_on().unix_timestamp();
        let refresh_on = token.refresh_on().map(OffsetDateTime::unix_timestamp);
        let credential = self.owner.credential;
        let _ = off_the_runtime(move || {
            let entry = NewAccessToken {
                environment: &environment,
                client_id: &client_id,
                realm: &realm,
                home_account_id: &home_account_id,
                scopes: &scopes,
                secret: &secret,
                cached_at: now.unix_timestamp(),
                expires_on,
                extended_expires_on: expires_on,
                refresh_on,
            };
            if let Err(error) = cache.update(|document| document.put_access_token(entry)) {
                tracing::warn!(credential, error = %error, "the token could not be written to the persistent token cache");
            }
        })
        .await;
    }
}

/// Runs file work (which may wait for another process's lock) on tokio's blocking threads when
/// there is a runtime, so it never stalls the runtime's own; in place otherwise. `None` when
/// the work panicked.
pub(crate) async fn off_the_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            // Its log lines go where the caller's go (a scoped subscriber, a test's capture).
            let dispatch = tracing::dispatcher::get_default(Clone::clone);
            handle
                .spawn_blocking(move || tracing::dispatcher::with_default(&dispatch, work))
                .await
                .ok()
        }
        Err(_) => Some(work()),
    }
}

impl<F: fmt::Debug> fmt::Debug for Persisted<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Persisted")
            .field("inner", &self.inner)
            .field("persistent", &self.caches.is_some())
            .finish()
    }
}

#[async_trait]
impl<F: TokenFetcher> TokenFetcher for Persisted<F> {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        // A claims challenge asks for a new token, never a stored one.
        let now = self.owner.clock.now();
        if request.claims().is_none()
            && let Some(token) = self.read(request, now).await
        {
            return Ok(token);
        }
        let token = self.inner.fetch(request).await?;
        if request.claims().is_none() {
            self.write(request, &token, now).await;
        }
        Ok(token)
    }

    fn resolve_tenant<'a>(&'a self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        self.inner.resolve_tenant(requested)
    }

    fn stop_when_abandoned(&self) -> bool {
        self.inner.stop_when_abandoned()
    }
}
