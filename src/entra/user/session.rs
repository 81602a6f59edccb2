//! [`UserSession`]: what keeps a user credential signed in — the account it is for, the user's
//! refresh token (in the cache's [`SignedInUsers`]), silent refreshes, and the one sign-in at a
//! time when a user must be asked. The flows (device code, browser, authorization code) only
//! say how a user signs in.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::account::Account;
use super::record::AuthenticationRecord;
use crate::cache::persist::PersistedCaches;
use crate::entra::options::is_multi_tenant_alias;
use crate::entra::response::UserParts;
use crate::entra::{ClientProof, EntraClient, Grant};
use crate::scope::validate_scopes;
use crate::{AccessToken, Error, ErrorKind, Secret, TokenFetcher, TokenRequest};

/// The refresh tokens of the users signed in through one [`TokenCache`](crate::TokenCache)'s
/// credentials, keyed as MSAL keys them: authority, client id and home account id. A credential
/// built with an [`AuthenticationRecord`] finds its user's refresh token here.
#[derive(Default)]
pub(crate) struct SignedInUsers {
    users: Mutex<HashMap<AccountKey, Secret>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct AccountKey {
    authority: String,
    client_id: String,
    home_account_id: String,
}

#[cfg(feature = "persistence")]
impl AccountKey {
    /// The persistent cache's key for the same refresh token.
    fn persisted(&self) -> crate::cache::persist::UserKey {
        crate::cache::persist::UserKey {
            authority: self.authority.clone(),
            client_id: self.client_id.clone(),
            home_account_id: self.home_account_id.clone(),
        }
    }
}

impl SignedInUsers {
    fn refresh_token(&self, key: &AccountKey) -> Option<Secret> {
        self.users.lock().get(key).cloned()
    }

    fn store(&self, key: AccountKey, refresh_token: Secret) {
        self.users.lock().insert(key, refresh_token);
    }

    /// Forgets `refused`, unless another credential already replaced it with a newer one.
    fn forget(&self, key: &AccountKey, refused: &Secret) {
        let mut users = self.users.lock();
        if users.get(key) == Some(refused) {
            users.remove(key);
        }
    }
}

/// How a user signs in when one must be asked: the device code flow, the browser, a code the
/// application received.
#[async_trait]
pub(crate) trait SignInFlow: Send + Sync + fmt::Debug + 'static {
    /// Signs a user in for `request` (prompting them) and redeems the sign-in for tokens.
    /// `login_hint`: the user expected, when known.
    async fn sign_in(
        &self,
        session: &UserSession,
        request: &TokenRequest,
        login_hint: Option<&str>,
    ) -> Result<SignedIn, Error>;
}

/// What a sign-in produced: the token, the refresh and id tokens, and the nonce it sent.
pub(crate) struct SignedIn {
    pub(crate) token: AccessToken,
    pub(crate) parts: UserParts,
    pub(crate) nonce: Option<String>,
}

/// One user credential's state. Shared by the credential and its fetcher.
pub(crate) struct UserSession {
    client: EntraClient,
    /// A confidential client's secret (an [`AuthorizationCodeCredential`](crate::AuthorizationCodeCredential)
    /// of a web app); public clients send none.
    client_secret: Option<Secret>,
    users: Arc<SignedInUsers>,
    /// The user this credential is for: from its authentication record, else whoever signed
    /// in first. A sign-in as anyone else is refused.
    account: Mutex<Option<Known>>,
    flow: Arc<dyn SignInFlow>,
    /// Whether `get_token` may ask the user to sign in.
    automatic: bool,
    /// One sign-in at a time: a second caller waits and then finds the user signed in.
    sign_in: tokio::sync::Mutex<()>,
    /// The token `authenticate` got, handed to the first fetch of the same request.
    fresh: Mutex<Option<(TokenRequest, AccessToken)>>,
    /// Where the user's refresh token and account are also kept across processes, if anywhere
    /// (never without the feature `persistence`).
    #[cfg_attr(not(feature = "persistence"), allow(dead_code))]
    persistent: Option<PersistedCaches>,
}

/// Who the credential is for, as much as is known: a record names the account but not its
/// object id.
#[derive(Clone)]
struct Known {
    home_account_id: String,
    tenant_id: String,
    username: String,
    object_id: Option<String>,
}

impl From<&Account> for Known {
    fn from(account: &Account) -> Self {
        Known {
            home_account_id: account.home_account_id.clone(),
            tenant_id: account.tenant_id.clone(),
            username: account.username.clone(),
            object_id: Some(account.object_id.clone()),
        }
    }
}

impl UserSession {
    pub(crate) fn new(
        client: EntraClient,
        client_secret: Option<Secret>,
        users: Arc<SignedInUsers>,
        record: Option<&AuthenticationRecord>,
        flow: Arc<dyn SignInFlow>,
        automatic: bool,
        persistent: Option<PersistedCaches>,
    ) -> Self {
        let account = record.map(|record| Known {
            home_account_id: record.home_account_id().to_owned(),
            tenant_id: record.tenant_id().to_owned(),
            username: record.username().to_owned(),
            object_id: None,
        });
        UserSession {
            client,
            client_secret,
            users,
            account: Mutex::new(account),
            flow,
            automatic,
            sign_in: tokio::sync::Mutex::new(()),
            fresh: Mutex::new(None),
            persistent,
        }
    }

    pub(crate) fn client(&self) -> &EntraClient {
        &self.client
    }

    /// The proof the token requests carry: the client secret, or none (a public client).
    pub(crate) fn proof(&self) -> ClientProof {
        match &self.client_secret {
            Some(secret) => ClientProof::Secret(secret.clone()),
            None => ClientProof::Public,
        }
    }

    fn credential(&self) -> &'static str {
        self.client.credential()
    }

    fn key(&self, home_account_id: &str) -> AccountKey {
        AccountKey {
            authority: self.client.authority_host_name(),
            client_id: self.client.client_id().to_ascii_lowercase(),
            home_account_id: home_account_id.to_owned(),
        }
    }

    /// The user's refresh token: this process's, else the persistent cache's.
    async fn refresh_token(&self, key: &AccountKey) -> Option<Secret> {
        if let Some(token) = self.users.refresh_token(key) {
            return Some(token);
        }
        #[cfg(feature = "persistence")]
        if let Some(persistent) = &self.persistent
            && let Some(found) = persistent
                .refresh_token(self.credential(), &key.persisted())
                .await
        {
            tracing::debug!(
                credential = self.credential(),
                "the user's refresh token was read from the persistent token cache"
            );
            self.users.store(key.clone(), found.clone());
            return Some(found);
        }
        None
    }

    /// Keeps the user's refresh token (and, persisted, the account MSAL lists).
    async fn keep(
        &self,
        key: AccountKey,
        known: &Known,
        refresh_token: Secret,
        id_token: Option<&Secret>,
    ) {
        #[cfg(feature = "persistence")]
        if let Some(persistent) = &self.persistent {
            let account = crate::cache::persist::UserAccount {
                tenant_id: known.tenant_id.clone(),
                username: known.username.clone(),
                object_id: known.object_id.clone(),
            };
            persistent
                .keep_user(
                    self.credential(),
                    &key.persisted(),
                    account,
                    &refresh_token,
                    id_token,
                )
                .await;
        }
        #[cfg(not(feature = "persistence"))]
        let _ = (known, id_token);
        self.users.store(key, refresh_token);
    }

    /// Forgets a refused refresh token, here and in the persistent cache (unless another
    /// process already replaced it).
    async fn forget(&self, key: &AccountKey, refused: &Secret) {
        self.users.forget(key, refused);
        #[cfg(feature = "persistence")]
        if let Some(persistent) = &self.persistent {
            persistent
                .forget_refresh_token(self.credential(), &key.persisted(), refused)
                .await;
        }
    }

    /// The home account id of the user this credential is for, once known (the persistent
    /// cache's key for the user's tokens).
    pub(crate) fn home_account_id(&self) -> Option<String> {
        self.account
            .lock()
            .as_ref()
            .map(|k| k.home_account_id.clone())
    }

    /// Puts the user's identity on a token read back from the persistent cache.
    pub(crate) fn decorate(&self, token: AccessToken) -> AccessToken {
        let Some(known) = self.account.lock().clone() else {
            return token;
        };
        let mut token = token;
        if !known.username.is_empty() {
            token = token.with_username(known.username);
        }
        if let Some(object_id) = known.object_id {
            token = token.with_object_id(object_id);
        }
        token
    }

    /// The record of the signed-in user, once there is one.
    pub(crate) fn record(&self) -> Option<AuthenticationRecord> {
        let known = self.account.lock().clone()?;
        Some(AuthenticationRecord::new(
            &self.client.authority_host_name(),
            &known.home_account_id,
            &known.tenant_id,
            &known.username,
            self.client.client_id(),
        ))
    }

    /// Signs a user in now, even when automatic authentication is disabled, and keeps the
    /// token for the first fetch of `request`.
    pub(crate) async fn authenticate(
        &self,
        request: TokenRequest,
    ) -> Result<AuthenticationRecord, Error> {
        validate_scopes(self.credential(), request.scopes())?;
        let _one_at_a_time = self.sign_in.lock().await;
        let token = self.sign_in_now(&request).await?;
        *self.fresh.lock() = Some((request, token));
        self.record().ok_or_else(|| {
            Error::new(
                ErrorKind::Other,
                self.credential(),
                "the sign-in succeeded but named no account",
            )
        })
    }

    /// A token for `request` without asking the user: the token `authenticate` just got, or
    /// one from the user's refresh token. `Ok(None)` when there is no refresh token; a refused
    /// refresh token is forgotten and its error returned as `Err(Silent::Refused)`.
    async fn silently(&self, request: &TokenRequest) -> Result<Option<AccessToken>, Silent> {
        let fresh = {
            let mut fresh = self.fresh.lock();
            match fresh.take() {
                Some((for_request, token)) if for_request == *request => Some(token),
                other => {
                    *fresh = other;
                    None
                }
            }
        };
        if fresh.is_some() {
            return Ok(fresh);
        }
        let Some(known) = self.account.lock().clone() else {
            return Ok(None);
        };
        let key = self.key(&known.home_account_id);
        let Some(refresh_token) = self.refresh_token(&key).await else {
            return Ok(None);
        };
        let grant = Grant::RefreshToken {
            refresh_token: &refresh_token,
        };
        let answer = self
            .client
            .send_grant(request, grant, &|_, _| Ok(self.proof()))
            .await
            .map_err(Silent::Failed)?;
        let refused = matches!(
            answer.oauth_error().as_deref(),
            Some("invalid_grant" | "interaction_required")
        );
        match self.client.token_from(&answer) {
            Ok((token, parts)) => self
                .accept(token, parts, None, request)
                .await
                .map(Some)
                .map_err(Silent::Failed),
            Err(error) if refused => {
                tracing::info!(
                    credential = self.credential(),
                    codes = ?error.aadsts_codes(),
                    "the user's refresh token was refused; the user must sign in again"
                );
                self.forget(&key, &refresh_token).await;
                Err(Silent::Refused(error))
            }
            Err(error) => Err(Silent::Failed(error)),
        }
    }

    /// Runs the sign-in flow (the caller holds the sign-in lock) and keeps what it gives.
    async fn sign_in_now(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let hint = self
            .account
            .lock()
            .as_ref()
            .map(|known| known.username.clone())
            .filter(|name| !name.is_empty());
        let signed_in = self.flow.sign_in(self, request, hint.as_deref()).await?;
        self.accept(
            signed_in.token,
            signed_in.parts,
            signed_in.nonce.as_deref(),
            request,
        )
        .await
    }

    /// Keeps what a sign-in or refresh answered (the account, the refresh token) and returns
    /// the token with the user's identity on it. A sign-in as another user than the one this
    /// credential is for is refused.
    async fn accept(
        &self,
        token: AccessToken,
        parts: UserParts,
        nonce: Option<&str>,
        request: &TokenRequest,
    ) -> Result<AccessToken, Error> {
        let credential = self.credential();
        let account = match Account::from_answer(
            parts.id_token.as_ref(),
            parts.client_info.as_deref(),
            self.client.client_id(),
            nonce,
        ) {
            Ok(account) => Some(account),
            // A refresh answer need not repeat the id token.
            Err(super::account::AccountError::NoIdToken) if nonce.is_none() => None,
            Err(error) => {
                return Err(Error::new(
                    ErrorKind::Other,
                    credential,
                    format!(
                        "Microsoft Entra ID's answer to the sign-in does not say who signed in: {}",
                        error.describe()
                    ),
                )
                .with_fix(format!(
                    "check that the authority host {} is Microsoft Entra ID and that the app registration allows the openid and profile scopes",
                    self.client.authority()
                )));
            }
        };
        let known = {
            let mut current = self.account.lock();
            match (&*current, &account) {
                (Some(expected), Some(signed_in))
                    if expected.home_account_id != signed_in.home_account_id =>
                {
                    let name = |n: &str| {
                        if n.is_empty() {
                            "another account".to_owned()
                        } else {
                            crate::scope::quoted(n)
                        }
                    };
                    return Err(Error::authentication(
                        credential,
                        format!(
                            "the user who signed in ({}) is not the one this credential is for ({})",
                            name(&signed_in.username),
                            name(&expected.username)
                        ),
                    )
                    .with_fix(
                        "sign in as the expected user, or build a new credential (without that user's authentication record) for another user",
                    ));
                }
                (_, Some(signed_in)) => *current = Some(Known::from(signed_in)),
                (Some(_), None) => {}
                (None, None) => {
                    return Err(Error::new(
                        ErrorKind::Other,
                        credential,
                        "Microsoft Entra ID's answer to the sign-in does not say who signed in: it has no id token",
                    ));
                }
            }
            current.clone()
        };
        let Some(known) = known else {
            // Set just above.
            return Err(Error::new(ErrorKind::Other, credential, "no account"));
        };
        let key = self.key(&known.home_account_id);
        match parts.refresh_token {
            Some(refresh_token) => {
                self.keep(key, &known, refresh_token, parts.id_token.as_ref())
                    .await;
            }
            // A refresh may keep the refresh token it used; a sign-in without one is worth a word.
            None if self.refresh_token(&key).await.is_none() => tracing::warn!(
                credential,
                "Microsoft Entra ID returned no refresh token: the user will be asked to sign in again for other scopes and after the token expires"
            ),
            None => {}
        }
        let mut token = token;
        if !known.username.is_empty() {
            token = token.with_username(known.username.clone());
        }
        if let Some(object_id) = &known.object_id {
            token = token.with_object_id(object_id.clone());
        }
        // A token asked of `organizations` was issued in the user's tenant.
        let asked = request.tenant_id().unwrap_or(self.client.tenant_id());
        if is_multi_tenant_alias(asked) {
            let tenant = account
                .as_ref()
                .map_or(known.tenant_id.as_str(), |a| a.tenant_id.as_str());
            token = token.with_tenant_id(tenant);
        }
        Ok(token)
    }

    fn authentication_required(&self, why: String, cause: Option<Error>) -> Error {
        let mut error = Error::new(ErrorKind::AuthenticationRequired, self.credential(), why)
            .with_fix("call the credential's authenticate() to sign the user in (interactively), then ask for the token again");
        if let Some(cause) = cause {
            error = error.with_aadsts_codes(cause.aadsts_codes().iter().copied());
            if let Some(id) = cause.correlation_id() {
                error = error.with_correlation_id(id);
            }
            error = error.with_source(cause);
        }
        error
    }
}

/// Why no token came silently.
enum Silent {
    /// The refresh token was refused (revoked, expired, MFA required): a sign-in is needed.
    Refused(Error),
    /// Anything else (the network, an outage): the sign-in is still good; the error stands.
    Failed(Error),
}

/// The [`TokenFetcher`] of every user credential.
pub(crate) struct UserFetcher {
    pub(crate) session: Arc<UserSession>,
}

impl fmt::Debug for UserFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserFetcher")
            .field("credential", &self.session.credential())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenFetcher for UserFetcher {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let session = &*self.session;
        let refused = match session.silently(request).await {
            Ok(Some(token)) => return Ok(token),
            Ok(None) => None,
            Err(Silent::Refused(error)) => Some(error),
            Err(Silent::Failed(error)) => return Err(error),
        };
        if !session.automatic {
            let why = match &refused {
                Some(_) => "the signed-in user's refresh token was refused (revoked, expired, password changed or a new MFA requirement), and automatic authentication is disabled".to_owned(),
                None => "no user is signed in, and automatic authentication is disabled".to_owned(),
            };
            return Err(session.authentication_required(why, refused));
        }
        let _one_at_a_time = session.sign_in.lock().await;
        // Someone may have signed in while this caller waited.
        if refused.is_none()
            && let Ok(Some(token)) = session.silently(request).await
        {
            return Ok(token);
        }
        session.sign_in_now(request).await
    }

    fn resolve_tenant<'a>(&'a self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        self.session.client.resolve_tenant(requested)
    }

    /// A sign-in (device code polling, a browser waiting) stops when its caller gives up.
    fn stop_when_abandoned(&self) -> bool {
        true
    }
}
