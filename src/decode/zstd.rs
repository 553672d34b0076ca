//! `Content-Encoding: zstd` (RFC 8878), through libzstd's streaming decoder: output comes in
//! bounded slices however much one input byte expands, and the window is held to RFC 9659's
//! 8 MiB, so a hostile frame cannot make the decoder allocate more.

use bytes::{Buf, Bytes};
use zstd::stream::raw::{DParameter, Decoder, Operation};

/// The largest window accepted: 2^23 bytes (8 MiB), the limit RFC 9659 sets for HTTP.
const WINDOW_LOG_MAX: u32 = 23;

pub(super) struct Zstd {
    decoder: Decoder<'static>,
    /// The last step filled the output: more may come without input.
    more: bool,
    /// The input so far ends at the end of a frame (or there was none).
    at_frame_end: bool,
}

impl Zstd {
    pub(super) fn new() -> std::io::Result<Self> {
        let mut decoder = Decoder::new()?;
        decoder.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX))?;
        Ok(Zstd {
            decoder,
            more: false,
            at_frame_end: true,
        })
    }

    /// The next slice of output (at most `out` bytes) from `pending`, or `None` once the input
    /// is used up and nothing is left inside.
    pub(super) fn next(
        &mut self,
        pending: &mut Bytes,
        out: usize,
    ) -> std::io::Result<Option<Bytes>> {
        let mut buf = vec![0u8; out];
        while !pending.is_empty() || self.more {
            let status = self.decoder.run_on_buffers(&pending[..], &mut buf)?;
            pending.advance(status.bytes_read);
            self.more = status.bytes_written == buf.len();
            if status.bytes_read > 0 || status.bytes_written > 0 {
                self.at_frame_end = status.remaining == 0;
            }
            if status.bytes_written > 0 {
                buf.truncate(status.bytes_written);
                return Ok(Some(buf.into()));
            }
            if status.bytes_read == 0 {
                break;
            }
        }
        Ok(None)
    }

    /// The end of the body: an error if it stopped inside a frame.
    pub(super) fn finish(&self) -> std::io::Result<()> {
        if self.at_frame_end {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the zstd body ended inside a frame",
            ))
        }
    }
}
