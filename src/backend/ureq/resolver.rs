//! ureq's resolver, without a thread per lookup: [`Resolver`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs};
use ureq::unversioned::transport::NextTimeout;

/// How long a resolved host name is reused.
const DNS_TTL: Duration = Duration::from_secs(30);

/// ureq 3's own resolver spawns a thread for every lookup that has a timeout, even for an IP
/// literal and even when a pooled connection is then reused (11-12k instructions per request).
/// This one answers IP literals in place and reuses a name's addresses for [`DNS_TTL`]; a lookup
/// that needs DNS still goes through ureq's resolver, with its thread and its timeout.
///
/// Names of `Config::resolve` get their addresses without any lookup.
#[derive(Debug, Default)]
pub(super) struct Resolver {
    dns: DefaultResolver,
    cache: Mutex<HashMap<String, (std::time::Instant, ResolvedSocketAddrs)>>,
    overrides: std::collections::BTreeMap<String, Vec<IpAddr>>,
}

impl Resolver {
    /// A resolver that sends the names of `overrides` to their addresses.
    pub(super) fn new(overrides: std::collections::BTreeMap<String, Vec<IpAddr>>) -> Self {
        Resolver {
            overrides,
            ..Resolver::default()
        }
    }
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
        if let Some(ips) = self.overrides.get(&host.to_ascii_lowercase()) {
            let mut addrs = self.empty();
            for ip in ips.iter().take(16) {
                addrs.push(SocketAddr::new(*ip, port));
            }
            return Ok(addrs);
        }
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
