//! [`Body`]: what a request sends. Bytes in memory and files (one, or the parts of a multipart
//! form) can be sent again (after a redirect, a stale connection, a failed attempt); a reader or
//! a stream is read once, as it is sent, and never sent again.

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;

use super::parts::{Parts, Segment};
use crate::error::{BoxError, Error, ErrorKind, Result};

/// A stream of body pieces, as a request sends it from async code.
pub(crate) type PieceStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A request body: bytes in memory, a file, or a reader or stream read as it is sent.
///
/// Bytes and files are replayable: a redirect, a stale pooled connection or a fleet's retry
/// sends them again. A reader or a stream is read once: a request with one is never retried,
/// hedged, resent on a stale connection or sent on after a 307/308 (the 3xx comes back as it
/// is). A body of known length is sent with `Content-Length`; one of unknown length with
/// `Transfer-Encoding: chunked` (HTTP/1.1).
pub struct Body {
    kind: Kind,
    /// Bytes known to be in the body, if known.
    len: Option<u64>,
}

enum Kind {
    Bytes(Bytes),
    /// Files and bytes, read from disk as they are sent.
    Parts(Parts),
    /// A blocking reader, taken when the request is sent.
    Reader(Mutex<Option<Box<dyn Read + Send>>>),
    /// An async stream, taken when the request is sent.
    Stream(Mutex<Option<PieceStream>>),
}

/// A request body as one send consumes it: the bytes, a file to open, or the reader or stream
/// itself (taken out of the request, which cannot send it again).
pub(crate) enum SendBody {
    Bytes(Bytes),
    Parts(Parts),
    Reader(Box<dyn Read + Send>),
    Stream(PieceStream),
}

impl fmt::Debug for SendBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            SendBody::Parts(p) => {
                let files: Vec<_> = p.files().map(|p| p.display().to_string()).collect();
                write!(f, "Parts(files: {files:?})")
            }
            SendBody::Reader(_) => f.write_str("Reader"),
            SendBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Body::from(Bytes::new())
    }

    /// The file at `path`, streamed from disk as it is sent (its length, read now, goes in
    /// `Content-Length`). Replayable: the file is opened again for each send.
    pub fn file(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        let len = std::fs::metadata(&path)?.len();
        Ok(Body::from_parts(vec![Segment::File(path)], len))
    }

    /// Bytes and files sent one after the other, `len` bytes in all. Replayable.
    pub(crate) fn from_parts(segments: Vec<Segment>, len: u64) -> Self {
        Body {
            kind: Kind::Parts(Parts::new(segments)),
            len: Some(len),
        }
    }

    /// A blocking reader, read as the request is sent, for the blocking client; `len` is its
    /// length if known (`Content-Length`), else the body is chunked. Sent once.
    pub fn reader(reader: impl Read + Send + 'static, len: Option<u64>) -> Self {
        Body {
            kind: Kind::Reader(Mutex::new(Some(Box::new(reader)))),
            len,
        }
    }

    /// A stream of pieces, read as the request is sent, for the async client; `len` is its
    /// length if known (`Content-Length`), else the body is chunked. Sent once.
    pub fn stream<S, E>(stream: S, len: Option<u64>) -> Self
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let mapped = MapErr { inner: stream };
        Body {
            kind: Kind::Stream(Mutex::new(Some(Box::pin(mapped)))),
            len,
        }
    }

    /// An async reader (a `tokio::fs::File`, a socket), read as the request is sent, for the
    /// async client; `len` is its length if known. Sent once.
    pub fn async_reader(
        reader: impl tokio::io::AsyncRead + Send + 'static,
        len: Option<u64>,
    ) -> Self {
        let stream = ReaderStream::new(reader);
        Body {
            kind: Kind::Stream(Mutex::new(Some(Box::pin(stream)))),
            len,
        }
    }

    /// The body's length, when it is known.
    pub fn len(&self) -> Option<u64> {
        self.len
    }

    /// True for a body known to hold no byte.
    pub fn is_empty(&self) -> bool {
        self.len == Some(0)
    }

    /// Whether it can be sent again: bytes and files can; readers and streams cannot.
    pub fn is_replayable(&self) -> bool {
        matches!(self.kind, Kind::Bytes(_) | Kind::Parts(_))
    }

    /// The bytes, when the body is in memory.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Whether it is read from async code (a [`Body::stream`] or [`Body::async_reader`]).
    pub(crate) fn is_async_stream(&self) -> bool {
        matches!(self.kind, Kind::Stream(_))
    }

    /// The body for one send: the bytes or the file again, or the reader or stream itself,
    /// taken out (a second send of it fails).
    pub(crate) fn for_send(&self) -> Result<SendBody> {
        let taken = || {
            Error::new(ErrorKind::Builder)
                .with_detail("a reader or stream body is sent once, and was already sent")
        };
        Ok(match &self.kind {
            Kind::Bytes(b) => SendBody::Bytes(b.clone()),
            Kind::Parts(p) => {
                // A file gone or unreadable is refused before anything is sent.
                for path in p.files() {
                    std::fs::File::open(path).map_err(|e| {
                        Error::builder(format!("cannot open {}", path.display())).with_source(e)
                    })?;
                }
                SendBody::Parts(p.clone())
            }
            Kind::Reader(r) => SendBody::Reader(lock(r).take().ok_or_else(taken)?),
            Kind::Stream(s) => SendBody::Stream(lock(s).take().ok_or_else(taken)?),
        })
    }

    /// A copy of a replayable body, or a reader or stream taken over (this one then cannot be
    /// sent).
    pub(crate) fn take_once(&self) -> Body {
        if let Some(copy) = self.try_clone() {
            return copy;
        }
        let kind = match &self.kind {
            Kind::Reader(r) => Kind::Reader(Mutex::new(lock(r).take())),
            Kind::Stream(s) => Kind::Stream(Mutex::new(lock(s).take())),
            Kind::Bytes(b) => Kind::Bytes(b.clone()),
            Kind::Parts(p) => Kind::Parts(p.clone()),
        };
        Body {
            kind,
            len: self.len,
        }
    }

    /// A copy, for a replayable body.
    pub(crate) fn try_clone(&self) -> Option<Body> {
        let kind = match &self.kind {
            Kind::Bytes(b) => Kind::Bytes(b.clone()),
            Kind::Parts(p) => Kind::Parts(p.clone()),
            _ => return None,
        };
        Some(Body {
            kind,
            len: self.len,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Bytes(_) => "bytes",
            Kind::Parts(_) => "files",
            Kind::Reader(_) => "reader",
            Kind::Stream(_) => "stream",
        };
        match self.len {
            Some(len) => write!(f, "Body({kind}, {len} bytes)"),
            None => write!(f, "Body({kind})"),
        }
    }
}

impl PartialEq<[u8]> for Body {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == Some(other)
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Body {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.as_bytes() == Some(&other[..])
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body {
            len: Some(b.len() as u64),
            kind: Kind::Bytes(b),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Body::from(Bytes::from(b))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::from(Bytes::from(s))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::from(Bytes::from_static(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Body::from(Bytes::from_static(s))
    }
}

pin_project_lite::pin_project! {
    /// A stream whose errors become `io::Error`s.
    struct MapErr<S> {
        #[pin]
        inner: S,
    }
}

impl<S, E> Stream for MapErr<S>
where
    S: Stream<Item = std::result::Result<Bytes, E>>,
    E: Into<BoxError>,
{
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.project()
            .inner
            .poll_next(cx)
            .map(|item| item.map(|r| r.map_err(|e| std::io::Error::other(e.into()))))
    }
}

/// An `AsyncRead` as a stream of pieces of up to 64 KiB (each copied out of one reused
/// buffer).
pub(crate) struct ReaderStream {
    reader: Pin<Box<dyn tokio::io::AsyncRead + Send>>,
    buf: Vec<u8>,
    done: bool,
}

impl ReaderStream {
    pub(crate) fn new(reader: impl tokio::io::AsyncRead + Send + 'static) -> Self {
        ReaderStream {
            reader: Box::pin(reader),
            buf: Vec::new(),
            done: false,
        }
    }
}

impl Stream for ReaderStream {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        if this.buf.is_empty() {
            this.buf = vec![0; 64 * 1024];
        }
        let mut read = tokio::io::ReadBuf::new(&mut this.buf);
        match this.reader.as_mut().poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Ok(())) if read.filled().is_empty() => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Ok(())) => Poll::Ready(Some(Ok(Bytes::copy_from_slice(read.filled())))),
        }
    }
}
