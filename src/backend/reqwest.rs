//! The `reqwest` backend: every option set explicitly from [`Config`], TLS through httpfleet's
//! own rustls configuration, redirects and decompression left to httpfleet.

use std::fmt;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;

use super::classify::{Stage, classify, closed_before_response};
use super::incoming::Incoming;
use super::sending::Sending;
use super::{Answer, AsyncTransport, BackendKind, BlockingTransport, Limits};
use crate::config::{Config, HttpVersion, Proxies};
use crate::deadline::{Watch, race};
use crate::error::{Error, ErrorKind, Result};
use crate::request::{Outgoing, SendBody};

/// A `reqwest::Client`. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct ReqwestBackend {
    client: reqwest::Client,
    limits: Limits,
    proxies: std::sync::Arc<Proxies>,
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
        let sets_accept = config
            .default_headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("accept"));
        if !config.auto_headers && !sets_accept {
            return Err(Error::unsupported(
                BackendKind::Reqwest,
                "auto_headers = false: reqwest always sends `Accept: */*`; set `accept` in \
                 default_headers to send the same wire",
            ));
        }
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
        b = match config.http_version {
            HttpVersion::Auto => b,
            HttpVersion::Http1 => b.http1_only(),
            HttpVersion::Http2 => b.http2_prior_knowledge(),
        };
        b = b.local_address(config.local_address);
        // reqwest's own default (15 s, 15 s, 3 probes) never applies.
        b = b
            .tcp_keepalive(config.tcp_keepalive)
            .tcp_keepalive_interval(config.tcp_keepalive)
            .tcp_keepalive_retries(None);
        for (host, addrs) in &config.resolve_map() {
            // Port 0: the URL's port is used (reqwest's rule).
            b = b.resolve_to_addrs(host, &crate::dns::any_port(addrs.iter().copied()));
        }
        if let Some(resolver) = &config.resolver {
            b = b.dns_resolver(std::sync::Arc::new(Dns(resolver.clone())));
        }
        let proxies = config.proxies()?;
        for (https, proxy) in [(false, &proxies.http), (true, &proxies.https)] {
            let Some(proxy) = proxy.clone() else { continue };
            // httpfleet decides which requests go through a proxy (`no_proxy` included), so
            // every backend routes alike.
            let decide = proxies.clone();
            let target = proxy.url_with_credentials();
            let mut p = reqwest::Proxy::custom(move |url| {
                (url.scheme() == if https { "https" } else { "http" })
                    .then(|| decide.for_target(https, url.host_str().unwrap_or("")))
                    .flatten()
                    .map(|_| target.clone())
            });
            if let Some(auth) = proxy.authorization() {
                // The header itself keeps the credentials exactly as given.
                p = p.custom_http_auth(auth);
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
            proxies: std::sync::Arc::new(proxies),
        })
    }
}

impl AsyncTransport for ReqwestBackend {
    async fn send(&self, out: Outgoing<'_>) -> Result<Answer> {
        let rurl = reqwest::Url::parse(&crate::url::to_text(out.uri))
            .map_err(|e| Error::invalid_url("reqwest cannot parse the URL").with_source(e))?;
        let mut rreq = reqwest::Request::new(out.method.clone(), rurl);
        *rreq.headers_mut() = out.header_map(0);
        let body = match (&out.body, out.upload_progress) {
            // Bytes without a progress callback go as they are (reqwest can resend them).
            (SendBody::Bytes(b), None) if b.is_empty() => None,
            (SendBody::Bytes(b), None) => Some(reqwest::Body::from(b.clone())),
            _ => {
                let sending =
                    Sending::new(out.body, out.body_len, out.upload_progress, out.deadline)?;
                (!sending.is_empty()).then(|| reqwest::Body::wrap(Shared(Mutex::new(sending))))
            }
        };
        *rreq.body_mut() = body;
        let proxied = self.proxies.for_uri(out.uri).is_some();
        let mut watch = Watch::new(out.deadline.into_std());
        let resp = race(self.client.execute(rreq), &mut watch)
            .await
            .map_err(|_| Stage::Headers.deadline_reached(BackendKind::Reqwest))?
            .map_err(|e| map_error(e, Stage::Headers, proxied))?;
        let resp = http::Response::<reqwest::Body>::from(resp);
        Ok(Incoming::answer(
            resp,
            watch,
            self.limits.read_timeout,
            BackendKind::Reqwest,
            |e, proxied| map_error(e, Stage::Body, proxied),
            proxied,
        ))
    }
}

impl BlockingTransport for ReqwestBackend {
    fn send_blocking(&self, out: Outgoing<'_>) -> Result<Answer> {
        super::block_on(self.send(out))?
    }
}

/// A request body shared with reqwest, which wants it `Sync`: behind a lock only its sender
/// takes.
struct Shared(Mutex<Sending>);

impl http_body::Body for Shared {
    type Data = Bytes;
    type Error = crate::error::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<http_body::Frame<Bytes>, Self::Error>>> {
        let mut sending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Pin::new(&mut *sending).poll_frame(cx)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .size_hint()
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

/// `Config::resolver` as reqwest's resolver.
struct Dns(crate::dns::Resolver);

impl reqwest::dns::Resolve for Dns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.0.clone();
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let addrs = crate::dns::any_port(resolver.lookup(&host).await?);
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
