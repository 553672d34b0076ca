//! Response body decoding (`gzip`, `deflate`, and with their features `br` and `zstd`), the
//! same on every backend, as the body streams: [`Decoder`] takes the pieces a transport
//! delivers and hands out decoded slices.
//!
//! One slice of output stays bounded: deflate input is fed a few KiB at a time (it expands at
//! most about 1,000 times), brotli and zstd, which can expand far more, decode into an output
//! buffer of fixed size. The body reader checks `max_response_bytes` and the deadline between
//! slices, so a decompression bomb ends in `BodyTooLarge` with memory bounded.

use bytes::Bytes;
use http::HeaderValue;

#[cfg(feature = "brotli")]
mod brotli;
mod flate;
#[cfg(feature = "zstd")]
mod zstd;

/// The `Accept-Encoding` httpfleet sends when `decompress` is on: exactly what it decodes.
pub(crate) const ACCEPT: HeaderValue =
    HeaderValue::from_static(match (cfg!(feature = "brotli"), cfg!(feature = "zstd")) {
        (true, true) => "gzip, deflate, br, zstd",
        (true, false) => "gzip, deflate, br",
        (false, true) => "gzip, deflate, zstd",
        (false, false) => "gzip, deflate",
    });

/// The output buffer of the brotli and zstd decoders: the most one slice holds.
#[cfg(any(feature = "brotli", feature = "zstd"))]
const OUT: usize = 256 * 1024;

/// A content coding httpfleet decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    /// `deflate`: zlib-wrapped, or raw deflate as some servers send it (told apart by the
    /// first two bytes).
    Deflate,
    /// `br`.
    #[cfg(feature = "brotli")]
    Brotli,
    /// `zstd`.
    #[cfg(feature = "zstd")]
    Zstd,
}

/// The coding of a body with these headers, when it is one httpfleet decodes.
pub(crate) fn coding(headers: &crate::headers::Headers) -> Option<Coding> {
    match headers.content_encoding()? {
        v if v.eq_ignore_ascii_case(b"gzip") || v.eq_ignore_ascii_case(b"x-gzip") => {
            Some(Coding::Gzip)
        }
        v if v.eq_ignore_ascii_case(b"deflate") => Some(Coding::Deflate),
        #[cfg(feature = "brotli")]
        v if v.eq_ignore_ascii_case(b"br") => Some(Coding::Brotli),
        #[cfg(feature = "zstd")]
        v if v.eq_ignore_ascii_case(b"zstd") => Some(Coding::Zstd),
        _ => None,
    }
}

/// A streaming decoder: pieces in ([`Decoder::feed`]), decoded slices out ([`Decoder::next`],
/// then [`Decoder::finish`] at the end of the body).
pub(crate) struct Decoder {
    codec: Codec,
    /// Input fed and not yet decoded.
    pending: Bytes,
}

// The body reader keeps its `Decoder` boxed: the codecs' sizes differ, one allocation holds
// whichever it is.
#[allow(clippy::large_enum_variant)]
enum Codec {
    Flate(flate::Flate),
    #[cfg(feature = "brotli")]
    Brotli(Buffered<brotli::Brotli>),
    #[cfg(feature = "zstd")]
    Zstd(Buffered<zstd::Zstd>),
}

/// One step of a decoder that writes into its caller's buffer (brotli, zstd).
#[cfg(any(feature = "brotli", feature = "zstd"))]
trait Step {
    /// Decodes from `input` into `out`.
    fn step(&mut self, input: &[u8], out: &mut [u8]) -> std::io::Result<Stepped>;
    /// The end of the body: an error if the encoded stream stopped short.
    fn finish(&self) -> std::io::Result<()>;
}

/// What one [`Step`] did.
#[cfg(any(feature = "brotli", feature = "zstd"))]
struct Stepped {
    read: usize,
    written: usize,
    /// It filled the output: more may come without input.
    more: bool,
}

/// A [`Step`] decoder handing out slices of at most `OUT` bytes.
#[cfg(any(feature = "brotli", feature = "zstd"))]
struct Buffered<D> {
    decoder: D,
    more: bool,
}

#[cfg(any(feature = "brotli", feature = "zstd"))]
impl<D: Step> Buffered<D> {
    fn new(decoder: D) -> Self {
        Buffered {
            decoder,
            more: false,
        }
    }

    /// The next slice of output from `pending`, or `None` once the input is used up and
    /// nothing is left inside.
    fn next(&mut self, pending: &mut Bytes) -> std::io::Result<Option<Bytes>> {
        if pending.is_empty() && !self.more {
            // Nothing to decode: no output buffer to make.
            return Ok(None);
        }
        let mut buf = vec![0u8; OUT];
        while !pending.is_empty() || self.more {
            let step = self.decoder.step(pending, &mut buf)?;
            bytes::Buf::advance(pending, step.read);
            self.more = step.more;
            if step.written > 0 {
                buf.truncate(step.written);
                return Ok(Some(buf.into()));
            }
            if step.read == 0 {
                break;
            }
        }
        Ok(None)
    }
}

impl Decoder {
    /// A decoder for `coding`; an error only if libzstd cannot allocate its context.
    pub(crate) fn new(coding: Coding) -> std::io::Result<Self> {
        let codec = match coding {
            Coding::Gzip => Codec::Flate(flate::Flate::gzip()),
            Coding::Deflate => Codec::Flate(flate::Flate::deflate()),
            #[cfg(feature = "brotli")]
            Coding::Brotli => Codec::Brotli(Buffered::new(brotli::Brotli::new())),
            #[cfg(feature = "zstd")]
            Coding::Zstd => Codec::Zstd(Buffered::new(zstd::Zstd::new()?)),
        };
        Ok(Decoder {
            codec,
            pending: Bytes::new(),
        })
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

    /// Decodes pending input until some output comes, one bounded slice: `None` when the input
    /// fed so far is used up.
    pub(crate) fn next(&mut self) -> std::io::Result<Option<Bytes>> {
        match &mut self.codec {
            Codec::Flate(d) => d.next(&mut self.pending),
            #[cfg(feature = "brotli")]
            Codec::Brotli(d) => d.next(&mut self.pending),
            #[cfg(feature = "zstd")]
            Codec::Zstd(d) => d.next(&mut self.pending),
        }
    }

    /// The end of the body: the last of the output; an error if the encoded body stopped
    /// short.
    pub(crate) fn finish(&mut self) -> std::io::Result<Bytes> {
        match &mut self.codec {
            Codec::Flate(d) => d.finish(),
            #[cfg(feature = "brotli")]
            Codec::Brotli(d) => d.decoder.finish().map(|()| Bytes::new()),
            #[cfg(feature = "zstd")]
            Codec::Zstd(d) => d.decoder.finish().map(|()| Bytes::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn decode_all(coding: Coding, encoded: &[u8], piece: usize) -> std::io::Result<Vec<u8>> {
        let mut d = Decoder::new(coding)?;
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
        #[cfg_attr(not(any(feature = "brotli", feature = "zstd")), allow(unused_mut))]
        let mut cases = vec![
            (Coding::Gzip, gz),
            (Coding::Deflate, zl),
            (Coding::Deflate, raw),
        ];
        #[cfg(feature = "brotli")]
        cases.push((Coding::Brotli, brotli_of(&data)));
        #[cfg(feature = "zstd")]
        cases.push((Coding::Zstd, ::zstd::encode_all(&data[..], 3).unwrap()));
        for (coding, encoded) in &cases {
            let coding = *coding;
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

    #[cfg(feature = "brotli")]
    fn brotli_of(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = ::brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
        w.write_all(data).unwrap();
        drop(w);
        out
    }

    #[cfg(feature = "brotli")]
    #[test]
    fn brotli_garbage_and_data_after_the_end_are_errors() {
        assert!(decode_all(Coding::Brotli, b"\xff\xff not brotli", 3).is_err());
        let mut twice = brotli_of(b"hello");
        twice.extend_from_slice(&brotli_of(b"hello"));
        assert!(decode_all(Coding::Brotli, &twice, 5).is_err());
        assert!(decode_all(Coding::Brotli, b"", 5).unwrap().is_empty());
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_frames_follow_one_another_and_a_window_over_8_mib_is_refused() {
        let mut two = ::zstd::encode_all(&b"hello "[..], 1).unwrap();
        two.extend(::zstd::encode_all(&b"world"[..], 1).unwrap());
        assert_eq!(decode_all(Coding::Zstd, &two, 3).unwrap(), b"hello world");
        assert!(decode_all(Coding::Zstd, b"not zstd at all", 4).is_err());
        // A frame whose window is 16 MiB, as a long-distance encoder may write.
        let data = vec![7u8; 32 << 20];
        let mut enc = ::zstd::stream::raw::Encoder::new(19).unwrap();
        use ::zstd::stream::raw::CParameter;
        enc.set_parameter(CParameter::WindowLog(24)).unwrap();
        enc.set_parameter(CParameter::ContentSizeFlag(false))
            .unwrap();
        let mut w = ::zstd::stream::zio::Writer::new(Vec::new(), enc);
        w.write_all(&data).unwrap();
        w.finish().unwrap();
        let (big, _) = w.into_inner();
        assert!(decode_all(Coding::Zstd, &big, 1 << 16).is_err());
    }

    #[test]
    fn a_slice_of_output_stays_bounded_for_a_bomb() {
        let zeros = vec![0u8; 64 << 20];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&zeros).unwrap();
        #[cfg_attr(not(any(feature = "brotli", feature = "zstd")), allow(unused_mut))]
        let mut bombs = vec![(Coding::Gzip, gz.finish().unwrap(), 8 << 20)];
        #[cfg(feature = "brotli")]
        bombs.push((Coding::Brotli, brotli_of(&zeros), OUT));
        #[cfg(feature = "zstd")]
        bombs.push((
            Coding::Zstd,
            ::zstd::encode_all(&zeros[..], 19).unwrap(),
            OUT,
        ));
        for (coding, bomb, bound) in bombs {
            let mut d = Decoder::new(coding).unwrap();
            d.feed(bomb.into());
            let (mut largest, mut total) = (0, 0);
            while let Some(slice) = d.next().unwrap() {
                largest = largest.max(slice.len());
                total += slice.len();
            }
            total += d.finish().unwrap().len();
            assert_eq!(total, zeros.len(), "{coding:?}");
            assert!(largest <= bound, "{coding:?}: {largest} bytes in one slice");
        }
    }
}
