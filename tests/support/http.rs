//! Loopback HTTP/1.1 servers standing in for the resources a token is for (Blob storage, Key
//! Vault, a Communication Services resource): one request a connection, read by hand so a test
//! sees exactly what the client sent, answered by the test's handler, then the connection closes.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The request target: the path and query exactly as sent.
    pub target: String,
    /// Each header line's name (lower case) and value (trimmed), in order.
    pub headers: Vec<(String, String)>,
    /// The body: `Content-Length` bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// An answer: a status line's code and reason, headers and a body. `Content-Length` and
/// `Connection: close` are added when it is written.
#[derive(Debug, Clone)]
pub struct Response {
    status: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// An empty answer with `status`, e.g. `"200 OK"`.
    pub fn new(status: impl Into<String>) -> Response {
        Response {
            status: status.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }
}

/// Reads one request: the head, then a body of `Content-Length` bytes. `None` when the
/// connection fails or closes first, or the head passes 64 KiB.
pub async fn read_request(stream: &mut (impl AsyncRead + Unpin)) -> Option<Request> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end - 4]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect();
    let mut request = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    request.body = buf[head_end..head_end + length].to_vec();
    Some(request)
}

/// Checks that each of `requests` carried `Authorization: Bearer {token}`.
pub fn assert_each_bears(requests: &[Request], token: &str) {
    let expected = format!("Bearer {token}");
    for request in requests {
        assert_eq!(
            request.header("authorization"),
            Some(expected.as_str()),
            "{request:?}"
        );
    }
}

/// Writes `response` with `Content-Length` and `Connection: close`, and closes the connection.
pub async fn write_response(stream: &mut (impl AsyncWrite + Unpin), response: &Response) {
    let mut head = format!("HTTP/1.1 {}\r\n", response.status);
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        response.body.len()
    ));
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&response.body).await;
    let _ = stream.shutdown().await;
}

/// What a stand-in answers to each request.
pub type Handler = Arc<dyn Fn(Request) -> Response + Send + Sync>;

/// A stand-in on `127.0.0.1:0` that records every request, serving until dropped.
pub struct StandIn {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    task: JoinHandle<()>,
}

impl StandIn {
    /// Plain http: each connection's request goes to `handler`.
    pub async fn start(handler: impl Fn(Request) -> Response + Send + Sync + 'static) -> StandIn {
        Self::serve(None, Arc::new(handler)).await
    }

    /// https with `config` (see [`super::tls::self_signed`]).
    pub async fn start_tls(
        config: rustls::ServerConfig,
        handler: impl Fn(Request) -> Response + Send + Sync + 'static,
    ) -> StandIn {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Self::serve(Some(acceptor), Arc::new(handler)).await
    }

    async fn serve(tls: Option<tokio_rustls::TlsAcceptor>, handler: Handler) -> StandIn {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let record = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tls, handler, record) = (tls.clone(), handler.clone(), record.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                answer(stream, &handler, &record).await;
                            }
                        }
                        None => answer(stream, &handler, &record).await,
                    }
                });
            }
        });
        StandIn {
            addr,
            requests,
            task,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The requests it received, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().clone()
    }
}

async fn answer(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    handler: &Handler,
    record: &Mutex<Vec<Request>>,
) {
    if let Some(request) = read_request(&mut stream).await {
        record.lock().push(request.clone());
        let response = handler(request);
        write_response(&mut stream, &response).await;
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}
