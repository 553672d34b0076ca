//! A request body as hyper and reqwest send it ([`Sending`], an `http_body::Body`): bytes, a
//! file or a stream read as it goes, or a blocking reader read on a thread of its own through a
//! [pipe](super::pipe); its length, when known, is its `Content-Length`, and every piece sent is
//! counted for the upload progress callback.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http_body::{Frame, SizeHint};

use super::pipe;
use crate::error::{BoxError, Result};
use crate::request::{PieceStream, Progress, SendBody};

/// A request body being sent.
pub(crate) struct Sending {
    kind: Kind,
    len: Option<u64>,
    sent: u64,
    progress: Option<Progress>,
}

enum Kind {
    Bytes(Option<Bytes>),
    Stream(PieceStream),
    Pipe(pipe::Reader),
}

impl Sending {
    /// The body `body` of `len` bytes (if known), reported to `progress`; a file is opened
    /// now, and a blocking reader starts being read on a thread of its own, until `deadline`.
    pub(crate) fn new(
        body: SendBody,
        len: Option<u64>,
        progress: Option<&Progress>,
        deadline: tokio::time::Instant,
    ) -> Result<Self> {
        let kind = match body {
            SendBody::Bytes(b) => Kind::Bytes((!b.is_empty()).then_some(b)),
            SendBody::Stream(s) => Kind::Stream(s),
            SendBody::Parts(parts) => Kind::Stream(Box::pin(parts.stream())),
            SendBody::Reader(reader) => Kind::Pipe(pump(reader, deadline.into_std())),
        };
        Ok(Sending {
            kind,
            len,
            sent: 0,
            progress: progress.cloned(),
        })
    }

    /// Whether it holds nothing to send.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == Some(0)
    }
}

/// Reads `reader` on a thread of its own into a pipe, until its end or `deadline`.
fn pump(mut reader: Box<dyn std::io::Read + Send>, deadline: std::time::Instant) -> pipe::Reader {
    let (writer, out) = pipe::pipe(u64::MAX);
    let spawned = std::thread::Builder::new()
        .name("hf-body-reader".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => return writer.end(Ok(())),
                    Ok(n) => match writer.send(Bytes::copy_from_slice(&buf[..n]), deadline) {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => return writer.end(Err(e)),
                    },
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return writer.end(Err(crate::Error::new(crate::ErrorKind::Body)
                            .with_detail("the request body's reader failed")
                            .with_source(e)));
                    }
                }
            }
        });
    if let Err(e) = spawned {
        // The pipe's writer went with the closure: the body ends in an error when read.
        drop(e);
    }
    out
}

impl http_body::Body for Sending {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let piece = match &mut this.kind {
            Kind::Bytes(b) => Ok(b.take()),
            Kind::Stream(s) => match Pin::new(s).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r.transpose().map_err(BoxError::from),
            },
            Kind::Pipe(p) => match p.poll_piece(cx, false) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r.map_err(BoxError::from),
            },
        };
        Poll::Ready(match piece {
            Ok(Some(bytes)) => {
                this.sent += bytes.len() as u64;
                if let Some(progress) = &this.progress {
                    progress.report(this.sent, this.len);
                }
                Some(Ok(Frame::data(bytes)))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Bytes(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self.len {
            Some(len) => SizeHint::with_exact(len),
            None => SizeHint::default(),
        }
    }
}
