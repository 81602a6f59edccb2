//! What the whole-credential targets check of every outcome: no panic turned into an error,
//! refresh times within a token's life, and no secret of the answer in an error.

use super::strip_bom;
use crate::{AccessToken, Error};

/// What a user can see of an error: its message and its `Debug`.
pub(super) fn shown(error: &Error) -> String {
    format!("{error}\n{error:?}")
}

/// Every string of a JSON document, keys included.
fn json_strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_strings(v, out)),
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                out.push(key);
                json_strings(value, out);
            }
        }
        _ => {}
    }
}

/// The values of `fields` of a JSON object body (after a UTF-8 BOM) that a leak check can tell
/// apart from the rest of the answer: at least 8 bytes, written once in the body, and inside
/// no other string of it (an endpoint that also puts its token in `error_description` as a
/// plain word cannot be told from one that describes an error there).
fn body_secrets(body: &[u8], fields: &[&str]) -> Vec<String> {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(strip_bom(body)) else {
        return Vec::new();
    };
    let mut strings = Vec::new();
    json_strings(&json, &mut strings);
    fields
        .iter()
        .filter_map(|field| json.get(*field)?.as_str())
        .filter(|secret| secret.len() >= 8)
        .filter(|secret| occurrences(body, secret.as_bytes()) == 1)
        .filter(|secret| strings.iter().filter(|s| s.contains(*secret)).count() == 1)
        .map(str::to_owned)
        .collect()
}

fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len().max(1))
        .filter(|w| *w == needle)
        .count()
}

/// `secret` with its ASCII letters and digits moved one along (`a`→`b`, `z`→`a`, `9`→`0`):
/// the same shape, another value.
pub(super) fn twin(secret: &str) -> String {
    secret
        .chars()
        .map(|c| match c {
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            'a'..='y' | 'A'..='Y' | '0'..='8' => char::from(c as u8 + 1),
            c => c,
        })
        .collect()
}

/// Panics when a secret of the response body (the values of `fields`, see [`body_secrets`])
/// reaches `error`. A value the error shows is checked again by running the case with that
/// value changed in the body ([`twin`]): the changed value must not show. The first look
/// alone would blame a token that happens to be a word of the message (`Credential`).
pub(super) fn assert_no_body_secret(
    error: &Error,
    body: &[u8],
    fields: &[&str],
    rerun: impl Fn(&[u8]) -> Result<AccessToken, Error>,
) {
    let first = shown(error);
    for secret in body_secrets(body, fields) {
        if !first.contains(&secret) {
            continue;
        }
        let twin = twin(&secret);
        if twin == secret {
            continue;
        }
        let Some(at) = body
            .windows(secret.len())
            .position(|w| w == secret.as_bytes())
        else {
            continue;
        };
        let changed = [&body[..at], twin.as_bytes(), &body[at + secret.len()..]].concat();
        if let Err(again) = rerun(&changed) {
            let shown = shown(&again);
            assert!(
                !shown.contains(&twin),
                "a secret of the response body ({twin:?}) reached the error: {shown}"
            );
        }
    }
}

/// The message of the error a panic inside a credential becomes (`cache::flight::panicked`).
const PANICKED: &str = "the token source panicked while fetching a token";

/// Panics when `error` is the one a panic inside the credential becomes (the cache catches
/// panics; under cargo-fuzz the panic hook has aborted already). The whole message is
/// compared: an answer's own text (`"message": "... panicked"`) may be part of an error's.
pub(super) fn assert_not_a_panic(error: &Error) {
    assert!(
        error.message() != PANICKED,
        "the credential panicked: {error}"
    );
}

/// Panics when a fetched token's refresh time is outside `[requested_at, expires_on]` (for a
/// token that had not expired when it arrived).
pub(super) fn assert_refresh_in_range(token: &AccessToken, requested_at: time::OffsetDateTime) {
    if token.expires_on() <= requested_at {
        return;
    }
    if let Some(refresh_on) = token.refresh_on() {
        assert!(
            requested_at <= refresh_on && refresh_on <= token.expires_on(),
            "refresh_on {refresh_on} is outside [{requested_at}, {}]",
            token.expires_on()
        );
    }
}
