//! Exchanges with real servers on 127.0.0.1: what is sent, what comes back, the body cap, the
//! timeouts, broken connections, TLS, and secrets kept out of what is printed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use super::exact;
use crate::Secret;
use crate::system::http::{Http, HttpErrorKind, HttpRequest, RetryPolicy, USER_AGENT};
use crate::system::monotonic_now;

/// What the test server does with one connection, after reading its request.
enum Reply {
    /// Writes these bytes, then closes.
    Raw(Vec<u8>),
    /// Writes `head` at once, then `body` `chunk` bytes at a time, sleeping `every` before
    /// each piece (tokio time), then closes.
    Trickle {
        head: Vec<u8>,
        body: Vec<u8>,
        chunk: usize,
        every: Duration,
    },
    /// Never answers; keeps the connection open.
    Hang,
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Received {
    head: String,
    body: Vec<u8>,
}

/// A raw HTTP/1.1 server on 127.0.0.1: one scripted reply per connection, in order.
struct Server {
    addr: SocketAddr,
    received: Arc<parking_lot::Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(replies: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let log = received.clone();
        let task = tokio::spawn(async move {
            let mut hung = Vec::new();
            for reply in replies {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let request = read_request(&mut stream).await;
                log.lock().push(request);
                match reply {
                    Reply::Raw(bytes) => {
                        // The client may hang up early (body too large): not an error here.
                        let _ = stream.write_all(&bytes).await;
                        let _ = stream.shutdown().await;
                    }
                    Reply::Trickle {
                        head,
                        body,
                        chunk,
                        every,
                    } => {
                        let _ = stream.write_all(&head).await;
                        for piece in body.chunks(chunk) {
                            tokio::time::sleep(every).await;
                            if stream.write_all(piece).await.is_err() {
                                break;
                            }
                        }
                        let _ = stream.shutdown().await;
                    }
                    Reply::Hang => hung.push(stream),
                }
            }
            std::future::pending::<()>().await;
        });
        Server {
            addr,
            received,
            task,
        }
    }

    fn url(&self, path_and_query: &str) -> Url {
        Url::parse(&format!("http://{}{path_and_query}", self.addr)).unwrap()
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(stream: &mut TcpStream) -> Received {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                let head = String::from_utf8_lossy(&buf).into_owned();
                return Received {
                    head,
                    body: Vec::new(),
                };
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Received { head, body }
}

/// A complete response: `head` is the status line and headers; Content-Length is added.
fn http(head: &str, body: &[u8]) -> Reply {
    let mut bytes = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    Reply::Raw(bytes)
}

fn small_http(max_body_bytes: usize) -> Http {
    Http::builder()
        .max_body_bytes(max_body_bytes)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_json_response_comes_back_whole() {
    let json = br#"{"access_token":"eyJ0","expires_in":"3599","token_type":"Bearer"}"#;
    let server = Server::start(vec![http(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nX-Ms-Request-Id: r-1",
        json,
    )])
    .await;
    let request =
        HttpRequest::get(server.url("/metadata/identity/oauth2/token?api-version=2018-02-01"))
            .header("Metadata", "true");
    let response = Http::shared()
        .send(&request, &RetryPolicy::default())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), json);
    assert_eq!(
        response.content_type(),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(response.header("x-ms-request-id"), Some("r-1"));
    assert_eq!(response.header("X-MS-REQUEST-ID"), Some("r-1"));
    assert_eq!(response.attempts(), 1);
    let received = server.received();
    assert_eq!(received.len(), 1);
    let head = received[0].head.to_ascii_lowercase();
    assert!(
        head.starts_with("get /metadata/identity/oauth2/token?api-version=2018-02-01 http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nmetadata: true\r\n"), "{head}");
    assert!(
        head.contains(&format!("user-agent: {}", USER_AGENT.to_ascii_lowercase())),
        "{head}"
    );
}

#[tokio::test]
async fn a_secret_header_is_sent_but_never_printed() {
    let server = Server::start(vec![http("HTTP/1.1 200 OK", b"{}")]).await;
    let secret = Secret::new("identity-header-SECRET-123");
    let request = HttpRequest::get(server.url("/msi/token"))
        .secret_header("X-IDENTITY-HEADER", &secret)
        .header("Accept", "application/json");
    let printed = format!("{request:?} {request:#?}");
    assert!(!printed.contains("SECRET-123"), "{printed}");
    assert!(
        printed.contains("x-identity-header: <redacted>"),
        "{printed}"
    );
    assert!(printed.contains("accept"), "{printed}");

    Http::shared()
        .send(&request, &RetryPolicy::none())
        .await
        .unwrap();
    let head = server.received()[0].head.clone();
    assert!(
        head.contains("x-identity-header: identity-header-SECRET-123\r\n"),
        "{head}"
    );
}

#[tokio::test]
async fn a_secret_header_over_plain_http_to_a_non_local_host_is_refused_unsent() {
    // 0.0.0.0 and [::] are neither loopback nor link-local. (Linux would route them to this
    // host, so even a regression of this rule sends nothing off the machine.)
    let port = RefusedPort::refused();
    for host in ["0.0.0.0", "[::]"] {
        let url = Url::parse(&format!("http://{host}:{port}/msi/token")).unwrap();
        let request = HttpRequest::get(url)
            .secret_header("X-IDENTITY-HEADER", &Secret::new("identity-header-SECRET"));
        let error = Http::shared()
            .send(&request, &RetryPolicy::default())
            .await
            .unwrap_err();
        assert_eq!(error.attempts(), 0, "{error}");
        let text = error.to_string();
        assert!(text.contains("plain http"), "{text}");
        assert!(text.contains("x-identity-header"), "{text}");
        assert!(!format!("{text} {error:?}").contains("SECRET"), "{text}");
    }
}

/// A loopback port with nothing listening.
struct RefusedPort;

impl RefusedPort {
    fn refused() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }
}

#[tokio::test]
async fn an_untrusted_server_certificate_says_so_and_how_to_trust_a_ca() {
    let server = TlsServer::start(false).await;
    let error = Http::shared()
        .send(
            &HttpRequest::get(server.url.clone()),
            &RetryPolicy::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), HttpErrorKind::Tls);
    assert_eq!(error.attempts(), 1, "not retried");
    let text = error.to_string();
    assert!(
        text.contains("the server's certificate is not trusted"),
        "{text}"
    );
    assert!(
        text.contains("not signed by a trusted certificate authority"),
        "{text}"
    );
    let fix = error.fix().unwrap_or_default();
    assert!(fix.contains("SSL_CERT_FILE"), "{fix}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);
}

/// A TLS server on 127.0.0.1 with a fresh self-signed certificate. It reads one request per
/// connection and answers `{}`; with `drop_first`, it closes its first connection without a TLS
/// `close_notify` after reading the request instead (an abrupt close before the response head).
struct TlsServer {
    url: Url,
    /// The SHA-1 thumbprint of its certificate.
    thumbprint: [u8; 20],
    /// How many requests it read (a failed handshake reads none).
    requests: Arc<AtomicUsize>,
}

impl TlsServer {
    async fn start(drop_first: bool) -> TlsServer {
        let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = generated.cert.der().clone();
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                // A client that does not trust the certificate aborts the handshake.
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    continue;
                };
                let mut buf = vec![0; 4096];
                let _ = tls.read(&mut buf).await.unwrap();
                if counted.fetch_add(1, Ordering::SeqCst) == 0 && drop_first {
                    drop(tls); // no close_notify
                    continue;
                }
                tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                    .await
                    .unwrap();
                tls.shutdown().await.unwrap();
            }
        });
        let mut thumbprint = [0; 20];
        thumbprint.copy_from_slice(sha1.as_ref());
        TlsServer {
            url: format!("https://{addr}/token").parse().unwrap(),
            thumbprint,
            requests,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_tls_connection_closed_abruptly_before_the_response_is_retried_at_once() {
    let server = TlsServer::start(true).await;
    let http = Http::builder()
        .pin_server_certificate_sha1(server.thumbprint)
        .build()
        .unwrap();
    let started = monotonic_now();
    let response = http
        .send(
            &HttpRequest::get(server.url.clone()),
            &RetryPolicy::default(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.attempts(), 2);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "retried at once, not after the backoff: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_form_body_arrives_intact() {
    let server = Server::start(vec![http("HTTP/1.1 200 OK", b"{}")]).await;
    let request = HttpRequest::post(server.url("/tenant/oauth2/v2.0/token")).form(&[
        ("grant_type", "client_credentials"),
        ("client_secret", "a&b=c d+é"),
        ("scope", "https://vault.azure.net/.default"),
    ]);
    assert_eq!(request.method(), "POST");
    Http::shared()
        .send(&request, &RetryPolicy::none())
        .await
        .unwrap();
    let received = &server.received()[0];
    assert!(
        received
            .head
            .starts_with("POST /tenant/oauth2/v2.0/token HTTP/1.1")
    );
    assert!(
        received
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/x-www-form-urlencoded")
    );
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&received.body)
        .into_owned()
        .collect();
    assert_eq!(
        pairs,
        [
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_secret".to_owned(), "a&b=c d+é".to_owned()),
            (
                "scope".to_owned(),
                "https://vault.azure.net/.default".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn a_declared_length_over_the_cap_is_rejected_at_once() {
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 5000000\r\nConnection: close\r\n\r\n";
    let server = Server::start(vec![Reply::Raw(head.as_bytes().to_vec())]).await;
    let request = HttpRequest::get(server.url("/big"));
    let error = small_http(1024)
        .send(&request, &RetryPolicy::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), HttpErrorKind::BodyTooLarge);
    assert_eq!(error.attempts(), 1, "a too-large body is not retried");
    assert!(
        error
            .to_string()
            .contains("larger than the 1024-byte limit"),
        "{error}"
    );
}

#[tokio::test]
async fn a_chunked_body_growing_past_the_cap_is_rejected() {
    let mut bytes =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    let chunk = vec![b'x'; 16 * 1024];
    for _ in 0..128 {
        bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        bytes.extend_from_slice(&chunk);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    let server = Server::start(vec![Reply::Raw(bytes)]).await;
    let request = HttpRequest::get(server.url("/stream"));
    let error = small_http(64 * 1024)
        .send(&request, &RetryPolicy::none())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), HttpErrorKind::BodyTooLarge);
}

#[tokio::test]
async fn a_body_within_the_cap_is_accepted_chunked() {
    let body = "{\"a\":1}";
    let bytes = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let server = Server::start(vec![Reply::Raw(bytes.into_bytes())]).await;
    let response = small_http(body.len())
        .send(&HttpRequest::get(server.url("/")), &RetryPolicy::none())
        .await
        .unwrap();
    assert_eq!(response.body(), body.as_bytes());
}

#[tokio::test]
async fn a_closed_port_is_connection_refused() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = Url::parse(&format!(
        "http://127.0.0.1:{port}/metadata?client_id=QUERY-VALUE"
    ))
    .unwrap();
    let error = Http::shared()
        .send(&HttpRequest::get(url), &RetryPolicy::none())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), HttpErrorKind::ConnectionRefused);
    assert_eq!(error.attempts(), 1);
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "connection refused by 127.0.0.1:{port} after 1 attempt ("
        )),
        "{text}"
    );
    let source = std::error::Error::source(&error).expect("the cause is kept");
    // The cause itself, not a wrapper around it: callers can downcast it.
    assert!(
        source.downcast_ref::<reqwest::Error>().is_some(),
        "{source:?}"
    );
    let everything = format!("{text} {error:?} {source} {source:?}");
    assert!(!everything.contains("QUERY-VALUE"), "{everything}");
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_times_out() {
    let server = Server::start(vec![Reply::Hang]).await;
    let request =
        HttpRequest::get(server.url("/hang?secret=QUERY-VALUE")).timeout(Duration::from_secs(2));
    let error = Http::shared()
        .send(&request, &RetryPolicy::none())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), HttpErrorKind::Timeout);
    assert_eq!(error.attempts(), 1);
    assert!(
        error.elapsed() >= Duration::from_secs(2) && error.elapsed() < Duration::from_millis(2100)
    );
    let text = error.to_string();
    let expected = format!(
        "no response from {}/hang within 2 s (1 attempt, 2 s)",
        server.addr
    );
    assert_eq!(text, expected);
    assert!(!format!("{error:?}").contains("QUERY-VALUE"));
}

fn trickle(body: &[u8], chunk: usize, every: Duration) -> Reply {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    Reply::Trickle {
        head: head.into_bytes(),
        body: body.to_vec(),
        chunk,
        every,
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_but_steady_body_is_read_whole_past_the_head_timeout() {
    // 100 bytes, 5 a second: 20 s in all, against 2 s to the head and 3 s per pause.
    let body = [b'x'; 100];
    let server = Server::start(vec![trickle(&body, 5, Duration::from_secs(1))]).await;
    let request = HttpRequest::get(server.url("/slow"))
        .timeout(Duration::from_secs(2))
        .read_stall_timeout(Duration::from_secs(3));
    let response = Http::shared()
        .send(&request, &RetryPolicy::default())
        .await
        .unwrap();
    assert_eq!(response.body(), body);
    assert_eq!(response.attempts(), 1);
    assert_eq!(response.elapsed(), Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn a_stalled_body_times_out_after_the_stall_timeout() {
    let server = Server::start(vec![trickle(b"{\"a\":1}", 3, Duration::from_secs(3600))]).await;
    let request = HttpRequest::get(server.url("/stall?secret=QUERY-VALUE"))
        .read_stall_timeout(Duration::from_secs(4));
    let error = Http::shared()
        .send(&request, &RetryPolicy::none())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), HttpErrorKind::Timeout);
    assert_eq!(error.elapsed(), Duration::from_secs(4));
    assert_eq!(
        error.to_string(),
        format!(
            "the response body from {}/stall stalled: nothing arrived for 4 s (1 attempt, 4 s)",
            server.addr
        )
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_still_arriving_when_the_budget_runs_out_is_cut_there() {
    // 1 byte a second for 100 s, against a 30 s budget: steady, but too slow.
    let body = [b'x'; 100];
    let server = Server::start(vec![trickle(&body, 1, Duration::from_secs(1))]).await;
    let policy = RetryPolicy::default().with_budget(Duration::from_secs(30));
    let error = Http::shared()
        .send(&HttpRequest::get(server.url("/slow")), &policy)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), HttpErrorKind::Timeout);
    assert_eq!(
        (error.attempts(), error.elapsed()),
        (1, Duration::from_secs(30))
    );
    assert!(error.to_string().contains("still arriving"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_connection_closed_before_the_head_is_retried_at_once_garbage_is_not() {
    let server = Server::start(vec![Reply::Raw(Vec::new()), http("HTTP/1.1 200 OK", b"ok")]).await;
    let policy = exact(RetryPolicy::default());
    let response = Http::shared()
        .send(&HttpRequest::get(server.url("/")), &policy)
        .await
        .unwrap();
    assert_eq!(
        (response.attempts(), response.elapsed()),
        (2, Duration::ZERO)
    );

    let server = Server::start(vec![
        Reply::Raw(b"garbage\r\n\r\n".to_vec()),
        http("HTTP/1.1 200 OK", b"ok"),
    ])
    .await;
    let response = Http::shared()
        .send(&HttpRequest::get(server.url("/")), &policy)
        .await
        .unwrap();
    assert_eq!(
        (response.attempts(), response.elapsed()),
        (2, Duration::from_millis(800))
    );
}

#[tokio::test]
async fn a_body_cut_short_is_an_io_error() {
    let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n".to_vec();
    bytes.extend_from_slice(&[b'{'; 50]);
    let server = Server::start(vec![Reply::Raw(bytes)]).await;
    let error = Http::shared()
        .send(&HttpRequest::get(server.url("/half")), &RetryPolicy::none())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), HttpErrorKind::Io, "{error:?}");
    assert_eq!(error.attempts(), 1);
}

#[tokio::test]
async fn a_connection_closed_without_a_response_is_an_io_error() {
    let server = Server::start(vec![
        Reply::Raw(Vec::new()),
        Reply::Raw(b"garbage\r\n\r\n".to_vec()),
    ])
    .await;
    for _ in 0..2 {
        let error = Http::shared()
            .send(&HttpRequest::get(server.url("/")), &RetryPolicy::none())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::Io, "{error:?}");
    }
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let server = Server::start(vec![
        http(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere",
            b"",
        ),
        http("HTTP/1.1 200 OK", b"followed"),
    ])
    .await;
    let request = HttpRequest::get(server.url("/token"));
    let response = Http::shared()
        .send(&request, &RetryPolicy::default())
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.header("location"),
        Some("http://127.0.0.1:1/elsewhere")
    );
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn retries_open_a_new_connection_per_attempt() {
    let server = Server::start(vec![
        http(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0",
            b"busy",
        ),
        http("HTTP/1.1 200 OK", b"ok"),
    ])
    .await;
    let response = Http::shared()
        .send(
            &HttpRequest::get(server.url("/token")),
            &exact(RetryPolicy::default()),
        )
        .await
        .unwrap();
    assert_eq!((response.status(), response.attempts()), (200, 2));
    assert_eq!(response.body(), b"ok");
    assert_eq!(server.received().len(), 2);
}

// Logs are checked by tests/no_secrets_in_logs.rs, alone in its binary: a thread-local
// subscriber in a unit test races with tracing's callsite cache while other tests run.
#[tokio::test]
async fn secrets_never_reach_debug_or_errors() {
    let server = Server::start(vec![
        http(
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0",
            b"BODY-SECRET",
        ),
        http(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json",
            b"{\"access_token\":\"BODY-SECRET\"}",
        ),
    ])
    .await;
    let request = HttpRequest::post(server.url("/token?client_id=QUERY-SECRET&api-version=1"))
        .secret_header("Authorization", &Secret::new("HEADER-SECRET"))
        .form(&[("client_secret", "FORM-SECRET")]);
    let quick = RetryPolicy::default().with_initial_delay(Duration::from_millis(1));
    let response = Http::shared().send(&request, &quick).await.unwrap();
    assert_eq!((response.status(), response.attempts()), (200, 2));

    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut refused_url = request.url().clone();
    refused_url.set_port(Some(port)).unwrap();
    let refused = HttpRequest::post(refused_url)
        .secret_header("Authorization", &Secret::new("HEADER-SECRET"))
        .form(&[("client_secret", "FORM-SECRET")]);
    let policy = exact(RetryPolicy::default().with_initial_delay(Duration::from_millis(1)));
    let error = Http::shared().send(&refused, &policy).await.unwrap_err();
    assert_eq!(
        error.attempts(),
        1,
        "a refused loopback port is not retried"
    );

    let printed = format!(
        "{request:?}\n{request:#?}\n{refused:?}\n{response:?}\n{response:#?}\n{error}\n{error:?}\n{error:#?}"
    );
    let secrets = [
        "QUERY-SECRET",
        "HEADER-SECRET",
        "FORM-SECRET",
        "BODY-SECRET",
    ];
    crate::test_util::assert_hides(&printed, &secrets);
    // What is shown instead: names and lengths.
    assert!(
        printed.contains("client_id") && printed.contains("api-version"),
        "{printed}"
    );
    assert!(printed.contains("authorization: <redacted>"), "{printed}");
    assert!(printed.contains("<25 bytes>"), "{printed}");
    assert!(
        printed.contains(&format!("http://{}/token", server.addr)),
        "{printed}"
    );
}
