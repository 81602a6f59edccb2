//! What the reqwest-middleware tests share (feature `reqwest-middleware`).

use azure_credentials::Error;

/// This crate's error inside a middleware error; panics on any other error.
pub fn ours(error: &reqwest_middleware::Error) -> &Error {
    match error {
        reqwest_middleware::Error::Middleware(e) => e.downcast_ref::<Error>().unwrap(),
        other => panic!("not a middleware error: {other:?}"),
    }
}
