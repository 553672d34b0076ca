//! A ureq response body read in pieces on the thread that reads it: each piece is read straight
//! into the buffer it is handed out in, and that buffer is read into again once its reader has
//! let go of it.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};

use super::{Inner, wire};
use crate::backend::BackendKind;
use crate::error::{Error, ErrorKind, Result};
use crate::response::RawBody;

/// The size of the pieces a transfer thread hands an async reader through a pipe: as large as
/// ureq reads from the socket at once. Each one handed over costs a wake-up whatever its size
/// (the streamed-download part of `bench`: 0.37–0.47 of ureq's own read with 64 KiB pieces,
/// 0.69–0.96 with these, before pieces were batched).
pub(super) const PIPED_PIECE: usize = 128 * 1024;

/// The pieces a pipe holds at most, one being read and one its reader holds: how many
/// handed-out pieces are kept to be read into again.
const REUSE: usize = crate::backend::pipe::CAP / PIPED_PIECE + 2;

/// A response body read from ureq on the thread that reads it.
pub(super) struct Reading {
    inner: Arc<Inner>,
    reader: ureq::BodyReader<'static>,
    /// The body's `Content-Length`, if it declared one.
    pub(super) declared: Option<u64>,
    /// The size of a piece's buffer: as large as the declared body, up to a whole piece.
    size: usize,
    /// The last pieces handed out, oldest first (see [`Reading::buffer`]).
    handed: VecDeque<Bytes>,
    /// A buffer read into whose bytes were copied out (a short read), to read into again.
    spare: Option<BytesMut>,
}

impl Reading {
    /// Reads `body` in pieces of at most `piece` bytes.
    pub(super) fn new(inner: Arc<Inner>, body: ureq::Body, piece: usize) -> Self {
        let declared = body.content_length();
        let size = declared.map_or(16 * 1024, |n| n.clamp(1, piece as u64) as usize);
        Reading {
            handed: VecDeque::new(),
            size,
            inner,
            declared,
            reader: body.into_reader(),
            spare: None,
        }
    }

    /// The next piece, `None` at the end: with `whole`, the rest of the body read straight
    /// into one buffer (no more than `max_response_bytes` and a byte; the reader reports the
    /// excess), else what one read gives.
    pub(super) fn next_piece(&mut self, whole: bool) -> Result<Option<Bytes>> {
        if !whole {
            return self.next();
        }
        let mut all = Vec::with_capacity(crate::headers::reserve_for(self.declared));
        let limit = self.inner.max_body.saturating_add(1);
        if let Err(e) = (&mut self.reader).take(limit).read_to_end(&mut all) {
            return Err(self.inner.map_io_body(e));
        }
        if all.is_empty() {
            return self.next();
        }
        Ok(Some(all.into()))
    }

    /// A buffer to read a piece into: the oldest handed-out piece's once its reader has let go
    /// of it, else a new one. A piece is read straight into the buffer it is handed out in, not
    /// copied (unless it is short: a few bytes do not hold a whole buffer), and a body read as it
    /// streams allocates and zeroes no buffer per piece once its first few are let go. It saves
    /// a copy of the body: a 1 MiB body streamed costs 1.00 of ureq's own streaming read in
    /// instructions on the blocking client, where a copy of each piece cost 1.60 (`STREAM=1
    /// ROUTE=get-1MiB N1=10 N2=40 bash scripts/instructions.sh ureq`).
    fn buffer(&mut self) -> BytesMut {
        if let Some(spare) = self.spare.take() {
            return spare;
        }
        match self.handed.pop_front().map(Bytes::try_into_mut) {
            Some(Ok(mut buf)) if buf.capacity() >= self.size => {
                buf.resize(self.size, 0);
                return buf;
            }
            // Its reader still holds it: kept while fewer than `REUSE` are.
            Some(Err(held)) if self.handed.len() + 1 < REUSE => self.handed.push_front(held),
            _ => {}
        }
        BytesMut::zeroed(self.size)
    }

    /// The next piece, `None` at the end (where an invalid trailer line fails it).
    fn next(&mut self) -> Result<Option<Bytes>> {
        let mut buf = self.buffer();
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) if wire::take_invalid_trailer() => {
                    return Err(Error::new(ErrorKind::Protocol)
                        .with_backend(BackendKind::Ureq)
                        .with_detail(
                            "the trailer section holds a line that is not a header field",
                        ));
                }
                Ok(0) => return Ok(None),
                Ok(n) if n < buf.len() / 4 => {
                    let piece = Bytes::copy_from_slice(&buf[..n]);
                    self.spare = Some(buf);
                    return Ok(Some(piece));
                }
                Ok(n) => {
                    buf.truncate(n);
                    let piece = buf.freeze();
                    if self.handed.len() >= REUSE {
                        self.handed.pop_front();
                    }
                    self.handed.push_back(piece.clone());
                    return Ok(Some(piece));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.inner.map_io_body(e)),
            }
        }
    }
}

impl RawBody for Reading {
    fn poll_piece(&mut self, _: &mut Context<'_>, _: bool) -> Poll<Result<Option<Bytes>>> {
        crate::backend::blocking_body_polled(BackendKind::Ureq)
    }

    fn piece_blocking(&mut self, whole: bool) -> Result<Option<Bytes>> {
        self.next_piece(whole)
    }
}
