//! `Content-Encoding: br` (RFC 7932), through `brotli-decompressor`'s streaming state machine:
//! output comes in bounded slices however much one input byte expands.

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
use bytes::{Buf, Bytes};

pub(super) struct Brotli {
    state: BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>,
    /// The last step filled the output: more may come without input.
    more: bool,
    /// The stream's last block has been decoded.
    done: bool,
    /// Some input came (an empty body is an empty body).
    started: bool,
}

impl Brotli {
    pub(super) fn new() -> Self {
        Brotli {
            state: BrotliState::new(
                StandardAlloc::default(),
                StandardAlloc::default(),
                StandardAlloc::default(),
            ),
            more: false,
            done: false,
            started: false,
        }
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
            if self.done {
                return Err(invalid("data after the end of the brotli stream"));
            }
            self.started = true;
            let (mut avail_in, mut in_off) = (pending.len(), 0);
            let (mut avail_out, mut out_off, mut total) = (buf.len(), 0, 0);
            let result = BrotliDecompressStream(
                &mut avail_in,
                &mut in_off,
                pending,
                &mut avail_out,
                &mut out_off,
                &mut buf,
                &mut total,
                &mut self.state,
            );
            pending.advance(in_off);
            self.more = matches!(result, BrotliResult::NeedsMoreOutput);
            match result {
                BrotliResult::ResultFailure => return Err(invalid("invalid brotli data")),
                BrotliResult::ResultSuccess => self.done = true,
                BrotliResult::NeedsMoreInput | BrotliResult::NeedsMoreOutput => {}
            }
            if out_off > 0 {
                buf.truncate(out_off);
                return Ok(Some(buf.into()));
            }
            if in_off == 0 && !self.more {
                break;
            }
        }
        Ok(None)
    }

    /// The end of the body: an error if it stopped before the stream's last block.
    pub(super) fn finish(&self) -> std::io::Result<()> {
        if self.done || !self.started {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the brotli body ended before its last block",
            ))
        }
    }
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}
