//! The answers the loopback server writes: whole responses and the faults (hang, reset, close,
//! trickled, short and oversized bodies), and the rejections of unreadable requests.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// How much unread input the server swallows after a rejection, so the client reads the error
/// instead of a connection reset.
const MAX_DRAIN: usize = 2 * 1024 * 1024;

/// Turns Nagle's algorithm off for a mock's socket: a small piece of a trickled body must go
/// out at once, not wait for the peer's (possibly delayed) acknowledgement. Under paused tokio
/// time such a real-time wait lets the clock jump ahead and fire the client's timeouts.
pub(super) fn no_delay(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
}

/// `Content-Type` of the mocks' JSON answers.
pub(in crate::testing) const JSON: &str = "application/json; charset=utf-8";

/// How a scripted answer goes on the wire, whatever it is: when, with which extra headers, and
/// how fast its body flows.
#[derive(Clone, Default)]
pub(in crate::testing) struct Delivery {
    /// Waited (`tokio::time::sleep`) before anything is sent.
    pub(in crate::testing) delay: Option<Duration>,
    /// Extra response headers.
    pub(in crate::testing) headers: Vec<(String, String)>,
    /// Send the body `.0` bytes at a time, waiting `.1` before each piece.
    pub(in crate::testing) trickle: Option<(usize, Duration)>,
}

/// The answer decided for one request, before it goes on the wire.
pub(in crate::testing) struct Outgoing {
    /// Held until this turns true (or its sender is gone) before anything is sent.
    pub(in crate::testing) hold: Option<watch::Receiver<bool>>,
    pub(in crate::testing) delivery: Delivery,
    pub(in crate::testing) action: Action,
}

impl Outgoing {
    /// `action`, at once, without extra headers.
    pub(in crate::testing) fn new(action: Action) -> Self {
        Outgoing::scripted(action, Delivery::default())
    }

    /// `action`, delivered as `delivery` says.
    pub(in crate::testing) fn scripted(action: Action, delivery: Delivery) -> Self {
        Outgoing {
            hold: None,
            delivery,
            action,
        }
    }

    /// A JSON answer with this status and body.
    pub(in crate::testing) fn json(status: u16, body: Vec<u8>) -> Self {
        Outgoing::new(Action::respond(status, JSON, body))
    }

    /// Adds a response header.
    pub(in crate::testing) fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.delivery.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// What goes on the wire after the request was read.
pub(in crate::testing) enum Action {
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
    pub(in crate::testing) fn respond(
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> Self {
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
    if let Some(mut hold) = outgoing.hold {
        let _ = hold.wait_for(|open| *open).await;
    }
    let Delivery {
        delay,
        headers,
        trickle,
    } = outgoing.delivery;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let head = |status, content_type: Option<&str>, length| {
        response_head(status, content_type, Some(length), server, &headers)
    };
    let (status, content_type, body, length) = match outgoing.action {
        Action::Respond {
            status,
            content_type,
            body,
        } => {
            let length = body.len();
            (status, content_type, body, length)
        }
        Action::ShortBody {
            status,
            body,
            content_length,
        } => (status, Some(Cow::Borrowed(JSON)), body, content_length),
        Action::Oversized {
            bytes,
            prefix,
            suffix,
        } => {
            stream
                .write_all(head(200, Some(JSON), bytes).as_bytes())
                .await?;
            match trickle {
                Some(_) => {
                    let mut body = Vec::new();
                    write_oversized(&mut body, bytes, prefix, suffix).await?;
                    write_body(stream, &body, trickle).await?;
                }
                None => write_oversized(stream, bytes, prefix, suffix).await?,
            }
            return stream.shutdown().await;
        }
        Action::Hang => return std::future::pending().await,
        Action::Close => return Ok(()),
        // With a zero linger, closing the socket (when the caller drops it) sends a RST.
        Action::Reset => return stream.set_zero_linger(),
    };
    stream
        .write_all(head(status, content_type.as_deref(), length).as_bytes())
        .await?;
    write_body(stream, &body, trickle).await?;
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
fn response_head(
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
pub(in crate::testing) fn check_status(status: u16) {
    assert!(
        (100..=999).contains(&status),
        "HTTP status {status} is not a three-digit number"
    );
}

/// The reason phrase the mocks send with `status`.
pub(in crate::testing) fn reason(status: u16) -> &'static str {
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

/// Closes after a rejection without a connection reset: shuts down writing, then swallows what
/// the client is still sending (bounded in size and time), so it can read the answer.
async fn drain_and_close(stream: &mut TcpStream) -> io::Result<()> {
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
