//! [`InteractiveBrowserCredential`]: a user signs in in the system browser (the authorization
//! code flow with PKCE, redirected to a loopback listener).

use std::fmt;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use url::Url;

use super::browser::{BrowserCommand, Launcher};
use super::redirect::{Redirect, RedirectListener};
use super::session::{SignInFlow, SignedIn, UserSession};
use super::{UserCredential, UserOptions, interactive_credential, sign_in_timeout, user_setters};
use crate::context::seam_setters;
use crate::entra::{EntraOptions, Grant, user_scope};
use crate::setters::{debug_fields, setters};
use crate::system::Env;
use crate::{Context, Error, ErrorKind, Secret, TokenRequest};

const NAME: &str = "InteractiveBrowserCredential";
/// How long the user has to finish signing in, by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long a browser command may keep showing the page that says a sign-in failed.
const FAILURE_PAGE_GRACE: Duration = Duration::from_secs(1);

/// Signs a user in in their web browser: for desktop applications and command-line tools run
/// by a person at a machine with a browser.
///
/// The first `get_token` (or [`authenticate`](Self::authenticate)) listens on a loopback port,
/// opens the system browser at Microsoft Entra ID's sign-in page (the authorization code flow
/// with PKCE, a random `state` and `nonce` per attempt), receives the redirect to
/// `http://localhost:<port>`, answers it with a page telling the user they may close the tab,
/// and redeems the code. Later calls are silent: the user's refresh token gets tokens for other
/// scopes and renews them, through the shared token cache.
///
/// When no browser can be opened (no `xdg-open`, a headless session), the URL is written to
/// stderr for the user to open by hand, and the credential keeps waiting until its
/// [`timeout`](InteractiveBrowserCredentialBuilder::timeout). Without a browser at all, use
/// [`DeviceCodeCredential`](crate::DeviceCodeCredential).
///
/// ```no_run
/// use azure_credentials::{InteractiveBrowserCredential, TokenCredential};
///
/// # async fn run() -> Result<(), azure_credentials::Error> {
/// let credential = InteractiveBrowserCredential::new()?;
/// let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
/// tracing::info!(user = ?token.username(), "signed in");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct InteractiveBrowserCredential {
    user: UserCredential,
}

impl InteractiveBrowserCredential {
    /// A credential with the defaults: tenant `organizations`, the Azure development client id,
    /// the system browser, a redirect to `http://localhost` on a free port.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when `AZURE_AUTHORITY_HOST` is not a valid `https` URL.
    pub fn new() -> Result<Self, Error> {
        InteractiveBrowserCredential::builder().build()
    }

    /// Options for a browser credential, validated by
    /// [`build`](InteractiveBrowserCredentialBuilder::build).
    pub fn builder() -> InteractiveBrowserCredentialBuilder {
        InteractiveBrowserCredentialBuilder::default()
    }
}

interactive_credential!(
    InteractiveBrowserCredential,
    errors = "As `get_token`: [`ErrorKind::Authentication`](crate::ErrorKind::Authentication) when the user cancelled or Entra refused (the `error=` of the redirect), or the redirect's `state` was wrong; [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) when the user did not finish in time."
);

/// Options of an [`InteractiveBrowserCredential`]; see [`InteractiveBrowserCredential::builder`].
#[derive(Clone, Default)]
pub struct InteractiveBrowserCredentialBuilder {
    context: Context,
    options: EntraOptions,
    user: UserOptions,
    redirect_uri: Option<String>,
    login_hint: Option<String>,
    select_account: bool,
    timeout: Option<Duration>,
    browser: Option<BrowserCommand>,
}

impl InteractiveBrowserCredentialBuilder {
    user_setters!();

    setters! {
        /// The redirect URI registered for the app: `http://localhost[:port][/path]` or
        /// `http://127.0.0.1[:port][/path]`; the listener takes its port. Default:
        /// `http://localhost` on a free port (register `http://localhost`: Entra accepts any
        /// port for it).
        redirect_uri(uri: impl Into<String>) => Some(redirect_uri);
        /// The user expected to sign in (pre-fills the sign-in page), e.g. `ada@contoso.com`.
        /// Default: the authentication record's user, if any.
        login_hint(username: impl Into<String>) => Some(login_hint);
        /// Asks the user to pick an account even when the browser is signed in to one
        /// (`prompt=select_account`). Default: `false`.
        select_account(select: bool) => select_account;
        /// How long the user has to finish signing in. Default: 5 minutes.
        timeout(timeout: Duration) => Some(timeout);
    }

    /// Shows the sign-in page with this program instead of the system browser (`xdg-open`,
    /// `open`, the Windows URL handler); see [`BrowserCommand`].
    pub fn browser_command(mut self, command: BrowserCommand) -> Self {
        self.browser = Some(command);
        self
    }

    seam_setters!(
        env = "`PATH` (to find the system's opener) and `AZURE_AUTHORITY_HOST` are read there.",
        http,
        cache = "Its clock also dates the tokens.",
        executor = "A [`browser_command`](Self::browser_command) runs there.",
    );

    /// Validates the options and builds the credential. Nothing is sent, opened or bound
    /// before a token is asked for.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for an invalid tenant or client id, an authority host that
    /// is not `https`, a redirect URI that is not `http://localhost` or `http://127.0.0.1`, a
    /// zero timeout, or an authentication record of another client or authority.
    pub fn build(self) -> Result<InteractiveBrowserCredential, Error> {
        let timeout = sign_in_timeout(NAME, self.timeout, DEFAULT_TIMEOUT)?;
        let redirect_uri = self
            .redirect_uri
            .as_deref()
            .map(parse_redirect_uri)
            .transpose()?;
        let launcher = match &self.browser {
            Some(command) => Launcher::Command {
                command: command.clone(),
                executor: self.context.executor(),
            },
            None => Launcher::System,
        };
        let flow = BrowserFlow {
            launcher,
            env: self.context.env(),
            redirect_uri,
            login_hint: self.login_hint.clone(),
            select_account: self.select_account,
            timeout,
        };
        let user = UserCredential::build(
            NAME,
            &self.options,
            &self.user,
            &self.context,
            Arc::new(flow),
            None,
        )?;
        Ok(InteractiveBrowserCredential { user })
    }
}

debug_fields!(InteractiveBrowserCredentialBuilder {
    options,
    user,
    redirect_uri,
    login_hint,
    select_account,
    timeout,
    browser,
    ..
});

/// A redirect URI the loopback listener can serve.
fn parse_redirect_uri(raw: &str) -> Result<Url, Error> {
    let invalid = || {
        Error::invalid_input(
            NAME,
            format!(
                "the redirect URI {} is not a loopback http URI",
                crate::scope::quoted(raw)
            ),
        )
        .with_fix("use http://localhost[:port][/path] (or http://127.0.0.1...), as registered in the app registration")
    };
    let url = Url::parse(raw).map_err(|_| invalid())?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1"));
    if url.scheme() != "http" || !loopback || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid());
    }
    Ok(url)
}

struct BrowserFlow {
    launcher: Launcher,
    env: Env,
    redirect_uri: Option<Url>,
    login_hint: Option<String>,
    select_account: bool,
    timeout: Duration,
}

impl fmt::Debug for BrowserFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserFlow")
            .field("launcher", &self.launcher)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// `n` random bytes from the operating system, base64url.
fn random(n: usize) -> Result<String, Error> {
    let mut bytes = vec![0u8; n];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).map_err(|_| {
        Error::new(
            ErrorKind::Other,
            NAME,
            "the operating system's random number generator failed",
        )
    })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The PKCE challenge of `verifier` (S256).
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

#[async_trait]
impl SignInFlow for BrowserFlow {
    async fn sign_in(
        &self,
        session: &UserSession,
        request: &TokenRequest,
        login_hint: Option<&str>,
    ) -> Result<SignedIn, Error> {
        let client = session.client();
        let tenant = request.tenant_id().unwrap_or(client.tenant_id());
        crate::scope::validate_scopes(NAME, request.scopes())?;
        let listener = RedirectListener::bind(NAME, self.redirect_uri.as_ref()).await?;
        // Fresh for every attempt: 32 bytes of verifier (43 characters), 16 of state and nonce.
        let verifier = Secret::new(random(32)?);
        let state = random(16)?;
        let nonce = random(16)?;
        let mut url = client.user_endpoint(tenant, "authorize")?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", client.client_id())
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", listener.redirect_uri())
                .append_pair("scope", &user_scope(request.scopes()))
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &pkce_challenge(verifier.expose()))
                .append_pair("code_challenge_method", "S256")
                .append_pair("response_mode", "query")
                .append_pair("client_info", "1");
            if let Some(hint) = self.login_hint.as_deref().or(login_hint) {
                query.append_pair("login_hint", hint);
            }
            if self.select_account {
                query.append_pair("prompt", "select_account");
            }
            if let Some(claims) = request.claims() {
                query.append_pair("claims", claims);
            }
        }
        tracing::debug!(credential = NAME, tenant, "opening the browser to sign in");
        let wait = listener.wait(&state);
        let open = self.launcher.open(url.as_str(), &self.env, self.timeout);
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(wait, open, deadline);
        let mut opened = false;
        let mut not_opened: Option<String> = None;
        let redirect = loop {
            tokio::select! {
                redirect = &mut wait => break redirect,
                outcome = &mut open, if !opened => {
                    opened = true;
                    if let Err(why) = outcome {
                        tracing::warn!(credential = NAME, why = %why, "no browser could be opened; the sign-in URL was written to stderr");
                        let _ = writeln!(
                            std::io::stderr(),
                            "Could not open a browser ({why}). To sign in, open this URL in a browser on this machine:\n{url}"
                        );
                        not_opened = Some(why);
                    }
                }
                () = &mut deadline => {
                    let why = match &not_opened {
                        Some(failed) => format!("no browser could be opened ({failed}) and the sign-in was not finished by hand within {} s", self.timeout.as_secs()),
                        None => format!("the user did not finish signing in within {} s", self.timeout.as_secs()),
                    };
                    return Err(Error::new(ErrorKind::Timeout, NAME, why).with_fix(
                        "finish signing in in the browser sooner or raise the credential's timeout; without a browser, use DeviceCodeCredential",
                    ));
                }
            }
        };
        let code = match redirect {
            Ok(Redirect::Code(code)) => code,
            failed => {
                // The browser is given a moment to show the page that says what failed (a
                // browser command is stopped as soon as the sign-in is over).
                if !opened {
                    let _ = tokio::time::timeout(FAILURE_PAGE_GRACE, &mut open).await;
                }
                return Err(sign_in_failure(failed));
            }
        };
        let grant = Grant::AuthorizationCode {
            code: &code,
            redirect_uri: listener.redirect_uri(),
            code_verifier: Some(&verifier),
        };
        // The browser keeps running while the code is redeemed: it shows the page the listener
        // answered (a browser command is stopped once the sign-in is over).
        let proof = |_: &_, _| Ok(session.proof());
        let redeem = client.send_grant(request, grant, &proof);
        tokio::pin!(redeem);
        let answer = loop {
            tokio::select! {
                answer = &mut redeem => break answer?,
                _ = &mut open, if !opened => opened = true,
            }
        };
        let (token, parts) = client.token_from(&answer)?;
        Ok(SignedIn {
            token,
            parts,
            nonce: Some(nonce),
        })
    }
}

/// The error of a redirect that brought no code (or of a refused one).
fn sign_in_failure(redirect: Result<Redirect, Error>) -> Error {
    let (error, description) = match redirect {
        Err(error) => return error,
        Ok(Redirect::Code(_)) => {
            return Error::new(
                ErrorKind::Other,
                NAME,
                "the sign-in brought a code that was not used",
            );
        }
        Ok(Redirect::Failed { error, description }) => (error, description),
    };
    // Anything on this machine can call the listener: its words go through the scrubber.
    let details = crate::scrub::line(&if description.is_empty() {
        error.clone()
    } else {
        format!("{error}: {description}")
    });
    let fix = if error == "access_denied" {
        "the user cancelled or declined: sign in again and accept"
    } else {
        "sign in again; if it persists, check the app registration (redirect URI http://localhost as \"Mobile and desktop\", the tenant, consent)"
    };
    Error::authentication(
        NAME,
        format!("the sign-in failed: Microsoft Entra ID redirected with {details}"),
    )
    .with_fix(fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let a = random(32).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random(32).unwrap());
    }

    #[test]
    fn redirect_uris_must_be_loopback_http() {
        for good in [
            "http://localhost",
            "http://localhost:8400/cb",
            "http://127.0.0.1:1",
        ] {
            assert!(parse_redirect_uri(good).is_ok(), "{good}");
        }
        for bad in [
            "https://localhost",
            "http://example.com",
            "http://localhost/?q=1",
            "not a url",
            "http://[::1]:80",
        ] {
            assert!(
                parse_redirect_uri(bad).unwrap_err().is_invalid_input(),
                "{bad}"
            );
        }
    }
}
