//! # httpfleet
//!
//! One HTTP client API over four real clients — libcurl, reqwest, hyper and ureq — chosen at run
//! time from configuration and dispatched statically (a closed [`Backend`] enum through
//! `enum_dispatch`: no vtables, no boxed futures).
//!
//! - One [`Config`] means the same on every backend, or the backend refuses it with
//!   [`ErrorKind::Unsupported`] when it is built. No backend default leaks through.
//! - The same fault gives the same [`ErrorKind`] on every backend; the backend's own error is the
//!   [`source`](std::error::Error::source).
//! - A request never outlives its deadline, body included.
//! - An async [`Client`] and a [`blocking::Client`] with the same builder, on every backend.
//!
//! ```no_run
//! # async fn run() -> httpfleet::Result<()> {
//! use std::time::Duration;
//! use httpfleet::{BackendKind, Client, Config};
//!
//! let config = Config::default()
//!     .backend(BackendKind::Reqwest)
//!     .timeout(Duration::from_secs(5));
//! let client = Client::from_config(&config)?;
//! let resp = client.get("http://127.0.0.1:8080/get").header("x-a", "1").send().await?;
//! assert!(resp.status().is_success());
//! # Ok(()) }
//! ```
//!
//! ## Cargo features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `hyper` | yes | hyper 1 + hyper-util legacy client |
//! | `reqwest` | yes | reqwest |
//! | `curl` | yes | libcurl (system library) |
//! | `ureq` | yes | ureq 3 |
//! | `rustls` | yes | rustls with the ring provider, shared by hyper, reqwest and ureq |
//! | `brotli`, `zstd` | no | decode `br` and `zstd` bodies |
//! | `cookies` | no | an opt-in cookie jar ([`CookieJar`]) |
//! | `multipart` | no | `multipart/form-data` bodies |
//! | `pkcs12` | no | client identities from PKCS#12 files |
//! | `hickory` | no | hickory's DNS resolver as [`dns::Resolver::hickory`] |
//! | `market` | no | Binance-compatible market-data clients |
//! | `cli` | no | the `httpfleet` binary |
//!
//! The [`MockBackend`](backend::MockBackend) is always there.

// Unsafe code is refused, but in the curl backend: a `Send` impl (libcurl's handles may move
// between threads, one at a time, which the `curl` crate does not declare) and reading a
// running transfer's timings, which the crate offers only for a finished one
// (`src/backend/curl/transfer.rs` says why each holds).
#![deny(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]
// Shared backend plumbing is partly unused in builds with only some backends.
#![cfg_attr(
    not(all(
        feature = "hyper",
        feature = "reqwest",
        feature = "curl",
        feature = "ureq"
    )),
    allow(dead_code, unused_imports)
)]

pub mod backend;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod bench;
pub mod blocking;
mod client;
mod config;
#[cfg(feature = "cookies")]
mod cookies;
mod deadline;
mod decode;
pub mod dns;
mod error;
mod exchange;
pub mod fleet;
mod headers;
pub mod hook;
mod host_limit;
mod kind;
#[cfg(feature = "market")]
pub mod market;
mod redirect;
mod request;
mod response;
#[cfg(feature = "rustls")]
mod tls;
mod trace;
mod trust;
mod url;

pub use backend::Backend;
pub use client::Client;

/// `multipart/form-data` request bodies (feature `multipart`): [`Form`](multipart::Form) and
/// [`Part`](multipart::Part), sent with [`RequestBuilder::multipart`].
#[cfg(feature = "multipart")]
pub mod multipart {
    pub use crate::request::multipart::{Form, Part};
}
pub use config::{
    BasicAuth, Config, DEFAULT_USER_AGENT, HttpVersion, MAX_DURATION, PoolConfig, Roots, TlsConfig,
    TlsVersion,
};
#[cfg(feature = "cookies")]
pub use cookies::CookieJar;
pub use error::{Attempt, Error, ErrorKind, Result, TimeoutPhase};
pub use fleet::{FleetBuilder, Member, Strategy};
pub use hook::Hook;
pub use kind::BackendKind;
pub use request::{Body, Request, RequestBuilder};
pub use response::{BytesStream, Response, Timings};

/// The `http` crate types httpfleet's API uses.
pub use http::{self, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
