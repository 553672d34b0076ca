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
/// Names of `Config::resolve` get their addresses without any lookup; with `Config::resolver`,
/// that resolver is asked instead of ureq's (its answers reused alike).
#[derive(Debug, Default)]
pub(super) struct Resolver {
    dns: DefaultResolver,
    cache: Mutex<HashMap<String, (std::time::Instant, ResolvedSocketAddrs)>>,
    overrides: std::collections::BTreeMap<String, Vec<IpAddr>>,
    custom: Option<crate::dns::Resolver>,
}

impl Resolver {
    /// A resolver that sends the names of `overrides` to their addresses and asks `custom`, if
    /// any, for the rest.
    pub(super) fn new(
        overrides: std::collections::BTreeMap<String, Vec<IpAddr>>,
        custom: Option<crate::dns::Resolver>,
    ) -> Self {
        Resolver {
            overrides,
            custom,
            ..Resolver::default()
        }
    }

    /// `ips` with `port`, at most as many as ureq takes.
    fn with_port(&self, ips: impl IntoIterator<Item = IpAddr>, port: u16) -> ResolvedSocketAddrs {
        let mut addrs = ureq::unversioned::resolver::Resolver::empty(self);
        for ip in ips.into_iter().take(16) {
            addrs.push(SocketAddr::new(ip, port));
        }
        addrs
    }

    /// A lookup of `host` through `Config::resolver`, within ureq's resolve timeout.
    fn custom_lookup(
        &self,
        custom: &crate::dns::Resolver,
        host: &str,
        port: u16,
        timeout: &NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        let within = (*timeout.after).min(crate::config::MAX_DURATION);
        match custom.lookup_blocking(&host.to_ascii_lowercase(), within) {
            Ok(ips) => Ok(self.with_port(ips, port)),
            Err(e) if e.kind() == crate::ErrorKind::Dns => Err(ureq::Error::HostNotFound),
            Err(_) => Err(ureq::Error::Timeout(timeout.reason)),
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
            return Ok(self.with_port(ips.iter().copied(), port));
        }
        if let Some(ip) = crate::url::host_ip(host) {
            return Ok(self.with_port([ip], port));
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
        let addrs = match &self.custom {
            Some(custom) => self.custom_lookup(custom, host, port, &timeout)?,
            None => self.dns.resolve(uri, config, timeout)?,
        };
        cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, (at, _)| now.duration_since(*at) < DNS_TTL);
        cache.insert(key, (now, addrs.clone()));
        Ok(addrs)
    }
}
