//! The syntax of a `WWW-Authenticate` header: challenges (`Bearer`, `PoP`, ...) and their
//! `name=value` parameters. What a Bearer challenge asks for is `challenge.rs`.
//!
//! The header comes from the server being called, so it is untrusted: every input gives a
//! [`Challenges`] or a [`SyntaxError`], never a panic, in time linear in its length.
//!
//! The grammar is RFC 9110's (`challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`,
//! challenges separated by commas), read leniently the way Azure's services write it: Azure
//! Storage separates parameters with spaces instead of commas
//! (`Bearer authorization_uri=https://… resource_id=https://storage.azure.com`), and values
//! may be quoted or not. A bare word after a parameter starts the next challenge; a bare word
//! right after a scheme is that challenge's token68 (`Basic dXNlcjpwYXNz`).

use std::fmt;

/// The longest header read. Real challenges are well under 4 KiB (a claims challenge is a few
/// hundred bytes of base64); anything longer is refused rather than parsed.
pub(crate) const MAX_LEN: usize = 16 * 1024;

/// The most challenges, and parameters in one challenge, that are kept.
const MAX_ITEMS: usize = 64;

/// One challenge: its scheme and parameters, in the order sent.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    scheme: String,
    // Read by no challenge this crate answers yet; kept so the parse is faithful.
    #[cfg_attr(not(test), allow(dead_code))]
    token68: Option<String>,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// Whether the scheme is `scheme` (schemes are case-insensitive).
    pub(crate) fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The first parameter named `name` (names are case-insensitive), unquoted.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The scheme as sent.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn scheme(&self) -> &str {
        &self.scheme
    }
}

// Parameter values may carry claims and error descriptions; names are enough to debug.
impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Challenge")
            .field("scheme", &self.scheme)
            .field("params", &names)
            .finish()
    }
}

/// The challenges of one header, in order.
pub(crate) type Challenges = Vec<Challenge>;

/// Why a header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SyntaxError {
    /// Longer than [`MAX_LEN`].
    #[error("the WWW-Authenticate header is longer than {MAX_LEN} bytes")]
    TooLong,
    /// No challenge at all.
    #[error("the WWW-Authenticate header holds no challenge")]
    Empty,
    /// A `name=value` parameter before any scheme.
    #[error("the WWW-Authenticate header starts with a parameter instead of a scheme")]
    ParameterWithoutScheme,
    /// A quoted string without its closing quote.
    #[error("a quoted value in the WWW-Authenticate header is not closed")]
    UnclosedQuote,
    /// A byte that cannot appear outside a quoted string (a control character, `"` or `\`).
    #[error("the WWW-Authenticate header has an unexpected character at byte {0}")]
    UnexpectedByte(usize),
    /// More than [`MAX_ITEMS`] challenges or parameters.
    #[error("the WWW-Authenticate header has more than {MAX_ITEMS} challenges or parameters")]
    TooManyItems,
}

/// Reads the challenges of a `WWW-Authenticate` header's value.
pub(crate) fn parse(header: &str) -> Result<Challenges, SyntaxError> {
    if header.len() > MAX_LEN {
        return Err(SyntaxError::TooLong);
    }
    let mut lexer = Lexer {
        bytes: header.as_bytes(),
        text: header,
        at: 0,
    };
    let mut challenges: Challenges = Vec::new();
    // Whether the current challenge has only its scheme so far (a bare word may be its token68).
    let mut just_scheme = false;
    loop {
        let comma = lexer.skip_separators();
        let Some(word) = lexer.word()? else {
            break;
        };
        if lexer.peek_after_spaces() == Some(b'=') && !lexer.is_token68_padding() {
            lexer.skip_spaces();
            lexer.at += 1; // '='
            lexer.skip_spaces();
            let value = lexer.value()?;
            let current = challenges
                .last_mut()
                .ok_or(SyntaxError::ParameterWithoutScheme)?;
            if current.params.len() >= MAX_ITEMS {
                return Err(SyntaxError::TooManyItems);
            }
            current.params.push((word.to_owned(), value));
            just_scheme = false;
        } else if just_scheme && !comma {
            // `Basic dXNlcjpwYXNz` or `Negotiate abc==`: the token68 with its padding.
            let padding = lexer.take_while(|b| b == b'=');
            if let Some(current) = challenges.last_mut() {
                current.token68 = Some(format!("{word}{padding}"));
            }
            just_scheme = false;
        } else {
            if challenges.len() >= MAX_ITEMS {
                return Err(SyntaxError::TooManyItems);
            }
            challenges.push(Challenge {
                scheme: word.to_owned(),
                token68: None,
                params: Vec::new(),
            });
            just_scheme = true;
        }
    }
    if challenges.is_empty() {
        return Err(SyntaxError::Empty);
    }
    Ok(challenges)
}

struct Lexer<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

/// RFC 9110's `tchar`, plus `/` `:` `+` `@` that unquoted Azure values (URLs, base64) carry.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:@?;[]()<>{}".contains(&b) || b >= 0x80
}

impl<'a> Lexer<'a> {
    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(|&b| keep(b)) {
            self.at += 1;
        }
        // Only ASCII bytes are skipped or split at, so both ends are char boundaries.
        self.text.get(start..self.at).unwrap_or_default()
    }

    fn skip_spaces(&mut self) {
        self.take_while(|b| b == b' ' || b == b'\t');
    }

    /// Skips spaces and commas; whether there was a comma.
    fn skip_separators(&mut self) -> bool {
        self.take_while(|b| b == b' ' || b == b'\t' || b == b',')
            .contains(',')
    }

    fn peek_after_spaces(&self) -> Option<u8> {
        self.bytes
            .get(self.at..)?
            .iter()
            .copied()
            .find(|&b| b != b' ' && b != b'\t')
    }

    /// Whether what follows is `=`s ending the item (token68 padding, `abc==`), rather than the
    /// `=` of a parameter followed by its value.
    fn is_token68_padding(&self) -> bool {
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        let after = rest.iter().position(|&b| b != b'=').unwrap_or(rest.len());
        // `name=` followed by a value is a parameter; `abc==` then the end, a space or a comma
        // is padding. A single `=` followed by a space or the end is an empty parameter value.
        after >= 2
            && rest
                .get(after)
                .is_none_or(|&b| b == b' ' || b == b',' || b == b'\t')
    }

    /// A scheme, parameter name or token68: `None` at the end or at a byte no word starts with.
    fn word(&mut self) -> Result<Option<&'a str>, SyntaxError> {
        let word = self.take_while(|b| is_word_byte(b) && b != b'=');
        if word.is_empty() {
            return match self.bytes.get(self.at) {
                None => Ok(None),
                Some(_) => Err(SyntaxError::UnexpectedByte(self.at)),
            };
        }
        Ok(Some(word))
    }

    /// A parameter's value: a quoted string (with `\` escapes) or a run of word bytes (with
    /// `=`, which unquoted base64 ends with).
    fn value(&mut self) -> Result<String, SyntaxError> {
        if self.bytes.get(self.at) != Some(&b'"') {
            return Ok(self.take_while(|b| is_word_byte(b) || b == b'=').to_owned());
        }
        self.at += 1;
        let mut value = Vec::new();
        loop {
            match self.bytes.get(self.at) {
                None => return Err(SyntaxError::UnclosedQuote),
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') => {
                    let escaped = *self
                        .bytes
                        .get(self.at + 1)
                        .ok_or(SyntaxError::UnclosedQuote)?;
                    value.push(escaped);
                    self.at += 2;
                }
                Some(&b) => {
                    value.push(b);
                    self.at += 1;
                }
            }
        }
        // The bytes came from a &str and only ASCII backslashes were dropped, so the value is
        // UTF-8; the lossy conversion never replaces anything.
        Ok(String::from_utf8_lossy(&value).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn a_key_vault_challenge_with_quoted_comma_separated_parameters() {
        let header = r#"Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#;
        let challenges = parse(header).unwrap();
        assert_eq!(challenges.len(), 1);
        assert!(challenges[0].is("bearer"));
        assert_eq!(
            params(&challenges[0]),
            [
                (
                    "authorization",
                    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47"
                ),
                ("resource", "https://vault.azure.net"),
            ]
        );
    }

    #[test]
    fn a_storage_challenge_with_unquoted_space_separated_parameters() {
        let header = "Bearer authorization_uri=https://login.microsoftonline.com/tenant/oauth2/authorize resource_id=https://storage.azure.com";
        let challenges = parse(header).unwrap();
        assert_eq!(challenges.len(), 1);
        assert_eq!(
            challenges[0].param("resource_id"),
            Some("https://storage.azure.com")
        );
        assert_eq!(
            challenges[0].param("AUTHORIZATION_URI"),
            Some("https://login.microsoftonline.com/tenant/oauth2/authorize")
        );
    }

    #[test]
    fn several_challenges_token68_and_base64_padding() {
        let header = r#"Basic realm="x", Negotiate abc==, Bearer error="insufficient_claims", claims=eyJhIjoxfQ==, PoP nonce="n\"q""#;
        let challenges = parse(header).unwrap();
        let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme()).collect();
        assert_eq!(schemes, ["Basic", "Negotiate", "Bearer", "PoP"]);
        assert_eq!(challenges[1].token68.as_deref(), Some("abc=="));
        assert_eq!(challenges[2].param("claims"), Some("eyJhIjoxfQ=="));
        assert_eq!(challenges[2].param("error"), Some("insufficient_claims"));
        assert_eq!(challenges[3].param("nonce"), Some("n\"q"));
    }

    #[test]
    fn empty_values_and_spaces_around_equals() {
        let challenges = parse(r#"Bearer realm="", error = "invalid_token""#).unwrap();
        assert_eq!(challenges[0].param("realm"), Some(""));
        assert_eq!(challenges[0].param("error"), Some("invalid_token"));
    }

    #[test]
    fn malformed_headers_are_typed_errors() {
        let long = "Bearer ".to_owned() + &"a".repeat(MAX_LEN);
        let many = "Bearer ".to_owned() + &"a=b, ".repeat(MAX_ITEMS + 1);
        for (header, error) in [
            ("", SyntaxError::Empty),
            ("  ,, ", SyntaxError::Empty),
            ("realm=x", SyntaxError::ParameterWithoutScheme),
            ("Bearer claims=\"abc", SyntaxError::UnclosedQuote),
            ("Bearer claims=\"abc\\", SyntaxError::UnclosedQuote),
            ("Bearer \"x\"", SyntaxError::UnexpectedByte(7)),
            ("Bearer a=b \u{1}", SyntaxError::UnexpectedByte(11)),
            (long.as_str(), SyntaxError::TooLong),
            (many.as_str(), SyntaxError::TooManyItems),
        ] {
            assert_eq!(parse(header), Err(error), "{header:?}");
        }
    }

    #[test]
    fn debug_shows_parameter_names_not_values() {
        let challenges = parse(r#"Bearer claims="eyJzZWNyZXQiOjF9""#).unwrap();
        let debug = format!("{challenges:?}");
        assert!(debug.contains("claims"), "{debug}");
        assert!(!debug.contains("eyJzZWNyZXQiOjF9"), "{debug}");
    }
}
