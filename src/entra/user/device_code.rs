//! [`DeviceCodeCredential`]: a user signs in on another device (a phone, a laptop's browser)
//! with a code this program shows: the OAuth 2.0 device authorization grant.

use std::fmt;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::session::{SignInFlow, SignedIn, UserSession};
use super::{UserCredential, UserOptions, interactive_credential, sign_in_timeout, user_setters};
use crate::context::seam_setters;
use crate::entra::response::{GrantKind, from_grant_response};
use crate::entra::{EntraOptions, Grant, user_scope};
use crate::setters::debug_fields;
use crate::system::{HttpRequest, HttpResponse, monotonic_now};
use crate::{Context, Error, ErrorKind, Secret, TokenRequest};

const NAME: &str = "DeviceCodeCredential";
/// How long a user has to sign in when the builder says nothing (Entra's codes live 15 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The polling interval when Entra gives none, and what `slow_down` adds (RFC 8628).
const DEFAULT_INTERVAL_SECS: u64 = 5;
const SLOW_DOWN_SECS: u64 = 5;
/// Bounds on what the device code endpoint may say.
const MAX_INTERVAL_SECS: u64 = 60;
const MAX_EXPIRES_IN_SECS: u64 = 24 * 3600;
const MAX_CODE_BYTES: usize = 8 * 1024;
const MAX_TEXT_CHARS: usize = 1024;

/// Signs a user in with a code shown on this device and entered on another: for command-line
/// tools, SSH sessions, containers and devices without a browser.
///
/// The first `get_token` (or [`authenticate`](Self::authenticate)) asks Microsoft Entra ID for a
/// code and hands it to the prompt (by default, Entra's message is written to stderr: "To sign
/// in, use a web browser to open the page <https://microsoft.com/devicelogin> and enter the code
/// …"); the credential then polls until the user signed in, declined, or the code expired.
/// Later calls are silent: the user's refresh token gets tokens for other scopes and renews
/// them, through the shared token cache.
///
/// ```no_run
/// use azure_credentials::{DeviceCodeCredential, TokenCredential};
///
/// # async fn run() -> Result<(), azure_credentials::Error> {
/// let credential = DeviceCodeCredential::builder()
///     .prompt(|code| tracing::info!(uri = %code.verification_uri(), code = code.user_code(), "sign in"))
///     .build()?;
/// let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
/// tracing::info!(user = ?token.username(), "signed in");
/// # Ok(())
/// # }
/// ```
///
/// Tokens and the refresh token are held in memory only; the
/// [`AuthenticationRecord`](crate::AuthenticationRecord) that [`authenticate`](Self::authenticate) returns holds no secret
/// and, saved by the application, makes later credentials of the same process silent.
#[derive(Clone)]
pub struct DeviceCodeCredential {
    user: UserCredential,
}

impl DeviceCodeCredential {
    /// A credential with the defaults: tenant `organizations`, the Azure development client id,
    /// the message printed to stderr.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when `AZURE_AUTHORITY_HOST` is not a valid `https` URL.
    pub fn new() -> Result<Self, Error> {
        DeviceCodeCredential::builder().build()
    }

    /// Options for a device code credential, validated by
    /// [`build`](DeviceCodeCredentialBuilder::build).
    pub fn builder() -> DeviceCodeCredentialBuilder {
        DeviceCodeCredentialBuilder::default()
    }
}

interactive_credential!(
    DeviceCodeCredential,
    errors = "As `get_token`: [`ErrorKind::Authentication`](crate::ErrorKind::Authentication) when the user declined or Entra refused, [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) when the code expired or the timeout passed first."
);

/// What the user needs to sign in with a device code: handed to the
/// [`prompt`](DeviceCodeCredentialBuilder::prompt).
#[derive(Clone, Debug)]
pub struct DeviceCodeInfo {
    user_code: String,
    verification_uri: String,
    message: String,
    expires_on: OffsetDateTime,
}

impl DeviceCodeInfo {
    /// The code the user enters, e.g. `"ABCD1234"`.
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// Where the user enters it, e.g. `https://microsoft.com/devicelogin`.
    pub fn verification_uri(&self) -> &str {
        &self.verification_uri
    }

    /// Entra's instructions for the user, in the user's language ("To sign in, use a web
    /// browser to open the page … and enter the code … to authenticate."), without control
    /// characters.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// When the code expires.
    pub fn expires_on(&self) -> OffsetDateTime {
        self.expires_on
    }
}

type Prompt = Arc<dyn Fn(&DeviceCodeInfo) + Send + Sync>;

/// Options of a [`DeviceCodeCredential`]; see [`DeviceCodeCredential::builder`].
#[derive(Clone, Default)]
pub struct DeviceCodeCredentialBuilder {
    context: Context,
    options: EntraOptions,
    user: UserOptions,
    prompt: Option<Prompt>,
    timeout: Option<Duration>,
}

impl DeviceCodeCredentialBuilder {
    user_setters!();

    /// Shows the user the code: called once per sign-in with what the user needs. Default:
    /// writes [`DeviceCodeInfo::message`] to stderr.
    pub fn prompt(mut self, prompt: impl Fn(&DeviceCodeInfo) + Send + Sync + 'static) -> Self {
        self.prompt = Some(Arc::new(prompt));
        self
    }

    /// How long the user has to sign in, at most (the code's own lifetime also bounds it).
    /// Default: 15 minutes.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    seam_setters!(
        env = "`AZURE_AUTHORITY_HOST`, `AZURE_ADDITIONALLY_ALLOWED_TENANTS` and \
               `AZURE_IDENTITY_DISABLE_MULTITENANTAUTH` are read there.",
        http,
        cache = "Its clock also dates the tokens.",
    );

    /// Validates the options and builds the credential. Nothing is sent before a token is
    /// asked for.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for an invalid tenant or client id, an authority host that
    /// is not `https`, a zero timeout, or an authentication record of another client or
    /// authority.
    pub fn build(self) -> Result<DeviceCodeCredential, Error> {
        let timeout = sign_in_timeout(NAME, self.timeout, DEFAULT_TIMEOUT)?;
        let flow = DeviceCodeFlow {
            prompt: self
                .prompt
                .clone()
                .unwrap_or_else(|| Arc::new(print_message)),
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
        Ok(DeviceCodeCredential { user })
    }
}

debug_fields!(DeviceCodeCredentialBuilder {
    options,
    user,
    timeout,
    ..
});

/// The default prompt: Entra's message on stderr.
fn print_message(info: &DeviceCodeInfo) {
    let _ = writeln!(std::io::stderr(), "{}", info.message);
}

struct DeviceCodeFlow {
    prompt: Prompt,
    timeout: Duration,
}

impl fmt::Debug for DeviceCodeFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeFlow")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What the device code endpoint answered. `Debug` shows no code.
pub(crate) struct DeviceCode {
    device_code: Secret,
    user_code: String,
    verification_uri: String,
    message: String,
    expires_in: u64,
    interval: u64,
}

impl fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCode")
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SignInFlow for DeviceCodeFlow {
    async fn sign_in(
        &self,
        session: &UserSession,
        request: &TokenRequest,
        _login_hint: Option<&str>,
    ) -> Result<SignedIn, Error> {
        let client = session.client();
        let tenant = request.tenant_id().unwrap_or(client.tenant_id());
        let endpoint = client.user_endpoint(tenant, "devicecode")?;
        crate::scope::validate_scopes(NAME, request.scopes())?;
        let scope = user_scope(request.scopes());
        let mut form: Vec<(&str, &str)> =
            vec![("client_id", client.client_id()), ("scope", &scope)];
        if let Some(claims) = request.claims() {
            form.push(("claims", claims));
        }
        let http_request = HttpRequest::post(endpoint)
            .header("Accept", "application/json")
            .form(&form);
        tracing::debug!(credential = NAME, tenant, "requesting a device code");
        let response = client.send(&http_request).await?;
        if response.status() != 200 {
            return Err(from_grant_response(
                &client.response_context(tenant),
                &response,
                GrantKind::User,
            ));
        }
        let code = parse_device_code(&response)?;
        let started = monotonic_now();
        let lifetime = Duration::from_secs(code.expires_in).min(self.timeout);
        let deadline = started + lifetime;
        let info = DeviceCodeInfo {
            user_code: code.user_code.clone(),
            verification_uri: code.verification_uri.clone(),
            message: code.message.clone(),
            expires_on: client.now() + Duration::from_secs(code.expires_in),
        };
        (self.prompt)(&info);
        let mut interval = Duration::from_secs(code.interval);
        loop {
            if monotonic_now() + interval > deadline {
                let why = if lifetime < Duration::from_secs(code.expires_in) {
                    format!(
                        "the user did not sign in within the timeout ({} s)",
                        lifetime.as_secs()
                    )
                } else {
                    format!(
                        "the device code expired ({} s) before the user signed in",
                        lifetime.as_secs()
                    )
                };
                return Err(Error::new(ErrorKind::Timeout, NAME, why)
                    .with_fix("sign in sooner at the page the prompt names, or raise the credential's timeout"));
            }
            tokio::time::sleep(interval).await;
            let grant = Grant::DeviceCode {
                device_code: &code.device_code,
            };
            let answer = client
                .send_grant(request, grant, &|_, _| Ok(session.proof()))
                .await?;
            match answer.oauth_error().as_deref() {
                Some("authorization_pending") => continue,
                Some("slow_down") => {
                    interval += Duration::from_secs(SLOW_DOWN_SECS);
                    tracing::debug!(credential = NAME, interval = ?interval, "asked to slow down");
                    continue;
                }
                Some("authorization_declined") => {
                    return Err(Error::authentication(NAME, "the user declined the sign-in")
                        .with_fix("sign in again and accept at the device code page"));
                }
                Some("expired_token") => {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        NAME,
                        "the device code expired before the user signed in",
                    )
                    .with_fix("sign in again and enter the new code sooner"));
                }
                Some("bad_verification_code") => {
                    return Err(Error::new(
                        ErrorKind::Other,
                        NAME,
                        "Microsoft Entra ID did not recognize the device code it issued",
                    )
                    .with_fix("sign in again; if it persists, check that nothing between this machine and Entra alters requests"));
                }
                _ => {
                    let (token, parts) = client.token_from(&answer)?;
                    tracing::debug!(credential = NAME, "the user signed in with the device code");
                    return Ok(SignedIn {
                        token,
                        parts,
                        nonce: None,
                    });
                }
            }
        }
    }
}

/// Reads the device code endpoint's answer. Nothing of it reaches an error.
pub(crate) fn parse_device_code(response: &HttpResponse) -> Result<DeviceCode, Error> {
    let unexpected = |what: &str| {
        Error::new(
            ErrorKind::Other,
            NAME,
            format!("the device code endpoint answered 200 with {what}"),
        )
        .with_fix(
            "check that the authority host is Microsoft Entra ID and that no proxy answers for it",
        )
    };
    let body: Map<String, Value> = match serde_json::from_slice(response.body()) {
        Ok(Value::Object(body)) => body,
        _ => return Err(unexpected("something other than a JSON object")),
    };
    let text = |name: &str| match body.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    };
    let number = |name: &str| match body.get(name) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let device_code = text("device_code")
        .filter(|c| c.len() <= MAX_CODE_BYTES)
        .ok_or_else(|| unexpected("no valid device_code"))?;
    let user_code = text("user_code")
        .and_then(clean)
        .filter(|c| c.len() <= 64)
        .ok_or_else(|| unexpected("no valid user_code"))?;
    let verification_uri = text("verification_uri")
        .or_else(|| text("verification_url"))
        .filter(|uri| {
            url::Url::parse(uri).is_ok_and(|u| matches!(u.scheme(), "https" | "http"))
                && uri.len() <= MAX_TEXT_CHARS
        })
        .ok_or_else(|| unexpected("no valid verification_uri"))?;
    let expires_in = number("expires_in")
        .filter(|s| (1..=MAX_EXPIRES_IN_SECS).contains(s))
        .ok_or_else(|| unexpected("no valid expires_in"))?;
    let interval = number("interval")
        .filter(|s| *s >= 1)
        .unwrap_or(DEFAULT_INTERVAL_SECS)
        .min(MAX_INTERVAL_SECS);
    let message = text("message").and_then(clean).unwrap_or_else(|| {
        format!("To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate.")
    });
    Ok(DeviceCode {
        device_code: Secret::new(device_code),
        user_code,
        verification_uri: verification_uri.to_owned(),
        message,
        expires_in,
        interval,
    })
}

/// Text shown to the user as it is, without control characters (a terminal escape in a
/// message would be obeyed by the terminal), bounded.
fn clean(text: &str) -> Option<String> {
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> HttpResponse {
        HttpResponse::new(200, Vec::<(&str, &str)>::new(), body.as_bytes().to_vec())
    }

    #[test]
    fn a_device_code_answer_is_read_and_its_text_cleaned() {
        let code = parse_device_code(&answer(
            r#"{"device_code":"dc","user_code":"AB12","verification_uri":"https://microsoft.com/devicelogin",
                "expires_in":"900","interval":5,"message":"Open \u001b[2Jthe page"}"#,
        ))
        .unwrap();
        assert_eq!(code.user_code, "AB12");
        assert_eq!(code.expires_in, 900);
        assert_eq!(code.interval, 5);
        assert_eq!(code.message, "Open [2Jthe page");
        // No message: one is made; no interval: 5 s; a huge interval is bounded.
        let code = parse_device_code(&answer(
            r#"{"device_code":"dc","user_code":"AB12","verification_uri":"https://x.example/d","expires_in":60,"interval":100000}"#,
        ))
        .unwrap();
        assert!(code.message.contains("AB12") && code.message.contains("https://x.example/d"));
        assert_eq!(code.interval, MAX_INTERVAL_SECS);
    }

    #[test]
    fn what_is_not_a_device_code_answer_is_an_error_that_quotes_nothing() {
        for bad in [
            "",
            "[]",
            r#"{"device_code":"secret-dc","user_code":"A","verification_uri":"nope","expires_in":60}"#,
            r#"{"device_code":"secret-dc","user_code":"A","verification_uri":"https://x.example","expires_in":0}"#,
            r#"{"user_code":"A","verification_uri":"https://x.example","expires_in":60}"#,
        ] {
            let error = parse_device_code(&answer(bad)).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Other, "{bad}");
            assert!(!error.to_string().contains("secret-dc"));
        }
    }
}
