//! The `reqwest` backend: every option set explicitly from [`Config`], TLS through httpfleet's
//! own rustls configuration, redirects and decompression left to httpfleet.

use std::fmt;

use bytes::Bytes;

use super::classify::{Stage, classify, closed_before_response};
use super::limits::BodyBuf;
use super::{AsyncTransport, BackendKind, BlockingTransport, Limits};
use crate::config::{Config, HttpVersion};
use crate::deadline::{Watch, race};
use crate::error::{Error, ErrorKind, Result};
use crate::request::Request;
use crate::response::Response;

/// A `reqwest::Client`. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct ReqwestBackend {
    client: reqwest::Client,
    limits: Limits,
    proxied: bool,
}

impl fmt::Debug for ReqwestBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestBackend").finish_non_exhaustive()
    }
}

impl ReqwestBackend {
    /// Builds the client with every knob of `config` set explicitly.
    pub fn new(config: &Config) -> Result<Self> {
        let config = &config.checked()?;
        let alpn: &[&[u8]] = match config.http_version {
            HttpVersion::Auto => &[b"h2", b"http/1.1"],
            HttpVersion::Http1 => &[b"http/1.1"],
            HttpVersion::Http2 => &[b"h2"],
        };
        let tls = crate::tls::client_config(&config.tls, alpn)?;
        let mut b = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .tcp_nodelay(true)
            .pool_idle_timeout(config.pool.idle_timeout)
            .pool_max_idle_per_host(config.pool.max_idle_per_host)
            .no_proxy();
        if let Some(idle) = config.read_timeout {
            b = b.read_timeout(idle);
        }
        b = match config.http_version {
            HttpVersion::Auto => b,
            HttpVersion::Http1 => b.http1_only(),
            HttpVersion::Http2 => b.http2_prior_knowledge(),
        };
        let proxy = config.proxy_url()?;
        let proxied = proxy.is_some();
        if let Some(proxy) = proxy {
            let mut p = reqwest::Proxy::all(proxy.uri.to_string())
                .map_err(|e| Error::builder("invalid proxy URL").with_source(e))?;
            if let Some((u, pw)) = &proxy.credentials {
                // `Proxy::basic_auth` puts them in a URL and percent-decodes them again: the
                // header itself keeps them exactly as given.
                p = p.custom_http_auth(crate::url::basic_auth_value(u, pw));
            }
            b = b.proxy(p);
        }
        let client = b.build().map_err(|e| {
            Error::new(ErrorKind::Builder)
                .with_backend(BackendKind::Reqwest)
                .with_detail("cannot build the reqwest client")
                .with_source(e)
        })?;
        Ok(ReqwestBackend {
            client,
            limits: Limits::new(config),
            proxied,
        })
    }
}

/// A response whose head has arrived, its body still to read by the request's deadline.
struct Receiving {
    resp: reqwest::Response,
    headers: http::HeaderMap,
    watch: Watch,
    url: http::Uri,
}

impl ReqwestBackend {
    /// Sends `req` and waits for the response head, by the request's deadline.
    async fn head(&self, req: &Request) -> Result<Receiving> {
        let deadline = req.deadline_or(self.limits.timeout);
        let url = req.uri.clone();
        let rurl = reqwest::Url::parse(&crate::url::to_text(&url)).map_err(|e| {
            Error::invalid_url("reqwest cannot parse the URL")
                .with_source(e)
                .with_url(&url)
        })?;
        let mut rreq = reqwest::Request::new(req.method.clone(), rurl);
        *rreq.headers_mut() = req.wire_header_map(0);
        if !req.body.is_empty() {
            *rreq.body_mut() = Some(req.body.clone().into());
        }
        let mut watch = Watch::new(deadline.into_std()).nudging(req.nudge);
        let mut resp = race(self.client.execute(rreq), &mut watch)
            .await
            .map_err(|_| {
                Stage::Headers
                    .deadline_reached(BackendKind::Reqwest)
                    .with_url(&url)
            })?
            .map_err(|e| map_error(e, Stage::Headers, self.proxied).with_url(&url))?;
        let headers = std::mem::take(resp.headers_mut());
        Ok(Receiving {
            resp,
            headers,
            watch,
            url,
        })
    }

    /// The next piece of the body, `None` at its end, by the deadline (reqwest's own
    /// `read_timeout` covers the pauses between pieces).
    async fn piece(&self, r: &mut Receiving) -> Result<Option<Bytes>> {
        race(r.resp.chunk(), &mut r.watch)
            .await
            .map_err(|_| {
                Stage::Body
                    .deadline_reached(BackendKind::Reqwest)
                    .with_url(&r.url)
            })?
            .map_err(|e| map_error(e, Stage::Body, self.proxied).with_url(&r.url))
    }

    /// A body accumulator for `r`'s response to `req`.
    fn body_buf(&self, req: &Request, r: &Receiving) -> Result<BodyBuf> {
        let has_body = super::limits::has_body(&req.method, r.resp.status());
        self.limits
            .body_buf(&r.headers, has_body, req.progress.clone())
            .map_err(|e| e.with_url(&r.url).with_backend(BackendKind::Reqwest))
    }

    /// Adds `piece` to `buf`, under the limit.
    fn push(&self, buf: &mut BodyBuf, piece: Bytes, r: &Receiving) -> Result<()> {
        buf.push(piece, &self.limits)
            .map_err(|e| e.with_url(&r.url).with_backend(BackendKind::Reqwest))
    }
}

fn response(r: Receiving, body: Bytes) -> Response {
    Response::from_parts(
        BackendKind::Reqwest,
        r.url,
        r.resp.status(),
        r.resp.version(),
        r.headers,
        body,
    )
}

impl AsyncTransport for ReqwestBackend {
    async fn send(&self, req: &Request) -> Result<Response> {
        let mut r = self.head(req).await?;
        let mut buf = self.body_buf(req, &r)?;
        while let Some(piece) = self.piece(&mut r).await? {
            self.push(&mut buf, piece, &r)?;
        }
        Ok(response(r, buf.finish()))
    }
}

impl BlockingTransport for ReqwestBackend {
    /// On the blocking bridge's runtime, which every blocking caller drives in turn. A request
    /// with a progress callback leaves the runtime between pieces of its body and calls it
    /// outside: a caller stuck in its callback holds up no other.
    fn send_blocking(&self, req: &Request) -> Result<Response> {
        if req.progress.is_none() {
            return super::block_on(self.send(req))?;
        }
        let mut r = super::block_on(self.head(req))??;
        let mut buf = self.body_buf(req, &r)?;
        while let Some(piece) = super::block_on(self.piece(&mut r))?? {
            self.push(&mut buf, piece, &r)?;
        }
        Ok(response(r, buf.finish()))
    }
}

/// Maps a reqwest error met at `stage` to an httpfleet error.
fn map_error(e: reqwest::Error, stage: Stage, proxied: bool) -> Error {
    let stage = if e.is_connect() {
        Stage::Connect
    } else {
        stage
    };
    let kind = if e.is_builder() {
        ErrorKind::Builder
    } else if e.is_timeout() {
        stage.timeout()
    } else {
        match classify(&e, stage) {
            ErrorKind::Connect | ErrorKind::Dns if proxied => ErrorKind::Proxy,
            // reqwest reports a refused CONNECT as a connect error without an io error inside.
            ErrorKind::Protocol if proxied && stage == Stage::Connect => ErrorKind::Proxy,
            kind => kind,
        }
    };
    let closed = stage == Stage::Headers && !e.is_timeout() && closed_before_response(&e);
    let err = Error::new(kind)
        .with_backend(BackendKind::Reqwest)
        .with_source(e);
    if closed {
        err.closed_before_any_response()
    } else {
        err
    }
}
