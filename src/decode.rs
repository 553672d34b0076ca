//! Response body decoding (`gzip`, `deflate`), the same on every backend, as the body streams:
//! [`Decoder`] takes the pieces a transport delivers and hands out decoded slices.
//!
//! Input is fed a few KiB at a time, so that one slice of output stays bounded (deflate expands
//! at most about 1,000 times): the body reader checks `max_response_bytes` and the deadline
//! between slices, and a decompression bomb ends in `BodyTooLarge` with memory bounded.

use std::io::Write;

use bytes::Bytes;
use http::HeaderValue;

/// The `Accept-Encoding` httpfleet sends when `decompress` is on: what it decodes.
pub(crate) const ACCEPT: HeaderValue = HeaderValue::from_static("gzip, deflate");

/// Input fed to the decoder at once: at most about 4 MiB of output per slice.
const FEED: usize = 4 * 1024;

/// A content coding httpfleet decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    /// `deflate`: zlib-wrapped, or raw deflate as some servers send it (told apart by the
    /// first two bytes).
    Deflate,
}

/// The coding of a body with these headers, when it is one httpfleet decodes.
pub(crate) fn coding(headers: &crate::headers::Headers) -> Option<Coding> {
    match headers.content_encoding()? {
        v if v.eq_ignore_ascii_case(b"gzip") || v.eq_ignore_ascii_case(b"x-gzip") => {
            Some(Coding::Gzip)
        }
        v if v.eq_ignore_ascii_case(b"deflate") => Some(Coding::Deflate),
        _ => None,
    }
}

/// A streaming decoder: pieces in ([`Decoder::feed`]), decoded slices out ([`Decoder::next`],
/// then [`Decoder::finish`] at the end of the body).
pub(crate) struct Decoder {
    state: State,
    /// Input fed and not yet decoded.
    pending: Bytes,
}

enum State {
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
    Raw(flate2::write::DeflateDecoder<Vec<u8>>),
    /// `deflate`, until its first two bytes tell which.
    Sniffing(Vec<u8>),
}

impl Decoder {
    pub(crate) fn new(coding: Coding) -> Self {
        let state = match coding {
            Coding::Gzip => State::Gzip(flate2::write::MultiGzDecoder::new(Vec::new())),
            Coding::Deflate => State::Sniffing(Vec::new()),
        };
        Decoder {
            state,
            pending: Bytes::new(),
        }
    }

    /// Takes a piece of the encoded body.
    pub(crate) fn feed(&mut self, piece: Bytes) {
        if self.pending.is_empty() {
            self.pending = piece;
        } else {
            let mut joined = Vec::with_capacity(self.pending.len() + piece.len());
            joined.extend_from_slice(&self.pending);
            joined.extend_from_slice(&piece);
            self.pending = joined.into();
        }
    }

    /// Decodes pending input, a little at a time, until some output comes: `None` when the
    /// input fed so far is used up.
    pub(crate) fn next(&mut self) -> std::io::Result<Option<Bytes>> {
        while !self.pending.is_empty() {
            let input = self.pending.split_to(self.pending.len().min(FEED));
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
    pub(crate) fn finish(&mut self) -> std::io::Result<Bytes> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(coding: Coding, encoded: &[u8], piece: usize) -> std::io::Result<Vec<u8>> {
        let mut d = Decoder::new(coding);
        let mut out = Vec::new();
        for chunk in encoded.chunks(piece.max(1)) {
            d.feed(Bytes::copy_from_slice(chunk));
            while let Some(slice) = d.next()? {
                out.extend_from_slice(&slice);
            }
        }
        out.extend_from_slice(&d.finish()?);
        Ok(out)
    }

    #[test]
    fn every_coding_decodes_whatever_the_pieces_and_truncation_is_an_error() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zl.write_all(&data).unwrap();
        let zl = zl.finish().unwrap();
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&data).unwrap();
        let raw = raw.finish().unwrap();
        for (coding, encoded) in [
            (Coding::Gzip, &gz),
            (Coding::Deflate, &zl),
            (Coding::Deflate, &raw),
        ] {
            for piece in [1, 7, 4096, 1 << 20] {
                assert_eq!(
                    decode_all(coding, encoded, piece).unwrap(),
                    data,
                    "{coding:?} {piece}"
                );
            }
            assert!(decode_all(coding, &encoded[..encoded.len() - 9], 1000).is_err());
        }
        assert!(decode_all(Coding::Gzip, b"not gzip at all", 4).is_err());
        assert!(decode_all(Coding::Deflate, b"", 4).unwrap().is_empty());
    }

    #[test]
    fn a_slice_of_output_stays_bounded_for_a_bomb() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 64 << 20]).unwrap();
        let gz = gz.finish().unwrap();
        let mut d = Decoder::new(Coding::Gzip);
        d.feed(gz.into());
        let mut largest = 0;
        while let Some(slice) = d.next().unwrap() {
            largest = largest.max(slice.len());
        }
        assert!(largest <= 8 << 20, "{largest} bytes in one slice");
    }
}
