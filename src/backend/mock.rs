//! The `mock` backend: scripted replies (responses or errors, each with an optional delay; a
//! body whole or in timed pieces) and a record of every request received. For users' own tests
//! and for fleet tests under a paused tokio clock.

use std::collections::VecDeque;
use std::fmt;
use std::io::Read;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};
use tokio::time::Instant;

use super::{Answer, AnswerBody, AsyncTransport, BackendKind, BlockingTransport};
use crate::error::{Error, ErrorKind, Result, TimeoutPhase};
use crate::request::{Outgoing, Request, SendBody};
use crate::response::RawBody;

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
        /// The body in pieces instead, each after a wait.
        pieces: Option<(Vec<Bytes>, Duration)>,
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
                pieces: None,
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

    /// Sends the body as `pieces`, each `every` after the last (the first `every` after the
    /// head; responses only): a body that arrives over time, on tokio's clock.
    pub fn pieces(mut self, pieces: impl IntoIterator<Item = Bytes>, every: Duration) -> Self {
        if let Outcome::Response { pieces: p, .. } = &mut self.outcome {
            *p = Some((pieces.into_iter().collect(), crate::config::clamp(every)));
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
        lock(&self.inner.received)
            .iter()
            // Recorded bodies are bytes, so every copy succeeds.
            .filter_map(Request::try_clone)
            .collect()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        lock(&self.inner.received).len()
    }

    /// Records `out` as the request received, and takes the next reply.
    fn next(&self, out: &Outgoing<'_>, body: Bytes) -> MockReply {
        let mut seen = Request::from_uri(out.method.clone(), out.uri.clone());
        seen.headers = out.header_map(0);
        seen.body = body.into();
        seen.timeout = out.timeout;
        lock(&self.inner.received).push(seen);
        lock(&self.inner.script)
            .pop_front()
            .or_else(|| lock(&self.inner.fallback).clone())
            .unwrap_or_else(|| MockReply::status(200))
    }

    /// The answer `reply` scripts for a request with `method` due by `deadline`.
    fn answer(reply: MockReply, method: &http::Method, deadline: Instant) -> Result<Answer> {
        match reply.outcome {
            Outcome::Response {
                status,
                headers,
                body,
                pieces,
            } => {
                let head_only = *method == http::Method::HEAD;
                let body = match pieces {
                    Some((pieces, every)) if !head_only => AnswerBody::Stream(Box::new(Pieces {
                        pieces: pieces.into(),
                        every,
                        deadline,
                        wait: None,
                    })),
                    _ if head_only => AnswerBody::Full(Bytes::new()),
                    _ => AnswerBody::Full(body),
                };
                Ok(Answer {
                    status,
                    version: Version::HTTP_11,
                    headers: headers.into(),
                    body,
                    phases: Default::default(),
                })
            }
            Outcome::Error(kind) => Err(Error::new(kind)
                .with_backend(BackendKind::Mock)
                .with_detail("scripted error")),
        }
    }

    fn timed_out() -> Error {
        Error::new(ErrorKind::Timeout(TimeoutPhase::Headers))
            .with_backend(BackendKind::Mock)
            .with_detail("deadline reached")
    }
}

/// The bytes of a request body, read whole for the record.
async fn read_body(body: SendBody) -> Result<Bytes> {
    match body {
        SendBody::Stream(mut s) => {
            let mut all = Vec::new();
            while let Some(piece) =
                std::future::poll_fn(|cx| futures_core::Stream::poll_next(s.as_mut(), cx)).await
            {
                let piece = piece.map_err(|e| Error::new(ErrorKind::Body).with_source(e))?;
                all.extend_from_slice(&piece);
            }
            Ok(all.into())
        }
        other => read_body_blocking(other),
    }
}

/// The bytes of a request body, read whole on this thread.
fn read_body_blocking(body: SendBody) -> Result<Bytes> {
    let failed = |e: std::io::Error| Error::new(ErrorKind::Body).with_source(e);
    match body {
        SendBody::Bytes(b) => Ok(b),
        SendBody::Parts(p) => {
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut p.reader(), &mut all)
                .map(|_| Bytes::from(all))
                .map_err(failed)
        }
        SendBody::Reader(mut r) => {
            let mut all = Vec::new();
            r.read_to_end(&mut all).map_err(failed)?;
            Ok(all.into())
        }
        SendBody::Stream(_) => Err(Error::builder(
            "a stream body needs the async client; use Body::reader on the blocking one",
        )),
    }
}

impl AsyncTransport for MockBackend {
    async fn send(&self, mut out: Outgoing<'_>) -> Result<Answer> {
        let body = std::mem::replace(&mut out.body, SendBody::Bytes(Bytes::new()));
        let body = read_body(body).await?;
        let reply = self.next(&out, body);
        if !reply.delay.is_zero() {
            let due = Instant::now() + reply.delay;
            if due > out.deadline {
                tokio::time::sleep_until(out.deadline).await;
                return Err(Self::timed_out());
            }
            tokio::time::sleep_until(due).await;
        }
        Self::answer(reply, out.method, out.deadline)
    }
}

impl BlockingTransport for MockBackend {
    fn send_blocking(&self, mut out: Outgoing<'_>) -> Result<Answer> {
        let body = std::mem::replace(&mut out.body, SendBody::Bytes(Bytes::new()));
        let reply = self.next(&out, read_body_blocking(body)?);
        if !reply.delay.is_zero() {
            let now = Instant::now();
            let due = now + reply.delay;
            if due > out.deadline {
                std::thread::sleep(out.deadline.saturating_duration_since(now));
                return Err(Self::timed_out());
            }
            std::thread::sleep(reply.delay);
        }
        Self::answer(reply, out.method, out.deadline)
    }
}

/// A body in timed pieces ([`MockReply::pieces`]), on tokio's clock, ended by the deadline.
struct Pieces {
    pieces: VecDeque<Bytes>,
    every: Duration,
    deadline: Instant,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl RawBody for Pieces {
    fn poll_piece(&mut self, cx: &mut Context<'_>, _whole: bool) -> Poll<Result<Option<Bytes>>> {
        if self.pieces.is_empty() {
            return Poll::Ready(Ok(None));
        }
        let due = (Instant::now() + self.every).min(self.deadline);
        let wait = self
            .wait
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if wait.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.wait = None;
        if Instant::now() >= self.deadline {
            return Poll::Ready(Err(Error::new(ErrorKind::Timeout(TimeoutPhase::Body))
                .with_backend(BackendKind::Mock)
                .with_detail("deadline reached")));
        }
        Poll::Ready(Ok(self.pieces.pop_front()))
    }

    fn piece_blocking(&mut self, _whole: bool) -> Result<Option<Bytes>> {
        if self.pieces.is_empty() {
            return Ok(None);
        }
        let now = Instant::now();
        if now + self.every > self.deadline {
            std::thread::sleep(self.deadline.saturating_duration_since(now));
            return Err(Error::new(ErrorKind::Timeout(TimeoutPhase::Body))
                .with_backend(BackendKind::Mock)
                .with_detail("deadline reached"));
        }
        std::thread::sleep(self.every);
        Ok(self.pieces.pop_front())
    }
}

use std::future::Future as _;
