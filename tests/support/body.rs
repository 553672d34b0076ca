//! Response body type used by the test server.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// Response body: a single buffer, a list of chunks (unknown length, so
/// HTTP/1.1 uses chunked transfer encoding), or a channel fed by a task.
pub enum RespBody {
    Full(Option<Bytes>),
    Chunks(VecDeque<Bytes>),
    Chan {
        rx: mpsc::Receiver<Bytes>,
        /// Exact total length if known (advertised through `size_hint`).
        len: Option<u64>,
    },
}

impl RespBody {
    pub fn empty() -> Self {
        RespBody::Full(None)
    }

    pub fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        if b.is_empty() {
            RespBody::Full(None)
        } else {
            RespBody::Full(Some(b))
        }
    }

    pub fn chunks(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        RespBody::Chunks(chunks.into_iter().filter(|c| !c.is_empty()).collect())
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            RespBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RespBody::Chunks(q) => Poll::Ready(q.pop_front().map(|b| Ok(Frame::data(b)))),
            RespBody::Chan { rx, .. } => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Full(b) => b.is_none(),
            RespBody::Chunks(_) => false,
            RespBody::Chan { len, .. } => *len == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            RespBody::Chunks(_) => SizeHint::default(),
            RespBody::Chan { len: Some(n), .. } => SizeHint::with_exact(*n),
            RespBody::Chan { len: None, .. } => SizeHint::default(),
        }
    }
}
