//! Redirect following, the same on every backend: a small state machine stepped once per
//! response.

use http::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, LOCATION, PROXY_AUTHORIZATION,
    TRANSFER_ENCODING,
};
use http::{Method, StatusCode};

use crate::error::{Error, ErrorKind, Result};
use crate::request::Request;
use crate::response::Response;

/// What to do after a hop.
// Boxing the response would cost an allocation per request; this value is moved once.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Next {
    /// Return this response.
    Done(Response),
    /// Send the request again: it now holds the redirect's target, or it is the one resend of
    /// a stale connection.
    Again,
}

/// The state of one exchange across its hops: redirects followed, and the one transparent
/// resend of an idempotent request whose connection closed before any response byte (a stale
/// pooled connection). The request itself stays with the caller (transports borrow it), and a
/// redirect rewrites it in place: no hop copies it.
pub(crate) struct Redirects {
    followed: u32,
    max: u32,
    allow_insecure: bool,
    resent: bool,
    /// A redirect left the original scheme, host and port.
    crossed: bool,
}

impl Redirects {
    /// The state for a request about to be sent.
    pub(crate) fn new(max: u32, allow_insecure: bool) -> Self {
        Redirects {
            followed: 0,
            max,
            allow_insecure,
            resent: false,
            crossed: false,
        }
    }

    /// True once a redirect has left the original origin: default credentials stay behind.
    pub(crate) fn crossed_origin(&self) -> bool {
        self.crossed
    }

    /// Steps the machine with the outcome of one hop of `req`: a stale connection's error
    /// becomes one resend, a response head over the shared limits an error, a redirect the next
    /// hop (`req` rewritten for it).
    pub(crate) fn after(&mut self, req: &mut Request, outcome: Result<Response>) -> Result<Next> {
        match outcome {
            Ok(resp) => {
                check_head(&resp)?;
                self.step(req, resp)
            }
            Err(e) if self.resend(req, &e) => Ok(Next::Again),
            Err(e) => Err(e),
        }
    }

    /// [`Redirects::after`] for an outcome that is not a redirect response, so `req` is not
    /// rewritten and may be borrowed.
    pub(crate) fn after_final(&mut self, req: &Request, outcome: Result<Response>) -> Result<Next> {
        match outcome {
            Ok(resp) => {
                check_head(&resp)?;
                Ok(Next::Done(resp))
            }
            Err(e) if self.resend(req, &e) => Ok(Next::Again),
            Err(e) => Err(e),
        }
    }

    /// True (once) when `req` is idempotent and its connection closed before any response byte:
    /// send it again.
    fn resend(&mut self, req: &Request, err: &Error) -> bool {
        if self.resent || !err.closed_before_response() || !crate::fleet::is_idempotent(&req.method)
        {
            return false;
        }
        self.resent = true;
        true
    }

    /// Steps the machine with a response to `req`.
    fn step(&mut self, req: &mut Request, resp: Response) -> Result<Next> {
        let status = resp.status;
        if self.max == 0 || !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            return Ok(Next::Done(resp));
        }
        let Some(location) = resp.headers.map().get(LOCATION) else {
            return Ok(Next::Done(resp));
        };
        let fail = |detail: String| {
            Error::new(ErrorKind::Redirect)
                .with_detail(detail)
                .with_backend(resp.backend)
                .with_url(&resp.url)
        };
        if self.followed >= self.max {
            return Err(fail(format!(
                "too many redirects (max_redirects = {})",
                self.max
            )));
        }
        let location = location
            .to_str()
            .map_err(|_| fail("Location header is not ASCII".into()))?;
        let target = crate::url::resolve(&resp.url, location)
            .map_err(|e| e.with_backend(resp.backend).with_url(&resp.url))?;
        let target =
            crate::url::check(target).map_err(|e| fail(format!("cannot follow redirect: {e}")))?;
        if crate::url::is_https(&resp.url)
            && !crate::url::is_https(&target.uri)
            && !self.allow_insecure
        {
            return Err(fail(
                "redirect from https to http refused (allow_insecure_redirects is off)".into(),
            ));
        }
        if !crate::url::same_origin(&req.uri, &target.uri) {
            self.crossed = true;
            for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, HOST] {
                req.headers.remove(name);
            }
        }
        let to_get = status == StatusCode::SEE_OTHER && req.method != Method::HEAD
            || matches!(status.as_u16(), 301 | 302) && req.method == Method::POST;
        if to_get {
            req.method = Method::GET;
            req.body = bytes::Bytes::new();
            for name in [CONTENT_TYPE, CONTENT_LENGTH, TRANSFER_ENCODING] {
                req.headers.remove(name);
            }
        }
        req.uri = target.uri;
        self.followed += 1;
        Ok(Next::Again)
    }
}

/// Fails with `Protocol` when a response head is over the limits every backend shares.
fn check_head(resp: &Response) -> Result<()> {
    let (fields, bytes) = resp.headers.size();
    if fields > crate::backend::MAX_HEADERS || bytes > crate::backend::MAX_HEADER_BYTES {
        return Err(Error::new(ErrorKind::Protocol)
            .with_detail("response header block over the limit (100 fields, 64 KiB)")
            .with_backend(resp.backend)
            .with_url(&resp.url));
    }
    Ok(())
}
