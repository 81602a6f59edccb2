//! [`HttpResponse`]: a complete response, and how long its server asked us to wait.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::request::HeaderNames;
use crate::system::clock::Clock;

/// A complete HTTP response, any status, with its body read (and capped).
///
/// `Debug` shows the status, header names and the body's length: never the body, which
/// carries tokens.
#[derive(Clone)]
pub struct HttpResponse {
    pub(super) status: u16,
    headers: HeaderMap,
    pub(super) body: Bytes,
    pub(super) attempts: u32,
    pub(super) elapsed: Duration,
    /// For `Retry-After` dates.
    pub(super) clock: Clock,
}

impl HttpResponse {
    /// A response with `status`, `headers` and `body`, for an [`HttpTransport`](super::HttpTransport) to answer
    /// with. Headers whose name or value is not valid HTTP are left out.
    pub fn new<N, V>(
        status: u16,
        headers: impl IntoIterator<Item = (N, V)>,
        body: impl Into<Bytes>,
    ) -> Self
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_ref().as_bytes()),
                HeaderValue::from_str(value.as_ref()),
            ) {
                map.append(name, value);
            }
        }
        HttpResponse::from_parts(status, map, body.into(), Clock::system())
    }

    pub(super) fn from_parts(status: u16, headers: HeaderMap, body: Bytes, clock: Clock) -> Self {
        HttpResponse {
            status,
            headers,
            body,
            attempts: 1,
            elapsed: Duration::ZERO,
            clock,
        }
    }

    /// A response as the parsers' fuzz targets and property tests make it up: header names or
    /// values that HTTP would not carry are left out.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn for_fuzzing(
        status: u16,
        headers: &[(&str, &[u8])],
        body: &[u8],
        clock: Clock,
    ) -> Self {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            ) {
                map.append(name, value);
            }
        }
        HttpResponse::from_parts(status, map, Bytes::copy_from_slice(body), clock)
    }

    /// The status code, e.g. `200`.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of header `name` (case-insensitive), when present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Content-Type` header.
    pub(crate) fn content_type(&self) -> Option<&str> {
        self.header(CONTENT_TYPE.as_str())
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// How many attempts the retry loop made, this response's included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The time from the first attempt's start to this response, waits between retries included.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// How long the server asked us to wait before trying again, if it said so validly.
    ///
    /// Read from `retry-after-ms` or `x-ms-retry-after-ms` (milliseconds), else `Retry-After`
    /// (whole seconds, or an IMF-fixdate HTTP date measured against the client's [`Clock`]).
    /// Garbage, negative numbers and dates in the past give `None`.
    pub fn retry_after(&self) -> Option<Duration> {
        for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
            if let Some(ms) = self.header(name).and_then(parse_digits) {
                return Some(Duration::from_millis(ms));
            }
        }
        let value = self.header("retry-after")?.trim();
        if let Some(secs) = parse_digits(value) {
            return Some(Duration::from_secs(secs));
        }
        let date = crate::date::http_date(value)?;
        let wait = date - self.clock.now();
        if wait.is_negative() {
            // A past date is most likely clock skew: let the caller's backoff decide.
            return None;
        }
        Duration::try_from(wait).ok()
    }
}

/// A non-negative decimal integer, surrounding whitespace allowed.
fn parse_digits(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &HeaderNames(&self.headers))
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("attempts", &self.attempts)
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::ManualClock;
    use crate::system::http::tests::response;
    use time::macros::datetime;

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let secs = |v| response(429, &[("Retry-After", v)]).retry_after();
        assert_eq!(secs("2"), Some(Duration::from_secs(2)));
        assert_eq!(secs(" 0 "), Some(Duration::ZERO));
        let ms = response(429, &[("retry-after-ms", "1500"), ("retry-after", "9")]);
        assert_eq!(ms.retry_after(), Some(Duration::from_millis(1500)));
        let x_ms = response(429, &[("x-ms-retry-after-ms", "250")]);
        assert_eq!(x_ms.retry_after(), Some(Duration::from_millis(250)));
        // A bad millisecond header falls through to Retry-After.
        let bad_ms = response(429, &[("retry-after-ms", "soon"), ("retry-after", "3")]);
        assert_eq!(bad_ms.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(response(429, &[]).retry_after(), None);
    }

    #[test]
    fn retry_after_rejects_garbage_and_negatives() {
        for value in [
            "",
            "soon",
            "-5",
            "1.5",
            "+3",
            "1e3",
            "99999999999999999999999",
            "Sun, 06 Nov 1994",
        ] {
            let response = response(429, &[("retry-after", value)]);
            assert_eq!(response.retry_after(), None, "{value:?}");
        }
        let negative_ms = response(429, &[("retry-after-ms", "-100")]);
        assert_eq!(negative_ms.retry_after(), None);
    }

    #[test]
    fn retry_after_http_dates_are_measured_against_the_clock() {
        let manual = ManualClock::new(datetime!(1994-11-06 8:49:00 UTC));
        let mut response = response(503, &[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        response.clock = manual.clock();
        assert_eq!(response.retry_after(), Some(Duration::from_secs(37)));
        manual.advance(Duration::from_secs(37));
        assert_eq!(response.retry_after(), Some(Duration::ZERO));
        // In the past: probably clock skew, left to the backoff.
        manual.advance(Duration::from_secs(1));
        assert_eq!(response.retry_after(), None);
    }
}
