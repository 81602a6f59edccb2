//! The seams through which the crate reaches the outside world: the clock, the environment,
//! HTTP and child processes. Nothing outside this module reads the time or the environment,
//! builds an HTTP client or spawns a process, so each can be replaced in tests and configured
//! in production.

mod clock;
mod env;
mod fs;
mod http;
mod process;
#[cfg(unix)]
pub(crate) mod unix;

pub use clock::{Clock, ManualClock};
#[allow(unused_imports)]
pub(crate) use clock::{
    bounded_call, duration_nanos, from_unix_nanos, monotonic_now, timers_available, to_unix_nanos,
};
pub use env::Env;
#[cfg(feature = "persistence")]
pub(crate) use fs::open_for_read_nofollow;
pub use fs::{FileStamp, Fs};
pub(crate) use http::is_local;
/// The one way a URL is shown in messages and logs (`scheme://host:port/path`).
pub(crate) use http::redacted_url;
pub use http::{
    Http, HttpBuilder, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpTransport,
    RetryPolicy, TransportFuture,
};
pub(crate) use process::resolve_program;
pub use process::{Command, Executor, Output, ProcessError, ProcessErrorKind, TokioExecutor};
