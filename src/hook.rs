//! [`Hook`]: one extension point around every attempt, on a single client and on a fleet, on
//! both surfaces. Before an attempt it may wait (a rate limiter admitting it), refuse it with an
//! error (which ends the request), or change the request (re-sign it with a fresh timestamp);
//! after it, it sees the member, the outcome and the latency (tracing, metrics).
//!
//! A fleet calls it for every attempt: the first, retries, failovers and hedges. A single
//! client makes one attempt per request (redirects are hops of it, not attempts). On the
//! blocking surface `before`'s future is driven on httpfleet's own runtime.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::request::Request;
use crate::response::Response;

/// What [`Hook::before`] returns: a future that admits (`Ok`) or refuses the attempt.
pub type Admission<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// Called before and after every attempt: see the module docs.
///
/// ```
/// use httpfleet::hook::{After, Before, Hook, Admission};
///
/// /// Counts attempts per member.
/// struct Count(std::sync::atomic::AtomicU64);
///
/// impl Hook for Count {
///     fn after(&self, attempt: &After<'_>) {
///         self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         let _ = (attempt.member(), attempt.latency(), attempt.status());
///     }
/// }
/// ```
pub trait Hook: Send + Sync + 'static {
    /// Before an attempt: wait, refuse with an error, or change `attempt`'s request. Defaults to
    /// admitting it at once.
    fn before<'a>(&'a self, attempt: &'a mut Before<'_>) -> Admission<'a> {
        let _ = attempt;
        Box::pin(std::future::ready(Ok(())))
    }

    /// After an attempt, with how it ended. Defaults to nothing.
    fn after(&self, attempt: &After<'_>) {
        let _ = attempt;
    }
}

/// An attempt about to be sent.
pub struct Before<'a> {
    pub(crate) member: Option<&'a str>,
    pub(crate) number: u32,
    pub(crate) request: &'a mut Request,
}

impl Before<'_> {
    /// The fleet member it goes to (`None` on a single client).
    pub fn member(&self) -> Option<&str> {
        self.member
    }

    /// Which attempt of the request it is, from 1.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The request as it will be sent (a fleet member's URL in it).
    pub fn request(&self) -> &Request {
        self.request
    }

    /// The request, to change before it is sent.
    pub fn request_mut(&mut self) -> &mut Request {
        self.request
    }
}

impl fmt::Debug for Before<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Before")
            .field("member", &self.member)
            .field("number", &self.number)
            .field("request", &self.request)
            .finish()
    }
}

/// An attempt that ended.
pub struct After<'a> {
    pub(crate) request: &'a Request,
    pub(crate) member: Option<&'a str>,
    pub(crate) number: u32,
    pub(crate) latency: Duration,
    pub(crate) outcome: std::result::Result<&'a Response, &'a Error>,
}

impl After<'_> {
    /// The request as it was sent (with what [`Hook::before`] changed of it).
    pub fn request(&self) -> &Request {
        self.request
    }

    /// The fleet member it went to (`None` on a single client).
    pub fn member(&self) -> Option<&str> {
        self.member
    }

    /// Which attempt of the request it was, from 1.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// From its start to its response head (or its error).
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// Its response's status, when it got one.
    pub fn status(&self) -> Option<http::StatusCode> {
        self.outcome.ok().map(Response::status)
    }

    /// How it ended: the response (its head; the body is the caller's), or the error.
    pub fn outcome(&self) -> std::result::Result<&Response, &Error> {
        self.outcome
    }
}

impl fmt::Debug for After<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("After")
            .field("member", &self.member)
            .field("number", &self.number)
            .field("latency", &self.latency)
            .field("outcome", &self.outcome)
            .finish()
    }
}
