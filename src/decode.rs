//! Response body decoding (`gzip`, `deflate`), the same on every backend, bounded by
//! `max_response_bytes` on the decoded size so a decompression bomb ends in `BodyTooLarge` with
//! memory bounded.
//!
//! A body is decoded a slice at a time ([`SLICE`]), with the request's deadline checked between
//! slices: a body that takes longer to decode than the deadline leaves ends in `Timeout(Body)`
//! by it. From async code the task yields between slices, so a long decode never keeps other
//! tasks of the runtime waiting for more than one slice.

use std::io::{Cursor, Read};

use bytes::Bytes;
use http::HeaderValue;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result, TimeoutPhase};
use crate::response::Response;

/// The `Accept-Encoding` httpfleet sends when `decompress` is on.
pub(crate) const ACCEPT: HeaderValue = HeaderValue::from_static("gzip, deflate");

/// The decoded bytes produced between two looks at the deadline (and, from async code, two
/// yields): about a millisecond of inflating.
const SLICE: u64 = 256 * 1024;

/// A content coding httpfleet decodes.
#[derive(Clone, Copy)]
pub(crate) enum Coding {
    Gzip,
    Zlib,
    /// Raw deflate: what some servers send as `deflate` (without the zlib wrapper).
    Deflate,
}

/// The coding of `resp`'s body, when it is one httpfleet decodes.
pub(crate) fn coding(resp: &Response) -> Option<Coding> {
    match resp.headers.content_encoding() {
        Some(v) if v.eq_ignore_ascii_case(b"gzip") || v.eq_ignore_ascii_case(b"x-gzip") => {
            Some(Coding::Gzip)
        }
        Some(v) if v.eq_ignore_ascii_case(b"deflate") => Some(Coding::Zlib),
        _ => None,
    }
}

/// A body being decoded.
struct Decoding {
    coding: Coding,
    body: Bytes,
    reader: Box<dyn Read + Send>,
    out: Vec<u8>,
    max: u64,
}

impl Decoding {
    fn new(coding: Coding, body: Bytes, max: u64) -> Self {
        let input = Cursor::new(body.clone());
        let reader: Box<dyn Read + Send> = match coding {
            Coding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Coding::Zlib => Box::new(flate2::read::ZlibDecoder::new(input)),
            Coding::Deflate => Box::new(flate2::read::DeflateDecoder::new(input)),
        };
        Decoding {
            coding,
            body,
            reader,
            out: Vec::new(),
            max,
        }
    }

    /// Decodes one more slice; `true` once the body is decoded whole.
    fn step(&mut self) -> std::result::Result<bool, Failure> {
        if self.body.is_empty() {
            return Ok(true);
        }
        let read = (&mut self.reader).take(SLICE).read_to_end(&mut self.out);
        match read {
            // `deflate` without its zlib wrapper: start over as raw deflate.
            Err(_) if matches!(self.coding, Coding::Zlib) && self.out.is_empty() => {
                *self = Decoding::new(Coding::Deflate, self.body.clone(), self.max);
                Ok(false)
            }
            Err(e) => Err(Failure::Invalid(e)),
            Ok(_) if self.out.len() as u64 > self.max => Err(Failure::TooLarge),
            Ok(n) => Ok(n == 0),
        }
    }
}

enum Failure {
    TooLarge,
    Invalid(std::io::Error),
    Late,
}

/// Decodes `resp`'s body in `coding` by `deadline`, from blocking code.
pub(crate) fn decode(
    mut resp: Response,
    coding: Coding,
    max: u64,
    deadline: Option<Instant>,
) -> Result<Response> {
    let mut d = Decoding::new(coding, std::mem::take(&mut resp.body), max);
    let outcome = loop {
        match d.step() {
            Ok(true) => break Ok(()),
            Ok(false) if deadline.is_some_and(|at| Instant::now() >= at) => {
                break Err(Failure::Late);
            }
            Ok(false) => {}
            Err(e) => break Err(e),
        }
    };
    finish(resp, d, outcome)
}

/// [`decode`] from async code: the task yields between slices.
pub(crate) async fn decode_async(
    mut resp: Response,
    coding: Coding,
    max: u64,
    deadline: Option<Instant>,
) -> Result<Response> {
    let mut d = Decoding::new(coding, std::mem::take(&mut resp.body), max);
    let outcome = loop {
        match d.step() {
            Ok(true) => break Ok(()),
            Ok(false) if deadline.is_some_and(|at| Instant::now() >= at) => {
                break Err(Failure::Late);
            }
            Ok(false) => tokio::task::yield_now().await,
            Err(e) => break Err(e),
        }
    };
    finish(resp, d, outcome)
}

/// The decoded response, its `Content-Encoding` and `Content-Length` gone (they no longer
/// describe the body), or the error that ended the decoding.
fn finish(
    mut resp: Response,
    d: Decoding,
    outcome: std::result::Result<(), Failure>,
) -> Result<Response> {
    let fail = |kind: ErrorKind, detail: String| {
        Error::new(kind)
            .with_detail(detail)
            .with_backend(resp.backend)
            .with_url(&resp.url)
    };
    match outcome {
        Ok(()) => {}
        Err(Failure::TooLarge) => {
            return Err(fail(
                ErrorKind::BodyTooLarge,
                format!("decoded body exceeds max_response_bytes ({} bytes)", d.max),
            ));
        }
        Err(Failure::Late) => {
            return Err(fail(
                ErrorKind::Timeout(TimeoutPhase::Body),
                "deadline reached while decoding the body".into(),
            ));
        }
        Err(Failure::Invalid(e)) => {
            return Err(
                fail(ErrorKind::Body, "cannot decode the compressed body".into()).with_source(e),
            );
        }
    }
    resp.body = d.out.into();
    let headers = resp.headers.map_mut();
    headers.remove(CONTENT_ENCODING);
    headers.remove(CONTENT_LENGTH);
    Ok(resp)
}
