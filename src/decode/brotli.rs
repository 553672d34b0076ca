//! `Content-Encoding: br` (RFC 7932), through `brotli-decompressor`'s streaming state machine.

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};

use super::{Step, Stepped};

pub(super) struct Brotli {
    state: BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>,
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
            done: false,
            started: false,
        }
    }
}

impl Step for Brotli {
    fn step(&mut self, input: &[u8], out: &mut [u8]) -> std::io::Result<Stepped> {
        if self.done {
            return Err(invalid("data after the end of the brotli stream"));
        }
        self.started = true;
        let (mut avail_in, mut read) = (input.len(), 0);
        let (mut avail_out, mut written, mut total) = (out.len(), 0, 0);
        let result = BrotliDecompressStream(
            &mut avail_in,
            &mut read,
            input,
            &mut avail_out,
            &mut written,
            out,
            &mut total,
            &mut self.state,
        );
        match result {
            BrotliResult::ResultFailure => return Err(invalid("invalid brotli data")),
            BrotliResult::ResultSuccess => self.done = true,
            BrotliResult::NeedsMoreInput | BrotliResult::NeedsMoreOutput => {}
        }
        Ok(Stepped {
            read,
            written,
            more: matches!(result, BrotliResult::NeedsMoreOutput),
        })
    }

    fn finish(&self) -> std::io::Result<()> {
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
