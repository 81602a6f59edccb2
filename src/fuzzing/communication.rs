//! Azure Communication Services: a connection string, and a request signed with its key.

use super::{BASE_UNIX_NANOS, Input, clock_at, consume, text};
use crate::AccessKeyCredential;

/// An Azure Communication Services connection string, and a request signed with it.
///
/// Layout: `[i64 now: nanoseconds after BASE][field method][field URL][connection string]`;
/// without a URL the request goes to the connection string's endpoint.
pub fn access_key(data: &[u8]) {
    let mut input = Input::new(data);
    let clock = clock_at(BASE_UNIX_NANOS.wrapping_add(input.i64()));
    let method = input.field().map(text);
    let url = input.field().map(text);
    let connection_string = text(input.rest()).into_owned();
    let credential = match AccessKeyCredential::builder()
        .connection_string(connection_string)
        .clock(clock.clock())
        .build()
    {
        Ok(credential) => credential,
        Err(error) => {
            std::hint::black_box(error.to_string());
            return;
        }
    };
    let url = match url.as_deref().map(url::Url::parse) {
        Some(Ok(url)) => url,
        Some(Err(_)) => return,
        None => match credential.endpoint() {
            Some(endpoint) => endpoint.clone(),
            None => return,
        },
    };
    let method = method.as_deref().unwrap_or("POST");
    consume(credential.sign(method, &url, b"{}"));
}
