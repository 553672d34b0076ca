//! Response body decoding (`gzip`, `deflate`), the same on every backend, bounded by
//! `max_response_bytes` on the decoded size so a decompression bomb ends in `BodyTooLarge` with
//! memory bounded.

use std::io::Read;

use http::HeaderValue;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};

use crate::error::{Error, ErrorKind, Result};
use crate::response::Response;

/// The `Accept-Encoding` httpfleet sends when `decompress` is on.
pub(crate) const ACCEPT: HeaderValue = HeaderValue::from_static("gzip, deflate");

#[derive(Clone, Copy)]
enum Coding {
    Gzip,
    Deflate,
}

/// Decodes the body in place when its `Content-Encoding` is gzip or deflate, then drops the
/// `Content-Encoding` and `Content-Length` headers, which no longer describe the body.
pub(crate) fn decode(resp: &mut Response, max: u64) -> Result<()> {
    let coding = match resp.headers.content_encoding() {
        None => return Ok(()),
        Some(v) if v.eq_ignore_ascii_case(b"gzip") || v.eq_ignore_ascii_case(b"x-gzip") => {
            Coding::Gzip
        }
        Some(v) if v.eq_ignore_ascii_case(b"deflate") => Coding::Deflate,
        Some(_) => return Ok(()),
    };
    if !resp.body.is_empty() {
        let decoded = match coding {
            Coding::Gzip => read_capped(flate2::read::MultiGzDecoder::new(&resp.body[..]), max),
            Coding::Deflate => read_capped(flate2::read::ZlibDecoder::new(&resp.body[..]), max)
                .or_else(|e| match e {
                    Failure::Invalid(_) => {
                        read_capped(flate2::read::DeflateDecoder::new(&resp.body[..]), max)
                    }
                    too_large => Err(too_large),
                }),
        };
        resp.body = match decoded {
            Ok(v) => v.into(),
            Err(Failure::TooLarge) => {
                return Err(Error::new(ErrorKind::BodyTooLarge)
                    .with_detail(format!(
                        "decoded body exceeds max_response_bytes ({max} bytes)"
                    ))
                    .with_backend(resp.backend)
                    .with_url(&resp.url));
            }
            Err(Failure::Invalid(e)) => {
                return Err(Error::new(ErrorKind::Body)
                    .with_detail("cannot decode the compressed body")
                    .with_backend(resp.backend)
                    .with_url(&resp.url)
                    .with_source(e));
            }
        };
    }
    let headers = resp.headers.map_mut();
    headers.remove(CONTENT_ENCODING);
    headers.remove(CONTENT_LENGTH);
    Ok(())
}

enum Failure {
    TooLarge,
    Invalid(std::io::Error),
}

fn read_capped(reader: impl Read, max: u64) -> std::result::Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    reader
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(Failure::Invalid)?;
    if out.len() as u64 > max {
        return Err(Failure::TooLarge);
    }
    Ok(out)
}
