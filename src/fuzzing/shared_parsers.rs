//! Parsers every credential's answers go through: `Retry-After`, the one scrubber of untrusted
//! text, and the claims of a JWT.

use super::{BASE_UNIX_NANOS, Input, clock_at, text};
use crate::system::HttpResponse;

/// `Retry-After` (seconds or an HTTP date, measured against the clock) and the millisecond
/// variants `retry-after-ms` and `x-ms-retry-after-ms`.
///
/// Layout: `[i64 now: nanoseconds after BASE][u8 header: 0 Retry-After, 1 retry-after-ms,
/// 2 x-ms-retry-after-ms, 3 all three][value]`.
pub fn retry_after(data: &[u8]) {
    let mut input = Input::new(data);
    let clock = clock_at(BASE_UNIX_NANOS.wrapping_add(input.i64()));
    let which = input.u8() & 0b11;
    let value = input.rest();
    let names: &[&str] = match which {
        0 => &["retry-after"],
        1 => &["retry-after-ms"],
        2 => &["x-ms-retry-after-ms"],
        _ => &["retry-after-ms", "x-ms-retry-after-ms", "retry-after"],
    };
    let headers: Vec<(&str, &[u8])> = names.iter().map(|n| (*n, value)).collect();
    let response = HttpResponse::for_fuzzing(429, &headers, b"", clock.clock());
    std::hint::black_box(response.retry_after());
}

/// The one scrubber of untrusted text (`scrub::line`, `scrub::sentence`), and its promises:
/// one line; no control characters or invisible format characters; at most
/// `scrub::MAX_BYTES` bytes and an ellipsis; no `eyJ` (the start of a JWT) left anywhere, so
/// in particular no word of the input that starts with `eyJ` and is 16 bytes or longer.
///
/// Layout: `[text]`.
pub fn scrub(data: &[u8]) {
    let text = text(data);
    let jwt_words: Vec<&str> = text
        .split(char::is_whitespace)
        .filter(|w| w.starts_with("eyJ") && w.len() >= 16)
        .collect();
    for (how, out) in [
        ("line", crate::scrub::line(&text)),
        ("sentence", crate::scrub::sentence(&text)),
    ] {
        assert!(
            out.len() <= crate::scrub::MAX_BYTES + '…'.len_utf8(),
            "scrub::{how}: {} bytes",
            out.len()
        );
        assert!(
            !out.chars().any(crate::scrub::is_line_break),
            "scrub::{how}: more than one line: {out:?}"
        );
        assert!(
            !out.chars()
                .any(|c| c.is_control() || crate::scrub::is_invisible_format(c)),
            "scrub::{how}: a control or invisible character: {out:?}"
        );
        for word in &jwt_words {
            assert!(
                !out.contains(word),
                "scrub::{how}: {word:?} survived: {out:?}"
            );
        }
        assert!(!out.contains("eyJ"), "scrub::{how}: eyJ survived: {out:?}");
    }
}

/// The claims of a JWT (tenant, client id, expiry), read without verifying it.
///
/// Layout: `[token]`.
pub fn jwt_claims(data: &[u8]) {
    if let Some(claims) = crate::jwt::Claims::of(&text(data)) {
        std::hint::black_box(claims.client_id());
        std::hint::black_box(claims.expires_on());
    }
}
