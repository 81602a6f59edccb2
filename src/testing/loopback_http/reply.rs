//! What the mocks' scripted replies share: the answers any endpoint can be scripted to give (a
//! raw response, a redirect, a body cut short, the connection faults), how a reply goes on the
//! wire ([`Delivery`]), and, through [`scripted_reply_methods!`], the public builder methods
//! every reply type has.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use super::request::RedactedHeaders;
use super::response::{Action, Delivery, check_status};

/// Body bytes that may hold a token: `Debug` shows their length only.
#[derive(Clone)]
pub(in crate::testing) struct RawBytes(pub(in crate::testing) Vec<u8>);

impl fmt::Debug for RawBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

/// A mock's script: the queued replies, then the default one.
#[derive(Debug)]
pub(in crate::testing) struct Script<R> {
    queue: VecDeque<R>,
    default: R,
}

impl<R: Clone> Script<R> {
    /// An empty queue before `default`.
    pub(in crate::testing) fn new(default: R) -> Self {
        Script {
            queue: VecDeque::new(),
            default,
        }
    }

    pub(in crate::testing) fn push(&mut self, reply: R) {
        self.queue.push_back(reply);
    }

    pub(in crate::testing) fn extend(&mut self, replies: impl IntoIterator<Item = R>) {
        self.queue.extend(replies);
    }

    pub(in crate::testing) fn set_default(&mut self, reply: R) {
        self.default = reply;
    }

    /// How many replies are queued.
    pub(in crate::testing) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The next reply: the first queued one, else the default.
    pub(in crate::testing) fn next(&mut self) -> R {
        self.queue
            .pop_front()
            .unwrap_or_else(|| self.default.clone())
    }
}

/// The answers every mock can be scripted to give, whatever its protocol.
#[derive(Clone, Debug)]
pub(in crate::testing) enum Canned {
    Raw {
        status: u16,
        content_type: Option<String>,
        body: RawBytes,
    },
    ShortBody {
        status: u16,
        body: RawBytes,
        content_length: usize,
    },
    Hang,
    Close,
    Reset,
}

impl Canned {
    /// A response sent as it is; `reply` names the reply type in panic messages.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number, or the content type contains a line break.
    pub(in crate::testing) fn raw(
        reply: &str,
        status: u16,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Self {
        check_status(status);
        assert!(
            content_type.is_none_or(|c| !c.contains(['\r', '\n'])),
            "{reply}::raw: invalid content type {content_type:?}"
        );
        Canned::Raw {
            status,
            content_type: content_type.map(str::to_owned),
            body: RawBytes(body),
        }
    }

    /// A JSON response announcing `content_length` bytes that sends only `body`.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit number, or `body` is not shorter than `content_length`.
    pub(in crate::testing) fn short_body(
        reply: &str,
        status: u16,
        body: Vec<u8>,
        content_length: usize,
    ) -> Self {
        check_status(status);
        assert!(
            body.len() < content_length,
            "{reply}::short_body: {} bytes is not short of {content_length}",
            body.len()
        );
        Canned::ShortBody {
            status,
            body: RawBytes(body),
            content_length,
        }
    }

    /// What goes on the wire.
    pub(in crate::testing) fn action(self) -> Action {
        match self {
            Canned::Raw {
                status,
                content_type,
                body,
            } => Action::Respond {
                status,
                content_type: content_type.map(Cow::Owned),
                body: body.0,
            },
            Canned::ShortBody {
                status,
                body,
                content_length,
            } => Action::ShortBody {
                status,
                body: body.0,
                content_length,
            },
            Canned::Hang => Action::Hang,
            Canned::Close => Action::Close,
            Canned::Reset => Action::Reset,
        }
    }
}

impl Delivery {
    /// Adds a response header; `reply` names the reply type in panic messages.
    ///
    /// # Panics
    ///
    /// If the name is empty or either contains a line break (or the name a colon).
    pub(in crate::testing) fn add_header(&mut self, reply: &str, name: String, value: String) {
        assert!(
            !name.is_empty() && !name.contains([':', '\r', '\n']) && !value.contains(['\r', '\n']),
            "{reply}::with_header: invalid header {name:?}"
        );
        self.headers.push((name, value));
    }

    /// Trickles the body.
    ///
    /// # Panics
    ///
    /// If `chunk_bytes` is zero.
    pub(in crate::testing) fn set_trickle(
        &mut self,
        reply: &str,
        chunk_bytes: usize,
        every: Duration,
    ) {
        assert!(
            chunk_bytes > 0,
            "{reply}::with_trickle: chunk_bytes must be at least 1"
        );
        self.trickle = Some((chunk_bytes, every));
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Delivery");
        if let Some(delay) = self.delay {
            d.field("delay", &delay);
        }
        if let Some((chunk_bytes, every)) = self.trickle {
            d.field(
                "trickle",
                &format_args!("{chunk_bytes} bytes every {every:?}"),
            );
        }
        if !self.headers.is_empty() {
            d.field("headers", &RedactedHeaders(&self.headers));
        }
        d.finish()
    }
}

/// The builder methods every scripted reply type has (`MockReply`, `MockEntraReply`), written
/// once. For the `impl` of `$Reply`, a struct with the fields `kind: ReplyKind` and
/// `delivery: Delivery`, where `ReplyKind` has a `Canned(Canned)` variant and a `Token` variant
/// with `expires_in: u64` and `refresh_in: Option<u64>` fields; `$mock_link` is a doc link to
/// the mock it is pushed to.
macro_rules! scripted_reply_methods {
    ($Reply:ident, $mock_link:literal) => {
        fn new(kind: ReplyKind) -> Self {
            $Reply {
                kind,
                delivery: Delivery::default(),
            }
        }

        fn canned(canned: Canned) -> Self {
            $Reply::new(ReplyKind::Canned(canned))
        }

        /// Sets the token's lifetime in seconds: `expires_in` (and `expires_on` = now + `secs`,
        /// where the protocol sends one).
        ///
        /// # Panics
        ///
        /// If this is not a token reply.
        pub fn expires_in(mut self, secs: u64) -> Self {
            match &mut self.kind {
                ReplyKind::Token { expires_in, .. } => *expires_in = secs,
                _ => panic!(concat!(
                    stringify!($Reply),
                    "::expires_in applies to token replies only"
                )),
            }
            self
        }

        /// Adds a `refresh_in` field (seconds, of the same JSON type as the protocol's other
        /// values) to the token.
        ///
        /// # Panics
        ///
        /// If this is not a token reply.
        pub fn refresh_in(mut self, secs: u64) -> Self {
            match &mut self.kind {
                ReplyKind::Token { refresh_in, .. } => *refresh_in = Some(secs),
                _ => panic!(concat!(
                    stringify!($Reply),
                    "::refresh_in applies to token replies only"
                )),
            }
            self
        }

        /// A response with this status, `Content-Type` (none when `None`) and body bytes, sent
        /// as they are with a matching `Content-Length`: any payload a test needs, such as JSON
        /// after a UTF-8 byte order mark, JSON cut short, plain text, or bytes that are not
        /// UTF-8.
        ///
        /// # Panics
        ///
        /// If `status` is not a three-digit number, or the content type contains a line break.
        pub fn raw(status: u16, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Self {
            $Reply::canned(Canned::raw(
                stringify!($Reply),
                status,
                content_type,
                body.into(),
            ))
        }

        /// A redirect: this status (a 3xx, say) with `Location: location` and an empty body, as
        /// a captive portal or a proxy sends. Clients of the crate never follow it.
        ///
        /// # Panics
        ///
        /// If `status` is not a three-digit number, or `location` contains a line break.
        pub fn redirect(status: u16, location: &str) -> Self {
            $Reply::raw(status, None, Vec::new()).with_header("Location", location)
        }

        /// A response with this status and `Content-Type: application/json` that announces
        /// `content_length` bytes but sends only `body`, then closes the connection: a body cut
        /// short in transit.
        ///
        /// # Panics
        ///
        /// If `status` is not a three-digit number, or `body` is not shorter than
        /// `content_length`.
        pub fn short_body(status: u16, body: impl Into<Vec<u8>>, content_length: usize) -> Self {
            $Reply::canned(Canned::short_body(
                stringify!($Reply),
                status,
                body.into(),
                content_length,
            ))
        }

        #[doc = concat!(
                    "Reads the request and never answers; the connection stays open until the ",
            $mock_link,
            " is dropped. Test timeouts with it under paused tokio time."
                )]
        pub fn hang() -> Self {
            $Reply::canned(Canned::Hang)
        }

        /// Reads the request, then closes the connection without a response.
        pub fn close() -> Self {
            $Reply::canned(Canned::Close)
        }

        /// Reads the request, then resets the connection (a TCP RST, as a crashing peer or a
        /// middlebox would): the client sees "connection reset" rather than an orderly close.
        pub fn reset() -> Self {
            $Reply::canned(Canned::Reset)
        }

        /// Waits this long (`tokio::time::sleep`, free under paused time) before answering.
        pub fn with_delay(mut self, delay: Duration) -> Self {
            self.delivery.delay = Some(delay);
            self
        }

        /// Sends this reply's body `chunk_bytes` bytes at a time, waiting `every`
        /// (`tokio::time::sleep`) before each piece; the status line and headers, with the full
        /// `Content-Length`, go out at once (after [`with_delay`](Self::with_delay)). Applies
        /// to every reply with a body; ignored by the faults that send none. A very long
        /// `every` plays a body that stalls after its headers.
        ///
        /// # Panics
        ///
        /// If `chunk_bytes` is zero.
        pub fn with_trickle(mut self, chunk_bytes: usize, every: Duration) -> Self {
            self.delivery
                .set_trickle(stringify!($Reply), chunk_bytes, every);
            self
        }

        /// Adds a response header, e.g. `with_header("Retry-After", "2")`. Ignored by the
        /// faults that send no headers ([`hang`](Self::hang), [`close`](Self::close),
        /// [`reset`](Self::reset)).
        ///
        /// # Panics
        ///
        /// If the name is empty or either contains a line break (or the name a colon): the
        /// response must stay parseable.
        pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.delivery
                .add_header(stringify!($Reply), name.into(), value.into());
            self
        }
    };
}

pub(in crate::testing) use scripted_reply_methods;

/// `auto_token` and `token` of a reply whose `ReplyKind::Token` is `{ value: Option<Secret>,
/// expires_in, refresh_in }`, for the `impl` of the reply type: `token_reply_methods!(Reply,
/// lifetime in seconds, "what auto_token answers")`.
macro_rules! token_reply_methods {
    ($Reply:ident, $expires_in:literal, $auto_doc:literal) => {
        #[doc = $auto_doc]
        pub fn auto_token() -> Self {
            $Reply::token_of(None)
        }

        /// A token with this value in place of [`auto_token`](Self::auto_token)'s (a reply
        /// with an `expires_in` field says the same lifetime).
        pub fn token(value: &str) -> Self {
            $Reply::token_of(Some($crate::Secret::new(value)))
        }

        fn token_of(value: Option<$crate::Secret>) -> Self {
            $Reply::new(ReplyKind::Token {
                value,
                expires_in: $expires_in,
                refresh_in: None,
            })
        }
    };
}

pub(in crate::testing) use token_reply_methods;

/// The scripting methods every mock has (`MockManagedIdentity`, `MockEntra`), written once: for the `impl`
/// of a mock with `self.shared.state: Mutex<State>` whose `State` has a `script:
/// Script<$Reply>` field; `$first` is a doc link to the initial default reply.
macro_rules! scripted_mock_methods {
    ($Reply:ident, $first:literal) => {
        /// Queues `reply` for the next token request that passes the protocol checks.
        pub fn push(&self, reply: $Reply) {
            self.shared.state.lock().script.push(reply);
        }

        /// Queues several replies, in order.
        pub fn push_many(&self, replies: impl IntoIterator<Item = $Reply>) {
            self.shared.state.lock().script.extend(replies);
        }

        #[doc = concat!("The reply used when the queue is empty (initially ", $first, ").")]
        pub fn set_default(&self, reply: $Reply) {
            self.shared.state.lock().script.set_default(reply);
        }
    };
}

pub(in crate::testing) use scripted_mock_methods;
