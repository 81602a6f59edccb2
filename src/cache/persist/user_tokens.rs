//! What a user credential keeps in the persistent cache beside access tokens: the user's
//! refresh token, account and id token, as MSAL keeps them, so the next process signs the same
//! user in silently. All file work runs on tokio's blocking threads ([`off_the_runtime`]): it
//! may wait for another process's lock or the keyring.

use super::msal_schema::AccountEntry;
use super::{PersistedCaches, off_the_runtime};
use crate::Secret;

/// Whose refresh token: MSAL's key for it.
#[derive(Clone)]
pub(crate) struct UserKey {
    /// The authority's host: MSAL's `environment`.
    pub(crate) authority: String,
    pub(crate) client_id: String,
    pub(crate) home_account_id: String,
}

/// A signed-in user's account, as MSAL lists it.
pub(crate) struct UserAccount {
    pub(crate) tenant_id: String,
    pub(crate) username: String,
    pub(crate) object_id: Option<String>,
}

impl PersistedCaches {
    /// The user's refresh token, if a process kept one; a cache that cannot be read is a
    /// warning and no token.
    pub(crate) async fn refresh_token(
        &self,
        credential: &'static str,
        key: &UserKey,
    ) -> Option<Secret> {
        let cache = self.plain.clone();
        let key = key.clone();
        off_the_runtime(move || {
            cache
                .read(|document| {
                    document.find_refresh_token(&key.authority, &key.client_id, &key.home_account_id)
                })
                .unwrap_or_else(|error| {
                    tracing::warn!(credential, error = %error, "the persistent token cache could not be read");
                    None
                })
        })
        .await
        .flatten()
    }

    /// Keeps the user's refresh token, account and id token for the next process; a failure is
    /// a warning.
    pub(crate) async fn keep_user(
        &self,
        credential: &'static str,
        key: &UserKey,
        account: UserAccount,
        refresh_token: &Secret,
        id_token: Option<&Secret>,
    ) {
        let cache = self.plain.clone();
        let key = key.clone();
        let (refresh_token, id_token) = (refresh_token.clone(), id_token.cloned());
        let entry = AccountEntry {
            home_account_id: key.home_account_id.clone(),
            environment: key.authority.clone(),
            realm: account.tenant_id.clone(),
            local_account_id: account.object_id.unwrap_or_default(),
            username: account.username,
            authority_type: "MSSTS".to_owned(),
        };
        off_the_runtime(move || {
            let written = cache.update(|document| {
                document.put_refresh_token(
                    &key.authority,
                    &key.client_id,
                    &key.home_account_id,
                    &refresh_token,
                );
                document.put_account(&entry);
                if let Some(id_token) = &id_token {
                    document.put_id_token(
                        &key.authority,
                        &key.client_id,
                        &account.tenant_id,
                        &key.home_account_id,
                        id_token,
                    );
                }
                document.put_app_metadata(&key.authority, &key.client_id);
            });
            if let Err(error) = written {
                tracing::warn!(credential, error = %error, "the user's sign-in could not be written to the persistent token cache");
            }
        })
        .await;
    }

    /// Removes a refresh token Entra refused (unless another process already replaced it); a
    /// failure is a warning.
    pub(crate) async fn forget_refresh_token(
        &self,
        credential: &'static str,
        key: &UserKey,
        refused: &Secret,
    ) {
        let cache = self.plain.clone();
        let (key, refused) = (key.clone(), refused.clone());
        off_the_runtime(move || {
            let removed = cache.update(|document| {
                document.remove_refresh_token(
                    &key.authority,
                    &key.client_id,
                    &key.home_account_id,
                    &refused,
                );
            });
            if let Err(error) = removed {
                tracing::warn!(credential, error = %error, "a refused refresh token could not be removed from the persistent token cache");
            }
        })
        .await;
    }
}
