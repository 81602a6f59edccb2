//! [`HttpError`] and [`HttpErrorKind`]: what went wrong, said without secrets; how reqwest's
//! and rustls's failures are classified, and what to do about an untrusted certificate.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::target::Target;

/// What kind of failure an [`HttpError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpErrorKind {
    /// Nothing listens on the port: the endpoint does not exist here.
    ConnectionRefused,
    /// The network or the host is unreachable, or the network is down.
    Unreachable,
    /// Any other failure to connect, such as a name that did not resolve.
    Connect,
    /// The TLS handshake failed: the server's certificate is not trusted (or not the pinned
    /// one), or no protocol was agreed. Not retried: another attempt would meet the same
    /// certificate. The message says what was wrong with the certificate.
    Tls,
    /// The response head did not arrive in time, the body stalled, or the connect timed out.
    Timeout,
    /// The response body exceeded
    /// [`HttpBuilder::max_body_bytes`](super::HttpBuilder::max_body_bytes).
    BodyTooLarge,
    /// The connection broke: reset, closed before the response was complete, or a malformed
    /// response.
    Io,
    /// The request would have sent a [secret header](super::HttpRequest::secret_header) over plain
    /// `http` to a host that is neither loopback nor link-local. Nothing was sent.
    Insecure,
    /// A setting given to the [`HttpBuilder`](super::HttpBuilder) is invalid (a zero timeout or
    /// body cap): returned by [`HttpBuilder::build`](super::HttpBuilder::build) only.
    InvalidConfig,
    /// Anything else, such as an invalid request.
    Other,
}

impl HttpErrorKind {
    /// Whether another attempt might succeed (when the policy retries transport errors).
    pub(super) fn is_transient(self) -> bool {
        match self {
            HttpErrorKind::ConnectionRefused
            | HttpErrorKind::Unreachable
            | HttpErrorKind::Connect
            | HttpErrorKind::Timeout
            | HttpErrorKind::Io => true,
            HttpErrorKind::Tls
            | HttpErrorKind::BodyTooLarge
            | HttpErrorKind::Insecure
            | HttpErrorKind::InvalidConfig
            | HttpErrorKind::Other => false,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            HttpErrorKind::ConnectionRefused => "connection refused",
            HttpErrorKind::Unreachable => "unreachable",
            HttpErrorKind::Connect => "connect failed",
            HttpErrorKind::Tls => "TLS handshake failed",
            HttpErrorKind::Timeout => "timed out",
            HttpErrorKind::BodyTooLarge => "body too large",
            HttpErrorKind::Io => "I/O error",
            HttpErrorKind::Insecure => "insecure request",
            HttpErrorKind::InvalidConfig => "invalid configuration",
            HttpErrorKind::Other => "error",
        }
    }
}

impl fmt::Display for HttpErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An HTTP exchange that produced no usable response.
///
/// The message names the endpoint as `host:port` or `host:port/path` (never the query) and says
/// how many attempts were made:
///
/// ```text
/// connection refused by 127.0.0.1:4567 after 1 attempt (0 ms)
/// no response from 169.254.169.254:80/metadata/identity/oauth2/token within 1 s (3 attempts, 4.2 s)
/// ```
///
/// The cause, with its URL removed, is available through [`std::error::Error::source`].
#[derive(Clone)]
pub struct HttpError {
    pub(super) kind: HttpErrorKind,
    /// What happened, without the attempts (which the retry loop adds later).
    message: String,
    pub(super) attempts: u32,
    pub(super) elapsed: Duration,
    /// The connection was reset, or closed before the response head: the retry loop tries
    /// once more at once.
    pub(super) dropped: bool,
    /// What to do about it, when the failure itself says (an untrusted certificate).
    fix: Option<Cow<'static, str>>,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl HttpError {
    /// An error of `kind` saying `message` (no secrets in it), for an
    /// [`HttpTransport`](super::HttpTransport) to fail an attempt as the network would.
    pub fn new(kind: HttpErrorKind, message: impl Into<String>) -> Self {
        HttpError {
            kind,
            message: message.into(),
            attempts: 0,
            elapsed: Duration::ZERO,
            dropped: false,
            fix: None,
            source: None,
        }
    }

    /// A connection that broke before the response head arrived (reset, or closed): an
    /// [`HttpErrorKind::Io`] error that the retry policy retries once at once, as it does for
    /// the network's.
    pub fn connection_dropped(message: impl Into<String>) -> Self {
        let mut error = HttpError::new(HttpErrorKind::Io, message);
        error.dropped = true;
        error
    }

    pub(super) fn with_fix(mut self, fix: impl Into<Cow<'static, str>>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    pub(super) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// No response head from `target` within `head`.
    pub(super) fn no_response(target: &Target, head: Duration) -> Self {
        HttpError::new(
            HttpErrorKind::Timeout,
            format!(
                "no response from {} within {}",
                target.endpoint,
                fmt_duration(head)
            ),
        )
    }

    pub(super) fn body_too_large(target: &Target, max: usize) -> Self {
        HttpError::new(
            HttpErrorKind::BodyTooLarge,
            format!(
                "the response from {} is larger than the {max}-byte limit",
                target.endpoint
            ),
        )
    }

    /// Classifies a reqwest error. The URL is removed first: its query may carry identifiers.
    pub(super) fn from_reqwest(
        error: reqwest::Error,
        target: &Target,
        connect_timeout: Duration,
    ) -> Self {
        let error = error.without_url();
        let Classified {
            kind,
            message,
            dropped,
            fix,
        } = classify(&error, target, connect_timeout);
        let mut classified = HttpError::new(kind, message).with_source(error);
        classified.dropped = dropped;
        classified.fix = fix;
        classified
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> HttpErrorKind {
        self.kind
    }

    /// What to do about this failure, when the failure itself says: how to trust a corporate
    /// CA for an untrusted certificate, `https` for an insecure request.
    pub fn fix(&self) -> Option<&str> {
        self.fix.as_deref()
    }

    /// How many attempts were made (0 when the request was invalid and nothing was sent).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The time from the first attempt's start to the failure, waits between retries included.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The cause as it is shared, so that an error made from this one can share it too.
    pub(crate) fn shared_source(&self) -> Option<&Arc<dyn StdError + Send + Sync + 'static>> {
        self.source.as_ref()
    }
}

/// What [`classify`] makes of a reqwest error.
struct Classified {
    kind: HttpErrorKind,
    message: String,
    pub(super) dropped: bool,
    fix: Option<Cow<'static, str>>,
}

impl Classified {
    fn new(kind: HttpErrorKind, message: String) -> Self {
        Classified {
            kind,
            message,
            dropped: false,
            fix: None,
        }
    }

    fn dropped(message: String) -> Self {
        Classified {
            dropped: true,
            ..Classified::new(HttpErrorKind::Io, message)
        }
    }
}

/// Maps a reqwest error to a kind and a message, from the most specific evidence to the least:
/// the OS error kinds, rustls's and hyper's errors anywhere in the source chain, then reqwest's
/// own flags.
fn classify(error: &reqwest::Error, target: &Target, connect_timeout: Duration) -> Classified {
    let authority = &target.authority;
    let endpoint = &target.endpoint;
    let mut io_kind = None;
    let mut tls = None;
    let mut closed_early = false;
    let mut malformed = false;
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(err) = next {
        if let Some(rustls_error) = err.downcast_ref::<rustls::Error>() {
            tls.get_or_insert(rustls_error);
        }
        if let Some(hyper_error) = err.downcast_ref::<hyper::Error>() {
            closed_early |= hyper_error.is_incomplete_message();
            malformed |= hyper_error.is_parse();
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if io_kind.is_none() && io.kind() != io::ErrorKind::Other {
                io_kind = Some(io.kind());
            }
            // io::Error::source skips the error it wraps (which may itself be an io::Error
            // wrapping a rustls error), so step into it directly.
            if let Some(inner) = io.get_ref() {
                next = Some(inner as &(dyn StdError + 'static));
                continue;
            }
        }
        next = err.source();
    }
    let unreachable = |why: &str| {
        Classified::new(
            HttpErrorKind::Unreachable,
            format!("cannot reach {authority}: {why}"),
        )
    };
    match io_kind {
        Some(io::ErrorKind::ConnectionRefused) => {
            return Classified::new(
                HttpErrorKind::ConnectionRefused,
                format!("connection refused by {authority}"),
            );
        }
        Some(io::ErrorKind::NetworkUnreachable) => return unreachable("network unreachable"),
        Some(io::ErrorKind::HostUnreachable) => return unreachable("no route to host"),
        Some(io::ErrorKind::NetworkDown) => return unreachable("the network is down"),
        _ => {}
    }
    if error.is_timeout() {
        let message = if error.is_connect() {
            format!(
                "could not connect to {authority} within {}",
                fmt_duration(connect_timeout)
            )
        } else {
            format!("no response from {endpoint} (timed out)")
        };
        return Classified::new(HttpErrorKind::Timeout, message);
    }
    if error.is_connect() {
        if let Some(tls) = tls {
            return tls_failure(tls, target);
        }
        let message = if error.is_dns() {
            format!("could not resolve {}", target.host)
        } else {
            format!("could not connect to {authority}")
        };
        return Classified::new(HttpErrorKind::Connect, message);
    }
    match io_kind {
        Some(
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe,
        ) => Classified::dropped(format!("the connection to {endpoint} was reset")),
        // Over TLS, a peer that closes without a `close_notify` before answering is a dropped
        // connection like a plain close before the head.
        Some(io::ErrorKind::UnexpectedEof) if error.is_request() && !malformed => {
            Classified::dropped(format!(
                "{endpoint} closed the connection before sending a response"
            ))
        }
        Some(io::ErrorKind::UnexpectedEof) => Classified::new(
            HttpErrorKind::Io,
            format!("the connection to {endpoint} closed before the response was complete"),
        ),
        // `chunk()` reports body errors as decode errors.
        _ if error.is_body() || error.is_decode() => Classified::new(
            HttpErrorKind::Io,
            format!("the connection to {endpoint} broke while reading the response body"),
        ),
        _ if error.is_request() && closed_early && !malformed => Classified::dropped(format!(
            "{endpoint} closed the connection before sending a response"
        )),
        _ if error.is_request() && malformed => Classified::new(
            HttpErrorKind::Io,
            format!("{endpoint} sent a malformed response"),
        ),
        _ if error.is_request() => Classified::new(
            HttpErrorKind::Io,
            format!("{endpoint} closed the connection or sent a malformed response"),
        ),
        _ => Classified::new(
            HttpErrorKind::Other,
            format!("the request to {endpoint} failed"),
        ),
    }
}

/// A failed TLS handshake, saying what was wrong with the certificate when that was it.
fn tls_failure(error: &rustls::Error, target: &Target) -> Classified {
    let authority = &target.authority;
    let rustls::Error::InvalidCertificate(problem) = error else {
        return Classified::new(
            HttpErrorKind::Tls,
            format!("the TLS handshake with {authority} failed: {error}"),
        );
    };
    let (why, fix) = certificate_problem(problem, &target.host);
    let mut classified = Classified::new(
        HttpErrorKind::Tls,
        format!(
            "the TLS handshake with {authority} failed: the server's certificate is not trusted: {why}"
        ),
    );
    classified.fix = fix;
    classified
}

/// Why a certificate was refused, in words, and what to do about it.
fn certificate_problem(
    problem: &rustls::CertificateError,
    host: &str,
) -> (String, Option<Cow<'static, str>>) {
    use rustls::CertificateError as E;
    const CLOCK: &str = "check this machine's clock";
    match problem {
        E::UnknownIssuer => (
            "it is not signed by a trusted certificate authority (a self-signed certificate, or \
             a proxy that inspects TLS re-signing it with its own CA)"
                .to_owned(),
            Some(Cow::Borrowed(TRUST_A_CA)),
        ),
        E::Expired | E::ExpiredContext { .. } => {
            ("it has expired".to_owned(), Some(Cow::Borrowed(CLOCK)))
        }
        E::NotValidYet | E::NotValidYetContext { .. } => {
            ("it is not valid yet".to_owned(), Some(Cow::Borrowed(CLOCK)))
        }
        E::NotValidForName | E::NotValidForNameContext { .. } => (
            format!("it is not valid for the name {host}"),
            Some(Cow::Borrowed(
                "check the host name in the endpoint URL; a proxy that inspects TLS may also present a certificate for another name",
            )),
        ),
        E::Revoked => ("it has been revoked".to_owned(), None),
        E::BadEncoding => ("it is malformed".to_owned(), None),
        E::BadSignature
        | E::UnsupportedSignatureAlgorithmContext { .. }
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            ("its signature cannot be verified".to_owned(), None)
        }
        E::Other(other) => (other.0.to_string(), None),
        other => (format!("{other:?}"), None),
    }
}

/// How to make the platform verifier trust a corporate CA. On Linux and other Unix systems
/// (not Apple's) it reads the roots once, when the client is built, through
/// `rustls-native-certs`: `SSL_CERT_FILE` / `SSL_CERT_DIR` when either is set (instead of the
/// system store, not in addition to it), else the system's bundle.
#[cfg(all(unix, not(target_vendor = "apple")))]
const TRUST_A_CA: &str = "if your network inspects TLS with a corporate CA, add that CA's \
     certificate to the system's trust store (update-ca-certificates, update-ca-trust) or point \
     SSL_CERT_FILE at a PEM bundle holding it and the public roots (SSL_CERT_FILE and \
     SSL_CERT_DIR replace the system store rather than add to it), then restart the process";
#[cfg(windows)]
const TRUST_A_CA: &str = "if your network inspects TLS with a corporate CA, add that CA's \
     certificate to the Windows certificate store (Trusted Root Certification Authorities)";
#[cfg(target_vendor = "apple")]
const TRUST_A_CA: &str = "if your network inspects TLS with a corporate CA, add that CA's \
     certificate to the keychain and mark it trusted";
#[cfg(not(any(unix, windows)))]
const TRUST_A_CA: &str = "if your network inspects TLS with a corporate CA, add that CA's \
     certificate to the system's trust store";

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        let attempts = self.attempts;
        let plural = if attempts == 1 { "" } else { "s" };
        let elapsed = fmt_duration(self.elapsed);
        match self.kind {
            _ if attempts == 0 => Ok(()),
            // These messages already end with a limit ("within 1 s", "byte limit").
            HttpErrorKind::Timeout | HttpErrorKind::BodyTooLarge => {
                write!(f, " ({attempts} attempt{plural}, {elapsed})")
            }
            _ => write!(f, " after {attempts} attempt{plural} ({elapsed})"),
        }
    }
}

impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("HttpError");
        d.field("kind", &self.kind)
            .field("message", &self.message)
            .field("attempts", &self.attempts)
            .field("elapsed", &self.elapsed);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for HttpError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

/// `12 ms`, `1 s`, `4.2 s`.
pub(super) fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{} ms", d.as_millis());
    }
    let tenths = (d.as_millis() + 50) / 100;
    if tenths.is_multiple_of(10) {
        format!("{} s", tenths / 10)
    } else {
        format!("{}.{} s", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::http::tls::PinMismatch;

    #[test]
    fn certificate_problems_are_said_in_words() {
        use rustls::CertificateError as E;
        let host = "login.example.com";
        let (why, fix) = certificate_problem(&E::UnknownIssuer, host);
        assert!(
            why.contains("not signed by a trusted certificate authority"),
            "{why}"
        );
        assert_eq!(fix.as_deref(), Some(TRUST_A_CA));
        let (why, fix) = certificate_problem(&E::Expired, host);
        assert_eq!(why, "it has expired");
        assert!(fix.unwrap().contains("clock"));
        let (why, _) = certificate_problem(&E::NotValidForName, host);
        assert_eq!(why, "it is not valid for the name login.example.com");
        let pinned = E::Other(rustls::OtherError(Arc::new(PinMismatch)));
        let (why, fix) = certificate_problem(&pinned, host);
        assert_eq!(
            why,
            "it is not the certificate pinned by its SHA-1 thumbprint"
        );
        assert_eq!(fix, None);
        #[cfg(all(unix, not(target_vendor = "apple")))]
        assert!(TRUST_A_CA.contains("SSL_CERT_FILE"));
    }

    #[test]
    fn durations_print_briefly() {
        assert_eq!(fmt_duration(Duration::from_millis(12)), "12 ms");
        assert_eq!(fmt_duration(Duration::from_secs(1)), "1 s");
        assert_eq!(fmt_duration(Duration::from_millis(4210)), "4.2 s");
        assert_eq!(fmt_duration(Duration::from_millis(59_960)), "60 s");
    }

    #[test]
    fn error_messages_count_attempts() {
        let imds = "no response from 169.254.169.254:80/metadata/identity/oauth2/token within 1 s";
        let cases = [
            (
                HttpErrorKind::Timeout,
                imds,
                3,
                4200,
                format!("{imds} (3 attempts, 4.2 s)"),
            ),
            (
                HttpErrorKind::ConnectionRefused,
                "connection refused by 127.0.0.1:4567",
                1,
                12,
                "connection refused by 127.0.0.1:4567 after 1 attempt (12 ms)".to_owned(),
            ),
        ];
        for (kind, message, attempts, elapsed_ms, expected) in cases {
            let mut error = HttpError::new(kind, message);
            error.attempts = attempts;
            error.elapsed = Duration::from_millis(elapsed_ms);
            assert_eq!(error.to_string(), expected);
        }
    }
}
