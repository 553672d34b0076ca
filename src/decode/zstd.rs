//! `Content-Encoding: zstd` (RFC 8878), through libzstd's streaming decoder, its window held to
//! RFC 9659's 8 MiB so that a hostile frame cannot make it allocate more.

use zstd::stream::raw::{DParameter, Decoder, Operation};

use super::{Step, Stepped};

/// The largest window accepted: 2^23 bytes (8 MiB), the limit RFC 9659 sets for HTTP.
const WINDOW_LOG_MAX: u32 = 23;

pub(super) struct Zstd {
    decoder: Decoder<'static>,
    /// The input so far ends at the end of a frame (or there was none).
    at_frame_end: bool,
}

impl Zstd {
    pub(super) fn new() -> std::io::Result<Self> {
        let mut decoder = Decoder::new()?;
        decoder.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX))?;
        Ok(Zstd {
            decoder,
            at_frame_end: true,
        })
    }
}

impl Step for Zstd {
    fn step(&mut self, input: &[u8], out: &mut [u8]) -> std::io::Result<Stepped> {
        let status = self.decoder.run_on_buffers(input, out)?;
        if status.bytes_read > 0 || status.bytes_written > 0 {
            self.at_frame_end = status.remaining == 0;
        }
        Ok(Stepped {
            read: status.bytes_read,
            written: status.bytes_written,
            more: status.bytes_written == out.len(),
        })
    }

    fn finish(&self) -> std::io::Result<()> {
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
