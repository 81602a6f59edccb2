//! Many callers of one credential at once.

use std::sync::Arc;

use azure_credentials::{AccessToken, Error, TokenCredential};
use tokio::task::JoinHandle;

/// Starts `n` callers of `credential` for `scopes`, each on a task of its own.
pub fn spawn_callers<C: TokenCredential + 'static>(
    credential: &Arc<C>,
    scopes: &'static [&'static str],
    n: usize,
) -> Vec<JoinHandle<Result<AccessToken, Error>>> {
    (0..n)
        .map(|_| {
            let credential = credential.clone();
            tokio::spawn(async move { credential.get_token(scopes, None).await })
        })
        .collect()
}
