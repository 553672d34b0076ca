//! [`Request`]: what a client sends, built the same way for the async and the blocking client
//! ([`RequestBuilder`]); its [`Body`]; and [`Outgoing`], one hop of it as it goes on the wire.

mod body;
mod builder;
#[cfg(feature = "multipart")]
pub(crate) mod multipart;
mod parts;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use tokio::time::Instant;

use crate::error::{Error, Result};

pub use body::Body;
pub(crate) use body::{PieceStream, SendBody};
pub use builder::RequestBuilder;
pub(crate) use builder::{method, request_verbs};
pub(crate) use parts::PartsReader;

/// One HTTP request: method, URL, headers, body and an optional own deadline.
///
/// `Debug` never prints the values of `Authorization`, `Proxy-Authorization` or `Cookie`.
pub struct Request {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
    pub(crate) timeout: Option<Duration>,
    /// Set by the client when the request is dispatched; transports end by it.
    pub(crate) deadline: Option<Instant>,
    /// Called as the response body arrives (see [`RequestBuilder::on_progress`]).
    pub(crate) progress: Option<Progress>,
    /// Called as the request body is sent (see [`RequestBuilder::on_upload_progress`]).
    pub(crate) upload_progress: Option<Progress>,
    /// Typed values carried with the request for hooks (never sent).
    pub(crate) extensions: http::Extensions,
    /// Redirects to follow, overriding the client's `max_redirects`.
    pub(crate) max_redirects: Option<u32>,
}

/// A progress callback: bytes so far, and the total when it is known.
#[derive(Clone)]
pub(crate) struct Progress(Arc<dyn Fn(u64, Option<u64>) + Send + Sync>);

impl Progress {
    /// Reports `done` bytes of `total`, if known.
    pub(crate) fn report(&self, done: u64, total: Option<u64>) {
        (self.0)(done, total)
    }
}

impl Request {
    /// A request with no headers and no body. The URL is validated as [`RequestBuilder`] does;
    /// credentials in it become an `Authorization` header.
    pub fn new(method: Method, url: &str) -> Result<Self> {
        let parsed = crate::url::parse(url)?;
        let mut req = Request::from_uri(method, parsed.uri);
        if let Some((u, p)) = parsed.credentials {
            req.headers
                .insert(AUTHORIZATION, crate::url::basic_auth_value(&u, &p));
        }
        Ok(req)
    }

    pub(crate) fn from_uri(method: Method, uri: Uri) -> Self {
        Request {
            method,
            uri,
            headers: HeaderMap::new(),
            body: Body::empty(),
            timeout: None,
            deadline: None,
            progress: None,
            upload_progress: None,
            extensions: http::Extensions::new(),
            max_redirects: None,
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL (without credentials: those became an `Authorization` header).
    pub fn url(&self) -> &Uri {
        &self.uri
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, mutable (a [`Hook`](crate::Hook) re-signing a request changes them here).
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The URL, mutable.
    pub fn url_mut(&mut self) -> &mut Uri {
        &mut self.uri
    }

    /// Typed values carried with the request for a [`Hook`](crate::Hook) (a request weight, a
    /// trace id); never sent. Copied into every attempt of a fleet.
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// The extensions, mutable.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// This request's own total deadline, overriding [`Config::timeout`](crate::Config::timeout).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// A copy of the request, when its body can be sent again (bytes or a file).
    pub fn try_clone(&self) -> Option<Request> {
        Some(Request {
            method: self.method.clone(),
            uri: self.uri.clone(),
            headers: self.headers.clone(),
            body: self.body.try_clone()?,
            timeout: self.timeout,
            deadline: self.deadline,
            progress: self.progress.clone(),
            upload_progress: self.upload_progress.clone(),
            extensions: self.extensions.clone(),
            max_redirects: self.max_redirects,
        })
    }

    /// A copy for one attempt of a fleet: the body copied, or (a reader or a stream, which a
    /// fleet sends once) taken over.
    pub(crate) fn for_attempt(&self) -> Request {
        Request {
            method: self.method.clone(),
            uri: self.uri.clone(),
            headers: self.headers.clone(),
            body: self.body.take_once(),
            timeout: self.timeout,
            deadline: self.deadline,
            progress: self.progress.clone(),
            upload_progress: self.upload_progress.clone(),
            extensions: self.extensions.clone(),
            max_redirects: self.max_redirects,
        }
    }

    /// The deadline, or `fallback` from now when the request has not been dispatched.
    pub(crate) fn deadline_or(&self, fallback: Duration) -> Instant {
        self.deadline.unwrap_or_else(|| Instant::now() + fallback)
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &format_args!("{}", self.uri))
            .field("headers", &RedactedHeaders(&self.headers))
            .field("body", &self.body)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// True for the methods RFC 9110 calls idempotent.
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// One hop of a request as it goes on the wire: its method, URL, headers (the request's own,
/// then each of the client's defaults it does not set), body and deadline. The exchange builds
/// one per hop; transports send it as it is.
pub(crate) struct Outgoing<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) defaults: &'a HeaderMap,
    pub(crate) body: SendBody,
    /// Its length, when known: `Content-Length`, else the body is chunked.
    pub(crate) body_len: Option<u64>,
    pub(crate) deadline: Instant,
    /// The backend may send it again on its own, on a fresh connection, when a reused one
    /// closed before any byte of the response (an idempotent method, a replayable body).
    pub(crate) may_resend: bool,
    pub(crate) upload_progress: Option<&'a Progress>,
    /// The request's own timeout as the caller set it (the mock backend records it).
    pub(crate) timeout: Option<Duration>,
}

impl Outgoing<'_> {
    /// The headers that go on the wire, in order: the request's own, then each default it does
    /// not set itself.
    pub(crate) fn wire_headers(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        let own = self.headers;
        let check = !own.is_empty();
        own.iter().chain(
            self.defaults
                .iter()
                .filter(move |(name, _)| !check || !own.contains_key(*name)),
        )
    }

    /// True when `name` goes on the wire.
    pub(crate) fn has_header(&self, name: &HeaderName) -> bool {
        self.headers.contains_key(name) || self.defaults.contains_key(name)
    }

    /// The wire headers as one map, with room for `room` more (hyper-util adds `Host`; a full
    /// map would grow, copying itself).
    pub(crate) fn header_map(&self, room: usize) -> HeaderMap {
        if room == 0 && self.headers.is_empty() {
            return self.defaults.clone();
        }
        if room == 0 && self.defaults.is_empty() {
            return self.headers.clone();
        }
        let mut map = HeaderMap::with_capacity(self.headers.len() + self.defaults.len() + room);
        for (name, value) in self.wire_headers() {
            map.append(name.clone(), value.clone());
        }
        map
    }

    /// Whether a body goes with it: a non-empty one, or any for the methods that carry one.
    pub(crate) fn sends_body(&self) -> bool {
        self.body_len != Some(0)
            || matches!(*self.method, Method::POST | Method::PUT | Method::PATCH)
    }
}

/// `Debug` of a header map with secret values replaced by `***`.
pub(crate) struct RedactedHeaders<'a>(pub &'a HeaderMap);

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.0 {
            if crate::config::is_secret_header(k.as_str()) || v.is_sensitive() {
                m.entry(&k.as_str(), &"***");
            } else {
                m.entry(&k.as_str(), &v);
            }
        }
        m.finish()
    }
}

/// Validates a header name given as text.
pub(crate) fn header_name(name: &str) -> Result<HeaderName> {
    HeaderName::try_from(name)
        .map_err(|e| Error::builder(format!("invalid header name {name:?}")).with_source(e))
}

/// Validates a header value given as text: CR, LF, NUL and other control characters but tab are
/// refused.
pub(crate) fn header_value(value: &str) -> Result<HeaderValue> {
    HeaderValue::try_from(value).map_err(|e| {
        Error::builder("invalid header value (control characters such as CR, LF or NUL)")
            .with_source(e)
    })
}

/// Checks every header of a request before it leaves: no CR, LF or NUL anywhere, whatever way
/// the value was built. Backends such as curl take raw header lines, so httpfleet checks itself.
pub(crate) fn check_headers(headers: &HeaderMap) -> Result<()> {
    for (name, value) in headers {
        if value
            .as_bytes()
            .iter()
            .any(|&b| b == b'\r' || b == b'\n' || b == 0)
        {
            return Err(Error::builder(format!(
                "header {name} has CR, LF or NUL in its value"
            )));
        }
    }
    Ok(())
}
