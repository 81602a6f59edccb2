//! What the loopback mocks share: the HTTP/1.1 request reader (one request per connection,
//! `Content-Length` bodies, strict enough that nothing odd reaches a recorded request) and the
//! response writer with its faults (hang, reset, close, trickle, short and oversized bodies).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

use super::mock_imds::RecordedRequest;

/// The request head (request line and headers) the mock reads before answering 431.
const MAX_HEAD: usize = 64 * 1024;
/// The request body the mock reads before answering 413.
pub(super) const MAX_BODY: usize = 1024 * 1024;
/// How much unread input the mock swallows after a rejection, so the client reads the error
/// instead of a connection reset.
const MAX_DRAIN: usize = 2 * 1024 * 1024;

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

/// Closes after a rejection without a connection reset: shuts down writing, then swallows what
/// the client is still sending (bounded in size and time), so it can read the answer.
pub(super) async fn drain_and_close(stream: &mut TcpStream) -> io::Result<()> {
    stream.shutdown().await?;
    let drain = async {
        let mut chunk = [0u8; 8192];
        let mut total = 0;
        while total < MAX_DRAIN {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    Ok(())
}

/// Turns Nagle's algorithm off for a mock's socket: a small piece of a trickled body must go
/// out at once, not wait for the peer's (possibly delayed) acknowledgement. Under paused tokio
/// time such a real-time wait lets the clock jump ahead and fire the client's timeouts.
pub(super) fn no_delay(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
}

/// `Content-Type` of the mocks' JSON answers.
pub(super) const JSON: &str = "application/json; charset=utf-8";

/// The answer decided for one request, before it goes on the wire.
pub(super) struct Outgoing {
    /// Waited (`tokio::time::sleep`) before anything is sent.
    pub(super) delay: Option<Duration>,
    /// Extra response headers.
    pub(super) headers: Vec<(String, String)>,
    /// Send the body `.0` bytes at a time, waiting `.1` before each piece.
    pub(super) trickle: Option<(usize, Duration)>,
    pub(super) action: Action,
}

impl Outgoing {
    pub(super) fn new(action: Action) -> Self {
        Outgoing {
            delay: None,
            headers: Vec::new(),
            trickle: None,
            action,
        }
    }

    pub(super) fn json(status: u16, body: Vec<u8>) -> Self {
        Outgoing::new(Action::respond(status, JSON, body))
    }
}

/// What goes on the wire after the request was read.
pub(super) enum Action {
    /// A whole response with a matching `Content-Length`.
    Respond {
        status: u16,
        content_type: Option<Cow<'static, str>>,
        body: Vec<u8>,
    },
    /// A JSON response announcing `content_length` bytes that sends only `body`, then closes.
    ShortBody {
        status: u16,
        body: Vec<u8>,
        content_length: usize,
    },
    /// A 200 with a JSON-looking body of exactly `bytes` bytes: `prefix`, filler, `suffix`.
    Oversized {
        bytes: usize,
        prefix: &'static [u8],
        suffix: &'static [u8],
    },
    /// Never answers; the connection stays open until the mock is dropped.
    Hang,
    /// Closes the connection without a response.
    Close,
    /// Resets the connection (a TCP RST) without a response.
    Reset,
}

impl Action {
    pub(super) fn respond(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Action::Respond {
            status,
            content_type: Some(Cow::Borrowed(content_type)),
            body,
        }
    }
}

/// Sends `outgoing` on `stream` (naming `server` in the `Server` header), then shuts the
/// connection down, except for the faults that do otherwise.
pub(super) async fn send(
    stream: &mut TcpStream,
    outgoing: Outgoing,
    server: &str,
) -> io::Result<()> {
    if let Some(delay) = outgoing.delay {
        tokio::time::sleep(delay).await;
    }
    let headers = &outgoing.headers;
    let head = |status, content_type: Option<&str>, length| {
        response_head(status, content_type, Some(length), server, headers)
    };
    match outgoing.action {
        Action::Respond {
            status,
            content_type,
            body,
        } => {
            stream
                .write_all(head(status, content_type.as_deref(), body.len()).as_bytes())
                .await?;
            write_body(stream, &body, outgoing.trickle).await?;
        }
        Action::ShortBody {
            status,
            body,
            content_length,
        } => {
            stream
                .write_all(head(status, Some(JSON), content_length).as_bytes())
                .await?;
            write_body(stream, &body, outgoing.trickle).await?;
        }
        Action::Oversized {
            bytes,
            prefix,
            suffix,
        } => {
            stream
                .write_all(head(200, Some(JSON), bytes).as_bytes())
                .await?;
            match outgoing.trickle {
                Some(_) => {
                    let mut body = Vec::new();
                    write_oversized(&mut body, bytes, prefix, suffix).await?;
                    write_body(stream, &body, outgoing.trickle).await?;
                }
                None => write_oversized(stream, bytes, prefix, suffix).await?,
            }
        }
        Action::Hang => return std::future::pending().await,
        Action::Close => return Ok(()),
        // With a zero linger, closing the socket (when the caller drops it) sends a RST.
        Action::Reset => return stream.set_zero_linger(),
    }
    stream.shutdown().await
}

/// Writes `body` at once, or trickled: `chunk_bytes` at a time, sleeping `every` before each
/// piece.
async fn write_body(
    stream: &mut TcpStream,
    body: &[u8],
    trickle: Option<(usize, Duration)>,
) -> io::Result<()> {
    let Some((chunk_bytes, every)) = trickle else {
        return stream.write_all(body).await;
    };
    for piece in body.chunks(chunk_bytes.max(1)) {
        tokio::time::sleep(every).await;
        stream.write_all(piece).await?;
        stream.flush().await?;
    }
    Ok(())
}

/// Writes a JSON-looking body of exactly `bytes` bytes from a small buffer, however large.
async fn write_oversized(
    stream: &mut (impl tokio::io::AsyncWrite + Unpin),
    bytes: usize,
    prefix: &[u8],
    suffix: &[u8],
) -> io::Result<()> {
    static FILL: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    let frame = prefix.len() + suffix.len();
    if bytes < frame {
        let small = [prefix, suffix].concat();
        return stream.write_all(&small[..bytes]).await;
    }
    stream.write_all(prefix).await?;
    let mut left = bytes - frame;
    while left > 0 {
        let n = left.min(FILL.len());
        stream.write_all(&FILL[..n]).await?;
        left -= n;
    }
    stream.write_all(suffix).await
}

/// The status line and headers, ending with the empty line.
pub(super) fn response_head(
    status: u16,
    content_type: Option<&str>,
    content_length: Option<usize>,
    server: &str,
    extra: &[(String, String)],
) -> String {
    // Writing to a String cannot fail.
    let mut head = String::with_capacity(256);
    let _ = write!(head, "HTTP/1.1 {status} {}\r\n", reason(status));
    if let Some(content_type) = content_type {
        let _ = write!(head, "Content-Type: {content_type}\r\n");
    }
    if let Some(length) = content_length {
        let _ = write!(head, "Content-Length: {length}\r\n");
    }
    let _ = write!(head, "Connection: close\r\nServer: {server}\r\n");
    for (name, value) in extra {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    head
}

/// Answers a request the reader rejected with `status` and a plain-text `message`, then closes
/// without a reset.
pub(super) async fn reject(
    stream: &mut TcpStream,
    status: u16,
    message: &str,
    server: &str,
) -> io::Result<()> {
    let head = response_head(
        status,
        Some("text/plain; charset=utf-8"),
        Some(message.len()),
        server,
        &[],
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(message.as_bytes()).await?;
    drain_and_close(stream).await
}

/// Panics unless `status` is a three-digit number.
pub(super) fn check_status(status: u16) {
    assert!(
        (100..=999).contains(&status),
        "HTTP status {status} is not a three-digit number"
    );
}

/// The reason phrase the mocks send with `status`.
pub(super) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}
