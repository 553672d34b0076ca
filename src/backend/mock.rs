//! The `mock` backend: scripted replies (responses or errors, each with an optional delay) and a
//! record of every request received. For users' own tests and for fleet tests under a paused
//! tokio clock.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};

use super::{AsyncTransport, BackendKind, BlockingTransport};
use crate::error::{Error, ErrorKind, Result, TimeoutPhase};
use crate::request::Request;
use crate::response::Response;

/// One scripted reply of a [`MockBackend`].
#[derive(Clone, Debug)]
pub struct MockReply {
    delay: Duration,
    outcome: Outcome,
}

#[derive(Clone, Debug)]
enum Outcome {
    Response {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    Error(ErrorKind),
}

impl MockReply {
    /// A response with `status` and an empty body.
    pub fn status(status: u16) -> Self {
        MockReply {
            delay: Duration::ZERO,
            outcome: Outcome::Response {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                headers: HeaderMap::new(),
                body: Bytes::new(),
            },
        }
    }

    /// A `200 OK` response with `body`.
    pub fn ok(body: impl Into<Bytes>) -> Self {
        MockReply::status(200).body(body)
    }

    /// An error of `kind`, as a real backend would report it.
    pub fn error(kind: ErrorKind) -> Self {
        MockReply {
            delay: Duration::ZERO,
            outcome: Outcome::Error(kind),
        }
    }

    /// Sets the body (responses only).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        if let Outcome::Response { body: b, .. } = &mut self.outcome {
            *b = body.into();
        }
        self
    }

    /// Adds a header (responses only). Invalid names or values are ignored.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let (Outcome::Response { headers, .. }, Ok(n), Ok(v)) = (
            &mut self.outcome,
            HeaderName::try_from(name),
            HeaderValue::try_from(value),
        ) {
            headers.append(n, v);
        }
        self
    }

    /// Waits `delay` before replying. A delay past the request's deadline ends in
    /// `Timeout(Headers)` at the deadline.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = crate::config::clamp(delay);
        self
    }
}

/// A scripted backend. Replies are taken in order from the script; when it is empty, the
/// fallback reply (by default `200 OK` with an empty body) answers. Clones share the script and
/// the record, so a test can keep one clone and give another to a client.
#[derive(Clone, Default)]
pub struct MockBackend {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    script: Mutex<VecDeque<MockReply>>,
    fallback: Mutex<Option<MockReply>>,
    received: Mutex<Vec<Request>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl fmt::Debug for MockBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockBackend")
            .field("scripted", &lock(&self.inner.script).len())
            .field("received", &lock(&self.inner.received).len())
            .finish()
    }
}

impl MockBackend {
    /// An empty script answering `200 OK`.
    pub fn new() -> Self {
        MockBackend::default()
    }

    /// Appends a reply to the script.
    pub fn push(&self, reply: MockReply) -> &Self {
        lock(&self.inner.script).push_back(reply);
        self
    }

    /// Sets the reply used when the script is empty.
    pub fn fallback(&self, reply: MockReply) -> &Self {
        *lock(&self.inner.fallback) = Some(reply);
        self
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.inner.received).clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        lock(&self.inner.received).len()
    }

    /// Records `req` and takes the next reply.
    fn next(&self, req: &Request) -> MockReply {
        let mut seen = req.clone();
        seen.headers = req.wire_header_map(0);
        seen.defaults = None;
        lock(&self.inner.received).push(seen);
        lock(&self.inner.script)
            .pop_front()
            .or_else(|| lock(&self.inner.fallback).clone())
            .unwrap_or_else(|| MockReply::status(200))
    }

    fn finish(reply: MockReply, req: &Request) -> Result<Response> {
        match reply.outcome {
            Outcome::Response {
                status,
                headers,
                body,
            } => {
                let body = if req.method == http::Method::HEAD {
                    Bytes::new()
                } else {
                    body
                };
                if let Some(progress) = &req.progress {
                    let len = body.len() as u64;
                    progress.report(len, Some(len));
                }
                Ok(Response::from_parts(
                    BackendKind::Mock,
                    req.uri.clone(),
                    status,
                    Version::HTTP_11,
                    headers,
                    body,
                ))
            }
            Outcome::Error(kind) => Err(Error::new(kind)
                .with_backend(BackendKind::Mock)
                .with_detail("scripted error")
                .with_url(&req.uri)),
        }
    }

    fn timed_out(req: &Request) -> Error {
        Error::new(ErrorKind::Timeout(TimeoutPhase::Headers))
            .with_backend(BackendKind::Mock)
            .with_detail("deadline reached")
            .with_url(&req.uri)
    }
}

impl AsyncTransport for MockBackend {
    async fn send(&self, req: &Request) -> Result<Response> {
        let reply = self.next(req);
        if !reply.delay.is_zero() {
            let deadline = req.deadline_or(Duration::from_secs(30));
            let due = tokio::time::Instant::now() + reply.delay;
            if due > deadline {
                tokio::time::sleep_until(deadline).await;
                return Err(Self::timed_out(req));
            }
            tokio::time::sleep_until(due).await;
        }
        Self::finish(reply, req)
    }
}

impl BlockingTransport for MockBackend {
    fn send_blocking(&self, req: &Request) -> Result<Response> {
        let reply = self.next(req);
        if !reply.delay.is_zero() {
            let deadline = req.deadline_or(Duration::from_secs(30));
            let now = tokio::time::Instant::now();
            let due = now + reply.delay;
            if due > deadline {
                std::thread::sleep(deadline.saturating_duration_since(now));
                return Err(Self::timed_out(req));
            }
            std::thread::sleep(reply.delay);
        }
        Self::finish(reply, req)
    }
}
