//! A response body as the caller reads it: the transport's pieces ([`RawBody`]), decoded
//! ([`Decoder`]), under `max_response_bytes`, reported to the progress callback, and ended by
//! the request's deadline, the same on every backend and surface.

use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use crate::decode::Decoder;
use crate::error::{Error, ErrorKind, Result, TimeoutPhase};
use crate::request::Progress;

/// A response body as a transport delivers it, before decoding. Each transport ends its body by
/// the request's deadline and `read_timeout` (`Timeout(Body)`), and dropping it before its end
/// closes the connection; read to its end, the connection goes back to the pool.
pub(crate) trait RawBody: Send {
    /// The next piece, `None` at the end. `whole`: the caller reads the body whole, so the
    /// transport may gather it rather than hand it over piece by piece.
    fn poll_piece(&mut self, cx: &mut Context<'_>, whole: bool) -> Poll<Result<Option<Bytes>>>;

    /// The same, from blocking code.
    fn piece_blocking(&mut self, whole: bool) -> Result<Option<Bytes>>;
}

/// Where the pieces come from.
enum Raw {
    /// Read to its end.
    Done,
    /// Whole, in memory.
    Full(Bytes),
    /// In a mutex only so that a response is `Sync` (a transport's body need not be): it is
    /// reached through `&mut` alone (`Mutex::get_mut`), never locked.
    Stream(std::sync::Mutex<Box<dyn RawBody>>),
}

impl Raw {
    /// The transport's body, when pieces still come from it.
    fn stream(&mut self) -> Option<&mut Box<dyn RawBody>> {
        match self {
            Raw::Stream(m) => Some(
                m.get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            ),
            _ => None,
        }
    }
}

/// What a body needs to know of its response for errors and progress.
#[derive(Debug)]
pub(crate) struct Meta<'a> {
    pub(crate) backend: crate::BackendKind,
    pub(crate) url: &'a http::Uri,
}

impl Meta<'_> {
    fn error(&self, kind: ErrorKind, detail: String) -> Error {
        Error::new(kind)
            .with_detail(detail)
            .with_backend(self.backend)
            .with_url(self.url)
    }
}

/// The body of a response: see the module docs.
pub(crate) struct Pieces {
    raw: Raw,
    decoder: Option<Box<Decoder>>,
    max: u64,
    /// Decoded bytes handed out.
    delivered: u64,
    /// Bytes received from the transport.
    received: u64,
    /// The `Content-Length` of the encoded body, for progress.
    declared: Option<u64>,
    progress: Option<Progress>,
    /// Checked between decoded slices (the transport ends the wait for pieces by it).
    deadline: Option<Instant>,
    /// When the end of the body was handed out.
    ended_at: Option<Instant>,
    /// The host's connection permit (`pool.max_connections_per_host`), given back at the end.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// How a body's pieces are read: the limits and callbacks around them.
pub(crate) struct Reading {
    pub(crate) decoder: Option<Decoder>,
    pub(crate) max: u64,
    pub(crate) declared: Option<u64>,
    pub(crate) progress: Option<Progress>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Pieces {
    /// A body whose pieces come from `raw`.
    pub(crate) fn streamed(raw: Box<dyn RawBody>, reading: Reading) -> Self {
        Pieces::with(Raw::Stream(std::sync::Mutex::new(raw)), reading)
    }

    /// A body already whole in memory (its connection is free: no permit is kept).
    pub(crate) fn full(bytes: Bytes, mut reading: Reading) -> Self {
        reading.permit = None;
        Pieces::with(Raw::Full(bytes), reading)
    }

    fn with(raw: Raw, reading: Reading) -> Self {
        Pieces {
            raw,
            decoder: reading.decoder.map(Box::new),
            max: reading.max,
            delivered: 0,
            received: 0,
            declared: reading.declared,
            progress: reading.progress,
            deadline: reading.deadline,
            ended_at: None,
            permit: reading.permit,
        }
    }

    /// When the end of the body was handed out, if it was.
    pub(crate) fn ended_at(&self) -> Option<Instant> {
        self.ended_at
    }

    /// Whether it is being decoded (slices of output may come without a new piece).
    pub(crate) fn decodes(&self) -> bool {
        self.decoder.is_some()
    }

    /// The next decoded piece, `None` at the end, from async code.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        whole: bool,
        meta: &Meta<'_>,
    ) -> Poll<Result<Option<Bytes>>> {
        // A decoded body is read in pieces: gathered whole, its encoded size would be bounded by
        // nothing (the transport caps a body read whole at `max_response_bytes`).
        let whole = whole && self.decoder.is_none();
        self.next_with(meta, |raw| match raw.stream() {
            Some(s) => s.poll_piece(cx, whole),
            None => Poll::Ready(Ok(None)),
        })
    }

    /// The next decoded piece, `None` at the end, from blocking code.
    pub(crate) fn next_blocking(&mut self, whole: bool, meta: &Meta<'_>) -> Result<Option<Bytes>> {
        let whole = whole && self.decoder.is_none();
        let next = self.next_with(meta, |raw| match raw.stream() {
            Some(s) => Poll::Ready(s.piece_blocking(whole)),
            None => Poll::Ready(Ok(None)),
        });
        // Every piece above is ready: a blocking read is never pending.
        match next {
            Poll::Ready(r) => r,
            Poll::Pending => Ok(None),
        }
    }

    /// The next decoded piece, the transport's next piece read by `piece`.
    fn next_with(
        &mut self,
        meta: &Meta<'_>,
        mut piece: impl FnMut(&mut Raw) -> Poll<Result<Option<Bytes>>>,
    ) -> Poll<Result<Option<Bytes>>> {
        let result = loop {
            if let Some(d) = &mut self.decoder {
                match d.next() {
                    Ok(Some(slice)) => break self.deliver(slice, meta),
                    Ok(None) => {}
                    Err(e) => break Err(undecodable(meta, e)),
                }
            }
            let raw = match std::mem::replace(&mut self.raw, Raw::Done) {
                Raw::Full(bytes) => Ok(Some(bytes)),
                Raw::Done => Ok(None),
                mut stream => {
                    let polled = piece(&mut stream);
                    self.raw = stream;
                    match polled {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(r) => r,
                    }
                }
            };
            match raw {
                Err(e) => break Err(e),
                Ok(Some(bytes)) => {
                    self.received += bytes.len() as u64;
                    if let Some(progress) = &self.progress {
                        progress.report(self.received, self.declared);
                    }
                    match &mut self.decoder {
                        Some(d) => d.feed(bytes),
                        None => break self.deliver(bytes, meta),
                    }
                }
                Ok(None) => {
                    self.raw = Raw::Done;
                    let Some(mut d) = self.decoder.take() else {
                        break Ok(None);
                    };
                    match d.finish() {
                        Ok(last) if last.is_empty() => break Ok(None),
                        Ok(last) => break self.deliver(last, meta),
                        Err(e) => break Err(undecodable(meta, e)),
                    }
                }
            }
        };
        match &result {
            Err(_) => {
                // An error ends the body: what is left of it is dropped (its connection closed).
                self.raw = Raw::Done;
                self.decoder = None;
                self.permit = None;
            }
            Ok(None) if self.ended_at.is_none() => {
                self.ended_at = Some(Instant::now());
                self.permit = None;
            }
            Ok(_) => {}
        }
        Poll::Ready(result)
    }

    /// Hands out `bytes`, within the limit and, while decoding, the deadline.
    fn deliver(&mut self, bytes: Bytes, meta: &Meta<'_>) -> Result<Option<Bytes>> {
        self.delivered += bytes.len() as u64;
        if self.delivered > self.max {
            return Err(meta.error(
                ErrorKind::BodyTooLarge,
                format!("body exceeds max_response_bytes ({} bytes)", self.max),
            ));
        }
        if self.decoder.is_some() && self.deadline.is_some_and(|at| Instant::now() >= at) {
            return Err(meta.error(
                ErrorKind::Timeout(TimeoutPhase::Body),
                "deadline reached while decoding the body".into(),
            ));
        }
        Ok(Some(bytes))
    }

    /// The body in memory as it is, when it was delivered whole and needs no decoding.
    pub(crate) fn take_full(&mut self) -> Option<Bytes> {
        if self.decoder.is_some() || self.progress.is_some() {
            return None;
        }
        match std::mem::replace(&mut self.raw, Raw::Done) {
            Raw::Full(bytes) if bytes.len() as u64 <= self.max => Some(bytes),
            other => {
                self.raw = other;
                None
            }
        }
    }
}

/// The error of a body that does not decode.
fn undecodable(meta: &Meta<'_>, e: std::io::Error) -> Error {
    meta.error(ErrorKind::Body, "cannot decode the compressed body".into())
        .with_source(e)
        .decoding()
}

/// Pieces gathered into one body. The first [`KEPT`] are kept as they came and copied once, at
/// the end, into a buffer of the exact size: a client's read buffer under a piece still held
/// is never grown in place, where releasing each piece at once made hyper copy its read buffer
/// on most reads (2.5% of a 1 MiB GET, `scripts/instructions.sh` with `ROUTE=get-1MiB`). Past
/// them, pieces go into one growing buffer, so that a body of many small pieces costs no more
/// memory than its bytes.
#[derive(Default)]
pub(crate) struct Gather {
    /// The first piece, then the others kept as they came: a body of one piece (most small
    /// answers) needs no list, which saves 1% of a 13-byte GET on hyper (callgrind).
    first: Option<Bytes>,
    more: Vec<Bytes>,
    rest: BytesMut,
}

/// How many pieces [`Gather`] keeps as they came.
const KEPT: usize = 16;

impl Gather {
    pub(crate) fn push(&mut self, piece: Bytes) {
        if self.rest.is_empty() {
            if self.first.is_none() {
                self.first = Some(piece);
                return;
            }
            if self.more.len() + 1 < KEPT {
                self.more.push(piece);
                return;
            }
            self.rest = joined(self.first.iter().chain(&self.more), piece.len());
            self.first = None;
            self.more.clear();
        }
        self.rest.extend_from_slice(&piece);
    }

    pub(crate) fn finish(self) -> Bytes {
        match self.first {
            _ if !self.rest.is_empty() => self.rest.freeze(),
            None => Bytes::new(),
            Some(first) if self.more.is_empty() => first,
            Some(first) => joined(std::iter::once(&first).chain(&self.more), 0).freeze(),
        }
    }
}

/// `pieces` in one buffer, with room for `more` bytes after them.
fn joined<'a>(pieces: impl Iterator<Item = &'a Bytes> + Clone, more: usize) -> BytesMut {
    let len = pieces.clone().map(Bytes::len).sum::<usize>();
    let mut out = BytesMut::with_capacity(len + more);
    for p in pieces {
        out.extend_from_slice(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gathered(pieces: &[&[u8]]) -> Bytes {
        let mut g = Gather::default();
        for p in pieces {
            g.push(Bytes::copy_from_slice(p));
        }
        g.finish()
    }

    #[test]
    fn gathered_pieces_are_the_body_in_order_however_many_they_are() {
        assert_eq!(gathered(&[]), Bytes::new());
        assert_eq!(gathered(&[b"abc"]), Bytes::from_static(b"abc"));
        assert_eq!(gathered(&[b"ab", b"", b"c"]), Bytes::from_static(b"abc"));
        let many: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; usize::from(i % 7)]).collect();
        let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
        assert_eq!(gathered(&refs), Bytes::from(many.concat()));
    }

    #[test]
    fn a_body_of_one_piece_is_that_piece_uncopied() {
        let piece = Bytes::from(vec![7u8; 4096]);
        let mut g = Gather::default();
        g.push(piece.clone());
        assert_eq!(g.finish().as_ptr(), piece.as_ptr());
    }
}
