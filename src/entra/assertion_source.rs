//! Where a federated credential's client assertion comes from, and the one exchange of it for
//! an Entra token: [`AssertionSource`] is what each credential implements (a callback of the
//! user's, the workload identity token file, Azure DevOps' and GitHub's OIDC endpoints);
//! [`AssertionFetcher`] asks the source, exchanges, and when Entra says the assertion expired
//! (`AADSTS700024`) asks the source for a fresh one and retries once.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::{ClientProof, EntraClient};
use crate::{AccessToken, Error, Secret, TokenFetcher, TokenRequest};

/// Entra's "client assertion is not within its valid time range".
pub(crate) const AADSTS_ASSERTION_EXPIRED: u32 = 700024;

/// A source of client assertions (federated tokens). Called only when a token must be fetched,
/// never on cache hits.
#[async_trait]
pub(crate) trait AssertionSource: Send + Sync + fmt::Debug + 'static {
    /// The assertion for the next token request. Errors carry the credential's name.
    async fn assertion(&self) -> Result<Secret, Error>;

    /// A new assertion after Entra refused the last one as expired; by default the same as
    /// [`assertion`](Self::assertion), which gets a new one every time.
    async fn fresh_assertion(&self) -> Result<Secret, Error> {
        self.assertion().await
    }

    /// What the source adds to the error of the retry with a fresh assertion.
    fn explain_rejection(&self, error: Error, _assertion: &Secret) -> Error {
        error
    }
}

/// Behind the cache of every federated credential: the source's assertion, exchanged.
#[derive(Debug)]
pub(crate) struct AssertionFetcher {
    pub(crate) client: EntraClient,
    pub(crate) source: Arc<dyn AssertionSource>,
}

impl AssertionFetcher {
    async fn exchange(
        &self,
        request: &TokenRequest,
        assertion: &Secret,
    ) -> Result<AccessToken, Error> {
        self.client
            .request_token(request, |_, _| {
                Ok(ClientProof::Assertion(assertion.clone()))
            })
            .await
    }
}

#[async_trait]
impl TokenFetcher for AssertionFetcher {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let assertion = self.source.assertion().await?;
        match self.exchange(request, &assertion).await {
            Err(error) if error.aadsts_codes().contains(&AADSTS_ASSERTION_EXPIRED) => {
                let fresh = self.source.fresh_assertion().await?;
                self.exchange(request, &fresh)
                    .await
                    .map_err(|error| self.source.explain_rejection(error, &fresh))
            }
            other => other,
        }
    }

    fn resolve_tenant<'a>(&'a self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        self.client.resolve_tenant(requested)
    }
}
