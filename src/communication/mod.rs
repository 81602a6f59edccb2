//! Azure Communication Services: access keys that sign requests, and user access tokens.

mod access_key;
mod user_token;

pub use access_key::{AccessKeyCredential, AccessKeyCredentialBuilder, SignedHeaders};
pub use user_token::{UserTokenCredential, UserTokenCredentialBuilder};
