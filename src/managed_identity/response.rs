//! Reading managed identity endpoints' answers: token bodies of every shape and error bodies.

use serde::Deserialize;
use serde_json::{Map, Value};
use time::{OffsetDateTime, UtcOffset};

/// The UTF-8 byte order mark some servers put before a JSON body; Python's json (and so
/// azure-identity) accepts it, and so do we.
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Longest accepted `refresh_in` (the sanity bound Entra responses get too).
const MAX_REFRESH_IN_SECS: i64 = 10 * 365 * 24 * 3600;

/// What a response body is, judged from its bytes alone (never echoed: it may hold a token).
#[derive(Debug)]
pub(crate) enum Shape {
    /// A JSON object (after an optional BOM and white space).
    Object(Map<String, Value>),
    /// JSON, or the start of it, that is not an object: `[]`, `null`, a string, or a body
    /// starting with `{` or `[` that does not parse (cut short, malformed).
    BrokenJson(&'static str),
    /// Markup: a body starting with `<` (an HTML page from a proxy or captive portal, XML).
    Markup,
    /// No body at all (or only white space).
    Empty,
    /// Text that is none of the above.
    Text,
}

/// Sorts a body into a [`Shape`].
pub(crate) fn shape(body: &[u8]) -> Shape {
    let body = body.strip_prefix(BOM).unwrap_or(body);
    let Some(&first) = body.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Shape::Empty;
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Shape::Object(object),
        Ok(Value::Array(_)) => Shape::BrokenJson("a JSON array"),
        Ok(Value::Null) => Shape::BrokenJson("JSON null"),
        Ok(_) => Shape::BrokenJson("a JSON value that is not an object"),
        Err(_) if matches!(first, b'{' | b'[') => {
            Shape::BrokenJson("JSON that is cut short or malformed")
        }
        Err(_) if first == b'<' => Shape::Markup,
        Err(_) => Shape::Text,
    }
}

/// A token body as any managed identity endpoint sends it. Values arrive as numbers or strings
/// depending on the source (IMDS sends strings), so they are read loosely and parsed after.
#[derive(Deserialize)]
pub(crate) struct TokenBody {
    pub(crate) access_token: Option<String>,
    expires_on: Option<Value>,
    expires_in: Option<Value>,
    refresh_in: Option<Value>,
    pub(super) token_type: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) object_id: Option<String>,
    pub(super) msi_res_id: Option<String>,
    pub(super) mi_res_id: Option<String>,
}

impl TokenBody {
    /// Reads a token response's fields from a body whose [`shape`] is an object; `None` when
    /// a field the credential uses has the wrong type (an `access_token` that is a number, say)
    /// or appears twice (which copy would count is up to the parser: refuse both).
    pub(crate) fn parse(body: &[u8]) -> Option<TokenBody> {
        let body = body.strip_prefix(BOM).unwrap_or(body);
        serde_json::from_slice(body).ok()
    }

    /// When the token expires: `expires_on` as epoch seconds (number or digit string) or one
    /// of the date shapes Azure ML sends; else `expires_in` after `requested_at`. An
    /// `expires_on` already past at `requested_at` (`"0"`, a wrong date) gives way to an
    /// `expires_in` when there is one: the cache would otherwise treat a good token as expired.
    /// `None` when neither gives a time that exists (negative, or past the year 9999).
    pub(crate) fn expires_on(&self, requested_at: OffsetDateTime) -> Option<OffsetDateTime> {
        let from_expires_on = self
            .expires_on
            .as_ref()
            .and_then(|value| match as_seconds(value) {
                Some(secs) => OffsetDateTime::from_unix_timestamp(secs).ok(),
                None => value.as_str().and_then(parse_date),
            });
        let from_expires_in = || {
            let secs = self.expires_in.as_ref().and_then(as_seconds)?;
            requested_at.checked_add(time::Duration::seconds(secs))
        };
        match from_expires_on {
            Some(at) if at > requested_at => Some(at),
            past => from_expires_in().or(past),
        }
    }

    /// When the token should be refreshed, from the provider's `refresh_in`: like Entra
    /// responses, only a positive number of seconds (at most ten years) that ends before
    /// `expires_on` counts; anything else is ignored (no refresh hint).
    pub(crate) fn refresh_on(
        &self,
        requested_at: OffsetDateTime,
        expires_on: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let value = self.refresh_in.as_ref().filter(|v| !v.is_null())?;
        let refresh_on = as_seconds(value)
            .filter(|secs| (1..=MAX_REFRESH_IN_SECS).contains(secs))
            .and_then(|secs| requested_at.checked_add(time::Duration::seconds(secs)))
            .filter(|at| *at < expires_on);
        if refresh_on.is_none() {
            tracing::debug!(
                credential = super::source::NAME,
                "ignoring an invalid refresh_in in the token response"
            );
        }
        refresh_on
    }
}

/// A whole, non-negative number of seconds, sent as a JSON number or a string of digits.
/// Fractions are dropped; a number too large for an `i64` is none.
fn as_seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => {
            if let Some(secs) = n.as_i64() {
                return (secs >= 0).then_some(secs);
            }
            // A float (or an integer above i64::MAX): whole seconds if it fits.
            let f = n.as_f64().filter(|f| f.is_finite() && *f >= 0.0)?;
            let whole = f.trunc();
            // i64::MAX as f64 rounds up to 2^63, which does not fit.
            (whole < i64::MAX as f64).then_some(whole as i64)
        }
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        }
        _ => None,
    }
}

/// The date strings seen in `expires_on`: `MM/dd/yyyy HH:mm:ss +00:00` (Azure ML on Linux),
/// `M/d/yyyy h:mm:ss AM +00:00` (Azure ML on Windows), `yyyy-MM-dd HH:mm:ss` and RFC 3339.
/// Without an offset the time is UTC. The result is in UTC, and `None` when that is outside the
/// years `time` supports (a local 9999-12-31 23:00 at `-05:00`, say).
pub(crate) fn parse_date(text: &str) -> Option<OffsetDateTime> {
    let local = parse_local_date(text)?;
    local.checked_to_offset(UtcOffset::UTC)
}

fn parse_local_date(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Some(t) = crate::date::rfc3339(text) {
        return Some(t);
    }
    let (local, offset) = crate::date::civil(text)?;
    Some(local.assume_offset(offset.unwrap_or(UtcOffset::UTC)))
}

/// What an error body says, in one short line: the `error_description`, `message` or
/// `error.message` of any of the endpoints' shapes, else the error code. `None` when the body
/// is not JSON (an HTML page from a proxy, say), which is never echoed.
pub(crate) fn error_summary(body: &[u8]) -> Option<String> {
    let Shape::Object(object) = shape(body) else {
        return None;
    };
    let text = object
        .get("error_description")
        .and_then(Value::as_str)
        .or_else(|| object.get("message").and_then(Value::as_str))
        .or_else(|| object.get("Message").and_then(Value::as_str))
        .or_else(|| {
            let error = object.get("error")?;
            error
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| error.get("code").and_then(Value::as_str))
                .or_else(|| error.as_str())
        })?;
    Some(crate::scrub::line(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

    fn body(json: &str) -> TokenBody {
        TokenBody::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn expires_on_shapes() {
        let cases = [
            // IMDS: digit strings.
            (
                r#"{"expires_on":"1893542399","expires_in":"86399"}"#,
                datetime!(2030-01-01 23:59:59 UTC),
            ),
            // A number.
            (
                r#"{"expires_on":1893456000}"#,
                datetime!(2030-01-01 0:00 UTC),
            ),
            // Azure ML on Linux.
            (
                r#"{"expires_on":"01/02/2030 03:04:05 +00:00"}"#,
                datetime!(2030-01-02 3:04:05 UTC),
            ),
            // Azure ML on Windows.
            (
                r#"{"expires_on":"1/2/2030 3:04:05 PM +00:00"}"#,
                datetime!(2030-01-02 15:04:05 UTC),
            ),
            (
                r#"{"expires_on":"1/2/2030 12:04:05 AM +00:00"}"#,
                datetime!(2030-01-02 0:04:05 UTC),
            ),
            (
                r#"{"expires_on":"1/2/2030 12:04:05 PM +00:00"}"#,
                datetime!(2030-01-02 12:04:05 UTC),
            ),
            // ISO shapes.
            (
                r#"{"expires_on":"2030-01-02 03:04:05"}"#,
                datetime!(2030-01-02 3:04:05 UTC),
            ),
            (
                r#"{"expires_on":"2030-01-02T03:04:05Z"}"#,
                datetime!(2030-01-02 3:04:05 UTC),
            ),
            (
                r#"{"expires_on":"2030-01-02T03:04:05+01:00"}"#,
                datetime!(2030-01-02 2:04:05 UTC),
            ),
            // Only expires_in, as a string or a number.
            (r#"{"expires_in":"3600"}"#, datetime!(2030-01-01 1:00 UTC)),
            (r#"{"expires_in":3600}"#, datetime!(2030-01-01 1:00 UTC)),
            // An unreadable expires_on falls back to expires_in.
            (
                r#"{"expires_on":"soon","expires_in":60}"#,
                datetime!(2030-01-01 0:01 UTC),
            ),
            // So does one already past when the token was asked for, ...
            (
                r#"{"expires_on":"0","expires_in":"3600"}"#,
                datetime!(2030-01-01 1:00 UTC),
            ),
            (
                r#"{"expires_on":"1/2/1999 3:04:05 PM +00:00","expires_in":3600}"#,
                datetime!(2030-01-01 1:00 UTC),
            ),
            // ... which, without an expires_in, is the answer (the cache refuses it as expired).
            (r#"{"expires_on":"0"}"#, datetime!(1970-01-01 0:00 UTC)),
        ];
        for (json, expected) in cases {
            assert_eq!(body(json).expires_on(AT), Some(expected), "{json}");
        }
    }

    #[test]
    fn unreadable_expiry_is_none() {
        for json in [
            r#"{}"#,
            r#"{"expires_on":"tomorrow"}"#,
            r#"{"expires_on":"13/45/2030 99:00:00"}"#,
            r#"{"expires_on":"1/2/2030 13:00:00 PM"}"#,
            r#"{"expires_on":true}"#,
            r#"{"expires_in":"-5"}"#,
            r#"{"expires_in":"12abc"}"#,
            r#"{"expires_on":"99999999999999999999999"}"#,
        ] {
            assert_eq!(body(json).expires_on(AT), None, "{json}");
        }
    }

    #[test]
    fn refresh_in_is_honoured() {
        let expires = datetime!(2030-01-01 1:00 UTC);
        assert_eq!(
            body(r#"{"refresh_in":"1800"}"#).refresh_on(AT, expires),
            Some(datetime!(2030-01-01 0:30 UTC))
        );
        assert_eq!(
            body(r#"{"refresh_in":1800}"#).refresh_on(AT, expires),
            Some(datetime!(2030-01-01 0:30 UTC))
        );
        assert_eq!(body(r#"{}"#).refresh_on(AT, expires), None);
        assert_eq!(body(r#"{"refresh_in":null}"#).refresh_on(AT, expires), None);
    }

    /// As for Entra responses: only a positive refresh_in before the expiry is a hint.
    #[test]
    fn a_non_positive_or_absurd_refresh_in_is_ignored() {
        let expires = datetime!(2030-01-01 1:00 UTC);
        for json in [
            r#"{"refresh_in":-1800}"#,
            r#"{"refresh_in":-9223372036854775808}"#,
            r#"{"refresh_in":0}"#,
            r#"{"refresh_in":"0"}"#,
            r#"{"refresh_in":"-5"}"#,
            r#"{"refresh_in":-0.5}"#,
            r#"{"refresh_in":9223372036854775807}"#,
            r#"{"refresh_in":18446744073709551615}"#,
            r#"{"refresh_in":1e300}"#,
            r#"{"refresh_in":"1e400"}"#,
            r#"{"refresh_in":"99999999999999999999999"}"#,
            // Not before the expiry.
            r#"{"refresh_in":3600}"#,
            r#"{"refresh_in":7200}"#,
            r#"{"refresh_in":true}"#,
        ] {
            assert_eq!(body(json).refresh_on(AT, expires), None, "{json}");
        }
    }

    #[test]
    fn absurd_expiry_numbers_are_unreadable_not_a_panic() {
        for json in [
            r#"{"expires_in":9223372036854775807}"#,
            r#"{"expires_in":"9223372036854775807"}"#,
            r#"{"expires_in":18446744073709551615}"#,
            r#"{"expires_in":1e300}"#,
            r#"{"expires_in":-1}"#,
            r#"{"expires_in":-1.5}"#,
            r#"{"expires_in":"1e400"}"#,
            r#"{"expires_on":9223372036854775807}"#,
            r#"{"expires_on":-9223372036854775808}"#,
            r#"{"expires_on":-1}"#,
            r#"{"expires_on":1e300}"#,
            r#"{"expires_on":"1e400"}"#,
            r#"{"expires_on":"12/31/9999 23:59:59 -05:00"}"#,
            r#"{"expires_on":"9999-12-31T23:59:59-23:59"}"#,
        ] {
            assert_eq!(body(json).expires_on(AT), None, "{json}");
        }
        // An absurd expires_on falls back to expires_in.
        assert_eq!(
            body(r#"{"expires_on":9223372036854775807,"expires_in":60}"#).expires_on(AT),
            Some(datetime!(2030-01-01 0:01 UTC))
        );
        // A float of whole seconds is read.
        assert_eq!(
            body(r#"{"expires_in":3600.9}"#).expires_on(AT),
            Some(datetime!(2030-01-01 1:00 UTC))
        );
        // 1e400 does not fit an f64: the whole body is not valid JSON.
        assert!(TokenBody::parse(br#"{"expires_in":1e400}"#).is_none());
    }

    #[test]
    fn offsets_are_a_sign_and_two_digit_parts() {
        for (text, expected) in [
            (
                "01/02/2030 03:04:05 +01:00",
                datetime!(2030-01-02 2:04:05 UTC),
            ),
            (
                "01/02/2030 03:04:05 -05:30",
                datetime!(2030-01-02 8:34:05 UTC),
            ),
            (
                "01/02/2030 03:04:05 +0530",
                datetime!(2030-01-01 21:34:05 UTC),
            ),
            (
                "01/02/2030 03:04:05 +05",
                datetime!(2030-01-01 22:04:05 UTC),
            ),
            ("01/02/2030 03:04:05 Z", datetime!(2030-01-02 3:04:05 UTC)),
            (
                "01/02/2030 03:04:05.123 UTC",
                datetime!(2030-01-02 3:04:05 UTC),
            ),
        ] {
            assert_eq!(parse_date(text), Some(expected), "{text}");
        }
        for text in [
            // i8::MIN hours, negated: overflowed before.
            "01/02/2030 03:04:05 --128:00",
            "01/02/2030 03:04:05 +-128:00",
            "01/02/2030 03:04:05 -+5:00",
            "01/02/2030 03:04:05 +127:00",
            "01/02/2030 03:04:05 +05:-30",
            "01/02/2030 03:04:05 -00:-128",
            "01/02/2030 03:04:05 +99:99",
            "01/02/2030 03:04:05 +25:00",
            "01/02/2030 03:04:05 -24:00",
            "01/02/2030 03:04:05 +01:60",
            "01/02/2030 03:04:05 +",
            "01/02/2030 03:04:05 -",
            "01/02/2030 03:04:05 +é5:00",
            "01/02/2030 03:04:05 +0é0",
            "01/02/2030 03:04:05.x +00:00",
            "01/02/2030 03:04:05. +00:00",
        ] {
            assert_eq!(parse_date(text), None, "{text}");
        }
    }

    #[test]
    fn bodies_are_sorted_by_shape() {
        let object = |b: &[u8]| matches!(shape(b), Shape::Object(_));
        assert!(object(br#"{"access_token":"x"}"#));
        assert!(object(b"\xEF\xBB\xBF{\"access_token\":\"x\"}"));
        assert!(object(b" \r\n {} \n"));
        for body in [
            &br#"{"access_token":"ab"#[..],
            b"[]",
            b"null",
            b"\"text\"",
            b"42",
            b"\xEF\xBB\xBF[1,",
            b"{\"a\":1}}",
        ] {
            assert!(
                matches!(shape(body), Shape::BrokenJson(_)),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(shape(b"<!DOCTYPE html><html>"), Shape::Markup));
        assert!(matches!(shape(b"\n  <html>"), Shape::Markup));
        assert!(matches!(shape(b""), Shape::Empty));
        assert!(matches!(shape(b" \n"), Shape::Empty));
        assert!(matches!(shape(b"\xEF\xBB\xBF"), Shape::Empty));
        assert!(matches!(shape(b"upstream connect error"), Shape::Text));
        assert!(matches!(shape(b"\xFF\xFE{"), Shape::Text));
    }

    #[test]
    fn a_bom_before_a_token_body_is_accepted() {
        let body =
            TokenBody::parse(b"\xEF\xBB\xBF{\"access_token\":\"x\",\"expires_in\":60}").unwrap();
        assert_eq!(body.access_token.as_deref(), Some("x"));
        assert_eq!(
            error_summary(b"\xEF\xBB\xBF{\"error\":\"invalid_request\",\"error_description\":\"Identity not found\"}")
                .as_deref(),
            Some("Identity not found")
        );
    }

    #[test]
    fn fields_of_the_wrong_type_or_twice_are_not_a_token_body() {
        for json in [
            r#"{"access_token":42}"#,
            r#"{"access_token":"x","client_id":7}"#,
            r#"{"access_token":"x","access_token":"y"}"#,
        ] {
            assert!(TokenBody::parse(json.as_bytes()).is_none(), "{json}");
        }
    }

    #[test]
    fn error_summaries_of_every_shape() {
        let cases = [
            (
                r#"{"error":"invalid_request","error_description":"Identity not found"}"#,
                "Identity not found",
            ),
            (
                r#"{"statusCode":400,"message":"Unable to load the proper Managed Identity."}"#,
                "Unable to load the proper Managed Identity.",
            ),
            (
                r#"{"error":{"code":"SecretHeaderNotFound","message":"Secret is not found in the request headers."}}"#,
                "Secret is not found in the request headers.",
            ),
            (
                r#"{"error":{"code":"ManagedIdentityNotFound"}}"#,
                "ManagedIdentityNotFound",
            ),
            (r#"{"error":"invalid_resource"}"#, "invalid_resource"),
            (
                r#"{"Message":"An error has occurred."}"#,
                "An error has occurred.",
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(
                error_summary(json.as_bytes()).as_deref(),
                Some(expected),
                "{json}"
            );
        }
        assert_eq!(error_summary(b"<html>proxy</html>"), None);
        assert_eq!(error_summary(b"[1,2]"), None);
        assert_eq!(error_summary(b"{}"), None);
    }
}
