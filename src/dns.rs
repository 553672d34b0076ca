//! Pluggable name resolution: [`Resolver`], set with `Config::resolver`.
//!
//! Every backend asks the configured resolver for the names it connects to, so one resolver
//! means the same on all four. Its lookups run on one small runtime of httpfleet's own (the
//! thread `httpfleet-dns`), whichever runtime or thread asks: a resolver with background tasks
//! (hickory's) never depends on a caller's runtime staying alive, and blocking backends wait
//! for an answer without a thread per lookup.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// A lookup in progress: the addresses of a name, in the order to try them.
pub type Resolving = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Resolves host names to addresses. Implement it to plug your own resolver in with
/// [`Resolver::new`].
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host`, a name (never an IP address) in lower case. Runs on httpfleet's
    /// resolver runtime: it may spawn tokio tasks and use tokio's timers and sockets.
    fn resolve(&self, host: &str) -> Resolving;
}

/// The resolver of a client: names of `Config::resolve` are answered before it is asked; a
/// name it cannot resolve ends the request in [`ErrorKind::Dns`]. Cheap to clone (shared).
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<dyn Resolve>,
    name: &'static str,
}

impl Resolver {
    /// Your own resolver.
    pub fn new(resolve: impl Resolve) -> Self {
        Resolver {
            inner: Arc::new(resolve),
            name: "custom",
        }
    }

    /// The system's resolver (`getaddrinfo`, as every backend uses when no resolver is set),
    /// through httpfleet: useful as the inner resolver of your own.
    pub fn system() -> Self {
        static SYSTEM: std::sync::OnceLock<Arc<dyn Resolve>> = std::sync::OnceLock::new();
        Resolver {
            inner: SYSTEM.get_or_init(|| Arc::new(System)).clone(),
            name: "system",
        }
    }

    /// The resolver a configuration names: `system` or `hickory`; another name is a `Builder`
    /// error.
    pub fn named(name: &str) -> Result<Self> {
        match name {
            "system" => Ok(Resolver::system()),
            #[cfg(feature = "hickory")]
            "hickory" => Resolver::hickory(),
            #[cfg(not(feature = "hickory"))]
            "hickory" => Err(Error::builder(
                "resolver \"hickory\" needs the hickory feature",
            )),
            _ => Err(Error::builder(format!(
                "resolver {name:?} is not \"system\" or \"hickory\""
            ))),
        }
    }

    /// [hickory](https://docs.rs/hickory-resolver)'s asynchronous stub resolver, configured from
    /// the system (`/etc/resolv.conf`), with its own cache. Needs the `hickory` feature.
    #[cfg(feature = "hickory")]
    pub fn hickory() -> Result<Self> {
        let builder = hickory_resolver::TokioResolver::builder_tokio().map_err(|e| {
            Error::builder("cannot read the system's DNS configuration").with_source(e)
        })?;
        Self::hickory_from(builder)
    }

    /// hickory's resolver asking these name servers (UDP, then TCP for long answers). Needs the
    /// `hickory` feature.
    #[cfg(feature = "hickory")]
    pub fn hickory_with_nameservers(servers: &[std::net::SocketAddr]) -> Result<Self> {
        use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
        let servers = servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp, tcp])
            })
            .collect();
        let builder = hickory_resolver::TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            Default::default(),
        );
        Self::hickory_from(builder)
    }

    #[cfg(feature = "hickory")]
    fn hickory_from(
        builder: hickory_resolver::ResolverBuilder<
            hickory_resolver::net::runtime::TokioRuntimeProvider,
        >,
    ) -> Result<Self> {
        let _on_runtime = runtime()?.enter();
        let resolver = builder
            .build()
            .map_err(|e| Error::builder("hickory resolver").with_source(e))?;
        Ok(Resolver {
            inner: Arc::new(Hickory(resolver)),
            name: "hickory",
        })
    }

    /// The addresses of `host` (a name in lower case), from an async caller.
    pub(crate) async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.spawn(host, move |answer| drop(tx.send(answer)))?;
        let answer = rx
            .await
            .unwrap_or_else(|_| Err(io::Error::other("the lookup ended")));
        answered(host, answer)
    }

    /// The addresses of `host` (a name in lower case), waiting at most `within` on this thread.
    pub(crate) fn lookup_blocking(&self, host: &str, within: Duration) -> Result<Vec<IpAddr>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.spawn(host, move |answer| drop(tx.send(answer)))?;
        match rx.recv_timeout(within) {
            Ok(answer) => answered(host, answer),
            Err(_) => Err(Error::new(ErrorKind::Timeout(crate::TimeoutPhase::Connect))
                .with_detail(format!("no answer for {host:?} in time"))),
        }
    }

    fn spawn(
        &self,
        host: &str,
        reply: impl FnOnce(io::Result<Vec<IpAddr>>) + Send + 'static,
    ) -> Result<()> {
        let on = runtime()?;
        let lookup = self.inner.resolve(host);
        on.spawn(async move { reply(lookup.await) });
        Ok(())
    }
}

/// The lookup's answer as httpfleet's result: an error or no address is [`ErrorKind::Dns`].
fn answered(host: &str, answer: io::Result<Vec<IpAddr>>) -> Result<Vec<IpAddr>> {
    match answer {
        Ok(addrs) if !addrs.is_empty() => Ok(addrs),
        Ok(_) => Err(Error::new(ErrorKind::Dns).with_detail(format!("{host:?} has no address"))),
        Err(e) => Err(Error::new(ErrorKind::Dns)
            .with_detail(format!("cannot resolve {host:?}"))
            .with_source(e)),
    }
}

/// `ips` as socket addresses with port 0, which hyper's and reqwest's connectors replace with
/// the URL's port.
pub(crate) fn any_port(ips: impl IntoIterator<Item = IpAddr>) -> Vec<std::net::SocketAddr> {
    ips.into_iter()
        .map(|ip| std::net::SocketAddr::new(ip, 0))
        .collect()
}

/// The runtime every lookup runs on: one worker thread, made at first use.
fn runtime() -> Result<&'static tokio::runtime::Handle> {
    static RUNTIME: std::sync::OnceLock<io::Result<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .max_blocking_threads(4)
                .thread_name("httpfleet-dns")
                .enable_all()
                .build()
        })
        .as_ref()
        .map(|rt| rt.handle())
        .map_err(|e| Error::builder(format!("cannot start the resolver runtime: {e}")))
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resolver({})", self.name)
    }
}

impl<'de> serde::Deserialize<'de> for Resolver {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Resolver::named(&name).map_err(serde::de::Error::custom)
    }
}

impl PartialEq for Resolver {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Resolver {}

/// `getaddrinfo` on the resolver runtime's blocking threads.
struct System;

impl Resolve for System {
    fn resolve(&self, host: &str) -> Resolving {
        let host = host.to_owned();
        Box::pin(async move {
            let addrs = tokio::task::spawn_blocking(move || {
                std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), 0))
                    .map(|it| it.map(|a| a.ip()).collect::<Vec<_>>())
            })
            .await
            .map_err(io::Error::other)??;
            Ok(addrs)
        })
    }
}

#[cfg(feature = "hickory")]
struct Hickory(hickory_resolver::TokioResolver);

#[cfg(feature = "hickory")]
impl Resolve for Hickory {
    fn resolve(&self, host: &str) -> Resolving {
        let resolver = self.0.clone();
        let host = host.to_owned();
        Box::pin(async move {
            let found = resolver
                .lookup_ip(host.as_str())
                .await
                .map_err(io::Error::other)?;
            Ok(found.iter().collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_resolver_finds_localhost_from_any_thread() {
        let ips = Resolver::system()
            .lookup_blocking("localhost", Duration::from_secs(5))
            .unwrap();
        assert!(ips.iter().all(|ip| ip.is_loopback()), "{ips:?}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let again = rt.block_on(Resolver::system().lookup("localhost")).unwrap();
        assert_eq!(ips, again);
    }

    #[test]
    fn a_resolver_is_named_in_toml_and_the_environment() {
        let toml = crate::Config::from_toml_str("resolver = \"system\"\n").unwrap();
        assert_eq!(toml.resolver, Some(Resolver::system()));
        let env =
            crate::Config::from_vars(|n| (n == "HTTPFLEET_RESOLVER").then(|| "system".into()));
        assert_eq!(env.unwrap().resolver, Some(Resolver::system()));
        for bad in ["\"dns\"", "1"] {
            let err = crate::Config::from_toml_str(&format!("resolver = {bad}\n")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Builder);
        }
        assert_eq!(
            cfg!(feature = "hickory"),
            crate::Config::from_toml_str("resolver = \"hickory\"\n").is_ok()
        );
    }
}
