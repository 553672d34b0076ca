//! Host names for libcurl, which resolves them itself: the names of `Config::resolve`, and with
//! `Config::resolver` the answers of that resolver, are handed to it as `CURLOPT_RESOLVE`
//! entries (`host:port:addr,...`) before the transfer.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{Proxies, ProxyKind};
use crate::dns::Resolver;
use crate::error::{Error, ErrorKind, Result};

/// How long an answer of `Config::resolver` is reused, as libcurl keeps its own lookups.
const TTL: Duration = Duration::from_secs(30);

/// Entries by `host:port`, with when they were looked up.
type Answers = Mutex<HashMap<String, (Instant, String)>>;

pub(super) struct Names {
    /// `Config::resolve`, names in lower case.
    overrides: BTreeMap<String, Vec<IpAddr>>,
    /// `Config::resolver`, with its answers as entries by `host:port`.
    custom: Option<(Resolver, Answers)>,
}

/// A name a request connects to, and whether it is its proxy's.
struct Wanted {
    host: String,
    port: u16,
    proxy: bool,
}

impl Names {
    pub(super) fn new(overrides: BTreeMap<String, Vec<IpAddr>>, custom: Option<Resolver>) -> Self {
        Names {
            overrides,
            custom: custom.map(|r| (r, Mutex::new(HashMap::new()))),
        }
    }

    /// The entry of `uri`'s host when [`Config::resolve`](crate::Config::resolve) names it.
    pub(super) fn override_entry(&self, uri: &http::Uri) -> Option<String> {
        if self.overrides.is_empty() {
            return None;
        }
        let host = uri.host()?;
        let addrs = self.overrides.get(&host.to_ascii_lowercase())?;
        Some(entry(host, crate::url::port_or_default(uri), addrs))
    }

    /// The entries of `Config::resolver` a request to `uri` needs, looked up as needed.
    pub(super) async fn entries(&self, uri: &http::Uri, proxies: &Proxies) -> Result<Vec<String>> {
        let Some((resolver, _)) = &self.custom else {
            return Ok(Vec::new());
        };
        let (mut entries, missing) = self.cached(uri, proxies);
        for w in missing {
            let answer = resolver.lookup(&w.host).await;
            entries.push(self.store(&w, answer)?);
        }
        Ok(entries)
    }

    /// [`Names::entries`] for a blocking caller, waiting at most `within` for each lookup.
    pub(super) fn entries_blocking(
        &self,
        uri: &http::Uri,
        proxies: &Proxies,
        within: Duration,
    ) -> Result<Vec<String>> {
        let Some((resolver, _)) = &self.custom else {
            return Ok(Vec::new());
        };
        let (mut entries, missing) = self.cached(uri, proxies);
        for w in missing {
            let answer = resolver.lookup_blocking(&w.host, within);
            entries.push(self.store(&w, answer)?);
        }
        Ok(entries)
    }

    /// The entries `uri` needs that are known and fresh, and the names still to look up.
    fn cached(&self, uri: &http::Uri, proxies: &Proxies) -> (Vec<String>, Vec<Wanted>) {
        let Some((_, cache)) = &self.custom else {
            return (Vec::new(), Vec::new());
        };
        let cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        let mut missing = Vec::new();
        let mut entries = Vec::new();
        for w in self.wanted(uri, proxies) {
            match cache.get(&format!("{}:{}", w.host, w.port)) {
                Some((at, entry)) if at.elapsed() < TTL => entries.push(entry.clone()),
                _ => missing.push(w),
            }
        }
        (entries, missing)
    }

    /// The names libcurl would look up for `uri`: its host unless an HTTP or `socks5h://`
    /// proxy resolves it, and the proxy's; neither an address nor a name of `Config::resolve`.
    fn wanted(&self, uri: &http::Uri, proxies: &Proxies) -> Vec<Wanted> {
        let proxy = proxies.for_uri(uri);
        let mut wanted = Vec::with_capacity(2);
        let mut want = |u: &http::Uri, proxy: bool| {
            let Some(host) = u.host() else { return };
            let host = host.to_ascii_lowercase();
            if crate::url::host_ip(&host).is_none() && !self.overrides.contains_key(&host) {
                let port = crate::url::port_or_default(u);
                wanted.push(Wanted { host, port, proxy });
            }
        };
        if proxy.is_none_or(|p| p.kind == ProxyKind::Socks5) {
            want(uri, false);
        }
        if let Some(p) = proxy {
            want(&p.uri, true);
        }
        wanted
    }

    /// The entry of an answer, kept for [`TTL`]; a failed lookup of a proxy's name is a
    /// `Proxy` error, as libcurl's own is.
    fn store(&self, w: &Wanted, answer: Result<Vec<IpAddr>>) -> Result<String> {
        let ips = answer.map_err(|e| match e.kind() {
            ErrorKind::Dns if w.proxy => Error::new(ErrorKind::Proxy)
                .with_detail(format!("cannot resolve the proxy {:?}", w.host))
                .with_source(e),
            _ => e,
        })?;
        let found = entry(&w.host, w.port, &ips);
        if let Some((_, cache)) = &self.custom {
            let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.retain(|_, (at, _)| at.elapsed() < TTL);
            let key = format!("{}:{}", w.host, w.port);
            cache.insert(key, (Instant::now(), found.clone()));
        }
        Ok(found)
    }
}

/// A `CURLOPT_RESOLVE` entry: `host:port:addr,...`, IPv6 addresses in brackets.
fn entry(host: &str, port: u16, ips: &[IpAddr]) -> String {
    let addrs: Vec<String> = ips
        .iter()
        .map(|a| match a {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        })
        .collect();
    format!("{host}:{port}:{}", addrs.join(","))
}
