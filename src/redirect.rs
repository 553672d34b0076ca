//! Redirect following, the same on every backend: a small state machine stepped once per hop
//! of an exchange ([`crate::exchange`]).

use std::borrow::Cow;

use http::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, LOCATION, PROXY_AUTHORIZATION,
    TRANSFER_ENCODING,
};
use http::{Method, StatusCode};

use crate::backend::{Answer, AnswerBody};
use crate::error::{Error, ErrorKind, Result};
use crate::exchange::Hop;
use crate::request::Request;

/// What to do after a hop.
pub(crate) enum Next {
    /// This is the final answer.
    Done(Answer),
    /// Send the next hop (the redirect's target, or the one resend of a stale connection);
    /// the body of the answer that led there, if any, to drain.
    Again(Option<AnswerBody>),
}

/// The state of one exchange across its hops: redirects followed, and the one transparent
/// resend of a request whose connection closed before any response byte (a stale pooled
/// connection), for a request that may be sent twice.
pub(crate) struct Redirects {
    followed: u32,
    max: u32,
    allow_insecure: bool,
    resent: bool,
}

impl Redirects {
    /// The state for a request about to be sent.
    pub(crate) fn new(max: u32, allow_insecure: bool) -> Self {
        Redirects {
            followed: 0,
            max,
            allow_insecure,
            resent: false,
        }
    }

    /// Steps the machine with the outcome of `hop` of `req`: a stale connection's error
    /// becomes one resend, a response head over the shared limits an error, a redirect the
    /// next hop (`hop` rewritten for it).
    pub(crate) fn after(
        &mut self,
        hop: &mut Hop<'_>,
        req: &Request,
        outcome: Result<Answer>,
    ) -> Result<Next> {
        match outcome {
            Ok(answer) => {
                check_head(&answer)?;
                self.step(hop, req, answer)
            }
            Err(e) if self.resend(hop, req, &e) => Ok(Next::Again(None)),
            Err(e) => Err(e),
        }
    }

    /// True (once) when the hop may be sent twice (an idempotent method, a body that can be
    /// sent again) and its connection closed before any response byte: send it again.
    fn resend(&mut self, hop: &Hop<'_>, req: &Request, err: &Error) -> bool {
        let replayable = hop.body_dropped || req.body.is_replayable();
        if self.resent
            || !err.closed_before_response()
            || !crate::request::is_idempotent(&hop.method)
            || !replayable
        {
            return false;
        }
        self.resent = true;
        true
    }

    /// Steps the machine with a final head to `hop`.
    fn step(&mut self, hop: &mut Hop<'_>, req: &Request, answer: Answer) -> Result<Next> {
        let status = answer.status;
        if self.max == 0 || !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            return Ok(Next::Done(answer));
        }
        let Some(location) = answer.headers.map().get(LOCATION) else {
            return Ok(Next::Done(answer));
        };
        let fail = |detail: String| Error::new(ErrorKind::Redirect).with_detail(detail);
        if self.followed >= self.max {
            return Err(fail(format!(
                "too many redirects (max_redirects = {})",
                self.max
            )));
        }
        let location = location
            .to_str()
            .map_err(|_| fail("Location header is not ASCII".into()))?;
        let target = crate::url::resolve(&hop.uri, location)?;
        let target =
            crate::url::check(target).map_err(|e| fail(format!("cannot follow redirect: {e}")))?;
        if crate::url::is_https(&hop.uri)
            && !crate::url::is_https(&target.uri)
            && !self.allow_insecure
        {
            return Err(fail(
                "redirect from https to http refused (allow_insecure_redirects is off)".into(),
            ));
        }
        let to_get = status == StatusCode::SEE_OTHER && *hop.method != Method::HEAD
            || matches!(status.as_u16(), 301 | 302) && *hop.method == Method::POST;
        if !to_get && !hop.body_dropped && !req.body.is_replayable() {
            // A 307 or 308 would send the body again, and a reader or a stream cannot be: the
            // redirect comes back as it is.
            return Ok(Next::Done(answer));
        }
        if !crate::url::same_origin(&hop.uri, &target.uri) {
            hop.crossed_origin = true;
            let headers = hop.headers.to_mut();
            for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, HOST] {
                headers.remove(name);
            }
        }
        if to_get {
            hop.method = Cow::Owned(Method::GET);
            hop.body_dropped = true;
            let headers = hop.headers.to_mut();
            for name in [CONTENT_TYPE, CONTENT_LENGTH, TRANSFER_ENCODING] {
                headers.remove(name);
            }
        }
        hop.uri = Cow::Owned(target.uri);
        self.followed += 1;
        Ok(Next::Again(Some(answer.body)))
    }
}

/// Fails with `Protocol` when a response head is over the limits every backend shares.
fn check_head(answer: &Answer) -> Result<()> {
    let (fields, bytes) = answer.headers.size();
    if fields > crate::backend::MAX_HEADERS || bytes > crate::backend::MAX_HEADER_BYTES {
        return Err(Error::new(ErrorKind::Protocol)
            .with_detail("response header block over the limit (100 fields, 64 KiB)"));
    }
    Ok(())
}
