//! The `ureq` backend: ureq 3 (blocking, HTTP/1.1 only). From async code the exchange runs on a
//! transfer thread (`backend/worker.rs`); ureq's own global timeout bounds it, so a dropped
//! future cannot leave a request running past its deadline.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs};
use ureq::unversioned::transport::NextTimeout;

mod wire;

use super::classify::{Stage, classify};
use super::worker::Workers;
use super::{AsyncTransport, BackendKind, BlockingTransport, Limits};
use crate::config::{Config, HttpVersion};
use crate::error::{Error, ErrorKind, Result, TimeoutPhase};
use crate::request::Request;
use crate::response::Response;

/// A `ureq::Agent`. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct UreqBackend {
    inner: Arc<Inner>,
}

struct Inner {
    agent: ureq::Agent,
    limits: Limits,
    proxied: bool,
    /// The threads that run exchanges for async callers.
    workers: Workers<Job>,
}

/// An exchange to run on a worker thread, and where its result goes.
type Job = (
    Arc<Inner>,
    Request,
    tokio::sync::oneshot::Sender<Result<Response>>,
);

/// Runs a [`Job`] on a worker thread.
fn run_job((inner, req, done): Job) {
    let _ = done.send(inner.perform(&req));
}

impl fmt::Debug for UreqBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UreqBackend").finish_non_exhaustive()
    }
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::builder(format!("cannot read {}", path.display())).with_source(e))
}

impl UreqBackend {
    /// Builds the agent with every knob of `config` set explicitly. `http_version = Http2` is
    /// refused with [`ErrorKind::Unsupported`]: ureq speaks HTTP/1.1 only.
    pub fn new(config: &Config) -> Result<Self> {
        let config = &config.checked()?;
        if config.http_version == HttpVersion::Http2 {
            return Err(Error::unsupported(
                BackendKind::Ureq,
                "ureq speaks HTTP/1.1 only; http_version = Http2 cannot be honoured",
            ));
        }
        let mut tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(crate::tls::provider())
            .disable_verification(!config.tls.verify);
        if let Some(ca) = &config.tls.ca_file {
            let certs = crate::tls::load_certs(ca)?
                .into_iter()
                .map(|c| Certificate::from_der(&c).to_owned())
                .collect::<Vec<_>>();
            tls = tls.root_certs(RootCerts::Specific(Arc::new(certs)));
        } else {
            tls = tls.root_certs(RootCerts::WebPki);
        }
        if let (Some(cert), Some(key)) = (&config.tls.client_cert, &config.tls.client_key) {
            let chain = crate::tls::load_certs(cert)?
                .into_iter()
                .map(|c| Certificate::from_der(&c).to_owned())
                .collect::<Vec<_>>();
            let key = PrivateKey::from_pem(&read_file(key)?).map_err(|e| {
                Error::builder(format!("cannot read private key from {}", key.display()))
                    .with_source(e)
            })?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        let proxy = match config.proxy_url()? {
            // Built from its parts: credentials reach the proxy exactly as given, whatever
            // characters they hold.
            Some(p) => {
                let mut b = ureq::Proxy::builder(ureq::ProxyProtocol::Http)
                    .host(p.uri.host().unwrap_or_default())
                    .port(crate::url::port_or_default(&p.uri));
                if let Some((u, pw)) = &p.credentials {
                    b = b.username(u).password(pw);
                }
                Some(
                    b.build()
                        .map_err(|e| Error::builder("invalid proxy").with_source(e))?,
                )
            }
            None => None,
        };
        let proxied = proxy.is_some();
        let agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .save_redirect_history(false)
            .user_agent(ureq::config::AutoHeaderValue::None)
            .accept(ureq::config::AutoHeaderValue::None)
            .accept_encoding(ureq::config::AutoHeaderValue::None)
            .no_delay(true)
            .max_response_header_size(super::MAX_HEADER_BYTES)
            .proxy(proxy)
            .tls_config(tls.build())
            .timeout_connect(Some(config.connect_timeout))
            .timeout_per_read(config.read_timeout)
            .max_idle_connections_per_host(config.pool.max_idle_per_host)
            .max_idle_connections(config.pool.max_idle_per_host.saturating_mul(16).max(1))
            .max_idle_age(config.pool.idle_timeout)
            .allow_non_standard_methods(true)
            .build();
        let agent = ureq::Agent::with_parts(
            agent_config,
            wire::Watching(ureq::unversioned::transport::DefaultConnector::default()),
            Resolver::default(),
        );
        Ok(UreqBackend {
            inner: Arc::new(Inner {
                agent,
                limits: Limits::new(config),
                proxied,
                workers: Workers::new(config.pool.max_idle_per_host, run_job),
            }),
        })
    }
}

impl Inner {
    fn perform(&self, req: &Request) -> Result<Response> {
        let deadline = req.deadline_or(self.limits.timeout);
        let headers = req.wire_header_map(0);
        let url = req.uri.clone();
        let started = std::time::Instant::now();
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            return Err(Error::new(ErrorKind::Timeout(TimeoutPhase::Total))
                .with_backend(BackendKind::Ureq)
                .with_url(&url));
        }
        wire::take_invalid_trailer();
        let expects_body = matches!(req.method, Method::POST | Method::PUT | Method::PATCH);
        let resp = if req.body.is_empty() && !expects_body {
            // `()` sends no body and no `Content-Length`, like the other backends.
            self.run(req.method.clone(), &url, headers, (), remaining)
        } else {
            self.run(req.method.clone(), &url, headers, &req.body[..], remaining)
        }
        .map_err(|e| {
            let err = self.map_error(e, Stage::Headers);
            // ureq names the phase it was in when its global budget ran out; a connection still
            // being set up when the total deadline hits is `Headers` on every backend, and
            // `Connect` only when connect_timeout fired.
            let total_hit = started.elapsed() + Duration::from_millis(10) >= remaining;
            if total_hit && err.kind() == ErrorKind::Timeout(TimeoutPhase::Connect) {
                Error::new(ErrorKind::Timeout(TimeoutPhase::Headers))
                    .with_backend(BackendKind::Ureq)
                    .with_source(err)
            } else {
                err
            }
            .with_url(&url)
        })?;
        let (parts, mut body) = resp.into_parts();
        let max = self.limits.max_body;
        let declared = super::content_length(&parts.headers);
        self.limits
            .check_declared(declared, super::limits::has_body(&req.method, parts.status))
            .map_err(|e| e.with_backend(BackendKind::Ureq).with_url(&url))?;
        let mut buf = Vec::with_capacity(super::limits::reserve_for(declared));
        let mut reader = body.as_reader().take(max.saturating_add(1));
        match &req.progress {
            None => reader.read_to_end(&mut buf).map(drop),
            Some(progress) => read_reporting(&mut reader, &mut buf, progress, declared),
        }
        .map_err(|e| self.map_io_body(e).with_url(&url))?;
        self.limits
            .check_body(buf.len() as u64)
            .map_err(|e| e.with_backend(BackendKind::Ureq).with_url(&url))?;
        if wire::take_invalid_trailer() {
            return Err(Error::new(ErrorKind::Protocol)
                .with_backend(BackendKind::Ureq)
                .with_detail("the trailer section holds a line that is not a header field")
                .with_url(&url));
        }
        Ok(Response::from_parts(
            BackendKind::Ureq,
            url,
            parts.status,
            parts.version,
            parts.headers,
            Bytes::from(buf),
        ))
    }

    fn run<B: ureq::AsSendBody>(
        &self,
        method: Method,
        url: &http::Uri,
        headers: http::HeaderMap,
        body: B,
        remaining: Duration,
    ) -> std::result::Result<http::Response<ureq::Body>, ureq::Error> {
        let mut hreq = http::Request::new(body);
        *hreq.method_mut() = method;
        *hreq.uri_mut() = url.clone();
        *hreq.headers_mut() = headers;
        let hreq = self
            .agent
            .configure_request(hreq)
            .timeout_global(Some(remaining.max(Duration::from_millis(1))))
            .build();
        self.agent.run(hreq)
    }

    fn map_io_body(&self, e: std::io::Error) -> Error {
        // ureq reports its own errors through io::Error when reading the body.
        match e.into_inner() {
            Some(inner) => match inner.downcast::<ureq::Error>() {
                Ok(ue) => self.map_error(*ue, Stage::Body),
                Err(other) => {
                    let kind = classify(&*other, Stage::Body);
                    Error::new(kind)
                        .with_backend(BackendKind::Ureq)
                        .with_source(other)
                }
            },
            None => Error::new(ErrorKind::Body).with_backend(BackendKind::Ureq),
        }
    }

    /// Maps a ureq error met at `stage` to an httpfleet error.
    fn map_error(&self, e: ureq::Error, stage: Stage) -> Error {
        let connecting = crate::error::chain(&e).any(|e| e.is::<wire::ConnectFailed>());
        let stage = if connecting { Stage::Connect } else { stage };
        use ureq::Timeout as T;
        let kind = match &e {
            ureq::Error::Timeout(t) => match t {
                T::Resolve | T::Connect => ErrorKind::Timeout(TimeoutPhase::Connect),
                T::RecvBody | T::PerRead if stage == Stage::Body => {
                    ErrorKind::Timeout(TimeoutPhase::Body)
                }
                T::RecvBody => ErrorKind::Timeout(TimeoutPhase::Body),
                _ => stage.timeout(),
            },
            ureq::Error::HostNotFound => {
                if self.proxied {
                    ErrorKind::Proxy
                } else {
                    ErrorKind::Dns
                }
            }
            ureq::Error::ConnectionFailed => ErrorKind::Connect,
            ureq::Error::BadUri(_) => ErrorKind::InvalidUrl,
            ureq::Error::Http(_) => ErrorKind::Builder,
            ureq::Error::BodyExceedsLimit(_) => ErrorKind::BodyTooLarge,
            ureq::Error::Protocol(_) | ureq::Error::LargeResponseHeader(..) => ErrorKind::Protocol,
            ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => ErrorKind::Redirect,
            ureq::Error::InvalidProxyUrl => ErrorKind::Builder,
            ureq::Error::ConnectProxyFailed(_) => ErrorKind::Proxy,
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => ErrorKind::Tls,
            ureq::Error::Io(io) => {
                let k = classify(io, stage);
                if self.proxied && k == ErrorKind::Connect {
                    ErrorKind::Proxy
                } else {
                    k
                }
            }
            other => classify(other, stage),
        };
        Error::new(kind)
            .with_backend(BackendKind::Ureq)
            .with_source(e)
    }
}

/// `read_to_end` that reports progress after each read.
fn read_reporting(
    reader: &mut impl Read,
    buf: &mut Vec<u8>,
    progress: &crate::request::Progress,
    declared: Option<u64>,
) -> std::io::Result<()> {
    let mut chunk = vec![0; 64 * 1024];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                progress.report(buf.len() as u64, declared);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl AsyncTransport for UreqBackend {
    async fn send(&self, req: &Request) -> Result<Response> {
        // The worker thread needs its own copy (reference-counted parts: no body copy).
        let (inner, owned) = (self.inner.clone(), req.clone());
        let deadline = req.deadline_or(self.inner.limits.timeout);
        match self
            .inner
            .workers
            .run(deadline, |done| (inner, owned, done))
            .await
        {
            Ok(Some(result)) => result,
            Ok(None) => Err(Error::new(ErrorKind::Canceled)
                .with_backend(BackendKind::Ureq)
                .with_url(&req.uri)
                .with_detail("the transfer thread ended")),
            Err(e) => Err(e.with_backend(BackendKind::Ureq).with_url(&req.uri)),
        }
    }
}

impl BlockingTransport for UreqBackend {
    fn send_blocking(&self, req: &Request) -> Result<Response> {
        self.inner.perform(req)
    }
}

/// How long a resolved host name is reused.
const DNS_TTL: Duration = Duration::from_secs(30);

/// ureq 3's own resolver spawns a thread for every lookup that has a timeout, even for an IP
/// literal and even when a pooled connection is then reused (11-12k instructions per request).
/// This one answers IP literals in place and reuses a name's addresses for [`DNS_TTL`]; a lookup
/// that needs DNS still goes through ureq's resolver, with its thread and its timeout.
#[derive(Debug, Default)]
struct Resolver {
    dns: DefaultResolver,
    cache: Mutex<HashMap<String, (std::time::Instant, ResolvedSocketAddrs)>>,
}

impl ureq::unversioned::resolver::Resolver for Resolver {
    fn resolve(
        &self,
        uri: &http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(authority) = uri.authority() else {
            return self.dns.resolve(uri, config, timeout);
        };
        let port = authority.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        let host = authority.host();
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let key = format!("{host}:{port}");
        let now = std::time::Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, addrs)) = cache.get(&key) {
            if now.duration_since(*at) < DNS_TTL {
                return Ok(addrs.clone());
            }
        }
        drop(cache);
        let addrs = self.dns.resolve(uri, config, timeout)?;
        cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, (at, _)| now.duration_since(*at) < DNS_TTL);
        cache.insert(key, (now, addrs.clone()));
        Ok(addrs)
    }
}
