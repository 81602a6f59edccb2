//! [`HttpTransport`]: where a client sends its requests instead of the network.

use std::fmt;
use std::future::Future;

use super::{HttpError, HttpRequest, HttpResponse};

/// What an [`HttpTransport`] returns for one attempt.
pub type TransportFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'a>>;

/// Where an [`Http`](super::Http) client built with
/// [`HttpBuilder::transport`](super::HttpBuilder::transport) sends its requests instead of the
/// network: an in-memory endpoint, for tests and simulations that need many clients, or faults,
/// without sockets.
///
/// One call is one attempt. Answer with [`HttpResponse::new`] for any status, or fail with
/// [`HttpError::new`] as the network would (`ConnectionRefused`, `ConnectionReset`…); a future
/// that never finishes is a hang, cut off by the client's timeouts. The client's retries,
/// budgets and body cap apply to what the transport returns.
///
/// ```
/// use std::sync::Arc;
/// use azure_credentials::system::{
///     Http, HttpRequest, HttpResponse, HttpTransport, RetryPolicy, TransportFuture,
/// };
///
/// #[derive(Debug)]
/// struct AlwaysBusy;
///
/// impl HttpTransport for AlwaysBusy {
///     fn send<'a>(&'a self, _request: &'a HttpRequest) -> TransportFuture<'a> {
///         Box::pin(async { Ok(HttpResponse::new(503, [("retry-after", "1")], "busy")) })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let http = Http::builder().transport(Arc::new(AlwaysBusy)).build().unwrap();
/// let request = HttpRequest::get("http://127.0.0.1/token".parse().unwrap());
/// let response = http.send(&request, &RetryPolicy::none()).await.unwrap();
/// assert_eq!(response.status(), 503);
/// # }
/// ```
pub trait HttpTransport: Send + Sync + fmt::Debug + 'static {
    /// One attempt at `request`.
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a>;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::Secret;
    use crate::system::http::{Http, HttpErrorKind, RetryPolicy};
    use crate::system::monotonic_now;

    /// Answers with a script, one entry per attempt, and counts attempts.
    #[derive(Debug, Default)]
    struct Scripted {
        replies: parking_lot::Mutex<Vec<Result<HttpResponse, HttpError>>>,
        attempts: std::sync::atomic::AtomicU32,
    }

    impl HttpTransport for Scripted {
        fn send<'a>(&'a self, _request: &'a HttpRequest) -> TransportFuture<'a> {
            self.attempts
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let reply = self.replies.lock().remove(0);
            Box::pin(async move { reply })
        }
    }

    fn scripted(replies: Vec<Result<HttpResponse, HttpError>>) -> (Arc<Scripted>, Http) {
        let transport = Arc::new(Scripted {
            replies: parking_lot::Mutex::new(replies),
            ..Default::default()
        });
        let http = Http::builder()
            .transport(transport.clone())
            .build()
            .unwrap();
        (transport, http)
    }

    #[tokio::test(start_paused = true)]
    async fn a_transport_gets_the_clients_retries_and_limits() {
        let (transport, http) = scripted(vec![
            Err(HttpError::connection_dropped("reset")),
            Ok(HttpResponse::new(503, [("retry-after", "1")], "")),
            Ok(HttpResponse::new(
                200,
                [("content-type", "application/json")],
                "{}",
            )),
        ]);
        let request = HttpRequest::get("http://127.0.0.1/token".parse().unwrap());
        let response = http.send(&request, &RetryPolicy::default()).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert_eq!(response.attempts(), 3);
        assert_eq!(
            transport.attempts.load(std::sync::atomic::Ordering::SeqCst),
            3
        );

        // The body cap applies.
        let (_, http) = scripted(vec![Ok(HttpResponse::new(
            200,
            [("a", "b")],
            vec![b'x'; 2 << 20],
        ))]);
        let error = http.send(&request, &RetryPolicy::none()).await.unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::BodyTooLarge);
    }

    #[tokio::test(start_paused = true)]
    async fn a_transport_that_never_answers_is_cut_off_by_the_head_timeout() {
        #[derive(Debug)]
        struct Silent;
        impl HttpTransport for Silent {
            fn send<'a>(&'a self, _request: &'a HttpRequest) -> TransportFuture<'a> {
                Box::pin(std::future::pending())
            }
        }
        let http = Http::builder()
            .transport(Arc::new(Silent))
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let request = HttpRequest::get("http://127.0.0.1/token".parse().unwrap());
        let started = monotonic_now();
        let error = http.send(&request, &RetryPolicy::none()).await.unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::Timeout);
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_transport_never_sees_a_secret_bound_for_a_remote_host_over_plain_http() {
        let (transport, http) = scripted(vec![]);
        let request = HttpRequest::get("http://example.com/token".parse().unwrap())
            .secret_header("X-IDENTITY-HEADER", &Secret::new("s"));
        let error = http.send(&request, &RetryPolicy::none()).await.unwrap_err();
        assert_eq!(error.kind(), HttpErrorKind::Insecure);
        assert_eq!(
            transport.attempts.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
    }
}
