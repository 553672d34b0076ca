//! One exchange: a request sent through one backend, redirects followed, and the final
//! response's body set up to be read (decoded, limited, timed). What must mean the same on every
//! backend lives here, above the backends: default headers, validation, the deadline,
//! redirects, the resend of a stale connection, decompression, limits.
//!
//! [`Policy`] holds these rules for a client; [`Policy::exchange`] and
//! [`Policy::exchange_blocking`] are the same loop for each surface: send a hop, let
//! [`Redirects`] decide what follows, until a final response.

use std::borrow::Cow;

use http::{HeaderMap, Method, Uri};

use crate::backend::{Answer, AnswerBody, AsyncTransport, Backend, BlockingTransport};
use crate::config::Config;
use crate::decode::Decoder;
use crate::error::{Error, ErrorKind, Result};
use crate::redirect::{Next, Redirects};
use crate::request::{Outgoing, Request, check_headers};
use crate::response::{Head, Pieces, Reading, Response};

/// The request policy of a client, resolved once from its [`Config`].
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    timeout: std::time::Duration,
    max_redirects: u32,
    allow_insecure_redirects: bool,
    decompress: bool,
    max_response_bytes: u64,
    /// Default headers, and the same without credentials for hops after a redirect to another
    /// origin.
    default_headers: HeaderMap,
    cross_origin_headers: HeaderMap,
    proxies: crate::config::Proxies,
    /// `pool.max_connections_per_host`, when set.
    host_limit: Option<std::sync::Arc<crate::host_limit::HostLimit>>,
    /// Where cookies are kept, with `Config::cookies` or a jar given to the client.
    #[cfg(feature = "cookies")]
    pub(crate) cookies: Option<crate::CookieJar>,
}

impl Default for Policy {
    /// The policy of the default [`Config`].
    fn default() -> Self {
        let config = Config::default();
        Policy::new(&config).unwrap_or(Policy {
            timeout: config.timeout,
            max_redirects: config.max_redirects,
            allow_insecure_redirects: config.allow_insecure_redirects,
            decompress: config.decompress,
            max_response_bytes: config.max_response_bytes,
            default_headers: HeaderMap::new(),
            cross_origin_headers: HeaderMap::new(),
            proxies: Default::default(),
            host_limit: None,
            #[cfg(feature = "cookies")]
            cookies: None,
        })
    }
}

/// A redirected body's bytes read before its connection is given up: a small one is read so
/// the connection stays pooled.
const DRAIN: u64 = 64 * 1024;

impl Policy {
    pub(crate) fn new(config: &Config) -> Result<Self> {
        let config = &config.checked()?;
        let headers = config.header_map()?;
        let mut cross = HeaderMap::with_capacity(headers.len());
        for (name, value) in &headers {
            if !crate::config::is_secret_header(name.as_str()) {
                cross.append(name.clone(), value.clone());
            }
        }
        Ok(Policy {
            timeout: config.timeout,
            max_redirects: config.max_redirects,
            allow_insecure_redirects: config.allow_insecure_redirects,
            decompress: config.decompress,
            max_response_bytes: config.max_response_bytes,
            default_headers: headers,
            cross_origin_headers: cross,
            proxies: config.proxies()?,
            host_limit: config
                .pool
                .max_connections_per_host
                .map(|max| std::sync::Arc::new(crate::host_limit::HostLimit::new(max))),
            #[cfg(feature = "cookies")]
            cookies: config.cookies.then(crate::CookieJar::new),
        })
    }

    /// Validates a request and sets its deadline. Nothing has been sent when this fails.
    pub(crate) fn prepare(&self, req: &mut Request) -> Result<()> {
        check_headers(&req.headers).map_err(|e| e.with_url(&req.uri))?;
        req.deadline = Some(tokio::time::Instant::now() + self.timeout_of(req));
        Ok(())
    }

    /// A request's total timeout: its own, or the client's.
    pub(crate) fn timeout_of(&self, req: &Request) -> std::time::Duration {
        req.timeout.unwrap_or(self.timeout)
    }

    /// One exchange of `req` to `uri` (its own URL, or a fleet member's) through `backend`.
    pub(crate) async fn exchange(
        &self,
        backend: &Backend,
        req: &Request,
        uri: &Uri,
    ) -> Result<Response> {
        let mut hop = Hop::first(req, uri)?;
        let mut redirects = self.redirects(req);
        loop {
            self.cookies_before(&mut hop, req);
            let permit = match &self.host_limit {
                Some(limit) => Some(
                    limit
                        .acquire(&hop.uri, req.deadline_or(self.timeout))
                        .await
                        .map_err(|e| e.or_backend(backend.kind()))?,
                ),
                None => None,
            };
            let outcome = backend.send(hop.outgoing(self, req)?).await;
            self.cookies_after(&hop, &outcome);
            let next = redirects.after(&mut hop, req, outcome);
            match next.map_err(|e| e.or_backend(backend.kind()).or_url(&hop.uri))? {
                Next::Done(answer) => return self.response(answer, req, hop, backend, permit),
                Next::Again(Some(body)) => drain(body).await,
                Next::Again(None) => {}
            }
        }
    }

    /// [`Policy::exchange`] from blocking code.
    pub(crate) fn exchange_blocking(
        &self,
        backend: &Backend,
        req: &Request,
        uri: &Uri,
    ) -> Result<Response> {
        let mut hop = Hop::first(req, uri)?;
        let mut redirects = self.redirects(req);
        loop {
            self.cookies_before(&mut hop, req);
            let permit = match &self.host_limit {
                Some(limit) => Some(
                    limit
                        .acquire_blocking(&hop.uri, req.deadline_or(self.timeout))
                        .map_err(|e| e.or_backend(backend.kind()))?,
                ),
                None => None,
            };
            let outcome = backend.send_blocking(hop.outgoing(self, req)?);
            self.cookies_after(&hop, &outcome);
            let next = redirects.after(&mut hop, req, outcome);
            match next.map_err(|e| e.or_backend(backend.kind()).or_url(&hop.uri))? {
                Next::Done(answer) => return self.response(answer, req, hop, backend, permit),
                Next::Again(Some(body)) => drain_blocking(body),
                Next::Again(None) => {}
            }
        }
    }

    /// The response of a final answer: its head checked, its body set up to be read.
    fn response(
        &self,
        answer: Answer,
        req: &Request,
        hop: Hop<'_>,
        backend: &Backend,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<Response> {
        let kind = backend.kind();
        // `prepare` set the deadline when the request was sent: its start is the deadline less
        // the timeout (no clock read for it).
        let now = tokio::time::Instant::now();
        let started = req
            .deadline
            .and_then(|d| d.checked_sub(self.timeout_of(req)))
            .map_or(now, |s| s.min(now));
        let url = hop.uri.into_owned();
        let fail = |e: Error| e.or_backend(kind).or_url(&url);
        let Answer {
            status,
            version,
            mut headers,
            body,
            phases,
        } = answer;
        let via_http_proxy = || {
            self.proxies
                .for_uri(&url)
                .is_some_and(|p| p.kind == crate::config::ProxyKind::Http)
        };
        if status == http::StatusCode::PROXY_AUTHENTICATION_REQUIRED && via_http_proxy() {
            // Every backend reports a refused CONNECT as an error; a plain-http request gets
            // the proxy's 407 as a response. Both mean the same: the proxy refused the
            // credentials.
            return Err(fail(
                Error::new(ErrorKind::Proxy).with_detail("proxy authentication required (407)"),
            ));
        }
        let has_body = crate::headers::has_body(&hop.method, status);
        let declared = headers.content_length();
        if has_body && declared.is_some_and(|len| len > self.max_response_bytes) {
            return Err(fail(Error::new(ErrorKind::BodyTooLarge).with_detail(
                format!(
                    "body exceeds max_response_bytes ({} bytes)",
                    self.max_response_bytes
                ),
            )));
        }
        let decoder = match crate::decode::coding(&headers) {
            Some(coding) if self.decompress => {
                let map = headers.map_mut();
                map.remove(http::header::CONTENT_ENCODING);
                map.remove(http::header::CONTENT_LENGTH);
                Some(Decoder::new(coding).map_err(|e| {
                    fail(
                        Error::new(ErrorKind::Body)
                            .with_detail("cannot start decoding the body")
                            .with_source(e),
                    )
                })?)
            }
            _ => None,
        };
        let reading = Reading {
            decoder,
            max: self.max_response_bytes,
            declared,
            progress: req.progress.clone(),
            deadline: req.deadline,
            permit,
        };
        let body = match body {
            AnswerBody::Full(bytes) => Pieces::full(bytes, reading),
            AnswerBody::Stream(raw) => Pieces::streamed(raw, reading),
        };
        let head = Head {
            status,
            version,
            headers,
            url,
            backend: kind,
            attempts: 1,
            member: None,
            started,
            first_byte: now - started,
            phases,
        };
        Ok(Response::new(head, body))
    }

    /// Puts the jar's cookies for `hop` in its `Cookie` header, unless the caller set one that
    /// still applies (a redirect to another origin drops the caller's).
    #[cfg(feature = "cookies")]
    fn cookies_before(&self, hop: &mut Hop<'_>, req: &Request) {
        let Some(jar) = &self.cookies else { return };
        if req.headers.contains_key(http::header::COOKIE) && !hop.crossed_origin {
            return;
        }
        match jar.header_for(&hop.uri) {
            Some(line) => {
                hop.headers.to_mut().insert(http::header::COOKIE, line);
            }
            None if hop.headers.contains_key(http::header::COOKIE) => {
                hop.headers.to_mut().remove(http::header::COOKIE);
            }
            None => {}
        }
    }

    /// Keeps the cookies `hop`'s answer set.
    #[cfg(feature = "cookies")]
    fn cookies_after(&self, hop: &Hop<'_>, outcome: &Result<Answer>) {
        if let (Some(jar), Ok(answer)) = (&self.cookies, outcome) {
            jar.store_from(&hop.uri, answer.headers.map());
        }
    }

    #[cfg(not(feature = "cookies"))]
    fn cookies_before(&self, _: &mut Hop<'_>, _: &Request) {}

    #[cfg(not(feature = "cookies"))]
    fn cookies_after(&self, _: &Hop<'_>, _: &Result<Answer>) {}

    /// The redirect state of `req`: its own `max_redirects`, else the client's.
    fn redirects(&self, req: &Request) -> Redirects {
        let max = req.max_redirects.unwrap_or(self.max_redirects);
        Redirects::new(max, self.allow_insecure_redirects)
    }

    /// The default headers of a hop: without credentials once a redirect left the origin.
    fn defaults(&self, crossed_origin: bool) -> &HeaderMap {
        if crossed_origin {
            &self.cross_origin_headers
        } else {
            &self.default_headers
        }
    }
}

/// One hop of an exchange: the request as the caller built it on the first hop, and what
/// redirects changed of it on later ones (copied then, once).
pub(crate) struct Hop<'a> {
    pub(crate) method: Cow<'a, Method>,
    pub(crate) uri: Cow<'a, Uri>,
    pub(crate) headers: Cow<'a, HeaderMap>,
    /// A redirect turned the request into a `GET` without its body.
    pub(crate) body_dropped: bool,
    /// A redirect left the original scheme, host and port.
    pub(crate) crossed_origin: bool,
}

impl<'a> Hop<'a> {
    fn first(req: &'a Request, uri: &'a Uri) -> Result<Self> {
        if uri.scheme().is_none() {
            return Err(crate::url::needs_base_url());
        }
        Ok(Hop {
            method: Cow::Borrowed(&req.method),
            uri: Cow::Borrowed(uri),
            headers: Cow::Borrowed(&req.headers),
            body_dropped: false,
            crossed_origin: false,
        })
    }

    /// The hop as it goes on the wire.
    fn outgoing<'h>(&'h self, policy: &'h Policy, req: &'h Request) -> Result<Outgoing<'h>> {
        let (body, body_len) = if self.body_dropped {
            (
                crate::request::SendBody::Bytes(bytes::Bytes::new()),
                Some(0),
            )
        } else {
            (
                req.body.for_send().map_err(|e| e.with_url(&self.uri))?,
                req.body.len(),
            )
        };
        Ok(Outgoing {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            defaults: policy.defaults(self.crossed_origin),
            body,
            body_len,
            deadline: req.deadline_or(policy.timeout),
            may_resend: crate::request::is_idempotent(&self.method)
                && (self.body_dropped || req.body.is_replayable()),
            upload_progress: req.upload_progress.as_ref(),
            timeout: req.timeout,
        })
    }
}

/// Reads a little of a redirect's body, so a small one leaves its connection to the pool, then
/// drops it.
async fn drain(body: AnswerBody) {
    if let AnswerBody::Stream(mut raw) = body {
        let mut read = 0;
        while read < DRAIN {
            match std::future::poll_fn(|cx| raw.poll_piece(cx, false)).await {
                Ok(Some(piece)) => read += piece.len() as u64,
                _ => return,
            }
        }
    }
}

/// [`drain`] from blocking code.
fn drain_blocking(body: AnswerBody) {
    if let AnswerBody::Stream(mut raw) = body {
        let mut read = 0;
        while read < DRAIN {
            match raw.piece_blocking(false) {
                Ok(Some(piece)) => read += piece.len() as u64,
                _ => return,
            }
        }
    }
}
