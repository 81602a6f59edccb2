//! The one scrubber for untrusted text — a developer tool's stderr, an identity endpoint's or
//! Entra's error description, a proxy's answer — before any of it goes into an
//! [`Error`](crate::Error) or a log line. Such text can echo what was sent (a client assertion,
//! a federated token, a secret header) or what should have been returned (a token).
//!
//! The rules, applied in this order:
//!
//! 1. **One line**: the first line with anything on it; every line break counts (`\n`, `\r`,
//!    VT, FF, NEL, LS, PS).
//! 2. **No control characters**: ANSI escape sequences (`ESC [ … final`, `ESC ] … BEL` or
//!    `ESC \`, other `ESC x` pairs, the one-byte CSI) go whole; any other control character and
//!    the invisible format characters (bidirectional overrides, zero-width characters, BOM) go;
//!    tabs become spaces, runs of whitespace one space, and the ends are trimmed.
//! 3. Optionally ([`sentence`]) only the **first sentence**: up to and including the first `. `.
//! 4. **Secrets redacted**, each replaced by `<redacted>`:
//!    - the value after a key naming a secret, followed by `=` or `:` (`client_secret=…`,
//!      `"access_token": "…"`, `AccountKey=…`, `sig=…`, `X-IDENTITY-HEADER: …`): a key is a
//!      word ending in `secret`, `password`, `passwd`, `pwd`, `token`, `assertion`, `key`,
//!      `sig`, `signature`, `authorization`, `credential(s)`, `cookie` or `identity-header`, in
//!      any case; a quoted value is redacted up to its closing quote. After an unquoted key and
//!      `:`, a plain lower-case word of up to 16 letters stays: that is prose ("fetching token:
//!      not logged in");
//!    - the word after an authentication scheme (`Bearer …`, `Basic …`, `PoP …`), unless it is a
//!      plain lower-case word ("a Bearer token");
//!    - any word holding `eyJ`, the base64url start of a JSON object: a JWT, or a piece of one;
//!    - any word of 32 characters or more from the base64, base64url and URL-encoding
//!      alphabets, unless it reads as a host name, a path or a dotted name: its pieces between
//!      `/` and `.` are all GUIDs, lower-case runs of at most 24 letters, digits, `-` and `_`,
//!      or runs of at most 24 letters only (random secrets mix case and digits, or are long
//!      runs; `login.microsoftonline.com`, `/<tenant>/oauth2/v2.0/token` and
//!      `msal.exceptions.MsalServiceError` are neither).
//! 5. **A length cap**: at most [`MAX_BYTES`] bytes, cut on a character boundary, with `…`
//!    appended when cut. Redaction comes first, so a cut never leaves the start of a secret.
//!    Only the first [`MAX_SCAN_BYTES`] of the line are looked at (without a partial last word).

/// Longest output, in bytes, before the `…`.
pub(crate) const MAX_BYTES: usize = 300;
/// How much of the line is looked at: enough for any message, cheap for a hostile one.
const MAX_SCAN_BYTES: usize = 16 * 1024;
/// Words this long from the token alphabets are secrets unless they read as a path or host.
const LONG_WORD: usize = 32;
/// Longest lower-case piece of a word that still reads as a name rather than a secret.
const READABLE_PIECE: usize = 24;
const REDACTED: &str = "<redacted>";

/// The first line of `text` with anything on it, cleaned and redacted (the rules above).
pub(crate) fn line(text: &str) -> String {
    scrub(text, false)
}

/// Like [`line`], keeping only the first sentence (Entra's descriptions go on with advice and
/// trace ids that the error carries elsewhere).
pub(crate) fn sentence(text: &str) -> String {
    scrub(text, true)
}

fn scrub(text: &str, first_sentence: bool) -> String {
    let raw = first_line(text);
    let raw = bounded(raw);
    let mut clean = clean(raw);
    if first_sentence && let Some(end) = clean.find(". ") {
        clean.truncate(end + 1);
    }
    let redacted = redact_words(&redact_keyed(&clean));
    cap(redacted)
}

pub(crate) fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

fn first_line(text: &str) -> &str {
    text.split(is_line_break)
        .find(|l| {
            l.chars()
                .any(|c| !c.is_whitespace() && !c.is_control() && !is_invisible_format(c))
        })
        .unwrap_or("")
}

/// The first [`MAX_SCAN_BYTES`] of `line`, without the word the cut went through.
fn bounded(line: &str) -> &str {
    if line.len() <= MAX_SCAN_BYTES {
        return line;
    }
    let mut end = MAX_SCAN_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let cut = &line[..end];
    match cut.rfind(char::is_whitespace) {
        Some(space) => &cut[..space],
        None => cut,
    }
}

/// Invisible characters that can reorder or hide text in a terminal.
pub(crate) fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{061c}'
            | '\u{feff}'
    )
}

/// Rule 2: escape sequences and control characters removed, whitespace collapsed and trimmed.
fn clean(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut space = false;
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC (and the other string sequences): up to BEL or ESC \.
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{07}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            if chars.peek() == Some(&'\\') {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            c if c.is_whitespace() => space = true,
            c if c.is_control() || is_invisible_format(c) => {}
            c => {
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                out.push(c);
            }
        }
    }
    out
}

/// Characters of a key's name (`client_secret`, `X-IDENTITY-HEADER`).
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Whether a key's name says its value is a secret.
fn names_a_secret(key: &str) -> bool {
    const SUFFIXES: [&str; 14] = [
        "secret",
        "password",
        "passwd",
        "pwd",
        "token",
        "assertion",
        "key",
        "sig",
        "signature",
        "authorization",
        "credential",
        "credentials",
        "cookie",
        "identity-header",
    ];
    let key = key.to_ascii_lowercase().replace('_', "-");
    SUFFIXES.iter().any(|s| key.ends_with(s))
}

fn is_auth_scheme(word: &str) -> bool {
    ["bearer", "basic", "pop", "negotiate", "sharedkey"]
        .iter()
        .any(|s| word.eq_ignore_ascii_case(s))
}

/// Where an unquoted value ends.
fn ends_value(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ';' | '&' | ')' | ']' | '}' | '>' | '"' | '\'')
}

/// The end of a value starting at `start` of `s`: up to the closing quote for a quoted one.
fn value_end(s: &str, start: usize) -> usize {
    let rest = &s[start..];
    match rest.chars().next() {
        Some(q @ ('"' | '\'')) => match rest[1..].find(q) {
            Some(i) => start + 1 + i,
            None => s.len(),
        },
        _ => start + rest.find(ends_value).unwrap_or(rest.len()),
    }
}

/// Rule 4, first half: values after secret-naming keys and after authentication schemes.
fn redact_keyed(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let word_len = rest.find(|c| !is_key_char(c)).unwrap_or(rest.len());
        if word_len == 0 {
            // Not a key character: copy it.
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        let word = &rest[..word_len];
        let after = i + word_len;
        out.push_str(word);
        i = after;
        if names_a_secret(word)
            && let Some((value_start, prose)) = keyed_value_start(s, after)
        {
            let end = value_end(s, value_start);
            let quoted = s[value_start..].starts_with(['"', '\'']);
            let body_start = value_start + usize::from(quoted);
            let value = &s[body_start..end];
            // "fetching token: not logged in" is prose, not a key and its value.
            let prose_word = prose && !quoted && is_plain_word(value);
            if !value.is_empty() && !prose_word {
                out.push_str(&s[after..body_start]);
                out.push_str(REDACTED);
                i = end;
            }
        } else if is_auth_scheme(word) && s[after..].starts_with(' ') {
            let value_start = after + 1;
            let end = value_start
                + s[value_start..]
                    .find(ends_value)
                    .unwrap_or(s.len() - value_start);
            let value = &s[value_start..end];
            // "a Bearer token" is prose.
            if !value.is_empty() && !is_plain_word(value) {
                out.push(' ');
                out.push_str(REDACTED);
                i = end;
            }
        }
    }
    out
}

/// After a key ending at `at`: an optional closing quote, `=` or `:`, spaces — the start of
/// the value, if this is a key and value at all, and whether it may be prose (an unquoted key
/// followed by `:`, as in "token: expired").
fn keyed_value_start(s: &str, at: usize) -> Option<(usize, bool)> {
    let mut rest = &s[at..];
    let quoted_key = rest.starts_with(['"', '\'']);
    rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest);
    rest = rest.trim_start_matches(' ');
    let colon = rest.starts_with(':');
    rest = rest.strip_prefix(['=', ':'])?;
    // Not a URL's scheme (`https://`): that is no key.
    if rest.starts_with("//") {
        return None;
    }
    rest = rest.trim_start_matches(' ');
    Some((s.len() - rest.len(), colon && !quoted_key))
}

/// A plain lower-case word of prose ("expired", "not"), which no secret is.
fn is_plain_word(value: &str) -> bool {
    value.len() <= 16 && value.bytes().all(|b| b.is_ascii_lowercase())
}

/// Characters of the token alphabets: base64, base64url, URL encoding, JWT dots.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-' | '.' | '~' | '%')
}

fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A host name, a URL path or a dotted name (`msal.exceptions.MsalServiceError`): pieces
/// between `/` and `.` that are GUIDs, short lower-case names or short names of letters only.
fn reads_as_a_name(word: &str) -> bool {
    word.split(['/', '.']).all(|piece| {
        let b = piece.as_bytes();
        is_guid(piece)
            || (b.len() <= READABLE_PIECE
                && (b.iter().all(|&c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_'
                }) || b.iter().all(u8::is_ascii_alphabetic)))
    })
}

fn is_secret_word(word: &str) -> bool {
    word.contains("eyJ") || (word.len() >= LONG_WORD && !reads_as_a_name(word))
}

/// Rule 4, second half: JWT-like and long token-alphabet words.
fn redact_words(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut word_start: Option<usize> = None;
    let flush = |out: &mut String, word: &str| {
        if is_secret_word(word) {
            out.push_str(REDACTED);
        } else {
            out.push_str(word);
        }
    };
    for (i, c) in s.char_indices() {
        if is_token_char(c) {
            word_start.get_or_insert(i);
        } else {
            if let Some(start) = word_start.take() {
                flush(&mut out, &s[start..i]);
            }
            out.push(c);
        }
    }
    if let Some(start) = word_start {
        flush(&mut out, &s[start..]);
    }
    out
}

/// Rule 5.
fn cap(mut s: String) -> String {
    if s.len() > MAX_BYTES {
        let mut end = MAX_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Escapes text for HTML content and double- or single-quoted attributes: the pages the
/// browser sign-in's listener answers with (and the Entra mock's) show text from outside.
#[cfg(any(feature = "user-sign-in", feature = "testing"))]
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL21hbmFnZW1lbnQuYXp1cmUuY29tIn0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU";
    const CLIENT_SECRET: &str = "Qx28Q~pL4mZ.vN7_bK2cR9-tY6wE3sD1fG8hJ0kL";
    const STORAGE_KEY: &str =
        "kT4mR8pW2xZ6vB1nQ9sD3fG7hJ5kL0aE+Yc/uIoP2wX8zN4mB6vR1tS9dF3gH7jK5lA0eQ==";
    const HEX_KEY: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    const REFRESH_TOKEN: &str = "0.ARoAv4j5cvGGr0GRqy180BHbR4bz9uQpjaBHoN1k0xjx2w8aAA";

    /// Secrets recognisable by their shape alone, wherever they stand.
    fn shaped() -> [&'static str; 5] {
        [JWT, CLIENT_SECRET, STORAGE_KEY, HEX_KEY, REFRESH_TOKEN]
    }

    /// Every secret in the hostile inputs: the shaped ones, and short ones recognisable only
    /// by the key or scheme before them.
    fn secrets() -> Vec<&'static str> {
        let mut all = shaped().to_vec();
        all.extend(["hunter2-password", "abc%2Fdef%2Bghi"]);
        all
    }

    /// Hostile inputs, each with secrets from `secrets()`; none may survive.
    fn hostile() -> Vec<String> {
        let mut inputs = vec![
            format!("AADSTS700024: Client assertion is not within its valid time range. {JWT}"),
            format!("invalid assertion {JWT}"),
            format!("token fragment .{}", &JWT[37..]),
            format!("header only {}", &JWT[..36]),
            format!("the request had client_secret={CLIENT_SECRET}&grant_type=client_credentials"),
            format!(r#"{{"access_token": "{JWT}", "token_type": "Bearer"}}"#),
            format!(r#"{{"client_secret":"{CLIENT_SECRET}"}}"#),
            format!("Authorization: Bearer {CLIENT_SECRET}"),
            format!("Bearer {HEX_KEY}"),
            format!("basic {}", "dXNlcjpodW50ZXIyLXBhc3N3b3Jk"),
            format!(
                "DefaultEndpointsProtocol=https;AccountName=x;AccountKey={STORAGE_KEY};EndpointSuffix=core.windows.net"
            ),
            format!("X-IDENTITY-HEADER: {HEX_KEY}"),
            format!("secret: '{CLIENT_SECRET}'"),
            "password=\"hunter2-password\" rejected".to_owned(),
            format!("refresh_token: {REFRESH_TOKEN}"),
            format!("grant failed for {REFRESH_TOKEN}"),
            "https://x.blob.core.windows.net/c?sv=2022&sig=abc%2Fdef%2Bghi".to_owned(),
            format!("\u{1b}[31mERROR:\u{1b}[0m {JWT}"),
            format!("\r\n\r\n  failed: {CLIENT_SECRET}\nsecond line"),
            format!("a\tb\u{7}c\u{202e}d {STORAGE_KEY}"),
            format!("{} {JWT}", "é".repeat(140)),
            format!("{}{JWT}", "x ".repeat(20_000)),
            format!("{} {JWT}", "word ".repeat(50)),
        ];
        // Every shaped secret after a long multi-byte prefix ending at the cap.
        for secret in shaped() {
            inputs.push(format!("{} {secret}", "€".repeat(95)));
        }
        inputs
    }

    #[test]
    fn no_secret_survives_any_hostile_input() {
        for input in hostile() {
            for out in [line(&input), sentence(&input)] {
                for secret in secrets() {
                    for piece in [secret, &secret[..12], &secret[secret.len() - 12..]] {
                        assert!(
                            !out.contains(piece),
                            "{piece:?} survived in {out:?} (from {input:?})"
                        );
                    }
                }
                assert!(!out.contains("eyJ"), "{out:?}");
                assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
                assert!(out.len() <= MAX_BYTES + '…'.len_utf8(), "{}", out.len());
            }
        }
    }

    #[test]
    fn the_first_line_with_text_is_kept_cleaned() {
        assert_eq!(line("\n \r\n  first   line \nsecond"), "first line");
        assert_eq!(line("one\rtwo"), "one");
        assert_eq!(line("one\u{2028}two"), "one");
        assert_eq!(line("a\u{1b}[31mred\u{1b}[0m b"), "ared b");
        assert_eq!(line("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(line("a\u{1b}]8;;http://x\u{1b}\\b"), "ab");
        assert_eq!(line("a\u{9b}2Jb"), "ab");
        assert_eq!(line("a\tb\u{0}c\u{202e}d\u{feff}"), "a bcd");
        assert_eq!(line(""), "");
        assert_eq!(line("\u{1b}\n x"), "x");
    }

    #[test]
    fn sentence_keeps_the_first_sentence() {
        let d = "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent is the value.\r\nTrace ID: abc";
        assert_eq!(
            sentence(d),
            "AADSTS7000215: Invalid client secret provided."
        );
        assert_eq!(sentence("no period"), "no period");
        assert_eq!(
            line(d),
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent is the value."
        );
    }

    #[test]
    fn messages_stay_readable() {
        for text in [
            "AADSTS700082: The refresh token has expired due to inactivity.",
            "Subscription '00000000-0000-0000-0000-000000000000' not found.",
            "HTTPSConnectionPool(host='login.microsoftonline.com', port=443): Max retries exceeded with url: /72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token",
            "az login --scope https://management.core.windows.net//.default",
            "the endpoint issued a \"pop\" token, not a bearer token",
            "Identity not found",
            "token_type: Bearer",
            "KeyError: 'access_token'",
            "msal.exceptions.MsalServiceError: invalid_grant",
            "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='login.microsoftonline.com', port=443)",
            "/opt/az/lib/python3.12/site-packages/msal/application.py",
            "Please run 'az login' to setup account.",
            "Trace ID: 5c1e4d2a-0b7f-4e3a-9c6d-1a2b3c4d5e6f Correlation ID: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
            "fetching token: not logged in, run `azd auth login` to login",
        ] {
            assert_eq!(line(text), text);
        }
    }

    #[test]
    fn redactions_keep_the_surrounding_text() {
        assert_eq!(
            line(&format!("bad token {JWT} here")),
            "bad token <redacted> here"
        );
        assert_eq!(
            line(&format!(r#"response {{"accessToken": "{JWT}", "x": 1}}"#)),
            r#"response {"accessToken": "<redacted>", "x": 1}"#
        );
        assert_eq!(
            line(&format!("client_secret={CLIENT_SECRET}&scope=x")),
            "client_secret=<redacted>&scope=x"
        );
        assert_eq!(line("Bearer abc.def-ghi"), "Bearer <redacted>");
        assert_eq!(line("secret provided"), "secret provided");
    }

    #[test]
    fn the_cap_is_on_a_char_boundary() {
        for filler in ["ab ", "é", "€", "😀"] {
            let out = line(&filler.repeat(1000));
            assert!(out.ends_with('…'), "{out}");
            assert!(out.len() <= MAX_BYTES + '…'.len_utf8());
            assert!(out.len() > MAX_BYTES - 4);
        }
        // A huge line is looked at only in part, and its partial last word goes.
        let huge = format!("{} {}", "word ".repeat(4000), "a".repeat(100_000));
        assert!(line(&huge).starts_with("word word"));
    }
}
