//! [`HmacAuth`]: a reqwest-middleware middleware that signs each attempt with a Communication
//! Services access key.

use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

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
/// [`InvalidInput`](crate::ErrorKind::InvalidInput) when the request cannot be signed (see
/// [`AccessKeyCredential::sign_request`]: a streaming body, a lower-case method, no host);
/// nothing is sent then.
#[derive(Debug, Clone)]
pub struct HmacAuth {
    credential: AccessKeyCredential,
}

impl HmacAuth {
    /// A middleware signing with `credential` (clones share its key, so
    /// [`rotate`](AccessKeyCredential::rotate) on any clone takes effect from the next request).
    pub fn new(credential: AccessKeyCredential) -> Self {
        HmacAuth { credential }
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
        self.credential
            .sign_request(&mut request)
            .map_err(|error| reqwest_middleware::Error::Middleware(anyhow::Error::new(error)))?;
        next.run(request, extensions).await
    }
}
