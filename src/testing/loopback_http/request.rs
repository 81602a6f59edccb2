//! The loopback server's HTTP/1.1 request reader (one request per connection, `Content-Length`
//! bodies, strict enough that nothing odd reaches a recorded request) and what it records:
//! [`RecordedRequest`].

use std::fmt;
use std::io;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use url::Url;

/// Header names whose values `Debug` output shows; every other value is redacted, since a
/// request may carry a secret under any name.
const PLAIN_HEADERS: [&str; 8] = [
    "accept",
    "content-length",
    "content-type",
    "host",
    "metadata",
    "user-agent",
    "connection",
    "transfer-encoding",
];

/// The request head (request line and headers) the mock reads before answering 431.
const MAX_HEAD: usize = 64 * 1024;
/// The request body the mock reads before answering 413.
pub(in crate::testing) const MAX_BODY: usize = 1024 * 1024;

pub(super) enum Incoming {
    Request(RecordedRequest),
    /// Input that is not an acceptable HTTP request: answer `status`, then close.
    Reject {
        status: u16,
        message: &'static str,
    },
    /// The client closed the connection (or it failed) before sending a whole request.
    Gone,
}

impl Incoming {
    fn bad_request(message: &'static str) -> Self {
        Incoming::Reject {
            status: 400,
            message,
        }
    }
}

/// Reads one request: the head (at most 64 KiB), then a `Content-Length` body (at most
/// 1 MiB). Odd input becomes a rejection to answer, never a panic.
pub(super) async fn read_request(stream: &mut TcpStream) -> io::Result<Incoming> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        // The terminator may straddle two reads.
        let from = buf.len().saturating_sub(3);
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Ok(Incoming::Gone),
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            break from + pos;
        }
        if buf.len() >= MAX_HEAD {
            break MAX_HEAD;
        }
    };
    if head_end + 4 > MAX_HEAD {
        return Ok(Incoming::Reject {
            status: 431,
            message: "request head larger than 64 KiB",
        });
    }
    let mut body = buf.split_off(head_end + 4);
    let head = match parse_head(&buf[..head_end]) {
        Ok(head) => head,
        Err(message) => return Ok(Incoming::bad_request(message)),
    };

    if head.has_header("transfer-encoding") {
        return Ok(Incoming::Reject {
            status: 501,
            message: "the mock reads Content-Length bodies only",
        });
    }
    let mut length = None;
    for (_, value) in head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        let Ok(value) = value.parse::<usize>() else {
            return Ok(Incoming::bad_request("invalid Content-Length"));
        };
        if length.is_some_and(|l| l != value) {
            return Ok(Incoming::bad_request("conflicting Content-Length headers"));
        }
        length = Some(value);
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY {
        return Ok(Incoming::Reject {
            status: 413,
            message: "request body larger than 1 MiB",
        });
    }
    // Anything past the body would be a pipelined request; with `Connection: close` it is
    // ignored.
    body.truncate(length);
    let start = body.len();
    if start < length {
        body.resize(length, 0);
        if stream.read_exact(&mut body[start..]).await.is_err() {
            return Ok(Incoming::Gone);
        }
    }

    let Some(url) = parse_target(&head.target) else {
        return Ok(Incoming::bad_request("invalid request target"));
    };
    Ok(Incoming::Request(RecordedRequest::new(
        head.method,
        head.target,
        &url,
        head.headers,
        body,
    )))
}

struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

/// Parses the request line and headers (without the final empty line), strictly enough that
/// nothing odd reaches the recorded request.
fn parse_head(head: &[u8]) -> Result<Head, &'static str> {
    let head = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line");
    };
    if !is_token(method) {
        return Err("malformed method");
    }
    if target.is_empty() || target.bytes().any(|b| b.is_ascii_control()) {
        return Err("malformed request target");
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err("unsupported HTTP version");
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err("malformed header line");
        };
        // A name with whitespace also catches obsolete line folding.
        if !is_token(name) {
            return Err("malformed header name");
        }
        let value = value.trim_matches([' ', '\t']);
        if value.chars().any(|c| c.is_ascii_control() && c != '\t') {
            return Err("malformed header value");
        }
        headers.push((name.to_owned(), value.to_owned()));
    }
    Ok(Head {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
    })
}

/// An RFC 9110 token: a method or a header name.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Origin form (`/path?query`) or absolute form (`http://host/path?query`, as sent to a proxy).
fn parse_target(target: &str) -> Option<Url> {
    let url = if target.starts_with('/') {
        Url::parse(&format!("http://mock-imds{target}")).ok()?
    } else {
        Url::parse(target).ok()?
    };
    matches!(url.scheme(), "http" | "https").then_some(url)
}

/// One request received by a [`MockManagedIdentity`](crate::testing::MockManagedIdentity).
///
/// `Debug` output shows the query parameter names (not their values), the values of a few plain
/// headers (`Metadata`, `Host`, `Content-Type` and the like) with every other redacted, and only
/// the length of the body.
#[derive(Clone)]
pub struct RecordedRequest {
    method: String,
    target: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RecordedRequest {
    /// A request as the reader parsed it.
    fn new(
        method: String,
        target: String,
        url: &Url,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Self {
        RecordedRequest {
            method,
            path: url.path().to_owned(),
            query: url.query_pairs().into_owned().collect(),
            target,
            headers,
            body,
        }
    }

    /// The method, e.g. `"GET"`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target exactly as sent, e.g.
    /// `/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path, without the query, e.g. `/metadata/identity/oauth2/token`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The first value of the query parameter `name`, percent-decoded.
    pub fn query(&self, name: &str) -> Option<&str> {
        first_value(&self.query, name)
    }

    /// Every query parameter, percent-decoded, in order.
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.query
    }

    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body (empty for a request without one).
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field(
                "query_names",
                &self.query.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .field("headers", &RedactedHeaders(&self.headers))
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// The value of the first of `pairs` named `name` (exactly).
pub(in crate::testing) fn first_value<'a>(
    pairs: &'a [(String, String)],
    name: &str,
) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Headers as a `Debug` map with the values of sensitive ones hidden.
pub(super) struct RedactedHeaders<'a>(pub(super) &'a [(String, String)]);

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.0 {
            if PLAIN_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s)) {
                map.entry(name, value);
            } else {
                map.entry(name, &format_args!("<redacted>"));
            }
        }
        map.finish()
    }
}
