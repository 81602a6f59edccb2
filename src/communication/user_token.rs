//! [`UserTokenCredential`]: an Azure Communication Services user access token, for client
//! applications, refreshed ahead of its expiry through a callback of yours.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::context::seam_setters;
use crate::jwt::Claims;
use crate::setters::debug_fields;
use crate::system::{Clock, bounded_call, duration_nanos, timers_available, to_unix_nanos};
use crate::{
    AccessToken, CacheIdentity, CachedCredential, Context, Error, ErrorKind, Secret, TokenCache,
    TokenCredential, TokenFetcher, TokenFuture, TokenRequest, TokenRequestOptions,
};

const NAME: &str = "UserTokenCredential";
/// The one cache key every call uses: a user token does not depend on the scopes asked for.
const CACHE_SCOPE: &str = "user-access-token";
/// A token is not handed out in its last 30 s (the cache's own hard margin), so a request is
/// not sent with a token that expires on the way.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
const DEFAULT_REFRESH_TIMEOUT: Duration = Duration::from_secs(30);
/// The proactive task wakes at least this often, so a machine that slept (monotonic timers stop,
/// the wall clock does not) refreshes soon after it wakes up.
const BACKGROUND_MAX_SLEEP: Duration = Duration::from_secs(60);
/// How long after a token's refresh time the proactive task asks for it.
const BACKGROUND_PAD: Duration = Duration::from_secs(1);
/// How often the proactive task looks again while a refresh is due or running.
const BACKGROUND_DUE_POLL: Duration = Duration::from_secs(5);
/// How long the proactive task waits after failing to get any token.
const BACKGROUND_AFTER_ERROR: Duration = Duration::from_secs(30);

const TOKEN_FIX: &str = "pass the token string your service got from Communication Services (the `token` of an issueAccessToken or createUserAndToken response), without a \"Bearer \" prefix";
const REFRESHER_FIX: &str = "the refresher must return the token string your service got from Communication Services (the `token` of an issueAccessToken response)";

type RefreshFuture = Pin<Box<dyn Future<Output = Result<Secret, Error>> + Send>>;
type Refresher = Arc<dyn Fn() -> RefreshFuture + Send + Sync>;

/// A user access token of Azure Communication Services: the way a client application (a chat
/// or calling client, on a user's device) authenticates. Your trusted service creates users and
/// issues their tokens (with an [access key](crate::AccessKeyCredential) or Microsoft Entra
/// ID); the client gets its token from your service and hands it to this credential.
///
/// The token is a JWT; its `exp` claim gives the expiry. It is read (not verified) when the
/// credential is built, and a token that is not a JWT with an `exp` claim is refused, with a
/// message that never repeats it.
///
/// - **Without a refresher** the credential serves the token until 30 seconds before it expires
///   and then fails ([`ErrorKind::Unavailable`]) with a clear message. A token that has already
///   expired is refused when the credential is built.
/// - **With a refresher** — an async callback that gets a new token from your service — the
///   credential sits on the crate's [`TokenCache`]: the token is refreshed ahead of its expiry
///   (at half its lifetime for tokens living two hours or more, like the default 24-hour ones,
///   else five minutes before it expires), in the background while callers keep the current
///   one; concurrent callers share one refresh; a failed refresh keeps the current token while
///   it is valid and is retried after a backoff. Without an initial token, the first call asks
///   the refresher.
/// - **`refresh_proactively(true)`** adds a task on the current tokio runtime that refreshes on
///   time even when nobody asks for a token for hours, so a long-lived client never holds an
///   expired one. It stops when the last clone of the credential is dropped.
///
/// ```no_run
/// use azure_credentials::{Error, TokenCredential, UserTokenCredential};
///
/// # async fn fetch_token_from_my_service() -> Result<String, Error> { unimplemented!() }
/// # async fn run(token_from_my_service: String) -> Result<(), Error> {
/// let credential = UserTokenCredential::builder()
///     .token(token_from_my_service)
///     .refresher(|| async { fetch_token_from_my_service().await })
///     .refresh_proactively(true)
///     .build()?;
/// // Scopes are ignored: the token was issued for its scopes (chat, voip) already.
/// let token = credential.get_token(&[], None).await?;
/// // send `Authorization: Bearer {token.token().expose()}`
/// # let _ = token;
/// # Ok(()) }
/// ```
///
/// [`get_token`](TokenCredential::get_token) ignores its scopes and options. Clones share the
/// token, the refresher and the proactive task. `Debug`, errors and logs never show a token.
#[derive(Clone)]
pub struct UserTokenCredential {
    inner: Arc<Inner>,
}

struct Inner {
    mode: Mode,
    /// Aborts the proactive refresh task when the last clone goes.
    _background: Option<BackgroundTask>,
}

enum Mode {
    /// No refresher: one token, served until its expiry minus the margin.
    Static {
        token: AccessToken,
        clock: Clock,
        /// Unix ns after which the token is not served.
        serve_until: i64,
    },
    /// A refresher behind the cache.
    Refreshing {
        credential: CachedCredential,
        proactive: bool,
    },
}

impl UserTokenCredential {
    /// A credential serving `token` until it expires, without a refresher.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when the token is not a JWT with an `exp` claim or has expired (or expires within 30
    /// seconds). The message never repeats the token.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{ErrorKind, UserTokenCredential};
    ///
    /// let error = UserTokenCredential::new("opaque-not-a-jwt").unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// assert!(!error.to_string().contains("opaque-not-a-jwt"));
    /// ```
    pub fn new(token: impl Into<Secret>) -> Result<Self, Error> {
        UserTokenCredential::builder().token(token).build()
    }

    /// Options for a user token credential: the token, a refresher, or both. Validated by
    /// [`build`](UserTokenCredentialBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::UserTokenCredential;
    ///
    /// async fn ask_my_service_for_a_token() -> Result<String, std::io::Error> {
    ///     // e.g. GET https://my-service.example/chat-token with the user's session
    /// #   Ok("eyJ0eXAi...".to_owned())
    /// }
    ///
    /// let credential = UserTokenCredential::builder()
    ///     .refresher(ask_my_service_for_a_token)
    ///     .build()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn builder() -> UserTokenCredentialBuilder {
        UserTokenCredentialBuilder::default()
    }
}

impl TokenCredential for UserTokenCredential {
    fn get_token<'a>(
        &'a self,
        _scopes: &'a [&'a str],
        _options: Option<&'a TokenRequestOptions>,
    ) -> TokenFuture<'a> {
        match &self.inner.mode {
            Mode::Static {
                token,
                clock,
                serve_until,
            } => TokenFuture::ready(if clock.unix_nanos() < *serve_until {
                Ok(token.clone())
            } else {
                Err(Error::unavailable(
                    NAME,
                    format!(
                        "the user access token expired at {} (it is not served in its last {} s) and no refresher is configured",
                        token.expires_on(),
                        EXPIRY_MARGIN.as_secs()
                    ),
                )
                .with_fix(
                    "give the builder a refresher that gets a new token from your service, or build a new credential with a fresh token",
                ))
            }),
            Mode::Refreshing { credential, .. } => credential.get_token(&[CACHE_SCOPE], None),
        }
    }
}

impl fmt::Debug for UserTokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct(NAME);
        match &self.inner.mode {
            Mode::Static { token, .. } => d
                .field("refresher", &false)
                .field("expires_on", &token.expires_on()),
            Mode::Refreshing { proactive, .. } => d
                .field("refresher", &true)
                .field("refresh_proactively", proactive),
        };
        d.finish()
    }
}

/// Options of a [`UserTokenCredential`]; see [`UserTokenCredential::builder`]. Give a token, a
/// refresher, or both.
#[derive(Clone)]
pub struct UserTokenCredentialBuilder {
    token: Option<Secret>,
    refresher: Option<Refresher>,
    refresh_proactively: bool,
    refresh_timeout: Duration,
    context: Context,
}

impl Default for UserTokenCredentialBuilder {
    fn default() -> Self {
        UserTokenCredentialBuilder {
            token: None,
            refresher: None,
            refresh_proactively: false,
            refresh_timeout: DEFAULT_REFRESH_TIMEOUT,
            context: Context::default(),
        }
    }
}

impl UserTokenCredentialBuilder {
    /// The user access token (a JWT), as your service got it from Communication Services.
    /// Surrounding whitespace is ignored.
    pub fn token(mut self, token: impl Into<Secret>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The callback that gets a new token, typically by asking your service (which asks
    /// Communication Services). It is called when a refresh is due, one call at a time however
    /// many callers wait. An error it returns (yours, or an [`Error`], whose kind and
    /// `retry_after` are kept) leaves the current token in use while it is valid, and the next
    /// call waits a backoff: 30 s while the current token is valid, then 1 s (or the error's
    /// `retry_after`, up to 5 minutes) once it has expired.
    ///
    /// ```
    /// # use azure_credentials::UserTokenCredential;
    /// let builder = UserTokenCredential::builder()
    ///     .refresher(|| async { Ok::<_, std::io::Error>("eyJ0eXAi...".to_owned()) });
    /// # let _ = builder;
    /// ```
    pub fn refresher<F, Fut, T, E>(mut self, refresher: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Into<Secret>,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        self.refresher = Some(Arc::new(move || -> RefreshFuture {
            let refreshing = refresher();
            Box::pin(async move { refreshing.await.map(Into::into).map_err(refresher_error) })
        }));
        self
    }

    /// Refresh on time even when nobody asks for a token: a task on the current tokio runtime
    /// asks for one shortly after each refresh time (and at least once a minute), and stops
    /// when the credential is dropped. Needs a refresher, and [`build`](Self::build) must run
    /// inside a tokio runtime with timers (`enable_time`). Default: off (refreshes happen when
    /// callers ask).
    pub fn refresh_proactively(mut self, proactive: bool) -> Self {
        self.refresh_proactively = proactive;
        self
    }

    /// How long a refresher call may take before it counts as failed
    /// ([`ErrorKind::Timeout`]). Default: 30 s.
    ///
    /// The limit needs tokio's timers. On a runtime built without them (no `enable_time`),
    /// and when the caller drives the future outside any tokio runtime, the refresher runs
    /// without it (on such a runtime, a warning is logged once, after the panic that tokio's
    /// timers raise there is caught; with `panic = "abort"` the runtime must have timers).
    pub fn refresh_timeout(mut self, timeout: Duration) -> Self {
        self.refresh_timeout = timeout;
        self
    }

    // Only the cache is used, and unset it is not the shared one: its setter is this one.
    seam_setters!();

    /// The token cache, whose clock also judges the expiry of a token without a refresher.
    /// Default: a cache of this credential's own (a user token is not shared with other
    /// credentials), on the system clock.
    pub fn cache(mut self, cache: TokenCache) -> Self {
        self.context = self.context.with_cache(cache);
        self
    }

    /// Validates the token and builds the credential.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when there is neither a token nor a refresher, the token is not a JWT with an `exp`
    /// claim, a token without a refresher has expired (or expires within 30 seconds), the refresh
    /// timeout is zero, or `refresh_proactively` is asked without a refresher, outside a tokio
    /// runtime or on one without timers. Messages never repeat the token.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{ErrorKind, UserTokenCredential};
    ///
    /// let error = UserTokenCredential::builder().build().unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput); // neither a token nor a refresher
    /// ```
    pub fn build(self) -> Result<UserTokenCredential, Error> {
        let initial = self
            .token
            .map(|token| parse_token(&token, Origin::Given))
            .transpose()?;
        if self.refresh_timeout.is_zero() {
            return Err(Error::invalid_input(
                NAME,
                "the refresh timeout must be greater than zero",
            ));
        }
        let Some(refresher) = self.refresher else {
            let Some(token) = initial else {
                return Err(Error::invalid_input(
                    NAME,
                    "neither a token nor a refresher was given",
                )
                .with_fix("call .token(..) with the user's access token, .refresher(..) with a callback that gets one, or both"));
            };
            if self.refresh_proactively {
                return Err(Error::invalid_input(
                    NAME,
                    "refresh_proactively needs a refresher to refresh with",
                )
                .with_fix("add .refresher(..), or drop .refresh_proactively(true)"));
            }
            let clock = self
                .context
                .cache_if_set()
                .map(|cache| cache.clock().clone())
                .unwrap_or_default();
            if !usable(&token, clock.now()) {
                return Err(Error::invalid_input(
                    NAME,
                    format!(
                        "the user access token expired at {} (or expires within {} s) and there is no refresher to get a new one",
                        token.expires_on(),
                        EXPIRY_MARGIN.as_secs()
                    ),
                )
                .with_fix("get a fresh token from your service, or add a refresher that does"));
            }
            let serve_until =
                to_unix_nanos(token.expires_on()).saturating_sub(duration_nanos(EXPIRY_MARGIN));
            return Ok(UserTokenCredential {
                inner: Arc::new(Inner {
                    mode: Mode::Static {
                        token,
                        clock,
                        serve_until,
                    },
                    _background: None,
                }),
            });
        };
        let runtime = match self.refresh_proactively {
            false => None,
            true => {
                let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
                    Error::invalid_input(
                        NAME,
                        "refresh_proactively needs a tokio runtime to run its task on, and there is none here",
                    )
                    .with_fix("build the credential from inside the tokio runtime that will use it")
                })?;
                if !timers_available(NAME) {
                    return Err(Error::invalid_input(
                        NAME,
                        "refresh_proactively needs a tokio runtime with timers to wait for the refresh time, and this one has none",
                    )
                    .with_fix("build the runtime with enable_time() (or enable_all()), or leave refresh_proactively off"));
                }
                Some(runtime)
            }
        };
        // A cache of its own by default: a user's token is not an identity other credentials
        // could share, and nothing should outlive the credential.
        let cache = self
            .context
            .cache_if_set()
            .unwrap_or_else(|| TokenCache::builder().build());
        let clock = cache.clock().clone();
        let fetcher = UserTokenFetcher {
            initial: Mutex::new(initial),
            refresher,
            timeout: self.refresh_timeout,
            clock: clock.clone(),
        };
        let identity = CacheIdentity::new(NAME).with("instance", next_instance().to_string());
        let credential = cache.credential(identity, fetcher);
        let background =
            runtime.map(|runtime| spawn_background(&runtime, credential.clone(), clock));
        Ok(UserTokenCredential {
            inner: Arc::new(Inner {
                mode: Mode::Refreshing {
                    credential,
                    proactive: background.is_some(),
                },
                _background: background,
            }),
        })
    }
}

impl fmt::Debug for UserTokenCredentialBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserTokenCredentialBuilder")
            .field("token", &self.token)
            .field("refresher", &self.refresher.is_some())
            .field("refresh_proactively", &self.refresh_proactively)
            .field("refresh_timeout", &self.refresh_timeout)
            .field("context", &self.context)
            .finish()
    }
}

fn next_instance() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Whether `token` may still be handed out at `now`.
fn usable(token: &AccessToken, now: OffsetDateTime) -> bool {
    now + EXPIRY_MARGIN < token.expires_on()
}

/// Who handed us a token, for the error messages.
#[derive(Clone, Copy)]
enum Origin {
    Given,
    Refresher,
}

/// Reads a user token's expiry, refusing anything that is not a JWT with an `exp` claim. Errors
/// say what is wrong with the token without quoting any of it.
fn parse_token(token: &Secret, origin: Origin) -> Result<AccessToken, Error> {
    let (kind, subject, fix) = match origin {
        Origin::Given => (ErrorKind::InvalidInput, "the user access token", TOKEN_FIX),
        Origin::Refresher => (
            ErrorKind::Other,
            "the token the refresher returned",
            REFRESHER_FIX,
        ),
    };
    let refuse = |what: &str| Error::new(kind, NAME, format!("{subject} {what}")).with_fix(fix);
    let text = token.expose().trim();
    if text.is_empty() {
        return Err(refuse("is empty"));
    }
    if text
        .get(..7)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("bearer "))
    {
        return Err(refuse("starts with \"Bearer \": give the token alone"));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(refuse(
            "contains whitespace or characters a JWT cannot contain",
        ));
    }
    let parts = text.split('.').count();
    if parts != 3 {
        return Err(refuse(&format!(
            "is not a JWT: it has {parts} dot-separated part{}, a JWT has 3",
            if parts == 1 { "" } else { "s" }
        )));
    }
    let payload = text.split('.').nth(1).unwrap_or_default();
    let Ok(json) = URL_SAFE_NO_PAD.decode(payload) else {
        return Err(refuse("is not a JWT: its payload is not base64url"));
    };
    if !matches!(
        serde_json::from_slice::<serde_json::Value>(&json),
        Ok(serde_json::Value::Object(_))
    ) {
        return Err(refuse("is not a JWT: its payload is not a JSON object"));
    }
    let Some(claims) = Claims::of(text) else {
        return Err(refuse(
            "has malformed claims (exp, tid or appid of an unexpected type)",
        ));
    };
    if claims.exp.is_none() {
        return Err(refuse(
            "has no exp (expiry) claim, so when it expires is unknown",
        ));
    }
    let Some(expires_on) = claims.expires_on() else {
        return Err(refuse("has an exp (expiry) claim out of range"));
    };
    let token = if text.len() == token.len() {
        token.clone()
    } else {
        Secret::new(text)
    };
    Ok(AccessToken::new(token, expires_on).with_source(NAME))
}

/// Turns a refresher's error into ours: an [`Error`] is kept as it is (its kind and
/// `retry_after` guide the cache), anything else becomes the cause of one.
fn refresher_error(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Error {
    match error.into().downcast::<Error>() {
        Ok(error) => *error,
        Err(other) => Error::new(
            ErrorKind::Other,
            NAME,
            "the refresher failed to get a new user access token",
        )
        .with_shared_source(Arc::from(other)),
    }
}

/// Behind the cache: the initial token on the first fetch (while it is usable), the refresher
/// on every other.
struct UserTokenFetcher {
    initial: Mutex<Option<AccessToken>>,
    refresher: Refresher,
    timeout: Duration,
    clock: Clock,
}

debug_fields!(UserTokenFetcher { timeout, .. });

#[async_trait]
impl TokenFetcher for UserTokenFetcher {
    async fn fetch(&self, _request: &TokenRequest) -> Result<AccessToken, Error> {
        let initial = self.initial.lock().take();
        if let Some(token) = initial {
            if usable(&token, self.clock.now()) {
                return Ok(token);
            }
            tracing::debug!(
                credential = NAME,
                expires_on = %token.expires_on(),
                "the initial user access token has expired; asking the refresher"
            );
        }
        tracing::debug!(
            credential = NAME,
            "asking the refresher for a new user access token"
        );
        let token = bounded_call(
            NAME,
            self.timeout,
            (self.refresher)(),
            "the refresher",
            "make the refresher faster, or raise refresh_timeout",
        )
        .await?;
        let token = parse_token(&token, Origin::Refresher)?;
        let now = self.clock.now();
        if !usable(&token, now) {
            return Err(Error::new(
                ErrorKind::Other,
                NAME,
                format!(
                    "the token the refresher returned expired at {} (or expires within {} s)",
                    token.expires_on(),
                    EXPIRY_MARGIN.as_secs()
                ),
            )
            .with_fix("the refresher must return a new token, not the one it was given before"));
        }
        tracing::debug!(
            credential = NAME,
            expires_on = %token.expires_on(),
            "the refresher returned a new user access token"
        );
        Ok(token)
    }
}

/// Aborts the proactive task when dropped.
struct BackgroundTask(tokio::task::AbortHandle);

impl Drop for BackgroundTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The proactive task: asks the cache for the token shortly after each refresh time, which
/// starts the refresh, and at least every [`BACKGROUND_MAX_SLEEP`].
fn spawn_background(
    runtime: &tokio::runtime::Handle,
    credential: CachedCredential,
    clock: Clock,
) -> BackgroundTask {
    let task = async move {
        tracing::debug!(credential = NAME, "proactive refresh started");
        loop {
            let wait = match credential.get_token(&[CACHE_SCOPE], None).await {
                Ok(token) => {
                    let until = token.refresh_on().map(|at| at - clock.now());
                    match until {
                        Some(until) if until.is_positive() => {
                            Duration::try_from(until).unwrap_or(BACKGROUND_MAX_SLEEP)
                                + BACKGROUND_PAD
                        }
                        // Due: a refresh has started or is backing off after a failure.
                        _ => BACKGROUND_DUE_POLL,
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        credential = NAME,
                        error = %error,
                        retry_in_secs = BACKGROUND_AFTER_ERROR.as_secs(),
                        "proactive refresh could not get a user access token"
                    );
                    BACKGROUND_AFTER_ERROR
                }
            };
            tokio::time::sleep(wait.min(BACKGROUND_MAX_SLEEP)).await;
        }
    };
    let span = tracing::debug_span!("user_token_proactive_refresh");
    BackgroundTask(runtime.spawn(task.instrument(span)).abort_handle())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn a_token_is_read_and_trimmed() {
        let token = parse_token(
            &Secret::new(format!(" {}\n", jwt(r#"{"exp":1893456000,"skypeid":"x"}"#))),
            Origin::Given,
        )
        .unwrap();
        assert_eq!(token.expires_on().unix_timestamp(), 1893456000);
        assert!(!token.token().expose().starts_with(' '));
        assert!(!token.token().expose().ends_with('\n'));
        assert_eq!(token.source(), NAME);
    }

    #[test]
    fn refresher_errors_keep_their_kind_or_become_the_cause() {
        let ours = refresher_error(Error::new(ErrorKind::Throttled, "MyService", "slow down"));
        assert_eq!(ours.kind(), ErrorKind::Throttled);
        assert_eq!(ours.credential(), "MyService");
        let theirs = refresher_error(std::io::Error::other("connection reset"));
        assert_eq!(theirs.kind(), ErrorKind::Other);
        assert!(!theirs.to_string().contains("connection reset"));
        assert_eq!(
            std::error::Error::source(&theirs).unwrap().to_string(),
            "connection reset"
        );
    }
}
