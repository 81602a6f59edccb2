//! [`Error`], [`ErrorKind`] and [`Attempt`]: one opaque error type for every credential.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::system::{HttpError, HttpErrorKind};

/// Defines [`ErrorKind`] from one table: each kind's documentation and the text it prints.
/// [`ErrorKind::ALL`] lists them in this order, which is the order of README.md's table of kinds
/// (`tests/error_docs.rs` checks that table against this one).
macro_rules! error_kinds {
    ($($(#[doc = $doc:literal])* $kind:ident => $text:literal,)+) => {
        /// What went wrong, coarsely: enough for a program (and a credential chain) to decide
        /// what to do.
        ///
        /// The chain rule: [`Unavailable`](ErrorKind::Unavailable) means "this source cannot
        /// even try here" and a chain moves on to its next member; the other kinds mean the
        /// source tried, and a chain stops (see the chain's documentation for the full table).
        ///
        /// Three kinds say the provider was reached and no token came back; they differ in what
        /// to do: [`Authentication`](ErrorKind::Authentication) — it refused (fix the
        /// configuration or the identity); [`ServiceFailure`](ErrorKind::ServiceFailure) — it
        /// failed (try again later); [`Throttled`](ErrorKind::Throttled) — it asked us to slow
        /// down.
        ///
        /// `Display` prints a short lower-case text (`unavailable`, `authentication failed`,
        /// ...); `Debug` prints the kind's name.
        ///
        /// # Examples
        ///
        /// ```
        /// use azure_credentials::{Error, ErrorKind};
        ///
        /// let error = Error::unavailable("AzureCliCredential", "az is not installed");
        /// assert_eq!(error.kind(), ErrorKind::Unavailable);
        /// assert_eq!(error.kind().to_string(), "unavailable");
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $($(#[doc = $doc])* $kind,)+
        }

        impl ErrorKind {
            /// Every kind, in the order the documentation lists them.
            ///
            /// # Examples
            ///
            /// ```
            /// use azure_credentials::ErrorKind;
            ///
            /// // e.g. one metric label per kind
            /// let labels: Vec<String> = ErrorKind::ALL.iter().map(|k| format!("{k:?}")).collect();
            /// assert_eq!(labels[0], "Unavailable");
            /// ```
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind,)+];

            fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $text,)+
                }
            }
        }
    };
}

error_kinds! {
    /// The source cannot try here: not configured, tool not installed, not logged in, endpoint
    /// absent or refusing connections.
    Unavailable => "unavailable",
    /// The identity provider was asked and refused. [`Error::status`],
    /// [`Error::aadsts_codes`] and [`Error::correlation_id`] tell more when known.
    Authentication => "authentication failed",
    /// A user must sign in: a user credential has no signed-in user it may use silently (its
    /// refresh token was refused — revoked, password changed, MFA required — or it never had
    /// one) and it may not prompt (automatic authentication is disabled, or it cannot prompt
    /// again). Call the credential's `authenticate` at a moment of the application's choosing.
    AuthenticationRequired => "authentication required",
    /// The identity endpoint was reached but failed: a server error (5xx) that outlasted the
    /// retries, or a managed identity endpoint's answer that is not a usable token (JSON cut
    /// short or malformed, no `access_token`). Not a refusal: the same request may work later.
    /// [`Error::status`] tells more when known.
    ServiceFailure => "identity service failed",
    /// The caller's input was invalid: a scope, tenant, subscription or option.
    InvalidInput => "invalid input",
    /// The source did not answer in time.
    Timeout => "timed out",
    /// The identity provider asked us to slow down; see [`Error::retry_after`].
    Throttled => "throttled",
    /// Reading a file, running a process or talking to the network failed.
    Io => "I/O error",
    /// Anything else: an unexpected response, a bug in a source.
    Other => "error",
}

/// `Error`'s predicates on its kind, one a line: `/// doc
/// is_kind => Kind;`.
macro_rules! kind_predicates {
    ($($(#[doc = $doc:literal])* $name:ident => $kind:ident;)+) => {
        $(
            $(#[doc = $doc])*
            pub fn $name(&self) -> bool {
                self.kind() == ErrorKind::$kind
            }
        )+
    };
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every credential in this crate.
///
/// Its message starts with the credential that failed and ends with what to change:
///
/// ```text
/// ManagedIdentityCredential: IMDS refused the connection; not running on Azure? Use a developer credential (az login)
/// ```
///
/// The cause, when there is one, is available through [`std::error::Error::source`] and is not
/// repeated in the message. Errors never contain a secret: no token, client secret, assertion,
/// key or CLI output. Cloning is cheap (the contents are shared), so one failure can be handed
/// to every caller that waited for it.
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    credential: Cow<'static, str>,
    message: Cow<'static, str>,
    fix: Option<Cow<'static, str>>,
    status: Option<u16>,
    aadsts_codes: Vec<u32>,
    correlation_id: Option<String>,
    retry_after: Option<Duration>,
    attempts: Vec<Attempt>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind`, raised by `credential` (its type name, e.g.
    /// `"ManagedIdentityCredential"`), saying what happened. The `with_*` methods add what to do
    /// and what is known; [`Error::unavailable`], [`Error::authentication`] and
    /// [`Error::invalid_input`] are shorthands.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use azure_credentials::{Error, ErrorKind};
    ///
    /// // In a `TokenFetcher` of your own:
    /// let error = Error::new(ErrorKind::Throttled, "MyTokenSource", "the vault asked us to slow down")
    ///     .with_status(429)
    ///     .with_retry_after(Duration::from_secs(10))
    ///     .with_fix("lower the request rate");
    /// assert_eq!(
    ///     error.to_string(),
    ///     "MyTokenSource: the vault asked us to slow down; lower the request rate"
    /// );
    /// ```
    pub fn new(
        kind: ErrorKind,
        credential: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Error {
            inner: Arc::new(Inner {
                kind,
                credential: credential.into(),
                message: message.into(),
                fix: None,
                status: None,
                aadsts_codes: Vec::new(),
                correlation_id: None,
                retry_after: None,
                attempts: Vec::new(),
                source: None,
            }),
        }
    }

    /// Shorthand for [`Error::new`] with [`ErrorKind::Unavailable`].
    pub fn unavailable(
        credential: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Error::new(ErrorKind::Unavailable, credential, message)
    }

    /// Shorthand for [`Error::new`] with [`ErrorKind::Authentication`].
    pub fn authentication(
        credential: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Error::new(ErrorKind::Authentication, credential, message)
    }

    /// Shorthand for [`Error::new`] with [`ErrorKind::InvalidInput`].
    pub fn invalid_input(
        credential: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Error::new(ErrorKind::InvalidInput, credential, message)
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }

    /// Adds what the user should change, printed after the message.
    pub fn with_fix(mut self, fix: impl Into<Cow<'static, str>>) -> Self {
        self.inner_mut().fix = Some(fix.into());
        self
    }

    /// Records the HTTP status of the response that caused the error.
    pub fn with_status(mut self, status: u16) -> Self {
        self.inner_mut().status = Some(status);
        self
    }

    /// Records the Microsoft Entra `AADSTS` error codes of the response.
    pub fn with_aadsts_codes(mut self, codes: impl IntoIterator<Item = u32>) -> Self {
        self.inner_mut().aadsts_codes = codes.into_iter().collect();
        self
    }

    /// Records the correlation id of the failed request (quote it to Azure support).
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.inner_mut().correlation_id = Some(id.into());
        self
    }

    /// Records how long the provider asked us to wait before trying again.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.inner_mut().retry_after = Some(retry_after);
        self
    }

    /// Records the underlying cause, available through [`std::error::Error::source`].
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.inner_mut().source = Some(Arc::new(source));
        self
    }

    /// Like [`Error::with_source`], for a cause that is already shared.
    pub(crate) fn with_shared_source(
        mut self,
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    ) -> Self {
        self.inner_mut().source = Some(source);
        self
    }

    /// Records the attempts of a credential chain, printed one per line after the message.
    pub fn with_attempts(mut self, attempts: Vec<Attempt>) -> Self {
        self.inner_mut().attempts = attempts;
        self
    }

    /// The coarse kind of the error.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The credential that raised the error, e.g. `"ManagedIdentityCredential"`.
    pub fn credential(&self) -> &str {
        &self.inner.credential
    }

    /// What happened, without the credential's name or the fix.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// What the user should change, when known.
    pub fn fix(&self) -> Option<&str> {
        self.inner.fix.as_deref()
    }

    /// The HTTP status of the response that caused the error, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// The Microsoft Entra `AADSTS` error codes, e.g. `[7000215]` for an invalid client secret.
    pub fn aadsts_codes(&self) -> &[u32] {
        &self.inner.aadsts_codes
    }

    /// The correlation id of the failed request, when the provider returned one.
    pub fn correlation_id(&self) -> Option<&str> {
        self.inner.correlation_id.as_deref()
    }

    /// How long the provider asked us to wait, for [`ErrorKind::Throttled`].
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The attempts of a credential chain, one per member that was tried.
    pub fn attempts(&self) -> &[Attempt] {
        &self.inner.attempts
    }

    kind_predicates! {
        /// `kind() == ErrorKind::Unavailable`: a chain moves on to its next member.
        is_unavailable => Unavailable;
        /// `kind() == ErrorKind::Authentication`.
        is_authentication => Authentication;
        /// `kind() == ErrorKind::ServiceFailure`: the identity endpoint failed; try again later.
        is_service_failure => ServiceFailure;
        /// `kind() == ErrorKind::InvalidInput`.
        is_invalid_input => InvalidInput;
        /// `kind() == ErrorKind::Timeout`.
        is_timeout => Timeout;
        /// `kind() == ErrorKind::Throttled`.
        is_throttled => Throttled;
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        write!(f, "{}: {}", inner.credential, inner.message)?;
        if let Some(fix) = &inner.fix {
            write!(f, "; {fix}")?;
        }
        for attempt in &inner.attempts {
            // Nested messages are indented so each attempt stays one visual block.
            let text = attempt.error.to_string().replace('\n', "\n    ");
            write!(f, "\n  - {text} [{} ms]", attempt.elapsed.as_millis())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let mut d = f.debug_struct("Error");
        d.field("kind", &inner.kind)
            .field("credential", &inner.credential)
            .field("message", &inner.message);
        if let Some(fix) = &inner.fix {
            d.field("fix", fix);
        }
        if let Some(status) = inner.status {
            d.field("status", &status);
        }
        if !inner.aadsts_codes.is_empty() {
            d.field("aadsts_codes", &inner.aadsts_codes);
        }
        if let Some(id) = &inner.correlation_id {
            d.field("correlation_id", id);
        }
        if let Some(retry_after) = inner.retry_after {
            d.field("retry_after", &retry_after);
        }
        if !inner.attempts.is_empty() {
            d.field("attempts", &inner.attempts);
        }
        if let Some(source) = &inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl Error {
    /// `credential`'s error for an HTTP exchange that produced no usable response: a timeout is
    /// [`ErrorKind::Timeout`], an insecure request or an invalid client setting
    /// [`ErrorKind::InvalidInput`], a body too large or an invalid request [`ErrorKind::Other`],
    /// anything else [`ErrorKind::Io`]. The message is the HTTP error's (with attempts and
    /// elapsed time); its fix, when it has one (an untrusted certificate), becomes the error's;
    /// its cause becomes the source. Sources that read some failures differently (managed
    /// identity: a refused connection means "not on Azure") look at [`HttpError::kind`] first.
    ///
    /// The HTTP seam knows nothing of credentials: the conversion lives here, above it.
    pub(crate) fn from_http(credential: impl Into<Cow<'static, str>>, error: &HttpError) -> Error {
        let kind = match error.kind() {
            HttpErrorKind::Timeout => ErrorKind::Timeout,
            HttpErrorKind::Insecure | HttpErrorKind::InvalidConfig => ErrorKind::InvalidInput,
            HttpErrorKind::BodyTooLarge | HttpErrorKind::Other => ErrorKind::Other,
            _ => ErrorKind::Io,
        };
        let mut converted = Error::new(kind, credential, error.to_string());
        if let Some(fix) = error.fix() {
            converted = converted.with_fix(fix.to_owned());
        }
        match error.shared_source() {
            Some(source) => converted.with_shared_source(source.clone()),
            None => converted,
        }
    }
}

/// One member's try inside a credential chain: which member, how it failed, how long it took.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Attempt {
    /// The member, e.g. `"EnvironmentCredential"`.
    pub credential: Cow<'static, str>,
    /// Why it did not produce a token.
    pub error: Error,
    /// How long the attempt took.
    pub elapsed: Duration,
}

impl Attempt {
    /// Records one member's failed attempt (for a chain of your own that reports like the built-in
    /// ones).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use azure_credentials::{Attempt, Error};
    ///
    /// let attempt = Attempt::new(
    ///     "AzureCliCredential",
    ///     Error::unavailable("AzureCliCredential", "az is not installed"),
    ///     Duration::from_millis(3),
    /// );
    /// let error = Error::unavailable("MyChain", "no credential produced a token:")
    ///     .with_attempts(vec![attempt]);
    /// assert_eq!(error.attempts().len(), 1);
    /// ```
    pub fn new(credential: impl Into<Cow<'static, str>>, error: Error, elapsed: Duration) -> Self {
        Attempt {
            credential: credential.into(),
            error,
            elapsed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn message_names_the_credential_and_ends_with_the_fix() {
        let err = Error::unavailable("ManagedIdentityCredential", "IMDS refused the connection")
            .with_fix("not running on Azure? Use a developer credential (az login)");
        assert_eq!(
            err.to_string(),
            "ManagedIdentityCredential: IMDS refused the connection; not running on Azure? Use a developer credential (az login)"
        );
        assert!(err.is_unavailable());
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn cause_is_chained_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused by peer");
        let err = Error::new(ErrorKind::Io, "X", "could not connect").with_source(io);
        assert!(!err.to_string().contains("refused by peer"));
        assert_eq!(err.source().unwrap().to_string(), "refused by peer");
    }

    #[test]
    fn details_are_kept() {
        let err = Error::authentication("ClientSecretCredential", "the client secret is invalid")
            .with_status(401)
            .with_aadsts_codes([7000215])
            .with_correlation_id("abc")
            .with_retry_after(Duration::from_secs(3));
        assert_eq!(err.status(), Some(401));
        assert_eq!(err.aadsts_codes(), &[7000215]);
        assert_eq!(err.correlation_id(), Some("abc"));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
        let debug = format!("{err:?}");
        assert!(
            debug.contains("7000215") && debug.contains("abc"),
            "{debug}"
        );
    }

    #[test]
    fn attempts_print_one_per_line() {
        let a = Attempt::new(
            "EnvironmentCredential",
            Error::unavailable("EnvironmentCredential", "not configured"),
            Duration::from_millis(1),
        );
        let b = Attempt::new(
            "AzureCliCredential",
            Error::unavailable("AzureCliCredential", "az is not installed"),
            Duration::from_millis(12),
        );
        let err = Error::unavailable("DefaultAzureCredential", "no credential produced a token")
            .with_attempts(vec![a, b]);
        let text = err.to_string();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[2].contains("AzureCliCredential: az is not installed [12 ms]"));
    }

    #[test]
    fn a_service_failure_is_its_own_kind() {
        let err = Error::new(
            ErrorKind::ServiceFailure,
            "ManagedIdentityCredential",
            "the IMDS endpoint answered 503",
        )
        .with_status(503);
        assert!(err.is_service_failure());
        assert!(!err.is_authentication() && !err.is_unavailable());
        assert_eq!(
            ErrorKind::ServiceFailure.to_string(),
            "identity service failed"
        );
    }

    #[test]
    fn an_http_failure_becomes_the_credentials_error_by_kind() {
        use HttpErrorKind as H;
        for (http, kind) in [
            (H::Timeout, ErrorKind::Timeout),
            (H::Insecure, ErrorKind::InvalidInput),
            (H::InvalidConfig, ErrorKind::InvalidInput),
            (H::BodyTooLarge, ErrorKind::Other),
            (H::Other, ErrorKind::Other),
            (H::ConnectionRefused, ErrorKind::Io),
            (H::Unreachable, ErrorKind::Io),
            (H::Connect, ErrorKind::Io),
            (H::Tls, ErrorKind::Io),
            (H::Io, ErrorKind::Io),
        ] {
            let err = Error::from_http("TestCredential", &HttpError::new(http, "it failed"));
            assert_eq!(err.kind(), kind, "{http:?}");
            assert_eq!(err.to_string(), "TestCredential: it failed");
            assert!(err.fix().is_none() && err.source().is_none());
        }
    }

    #[tokio::test]
    async fn an_http_failure_keeps_its_fix_and_its_cause() {
        use crate::Secret;
        use crate::system::{Http, HttpRequest, RetryPolicy};
        async fn failed(request: HttpRequest) -> HttpError {
            let sent = Http::shared().send(&request, &RetryPolicy::none()).await;
            sent.unwrap_err()
        }
        // Refused before anything is sent: a secret header over plain http to a remote host.
        let insecure = failed(
            HttpRequest::get("http://identity.example.com/token".parse().unwrap())
                .secret_header("X-IDENTITY-HEADER", &Secret::new("s")),
        )
        .await;
        let err = Error::from_http("TestCredential", &insecure);
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.message(), insecure.to_string());
        assert_eq!(err.fix(), Some("use an https URL for this endpoint"));

        // A refused loopback port: the cause (reqwest's error) is shared, not wrapped.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let refused = failed(HttpRequest::get(url)).await;
        let err = Error::from_http("TestCredential", &refused);
        assert_eq!(err.kind(), ErrorKind::Io);
        let text = err.to_string();
        assert!(
            text.starts_with("TestCredential: connection refused by 127.0.0.1:"),
            "{text}"
        );
        let cause = err.source().expect("the cause is kept");
        assert!(
            cause.downcast_ref::<reqwest::Error>().is_some(),
            "{cause:?}"
        );
        assert!(std::ptr::addr_eq(cause, refused.source().unwrap()));
    }

    #[test]
    fn every_kind_prints_a_text_of_its_own() {
        let mut texts: Vec<String> = ErrorKind::ALL.iter().map(ToString::to_string).collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), ErrorKind::ALL.len(), "{texts:?}");
    }

    #[test]
    fn clones_share_contents() {
        let err = Error::new(ErrorKind::Other, "X", "boom");
        let clone = err.clone();
        assert!(Arc::ptr_eq(&err.inner, &clone.inner));
    }
}
