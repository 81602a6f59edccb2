//! [`AuthorizationCodeCredential`]: a web application redeems the authorization code a user's
//! sign-in sent to its own redirect URI.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::session::{SignInFlow, SignedIn, UserSession};
use super::{UserCredential, UserOptions};
use crate::context::seam_setters;
use crate::credential::delegate_token_credential;
use crate::entra::{EntraOptions, Grant, entra_setters};
use crate::setters::{debug_fields, setters};
use crate::{Context, Error, ErrorKind, Secret, TokenRequest};

const NAME: &str = "AuthorizationCodeCredential";

/// Tokens for the user who signed in to a web application: the application received an
/// authorization code on its own redirect URI (its sign-in page sent the user to Entra's
/// `/authorize` and Entra sent them back with `?code=...`), and this credential redeems it.
///
/// The code is redeemed once, at the first `get_token`, for that call's scopes; the refresh
/// token it brings gets tokens for other scopes and renews them silently. A code cannot be
/// redeemed twice: when the refresh token is refused later (revoked, expired), `get_token`
/// fails with [`ErrorKind::AuthenticationRequired`] and the application sends the user through
/// its sign-in again for a new code (and a new credential).
///
/// ```no_run
/// use azure_credentials::{AuthorizationCodeCredential, TokenCredential};
///
/// # async fn redirect_handler(code: &str) -> Result<(), azure_credentials::Error> {
/// let credential = AuthorizationCodeCredential::builder()
///     .tenant_id("contoso.onmicrosoft.com")
///     .client_id("00000000-0000-0000-0000-000000000001")
///     .authorization_code(code)
///     .redirect_uri("https://app.contoso.example/signin-oidc")
///     .client_secret("value from the app registration")
///     .build()?;
/// let token = credential.get_token(&["https://graph.microsoft.com/User.Read"], None).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
///
/// If the sign-in sent a PKCE `code_challenge`, give its verifier with
/// [`code_verifier`](AuthorizationCodeCredentialBuilder::code_verifier).
#[derive(Clone)]
pub struct AuthorizationCodeCredential {
    user: UserCredential,
}

impl AuthorizationCodeCredential {
    /// Options for an authorization code credential, validated by
    /// [`build`](AuthorizationCodeCredentialBuilder::build).
    pub fn builder() -> AuthorizationCodeCredentialBuilder {
        AuthorizationCodeCredentialBuilder::default()
    }
}

delegate_token_credential!(AuthorizationCodeCredential => user);

impl fmt::Debug for AuthorizationCodeCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.user
            .client()
            .debug_struct(f, NAME)
            .field("redeemed", &self.user.record().is_some())
            .finish_non_exhaustive()
    }
}

/// Options of an [`AuthorizationCodeCredential`]; see [`AuthorizationCodeCredential::builder`].
#[derive(Clone, Default)]
pub struct AuthorizationCodeCredentialBuilder {
    context: Context,
    options: EntraOptions,
    code: Option<Secret>,
    redirect_uri: Option<String>,
    client_secret: Option<Secret>,
    code_verifier: Option<Secret>,
}

impl AuthorizationCodeCredentialBuilder {
    entra_setters!(
        tenant_id = "Required.",
        client_id = "Required.",
        authority_host,
        additionally_allowed_tenants,
        retry_policy,
    );

    setters! {
        /// The authorization code the application's redirect URI received. Required.
        authorization_code(code: impl Into<Secret>) => Some(code);
        /// The redirect URI the code was sent to, exactly as in the sign-in request. Required.
        redirect_uri(uri: impl Into<String>) => Some(redirect_uri);
        /// The application's client secret, for a confidential client (a web app). Leave it
        /// out for a public client.
        client_secret(secret: impl Into<Secret>) => Some(client_secret);
        /// The PKCE verifier, when the sign-in sent a `code_challenge`.
        code_verifier(verifier: impl Into<Secret>) => Some(code_verifier);
    }

    seam_setters!(
        env = "`AZURE_AUTHORITY_HOST`, `AZURE_ADDITIONALLY_ALLOWED_TENANTS` and \
               `AZURE_IDENTITY_DISABLE_MULTITENANTAUTH` are read there.",
        http,
        cache = "Its clock also dates the tokens.",
    );

    /// Validates the options and builds the credential. Nothing is sent before the first token
    /// is asked for.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when the tenant id, client id, code or redirect URI is
    /// missing or invalid, a client secret is empty, or the authority host is not `https`.
    /// No message holds the code or the secret.
    pub fn build(self) -> Result<AuthorizationCodeCredential, Error> {
        let missing = |what: &str| {
            Error::invalid_input(NAME, format!("no {what} was given"))
                .with_fix(format!("set the builder's {what}"))
        };
        if self.options.tenant_id.is_none() {
            return Err(missing("tenant_id"));
        }
        if self.options.client_id.is_none() {
            return Err(missing("client_id"));
        }
        let code = self
            .code
            .clone()
            .ok_or_else(|| missing("authorization_code"))?;
        if code.expose().trim().is_empty() {
            return Err(
                Error::invalid_input(NAME, "the authorization code is empty")
                    .with_fix("pass the `code` query parameter your redirect URI received"),
            );
        }
        let redirect_uri = self
            .redirect_uri
            .clone()
            .ok_or_else(|| missing("redirect_uri"))?;
        if url::Url::parse(&redirect_uri).is_err() {
            return Err(Error::invalid_input(
                NAME,
                format!(
                    "the redirect URI {} is not a URL",
                    crate::scope::quoted(&redirect_uri)
                ),
            )
            .with_fix("pass the redirect URI exactly as the sign-in request sent it"));
        }
        let flow = RedeemOnce {
            code: Mutex::new(Some(code)),
            redirect_uri,
            code_verifier: self.code_verifier.clone(),
        };
        let user = UserCredential::build(
            NAME,
            &self.options,
            &UserOptions::default(),
            &self.context,
            Arc::new(flow),
            self.client_secret.clone(),
        )?;
        Ok(AuthorizationCodeCredential { user })
    }
}

debug_fields!(AuthorizationCodeCredentialBuilder {
    options,
    authorization_code: code,
    redirect_uri,
    client_secret,
    code_verifier,
    ..
});

/// The "sign-in" of a code received elsewhere: redeemed the first time, refused after.
struct RedeemOnce {
    code: Mutex<Option<Secret>>,
    redirect_uri: String,
    code_verifier: Option<Secret>,
}

impl fmt::Debug for RedeemOnce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedeemOnce")
            .field("redirect_uri", &self.redirect_uri)
            .field("redeemed", &self.code.lock().is_none())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SignInFlow for RedeemOnce {
    async fn sign_in(
        &self,
        session: &UserSession,
        request: &TokenRequest,
        _login_hint: Option<&str>,
    ) -> Result<SignedIn, Error> {
        let Some(code) = self.code.lock().take() else {
            return Err(Error::new(
                ErrorKind::AuthenticationRequired,
                NAME,
                "the authorization code was already redeemed, and the user's refresh token cannot be used (refused, or none was issued)",
            )
            .with_fix("send the user through the application's sign-in again, and build a new credential with the new code"));
        };
        let grant = Grant::AuthorizationCode {
            code: &code,
            redirect_uri: &self.redirect_uri,
            code_verifier: self.code_verifier.as_ref(),
        };
        let client = session.client();
        let answer = match client
            .send_grant(request, grant, &|_, _| Ok(session.proof()))
            .await
        {
            Ok(answer) => answer,
            Err(error) => {
                // No answer (the network, a timeout): Entra did not redeem the code, so the
                // next call may still. An answer, even a refusal, uses it up.
                *self.code.lock() = Some(code);
                return Err(error);
            }
        };
        let (token, parts) = client.token_from(&answer)?;
        Ok(SignedIn {
            token,
            parts,
            nonce: None,
        })
    }
}
