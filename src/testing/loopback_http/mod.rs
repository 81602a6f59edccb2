//! The one loopback HTTP/1.1 server every mock runs on: it accepts connections on
//! `127.0.0.1:0`, reads one request each ([`request`]), asks the mock's [`Handler`] for the
//! answer (the mock records the request and decides under its own lock), writes that answer
//! or fault ([`response`]), re-raises a panic of any of its tasks when dropped, and can put an
//! https front before itself. [`reply`] holds what the mocks' scripted replies share.
//!
//! Nothing here knows a protocol: the mocks import this, never the reverse.

mod reply;
mod request;
mod response;

use std::any::Any;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use url::Url;

use crate::catch_unwind::CatchUnwind;

pub(in crate::testing) use reply::{
    Canned, Script, scripted_mock_methods, scripted_reply_methods, token_reply_methods,
};
#[cfg(test)]
pub(in crate::testing) use request::MAX_BODY;
pub use request::RecordedRequest;
pub(in crate::testing) use request::first_value;
pub(in crate::testing) use response::{Action, Delivery, JSON, Outgoing, check_status, reason};

use request::{Incoming, read_request};
use response::{no_delay, reject, send};

/// A mock's side of the server: what to answer a request.
pub(in crate::testing) trait Handler: Send + Sync + 'static {
    /// Records `request` and decides the answer. `local` is the server's own address (what
    /// the client connected to).
    fn answer(&self, request: RecordedRequest, local: SocketAddr) -> Outgoing;
}

/// The first panic of a server task, re-raised when the server is dropped.
type PanicSlot = Mutex<Option<Box<dyn Any + Send>>>;

/// A running loopback server. Dropping it stops the server: open connections (including hung
/// ones) are closed, and if a server task panicked, the drop re-raises that panic, so a bug in
/// a mock fails the test that hit it.
pub(in crate::testing) struct LoopbackServer {
    addr: SocketAddr,
    /// The `Server` header of every answer, and the name in panic messages.
    name: &'static str,
    panic: Arc<PanicSlot>,
    accept_task: JoinHandle<()>,
    /// TLS fronts started by [`serve_tls`](Self::serve_tls).
    tls_tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl LoopbackServer {
    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime (current-thread or
    /// multi-thread). Each connection is served on its own task.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or if no loopback port can be bound.
    pub(in crate::testing) async fn start(
        name: &'static str,
        handler: Arc<dyn Handler>,
    ) -> LoopbackServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap_or_else(|e| panic!("{name}: cannot bind 127.0.0.1:0: {e}"));
        let addr = local_addr(&listener, name);
        let panic = Arc::new(PanicSlot::default());
        let accept_task = tokio::spawn(accept_loop(listener, handler, name, panic.clone()));
        LoopbackServer {
            addr,
            name,
            panic,
            accept_task,
            tls_tasks: Mutex::new(Vec::new()),
        }
    }

    /// The address the server listens on.
    pub(in crate::testing) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/`.
    pub(in crate::testing) fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).expect("a socket address makes a valid URL")
    }

    /// Starts an https front for this server on another loopback port, presenting `chain`
    /// (leaf first) with `key`, and returns its base URL (`https://127.0.0.1:PORT/`).
    ///
    /// # Panics
    ///
    /// If the certificate or key is unusable, or no loopback port can be bound.
    pub(in crate::testing) async fn serve_tls(
        &self,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Url {
        let name = self.name;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|e| panic!("{name}: TLS protocol versions: {e}"))
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap_or_else(|e| {
                panic!("{name}: the certificate and key do not make a TLS server: {e}")
            });
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap_or_else(|e| panic!("{name}: cannot bind 127.0.0.1:0: {e}"));
        let tls_addr = local_addr(&listener, name);
        let plain = self.addr;
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                no_delay(&stream);
                connections.spawn(async move {
                    // A client that rejects the certificate ends the handshake: nothing to do.
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut backend) = TcpStream::connect(plain).await else {
                        return;
                    };
                    no_delay(&backend);
                    if tokio::io::copy_bidirectional(&mut tls, &mut backend)
                        .await
                        .is_err()
                    {
                        // The plain server reset the connection (or the client did): pass the
                        // reset on instead of a close, as a server speaking TLS itself would.
                        let _ = tls.get_ref().0.set_zero_linger();
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        self.tls_tasks.lock().push(task);
        Url::parse(&format!("https://{tls_addr}/")).expect("a socket address makes a valid URL")
    }
}

/// A loopback address with nothing listening on it, for "connection refused" tests.
///
/// # Panics
///
/// If no loopback port can be bound.
pub(in crate::testing) fn refused_address(name: &str) -> SocketAddr {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("{name}: cannot bind 127.0.0.1:0: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{name}: the listener has no local address: {e}"))
    // The listener is dropped here, so connecting to the address is refused.
}

fn local_addr(listener: &TcpListener, name: &str) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{name}: the listener has no local address: {e}"))
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.accept_task.abort();
        for task in self.tls_tasks.lock().drain(..) {
            task.abort();
        }
        let payload = self.panic.lock().take();
        // A second panic while unwinding would abort the process and hide the first one.
        if let Some(payload) = payload
            && !std::thread::panicking()
        {
            std::panic::resume_unwind(payload);
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    name: &'static str,
    panic: Arc<PanicSlot>,
) {
    // The connections belong to this task: aborting it drops the set, which aborts them all.
    let mut connections = JoinSet::new();
    let accepting = async {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        no_delay(&stream);
                        let served = serve_connection(stream, handler.clone(), name, panic.clone());
                        connections.spawn(served);
                    }
                    Err(error) => {
                        // Typically too many open files: back off instead of spinning.
                        tracing::debug!(server = name, %error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                // Reap finished connections so the set does not grow without bound.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    };
    // The loop only ends by panicking.
    let Err(payload) = CatchUnwind::new(accepting).await;
    panic.lock().get_or_insert(payload);
}

async fn serve_connection(
    mut stream: TcpStream,
    handler: Arc<dyn Handler>,
    name: &'static str,
    panic: Arc<PanicSlot>,
) {
    // The stream outlives the guarded work, so a panic is recorded before the client sees the
    // connection close, and dropping the server right after reliably re-raises it.
    let served = CatchUnwind::new(handle_connection(&mut stream, &*handler, name)).await;
    match served {
        Ok(Ok(())) => {}
        // The client went away; nothing to answer.
        Ok(Err(error)) => tracing::trace!(server = name, %error, "connection ended early"),
        Err(payload) => {
            panic.lock().get_or_insert(payload);
        }
    }
}

async fn handle_connection(
    stream: &mut TcpStream,
    handler: &dyn Handler,
    name: &'static str,
) -> io::Result<()> {
    let request = match read_request(stream).await? {
        Incoming::Request(request) => request,
        Incoming::Reject { status, message } => {
            return reject(stream, status, message, name).await;
        }
        Incoming::Gone => return Ok(()),
    };
    let (method, path) = (request.method().to_owned(), request.path().to_owned());
    let outgoing = handler.answer(request, stream.local_addr()?);
    tracing::debug!(server = name, %method, %path, "answering");
    send(stream, outgoing, name).await
}
