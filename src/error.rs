//! [`Error`], [`ErrorKind`] and [`TimeoutPhase`]: one error type for every backend.
//!
//! The same fault gives the same [`ErrorKind`] whichever backend met it; the backend's own error
//! stays reachable through [`std::error::Error::source`].

use std::borrow::Cow;
use std::fmt;

use http::{StatusCode, Uri};

use crate::kind::BackendKind;
use crate::url::redact_uri;

/// A boxed error from a backend or from a lower layer, kept as [`Error`]'s source.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of httpfleet.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The phase of a request in which a deadline ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutPhase {
    /// The connection (TCP, TLS, proxy tunnel) was not established within `connect_timeout`.
    Connect,
    /// The request was sent but the response head did not arrive before the total deadline.
    Headers,
    /// The response head arrived but the body did not finish before the total deadline, or the
    /// body stalled for longer than `read_timeout`.
    Body,
    /// The total deadline ran out outside any single exchange (between redirects or attempts).
    Total,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Connect => "connect",
            TimeoutPhase::Headers => "headers",
            TimeoutPhase::Body => "body",
            TimeoutPhase::Total => "total",
        })
    }
}

/// What went wrong, normalized across backends.
///
/// New kinds may be added in minor releases, so match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request or the configuration is invalid: a header name or value with CR, LF or NUL,
    /// an invalid method, a zero timeout, an unreadable certificate file. Nothing was sent.
    Builder,
    /// The URL cannot be used: it does not parse, has no host, or its scheme is not `http` or
    /// `https`. Nothing was sent.
    InvalidUrl,
    /// The backend cannot do what the configuration or the request asks (for example HTTP/2 on
    /// ureq). Reported when the backend is built, before any I/O.
    Unsupported,
    /// The host name could not be resolved.
    Dns,
    /// The TCP connection could not be established (refused, unreachable, reset while connecting).
    Connect,
    /// The TLS handshake failed: untrusted certificate, wrong host name, rejected client
    /// certificate, protocol mismatch.
    Tls,
    /// The proxy refused the request, asked for credentials, or could not be reached.
    Proxy,
    /// A deadline ran out; the phase says where.
    Timeout(TimeoutPhase),
    /// A redirect could not be followed: too many, a missing or invalid `Location`, or an
    /// `https` to `http` downgrade that is not allowed.
    Redirect,
    /// The connection broke while the response body was being received.
    Body,
    /// The peer broke the HTTP protocol: malformed status line, headers or chunked encoding,
    /// oversize header block, or a connection closed before any response.
    Protocol,
    /// The server answered with an error status; only produced by
    /// [`Response::error_for_status`](crate::Response::error_for_status).
    Status(StatusCode),
    /// The decoded response body is larger than `max_response_bytes`.
    BodyTooLarge,
    /// The request was canceled before it completed.
    Canceled,
    /// The server rate-limited the caller (429 or 418), and the fleet will not retry it.
    RateLimited,
    /// A [`Hook`](crate::Hook) refused the attempt ([`Error::refused`]). Nothing was sent.
    Refused,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Builder => f.write_str("invalid request"),
            ErrorKind::InvalidUrl => f.write_str("invalid URL"),
            ErrorKind::Unsupported => f.write_str("unsupported by this backend"),
            ErrorKind::Dns => f.write_str("DNS resolution failed"),
            ErrorKind::Connect => f.write_str("connection failed"),
            ErrorKind::Tls => f.write_str("TLS handshake failed"),
            ErrorKind::Proxy => f.write_str("proxy error"),
            ErrorKind::Timeout(phase) => write!(f, "timed out ({phase})"),
            ErrorKind::Redirect => f.write_str("redirect error"),
            ErrorKind::Body => f.write_str("response body broken"),
            ErrorKind::Protocol => f.write_str("HTTP protocol error"),
            ErrorKind::Status(status) => write!(f, "HTTP status {status}"),
            ErrorKind::BodyTooLarge => f.write_str("response body too large"),
            ErrorKind::Canceled => f.write_str("request canceled"),
            ErrorKind::RateLimited => f.write_str("rate limited"),
            ErrorKind::Refused => f.write_str("refused by a hook"),
        }
    }
}

/// An httpfleet error: a normalized [`ErrorKind`], where it happened, and the backend's own error
/// as [`source`](std::error::Error::source).
///
/// `Display` says what happened and where; it never prints credentials (the URL is shown with its
/// user information removed) and does not repeat the source's message.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    backend: Option<BackendKind>,
    url: Option<Uri>,
    detail: Option<Cow<'static, str>>,
    source: Option<BoxError>,
    attempts: u32,
    history: Vec<Attempt>,
    closed_before_response: bool,
    /// The body arrived but could not be decoded (content coding, UTF-8, JSON).
    decode: bool,
}

/// One attempt of a fleet request that did not succeed: which member, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// The member's name.
    pub member: String,
    /// How the attempt ended (`connection failed`, `HTTP 503`, ...).
    pub outcome: String,
}

impl Attempt {
    pub(crate) fn new(member: &str, outcome: impl Into<String>) -> Self {
        Attempt {
            member: member.to_owned(),
            outcome: outcome.into(),
        }
    }

    pub(crate) fn from_outcome(member: &str, outcome: &Result<crate::Response>) -> Self {
        match outcome {
            Ok(resp) => Attempt::new(member, format!("HTTP {}", resp.status().as_u16())),
            Err(e) => Attempt::new(member, e.kind().to_string()),
        }
    }
}

impl Error {
    /// The error a [`Hook`](crate::Hook) returns to refuse an attempt: [`ErrorKind::Refused`],
    /// with `reason` as its detail. It ends the request.
    pub fn refused(reason: impl Into<String>) -> Self {
        Error::new(ErrorKind::Refused).with_detail(reason.into())
    }

    /// A new error of `kind`, with no source.
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                backend: None,
                url: None,
                detail: None,
                source: None,
                attempts: 1,
                history: Vec::new(),
                closed_before_response: false,
                decode: false,
            }),
        }
    }

    /// A `Builder` error with a message.
    pub(crate) fn builder(detail: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::Builder).with_detail(detail)
    }

    /// An `InvalidUrl` error with a message.
    pub(crate) fn invalid_url(detail: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::InvalidUrl).with_detail(detail)
    }

    /// An `Unsupported` error naming the backend and what it cannot do.
    pub(crate) fn unsupported(backend: BackendKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::Unsupported)
            .with_backend(backend)
            .with_detail(detail)
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.inner.detail = Some(detail.into());
        self
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    pub(crate) fn with_backend(mut self, backend: BackendKind) -> Self {
        self.inner.backend = Some(backend);
        self
    }

    /// Records the URL (credentials are stripped when it is stored).
    pub(crate) fn with_url(mut self, url: &Uri) -> Self {
        self.inner.url = Some(redact_uri(url));
        self
    }

    /// Records the backend, unless one is already recorded.
    pub(crate) fn or_backend(mut self, backend: BackendKind) -> Self {
        self.inner.backend.get_or_insert(backend);
        self
    }

    /// Records the URL, unless one is already recorded.
    pub(crate) fn or_url(self, url: &Uri) -> Self {
        if self.inner.url.is_some() {
            self
        } else {
            self.with_url(url)
        }
    }

    /// Marks a connection that closed before any byte of the response arrived: on a reused
    /// connection that is a stale pooled connection, and the request may be sent again.
    pub(crate) fn closed_before_any_response(mut self) -> Self {
        self.inner.closed_before_response = true;
        self
    }

    /// Marks a body that arrived but could not be decoded ([`Error::is_decode`]).
    pub(crate) fn decoding(mut self) -> Self {
        self.inner.decode = true;
        self
    }

    /// See [`Error::closed_before_any_response`].
    pub(crate) fn closed_before_response(&self) -> bool {
        self.inner.closed_before_response
    }

    /// Records a fleet request's failed attempts and how many attempts it made in all.
    pub(crate) fn with_history(mut self, history: Vec<Attempt>, attempts: u32) -> Self {
        self.inner.attempts = attempts.max(1);
        self.inner.history = history;
        self
    }

    /// How many attempts the request made (1 outside a fleet).
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// The failed attempts of a fleet request, in order (empty outside a fleet).
    pub fn history(&self) -> &[Attempt] {
        &self.inner.history
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// Which backend met the error, when one did.
    pub fn backend(&self) -> Option<BackendKind> {
        self.inner.backend
    }

    /// The URL of the request that failed, without any user information (credentials).
    pub fn url(&self) -> Option<&Uri> {
        self.inner.url.as_ref()
    }

    /// The status of an [`ErrorKind::Status`] error
    /// ([`Response::error_for_status`](crate::Response::error_for_status)).
    pub fn status(&self) -> Option<StatusCode> {
        match self.inner.kind {
            ErrorKind::Status(status) => Some(status),
            _ => None,
        }
    }

    /// True when the server could not be reached: [`ErrorKind::Dns`], [`ErrorKind::Connect`] or
    /// a connect timeout.
    pub fn is_connect(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::Dns | ErrorKind::Connect | ErrorKind::Timeout(TimeoutPhase::Connect)
        )
    }

    /// True when the body arrived but could not be decoded: its content coding, UTF-8 for
    /// `text()`, JSON for `json()` (an [`ErrorKind::Body`] error).
    pub fn is_decode(&self) -> bool {
        self.inner.decode
    }

    /// True for every [`ErrorKind::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Timeout(_))
    }

    /// True when sending the same request again is safe and may succeed: DNS and connect
    /// failures and connect timeouts, where no byte of the request reached the server. (Failures
    /// on a reused connection before any response byte are retried inside every backend.)
    /// TLS, builder, invalid-URL, unsupported and body-too-large errors are never retryable.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::Dns | ErrorKind::Connect | ErrorKind::Timeout(TimeoutPhase::Connect)
        )
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        if let Some(backend) = self.inner.backend {
            d.field("backend", &backend);
        }
        if let Some(url) = &self.inner.url {
            d.field("url", &format_args!("{url}"));
        }
        if let Some(detail) = &self.inner.detail {
            d.field("detail", detail);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        if !self.inner.history.is_empty() {
            d.field("attempts", &self.inner.attempts);
            d.field("history", &self.inner.history);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner.kind)?;
        if let Some(detail) = &self.inner.detail {
            write!(f, ": {detail}")?;
        }
        match (&self.inner.backend, &self.inner.url) {
            (Some(b), Some(u)) => write!(f, " ({b}, {u})")?,
            (Some(b), None) => write!(f, " ({b})")?,
            (None, Some(u)) => write!(f, " ({u})")?,
            (None, None) => {}
        }
        if !self.inner.history.is_empty() {
            write!(f, "; after {} attempts:", self.inner.attempts)?;
            for (i, a) in self.inner.history.iter().enumerate() {
                let sep = if i == 0 { " " } else { ", " };
                write!(f, "{sep}{}: {}", a.member, a.outcome)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|e| &**e as &(dyn std::error::Error + 'static))
    }
}

/// The errors of a chain, looking inside `io::Error` wrappers too (their `source()` skips the
/// wrapped error itself).
pub(crate) fn chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    std::iter::from_fn(move || {
        let cur = next?;
        next = match cur
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => cur.source(),
        };
        Some(cur)
    })
}

/// The kind of the first `io::Error` in the chain.
pub(crate) fn find_io_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    chain(err).find_map(|e| e.downcast_ref::<std::io::Error>().map(|io| io.kind()))
}

/// True when an error message in the chain contains `needle` (compared in lowercase).
pub(crate) fn chain_mentions(err: &(dyn std::error::Error + 'static), needle: &str) -> bool {
    chain(err).any(|e| e.to_string().to_ascii_lowercase().contains(needle))
}
