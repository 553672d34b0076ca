//! [`blocking::Client`](Client): the same surface as the async [`Client`](crate::Client),
//! without `async`, and its [`Response`], which implements [`std::io::Read`].
//!
//! curl and ureq send and read on the caller's thread; hyper and reqwest run their exchange on
//! a private runtime the caller drives while it waits. Calling it from inside a tokio runtime
//! does not panic: it works (on a helper thread for the async backends), though it blocks that
//! runtime's thread while it waits.
//!
//! A blocking client owns its backend and pool. Do not hand the same hyper or reqwest
//! [`Backend`] to an async client and a blocking one: their pooled connections belong to the
//! runtime that opened them, and a connection opened on a runtime that is not running cannot
//! make progress.

mod response;

use crate::backend::{Backend, BackendKind};
use crate::config::Config;
use crate::error::Result;
use crate::hook::Hook;
use crate::request::{Request, RequestBuilder};

pub use response::Response;

/// A blocking HTTP client over one [`Backend`], or a fleet. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    inner: crate::Client,
}

impl Client {
    /// A client over `backend` with the default [`Config`] policy.
    pub fn new(backend: Backend) -> Self {
        Client {
            inner: crate::Client::new(backend),
        }
    }

    /// A client built from `config`.
    pub fn from_config(config: &Config) -> Result<Self> {
        Ok(Client {
            inner: crate::Client::from_config(config)?,
        })
    }

    /// A client over an already built `backend` with the policy of `config`.
    pub fn with_backend(backend: Backend, config: &Config) -> Result<Self> {
        Ok(Client {
            inner: crate::Client::with_backend(backend, config)?,
        })
    }

    /// The blocking surface over a client built for it (see
    /// [`FleetBuilder::build_blocking`](crate::FleetBuilder::build_blocking)).
    pub(crate) fn wrap(inner: crate::Client) -> Self {
        Client { inner }
    }

    /// The same client with `hook` called before and after every attempt (see [`Hook`]).
    pub fn with_hook(&self, hook: impl Hook) -> Client {
        Client {
            inner: self.inner.with_hook(hook),
        }
    }

    /// The same client keeping its cookies in `jar` (see [`crate::Client::with_cookie_jar`]).
    #[cfg(feature = "cookies")]
    pub fn with_cookie_jar(&self, jar: crate::CookieJar) -> Client {
        Client {
            inner: self.inner.with_cookie_jar(jar),
        }
    }

    /// The jar this client keeps cookies in, if any.
    #[cfg(feature = "cookies")]
    pub fn cookie_jar(&self) -> Option<&crate::CookieJar> {
        self.inner.cookie_jar()
    }

    /// The backend (a fleet's first member's).
    pub fn backend(&self) -> &Backend {
        self.inner.backend()
    }

    /// Which client library serves requests.
    pub fn backend_kind(&self) -> BackendKind {
        self.inner.backend_kind()
    }

    /// Per-member counters of a fleet (see [`crate::Client::stats`]).
    pub fn stats(&self) -> Vec<crate::fleet::MemberStats> {
        self.inner.stats()
    }

    crate::request::request_verbs!(Client);

    /// Sends a built request; returns once the response head has arrived (see [`Response`]).
    pub fn execute(&self, req: Request) -> Result<Response> {
        self.inner.execute_blocking(req).map(Response::new)
    }
}

impl RequestBuilder<'_, Client> {
    /// Sends the request; returns once the response head has arrived (see [`Response`]).
    pub fn send(self) -> Result<Response> {
        self.client.execute(self.request?)
    }
}
