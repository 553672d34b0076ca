//! [`Response`] of the blocking client: the head, and the body read as the caller reads it
//! ([`std::io::Read`], [`Response::chunk`], [`Response::copy_to`]) or whole
//! ([`Response::bytes`], [`Response::text`], [`Response::json`]).

use std::fmt;
use std::io::{Read, Write};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri, Version};

use crate::backend::BackendKind;
use crate::error::{Error, ErrorKind, Result};
use crate::response::Gather;

/// A response of the blocking client: its head, and its body to read.
///
/// The body is read with [`Read`], [`Response::chunk`], [`Response::copy_to`],
/// [`Response::bytes`], [`Response::text`] or [`Response::json`]. Whichever way, the request's
/// total deadline covers the whole body and `read_timeout` each wait for a piece (both
/// `Timeout(Body)`), `max_response_bytes` applies to the decoded bytes, and memory stays
/// bounded whatever the body's size. Dropping a response before its body's end closes its
/// connection; a body read to its end leaves the connection to the pool.
///
/// A read error through [`Read`] is an `io::Error` whose inner error is the [`Error`].
pub struct Response {
    inner: crate::Response,
    /// What a `read` took of a piece and did not hand out yet.
    left: Bytes,
}

impl Response {
    pub(crate) fn new(inner: crate::Response) -> Self {
        Response {
            inner,
            left: Bytes::new(),
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// The HTTP version the response came over.
    pub fn version(&self) -> Version {
        self.inner.version()
    }

    /// The response headers (without `Content-Encoding` and `Content-Length` when the body is
    /// decoded).
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The final URL, after redirects.
    pub fn url(&self) -> &Uri {
        self.inner.url()
    }

    /// Which backend served the response.
    pub fn backend(&self) -> BackendKind {
        self.inner.backend()
    }

    /// How many attempts the request took.
    pub fn attempts(&self) -> u32 {
        self.inner.attempts()
    }

    /// How long the response took: to its head, and to its body's end once read.
    pub fn timings(&self) -> crate::Timings {
        self.inner.timings()
    }

    /// The fleet member that served the response (`None` outside a fleet).
    pub fn member(&self) -> Option<&str> {
        self.inner.member()
    }

    /// The server's `Retry-After`, as a wait from now.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after()
    }

    /// The length the body declared (`Content-Length`), if it did and is not decoded.
    pub fn content_length(&self) -> Option<u64> {
        self.inner.content_length()
    }

    /// The next piece of the body as it arrives, `None` at its end.
    pub fn chunk(&mut self) -> Result<Option<Bytes>> {
        if !self.left.is_empty() {
            return Ok(Some(std::mem::take(&mut self.left)));
        }
        self.next(false)
    }

    fn next(&mut self, whole: bool) -> Result<Option<Bytes>> {
        let crate::Response { head, body, .. } = &mut self.inner;
        body.next_blocking(whole, &head.meta())
    }

    /// The whole body (what is left of it).
    pub fn bytes(mut self) -> Result<Bytes> {
        self.whole()
    }

    fn whole(&mut self) -> Result<Bytes> {
        if self.left.is_empty() {
            if let Some(full) = self.inner.body.take_full() {
                return Ok(full);
            }
        }
        let mut whole = Gather::default();
        if !self.left.is_empty() {
            whole.push(std::mem::take(&mut self.left));
        }
        while let Some(piece) = self.next(true)? {
            whole.push(piece);
        }
        Ok(whole.finish())
    }

    /// The body as text, in the charset its `Content-Type` declares (UTF-8 by default); bytes
    /// not valid in it are an [`ErrorKind::Body`] error.
    pub fn text(mut self) -> Result<String> {
        let bytes = self.whole()?;
        crate::response::text(&self.inner.head, bytes)
    }

    /// The body parsed as JSON; a parse failure is an [`ErrorKind::Body`] error.
    pub fn json<T: serde::de::DeserializeOwned>(mut self) -> Result<T> {
        let bytes = self.whole()?;
        crate::response::json(&self.inner.head, &bytes)
    }

    /// Writes the body to `w` as it arrives; the bytes written.
    pub fn copy_to(&mut self, w: &mut impl Write) -> Result<u64> {
        let mut written = 0;
        while let Some(piece) = self.chunk()? {
            w.write_all(&piece).map_err(|e| {
                Error::new(ErrorKind::Body)
                    .with_detail("cannot write the body out")
                    .with_source(e)
            })?;
            written += piece.len() as u64;
        }
        Ok(written)
    }

    /// The response if its status is not 4xx or 5xx, else an [`ErrorKind::Status`] error.
    pub fn error_for_status(self) -> Result<Self> {
        match self.inner.head.status_error() {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }

    /// [`Response::error_for_status`], keeping the response.
    pub fn error_for_status_ref(&self) -> Result<&Self> {
        match self.inner.head.status_error() {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left.is_empty() {
            match self.next(false) {
                Ok(Some(piece)) => self.left = piece,
                Ok(None) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let n = self.left.len().min(buf.len());
        buf[..n].copy_from_slice(&self.left[..n]);
        let _ = self.left.split_to(n);
        Ok(n)
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::response::debug_head(&self.inner.head, f.debug_struct("Response"))
            .finish_non_exhaustive()
    }
}
