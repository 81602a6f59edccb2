//! [`HmacAuth`]: a reqwest-middleware middleware that signs each attempt with a Communication
//! Services access key.

use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use super::middleware_error;
use crate::AccessKeyCredential;

/// A [`reqwest_middleware::Middleware`] that signs each request for Azure Communication
/// Services (or App Configuration) with an [`AccessKeyCredential`]: `x-ms-date`,
/// `x-ms-content-sha256` and `Authorization: HMAC-SHA256 …` (marked sensitive), as
/// [`AccessKeyCredential::sign_request`] does.
///
/// The signature covers the date, and the service refuses a date more than 15 minutes off, so
/// every attempt must be signed anew: **add it after a retry middleware** in the builder
/// (`.with(retry).with(HmacAuth::new(key))`), so each attempt the retry middleware makes
/// passes through it and is signed with the time it is sent. A retry middleware added after
/// it would resend the first attempt's date and signature.
///
/// ```no_run
/// use azure_credentials::{AccessKeyCredential, interop::HmacAuth};
///
/// # async fn run(connection_string: String) -> Result<(), Box<dyn std::error::Error>> {
/// let key = AccessKeyCredential::from_connection_string(connection_string)?;
/// let url = key.endpoint().unwrap().join("identities?api-version=2023-10-01")?;
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(HmacAuth::new(key))
///     .build();
/// let response = client.post(url).body("{}").send().await?;
/// # let _ = response; Ok(()) }
/// ```
///
/// # Errors
///
/// [`reqwest_middleware::Error::Middleware`] holding this crate's [`Error`](crate::Error) of kind
/// [`InvalidInput`](crate::ErrorKind::InvalidInput), and nothing is sent, when:
/// - the request cannot be signed (see [`AccessKeyCredential::sign_request`]: a streaming body,
///   a lower-case method, no host);
/// - the URL is plain `http` to a host that is neither loopback nor link-local, unless
///   [`with_allow_plain_http(true)`](Self::with_allow_plain_http): anyone on the path could
///   replay the signed request for the 15 minutes its date is accepted.
#[derive(Debug, Clone)]
pub struct HmacAuth {
    credential: AccessKeyCredential,
    allow_plain_http: bool,
}

impl HmacAuth {
    /// A middleware signing with `credential` (clones share its key, so
    /// [`rotate`](AccessKeyCredential::rotate) on any clone takes effect from the next request).
    pub fn new(credential: AccessKeyCredential) -> Self {
        HmacAuth {
            credential,
            allow_plain_http: false,
        }
    }

    /// Whether a signed request may go over plain `http` to a host that is neither loopback nor
    /// link-local (default: no — such a request fails before it is signed). Turn it on only for
    /// a network you trust end to end (a TLS-terminating sidecar, a test).
    pub fn with_allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// The access key credential.
    pub fn credential(&self) -> &AccessKeyCredential {
        &self.credential
    }
}

#[async_trait::async_trait]
impl Middleware for HmacAuth {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        super::refuse_plain_http(
            request.url(),
            self.allow_plain_http,
            "HmacAuth",
            "a signed request",
        )
        .map_err(middleware_error)?;
        self.credential
            .sign_request(&mut request)
            .map_err(middleware_error)?;
        next.run(request, extensions).await
    }
}
