//! The HMAC-SHA256 scheme an [`AccessKeyCredential`](super::AccessKeyCredential) signs with:
//! the decoded key, the signature over method, path and query, date, host and body hash, and
//! the [`SignedHeaders`] that carry it. No clock, no allocation.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ring::{digest, hmac};
use time::{OffsetDateTime, UtcOffset};

use super::NAME;
use crate::Error;

/// Keys shorter than this (decoded) are refused: Azure's access keys are 64 bytes, and a short
/// "key" is almost always something else pasted by mistake.
const MIN_KEY_BYTES: usize = 16;

pub(super) const AUTHORIZATION_PREFIX: &str =
    "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=";
/// `Tue, 01 Jan 2030 00:00:00 GMT`.
const DATE_LEN: usize = 29;
/// Base64 of 32 bytes (a SHA-256 digest or an HMAC-SHA256 tag).
const DIGEST_B64_LEN: usize = 44;
const AUTHORIZATION_LEN: usize = AUTHORIZATION_PREFIX.len() + DIGEST_B64_LEN;

const KEY_FIX: &str = "copy the key from the Azure portal (your Communication Services resource, Settings, Keys) or from `az communication list-key`";

/// The decoded access key, as ring's HMAC key (which keeps only the padded key's hash states,
/// and never prints them).
pub(super) struct SigningKey(pub(super) hmac::Key);

/// The three headers that authenticate one request: send each with the request.
///
/// Signing allocates nothing: the values live in the struct. `Debug` shows the date and the
/// content hash but not the signature (it authenticates this request for 15 minutes).
#[derive(Clone, Copy)]
pub struct SignedHeaders {
    date: [u8; DATE_LEN],
    content_sha256: [u8; DIGEST_B64_LEN],
    authorization: [u8; AUTHORIZATION_LEN],
}

impl SignedHeaders {
    /// `x-ms-date`.
    pub const DATE: &'static str = "x-ms-date";
    /// `x-ms-content-sha256`.
    pub const CONTENT_SHA256: &'static str = "x-ms-content-sha256";
    /// `authorization`.
    pub const AUTHORIZATION: &'static str = "authorization";

    /// The `x-ms-date` value, e.g. `Tue, 01 Jan 2030 00:00:00 GMT`.
    pub fn date(&self) -> &str {
        ascii(&self.date)
    }

    /// The `x-ms-content-sha256` value: base64 SHA-256 of the body.
    pub fn content_sha256(&self) -> &str {
        ascii(&self.content_sha256)
    }

    /// The `Authorization` value, `HMAC-SHA256 SignedHeaders=...&Signature=...`. Sensitive:
    /// mark it so in your HTTP client and never log it.
    pub fn authorization(&self) -> &str {
        ascii(&self.authorization)
    }

    /// The three headers as `(name, value)` pairs, names lower-case.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (Self::DATE, self.date()),
            (Self::CONTENT_SHA256, self.content_sha256()),
            (Self::AUTHORIZATION, self.authorization()),
        ]
        .into_iter()
    }

    /// Sets the three headers in `headers` (replacing earlier values), with `Authorization`
    /// marked sensitive.
    pub fn apply_to(&self, headers: &mut reqwest::header::HeaderMap) {
        use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
        let value = |bytes: &[u8]| {
            HeaderValue::from_bytes(bytes).expect("signed header values are visible ASCII")
        };
        headers.insert(HeaderName::from_static(Self::DATE), value(&self.date));
        headers.insert(
            HeaderName::from_static(Self::CONTENT_SHA256),
            value(&self.content_sha256),
        );
        let mut authorization = value(&self.authorization);
        authorization.set_sensitive(true);
        headers.insert(AUTHORIZATION, authorization);
    }
}

impl fmt::Debug for SignedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedHeaders")
            .field("x-ms-date", &self.date())
            .field("x-ms-content-sha256", &self.content_sha256())
            .field(
                "authorization",
                &format_args!("{AUTHORIZATION_PREFIX}<redacted>"),
            )
            .finish()
    }
}

fn ascii(bytes: &[u8]) -> &str {
    // Always ASCII: dates and base64 are written by this module.
    std::str::from_utf8(bytes).unwrap_or_default()
}

impl SigningKey {
    /// Decodes and checks a base64 access key. Errors never include the key or any part of it.
    pub(super) fn decode(key: &str) -> Result<SigningKey, Error> {
        let key = key.trim();
        let invalid = |what: String| Error::invalid_input(NAME, what).with_fix(KEY_FIX);
        if key.is_empty() {
            return Err(invalid("the access key is empty".to_owned()));
        }
        // Compared in place: a lower-cased copy would be one more copy of the secret.
        if key
            .as_bytes()
            .windows(10)
            .any(|w| w.eq_ignore_ascii_case(b"accesskey="))
        {
            return Err(Error::invalid_input(
                NAME,
                "the access key looks like a connection string",
            )
            .with_fix("use AccessKeyCredential::from_connection_string (or the builder's connection_string) for it"));
        }
        const ENGINE: GeneralPurpose = GeneralPurpose::new(
            &alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let mut bytes = ENGINE.decode(key).map_err(|e| {
            use base64::DecodeError::*;
            // Positions only: the offending character could be part of the secret.
            invalid(match e {
                InvalidByte(offset, _) => format!(
                    "the access key is not base64: the character at position {} is not in the standard base64 alphabet (A-Z, a-z, 0-9, +, /)",
                    offset + 1
                ),
                InvalidLength(_) => format!(
                    "the access key is not base64: {} characters cannot be base64 (is it cut short?)",
                    key.len()
                ),
                InvalidLastSymbol { .. } => {
                    "the access key is not base64: its last character is not valid there (is it cut short?)".to_owned()
                }
                InvalidPadding => {
                    "the access key is not base64: its '=' padding is wrong".to_owned()
                }
            })
        })?;
        if bytes.len() < MIN_KEY_BYTES {
            let len = bytes.len();
            bytes.fill(0);
            return Err(invalid(format!(
                "the access key decodes to {len} bytes, too short for an access key (Azure's are 64 bytes, 88 base64 characters)"
            )));
        }
        let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
        // Best effort: do not leave the decoded key lying in freed memory.
        bytes.fill(0);
        std::hint::black_box(&bytes);
        Ok(SigningKey(hmac_key))
    }
}

/// The signing function itself: no allocation, no clock, no validation.
pub(super) fn sign(
    key: &hmac::Key,
    method: &str,
    (host, port): (&str, Option<u16>),
    path_and_query: &str,
    body: &[u8],
    date: OffsetDateTime,
) -> SignedHeaders {
    let date = rfc1123(date);
    let mut content_sha256 = [0u8; DIGEST_B64_LEN];
    encode_digest(
        digest::digest(&digest::SHA256, body).as_ref(),
        &mut content_sha256,
    );

    let mut mac = hmac::Context::with_key(key);
    for chunk in method.as_bytes().chunks(16) {
        let mut upper = [0u8; 16];
        let upper = &mut upper[..chunk.len()];
        upper.copy_from_slice(chunk);
        upper.make_ascii_uppercase();
        mac.update(upper);
    }
    mac.update(b"\n");
    mac.update(path_and_query.as_bytes());
    mac.update(b"\n");
    mac.update(&date);
    mac.update(b";");
    mac.update(host.as_bytes());
    if let Some(port) = port {
        let mut digits = [0u8; 6];
        mac.update(port_with_colon(port, &mut digits));
    }
    mac.update(b";");
    mac.update(&content_sha256);

    let mut authorization = [0u8; AUTHORIZATION_LEN];
    let (prefix, signature) = authorization.split_at_mut(AUTHORIZATION_PREFIX.len());
    prefix.copy_from_slice(AUTHORIZATION_PREFIX.as_bytes());
    encode_digest(mac.sign().as_ref(), signature);
    SignedHeaders {
        date,
        content_sha256,
        authorization,
    }
}

/// Base64 of a 32-byte digest into exactly 44 bytes.
fn encode_digest(digest: &[u8], out: &mut [u8]) {
    let written = STANDARD
        .encode_slice(digest, out)
        .expect("44 bytes hold the base64 of 32");
    debug_assert_eq!(written, DIGEST_B64_LEN);
}

/// `:<port>` in `buf`, returned as the slice written.
fn port_with_colon(port: u16, buf: &mut [u8; 6]) -> &[u8] {
    let mut n = port;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    i -= 1;
    buf[i] = b':';
    &buf[i..]
}

/// An RFC 1123 date in GMT, `Tue, 01 Jan 2030 00:00:00 GMT` (English names whatever the
/// locale, as HTTP requires).
fn rfc1123(date: OffsetDateTime) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let date = date.checked_to_offset(UtcOffset::UTC).unwrap_or(date);
    let mut out = *b"Mon, 00 Jan 0000 00:00:00 GMT";
    out[0..3].copy_from_slice(DAYS[usize::from(date.weekday().number_days_from_monday())]);
    two_digits(&mut out[5..7], date.day());
    out[8..11].copy_from_slice(MONTHS[usize::from(u8::from(date.month()) - 1)]);
    // HTTP dates have four-digit years; the clock will not leave 0..=9999.
    let year = date.year().clamp(0, 9999) as u16;
    two_digits(&mut out[12..14], (year / 100) as u8);
    two_digits(&mut out[14..16], (year % 100) as u8);
    two_digits(&mut out[17..19], date.hour());
    two_digits(&mut out[20..22], date.minute());
    two_digits(&mut out[23..25], date.second());
    out
}

fn two_digits(out: &mut [u8], n: u8) {
    out[0] = b'0' + n / 10;
    out[1] = b'0' + n % 10;
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dates_are_rfc1123_in_gmt() {
        assert_eq!(
            &rfc1123(datetime!(2030-01-01 0:00 UTC)),
            b"Tue, 01 Jan 2030 00:00:00 GMT"
        );
        assert_eq!(
            &rfc1123(datetime!(2000-02-29 23:59:59.999 UTC)),
            b"Tue, 29 Feb 2000 23:59:59 GMT"
        );
        // Another offset is converted to GMT first.
        assert_eq!(
            &rfc1123(datetime!(2024-03-01 13:05:06 +01:00)),
            b"Fri, 01 Mar 2024 12:05:06 GMT"
        );
        assert_eq!(
            &rfc1123(datetime!(1999-12-05 07:08:09 UTC)),
            b"Sun, 05 Dec 1999 07:08:09 GMT"
        );
    }

    #[test]
    fn ports_are_written_with_a_colon() {
        let mut buf = [0u8; 6];
        assert_eq!(port_with_colon(0, &mut buf), b":0");
        assert_eq!(port_with_colon(8443, &mut buf), b":8443");
        assert_eq!(port_with_colon(65535, &mut buf), b":65535");
    }
}
