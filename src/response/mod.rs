//! [`Response`]: the head of a response as soon as it arrives, its body read when asked, the
//! same whichever backend produced it.

mod body;

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http::{HeaderMap, StatusCode, Uri, Version};

use crate::error::{Error, ErrorKind, Result};
use crate::headers::Headers;
use crate::kind::BackendKind;

pub(crate) use body::{Gather, Meta, Pieces, RawBody, Reading};

/// The head of a response, and where it came from.
#[derive(Clone)]
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: Headers,
    pub(crate) url: Uri,
    pub(crate) backend: BackendKind,
    pub(crate) attempts: u32,
    pub(crate) member: Option<Arc<str>>,
    /// When the request was sent (`send()` called), and how long its head took from then.
    pub(crate) started: tokio::time::Instant,
    pub(crate) first_byte: std::time::Duration,
    /// How opening the connection of the last hop went.
    pub(crate) phases: Phases,
}

/// How long a response took: `first_byte` and `total` measured by httpfleet the same way on
/// every backend, from the start of the request's deadline (when it was sent; a fleet's retries
/// and hedges included); the phases of opening its connection where the backend can tell them
/// (curl and hyper; `None` on reqwest and ureq, and for a reused connection everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timings {
    /// Looking the host name up, for the connection this response opened (of its last
    /// redirect hop). `None` when the URL named an address.
    pub dns: Option<std::time::Duration>,
    /// Opening the TCP connection after the lookup (to a proxy: until it carries requests, a
    /// `CONNECT` tunnel included).
    pub connect: Option<std::time::Duration>,
    /// The TLS handshake after the connection. `None` for plain HTTP.
    pub tls: Option<std::time::Duration>,
    /// Until the response head arrived (redirects included).
    pub first_byte: std::time::Duration,
    /// Until the body was read to its end through this response (`chunk`, `bytes_stream`,
    /// `Read`); `None` before that.
    pub total: Option<std::time::Duration>,
}

/// How long each phase of opening a new connection took: `None` where there was no such phase
/// (no lookup for an address, no TLS for plain HTTP), the connection was reused, or the backend
/// cannot tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Phases {
    pub(crate) dns: Option<std::time::Duration>,
    pub(crate) connect: Option<std::time::Duration>,
    pub(crate) tls: Option<std::time::Duration>,
}

impl Head {
    pub(crate) fn meta(&self) -> Meta<'_> {
        Meta {
            backend: self.backend,
            url: &self.url,
        }
    }

    fn error(&self, kind: ErrorKind, detail: &'static str) -> Error {
        self.error_owned(kind, detail.to_owned())
    }

    fn error_owned(&self, kind: ErrorKind, detail: String) -> Error {
        Error::new(kind)
            .with_detail(detail)
            .with_backend(self.backend)
            .with_url(&self.url)
    }

    /// An [`ErrorKind::Status`] error for a 4xx or 5xx status.
    pub(crate) fn status_error(&self) -> Option<Error> {
        let status = self.status;
        (status.is_client_error() || status.is_server_error()).then(|| {
            self.error(
                ErrorKind::Status(status),
                "server answered with an error status",
            )
        })
    }
}

/// A response: its head, and its body to read.
///
/// `send()` resolves once the head has arrived; the body is read with [`Response::bytes`],
/// [`Response::text`], [`Response::json`], [`Response::chunk`] or [`Response::bytes_stream`].
/// Whichever way, the request's total deadline covers the whole body and `read_timeout` each
/// wait for a piece (both `Timeout(Body)`), `max_response_bytes` applies to the decoded bytes,
/// and memory stays bounded whatever the body's size. Dropping a response before its body's end
/// closes its connection; a body read to its end leaves the connection to the pool.
///
/// Non-2xx statuses are responses, not errors, until [`Response::error_for_status`].
pub struct Response {
    pub(crate) head: Head,
    pub(crate) body: Pieces,
    /// A decoded slice was returned: the next read first gives other tasks their turn.
    yield_owed: bool,
}

impl Response {
    pub(crate) fn new(head: Head, body: Pieces) -> Self {
        Response {
            head,
            body,
            yield_owed: false,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.head.status
    }

    /// The HTTP version the response came over.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The response headers. When the body is decoded, `Content-Encoding` and `Content-Length`
    /// are removed.
    pub fn headers(&self) -> &HeaderMap {
        self.head.headers.map()
    }

    /// The final URL, after redirects.
    pub fn url(&self) -> &Uri {
        &self.head.url
    }

    /// Which backend served the response.
    pub fn backend(&self) -> BackendKind {
        self.head.backend
    }

    /// How many attempts the request took (1 when the first one succeeded).
    pub fn attempts(&self) -> u32 {
        self.head.attempts
    }

    /// How long the response took: to its head, and to its body's end once read.
    pub fn timings(&self) -> Timings {
        Timings {
            dns: self.head.phases.dns,
            connect: self.head.phases.connect,
            tls: self.head.phases.tls,
            first_byte: self.head.first_byte,
            total: self.body.ended_at().map(|at| at - self.head.started),
        }
    }

    /// The fleet member that served the response (`None` outside a fleet).
    pub fn member(&self) -> Option<&str> {
        self.head.member.as_deref()
    }

    /// The server's `Retry-After` (seconds or HTTP-date), as a wait from now.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        crate::headers::parse_retry_after(self.headers(), std::time::SystemTime::now())
    }

    /// The length the body declared (`Content-Length`), if it did and is not decoded.
    pub fn content_length(&self) -> Option<u64> {
        crate::headers::content_length(self.headers())
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Bytes> {
        self.whole().await
    }

    /// The body as text, in the charset its `Content-Type` declares (UTF-8 by default); bytes
    /// not valid in it are an [`ErrorKind::Body`] error.
    pub async fn text(mut self) -> Result<String> {
        let bytes = self.whole().await?;
        text(&self.head, bytes)
    }

    /// The body parsed as JSON; a parse failure is an [`ErrorKind::Body`] error.
    pub async fn json<T: serde::de::DeserializeOwned>(mut self) -> Result<T> {
        let bytes = self.whole().await?;
        json(&self.head, &bytes)
    }

    async fn whole(&mut self) -> Result<Bytes> {
        if let Some(full) = self.body.take_full() {
            return Ok(full);
        }
        let mut whole = Gather::default();
        while let Some(piece) = self.next_piece(true).await? {
            whole.push(piece);
        }
        Ok(whole.finish())
    }

    /// The next piece of the body as it arrives, `None` at its end. Cancel-safe: dropped
    /// before it completes, it has taken nothing from the body.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        self.next_piece(false).await
    }

    /// The body as a stream of pieces.
    pub fn bytes_stream(self) -> BytesStream {
        BytesStream { resp: self }
    }

    async fn next_piece(&mut self, whole: bool) -> Result<Option<Bytes>> {
        // A long decode gives other tasks their turn between slices (each at most a few MiB
        // of output). The turn is owed by one slice and given before the next, the debt paid as
        // the turn begins: a piece, once taken, is returned at once, so a dropped future loses
        // none, and one polled once and dropped does not hold the next read back again.
        if std::mem::take(&mut self.yield_owed) {
            tokio::task::yield_now().await;
        }
        let (head, body) = (&self.head, &mut self.body);
        let piece = poll_fn(|cx| body.poll_next(cx, whole, &head.meta())).await;
        self.yield_owed = body.decodes();
        piece
    }

    /// The response if its status is not 4xx or 5xx, else an [`ErrorKind::Status`] error.
    pub fn error_for_status(self) -> Result<Self> {
        self.status_error().map_or(Ok(self), Err)
    }

    /// [`Response::error_for_status`], keeping the response.
    pub fn error_for_status_ref(&self) -> Result<&Self> {
        self.status_error().map_or(Ok(self), Err)
    }

    fn status_error(&self) -> Option<Error> {
        self.head.status_error()
    }
}

/// A whole body as text, in the charset its `Content-Type` declares (UTF-8 when it declares
/// none): bytes that are not valid in it, or a charset nobody knows, are an [`ErrorKind::Body`]
/// error ([`Error::is_decode`]).
pub(crate) fn text(head: &Head, bytes: Bytes) -> Result<String> {
    let fail = |detail: String| head.error_owned(ErrorKind::Body, detail).decoding();
    let encoding = match charset(head.headers.map()) {
        None => encoding_rs::UTF_8,
        Some(label) => encoding_rs::Encoding::for_label(label.as_bytes())
            .ok_or_else(|| fail(format!("body is in charset {label:?}, which is not known")))?,
    };
    if encoding == encoding_rs::UTF_8 {
        return String::from_utf8(bytes.into())
            .map_err(|e| fail("body is not valid UTF-8".into()).with_source(e));
    }
    encoding
        .decode_without_bom_handling_and_without_replacement(&bytes)
        .map(std::borrow::Cow::into_owned)
        .ok_or_else(|| fail(format!("body is not valid {}", encoding.name())))
}

/// The `charset` parameter of a `Content-Type`, if it has one.
fn charset(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    value.split(';').skip(1).find_map(|param| {
        let (name, v) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// A whole body parsed as JSON: a parse failure is an [`ErrorKind::Body`] error.
pub(crate) fn json<T: serde::de::DeserializeOwned>(head: &Head, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        head.error(ErrorKind::Body, "body is not the expected JSON")
            .with_source(e)
            .decoding()
    })
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_head(&self.head, f.debug_struct("Response")).finish_non_exhaustive()
    }
}

/// The `Debug` fields of a response head (secret header values hidden).
pub(crate) fn debug_head<'a, 'b>(
    head: &Head,
    mut d: fmt::DebugStruct<'a, 'b>,
) -> fmt::DebugStruct<'a, 'b> {
    d.field("status", &head.status)
        .field("version", &head.version)
        .field("url", &format_args!("{}", head.url))
        .field("backend", &head.backend)
        .field("attempts", &head.attempts)
        .field("member", &head.member)
        .field(
            "headers",
            &crate::request::RedactedHeaders(head.headers.map()),
        );
    d
}

/// A response body as a [`Stream`] of pieces ([`Response::bytes_stream`]).
pub struct BytesStream {
    resp: Response,
}

impl Stream for BytesStream {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let resp = &mut self.get_mut().resp;
        let (head, body) = (&resp.head, &mut resp.body);
        body.poll_next(cx, false, &head.meta())
            .map(Result::transpose)
    }
}

impl fmt::Debug for BytesStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BytesStream")
            .field("response", &self.resp)
            .finish()
    }
}

// A response can be shared across threads and held across an await while borrowed.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Response>();
    assert_send_sync::<crate::blocking::Response>();
};
