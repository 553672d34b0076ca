//! [`blocking::Client`](Client): the same surface as the async [`Client`](crate::Client),
//! without `async`.
//!
//! curl and ureq run on the caller's thread; hyper and reqwest run their exchange on a private
//! runtime. Calling it from inside a tokio runtime does not panic: it works (on a helper thread
//! for the async backends), though it blocks that runtime's thread while it waits.
//!
//! A blocking client owns its backend and pool. Do not hand the same hyper or reqwest
//! [`Backend`] to an async client and a blocking one: their pooled connections belong to the
//! runtime that opened them, and a connection opened on a runtime that is not running cannot
//! make progress.

use crate::backend::{Backend, BackendKind};
use crate::config::Config;
use crate::error::Result;
use crate::request::{Request, RequestBuilder};
use crate::response::Response;

/// A blocking HTTP client over one [`Backend`]. Cheap to clone.
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

    /// The backend.
    pub fn backend(&self) -> &Backend {
        self.inner.backend()
    }

    /// Which client library serves requests.
    pub fn backend_kind(&self) -> BackendKind {
        self.inner.backend_kind()
    }

    crate::request::request_verbs!(Client);

    /// Sends a built request.
    pub fn execute(&self, req: Request) -> Result<Response> {
        self.inner.execute_blocking(req)
    }
}

impl Client {
    /// The blocking surface over a client built for it (see [`FleetBuilder::build_blocking`]).
    ///
    /// [`FleetBuilder::build_blocking`]: crate::FleetBuilder::build_blocking
    pub(crate) fn wrap(inner: crate::Client) -> Self {
        Client { inner }
    }

    /// Per-member counters of a fleet (see [`crate::Client::stats`]).
    pub fn stats(&self) -> Vec<crate::fleet::MemberStats> {
        self.inner.stats()
    }
}

impl RequestBuilder<'_, Client> {
    /// Sends the request and buffers the response.
    pub fn send(self) -> Result<Response> {
        self.client.execute(self.request?)
    }
}
