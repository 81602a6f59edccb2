//! Signing users in: the device code endpoint's answer, the browser redirect's request (which
//! anything on the machine may send), the id token and `client_info` of a sign-in's answer,
//! and saved authentication records.

use super::{Input, text};
use crate::AuthenticationRecord;
use crate::Secret;
use crate::entra::user::{Account, parse_device_code, parse_redirect_request};
use crate::system::{HttpResponse, ManualClock};

const CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// The device code endpoint's 200 answer. Checks that no error depends on (so quotes) the
/// device code.
///
/// Layout: `[body]`.
pub fn device_code(data: &[u8]) {
    // 2030-01-01 00:00 UTC, without `time`'s macros (not a feature of the library's `time`).
    let clock =
        ManualClock::new(time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_893_456_000));
    let parse = |body: &[u8]| {
        let response = HttpResponse::for_fuzzing(
            200,
            &[("content-type", b"application/json")],
            body,
            clock.clock(),
        );
        parse_device_code(&response)
            .err()
            .map(|error| error.to_string())
    };
    let Some(printed) = parse(data) else {
        return;
    };
    // The message must not depend on the device code: the same answer with another code
    // prints the same (a code may be a word of the message's own text by chance).
    let Ok(serde_json::Value::Object(mut body)) = serde_json::from_slice::<serde_json::Value>(data)
    else {
        return;
    };
    // Only a code the parser accepts is swapped for another it accepts (an invalid one is an
    // error of its own, which names the field, not the value).
    if let Some(code) = body.get_mut("device_code")
        && code
            .as_str()
            .is_some_and(|c| !c.is_empty() && c.len() <= 8 * 1024)
    {
        *code = serde_json::Value::String("another-device-code-value".to_owned());
        let other = parse(&serde_json::to_vec(&body).unwrap_or_default());
        assert_eq!(
            other.as_deref(),
            Some(printed.as_str()),
            "an error depends on the device code"
        );
    }
}

/// A request to the browser sign-in's redirect listener, as its head arrives (any bytes).
/// Checks that kept error texts hold no control character.
///
/// Layout: `[field expected path][request head]`.
pub fn redirect_request(data: &[u8]) {
    let mut input = Input::new(data);
    let path = input
        .field()
        .map(text)
        .unwrap_or(std::borrow::Cow::Borrowed("/"));
    if let Ok(query) = parse_redirect_request(input.rest(), &path) {
        for kept in [&query.error, &query.error_description]
            .into_iter()
            .flatten()
        {
            assert!(
                !kept.chars().any(char::is_control),
                "a control character was kept"
            );
        }
    }
}

/// The id token and `client_info` of a user grant's answer, read as the account who signed in,
/// and the same bytes as a saved authentication record. Checks that a user name holds no
/// control character and that a record read back serializes to an equal record.
///
/// Layout: `[u8 nonce: 0 none, else "n"][field client_info][id token or record]`.
pub fn user_account(data: &[u8]) {
    let mut input = Input::new(data);
    let nonce = (input.u8() != 0).then_some("n");
    let client_info = input.field().map(text);
    let rest = text(input.rest());
    let id_token = Secret::new(rest.as_ref());
    if let Ok(account) =
        Account::from_answer(Some(&id_token), client_info.as_deref(), CLIENT_ID, nonce)
    {
        assert!(!account.username.chars().any(char::is_control));
        assert!(!account.home_account_id.is_empty());
    }
    if let Ok(record) = AuthenticationRecord::deserialize(&rest) {
        let again = AuthenticationRecord::deserialize(&record.serialize());
        assert_eq!(
            again.ok().as_ref(),
            Some(&record),
            "a record did not read back"
        );
    }
}
