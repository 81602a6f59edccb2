//! Adapters that hand this crate's credentials to the rest of the Rust ecosystem.
//!
//! | feature | type | what takes it |
//! | --- | --- | --- |
//! | `azure_core` | [`AzureCoreCredential`] | the official Azure SDK for Rust: any client that takes an `Arc<dyn azure_core::credentials::TokenCredential>` (azure_core 1.x) |
//! | `object_store` | [`ObjectStoreCredential`] | Apache Arrow's `object_store` (DataFusion, delta-rs, Polars): `MicrosoftAzureBuilder::with_credentials` (object_store 0.14) |
//! | `reqwest-middleware` | [`BearerAuth`] | plain REST calls with reqwest: `reqwest_middleware::ClientBuilder::with` (reqwest-middleware 0.5, reqwest 0.13); also answers CAE and Key Vault challenges |
//! | `reqwest-middleware` and `communication` | [`HmacAuth`] | Azure Communication Services REST calls signed with an [`AccessKeyCredential`](crate::AccessKeyCredential) |
//!
//! All but `HmacAuth` wrap any [`TokenCredential`](crate::TokenCredential) — a
//! [`DefaultAzureCredential`](crate::DefaultAzureCredential), one source, a chain, or your own —
//! and ask it for a token on every call. That is cheap: the credential's
//! [cache](crate::TokenCache) answers at once while the token is fresh, refreshes it in the
//! background before it expires, and lets concurrent callers share one fetch. The adapters do
//! not decide freshness themselves, so nothing they do defeats the cache: many requests, many
//! SDK clients or stores, and concurrent callers still cost one token request per identity and
//! scope.

#[cfg(feature = "azure_core")]
mod azure_core;
#[cfg(feature = "reqwest-middleware")]
mod bearer_auth;
#[cfg(all(feature = "reqwest-middleware", feature = "communication"))]
mod hmac_auth;
#[cfg(feature = "object_store")]
mod object_store;
// The challenge reader is HTTP-client independent, and fuzzed (src/fuzzing/, fuzz/).
#[cfg(any(feature = "reqwest-middleware", test, fuzzing))]
pub(crate) mod challenge;
#[cfg(any(feature = "reqwest-middleware", test, fuzzing))]
mod www_authenticate;

#[cfg(feature = "azure_core")]
#[cfg_attr(docsrs, doc(cfg(feature = "azure_core")))]
pub use self::azure_core::AzureCoreCredential;
#[cfg(feature = "reqwest-middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
pub use self::bearer_auth::BearerAuth;
#[cfg(all(feature = "reqwest-middleware", feature = "communication"))]
#[cfg_attr(
    docsrs,
    doc(cfg(all(feature = "reqwest-middleware", feature = "communication")))
)]
pub use self::hmac_auth::HmacAuth;
#[cfg(feature = "object_store")]
#[cfg_attr(docsrs, doc(cfg(feature = "object_store")))]
pub use self::object_store::ObjectStoreCredential;

/// This crate's error as a middleware error (`reqwest_middleware::Error::Middleware`), where
/// callers find it with `downcast_ref::<Error>()`.
#[cfg(feature = "reqwest-middleware")]
fn middleware_error(error: crate::Error) -> reqwest_middleware::Error {
    reqwest_middleware::Error::Middleware(anyhow::Error::new(error))
}

/// Refuses `url` when it is plain http to a host that is neither loopback nor link-local and
/// `allowed` is off: `middleware` would put `what` (a token, a signature) on the network in
/// clear text. The one check of both middlewares; nothing is fetched or signed before it.
#[cfg(feature = "reqwest-middleware")]
fn refuse_plain_http(
    url: &url::Url,
    allowed: bool,
    middleware: &'static str,
    what: &str,
) -> Result<(), crate::Error> {
    if url.scheme() == "https" || allowed || crate::system::is_local(url) {
        return Ok(());
    }
    Err(crate::Error::invalid_input(
        middleware,
        format!(
            "refused to send {what} to {}://{}: plain http to a host that is neither loopback nor link-local would put it on the network in clear text",
            crate::scrub::line(url.scheme()),
            crate::scrub::line(url.host_str().unwrap_or_default())
        ),
    )
    .with_fix(format!(
        "use an https URL, or {middleware}::with_allow_plain_http(true) for a network you trust end to end"
    )))
}
