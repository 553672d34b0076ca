//! A response body as hyper and reqwest deliver it (an `http_body` body), ended by the
//! request's deadline and `read_timeout`: [`Incoming`].

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use std::future::Future as _;

use super::BackendKind;
use super::classify::Stage;
use crate::deadline::Watch;
use crate::error::{Error, Result};
use crate::response::RawBody;

/// A response body being read, under the request's deadline ([`Watch`]) and `read_timeout`.
pub(crate) struct Incoming<B: http_body::Body> {
    pub(crate) body: B,
    pub(crate) watch: Watch,
    pub(crate) read_timeout: Option<Duration>,
    /// The wait for the next piece under `read_timeout`, armed when a wait begins.
    pub(crate) idle: Option<Pin<Box<tokio::time::Sleep>>>,
    pub(crate) backend: BackendKind,
    /// Turns the body's error into httpfleet's (`proxied`: the request went through a proxy).
    pub(crate) fail: fn(B::Error, bool) -> Error,
    pub(crate) proxied: bool,
}

impl<B> Incoming<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
{
    /// The answer of `resp`, its body read under `watch` and `read_timeout`.
    pub(crate) fn answer(
        resp: http::Response<B>,
        watch: Watch,
        read_timeout: Option<Duration>,
        backend: BackendKind,
        fail: fn(B::Error, bool) -> Error,
        proxied: bool,
    ) -> super::Answer {
        let (parts, body) = resp.into_parts();
        super::Answer {
            status: parts.status,
            version: parts.version,
            headers: parts.headers.into(),
            body: super::AnswerBody::Stream(Box::new(Incoming {
                body,
                watch,
                read_timeout,
                idle: None,
                backend,
                fail,
                proxied,
            })),
            phases: crate::response::Phases::default(),
        }
    }
}

impl<B> RawBody for Incoming<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
{
    fn poll_piece(&mut self, cx: &mut Context<'_>, _whole: bool) -> Poll<Result<Option<Bytes>>> {
        loop {
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(None) => return Poll::Ready(Ok(None)),
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err((self.fail)(e, self.proxied)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers are not kept.
                    if let Ok(data) = frame.into_data() {
                        self.idle = None;
                        return Poll::Ready(Ok(Some(data)));
                    }
                }
                Poll::Pending => break,
            }
        }
        if self.watch.poll_expired(cx).is_ready() {
            return Poll::Ready(Err(Stage::Body.deadline_reached(self.backend)));
        }
        if let Some(wait) = self.read_timeout {
            let idle = self
                .idle
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(wait)));
            if idle.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(Stage::Body
                    .deadline_reached(self.backend)
                    .with_detail("read_timeout reached waiting for the body")));
            }
        }
        Poll::Pending
    }

    fn piece_blocking(&mut self, whole: bool) -> Result<Option<Bytes>> {
        super::block_on(std::future::poll_fn(|cx| self.poll_piece(cx, whole)))?
    }
}
