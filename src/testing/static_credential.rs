//! [`StaticTokenCredential`].

use time::OffsetDateTime;

use crate::system::Clock;
use crate::{AccessToken, Error, Secret, TokenCredential, TokenFuture, TokenRequestOptions};

const NAME: &str = "StaticTokenCredential";

/// A credential that hands out one token you already have, for tests and for tokens obtained
/// elsewhere. The expiry is required, and once it has passed the credential refuses to serve
/// the token instead of handing out something the service will reject.
///
/// ```
/// use azure_credentials::testing::StaticTokenCredential;
/// use azure_credentials::TokenCredential;
///
/// # async fn run() -> Result<(), azure_credentials::Error> {
/// let expires_on = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
/// let credential = StaticTokenCredential::new("eyJ0eXAi...", expires_on);
/// let token = credential.get_token(&["https://vault.azure.net/.default"], None).await?;
/// assert_eq!(token.expires_on(), expires_on);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct StaticTokenCredential {
    token: AccessToken,
    clock: Clock,
}

impl StaticTokenCredential {
    /// A credential serving `token` until `expires_on`.
    pub fn new(token: impl Into<Secret>, expires_on: OffsetDateTime) -> Self {
        StaticTokenCredential {
            token: AccessToken::new(token, expires_on).with_source(NAME),
            clock: Clock::system(),
        }
    }

    /// Judges expiry by `clock` (a manual clock in tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
}

impl TokenCredential for StaticTokenCredential {
    fn get_token<'a>(
        &'a self,
        _scopes: &'a [&'a str],
        _options: Option<&'a TokenRequestOptions>,
    ) -> TokenFuture<'a> {
        if self.clock.now() >= self.token.expires_on() {
            return TokenFuture::ready(Err(Error::unavailable(
                NAME,
                format!("the token expired at {}", self.token.expires_on()),
            )
            .with_fix("give the credential a new token")));
        }
        TokenFuture::ready(Ok(self.token.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::ManualClock;
    use std::time::Duration;
    use time::macros::datetime;

    #[tokio::test]
    async fn serves_until_expiry_then_refuses() {
        let manual = ManualClock::new(datetime!(2030-01-01 0:00 UTC));
        let credential =
            StaticTokenCredential::new("static-secret", datetime!(2030-01-01 1:00 UTC))
                .with_clock(manual.clock());
        let token = credential.get_token(&["s"], None).await.unwrap();
        assert_eq!(token.token().expose(), "static-secret");
        assert_eq!(token.source(), "StaticTokenCredential");

        manual.advance(Duration::from_secs(3600));
        let err = credential.get_token(&["s"], None).await.unwrap_err();
        assert!(err.is_unavailable());
        assert!(err.to_string().contains("expired"), "{err}");
        assert!(!format!("{err} {err:?} {credential:?}").contains("static-secret"));
    }
}
