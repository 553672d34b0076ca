//! What every real backend shares at request time: the limits resolved from the configuration,
//! the body accumulator under `max_response_bytes`, and `Content-Length` parsing.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::request::Progress;

/// The most a body buffer reserves ahead from the length a response declares: past it the
/// buffer grows as bytes arrive, so a server's number never sizes an allocation.
pub(crate) const RESERVE_CAP: usize = 1 << 20;

/// Whether a response to `method` with `status` has a body (RFC 9110 §6.4.1): not to `HEAD`,
/// and not a 1xx, 204 or 304.
pub(crate) fn has_body(method: &http::Method, status: http::StatusCode) -> bool {
    *method != http::Method::HEAD
        && !status.is_informational()
        && status != http::StatusCode::NO_CONTENT
        && status != http::StatusCode::NOT_MODIFIED
}

/// What to reserve ahead for a body that declared `declared` bytes: at most [`RESERVE_CAP`].
pub(crate) fn reserve_for(declared: Option<u64>) -> usize {
    declared.unwrap_or(0).min(RESERVE_CAP as u64) as usize
}

/// Everything a backend needs from the configuration at request time, resolved once when it is
/// built.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    /// `max_response_bytes` (raw bytes read are capped by it too).
    pub max_body: u64,
    /// `read_timeout`.
    pub read_timeout: Option<std::time::Duration>,
    /// `timeout`, used when a request reaches a backend without a deadline.
    pub timeout: std::time::Duration,
}

impl Limits {
    pub(crate) fn new(config: &Config) -> Self {
        Limits {
            max_body: config.max_response_bytes,
            read_timeout: config.read_timeout,
            timeout: config.timeout,
        }
    }

    /// Fails with `BodyTooLarge` when `len` bytes exceed the limit.
    pub(crate) fn check_body(&self, len: u64) -> Result<()> {
        if len > self.max_body {
            Err(
                Error::new(crate::ErrorKind::BodyTooLarge).with_detail(format!(
                    "body exceeds max_response_bytes ({} bytes)",
                    self.max_body
                )),
            )
        } else {
            Ok(())
        }
    }

    /// Fails with `BodyTooLarge` when a response that has a body (`has_body`) declares a
    /// `Content-Length` over the limit: before any of it is read.
    pub(crate) fn check_declared(&self, declared: Option<u64>, has_body: bool) -> Result<()> {
        match declared {
            Some(len) if has_body => self.check_body(len),
            _ => Ok(()),
        }
    }

    /// A body accumulator for a response with these headers. A declared `Content-Length` over
    /// the limit fails at once.
    pub(crate) fn body_buf(
        &self,
        headers: &http::HeaderMap,
        has_body: bool,
        progress: Option<Progress>,
    ) -> Result<BodyBuf> {
        let declared = content_length(headers);
        self.check_declared(declared, has_body)?;
        Ok(BodyBuf {
            first: bytes::Bytes::new(),
            rest: bytes::BytesMut::new(),
            declared,
            progress,
        })
    }
}

/// Accumulates body chunks under the size limit. A body that arrives in one chunk (the common
/// case for small responses) is kept as it is: no copy, no allocation.
pub(crate) struct BodyBuf {
    first: bytes::Bytes,
    rest: bytes::BytesMut,
    declared: Option<u64>,
    progress: Option<Progress>,
}

impl BodyBuf {
    /// Adds a chunk, failing with `BodyTooLarge` past the limit.
    pub(crate) fn push(&mut self, chunk: bytes::Bytes, limits: &Limits) -> Result<()> {
        let len = self.first.len() + self.rest.len() + chunk.len();
        limits.check_body(len as u64)?;
        if self.first.is_empty() && self.rest.is_empty() {
            self.first = chunk;
        } else {
            if self.rest.is_empty() {
                self.rest.reserve(reserve_for(self.declared).max(len));
                self.rest
                    .extend_from_slice(&std::mem::take(&mut self.first));
            }
            self.rest.extend_from_slice(&chunk);
        }
        if let Some(progress) = &self.progress {
            progress.report(len as u64, self.declared);
        }
        Ok(())
    }

    /// The whole body.
    pub(crate) fn finish(self) -> bytes::Bytes {
        if self.rest.is_empty() {
            self.first
        } else {
            self.rest.freeze()
        }
    }
}

/// The `Content-Length` header as a number.
pub(crate) fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    decimal(
        headers
            .get(http::header::CONTENT_LENGTH)?
            .as_bytes()
            .trim_ascii(),
    )
}

/// A `Content-Length` value: digits only, `None` when empty, with anything else, or on
/// overflow.
pub(crate) fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn content_length_digits_only() {
        assert_eq!(decimal(b"13"), Some(13));
        assert_eq!(decimal(b"0"), Some(0));
        assert_eq!(decimal(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"+13",
            b"1 3",
            b"0x10",
            b"-1",
            b"18446744073709551616",
        ] {
            assert_eq!(decimal(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
