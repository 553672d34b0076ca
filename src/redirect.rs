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

/// What to do after a response.
pub(crate) enum Next {
    /// Return this response.
    Done(Response),
    /// Send this request next.
    Follow(Request),
}

/// The state of one exchange across its hops: redirects followed, and the one transparent
/// resend of an idempotent request whose connection closed before any response byte (a stale
/// pooled connection).
pub(crate) struct Redirects {
    /// The request as last sent, kept when a redirect or a resend may need it.
    last: Option<Request>,
    followed: u32,
    max: u32,
    allow_insecure: bool,
    resent: bool,
    /// A redirect left the original scheme, host and port.
    crossed: bool,
}

impl Redirects {
    /// The state for a request about to be sent, keeping a copy of it when redirects or a resend
    /// may need it.
    pub(crate) fn new(req: &Request, max: u32, allow_insecure: bool) -> Self {
        let keep = max > 0 || crate::fleet::is_idempotent(&req.method);
        Redirects {
            last: keep.then(|| req.clone()),
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

    /// Steps the machine with the outcome of one hop: a stale connection's error becomes one
    /// resend, a response head over the shared limits an error, a redirect the next hop.
    pub(crate) fn after(&mut self, outcome: Result<Response>) -> Result<Next> {
        match outcome {
            Ok(resp) => {
                check_head(&resp)?;
                self.step(resp)
            }
            Err(e) => match self.resend(&e) {
                Some(again) => Ok(Next::Follow(again)),
                None => Err(e),
            },
        }
    }

    /// The request to send again after `err`, once, when it is idempotent and its connection
    /// closed before any response byte.
    fn resend(&mut self, err: &Error) -> Option<Request> {
        if self.resent || !err.closed_before_response() {
            return None;
        }
        let last = self.last.as_ref()?;
        if !crate::fleet::is_idempotent(&last.method) {
            return None;
        }
        self.resent = true;
        Some(last.clone())
    }

    /// Steps the machine with a response.
    fn step(&mut self, resp: Response) -> Result<Next> {
        let (Some(last), true) = (&mut self.last, self.max > 0) else {
            return Ok(Next::Done(resp));
        };
        let (followed, max, allow_insecure) = (&mut self.followed, self.max, self.allow_insecure);
        let status = resp.status;
        if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            return Ok(Next::Done(resp));
        }
        let Some(location) = resp.headers.get(LOCATION) else {
            return Ok(Next::Done(resp));
        };
        let fail = |detail: String| {
            Error::new(ErrorKind::Redirect)
                .with_detail(detail)
                .with_backend(resp.backend)
                .with_url(&resp.url)
        };
        if *followed >= max {
            return Err(fail(format!("too many redirects (max_redirects = {max})")));
        }
        let location = location
            .to_str()
            .map_err(|_| fail("Location header is not ASCII".into()))?;
        let target = crate::url::resolve(&resp.url, location)
            .map_err(|e| e.with_backend(resp.backend).with_url(&resp.url))?;
        let target =
            crate::url::check(target).map_err(|e| fail(format!("cannot follow redirect: {e}")))?;
        if crate::url::is_https(&resp.url) && !crate::url::is_https(&target.uri) && !allow_insecure
        {
            return Err(fail(
                "redirect from https to http refused (allow_insecure_redirects is off)".into(),
            ));
        }
        let mut next = last.clone();
        if !crate::url::same_origin(&next.uri, &target.uri) {
            self.crossed = true;
            for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, HOST] {
                next.headers.remove(name);
            }
        }
        let to_get = status == StatusCode::SEE_OTHER && next.method != Method::HEAD
            || matches!(status.as_u16(), 301 | 302) && next.method == Method::POST;
        if to_get {
            next.method = Method::GET;
            next.body = bytes::Bytes::new();
            for name in [CONTENT_TYPE, CONTENT_LENGTH, TRANSFER_ENCODING] {
                next.headers.remove(name);
            }
        }
        next.uri = target.uri;
        *followed += 1;
        *last = next.clone();
        Ok(Next::Follow(next))
    }
}

/// Fails with `Protocol` when a response head is over the limits every backend shares.
fn check_head(resp: &Response) -> Result<()> {
    let headers = &resp.headers;
    let too_many = headers.len() > crate::backend::MAX_HEADERS;
    let too_large = || {
        headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>()
            > crate::backend::MAX_HEADER_BYTES
    };
    if too_many || too_large() {
        return Err(Error::new(ErrorKind::Protocol)
            .with_detail("response header block over the limit (100 fields, 64 KiB)")
            .with_backend(resp.backend)
            .with_url(&resp.url));
    }
    Ok(())
}
