//! [`AccessKeyCredential`] and [`SignedHeaders`]: signing requests with an access key, the way
//! trusted services authenticate to Azure Communication Services.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use parking_lot::RwLock;
use ring::{digest, hmac};
use time::{OffsetDateTime, UtcOffset};
use url::{Host, Position, Url};

use crate::system::Clock;
use crate::{Error, Secret};

const NAME: &str = "AccessKeyCredential";

/// Keys shorter than this (decoded) are refused: Azure's access keys are 64 bytes, and a short
/// "key" is almost always something else pasted by mistake.
const MIN_KEY_BYTES: usize = 16;

const AUTHORIZATION_PREFIX: &str =
    "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=";
/// `Tue, 01 Jan 2030 00:00:00 GMT`.
const DATE_LEN: usize = 29;
/// Base64 of 32 bytes (a SHA-256 digest or an HMAC-SHA256 tag).
const DIGEST_B64_LEN: usize = 44;
const AUTHORIZATION_LEN: usize = AUTHORIZATION_PREFIX.len() + DIGEST_B64_LEN;

const KEY_FIX: &str = "copy the key from the Azure portal (your Communication Services resource, Settings, Keys) or from `az communication list-key`";
const CONNECTION_STRING_FIX: &str = "copy the connection string from the Azure portal (your Communication Services resource, Settings, Keys): it reads endpoint=https://<resource>.communication.azure.com/;accesskey=<key>";

/// An access key of an Azure Communication Services resource, signing requests with the
/// HMAC-SHA256 scheme its REST API (and App Configuration's) accepts.
///
/// Access keys are for trusted services: whoever holds one has full control of the resource.
/// Client applications use [user access tokens](crate::UserTokenCredential) instead, and
/// services that can should prefer Microsoft Entra ID ([`DefaultAzureCredential`] with the
/// scope `https://communication.azure.com//.default`).
///
/// ```
/// use azure_credentials::AccessKeyCredential;
///
/// # fn run() -> Result<(), azure_credentials::Error> {
/// # let connection_string = "endpoint=https://contoso.communication.azure.com/;accesskey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
/// let credential = AccessKeyCredential::from_connection_string(connection_string)?;
/// let url = credential.endpoint().unwrap().join("identities?api-version=2023-10-01").unwrap();
/// let headers = credential.sign("POST", &url, b"{}")?;
/// for (name, value) in headers.iter() {
///     // add `name: value` to the request
/// #   let _ = (name, value);
/// }
/// # Ok(()) }
/// ```
///
/// Every request carries three headers: `x-ms-date` (the time, RFC 1123), `x-ms-content-sha256`
/// (base64 SHA-256 of the body, also for an empty body) and `Authorization: HMAC-SHA256
/// SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<signature>`, where the signature
/// is the base64 HMAC-SHA256, keyed with the decoded access key, of
///
/// ```text
/// <METHOD>\n<path and query>\n<x-ms-date>;<host>;<x-ms-content-sha256>
/// ```
///
/// - `METHOD` is upper-cased (send it upper-case too);
/// - the path and query are taken exactly as they go on the request line: percent-encoded,
///   never decoded or re-encoded, the fragment left out;
/// - the host is what the `Host` header carries: the host name, plus `:port` only for a port
///   other than the scheme's default (`https://x:443/` is signed as `x`, `https://x:8443/` as
///   `x:8443`);
/// - the date comes from the credential's [`Clock`]; the service refuses a date more than 15
///   minutes away from its own clock, so sign each request just before sending it (retries
///   included).
///
/// **Rotation.** Clones share the key: [`rotate`](Self::rotate) replaces it for every clone, so
/// clients built earlier sign with the new key from their next request on. A request being
/// signed while the key changes uses either the old key or the new one, never a mix.
///
/// `Debug`, errors and logs never show the key or a signature.
///
/// [`DefaultAzureCredential`]: crate::DefaultAzureCredential
#[derive(Clone)]
pub struct AccessKeyCredential {
    inner: Arc<Inner>,
}

struct Inner {
    key: RwLock<Arc<SigningKey>>,
    endpoint: Option<Url>,
    clock: Clock,
    rotations: AtomicU64,
}

/// The decoded access key, as ring's HMAC key (which keeps only the padded key's hash states,
/// and never prints them).
struct SigningKey(hmac::Key);

impl AccessKeyCredential {
    /// A credential for `key`, the base64 access key as the portal shows it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the key is empty, not standard base64 or too short to be an access key; the
    /// message never repeats the key.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{AccessKeyCredential, ErrorKind};
    ///
    /// let key = std::env::var("ACS_ACCESS_KEY").unwrap_or_else(|_| "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==".to_owned());
    /// let credential = AccessKeyCredential::new(key)?;
    ///
    /// let error = AccessKeyCredential::new("not-a-key").unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// assert!(!error.to_string().contains("not-a-key"));
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn new(key: impl Into<Secret>) -> Result<Self, Error> {
        AccessKeyCredential::builder().key(key).build()
    }

    /// A credential for a connection string:
    /// `endpoint=https://<resource>.communication.azure.com/;accesskey=<base64 key>`.
    ///
    /// Setting names are case-insensitive and may come in any order; spaces around the parts and a
    /// trailing `;` are ignored.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when a setting is missing, repeated or unknown, the endpoint is not an `https` URL
    /// (plain `http` is accepted for loopback hosts only) or the key is invalid; the message never
    /// repeats the key.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::AccessKeyCredential;
    ///
    /// let credential = AccessKeyCredential::from_connection_string(
    ///     "endpoint=https://contoso.communication.azure.com/;accesskey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
    /// )?;
    /// assert_eq!(
    ///     credential.endpoint().map(|url| url.as_str()),
    ///     Some("https://contoso.communication.azure.com/")
    /// );
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn from_connection_string(connection_string: impl Into<Secret>) -> Result<Self, Error> {
        AccessKeyCredential::builder()
            .connection_string(connection_string)
            .build()
    }

    /// Options for an access key credential (the key or a connection string, the endpoint, the
    /// clock), validated by [`build`](AccessKeyCredentialBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::AccessKeyCredential;
    ///
    /// let credential = AccessKeyCredential::builder()
    ///     .key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==")
    ///     .endpoint("https://contoso.communication.azure.com/")
    ///     .build()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn builder() -> AccessKeyCredentialBuilder {
        AccessKeyCredentialBuilder::default()
    }

    /// The resource's endpoint, from the connection string or the builder.
    pub fn endpoint(&self) -> Option<&Url> {
        self.inner.endpoint.as_ref()
    }

    /// Replaces the key (after regenerating it in the portal, say) for this credential and every
    /// clone of it: requests signed from now on use `new_key`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `new_key` is invalid (as for [`AccessKeyCredential::new`]); the current key stays
    /// in use.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::AccessKeyCredential;
    ///
    /// let credential = AccessKeyCredential::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==")?;
    /// let in_a_client = credential.clone();
    /// credential.rotate("LLdsC2Q5NWcVE2PvNH99sol+4caoni0xZ2mVjeUPPYPJ1ECGTaWb8Q0gXiJqQOZxKNteYrgCBMpQzF4pVHS1+A==")?;
    /// // `in_a_client` signs with the new key too.
    /// assert!(credential.rotate("not-a-key").is_err());
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn rotate(&self, new_key: impl Into<Secret>) -> Result<(), Error> {
        let key = SigningKey::decode(new_key.into().expose())?;
        *self.inner.key.write() = Arc::new(key);
        let rotations = self.inner.rotations.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::info!(
            credential = NAME,
            rotations,
            "access key replaced; requests are signed with the new key from now on"
        );
        Ok(())
    }

    /// Signs a request for `method` (e.g. `"GET"`) to `url` with `body` (empty for none), at the
    /// time the credential's clock shows, and returns the three headers to send with it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the URL has no host or the method is not an HTTP method name.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::AccessKeyCredential;
    ///
    /// let credential = AccessKeyCredential::from_connection_string(
    ///     "endpoint=https://contoso.communication.azure.com/;accesskey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
    /// )?;
    /// let url = credential.endpoint().unwrap().join("sms?api-version=2021-03-07").unwrap();
    /// let headers = credential.sign("POST", &url, br#"{"message":"hi"}"#)?;
    /// for (name, value) in headers.iter() {
    ///     // add `name: value` to the request
    /// }
    /// assert!(headers.authorization().starts_with("HMAC-SHA256 SignedHeaders="));
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn sign(&self, method: &str, url: &Url, body: &[u8]) -> Result<SignedHeaders, Error> {
        validate_method(method)?;
        let host = url_host(url)?;
        let path_and_query = &url[Position::BeforePath..Position::AfterQuery];
        let date = self.inner.clock.now();
        Ok(self.sign_with(method, host, path_and_query, body, date))
    }

    /// Signs a request from its parts, at `date`: the pure signing function, for test vectors and
    /// for HTTP stacks other than reqwest.
    ///
    /// `host` is the `Host` header's value (`name` or `name:port` for a port other than the
    /// scheme's default); `path_and_query` is the request target as sent on the request line
    /// (`/path?query`, percent-encoded). `method` is upper-cased. Nothing is validated.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::AccessKeyCredential;
    /// use time::macros::datetime;
    ///
    /// let credential = AccessKeyCredential::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==")?;
    /// let headers = credential.sign_parts(
    ///     "GET",
    ///     "contoso.communication.azure.com",
    ///     "/identities?api-version=2023-10-01",
    ///     b"",
    ///     datetime!(2030-01-01 0:00 UTC),
    /// );
    /// assert_eq!(headers.date(), "Tue, 01 Jan 2030 00:00:00 GMT");
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn sign_parts(
        &self,
        method: &str,
        host: &str,
        path_and_query: &str,
        body: &[u8],
        date: OffsetDateTime,
    ) -> SignedHeaders {
        self.sign_with(method, (host, None), path_and_query, body, date)
    }

    /// Signs a reqwest request in place: sets `x-ms-date`, `x-ms-content-sha256` and
    /// `Authorization` (marked sensitive, so reqwest never prints it). Build the request, sign it,
    /// then send it with `Client::execute`; sign it again before each retry.
    ///
    /// A `Host` header already on the request is what gets signed (it is what the server sees);
    /// otherwise the URL's host and non-default port.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a streaming body (its bytes are not known in advance: buffer it first), a method
    /// that is not upper-case (it would be sent otherwise than signed) and a URL without a host.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use azure_credentials::AccessKeyCredential;
    ///
    /// # async fn run(credential: AccessKeyCredential, client: reqwest::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let url = credential.endpoint().unwrap().join("identities?api-version=2023-10-01")?;
    /// let mut request = client.post(url).body(r#"{"createTokenWithScopes":["chat"]}"#).build()?;
    /// credential.sign_request(&mut request)?;
    /// let response = client.execute(request).await?;
    /// # let _ = response;
    /// # Ok(()) }
    /// ```
    pub fn sign_request(&self, request: &mut reqwest::Request) -> Result<(), Error> {
        let method = request.method().as_str();
        if method.bytes().any(|b| b.is_ascii_lowercase()) {
            // HTTP methods are case-sensitive and the signature covers the upper-case form:
            // the service would recompute it from a method it never received.
            return Err(Error::invalid_input(
                NAME,
                "the request's method is not upper-case, so it would be sent differently from how it is signed",
            )
            .with_fix("use reqwest::Method::GET, POST, ... or an upper-case extension method"));
        }
        let body: &[u8] = match request.body() {
            None => &[],
            Some(body) => body.as_bytes().ok_or_else(|| {
                Error::invalid_input(
                    NAME,
                    "cannot sign a request with a streaming body: its content hash must be known before it is sent",
                )
                .with_fix("buffer the body (bytes or a string) before signing")
            })?,
        };
        let date = self.inner.clock.now();
        let headers = match request.headers().get(reqwest::header::HOST) {
            Some(host) => {
                let host = host.to_str().map_err(|_| {
                    Error::invalid_input(NAME, "the request's Host header is not visible ASCII")
                })?;
                let path_and_query = &request.url()[Position::BeforePath..Position::AfterQuery];
                self.sign_with(
                    request.method().as_str(),
                    (host, None),
                    path_and_query,
                    body,
                    date,
                )
            }
            None => {
                let url = request.url();
                let host = url_host(url)?;
                let path_and_query = &url[Position::BeforePath..Position::AfterQuery];
                self.sign_with(request.method().as_str(), host, path_and_query, body, date)
            }
        };
        headers.apply_to(request.headers_mut());
        Ok(())
    }

    fn sign_with(
        &self,
        method: &str,
        host: (&str, Option<u16>),
        path_and_query: &str,
        body: &[u8],
        date: OffsetDateTime,
    ) -> SignedHeaders {
        // One Arc clone, so a concurrent rotation never waits on a signer (and a signer never
        // sees half a key: the key is swapped whole).
        let key = self.inner.key.read().clone();
        tracing::trace!(
            credential = NAME,
            method,
            host = host.0,
            "signing a request"
        );
        sign(&key.0, method, host, path_and_query, body, date)
    }
}

impl fmt::Debug for AccessKeyCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(NAME)
            .field("endpoint", &self.inner.endpoint.as_ref().map(Url::as_str))
            .field("key", &"<redacted>")
            .field("rotations", &self.inner.rotations.load(Ordering::Acquire))
            .finish()
    }
}

/// Options of an [`AccessKeyCredential`]: a key (and optionally the endpoint it belongs to), or
/// a connection string holding both.
#[derive(Debug, Clone, Default)]
pub struct AccessKeyCredentialBuilder {
    key: Option<Secret>,
    connection_string: Option<Secret>,
    endpoint: Option<String>,
    clock: Option<Clock>,
}

impl AccessKeyCredentialBuilder {
    /// The access key, base64 as the portal shows it.
    pub fn key(mut self, key: impl Into<Secret>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// A connection string, `endpoint=https://<resource>.communication.azure.com/;accesskey=<key>`,
    /// instead of a key and an endpoint.
    pub fn connection_string(mut self, connection_string: impl Into<Secret>) -> Self {
        self.connection_string = Some(connection_string.into());
        self
    }

    /// The resource's endpoint, `https://<resource>.communication.azure.com/`, for callers that
    /// build request URLs from [`AccessKeyCredential::endpoint`]. Optional with a key.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The clock that dates requests. Default: the system clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates the key (and endpoint) and builds the credential.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when neither or both of a key and a connection string are given, when a connection
    /// string is combined with an endpoint, or when a value is invalid. Messages never repeat the
    /// key.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{AccessKeyCredential, ErrorKind};
    ///
    /// let error = AccessKeyCredential::builder()
    ///     .endpoint("https://contoso.communication.azure.com/")
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput); // no key
    /// ```
    pub fn build(self) -> Result<AccessKeyCredential, Error> {
        let (key, endpoint) = match (&self.key, &self.connection_string) {
            (Some(key), None) => (
                SigningKey::decode(key.expose())?,
                self.endpoint.as_deref().map(parse_endpoint).transpose()?,
            ),
            (None, Some(connection_string)) => {
                if self.endpoint.is_some() {
                    return Err(Error::invalid_input(
                        NAME,
                        "both a connection string and an endpoint were given",
                    )
                    .with_fix("the connection string holds the endpoint: drop .endpoint(..)"));
                }
                let parsed = ConnectionString::parse(connection_string.expose())?;
                (SigningKey::decode(parsed.key)?, Some(parsed.endpoint))
            }
            (Some(_), Some(_)) => {
                return Err(Error::invalid_input(
                    NAME,
                    "both a key and a connection string were given",
                )
                .with_fix("give one of them"));
            }
            (None, None) => {
                return Err(Error::invalid_input(
                    NAME,
                    "no access key or connection string was given",
                )
                .with_fix("call .key(..) or .connection_string(..) on the builder"));
            }
        };
        Ok(AccessKeyCredential {
            inner: Arc::new(Inner {
                key: RwLock::new(Arc::new(key)),
                endpoint,
                clock: self.clock.unwrap_or_default(),
                rotations: AtomicU64::new(0),
            }),
        })
    }
}

/// The three headers that authenticate one request: send each with the request.
///
/// Signing allocates nothing: the values live in the struct. `Debug` shows the date and the
/// content hash but not the signature (it authenticates this request for 15 minutes).
#[derive(Clone, Copy)]
pub struct SignedHeaders {
    date: [u8; DATE_LEN],
    content_sha256: [u8; DIGEST_B64_LEN],
    authorization: [u8; AUTHORIZATION_LEN],
}

impl SignedHeaders {
    /// `x-ms-date`.
    pub const DATE: &'static str = "x-ms-date";
    /// `x-ms-content-sha256`.
    pub const CONTENT_SHA256: &'static str = "x-ms-content-sha256";
    /// `authorization`.
    pub const AUTHORIZATION: &'static str = "authorization";

    /// The `x-ms-date` value, e.g. `Tue, 01 Jan 2030 00:00:00 GMT`.
    pub fn date(&self) -> &str {
        ascii(&self.date)
    }

    /// The `x-ms-content-sha256` value: base64 SHA-256 of the body.
    pub fn content_sha256(&self) -> &str {
        ascii(&self.content_sha256)
    }

    /// The `Authorization` value, `HMAC-SHA256 SignedHeaders=...&Signature=...`. Sensitive:
    /// mark it so in your HTTP client and never log it.
    pub fn authorization(&self) -> &str {
        ascii(&self.authorization)
    }

    /// The three headers as `(name, value)` pairs, names lower-case.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (Self::DATE, self.date()),
            (Self::CONTENT_SHA256, self.content_sha256()),
            (Self::AUTHORIZATION, self.authorization()),
        ]
        .into_iter()
    }

    /// Sets the three headers in `headers` (replacing earlier values), with `Authorization`
    /// marked sensitive.
    pub fn apply_to(&self, headers: &mut reqwest::header::HeaderMap) {
        use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
        let value = |bytes: &[u8]| {
            HeaderValue::from_bytes(bytes).expect("signed header values are visible ASCII")
        };
        headers.insert(HeaderName::from_static(Self::DATE), value(&self.date));
        headers.insert(
            HeaderName::from_static(Self::CONTENT_SHA256),
            value(&self.content_sha256),
        );
        let mut authorization = value(&self.authorization);
        authorization.set_sensitive(true);
        headers.insert(AUTHORIZATION, authorization);
    }
}

impl fmt::Debug for SignedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedHeaders")
            .field("x-ms-date", &self.date())
            .field("x-ms-content-sha256", &self.content_sha256())
            .field(
                "authorization",
                &format_args!("{AUTHORIZATION_PREFIX}<redacted>"),
            )
            .finish()
    }
}

fn ascii(bytes: &[u8]) -> &str {
    // Always ASCII: dates and base64 are written by this module.
    std::str::from_utf8(bytes).unwrap_or_default()
}

impl SigningKey {
    /// Decodes and checks a base64 access key. Errors never include the key or any part of it.
    fn decode(key: &str) -> Result<SigningKey, Error> {
        let key = key.trim();
        let invalid = |what: String| Error::invalid_input(NAME, what).with_fix(KEY_FIX);
        if key.is_empty() {
            return Err(invalid("the access key is empty".to_owned()));
        }
        // Compared in place: a lower-cased copy would be one more copy of the secret.
        if key
            .as_bytes()
            .windows(10)
            .any(|w| w.eq_ignore_ascii_case(b"accesskey="))
        {
            return Err(Error::invalid_input(
                NAME,
                "the access key looks like a connection string",
            )
            .with_fix("use AccessKeyCredential::from_connection_string (or the builder's connection_string) for it"));
        }
        const ENGINE: GeneralPurpose = GeneralPurpose::new(
            &alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let mut bytes = ENGINE.decode(key).map_err(|e| {
            use base64::DecodeError::*;
            // Positions only: the offending character could be part of the secret.
            invalid(match e {
                InvalidByte(offset, _) => format!(
                    "the access key is not base64: the character at position {} is not in the standard base64 alphabet (A-Z, a-z, 0-9, +, /)",
                    offset + 1
                ),
                InvalidLength(_) => format!(
                    "the access key is not base64: {} characters cannot be base64 (is it cut short?)",
                    key.len()
                ),
                InvalidLastSymbol { .. } => {
                    "the access key is not base64: its last character is not valid there (is it cut short?)".to_owned()
                }
                InvalidPadding => {
                    "the access key is not base64: its '=' padding is wrong".to_owned()
                }
            })
        })?;
        if bytes.len() < MIN_KEY_BYTES {
            let len = bytes.len();
            bytes.fill(0);
            return Err(invalid(format!(
                "the access key decodes to {len} bytes, too short for an access key (Azure's are 64 bytes, 88 base64 characters)"
            )));
        }
        let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
        // Best effort: do not leave the decoded key lying in freed memory.
        bytes.fill(0);
        std::hint::black_box(&bytes);
        Ok(SigningKey(hmac_key))
    }
}

/// A parsed connection string; `key` borrows from the input.
struct ConnectionString<'a> {
    endpoint: Url,
    key: &'a str,
}

impl<'a> ConnectionString<'a> {
    fn parse(text: &'a str) -> Result<Self, Error> {
        let invalid =
            |what: String| Error::invalid_input(NAME, what).with_fix(CONNECTION_STRING_FIX);
        let mut endpoint = None;
        let mut key = None;
        for (i, part) in text
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            // The value may contain '=' (base64 padding): split at the first one only.
            let Some((name, value)) = part.split_once('=') else {
                return Err(invalid(format!(
                    "part {} of the connection string is not a name=value setting",
                    i + 1
                )));
            };
            let name = name.trim();
            let slot = if name.eq_ignore_ascii_case("endpoint") {
                &mut endpoint
            } else if name.eq_ignore_ascii_case("accesskey") {
                &mut key
            } else {
                // Only a plausible setting name is repeated back: anything else could be a
                // piece of the key.
                let shown = if !name.is_empty()
                    && name.len() <= 32
                    && name.chars().all(|c| c.is_ascii_alphabetic())
                {
                    format!("an unknown setting {name:?}")
                } else {
                    "an unknown setting".to_owned()
                };
                return Err(invalid(format!(
                    "the connection string has {shown} (part {}); only endpoint and accesskey are understood",
                    i + 1
                )));
            };
            if slot.replace(value.trim()).is_some() {
                return Err(invalid(format!(
                    "the connection string sets {} twice",
                    name.to_ascii_lowercase()
                )));
            }
        }
        let (endpoint, key) = match (endpoint, key) {
            (Some(e), Some(k)) => (e, k),
            (None, Some(_)) => {
                return Err(invalid("the connection string has no endpoint=".to_owned()));
            }
            (Some(_), None) => {
                return Err(invalid(
                    "the connection string has no accesskey=".to_owned(),
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "the connection string has neither endpoint= nor accesskey=".to_owned(),
                ));
            }
        };
        Ok(ConnectionString {
            endpoint: parse_endpoint(endpoint)?,
            key,
        })
    }
}

/// An `https` base URL without credentials, query or fragment (`http` for loopback only).
fn parse_endpoint(raw: &str) -> Result<Url, Error> {
    let invalid = |what: String| {
        Error::invalid_input(NAME, what).with_fix(
            "use the resource's endpoint as the portal shows it: https://<resource>.communication.azure.com/",
        )
    };
    // Not repeated back when it does not parse: a mangled connection string could put part
    // of the key here.
    let url = Url::parse(raw.trim())
        .map_err(|_| invalid("the endpoint is not an absolute URL".to_owned()))?;
    let Some(host) = url.host() else {
        return Err(invalid("the endpoint has no host".to_owned()));
    };
    let loopback = match &host {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(invalid(format!(
                "the endpoint http://{host}/ is plain http, which is accepted for loopback hosts only"
            )));
        }
        _ => return Err(invalid("the endpoint's scheme is not https".to_owned())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "the endpoint must not contain a user name or password".to_owned(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "the endpoint of {host} has a query or fragment; it must be a base URL"
        )));
    }
    Ok(url)
}

fn url_host(url: &Url) -> Result<(&str, Option<u16>), Error> {
    match url.host_str() {
        Some(host) if !host.is_empty() => Ok((host, url.port())),
        _ => Err(Error::invalid_input(
            NAME,
            "cannot sign a request to a URL without a host",
        )),
    }
}

fn validate_method(method: &str) -> Result<(), Error> {
    // RFC 9110 token characters.
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if method.is_empty() || !method.bytes().all(token) {
        return Err(
            Error::invalid_input(NAME, "the method is not an HTTP method name")
                .with_fix("pass the method as sent, e.g. \"GET\" or \"POST\""),
        );
    }
    Ok(())
}

/// The signing function itself: no allocation, no clock, no validation.
fn sign(
    key: &hmac::Key,
    method: &str,
    (host, port): (&str, Option<u16>),
    path_and_query: &str,
    body: &[u8],
    date: OffsetDateTime,
) -> SignedHeaders {
    let date = rfc1123(date);
    let mut content_sha256 = [0u8; DIGEST_B64_LEN];
    encode_digest(
        digest::digest(&digest::SHA256, body).as_ref(),
        &mut content_sha256,
    );

    let mut mac = hmac::Context::with_key(key);
    for chunk in method.as_bytes().chunks(16) {
        let mut upper = [0u8; 16];
        let upper = &mut upper[..chunk.len()];
        upper.copy_from_slice(chunk);
        upper.make_ascii_uppercase();
        mac.update(upper);
    }
    mac.update(b"\n");
    mac.update(path_and_query.as_bytes());
    mac.update(b"\n");
    mac.update(&date);
    mac.update(b";");
    mac.update(host.as_bytes());
    if let Some(port) = port {
        let mut digits = [0u8; 6];
        mac.update(port_with_colon(port, &mut digits));
    }
    mac.update(b";");
    mac.update(&content_sha256);

    let mut authorization = [0u8; AUTHORIZATION_LEN];
    let (prefix, signature) = authorization.split_at_mut(AUTHORIZATION_PREFIX.len());
    prefix.copy_from_slice(AUTHORIZATION_PREFIX.as_bytes());
    encode_digest(mac.sign().as_ref(), signature);
    SignedHeaders {
        date,
        content_sha256,
        authorization,
    }
}

/// Base64 of a 32-byte digest into exactly 44 bytes.
fn encode_digest(digest: &[u8], out: &mut [u8]) {
    let written = STANDARD
        .encode_slice(digest, out)
        .expect("44 bytes hold the base64 of 32");
    debug_assert_eq!(written, DIGEST_B64_LEN);
}

/// `:<port>` in `buf`, returned as the slice written.
fn port_with_colon(port: u16, buf: &mut [u8; 6]) -> &[u8] {
    let mut n = port;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    i -= 1;
    buf[i] = b':';
    &buf[i..]
}

/// An RFC 1123 date in GMT, `Tue, 01 Jan 2030 00:00:00 GMT` (English names whatever the
/// locale, as HTTP requires).
fn rfc1123(date: OffsetDateTime) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let date = date.checked_to_offset(UtcOffset::UTC).unwrap_or(date);
    let mut out = *b"Mon, 00 Jan 0000 00:00:00 GMT";
    out[0..3].copy_from_slice(DAYS[usize::from(date.weekday().number_days_from_monday())]);
    two_digits(&mut out[5..7], date.day());
    out[8..11].copy_from_slice(MONTHS[usize::from(u8::from(date.month()) - 1)]);
    // HTTP dates have four-digit years; the clock will not leave 0..=9999.
    let year = date.year().clamp(0, 9999) as u16;
    two_digits(&mut out[12..14], (year / 100) as u8);
    two_digits(&mut out[14..16], (year % 100) as u8);
    two_digits(&mut out[17..19], date.hour());
    two_digits(&mut out[20..22], date.minute());
    two_digits(&mut out[23..25], date.second());
    out
}

fn two_digits(out: &mut [u8], n: u8) {
    out[0] = b'0' + n / 10;
    out[1] = b'0' + n % 10;
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const KEY: &str =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

    #[test]
    fn dates_are_rfc1123_in_gmt() {
        assert_eq!(
            &rfc1123(datetime!(2030-01-01 0:00 UTC)),
            b"Tue, 01 Jan 2030 00:00:00 GMT"
        );
        assert_eq!(
            &rfc1123(datetime!(2000-02-29 23:59:59.999 UTC)),
            b"Tue, 29 Feb 2000 23:59:59 GMT"
        );
        // Another offset is converted to GMT first.
        assert_eq!(
            &rfc1123(datetime!(2024-03-01 13:05:06 +01:00)),
            b"Fri, 01 Mar 2024 12:05:06 GMT"
        );
        assert_eq!(
            &rfc1123(datetime!(1999-12-05 07:08:09 UTC)),
            b"Sun, 05 Dec 1999 07:08:09 GMT"
        );
    }

    #[test]
    fn ports_are_written_with_a_colon() {
        let mut buf = [0u8; 6];
        assert_eq!(port_with_colon(0, &mut buf), b":0");
        assert_eq!(port_with_colon(8443, &mut buf), b":8443");
        assert_eq!(port_with_colon(65535, &mut buf), b":65535");
    }

    #[test]
    fn host_and_port_are_signed_as_one_string() {
        let credential = AccessKeyCredential::new(KEY).unwrap();
        let date = datetime!(2030-01-01 0:00 UTC);
        let key = credential.inner.key.read().clone();
        let split = sign(&key.0, "GET", ("h", Some(8443)), "/", b"", date);
        let joined = credential.sign_parts("GET", "h:8443", "/", b"", date);
        assert_eq!(split.authorization(), joined.authorization());
        let lower = credential.sign_parts("get", "h:8443", "/", b"", date);
        assert_eq!(lower.authorization(), joined.authorization());
    }

    #[test]
    fn header_lengths_fit_exactly() {
        let credential = AccessKeyCredential::new(KEY).unwrap();
        let headers = credential.sign_parts("GET", "h", "/", b"", datetime!(2030-01-01 0:00 UTC));
        assert!(headers.authorization().starts_with(AUTHORIZATION_PREFIX));
        assert!(headers.authorization().ends_with('='));
        assert_eq!(
            headers.content_sha256(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn methods_must_be_tokens() {
        for bad in ["", "GET /", "GE\nT", "PÖST"] {
            assert!(validate_method(bad).is_err(), "{bad:?}");
        }
        for good in ["GET", "post", "M-SEARCH"] {
            assert!(validate_method(good).is_ok(), "{good:?}");
        }
    }
}
