//! The loopback listener the browser sign-in redirects to: `http://localhost:<port>/` on
//! `127.0.0.1` (and `::1` when the redirect URI names `localhost`), answering with a page that
//! tells the user what happened. Requests come from the user's browser — or from anything else
//! on this machine — so every one is read with bounds and checked against the sign-in's
//! `state`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use crate::{Error, ErrorKind, Secret};

/// The longest request head read.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// How long one connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest error text shown or kept from a redirect.
const MAX_ERROR_CHARS: usize = 300;

/// Where the sign-in redirects to.
pub(crate) struct RedirectListener {
    credential: &'static str,
    listeners: Vec<TcpListener>,
    redirect_uri: String,
    path: String,
}

/// What the redirect brought.
pub(crate) enum Redirect {
    /// The authorization code.
    Code(Secret),
    /// The sign-in failed: Entra's `error` and `error_description`.
    Failed { error: String, description: String },
}

/// The query of a request to the redirect path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RedirectQuery {
    pub(crate) code: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) error_description: Option<String>,
}

/// Why a request is not the redirect.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotRedirect {
    /// Not a complete, well-formed `GET` request head.
    Malformed,
    /// Another path (`/favicon.ico`).
    OtherPath,
    /// The path, without `code` or `error` (a browser's preconnect, a reload).
    Empty,
}

impl RedirectListener {
    /// Binds the listener: the port of `configured` (which must be `http://localhost` or
    /// `http://127.0.0.1`), else an ephemeral one with `http://localhost:<port>`.
    pub(crate) async fn bind(
        credential: &'static str,
        configured: Option<&Url>,
    ) -> Result<Self, Error> {
        let (host, port, path) = match configured {
            // No port: any free one (Entra accepts any port for a loopback redirect URI).
            Some(url) => (
                url.host_str().unwrap_or("localhost").to_owned(),
                url.port().unwrap_or(0),
                url.path().to_owned(),
            ),
            None => ("localhost".to_owned(), 0, "/".to_owned()),
        };
        let bind_error = |address: SocketAddr, e: std::io::Error| {
            Error::new(
                ErrorKind::Io,
                credential,
                format!("could not listen on {address} for the sign-in's redirect: {e}"),
            )
            .with_fix("choose another port in the redirect URI, or leave it out for a free one")
        };
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let first = TcpListener::bind(v4).await.map_err(|e| bind_error(v4, e))?;
        let port = first.local_addr().map_err(|e| bind_error(v4, e))?.port();
        let mut listeners = vec![first];
        // A browser may resolve `localhost` to ::1 first.
        if host.eq_ignore_ascii_case("localhost")
            && let Ok(v6) = TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))).await
        {
            listeners.push(v6);
        }
        let redirect_uri = match configured {
            Some(url) => {
                let mut url = url.clone();
                let _ = url.set_port(Some(port));
                url.to_string()
            }
            None => format!("http://localhost:{port}"),
        };
        tracing::debug!(credential, port, "listening for the sign-in's redirect");
        Ok(RedirectListener {
            credential,
            listeners,
            redirect_uri,
            path,
        })
    }

    /// The redirect URI to send in the sign-in.
    pub(crate) fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits for the redirect of the sign-in with `state`, answering every request. A redirect
    /// with another state is refused (a forged or stale one) and ends the wait with an error.
    /// Connections are read side by side, each for at most [`READ_TIMEOUT`]: a browser's idle
    /// pre-connection does not hold up the request that matters.
    pub(crate) async fn wait(&self, state: &str) -> Result<Redirect, Error> {
        let mut reading = tokio::task::JoinSet::new();
        loop {
            let (mut stream, head) = tokio::select! {
                accepted = self.accept() => {
                    let mut stream = accepted?;
                    reading.spawn(async move {
                        let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await;
                        (stream, head)
                    });
                    continue;
                }
                Some(read) = reading.join_next() => match read {
                    Ok((stream, Ok(Ok(head)))) => (stream, head),
                    // Timed out, failed, or the task was cancelled: drop the connection.
                    _ => continue,
                },
            };
            if let Some(outcome) = self.answer_request(&mut stream, &head, state).await {
                return outcome;
            }
        }
    }

    /// Answers one request; `Some` when it ends the wait (the redirect, or a refused one).
    async fn answer_request(
        &self,
        stream: &mut TcpStream,
        head: &[u8],
        state: &str,
    ) -> Option<Result<Redirect, Error>> {
        let query = match parse_redirect_request(head, &self.path) {
            Ok(query) => query,
            Err(NotRedirect::OtherPath) => {
                answer(stream, 404, "Not found", "Nothing here.").await;
                return None;
            }
            Err(NotRedirect::Malformed | NotRedirect::Empty) => {
                answer(
                    stream,
                    400,
                    "Waiting for the sign-in",
                    "This address receives the answer of a sign-in. Finish signing in in the other tab.",
                )
                .await;
                return None;
            }
        };
        if query.state.as_deref() != Some(state) {
            answer(
                stream,
                400,
                "Sign-in refused",
                "This answer does not belong to the sign-in the application started. Return to the application and sign in again.",
            )
            .await;
            return Some(Err(Error::authentication(
                self.credential,
                "the sign-in's redirect carried another state than the one sent: it was not the answer to this sign-in (a stale tab, or a forged request)",
            )
            .with_fix("sign in again, in the browser tab the application opens")));
        }
        if let Some(error) = query.error {
            let description = query.error_description.unwrap_or_default();
            let shown = if description.is_empty() {
                error.clone()
            } else {
                format!("{error}: {description}")
            };
            answer(
                stream,
                200,
                "Sign-in failed",
                &format!("The sign-in failed ({shown}). You can close this tab and return to the application."),
            )
            .await;
            return Some(Ok(Redirect::Failed { error, description }));
        }
        let code = query.code?;
        answer(
            stream,
            200,
            "Signed in",
            "You are signed in. You can close this tab and return to the application.",
        )
        .await;
        Some(Ok(Redirect::Code(Secret::new(code))))
    }

    async fn accept(&self) -> Result<TcpStream, Error> {
        let accepts = self.listeners.iter().map(|l| Box::pin(l.accept()));
        let (accepted, _, _) = futures_select_all(accepts).await;
        accepted.map(|(stream, _)| stream).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                self.credential,
                format!("the sign-in's redirect listener failed: {e}"),
            )
        })
    }
}

/// The first of several futures to complete (a tiny `select_all`).
async fn futures_select_all<F: std::future::Future + Unpin>(
    futures: impl IntoIterator<Item = F>,
) -> (F::Output, usize, ()) {
    let mut futures: Vec<F> = futures.into_iter().collect();
    std::future::poll_fn(move |cx| {
        for (i, future) in futures.iter_mut().enumerate() {
            if let std::task::Poll::Ready(output) = std::pin::Pin::new(future).poll(cx) {
                return std::task::Poll::Ready((output, i, ()));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Reads a request head (up to the blank line), bounded.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(head);
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() >= MAX_REQUEST_BYTES {
            head.truncate(MAX_REQUEST_BYTES);
            return Ok(head);
        }
    }
}

/// Reads a redirect request's head: `GET <path>?<query> HTTP/1.x`. Only the request line is
/// looked at; the query's `code`, `state`, `error` and `error_description` are kept (error
/// texts without control characters, bounded).
pub(crate) fn parse_redirect_request(
    head: &[u8],
    expected_path: &str,
) -> Result<RedirectQuery, NotRedirect> {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or(NotRedirect::Malformed)?;
    let line = std::str::from_utf8(head.get(..line_end).ok_or(NotRedirect::Malformed)?)
        .map_err(|_| NotRedirect::Malformed)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(NotRedirect::Malformed);
    };
    if method != "GET" || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(NotRedirect::Malformed);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let normalize = |p: &str| p.trim_end_matches('/').to_owned();
    if normalize(path) != normalize(expected_path) {
        return Err(NotRedirect::OtherPath);
    }
    let mut found = RedirectQuery {
        code: None,
        state: None,
        error: None,
        error_description: None,
    };
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*name {
            "code" => &mut found.code,
            "state" => &mut found.state,
            "error" => &mut found.error,
            "error_description" => &mut found.error_description,
            _ => continue,
        };
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value.into_owned());
        }
    }
    for text in [&mut found.error, &mut found.error_description] {
        if let Some(value) = text.take() {
            let cleaned: String = value
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_ERROR_CHARS)
                .collect();
            *text = Some(cleaned).filter(|t| !t.trim().is_empty());
        }
    }
    if found.code.is_none() && found.error.is_none() {
        return Err(NotRedirect::Empty);
    }
    Ok(found)
}

/// Writes a small HTML page and closes the connection. Errors are ignored: the browser may
/// have gone.
async fn answer(stream: &mut TcpStream, status: u16, title: &str, text: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{}</p></body></html>\n",
        crate::scrub::html_escape(text),
        title = crate::scrub::html_escape(title)
    );
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<RedirectQuery, NotRedirect> {
        parse_redirect_request(format!("{line}\r\nHost: x\r\n\r\n").as_bytes(), "/")
    }

    #[test]
    fn a_redirect_with_a_code_or_an_error_is_read() {
        let q = parse("GET /?code=abc&state=s1 HTTP/1.1").unwrap();
        assert_eq!(q.code.as_deref(), Some("abc"));
        assert_eq!(q.state.as_deref(), Some("s1"));
        let q = parse(
            "GET /?error=access_denied&error_description=No%0Athanks%3Cb%3E&state=s HTTP/1.1",
        )
        .unwrap();
        assert_eq!(q.error.as_deref(), Some("access_denied"));
        assert_eq!(q.error_description.as_deref(), Some("Nothanks<b>"));
        assert_eq!(
            crate::scrub::html_escape("Nothanks<b>"),
            "Nothanks&lt;b&gt;"
        );
    }

    #[test]
    fn anything_else_is_not_the_redirect() {
        assert_eq!(
            parse("GET /favicon.ico HTTP/1.1"),
            Err(NotRedirect::OtherPath)
        );
        assert_eq!(parse("GET / HTTP/1.1"), Err(NotRedirect::Empty));
        assert_eq!(parse("POST /?code=a HTTP/1.1"), Err(NotRedirect::Malformed));
        assert_eq!(parse("GET /?code=a"), Err(NotRedirect::Malformed));
        assert_eq!(
            parse_redirect_request(b"GET /?code=a HTTP/1.1", "/"),
            Err(NotRedirect::Malformed)
        );
        assert_eq!(
            parse_redirect_request(b"\xff\xfe\r\n\r\n", "/"),
            Err(NotRedirect::Malformed)
        );
    }
}
