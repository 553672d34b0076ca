//! The backends: one closed [`Backend`] enum over the real clients, dispatched statically with
//! `enum_dispatch` (no vtables, no boxed futures).
//!
//! A backend performs one HTTP exchange: it sends one request and buffers one response, ending by
//! the request's deadline. Everything that must mean the same on every backend (redirects,
//! decompression, default headers, validation) lives above it, in [`Client`](crate::Client).
//!
//! Each backend module has the same shape: a `...Backend` type built by `new(&Config)`, its
//! `AsyncTransport` and `BlockingTransport` impls (crate-private traits), and a `map_error`
//! function that turns the client's own error into a [`crate::Error`] with the normalized
//! [`crate::ErrorKind`].

use std::fmt;
use std::str::FromStr;

use enum_dispatch::enum_dispatch;
use serde::Deserialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::request::Request;
use crate::response::Response;

mod bridge;
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
mod limits;
#[cfg(any(
    feature = "hyper",
    feature = "reqwest",
    feature = "curl",
    feature = "ureq"
))]
pub(crate) use limits::{Limits, content_length};
#[cfg(feature = "curl")]
pub mod curl;
#[cfg(feature = "hyper")]
pub mod hyper;
pub mod mock;
#[cfg(feature = "reqwest")]
pub mod reqwest;
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

/// Which client library serves requests.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// libcurl, through the `curl` crate.
    Curl,
    /// `reqwest`.
    Reqwest,
    /// `hyper` 1 with the `hyper-util` legacy client.
    Hyper,
    /// `ureq` 3 (blocking).
    Ureq,
    /// The scripted in-process [`MockBackend`].
    Mock,
}

impl BackendKind {
    /// Every kind, in a fixed order.
    pub const ALL: [BackendKind; 5] = [
        BackendKind::Curl,
        BackendKind::Reqwest,
        BackendKind::Hyper,
        BackendKind::Ureq,
        BackendKind::Mock,
    ];

    /// The lowercase name (`curl`, `reqwest`, `hyper`, `ureq`, `mock`).
    pub const fn as_str(self) -> &'static str {
        match self {
            BackendKind::Curl => "curl",
            BackendKind::Reqwest => "reqwest",
            BackendKind::Hyper => "hyper",
            BackendKind::Ureq => "ureq",
            BackendKind::Mock => "mock",
        }
    }

    /// True when this build has the backend's cargo feature.
    pub const fn is_enabled(self) -> bool {
        match self {
            BackendKind::Curl => cfg!(feature = "curl"),
            BackendKind::Reqwest => cfg!(feature = "reqwest"),
            BackendKind::Hyper => cfg!(feature = "hyper"),
            BackendKind::Ureq => cfg!(feature = "ureq"),
            BackendKind::Mock => true,
        }
    }

    /// The kinds this build has, real clients first.
    pub fn enabled() -> impl Iterator<Item = BackendKind> {
        BackendKind::ALL.into_iter().filter(|k| k.is_enabled())
    }
}

impl Default for BackendKind {
    fn default() -> Self {
        [
            BackendKind::Hyper,
            BackendKind::Reqwest,
            BackendKind::Curl,
            BackendKind::Ureq,
        ]
        .into_iter()
        .find(|k| k.is_enabled())
        .unwrap_or(BackendKind::Mock)
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        BackendKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                Error::builder(format!(
                    "unknown backend {s:?}: expected curl, reqwest, hyper, ureq or mock"
                ))
            })
    }
}

/// The largest response header block accepted, on every backend: past it the response is a
/// [`ErrorKind::Protocol`](crate::ErrorKind::Protocol) error.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The most response header fields accepted, on every backend (hyper's own default, which hyper
/// and reqwest apply without being told: setting it explicitly makes hyper initialize a
/// 100-entry buffer on every response, about 500 instructions).
pub(crate) const MAX_HEADERS: usize = 100;

/// Sends one request from async code and buffers its response, ending by the request's deadline.
#[enum_dispatch]
pub(crate) trait AsyncTransport {
    /// One exchange: no redirects followed, body not decoded. The request is borrowed: the
    /// client keeps it for a redirect or a resend, without a copy.
    async fn send(&self, request: &Request) -> Result<Response>;
}

/// Sends one request from blocking code and buffers its response, ending by the request's
/// deadline.
#[enum_dispatch]
pub(crate) trait BlockingTransport {
    /// One exchange: no redirects followed, body not decoded.
    fn send_blocking(&self, request: &Request) -> Result<Response>;
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

/// Awaits [`AsyncTransport::send`] on whichever client `$backend` holds, inside the caller's own
/// future: the same static dispatch as `enum_dispatch`'s, without the `async` wrapper it
/// generates, which stores the request a second time (rustc keeps an `async fn`'s arguments
/// beside the future it awaits) and adds one more copy of the whole future per request.
macro_rules! send_dispatched {
    ($backend:expr, $req:expr) => {
        match $backend {
            #[cfg(feature = "curl")]
            $crate::backend::Backend::Curl(b) => {
                $crate::backend::AsyncTransport::send(b, $req).await
            }
            #[cfg(feature = "reqwest")]
            $crate::backend::Backend::Reqwest(b) => {
                $crate::backend::AsyncTransport::send(b, $req).await
            }
            #[cfg(feature = "hyper")]
            $crate::backend::Backend::Hyper(b) => {
                $crate::backend::AsyncTransport::send(b, $req).await
            }
            #[cfg(feature = "ureq")]
            $crate::backend::Backend::Ureq(b) => {
                $crate::backend::AsyncTransport::send(b, $req).await
            }
            $crate::backend::Backend::Mock(b) => {
                $crate::backend::AsyncTransport::send(b, $req).await
            }
            $crate::backend::Backend::Never(n) => match *n {},
        }
    };
}
pub(crate) use send_dispatched;

/// An uninhabited type: the payload of [`Backend::Never`].
#[doc(hidden)]
#[derive(Clone, Debug)]
pub enum Never {}

impl AsyncTransport for Never {
    async fn send(&self, _: &Request) -> Result<Response> {
        match *self {}
    }
}

impl BlockingTransport for Never {
    fn send_blocking(&self, _: &Request) -> Result<Response> {
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

    /// Whether its exchanges keep their deadline on a [`Watch`](crate::deadline::Watch) that
    /// honours a request's nudge (hyper and reqwest): a hedged fleet request then gives its hedge
    /// delay to that watch instead of registering a timer of its own.
    pub(crate) fn honours_nudges(&self) -> bool {
        match self {
            #[cfg(feature = "reqwest")]
            Backend::Reqwest(_) => true,
            #[cfg(feature = "hyper")]
            Backend::Hyper(_) => true,
            _ => false,
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
}

// Compile-time guarantees: a `Backend` can be shared across threads, and its request futures
// can move between worker threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Backend>();
};

#[allow(dead_code)]
fn assert_send_future(backend: &Backend, request: &Request) {
    fn is_send<T: Send>(_: &T) {}
    let fut = AsyncTransport::send(backend, request);
    is_send(&fut);
}
