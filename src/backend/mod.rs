//! The backends: one closed [`Backend`] enum over the real clients, dispatched statically with
//! `enum_dispatch` (no vtables).
//!
//! A backend performs one hop of an exchange: it sends one `Outgoing` request and answers with
//! the response head as soon as it has arrived, its body to read (`Answer`), the whole ending
//! by the request's deadline. Everything that must mean the same on every backend (redirects,
//! decompression, default headers, validation, limits) lives above it, in the exchange.
//!
//! Each backend module has the same shape: a `...Backend` type built by `new(&Config)`, its
//! `AsyncTransport` and `BlockingTransport` impls (crate-private traits), its response body (a
//! `RawBody`), and a `map_error` function that turns the client's own error into a
//! [`crate::Error`] with the normalized [`crate::ErrorKind`].

use bytes::Bytes;
use enum_dispatch::enum_dispatch;
use http::{StatusCode, Version};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::headers::Headers;
use crate::request::Outgoing;
use crate::response::RawBody;

pub use crate::kind::BackendKind;

pub(crate) mod bridge;
pub(crate) use bridge::block_on;
#[cfg(any(
    feature = "hyper",
    feature = "reqwest",
    feature = "curl",
    feature = "ureq"
))]
pub(crate) mod classify;
#[cfg(any(
    feature = "hyper",
    feature = "reqwest",
    feature = "curl",
    feature = "ureq"
))]
pub(crate) mod limits;
#[cfg(any(
    feature = "hyper",
    feature = "reqwest",
    feature = "curl",
    feature = "ureq"
))]
pub(crate) use limits::Limits;
#[cfg(feature = "curl")]
pub mod curl;
#[cfg(feature = "hyper")]
pub mod hyper;
#[cfg(any(feature = "hyper", feature = "reqwest"))]
mod incoming;
pub mod mock;
pub(crate) mod pipe;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(any(feature = "hyper", feature = "reqwest"))]
mod sending;
#[cfg(feature = "ureq")]
pub mod ureq;
#[cfg(any(feature = "curl", feature = "ureq"))]
mod worker;

#[cfg(feature = "curl")]
pub use self::curl::CurlBackend;
#[cfg(feature = "hyper")]
pub use self::hyper::HyperBackend;
pub use self::mock::{MockBackend, MockReply};
#[cfg(feature = "reqwest")]
pub use self::reqwest::ReqwestBackend;
#[cfg(feature = "ureq")]
pub use self::ureq::UreqBackend;

/// The largest response header block accepted, on every backend: past it the response is a
/// [`ErrorKind::Protocol`](crate::ErrorKind::Protocol) error.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The most response header fields accepted, on every backend (hyper's own default, which hyper
/// and reqwest apply without being told).
pub(crate) const MAX_HEADERS: usize = 100;

/// A response head as a transport delivers it, with its body to read.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: Headers,
    pub(crate) body: AnswerBody,
    /// How opening its connection went, when it opened one and the backend can tell.
    pub(crate) phases: crate::response::Phases,
}

/// The body of an [`Answer`]: already whole in memory, or still to read.
pub(crate) enum AnswerBody {
    Full(Bytes),
    Stream(Box<dyn RawBody>),
}

/// Sends one hop of a request from async code: the answer once its head has arrived.
#[enum_dispatch]
pub(crate) trait AsyncTransport {
    async fn send(&self, out: Outgoing<'_>) -> Result<Answer>;
}

/// Sends one hop of a request from blocking code: the answer once its head has arrived.
#[enum_dispatch]
pub(crate) trait BlockingTransport {
    fn send_blocking(&self, out: Outgoing<'_>) -> Result<Answer>;
}

/// One client library, chosen at run time, dispatched statically.
///
/// Build it with [`Backend::from_config`], or from a backend type with `From`
/// (`Backend::from(MockBackend::new())`). Every variant is `Send + Sync` and cheap to clone.
#[enum_dispatch(AsyncTransport, BlockingTransport)]
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Backend {
    /// libcurl.
    #[cfg(feature = "curl")]
    Curl(CurlBackend),
    /// reqwest.
    #[cfg(feature = "reqwest")]
    Reqwest(ReqwestBackend),
    /// hyper + hyper-util.
    #[cfg(feature = "hyper")]
    Hyper(HyperBackend),
    /// ureq.
    #[cfg(feature = "ureq")]
    Ureq(UreqBackend),
    /// The scripted mock.
    Mock(MockBackend),
    /// Never constructed: keeps the enum well-formed in every feature combination.
    #[doc(hidden)]
    Never(Never),
}

/// An uninhabited type: the payload of [`Backend::Never`].
#[doc(hidden)]
#[derive(Clone, Debug)]
pub enum Never {}

impl AsyncTransport for Never {
    async fn send(&self, _: Outgoing<'_>) -> Result<Answer> {
        match *self {}
    }
}

impl BlockingTransport for Never {
    fn send_blocking(&self, _: Outgoing<'_>) -> Result<Answer> {
        match *self {}
    }
}

impl Backend {
    /// Builds the backend named by `config.backend`, with every knob of `config` set explicitly.
    ///
    /// Fails before any I/O with [`ErrorKind::Builder`](crate::ErrorKind::Builder) on an invalid
    /// configuration and [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) when the
    /// backend cannot honour it or is not compiled in.
    pub fn from_config(config: &Config) -> Result<Backend> {
        config.validate()?;
        let kind = config.backend;
        match kind {
            #[cfg(feature = "curl")]
            BackendKind::Curl => CurlBackend::new(config).map(Backend::from),
            #[cfg(feature = "reqwest")]
            BackendKind::Reqwest => ReqwestBackend::new(config).map(Backend::from),
            #[cfg(feature = "hyper")]
            BackendKind::Hyper => HyperBackend::new(config).map(Backend::from),
            #[cfg(feature = "ureq")]
            BackendKind::Ureq => UreqBackend::new(config).map(Backend::from),
            BackendKind::Mock => Ok(Backend::from(MockBackend::new())),
            #[allow(unreachable_patterns)]
            _ => Err(Error::unsupported(
                kind,
                format!("this build of httpfleet has no `{kind}` feature"),
            )),
        }
    }

    /// Which client library this is.
    pub fn kind(&self) -> BackendKind {
        match self {
            #[cfg(feature = "curl")]
            Backend::Curl(_) => BackendKind::Curl,
            #[cfg(feature = "reqwest")]
            Backend::Reqwest(_) => BackendKind::Reqwest,
            #[cfg(feature = "hyper")]
            Backend::Hyper(_) => BackendKind::Hyper,
            #[cfg(feature = "ureq")]
            Backend::Ureq(_) => BackendKind::Ureq,
            Backend::Mock(_) => BackendKind::Mock,
            Backend::Never(n) => match *n {},
        }
    }

    /// Whether its time is tokio's (the mock's scripted delays follow tokio's clock, paused in
    /// tests): timers beside its exchanges (a fleet's hedge delay) are tokio's then.
    pub(crate) fn on_tokio_time(&self) -> bool {
        matches!(self, Backend::Mock(_))
    }
}

/// What polling a blocking-only response body from async code gets: curl's and ureq's blocking
/// transports hand out bodies that their reader's own thread drives, and only blocking code
/// reads them.
#[cfg(any(feature = "curl", feature = "ureq"))]
fn blocking_body_polled<T>(kind: BackendKind) -> std::task::Poll<Result<T>> {
    std::task::Poll::Ready(Err(Error::new(crate::ErrorKind::Canceled)
        .with_backend(kind)
        .with_detail("a blocking response body was read from async code")))
}

// Compile-time guarantees: a `Backend` can be shared across threads, and its request futures
// can move between worker threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Backend>();
};

#[allow(dead_code)]
fn assert_send_future(backend: &Backend, out: Outgoing<'_>) {
    fn is_send<T: Send>(_: &T) {}
    let fut = AsyncTransport::send(backend, out);
    is_send(&fut);
}
