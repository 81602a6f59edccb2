//! Reading managed identity endpoints' answers: token bodies of every shape and error bodies.

use serde::Deserialize;
use serde_json::Value;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

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
    pub(crate) fn parse(body: &[u8]) -> Option<TokenBody> {
        serde_json::from_slice(body).ok()
    }

    /// When the token expires: `expires_on` as epoch seconds (number or digit string) or one
    /// of the date shapes Azure ML sends; else `expires_in` after `requested_at`.
    pub(crate) fn expires_on(&self, requested_at: OffsetDateTime) -> Option<OffsetDateTime> {
        if let Some(value) = &self.expires_on {
            if let Some(secs) = as_seconds(value) {
                return OffsetDateTime::from_unix_timestamp(secs).ok();
            }
            if let Some(date) = value.as_str().and_then(parse_date) {
                return Some(date);
            }
        }
        let secs = self.expires_in.as_ref().and_then(as_seconds)?;
        requested_at.checked_add(time::Duration::seconds(secs))
    }

    /// When the token should be refreshed, from the provider's `refresh_in`.
    pub(crate) fn refresh_on(&self, requested_at: OffsetDateTime) -> Option<OffsetDateTime> {
        let secs = self.refresh_in.as_ref().and_then(as_seconds)?;
        requested_at.checked_add(time::Duration::seconds(secs))
    }
}

/// A whole number of seconds, sent as a JSON number or a string of digits.
fn as_seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
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
/// Without an offset the time is UTC.
pub(crate) fn parse_date(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Some(t);
    }
    let mut parts = text.split_whitespace();
    let date = parse_calendar_date(parts.next()?)?;
    let mut time = parse_clock(parts.next()?)?;
    let mut next = parts.next();
    if let Some(period) =
        next.filter(|p| p.eq_ignore_ascii_case("AM") || p.eq_ignore_ascii_case("PM"))
    {
        let hour = time.hour();
        if !(1..=12).contains(&hour) {
            return None;
        }
        let hour24 = match (period.eq_ignore_ascii_case("PM"), hour) {
            (false, 12) => 0,
            (false, h) => h,
            (true, 12) => 12,
            (true, h) => h + 12,
        };
        time = Time::from_hms(hour24, time.minute(), time.second()).ok()?;
        next = parts.next();
    }
    let offset = match next {
        Some(offset) => parse_offset(offset)?,
        None => UtcOffset::UTC,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

/// `MM/dd/yyyy`, `M/d/yyyy` or `yyyy-MM-dd`.
fn parse_calendar_date(text: &str) -> Option<Date> {
    let (year, month, day) = if let Some((m, rest)) = text.split_once('/') {
        let (d, y) = rest.split_once('/')?;
        (y, m, d)
    } else {
        let mut it = text.splitn(3, '-');
        (it.next()?, it.next()?, it.next()?)
    };
    let number = |s: &str| -> Option<u32> {
        (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let month = Month::try_from(u8::try_from(number(month)?).ok()?).ok()?;
    let day = u8::try_from(number(day)?).ok()?;
    let year = i32::try_from(number(year)?).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

/// `H:mm:ss` or `HH:mm:ss`, with optional fractional seconds.
fn parse_clock(text: &str) -> Option<Time> {
    let mut it = text.split(':');
    let (h, m, s) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    let s = s.split_once('.').map_or(s, |(whole, _)| whole);
    let digits = |v: &str| -> Option<u8> {
        (!v.is_empty() && v.len() <= 2 && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse().ok())
            .flatten()
    };
    Time::from_hms(digits(h)?, digits(m)?, digits(s)?).ok()
}

/// `+00:00`, `-05:30`, `Z`.
fn parse_offset(text: &str) -> Option<UtcOffset> {
    if text.eq_ignore_ascii_case("Z") || text.eq_ignore_ascii_case("UTC") {
        return Some(UtcOffset::UTC);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let h: i8 = h.parse().ok()?;
    let m: i8 = m.parse().ok()?;
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// What an error body says, in one short line: the `error_description`, `message` or
/// `error.message` of any of the endpoints' shapes, else the error code. `None` when the body
/// is not JSON (an HTML page from a proxy, say), which is never echoed.
pub(crate) fn error_summary(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
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
    Some(one_line(text))
}

/// The first line of `text`, cut to a readable length, with nothing that looks like a JWT.
pub(super) fn one_line(text: &str) -> String {
    const MAX: usize = 300;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut out: String = line
        .split_whitespace()
        .map(|word| {
            if word.starts_with("eyJ") {
                "<redacted>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    if out.len() > MAX {
        let mut end = MAX;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
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
                r#"{"expires_on":"1893456000","expires_in":"86399"}"#,
                datetime!(2030-01-01 0:00 UTC),
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
        assert_eq!(
            body(r#"{"refresh_in":"1800"}"#).refresh_on(AT),
            Some(datetime!(2030-01-01 0:30 UTC))
        );
        assert_eq!(body(r#"{}"#).refresh_on(AT), None);
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

    #[test]
    fn one_line_trims_and_redacts() {
        assert_eq!(one_line("\n  first line \nsecond"), "first line");
        assert_eq!(
            one_line("token eyJhbGciOi.x.y leaked"),
            "token <redacted> leaked"
        );
        assert!(one_line(&"x".repeat(1000)).len() < 310);
    }
}
