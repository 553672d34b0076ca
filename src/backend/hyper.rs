//! The `hyper` backend: hyper 1 with the hyper-util legacy client, hyper-rustls for TLS (ALPN
//! HTTP/2), and httpfleet's own deadline covering the body.

use std::fmt;
use std::pin::pin;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::classify::{Stage, classify};
use super::{AsyncTransport, BackendKind, BlockingTransport, Limits};
use crate::config::{Config, HttpVersion};
use crate::deadline::race;
use crate::error::{Error, Result};
use crate::request::Request;
use crate::response::Response;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// hyper 1 + hyper-util's pooled client. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct HyperBackend {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    client: LegacyClient<Connector, Full<Bytes>>,
    limits: Limits,
}

impl fmt::Debug for HyperBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperBackend").finish_non_exhaustive()
    }
}

impl HyperBackend {
    /// Builds the client with every knob of `config` set explicitly.
    pub fn new(config: &Config) -> Result<Self> {
        config.validate()?;
        if config.proxy_url()?.is_some() {
            return Err(Error::unsupported(
                BackendKind::Hyper,
                "proxies are not supported by the hyper backend yet",
            ));
        }
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.enforce_http(false);
        let tls = crate::tls::client_config(&config.tls, &[])?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let connector = match config.http_version {
            HttpVersion::Auto => builder.enable_http1().enable_http2().wrap_connector(http),
            HttpVersion::Http1 => builder.enable_http1().wrap_connector(http),
            HttpVersion::Http2 => builder.enable_http2().wrap_connector(http),
        };
        let mut b = LegacyClient::builder(TokioExecutor::new());
        b.pool_idle_timeout(config.pool.idle_timeout)
            .pool_max_idle_per_host(config.pool.max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .retry_canceled_requests(true)
            .set_host(true)
            .http2_only(config.http_version == HttpVersion::Http2);
        Ok(HyperBackend {
            inner: std::sync::Arc::new(Inner {
                client: b.build(connector),
                limits: Limits::new(config),
            }),
        })
    }
}

impl AsyncTransport for HyperBackend {
    async fn send(&self, req: Request) -> Result<Response> {
        let this = &*self.inner;
        let deadline = req.deadline_or(this.limits.timeout);
        let url = req.uri.clone();
        let mut hreq = http::Request::new(Full::new(req.body));
        *hreq.method_mut() = req.method;
        *hreq.uri_mut() = req.uri;
        *hreq.headers_mut() = req.headers;
        let mut sleep = pin!(tokio::time::sleep_until(deadline));
        let resp = match race(this.client.request(hreq), sleep.as_mut()).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => return Err(map_error(e, Stage::Headers).with_url(&url)),
            Err(_) => return Err(timeout(Stage::Headers).with_url(&url)),
        };
        let (parts, mut body) = resp.into_parts();
        let mut buf: BytesMut = this
            .limits
            .body_buffer(&parts.headers)
            .map_err(|e| e.with_url(&url).with_backend(BackendKind::Hyper))?;
        loop {
            let frame = match this.limits.read_timeout {
                None => race(body.frame(), sleep.as_mut()).await,
                Some(idle) => {
                    let idle_deadline = tokio::time::Instant::now() + idle;
                    if idle_deadline < sleep.deadline() {
                        race(body.frame(), pin!(tokio::time::sleep_until(idle_deadline))).await
                    } else {
                        race(body.frame(), sleep.as_mut()).await
                    }
                }
            };
            match frame {
                Err(_) => return Err(timeout(Stage::Body).with_url(&url)),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(map_error(e, Stage::Body).with_url(&url)),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.limits
                            .check_body((buf.len() + data.len()) as u64)
                            .map_err(|e| e.with_url(&url).with_backend(BackendKind::Hyper))?;
                        if buf.is_empty() && buf.capacity() < data.len() {
                            buf = BytesMut::from(data);
                        } else {
                            buf.extend_from_slice(&data);
                        }
                    }
                }
            }
        }
        Ok(Response::from_parts(
            BackendKind::Hyper,
            url,
            parts.status,
            parts.version,
            parts.headers,
            buf.freeze(),
        ))
    }
}

impl BlockingTransport for HyperBackend {
    fn send_blocking(&self, req: Request) -> Result<Response> {
        super::bridge::block_on(self.send(req))?
    }
}

fn timeout(stage: Stage) -> Error {
    Error::new(stage.timeout())
        .with_backend(BackendKind::Hyper)
        .with_detail("deadline reached")
}

/// Maps a hyper or hyper-util error met at `stage` to an httpfleet error.
fn map_error(e: impl std::error::Error + Send + Sync + 'static, stage: Stage) -> Error {
    let connect = (&e as &(dyn std::error::Error + 'static))
        .downcast_ref::<hyper_util::client::legacy::Error>()
        .is_some_and(|l| l.is_connect());
    let stage = if connect { Stage::Connect } else { stage };
    let kind = classify(&e, stage);
    Error::new(kind)
        .with_backend(BackendKind::Hyper)
        .with_source(e)
}
