//! [`AccessKeyCredential`] and [`SignedHeaders`]: signing requests with an access key, the way
//! trusted services authenticate to Azure Communication Services.
//!
//! This file is the credential (its key, endpoint and clock, rotation, and signing a URL or a
//! reqwest request); `signing.rs` is the HMAC scheme itself and `connection_string.rs` reads
//! connection strings and checks endpoints.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use time::OffsetDateTime;
use url::{Position, Url};

use crate::setters::option_setter;
use crate::system::Clock;
use crate::{Error, Secret};

mod connection_string;
mod signing;

use connection_string::{ConnectionString, parse_endpoint};
pub use signing::SignedHeaders;
use signing::{SigningKey, sign};

const NAME: &str = "AccessKeyCredential";

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
    option_setter!(
        /// The access key, base64 as the portal shows it.
        key: Secret => key
    );

    option_setter!(
        /// A connection string,
        /// `endpoint=https://<resource>.communication.azure.com/;accesskey=<key>`, instead of a
        /// key and an endpoint.
        connection_string: Secret => connection_string
    );

    option_setter!(
        /// The resource's endpoint, `https://<resource>.communication.azure.com/`, for callers
        /// that build request URLs from [`AccessKeyCredential::endpoint`]. Optional with a key.
        endpoint: String => endpoint
    );

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

#[cfg(test)]
mod tests {
    use super::signing::AUTHORIZATION_PREFIX;
    use super::*;
    use time::macros::datetime;

    const KEY: &str =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

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
