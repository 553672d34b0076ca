//! [`Config`]: one configuration that means the same on every backend.
//!
//! Every knob is set explicitly on the backend it is given to; no backend default leaks through.
//! A backend that cannot honour a knob refuses the configuration with
//! [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) when it is built.
//!
//! Durations in TOML, JSON and environment variables are written as an integer number of
//! milliseconds or as a string with a unit: `"250ms"`, `"5s"`, `"2m"`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use http::HeaderMap;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::kind::BackendKind;

mod duration;
mod load;
mod proxy;

use duration::opt as opt_duration;
pub(crate) use proxy::{Proxies, ProxyKind, ProxyUrl};

/// The HTTP version a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum HttpVersion {
    /// HTTP/2 over TLS when the server offers it by ALPN, HTTP/1.1 otherwise (and always
    /// HTTP/1.1 on plain `http://` and on backends without HTTP/2).
    #[default]
    Auto,
    /// HTTP/1.1 only.
    #[serde(alias = "http1", alias = "1.1", alias = "http/1.1")]
    Http1,
    /// HTTP/2 only: ALPN over TLS, prior knowledge over plain TCP. Refused with `Unsupported` by
    /// backends without HTTP/2.
    #[serde(alias = "http2", alias = "2", alias = "h2")]
    Http2,
}

/// The oldest TLS version a client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    #[serde(alias = "1.2", alias = "tlsv1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(alias = "1.3", alias = "tlsv1.3")]
    Tls13,
}

/// The root certificates a client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Roots {
    /// Mozilla's roots, built into httpfleet (`webpki-root-certs`): the same on every machine.
    #[default]
    Mozilla,
    /// The operating system's store as the client is built (`rustls-native-certs`:
    /// `SSL_CERT_FILE` and `SSL_CERT_DIR` when set, else the system's bundle); none there is a
    /// `Builder` error.
    System,
}

/// TLS settings. `TlsConfig::default()` verifies certificates against Mozilla's roots.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsConfig {
    /// Verify the server's certificate chain and host name. Turning this off accepts any
    /// certificate for any host. Defaults to `true`.
    pub verify: bool,
    /// The roots trusted, on every backend (libcurl included). Defaults to [`Roots::Mozilla`].
    pub roots: Roots,
    /// A PEM file of CA certificates to trust instead of `roots` (or beside them, with
    /// `ca_file_adds_to_roots`). Defaults to `None`.
    pub ca_file: Option<PathBuf>,
    /// Trust `ca_file` beside `roots` rather than instead of them. Defaults to `false`.
    pub ca_file_adds_to_roots: bool,
    /// A PEM file with the client certificate chain for mutual TLS, and its private key too
    /// when `client_key` is not set. Defaults to `None`.
    pub client_cert: Option<PathBuf>,
    /// A PEM file with the private key of `client_cert`. Defaults to `None` (the key is in the
    /// `client_cert` file).
    pub client_key: Option<PathBuf>,
    /// A PKCS#12 (`.p12`, `.pfx`) file with the client's certificate chain and private key,
    /// instead of `client_cert`. Needs the `pkcs12` feature. Defaults to `None`.
    pub client_pkcs12: Option<PathBuf>,
    /// The password of `client_pkcs12`; never printed. Defaults to `None` (empty).
    pub client_pkcs12_password: Option<String>,
    /// The oldest TLS version accepted: a server that offers only older ones fails with
    /// `ErrorKind::Tls`. Defaults to [`TlsVersion::Tls12`].
    pub min_version: TlsVersion,
}

impl TlsConfig {
    /// The client identity: the certificate file, and the file with its key (the same one when
    /// `client_key` is not set).
    pub(crate) fn identity(&self) -> Option<(&std::path::Path, &std::path::Path)> {
        let cert = self.client_cert.as_deref()?;
        Some((cert, self.client_key.as_deref().unwrap_or(cert)))
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            verify: true,
            roots: Roots::Mozilla,
            ca_file: None,
            ca_file_adds_to_roots: false,
            client_cert: None,
            client_key: None,
            client_pkcs12: None,
            client_pkcs12_password: None,
            min_version: TlsVersion::Tls12,
        }
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("verify", &self.verify)
            .field("roots", &self.roots)
            .field("ca_file", &self.ca_file)
            .field("ca_file_adds_to_roots", &self.ca_file_adds_to_roots)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key.as_ref().map(|_| "<path>"))
            .field("client_pkcs12", &self.client_pkcs12)
            .field(
                "client_pkcs12_password",
                &self.client_pkcs12_password.as_ref().map(|_| "***"),
            )
            .field("min_version", &self.min_version)
            .finish()
    }
}

/// Connection pool settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Idle connections kept per host. `0` disables keep-alive reuse. Defaults to `32`.
    pub max_idle_per_host: usize,
    /// How long a connection may sit idle and still be reused. An older one is closed when the
    /// pool next looks for a connection to its host, rather than by a timer (reqwest also sweeps
    /// its pool in the background). Defaults to 90 s.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// Requests of one client in flight to one host (scheme, host, port) at once: over
    /// HTTP/1.1 its connections to that host. A request past it waits, within its deadline
    /// (then `Timeout(Headers)`), until a response before it has its whole body (read to the
    /// end, or arrived with the head) or is dropped.
    /// httpfleet's own limit on every backend (none of them has one). Must be above zero.
    /// Defaults to `None` (no limit).
    pub max_connections_per_host: Option<usize>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_idle_per_host: 32,
            idle_timeout: Duration::from_secs(90),
            max_connections_per_host: None,
        }
    }
}

/// Basic-auth credentials. `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// The configuration of a client: the same meaning on every backend.
///
/// Build it in code (`Config::default().backend(..).timeout(..)`), from TOML
/// ([`Config::from_toml_str`]), JSON ([`Config::from_json_str`]) or the environment
/// ([`Config::from_env`]). `Debug` never shows passwords or proxy credentials.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Which backend serves requests. Defaults to the first enabled of `hyper`, `reqwest`,
    /// `curl`, `ureq`, else `mock`.
    pub backend: BackendKind,
    /// Total deadline of a request: connect, headers and the whole body, across redirects.
    /// Must be above zero. Defaults to 30 s.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Deadline for establishing a connection (TCP, TLS, proxy). Must be above zero. Defaults to
    /// 10 s.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// Longest pause allowed between two reads of the response body. Defaults to `None` (only
    /// the total deadline applies).
    #[serde(with = "opt_duration")]
    pub read_timeout: Option<Duration>,
    /// Redirects followed before [`ErrorKind::Redirect`](crate::ErrorKind::Redirect); `0` returns
    /// the 3xx response as it is. Defaults to `10`.
    pub max_redirects: u32,
    /// The HTTP version to use. Defaults to [`HttpVersion::Auto`].
    pub http_version: HttpVersion,
    /// TLS settings. Defaults to verification on with the built-in roots.
    pub tls: TlsConfig,
    /// A proxy for every request not excluded by `no_proxy`: `http://user:pass@host:port`
    /// (plain HTTP in absolute form, HTTPS through `CONNECT`), `socks5://` (names resolved
    /// here, `resolve` included) or `socks5h://` (names resolved by the proxy), with or without
    /// credentials. Defaults to `None` (no proxy).
    pub proxy: Option<String>,
    /// When `proxy` is not set, read proxies from the environment: `http_proxy` (or
    /// `HTTP_PROXY`, ignored under CGI where it is a request header) for `http://` URLs,
    /// `https_proxy`/`HTTPS_PROXY` for `https://`, `all_proxy`/`ALL_PROXY` for either when its
    /// own is unset, and `no_proxy`/`NO_PROXY` added to `no_proxy`. Defaults to `false`:
    /// environment proxy variables are ignored.
    pub proxy_from_env: bool,
    /// Hosts reached directly, never through the proxy: a name (`example.com`, which also
    /// covers every name under it; a leading `.` or `*.` means the same), an address
    /// (`10.1.2.3`, `::1`), a CIDR block (`10.0.0.0/8`), or `*` for every host. Names are not
    /// resolved to match address rules. Defaults to none.
    pub no_proxy: Vec<String>,
    /// Basic-auth credentials sent with every request (unless the request sets its own
    /// `Authorization`). Defaults to `None`.
    pub basic_auth: Option<BasicAuth>,
    /// The `User-Agent` header (sent with `auto_headers`). Defaults to `httpfleet/<version>`.
    pub user_agent: String,
    /// Send httpfleet's own headers on every request the caller does not set: `Accept: */*`,
    /// `User-Agent` and, with `decompress`, `Accept-Encoding`. Off, a request carries exactly
    /// the headers set by the caller, `default_headers` and `basic_auth`, as a bare request of
    /// each client does; reqwest, which always adds `Accept: */*`, then refuses to be built
    /// (`Unsupported`) unless `Accept` is among `default_headers`. Defaults to `true`.
    pub auto_headers: bool,
    /// Headers added to every request unless the request sets the same name. Defaults to none.
    pub default_headers: BTreeMap<String, String>,
    /// Connection pool settings. Defaults to 32 idle connections per host for 90 s.
    pub pool: PoolConfig,
    /// Largest decoded response body buffered, in bytes; past it the request fails with
    /// [`ErrorKind::BodyTooLarge`](crate::ErrorKind::BodyTooLarge). Defaults to 64 MiB.
    pub max_response_bytes: u64,
    /// Ask for and decode `gzip` and `deflate` bodies, and `br` and `zstd` with the `brotli` and
    /// `zstd` features, as they stream (bounded memory, `max_response_bytes` on the decoded
    /// size). Defaults to `true`.
    pub decompress: bool,
    /// Follow redirects from `https` to `http`. Defaults to `false`: such a redirect is an
    /// [`ErrorKind::Redirect`](crate::ErrorKind::Redirect) error.
    pub allow_insecure_redirects: bool,
    /// Host names resolved to these addresses instead of through DNS (the URL's port kept;
    /// names compared without case); through a proxy, the proxy resolves. Defaults to none.
    pub resolve: BTreeMap<String, Vec<std::net::IpAddr>>,
    /// The local address connections are made from (on a host with several). ureq cannot bind
    /// one: `Unsupported` there. Defaults to `None` (the system's choice).
    pub local_address: Option<std::net::IpAddr>,
    /// TCP keepalive on every connection: probes start after it has been idle this long and
    /// repeat at the same interval. ureq cannot set it: `Unsupported` there. Defaults to `None`
    /// (keepalive off, whatever a backend's own default: reqwest's 15 s never applies).
    #[serde(with = "opt_duration")]
    pub tcp_keepalive: Option<Duration>,
    /// Resolves the host names connections go to (and names of proxies): every backend asks it
    /// instead of the system, after the names of `resolve`. In TOML `"system"` or `"hickory"`
    /// (with the `hickory` feature); any [`Resolve`](crate::dns::Resolve) in code. Through an
    /// HTTP or `socks5h://` proxy, the proxy resolves the target. Defaults to `None` (each
    /// backend's own `getaddrinfo` lookup).
    pub resolver: Option<crate::dns::Resolver>,
    /// Keep the cookies servers set in a jar of the client's own and send them back (see
    /// `CookieJar`; `Client::with_cookie_jar` shares one between clients). Needs the `cookies`
    /// feature: without it, `true` is a `Builder` error. Defaults to `false`.
    pub cookies: bool,
}

/// The longest duration any knob takes: one year. A longer one, up to `Duration::MAX`, from
/// a builder, TOML, JSON or the environment, is clamped to it, so that every deadline stays
/// computable on every backend; a year is as good as no limit for a request.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// `d`, or [`MAX_DURATION`] if it is longer.
pub(crate) fn clamp(d: Duration) -> Duration {
    d.min(MAX_DURATION)
}

/// The default `User-Agent`: `httpfleet/<version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("httpfleet/", env!("CARGO_PKG_VERSION"));

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: BackendKind::default(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            read_timeout: None,
            max_redirects: 10,
            http_version: HttpVersion::Auto,
            tls: TlsConfig::default(),
            proxy: None,
            proxy_from_env: false,
            no_proxy: Vec::new(),
            basic_auth: None,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            auto_headers: true,
            default_headers: BTreeMap::new(),
            pool: PoolConfig::default(),
            max_response_bytes: 64 * 1024 * 1024,
            decompress: true,
            allow_insecure_redirects: false,
            resolve: BTreeMap::new(),
            local_address: None,
            tcp_keepalive: None,
            resolver: None,
            cookies: false,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .default_headers
            .iter()
            .map(|(k, v)| {
                let v = if is_secret_header(k) {
                    "***"
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("Config")
            .field("backend", &self.backend)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("max_redirects", &self.max_redirects)
            .field("http_version", &self.http_version)
            .field("tls", &self.tls)
            .field("proxy", &self.proxy.as_deref().map(crate::url::redact_str))
            .field("proxy_from_env", &self.proxy_from_env)
            .field("no_proxy", &self.no_proxy)
            .field("basic_auth", &self.basic_auth)
            .field("user_agent", &self.user_agent)
            .field("default_headers", &headers)
            .field("pool", &self.pool)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("auto_headers", &self.auto_headers)
            .field("decompress", &self.decompress)
            .field("allow_insecure_redirects", &self.allow_insecure_redirects)
            .field("resolve", &self.resolve)
            .field("local_address", &self.local_address)
            .field("tcp_keepalive", &self.tcp_keepalive)
            .field("resolver", &self.resolver)
            .field("cookies", &self.cookies)
            .finish()
    }
}

/// Header names whose values are secrets and are never printed.
pub(crate) fn is_secret_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("authorization")
        || name.eq_ignore_ascii_case("proxy-authorization")
        || name.eq_ignore_ascii_case("cookie")
        || name.eq_ignore_ascii_case("set-cookie")
}

impl Config {
    /// Sets [`Config::backend`].
    pub fn backend(mut self, backend: BackendKind) -> Self {
        self.backend = backend;
        self
    }

    /// Sets [`Config::timeout`], the total deadline (at most [`MAX_DURATION`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = clamp(timeout);
        self
    }

    /// Sets [`Config::connect_timeout`] (at most [`MAX_DURATION`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = clamp(timeout);
        self
    }

    /// Sets [`Config::read_timeout`] (at most [`MAX_DURATION`]).
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout.map(clamp);
        self
    }

    /// Sets [`Config::max_redirects`].
    pub fn max_redirects(mut self, max: u32) -> Self {
        self.max_redirects = max;
        self
    }

    /// Sets [`Config::http_version`].
    pub fn http_version(mut self, version: HttpVersion) -> Self {
        self.http_version = version;
        self
    }

    /// Sets [`Config::tls`].
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// Sets [`TlsConfig::verify`].
    pub fn tls_verify(mut self, verify: bool) -> Self {
        self.tls.verify = verify;
        self
    }

    /// Sets [`TlsConfig::ca_file`].
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_file = Some(path.into());
        self
    }

    /// Sets [`TlsConfig::roots`].
    pub fn tls_roots(mut self, roots: Roots) -> Self {
        self.tls.roots = roots;
        self
    }

    /// Sets [`TlsConfig::ca_file`], trusted beside [`TlsConfig::roots`]
    /// ([`TlsConfig::ca_file_adds_to_roots`]).
    pub fn tls_ca_file_added(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_file = Some(path.into());
        self.tls.ca_file_adds_to_roots = true;
        self
    }

    /// Sets [`TlsConfig::client_pkcs12`] and its password.
    pub fn tls_client_pkcs12(mut self, path: impl Into<PathBuf>, password: &str) -> Self {
        self.tls.client_pkcs12 = Some(path.into());
        self.tls.client_pkcs12_password = Some(password.to_owned());
        self
    }

    /// Sets [`TlsConfig::client_cert`] to one PEM file holding the certificate chain and its
    /// private key.
    pub fn tls_client_identity_pem(mut self, cert_and_key: impl Into<PathBuf>) -> Self {
        self.tls.client_cert = Some(cert_and_key.into());
        self.tls.client_key = None;
        self
    }

    /// Sets [`TlsConfig::client_cert`] and [`TlsConfig::client_key`].
    pub fn tls_client_identity(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.tls.client_cert = Some(cert.into());
        self.tls.client_key = Some(key.into());
        self
    }

    /// Sets [`TlsConfig::min_version`].
    pub fn tls_min_version(mut self, version: TlsVersion) -> Self {
        self.tls.min_version = version;
        self
    }

    /// Sets [`Config::proxy`].
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Some(url.into());
        self
    }

    /// Sets [`Config::proxy_from_env`].
    pub fn proxy_from_env(mut self, yes: bool) -> Self {
        self.proxy_from_env = yes;
        self
    }

    /// Sets [`Config::no_proxy`].
    pub fn no_proxy(mut self, hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.no_proxy = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`Config::basic_auth`].
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic_auth = Some(BasicAuth {
            username: username.into(),
            password: password.into(),
        });
        self
    }

    /// Sets [`Config::user_agent`].
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = agent.into();
        self
    }

    /// Adds one of [`Config::default_headers`].
    pub fn default_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.default_headers.insert(name.into(), value.into());
        self
    }

    /// Sets [`PoolConfig::max_idle_per_host`].
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool.max_idle_per_host = max;
        self
    }

    /// Sets [`PoolConfig::max_connections_per_host`].
    pub fn pool_max_connections_per_host(mut self, max: Option<usize>) -> Self {
        self.pool.max_connections_per_host = max;
        self
    }

    /// Sets [`PoolConfig::idle_timeout`] (at most [`MAX_DURATION`]).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool.idle_timeout = clamp(timeout);
        self
    }

    /// Sets [`Config::max_response_bytes`].
    pub fn max_response_bytes(mut self, max: u64) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// Sets [`Config::auto_headers`].
    pub fn auto_headers(mut self, yes: bool) -> Self {
        self.auto_headers = yes;
        self
    }

    /// Sets [`Config::decompress`].
    pub fn decompress(mut self, yes: bool) -> Self {
        self.decompress = yes;
        self
    }

    /// Adds an entry to [`Config::resolve`]: `host` goes to `addrs`.
    pub fn resolve(
        mut self,
        host: impl Into<String>,
        addrs: impl IntoIterator<Item = std::net::IpAddr>,
    ) -> Self {
        self.resolve
            .insert(host.into(), addrs.into_iter().collect());
        self
    }

    /// Sets [`Config::local_address`].
    pub fn local_address(mut self, addr: Option<std::net::IpAddr>) -> Self {
        self.local_address = addr;
        self
    }

    /// Sets [`Config::resolver`].
    pub fn resolver(mut self, resolver: Option<crate::dns::Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Sets [`Config::cookies`].
    pub fn cookies(mut self, yes: bool) -> Self {
        self.cookies = yes;
        self
    }

    /// Sets [`Config::tcp_keepalive`].
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.tcp_keepalive = idle.map(clamp);
        self
    }

    /// Sets [`Config::allow_insecure_redirects`].
    pub fn allow_insecure_redirects(mut self, yes: bool) -> Self {
        self.allow_insecure_redirects = yes;
        self
    }
}

impl Config {
    /// The configuration validated ([`Config::validate`]), with every duration clamped to
    /// [`MAX_DURATION`] (fields set directly may hold longer ones): what backends and clients
    /// are built from.
    pub(crate) fn checked(&self) -> Result<Config> {
        self.validate()?;
        let mut c = self.clone();
        c.timeout = clamp(c.timeout);
        c.connect_timeout = clamp(c.connect_timeout);
        c.read_timeout = c.read_timeout.map(clamp);
        c.tcp_keepalive = c.tcp_keepalive.map(clamp);
        c.pool.idle_timeout = clamp(c.pool.idle_timeout);
        Ok(c)
    }

    /// Checks the parts of the configuration that do not depend on a backend: timeouts above
    /// zero, valid default headers, parsable proxy URLs and `no_proxy` entries, TLS files given in pairs.
    pub fn validate(&self) -> Result<()> {
        if self.timeout.is_zero() {
            return Err(Error::builder("timeout must be above zero"));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::builder("connect_timeout must be above zero"));
        }
        if self
            .tcp_keepalive
            .is_some_and(|d| d < Duration::from_secs(1))
        {
            return Err(Error::builder("tcp_keepalive must be at least 1 s"));
        }
        if self.read_timeout.is_some_and(|d| d.is_zero()) {
            return Err(Error::builder("read_timeout must be above zero"));
        }
        if self.pool.max_connections_per_host == Some(0) {
            return Err(Error::builder(
                "pool.max_connections_per_host must be above zero",
            ));
        }
        if self.pool.idle_timeout.is_zero() {
            return Err(Error::builder("pool.idle_timeout must be above zero"));
        }
        if self.tls.client_key.is_some() && self.tls.client_cert.is_none() {
            return Err(Error::builder(
                "tls.client_key needs tls.client_cert, the certificate it is the key of",
            ));
        }
        crate::request::header_value(&self.user_agent)?;
        self.header_map()?;
        self.proxies()?;
        for (host, addrs) in &self.resolve {
            let valid = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !valid || addrs.is_empty() {
                return Err(Error::builder(format!(
                    "resolve: {host:?} must be a host name with at least one address"
                )));
            }
        }
        Ok(())
    }

    /// [`Config::resolve`] with its names in lower case, as backends look them up.
    pub(crate) fn resolve_map(&self) -> BTreeMap<String, Vec<std::net::IpAddr>> {
        self.resolve
            .iter()
            .map(|(host, addrs)| (host.to_ascii_lowercase(), addrs.clone()))
            .collect()
    }

    /// Every header a request gets unless it sets its own, validated: `default_headers`,
    /// with `auto_headers` `Accept`, `User-Agent` and `Accept-Encoding` (with `decompress`), and
    /// basic auth.
    pub(crate) fn header_map(&self) -> Result<HeaderMap> {
        let mut map = HeaderMap::with_capacity(self.default_headers.len() + 4);
        for (k, v) in &self.default_headers {
            let name = crate::request::header_name(k)?;
            let value = crate::request::header_value(v)?;
            map.insert(name, value);
        }
        if self.auto_headers {
            if !map.contains_key(http::header::ACCEPT) {
                map.insert(http::header::ACCEPT, http::HeaderValue::from_static("*/*"));
            }
            if !map.contains_key(http::header::USER_AGENT) {
                map.insert(
                    http::header::USER_AGENT,
                    crate::request::header_value(&self.user_agent)?,
                );
            }
            if self.decompress && !map.contains_key(http::header::ACCEPT_ENCODING) {
                map.insert(http::header::ACCEPT_ENCODING, crate::decode::ACCEPT);
            }
        }
        if let Some(auth) = &self.basic_auth {
            if !map.contains_key(http::header::AUTHORIZATION) {
                map.insert(
                    http::header::AUTHORIZATION,
                    crate::url::basic_auth_value(&auth.username, &auth.password),
                );
            }
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests;
