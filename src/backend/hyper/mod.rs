//! The `hyper` backend: hyper 1 with the hyper-util legacy client, hyper-rustls for TLS (ALPN
//! HTTP/2), and httpfleet's own deadline and `read_timeout` covering the body as it streams.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tower_service::Service;

mod clock;

use self::clock::Clock;
use super::classify::{Stage, classify, closed_before_response};
use super::incoming::Incoming;
use super::sending::Sending;
use super::{Answer, AsyncTransport, BackendKind, BlockingTransport, Limits};
use crate::config::{Config, HttpVersion, Proxies, ProxyKind};
use crate::deadline::{Watch, race};
use crate::error::{Error, Result};
use crate::request::Outgoing;

type Connector = Bounded<hyper_rustls::HttpsConnector<ProxyAware>>;

/// hyper's default `max_buf_size` (8 KiB + 100 × 4 KiB), set here so that it is a choice.
const HYPER_READ_BUFFER: usize = 8192 + 4096 * 100;

/// hyper 1 + hyper-util's pooled client. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct HyperBackend {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    client: LegacyClient<Connector, Sending>,
    limits: Limits,
    proxies: Proxies,
}

impl fmt::Debug for HyperBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperBackend").finish_non_exhaustive()
    }
}

impl HyperBackend {
    /// Builds the client with every knob of `config` set explicitly.
    pub fn new(config: &Config) -> Result<Self> {
        let config = &config.checked()?;
        let proxies = config.proxies()?;
        let resolve = Resolve {
            overrides: std::sync::Arc::new(config.resolve_map()),
            gai: GaiResolver::new(),
            custom: config.resolver.clone(),
        };
        let mut http = HttpConnector::new_with_resolver(resolve.clone());
        http.set_nodelay(true);
        http.set_local_address(config.local_address);
        http.set_keepalive(config.tcp_keepalive);
        http.set_keepalive_interval(config.tcp_keepalive);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.enforce_http(false);
        let http = ProxyAware {
            http,
            resolve,
            proxies: proxies.clone(),
        };
        let tls = crate::tls::client_config(&config.tls, &[])?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let connector = match config.http_version {
            HttpVersion::Auto => builder.enable_http1().enable_http2().wrap_connector(http),
            HttpVersion::Http1 => builder.enable_http1().wrap_connector(http),
            HttpVersion::Http2 => builder.enable_http2().wrap_connector(http),
        };
        let connector = Bounded {
            inner: std::sync::Arc::new(connector),
            timeout: config.connect_timeout,
        };
        let mut b = LegacyClient::builder(TokioExecutor::new());
        b.pool_idle_timeout(config.pool.idle_timeout)
            .pool_max_idle_per_host(config.pool.max_idle_per_host)
            .timer(TokioTimer::new())
            .retry_canceled_requests(true)
            // How much hyper reads at once, and so the most a response head may fill before
            // hyper refuses it (one over the shared 64 KiB limit is refused after it is read,
            // `redirect.rs`): hyper's default, as under reqwest, so that a large body comes in
            // few reads and pieces.
            .http1_max_buf_size(HYPER_READ_BUFFER)
            .set_host(true)
            .http2_only(config.http_version == HttpVersion::Http2);
        Ok(HyperBackend {
            inner: std::sync::Arc::new(Inner {
                client: b.build(connector),
                limits: Limits::new(config),
                proxies,
            }),
        })
    }
}

impl AsyncTransport for HyperBackend {
    async fn send(&self, out: Outgoing<'_>) -> Result<Answer> {
        let this = &*self.inner;
        let proxy = this.proxies.for_uri(out.uri);
        let proxied = proxy.is_some();
        // `Proxy-Authorization` for plain http sent to an HTTP proxy (never over a tunnel).
        let proxy_authorization = proxy
            .filter(|_| out.uri.scheme_str() == Some("http"))
            .and_then(|p| p.authorization());
        // Room for it, only when it goes in (else the map may be a copy).
        let headers = out.header_map(usize::from(proxy_authorization.is_some()));
        let body = Sending::new(out.body, out.body_len, out.upload_progress, out.deadline)?;
        let mut hreq = http::Request::new(body);
        *hreq.method_mut() = out.method.clone();
        *hreq.uri_mut() = out.uri.clone();
        *hreq.headers_mut() = headers;
        if let Some(auth) = proxy_authorization {
            hreq.headers_mut()
                .insert(http::header::PROXY_AUTHORIZATION, auth);
        }
        let mut watch = Watch::new(out.deadline.into_std());
        let sent = std::time::Instant::now();
        let resp = match race(this.client.request(hreq), &mut watch).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => return Err(map_error(e, Stage::Headers, proxied)),
            Err(_) => return Err(Stage::Headers.deadline_reached(BackendKind::Hyper)),
        };
        let phases = resp.extensions().get::<Clock>().map(|c| c.phases(sent));
        let mut answer = Incoming::answer(
            resp,
            watch,
            this.limits.read_timeout,
            BackendKind::Hyper,
            |e, proxied| map_error(e, Stage::Body, proxied),
            proxied,
        );
        answer.phases = phases.unwrap_or_default();
        Ok(answer)
    }
}

impl BlockingTransport for HyperBackend {
    fn send_blocking(&self, out: Outgoing<'_>) -> Result<Answer> {
        super::block_on(self.send(out))?
    }
}

/// Maps a hyper or hyper-util error met at `stage` to an httpfleet error.
fn map_error(
    e: impl std::error::Error + Send + Sync + 'static,
    stage: Stage,
    proxied: bool,
) -> Error {
    let connect = (&e as &(dyn std::error::Error + 'static))
        .downcast_ref::<hyper_util::client::legacy::Error>()
        .is_some_and(|l| l.is_connect());
    let stage = if connect { Stage::Connect } else { stage };
    let via_proxy = crate::error::chain(&e).any(|e| e.is::<ProxyFailure>());
    let kind = match classify(&e, stage) {
        crate::ErrorKind::Connect | crate::ErrorKind::Dns if proxied || via_proxy => {
            crate::ErrorKind::Proxy
        }
        _ if via_proxy && stage == Stage::Connect => crate::ErrorKind::Proxy,
        kind => kind,
    };
    let closed = stage == Stage::Headers && closed_before_response(&e);
    let err = Error::new(kind)
        .with_backend(BackendKind::Hyper)
        .with_source(e);
    if closed {
        err.closed_before_any_response()
    } else {
        err
    }
}

/// Bounds the whole connection setup (TCP, proxy tunnel, TLS handshake) by `connect_timeout`,
/// as libcurl, reqwest and ureq do; hyper-util's own connect timeout covers TCP alone.
///
/// hyper-util clones the connector for every request, even one a pooled connection serves: the
/// connector sits behind an `Arc`, so that clone is one reference count, and the real clone
/// happens only when a connection is actually made.
struct Bounded<C> {
    inner: std::sync::Arc<C>,
    timeout: std::time::Duration,
}

impl<C> Clone for Bounded<C> {
    fn clone(&self) -> Self {
        Bounded {
            inner: self.inner.clone(),
            timeout: self.timeout,
        }
    }
}

impl<C> Service<http::Uri> for Bounded<C>
where
    C: Service<http::Uri> + Clone + Send + 'static,
    C::Future: Send + 'static,
    C::Response: Clocked + Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxError>> {
        // The inner connectors (HTTP, tunnel, TLS) are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        let connecting = C::clone(&self.inner).call(dst);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(Ok(conn)) => {
                    if let Some(clock) = conn.tls_clock() {
                        clock.secured();
                    }
                    Ok(conn)
                }
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect_timeout elapsed before the connection was ready",
                )
                .into()),
            }
        })
    }
}

type HttpConnector = hyper_util::client::legacy::connect::HttpConnector<Resolve>;

/// Host names for the hyper backend: those of `Config::resolve` from it (the port is set from
/// the URL by the connector), the rest through `Config::resolver` or `getaddrinfo`.
#[derive(Clone)]
struct Resolve {
    overrides: std::sync::Arc<std::collections::BTreeMap<String, Vec<std::net::IpAddr>>>,
    gai: GaiResolver,
    custom: Option<crate::dns::Resolver>,
}

type Addrs = std::vec::IntoIter<std::net::SocketAddr>;

impl Service<Name> for Resolve {
    type Response = Addrs;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<Addrs, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let lookup = self.lookup(name);
        Box::pin(async move {
            let addrs = lookup.await;
            Clock::looked_up();
            addrs
        })
    }
}

impl Resolve {
    fn lookup(&mut self, name: Name) -> <Self as Service<Name>>::Future {
        let host = name.as_str().to_ascii_lowercase();
        if let Some(ips) = self.overrides.get(&host) {
            let addrs = crate::dns::any_port(ips.iter().copied());
            return Box::pin(std::future::ready(Ok(addrs.into_iter())));
        }
        if let Some(custom) = self.custom.clone() {
            return Box::pin(async move {
                Ok(crate::dns::any_port(custom.lookup(&host).await?).into_iter())
            });
        }
        let mut gai = self.gai.clone();
        Box::pin(async move {
            let addrs: Vec<_> = gai.call(name).await?.collect();
            Ok(addrs.into_iter())
        })
    }
}

/// The TCP layer of the hyper backend: direct, or through the request's proxy: an HTTP proxy
/// (absolute-form requests for `http://`, a `CONNECT` tunnel for `https://`) or SOCKS5; TLS is
/// added above it by hyper-rustls.
#[derive(Clone)]
struct ProxyAware {
    http: HttpConnector,
    /// Names for `socks5://`, which sends the proxy an address resolved here.
    resolve: Resolve,
    proxies: Proxies,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Service<http::Uri> for ProxyAware {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        let clock = Clock::start();
        let opening = self.open(dst);
        Box::pin(async move {
            let (io, proxied) = clock.around(opening).await?;
            clock.connected();
            Ok(Stream { io, proxied, clock })
        })
    }
}

/// A TCP connection, and whether requests go over it in absolute form to an HTTP proxy.
type Opened = (TokioIo<tokio::net::TcpStream>, bool);

impl ProxyAware {
    /// Opens the connection for `dst`: directly, or through its proxy.
    fn open(
        &mut self,
        dst: http::Uri,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<Opened, BoxError>> + Send>> {
        let mut http = self.http.clone();
        let Some(proxy) = self.proxies.for_uri(&dst).cloned() else {
            return Box::pin(async move { Ok((http.call(dst).await?, false)) });
        };
        let mut resolve = self.resolve.clone();
        Box::pin(async move {
            let failed = |e: BoxError| ProxyFailure(e);
            let io = match proxy.kind {
                ProxyKind::Http if crate::url::is_https(&dst) => {
                    let mut tunnel = Tunnel::new(proxy.uri.clone(), http);
                    if let Some(auth) = proxy.authorization() {
                        tunnel = tunnel.with_auth(auth);
                    }
                    tunnel.call(dst).await.map_err(|e| failed(e.into()))?
                }
                ProxyKind::Http => {
                    let io = http.call(proxy.uri).await.map_err(|e| failed(e.into()))?;
                    return Ok((io, true));
                }
                ProxyKind::Socks5 | ProxyKind::Socks5h => {
                    let dst = if proxy.kind == ProxyKind::Socks5 {
                        resolved(&mut resolve, dst).await?
                    } else {
                        dst
                    };
                    let mut socks = SocksV5::new(proxy.uri.clone(), http);
                    if let Some((user, pass)) = proxy.credentials.clone() {
                        socks = socks.with_auth(user, pass);
                    }
                    socks.call(dst).await.map_err(|e| failed(e.into()))?
                }
            };
            Ok((io, false))
        })
    }
}

/// `dst` with its host replaced by the first address it resolves to (overrides included).
async fn resolved(
    resolve: &mut Resolve,
    dst: http::Uri,
) -> std::result::Result<http::Uri, BoxError> {
    let host = dst.host().unwrap_or("");
    if crate::url::host_ip(host).is_some() {
        return Ok(dst);
    }
    let name: Name = host.parse()?;
    let ip = resolve
        .call(name)
        .await?
        .next()
        .ok_or("the name resolved to no address")?
        .ip();
    let host = match ip {
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let scheme = dst.scheme_str().unwrap_or("http");
    let port = crate::url::port_or_default(&dst);
    Ok(format!("{scheme}://{host}:{port}/").parse()?)
}

/// A failure to reach or use the proxy.
#[derive(Debug)]
struct ProxyFailure(BoxError);

impl std::fmt::Display for ProxyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "proxy failed: {}", self.0)
    }
}

impl std::error::Error for ProxyFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// A TCP stream that knows whether it leads to a proxy (then requests use absolute-form).
struct Stream {
    io: TokioIo<tokio::net::TcpStream>,
    proxied: bool,
    clock: Clock,
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        self.io
            .connected()
            .proxy(self.proxied)
            .extra(self.clock.clone())
    }
}

/// The clock of a connection the outer connector returns, when TLS runs over it.
trait Clocked {
    fn tls_clock(&self) -> Option<&Clock>;
}

impl Clocked for hyper_rustls::MaybeHttpsStream<Stream> {
    fn tls_clock(&self) -> Option<&Clock> {
        match self {
            hyper_rustls::MaybeHttpsStream::Https(tls) => {
                Some(&tls.inner().get_ref().0.inner().clock)
            }
            hyper_rustls::MaybeHttpsStream::Http(_) => None,
        }
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
