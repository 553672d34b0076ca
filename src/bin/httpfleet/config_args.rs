//! The `Config` of `httpfleet get` from its flags: every knob, in curl's spelling where curl has
//! one, over a `--config FILE` (TOML) or, without it, the `HTTPFLEET_*` variables.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use httpfleet::{BackendKind, Config, HttpVersion};

use super::parse_kind;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(clap::Args)]
pub(crate) struct ConfigArgs {
    /// A TOML configuration (see docs/configuration.md) instead of the `HTTPFLEET_*` variables;
    /// the flags below override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The backend.
    #[arg(long, value_parser = parse_kind)]
    backend: Option<BackendKind>,
    /// Total deadline in seconds, body included (curl's `--max-time`).
    #[arg(short = 'm', long, value_name = "SECONDS")]
    max_time: Option<f64>,
    /// Deadline for the connection (TCP, proxy, TLS), in seconds.
    #[arg(long, value_name = "SECONDS")]
    connect_timeout: Option<f64>,
    /// Longest pause between two pieces of the body, in seconds.
    #[arg(long, value_name = "SECONDS")]
    read_timeout: Option<f64>,
    /// Redirects followed at most (0 returns the 3xx).
    #[arg(long, value_name = "N")]
    max_redirs: Option<u32>,
    /// Speak HTTP/1.1 only.
    #[arg(long = "http1.1", conflicts_with = "http2_prior_knowledge")]
    http1_1: bool,
    /// Speak HTTP/2 only (prior knowledge on http, ALPN h2 on https).
    #[arg(long)]
    http2_prior_knowledge: bool,
    /// Accept TLS 1.3 only (`--tlsv1.2`, the default, accepts 1.2 and 1.3).
    #[arg(long = "tlsv1.3", conflicts_with = "tlsv1_2")]
    tlsv1_3: bool,
    /// Accept TLS 1.2 and later (the default).
    #[arg(long = "tlsv1.2")]
    tlsv1_2: bool,
    /// Do not verify the server's certificate.
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Trust the CA certificates of this PEM file instead of the built-in roots (beside the
    /// system's with `--ca-native`).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Trust the operating system's root store instead of Mozilla's built-in roots.
    #[arg(long)]
    ca_native: bool,
    /// A client certificate chain (PEM), its key in the same file unless `--key` is given; with
    /// `--cert-type P12`, a PKCS#12 file.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// The format of `--cert`: `PEM` or `P12`.
    #[arg(long, value_name = "TYPE", default_value = "PEM", requires = "cert")]
    cert_type: String,
    /// The password of a `--cert-type P12` file.
    #[arg(long, value_name = "PASSWORD", requires = "cert")]
    pass: Option<String>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// A proxy: `http://`, `socks5://` or `socks5h://`, credentials allowed.
    #[arg(short = 'x', long, value_name = "URL")]
    proxy: Option<String>,
    /// A SOCKS5 proxy `HOST:PORT`, names resolved here.
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["proxy", "socks5_hostname"])]
    socks5: Option<String>,
    /// A SOCKS5 proxy `HOST:PORT`, names resolved by the proxy.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "proxy")]
    socks5_hostname: Option<String>,
    /// Hosts reached directly: names (and the names under them), addresses, CIDR blocks or `*`,
    /// comma-separated.
    #[arg(long, value_name = "LIST")]
    noproxy: Option<String>,
    /// Read proxies from `http_proxy`, `https_proxy`, `all_proxy` and `no_proxy`.
    #[arg(long)]
    proxy_from_env: bool,
    /// `HOST:ADDR[,ADDR...]`, or curl's `HOST:PORT:ADDR[,ADDR...]` (every port of the host
    /// then goes there): names sent to these addresses (repeatable).
    #[arg(long, value_name = "HOST:[PORT:]ADDR")]
    resolve: Vec<String>,
    /// Who resolves host names: `system` or `hickory` (with the `hickory` feature).
    #[arg(long, value_name = "NAME")]
    resolver: Option<String>,
    /// hickory's resolver asking these name servers, `ADDR[:PORT][,...]` (the `hickory`
    /// feature).
    #[arg(long, value_name = "ADDRS")]
    dns_servers: Option<String>,
    /// The local address connections come from.
    #[arg(long, value_name = "ADDR")]
    interface: Option<IpAddr>,
    /// TCP keepalive probes after this many idle seconds.
    #[arg(long, value_name = "SECONDS")]
    keepalive_time: Option<u64>,
    /// Basic auth, `USER:PASSWORD`.
    #[arg(short = 'u', long, value_name = "USER:PASSWORD")]
    user: Option<String>,
    /// The `User-Agent`.
    #[arg(short = 'A', long, value_name = "NAME")]
    user_agent: Option<String>,
    /// Ask for compressed bodies and decode them (the default).
    #[arg(long, conflicts_with = "raw")]
    compressed: bool,
    /// Neither ask for nor decode compressed bodies.
    #[arg(long)]
    raw: bool,
    /// Send none of httpfleet's own headers (`Accept`, `User-Agent`, `Accept-Encoding`).
    #[arg(long)]
    no_auto_headers: bool,
    /// The largest body accepted, in bytes (decoded).
    #[arg(long, value_name = "BYTES")]
    max_filesize: Option<u64>,
    /// Follow redirects from https to http.
    #[arg(long)]
    allow_insecure_redirects: bool,
    /// Idle connections kept per host.
    #[arg(long, value_name = "N")]
    pool_max_idle: Option<usize>,
    /// Requests in flight to one host at once (its connections over HTTP/1.1).
    #[arg(long, value_name = "N")]
    pool_max_connections_per_host: Option<usize>,
    /// How long an idle connection is kept, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pool_idle_timeout: Option<f64>,
    /// Keep cookies across the request's redirects, and write those a request to the final URL
    /// would send to this file at the end (`URL<TAB>name=value` lines).
    #[arg(short = 'c', long, value_name = "FILE")]
    cookie_jar: Option<PathBuf>,
}

impl ConfigArgs {
    /// The configuration: the file's, or the environment's, with every flag given applied.
    pub(crate) fn config(&self) -> Res<Config> {
        let mut c = match &self.config {
            Some(path) => Config::from_toml_str(
                &std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            )?,
            None => Config::from_env()?,
        };
        if let Some(kind) = self.backend {
            c = c.backend(kind);
        }
        if let Some(s) = self.max_time {
            c = c.timeout(seconds("--max-time", s)?);
        }
        if let Some(s) = self.connect_timeout {
            c = c.connect_timeout(seconds("--connect-timeout", s)?);
        }
        if let Some(s) = self.read_timeout {
            c = c.read_timeout(Some(seconds("--read-timeout", s)?));
        }
        if let Some(n) = self.max_redirs {
            c = c.max_redirects(n);
        }
        if self.http1_1 {
            c = c.http_version(HttpVersion::Http1);
        }
        if self.http2_prior_knowledge {
            c = c.http_version(HttpVersion::Http2);
        }
        if self.tlsv1_3 {
            c = c.tls_min_version(httpfleet::TlsVersion::Tls13);
        }
        if self.tlsv1_2 {
            c = c.tls_min_version(httpfleet::TlsVersion::Tls12);
        }
        if self.insecure {
            c = c.tls_verify(false);
        }
        if self.ca_native {
            c = c.tls_roots(httpfleet::Roots::System);
        }
        match &self.cacert {
            Some(ca) if self.ca_native => c = c.tls_ca_file_added(ca),
            Some(ca) => c = c.tls_ca_file(ca),
            None => {}
        }
        let pkcs12 = self.cert_type.eq_ignore_ascii_case("p12");
        if !pkcs12 && !self.cert_type.eq_ignore_ascii_case("pem") {
            return Err(format!("--cert-type {:?} is not PEM or P12", self.cert_type).into());
        }
        match (&self.cert, &self.key) {
            (Some(p12), _) if pkcs12 => {
                c = c.tls_client_pkcs12(p12, self.pass.as_deref().unwrap_or(""));
            }
            (Some(cert), Some(key)) => c = c.tls_client_identity(cert, key),
            (Some(both), None) => c = c.tls_client_identity_pem(both),
            _ => {}
        }
        let proxy = match (&self.proxy, &self.socks5, &self.socks5_hostname) {
            (Some(p), _, _) => Some(p.clone()),
            (_, Some(h), _) => Some(format!("socks5://{h}")),
            (_, _, Some(h)) => Some(format!("socks5h://{h}")),
            _ => None,
        };
        if let Some(p) = proxy {
            c = c.proxy(p);
        }
        if let Some(list) = &self.noproxy {
            c = c.no_proxy(list.split(',').map(str::trim).filter(|e| !e.is_empty()));
        }
        if self.proxy_from_env {
            c = c.proxy_from_env(true);
        }
        for entry in &self.resolve {
            let (host, addrs) = resolve_entry(entry)?;
            c = c.resolve(host, addrs);
        }
        if let Some(name) = &self.resolver {
            c = c.resolver(Some(httpfleet::dns::Resolver::named(name)?));
        }
        if let Some(list) = &self.dns_servers {
            c = c.resolver(Some(dns_servers(list)?));
        }
        if let Some(ip) = self.interface {
            c = c.local_address(Some(ip));
        }
        if let Some(s) = self.keepalive_time {
            c = c.tcp_keepalive(Some(Duration::from_secs(s)));
        }
        if let Some(user) = &self.user {
            let (u, p) = user.split_once(':').unwrap_or((user, ""));
            c = c.basic_auth(u, p);
        }
        if let Some(ua) = &self.user_agent {
            c = c.user_agent(ua.clone());
        }
        if self.compressed {
            c = c.decompress(true);
        }
        if self.raw {
            c = c.decompress(false);
        }
        if self.no_auto_headers {
            c = c.auto_headers(false);
        }
        if let Some(n) = self.max_filesize {
            c = c.max_response_bytes(n);
        }
        if self.allow_insecure_redirects {
            c = c.allow_insecure_redirects(true);
        }
        if let Some(n) = self.pool_max_idle {
            c = c.pool_max_idle_per_host(n);
        }
        if let Some(n) = self.pool_max_connections_per_host {
            c = c.pool_max_connections_per_host(Some(n));
        }
        if let Some(s) = self.pool_idle_timeout {
            c = c.pool_idle_timeout(seconds("--pool-idle-timeout", s)?);
        }
        if self.cookie_jar.is_some() {
            c = c.cookies(true);
        }
        c.validate()?;
        Ok(c)
    }

    /// Whether the maximum body size was set by a flag or the environment.
    pub(crate) fn sets_max_filesize(&self) -> bool {
        self.max_filesize.is_some()
    }

    /// Writes what the jar holds for `url` to the `--cookie-jar` file.
    pub(crate) fn save_cookies(&self, client: &httpfleet::Client, url: &str) -> Res<()> {
        let (Some(path), Some(jar)) = (&self.cookie_jar, client.cookie_jar()) else {
            return Ok(());
        };
        let mut out = String::new();
        for (name, value) in jar.cookies_for(url) {
            out.push_str(&format!("{url}\t{name}={value}\n"));
        }
        std::fs::write(path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(())
    }
}

/// `s` seconds, which must be a finite number above zero.
fn seconds(flag: &str, s: f64) -> Res<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{flag} {s} is not a number of seconds above zero").into())
}

/// `HOST:ADDR[,ADDR...]` or `HOST:PORT:ADDR[,ADDR...]`, an IPv6 address in brackets or not.
/// hickory asking the name servers of `--dns-servers` (port 53 unless given).
fn dns_servers(list: &str) -> Res<httpfleet::dns::Resolver> {
    let servers = list
        .split(',')
        .map(|s| {
            let s = s.trim();
            s.parse::<std::net::SocketAddr>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| (ip, 53).into()))
                .map_err(|_| format!("--dns-servers {s:?} is not ADDR[:PORT]"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    #[cfg(feature = "hickory")]
    return Ok(httpfleet::dns::Resolver::hickory_with_nameservers(
        &servers,
    )?);
    #[cfg(not(feature = "hickory"))]
    {
        let _ = servers;
        Err("--dns-servers needs httpfleet built with the hickory feature".into())
    }
}

fn resolve_entry(entry: &str) -> Res<(String, Vec<IpAddr>)> {
    let bad = || format!("--resolve {entry:?} is not HOST:[PORT:]ADDR[,ADDR...]");
    let (host, rest) = entry.split_once(':').ok_or_else(bad)?;
    let rest = match rest.split_once(':') {
        Some((port, addrs)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            addrs
        }
        _ => rest,
    };
    let addrs = rest
        .split(',')
        .map(|a| {
            a.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
        })
        .collect::<Result<Vec<IpAddr>, _>>()
        .map_err(|_| bad())?;
    if host.is_empty() || addrs.is_empty() {
        return Err(bad().into());
    }
    Ok((host.to_owned(), addrs))
}
