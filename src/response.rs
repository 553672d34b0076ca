//! [`Response`]: a buffered HTTP response, the same whichever backend produced it.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri, Version};

use crate::backend::BackendKind;
use crate::error::{Error, ErrorKind, Result};
use crate::headers::Headers;

/// A response with its whole body buffered (decoded when `decompress` is on).
///
/// Non-2xx statuses are responses, not errors, until [`Response::error_for_status`].
#[derive(Clone)]
pub struct Response {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: Headers,
    pub(crate) url: Uri,
    pub(crate) body: Bytes,
    pub(crate) backend: BackendKind,
    pub(crate) attempts: u32,
    pub(crate) member: Option<std::sync::Arc<str>>,
}

impl Response {
    /// A response as a backend returns it, before the client's post-processing.
    pub(crate) fn from_parts(
        backend: BackendKind,
        url: Uri,
        status: StatusCode,
        version: Version,
        headers: impl Into<Headers>,
        body: Bytes,
    ) -> Self {
        let headers = headers.into();
        Response {
            status,
            version,
            headers,
            url,
            body,
            backend,
            attempts: 1,
            member: None,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version the response came over.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The response headers. When the body was decoded, `Content-Encoding` and `Content-Length`
    /// are removed.
    pub fn headers(&self) -> &HeaderMap {
        self.headers.map()
    }

    /// The final URL, after redirects.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// Which backend served the response.
    pub fn backend(&self) -> BackendKind {
        self.backend
    }

    /// How many attempts the request took (1 when the first one succeeded).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The fleet member that served the response (`None` outside a fleet).
    pub fn member(&self) -> Option<&str> {
        self.member.as_deref()
    }

    /// The server's `Retry-After` (seconds or HTTP-date), as a wait from now.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        crate::fleet::parse_retry_after(self.headers.map(), std::time::SystemTime::now())
    }

    /// The body.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body, taken out of the response.
    pub fn into_bytes(self) -> Bytes {
        self.body
    }

    /// The body as UTF-8 text; invalid UTF-8 is an [`ErrorKind::Body`] error.
    pub fn text(&self) -> Result<String> {
        std::str::from_utf8(&self.body)
            .map(str::to_owned)
            .map_err(|e| {
                self.error(ErrorKind::Body, "body is not valid UTF-8")
                    .with_source(e)
            })
    }

    /// The body parsed as JSON; a parse failure is an [`ErrorKind::Body`] error.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            self.error(ErrorKind::Body, "body is not the expected JSON")
                .with_source(e)
        })
    }

    /// The response if its status is not 4xx or 5xx, else an [`ErrorKind::Status`] error.
    pub fn error_for_status(self) -> Result<Self> {
        if self.status.is_client_error() || self.status.is_server_error() {
            Err(self.error(
                ErrorKind::Status(self.status),
                "server answered with an error status",
            ))
        } else {
            Ok(self)
        }
    }

    fn error(&self, kind: ErrorKind, detail: &'static str) -> Error {
        Error::new(kind)
            .with_detail(detail)
            .with_backend(self.backend)
            .with_url(&self.url)
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("version", &self.version)
            .field("url", &format_args!("{}", self.url))
            .field("backend", &self.backend)
            .field("attempts", &self.attempts)
            .field("member", &self.member)
            .field(
                "headers",
                &crate::request::RedactedHeaders(self.headers.map()),
            )
            .field("body", &format_args!("{} bytes", self.body.len()))
            .finish()
    }
}
