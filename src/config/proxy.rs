//! Which proxy a request goes through: the configuration's proxies, parsed once, and the
//! `no_proxy` rules; decided by httpfleet for each request, so every backend routes alike.

use std::net::IpAddr;

use crate::error::{Error, Result};

use super::Config;

impl Config {
    /// The proxies in force: `proxy` for both schemes, else (with `proxy_from_env`) the
    /// environment's; `no_proxy` (plus `NO_PROXY` with `proxy_from_env`) says where none is used.
    pub(crate) fn proxies(&self) -> Result<Proxies> {
        self.proxies_from(|name| std::env::var(name).ok())
    }

    /// [`Config::proxies`], reading the environment through `var`.
    pub(crate) fn proxies_from(&self, var: impl Fn(&str) -> Option<String>) -> Result<Proxies> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let first = |names: &[&str]| names.iter().find_map(|n| var(n));
        let (http, https) = match &self.proxy {
            Some(p) => (Some(p.clone()), Some(p.clone())),
            None if self.proxy_from_env => {
                let all = first(&["all_proxy", "ALL_PROXY"]);
                // Under CGI, `HTTP_PROXY` is the request's `Proxy:` header (httpoxy): only the
                // lowercase name counts there.
                let http = if var("REQUEST_METHOD").is_some() {
                    first(&["http_proxy"])
                } else {
                    first(&["http_proxy", "HTTP_PROXY"])
                };
                let https = first(&["https_proxy", "HTTPS_PROXY"]);
                (http.or_else(|| all.clone()), https.or(all))
            }
            None => (None, None),
        };
        let mut rules = Vec::new();
        for entry in &self.no_proxy {
            rules.push(NoProxyRule::parse(entry)?);
        }
        if self.proxy_from_env {
            if let Some(list) = first(&["no_proxy", "NO_PROXY"]) {
                for entry in list.split(',').filter(|e| !e.trim().is_empty()) {
                    rules.push(NoProxyRule::parse(entry)?);
                }
            }
        }
        Ok(Proxies {
            http: http.map(|r| ProxyUrl::parse(&r)).transpose()?,
            https: https.map(|r| ProxyUrl::parse(&r)).transpose()?,
            no_proxy: rules,
        })
    }
}

/// The proxies of a client and where they do not apply.
#[derive(Clone, Debug, Default)]
pub(crate) struct Proxies {
    /// For `http://` URLs.
    pub http: Option<ProxyUrl>,
    /// For `https://` URLs.
    pub https: Option<ProxyUrl>,
    no_proxy: Vec<NoProxyRule>,
}

impl Proxies {
    /// No proxy at all: every request goes direct.
    pub(crate) fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    /// The proxy a request to `uri` goes through, if any.
    pub(crate) fn for_uri(&self, uri: &http::Uri) -> Option<&ProxyUrl> {
        if self.is_empty() {
            return None;
        }
        self.for_target(crate::url::is_https(uri), uri.host().unwrap_or(""))
    }

    /// The proxy a request to `host` (over https or not) goes through, if any.
    pub(crate) fn for_target(&self, https: bool, host: &str) -> Option<&ProxyUrl> {
        let proxy = if https { &self.https } else { &self.http }.as_ref()?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if self.no_proxy.iter().any(|r| r.matches(host)) {
            return None;
        }
        Some(proxy)
    }
}

/// One `no_proxy` entry.
#[derive(Clone, Debug, PartialEq)]
enum NoProxyRule {
    /// `*`: no request uses a proxy.
    All,
    /// An address, or a block of them (`10.0.0.0/8`, `::1/128`).
    Net(IpAddr, u8),
    /// A name and every name under it (`example.com`, `.example.com` and `*.example.com` alike).
    Domain(String),
}

impl NoProxyRule {
    fn parse(entry: &str) -> Result<Self> {
        let entry = entry.trim();
        let bad = || {
            Error::builder(format!(
                "no_proxy entry {entry:?} is not a host, domain, address or CIDR block"
            ))
        };
        if entry == "*" {
            return Ok(NoProxyRule::All);
        }
        let bare = entry.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(NoProxyRule::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
        }
        if let Some((ip, bits)) = entry.split_once('/') {
            let ip: IpAddr = ip.parse().map_err(|_| bad())?;
            let bits: u8 = bits.parse().map_err(|_| bad())?;
            if bits > if ip.is_ipv4() { 32 } else { 128 } {
                return Err(bad());
            }
            return Ok(NoProxyRule::Net(ip, bits));
        }
        let domain = entry.trim_start_matches('*').trim_start_matches('.');
        let valid = !domain.is_empty()
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !valid {
            return Err(bad());
        }
        Ok(NoProxyRule::Domain(domain.to_ascii_lowercase()))
    }

    /// Whether a request to `host` (a name, or an address without brackets) skips the proxy.
    /// Names are not resolved: an address rule matches only a URL that names the address.
    fn matches(&self, host: &str) -> bool {
        match self {
            NoProxyRule::All => true,
            NoProxyRule::Net(net, bits) => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_block(ip, *net, *bits)),
            NoProxyRule::Domain(d) => {
                let host = host.trim_end_matches('.');
                host.len() >= d.len()
                    && host[host.len() - d.len()..].eq_ignore_ascii_case(d)
                    && (host.len() == d.len() || host.as_bytes()[host.len() - d.len() - 1] == b'.')
            }
        }
    }
}

/// Whether `ip` is within `net/bits` (an IPv4 address never matches an IPv6 block).
fn in_block(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a).into(), u32::from(b).into(), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    bits == 0 || (ip >> shift) == (net >> shift)
}

/// The kind of proxy a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProxyKind {
    /// `http://`: plain requests in absolute form, https through `CONNECT`.
    Http,
    /// `socks5://`: names resolved here, the address sent to the proxy.
    Socks5,
    /// `socks5h://`: names sent to the proxy, which resolves them.
    Socks5h,
}

/// A parsed proxy URL: where to connect and the credentials to present.
#[derive(Clone)]
pub(crate) struct ProxyUrl {
    pub kind: ProxyKind,
    /// `scheme://host:port` without credentials, the port always written out.
    pub uri: http::Uri,
    /// `user`, `password`.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for ProxyUrl {
    /// The proxy's address, never its credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.uri)
    }
}

impl ProxyUrl {
    fn parse(raw: &str) -> Result<Self> {
        let invalid = || {
            Error::builder(format!(
                "proxy URL {:?} is invalid",
                crate::url::redact_str(raw)
            ))
        };
        let (scheme, rest) = raw.split_once("://").unwrap_or(("http", raw));
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "http" => ProxyKind::Http,
            "socks5" => ProxyKind::Socks5,
            "socks5h" => ProxyKind::Socks5h,
            _ => {
                return Err(Error::builder(
                    "only http://, socks5:// and socks5h:// proxies are supported",
                ));
            }
        };
        let parsed = crate::url::parse(&format!("http://{rest}")).map_err(|_| invalid())?;
        let host = parsed.uri.host().ok_or_else(invalid)?;
        let port = match (parsed.uri.port_u16(), kind) {
            (Some(p), _) => p,
            (None, ProxyKind::Http) => 80,
            (None, _) => 1080,
        };
        let uri = format!("{}://{host}:{port}", scheme.to_ascii_lowercase())
            .parse()
            .map_err(|_| invalid())?;
        Ok(ProxyUrl {
            kind,
            uri,
            credentials: parsed.credentials,
        })
    }

    /// `host:port` of the proxy.
    pub(crate) fn host_port(&self) -> String {
        format!(
            "{}:{}",
            self.uri.host().unwrap_or(""),
            self.uri.port_u16().unwrap_or(80)
        )
    }

    /// `Proxy-Authorization` for an HTTP proxy with credentials.
    pub(crate) fn authorization(&self) -> Option<http::HeaderValue> {
        match (&self.credentials, self.kind) {
            (Some((user, pass)), ProxyKind::Http) => Some(crate::url::basic_auth_value(user, pass)),
            _ => None,
        }
    }

    /// The whole URL, credentials percent-encoded in it, for clients that take one string.
    pub(crate) fn url_with_credentials(&self) -> String {
        let scheme = self.uri.scheme_str().unwrap_or("http");
        match &self.credentials {
            Some((user, pass)) => format!(
                "{scheme}://{}:{}@{}",
                crate::url::percent_encode(user),
                crate::url::percent_encode(pass),
                self.host_port()
            ),
            None => format!("{scheme}://{}", self.host_port()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(config: &Config, vars: &[(&str, &str)]) -> Proxies {
        config
            .proxies_from(|n| {
                vars.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            })
            .unwrap()
    }

    fn via(p: &Proxies, url: &str) -> Option<String> {
        p.for_uri(&url.parse().unwrap())
            .map(|p| p.url_with_credentials())
    }

    #[test]
    fn each_scheme_takes_its_own_variable_and_all_proxy_fills_in() {
        let config = Config::default().proxy_from_env(true);
        let p = proxies(
            &config,
            &[("HTTP_PROXY", "http://h:1"), ("ALL_PROXY", "socks5h://a:2")],
        );
        assert_eq!(via(&p, "http://x/").as_deref(), Some("http://h:1"));
        assert_eq!(via(&p, "https://x/").as_deref(), Some("socks5h://a:2"));
        let p = proxies(&config, &[("HTTPS_PROXY", "http://s:3")]);
        assert_eq!(via(&p, "http://x/"), None, "HTTPS_PROXY is not for http");
        assert_eq!(via(&p, "https://x/").as_deref(), Some("http://s:3"));
        // Lowercase first; under CGI the uppercase HTTP_PROXY is a request header.
        let p = proxies(
            &config,
            &[("http_proxy", "http://l:1"), ("HTTP_PROXY", "http://u:1")],
        );
        assert_eq!(via(&p, "http://x/").as_deref(), Some("http://l:1"));
        let p = proxies(
            &config,
            &[("HTTP_PROXY", "http://u:1"), ("REQUEST_METHOD", "GET")],
        );
        assert_eq!(via(&p, "http://x/"), None);
        // Without proxy_from_env nothing of the environment counts.
        let p = proxies(
            &Config::default(),
            &[("HTTP_PROXY", "http://u:1"), ("NO_PROXY", "*")],
        );
        assert!(p.is_empty());
    }

    #[test]
    fn no_proxy_matches_hosts_suffixes_addresses_blocks_and_star() {
        let config = Config::default()
            .proxy("socks5://user:p%40ss@proxy")
            .no_proxy([
                "example.com",
                ".internal",
                "10.0.0.0/8",
                "::1",
                "192.168.1.7",
            ]);
        let p = proxies(&config, &[]);
        assert_eq!(
            via(&p, "https://other.org/").as_deref(),
            Some("socks5://user:p%40ss@proxy:1080")
        );
        for direct in [
            "http://example.com/",
            "http://API.Example.com:8080/",
            "http://a.b.internal/",
            "http://internal/",
            "http://10.1.2.3/",
            "http://[::1]:80/",
            "http://192.168.1.7/",
        ] {
            assert_eq!(via(&p, direct), None, "{direct}");
        }
        for proxied in [
            "http://notexample.com/",
            "http://example.com.evil.org/",
            "http://11.0.0.1/",
            "http://192.168.1.8/",
        ] {
            assert!(via(&p, proxied).is_some(), "{proxied}");
        }
        let star = Config::default().proxy("http://p:1").no_proxy(["*"]);
        assert_eq!(via(&proxies(&star, &[]), "http://anything/"), None);
        let env = Config::default().proxy_from_env(true);
        let p = proxies(
            &env,
            &[
                ("HTTP_PROXY", "http://p:1"),
                ("no_proxy", "a.test, 127.0.0.0/8"),
            ],
        );
        assert_eq!(via(&p, "http://x.a.test/"), None);
        assert_eq!(via(&p, "http://127.9.9.9/"), None);
        assert!(via(&p, "http://b.test/").is_some());
    }

    #[test]
    fn no_proxy_from_toml_the_environment_and_the_builder_means_the_same() {
        let built = Config::default().no_proxy(["a.test", "10.0.0.0/8"]);
        let toml = Config::from_toml_str("no_proxy = [\"a.test\", \"10.0.0.0/8\"]\n").unwrap();
        let env = Config::from_vars(|n| {
            (n == "HTTPFLEET_NO_PROXY").then(|| " a.test ,10.0.0.0/8,".to_owned())
        })
        .unwrap();
        assert_eq!(built, toml);
        assert_eq!(built, env);
        let bad = Config::from_vars(|n| (n == "HTTPFLEET_NO_PROXY").then(|| "1.2.3.4/99".into()));
        assert_eq!(bad.unwrap_err().kind(), crate::ErrorKind::Builder);
    }

    #[test]
    fn bad_entries_and_schemes_are_builder_errors() {
        for entry in ["10.0.0.0/33", "bad host", "1.2.3.4/x", ""] {
            let c = Config::default().no_proxy([entry]);
            assert!(c.proxies_from(|_| None).is_err(), "{entry:?}");
        }
        let c = Config::default().proxy("socks4://p:1");
        assert!(c.proxies_from(|_| None).is_err());
    }
}
