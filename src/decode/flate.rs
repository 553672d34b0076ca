//! `gzip` and `deflate` through flate2. Input is fed a few KiB at a time: deflate expands at
//! most about 1,000 times, so one slice of output stays within about 4 MiB.

use std::io::Write;

use bytes::Bytes;

/// Input fed to the decoder at once.
const FEED: usize = 4 * 1024;

pub(super) struct Flate {
    state: State,
}

enum State {
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
    Raw(flate2::write::DeflateDecoder<Vec<u8>>),
    /// `deflate`, until its first two bytes tell which.
    Sniffing(Vec<u8>),
}

impl Flate {
    pub(super) fn gzip() -> Self {
        Flate {
            state: State::Gzip(flate2::write::MultiGzDecoder::new(Vec::new())),
        }
    }

    /// `deflate`: zlib-wrapped, or raw deflate as some servers send it.
    pub(super) fn deflate() -> Self {
        Flate {
            state: State::Sniffing(Vec::new()),
        }
    }

    /// Decodes `pending`, a little at a time, until some output comes: `None` when it is used
    /// up.
    pub(super) fn next(&mut self, pending: &mut Bytes) -> std::io::Result<Option<Bytes>> {
        while !pending.is_empty() {
            let input = pending.split_to(pending.len().min(FEED));
            self.write(&input)?;
            let out = self.take();
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
        Ok(None)
    }

    /// The end of the body: the last of the output; an error if the encoded body stopped
    /// short.
    pub(super) fn finish(&mut self) -> std::io::Result<Bytes> {
        if let State::Sniffing(buf) = &mut self.state {
            // Fewer than two bytes of `deflate` (none at all is an empty body).
            if buf.is_empty() {
                return Ok(Bytes::new());
            }
            let buf = std::mem::take(buf);
            self.state = State::Raw(flate2::write::DeflateDecoder::new(Vec::new()));
            self.write(&buf)?;
        }
        match &mut self.state {
            State::Gzip(d) => d.try_finish()?,
            State::Zlib(d) => d.try_finish()?,
            State::Raw(d) => d.try_finish()?,
            State::Sniffing(_) => {}
        }
        Ok(self.take())
    }

    fn write(&mut self, input: &[u8]) -> std::io::Result<()> {
        match &mut self.state {
            State::Gzip(d) => d.write_all(input),
            State::Zlib(d) => d.write_all(input),
            State::Raw(d) => d.write_all(input),
            State::Sniffing(buf) => {
                buf.extend_from_slice(input);
                if buf.len() < 2 {
                    return Ok(());
                }
                let head = std::mem::take(buf);
                // A zlib stream starts with CM = 8 and a header whose check bits make it a
                // multiple of 31 (RFC 1950).
                let zlib =
                    head[0] & 0x0f == 8 && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
                self.state = if zlib {
                    State::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))
                } else {
                    State::Raw(flate2::write::DeflateDecoder::new(Vec::new()))
                };
                self.write(&head)
            }
        }
    }

    /// The output decoded so far.
    fn take(&mut self) -> Bytes {
        let out = match &mut self.state {
            State::Gzip(d) => d.get_mut(),
            State::Zlib(d) => d.get_mut(),
            State::Raw(d) => d.get_mut(),
            State::Sniffing(_) => return Bytes::new(),
        };
        std::mem::take(out).into()
    }
}
