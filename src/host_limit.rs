//! `pool.max_connections_per_host`: at most N requests of a client in flight to one host
//! (scheme, host, port) at once, the same on every backend — none of the four has such a limit
//! (libcurl's is per multi handle, and httpfleet's curl runs one per transfer). A permit is
//! taken before each hop is sent, by its deadline, and held until the hop's answer is done
//! with: a redirect's drained body, or the final response's body read to its end or dropped.
//! Over HTTP/1.1 that is one connection per permit; over HTTP/2 requests share connections,
//! and the limit is on the requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::Uri;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, ErrorKind, Result, TimeoutPhase};

/// Hosts whose permits are all free are forgotten once this many are known.
const HOSTS_KEPT: usize = 1024;

/// The permits of each host a client talks to.
#[derive(Debug)]
pub(crate) struct HostLimit {
    max: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl HostLimit {
    pub(crate) fn new(max: usize) -> Self {
        HostLimit {
            max: max.max(1),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// A permit for `uri`'s host, waited for until `deadline`.
    pub(crate) async fn acquire(
        &self,
        uri: &Uri,
        deadline: tokio::time::Instant,
    ) -> Result<OwnedSemaphorePermit> {
        let host = self.host(uri);
        match tokio::time::timeout_at(deadline, host.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed.
            Ok(Err(_)) | Err(_) => Err(waited_past(uri)),
        }
    }

    /// [`HostLimit::acquire`] from blocking code: at once when a permit is free, else waited
    /// for on the blocking bridge.
    pub(crate) fn acquire_blocking(
        &self,
        uri: &Uri,
        deadline: tokio::time::Instant,
    ) -> Result<OwnedSemaphorePermit> {
        if let Ok(permit) = self.host(uri).try_acquire_owned() {
            return Ok(permit);
        }
        crate::backend::block_on(self.acquire(uri, deadline))?
    }

    /// The semaphore of `uri`'s host, made on first use.
    fn host(&self, uri: &Uri) -> Arc<Semaphore> {
        let key = format!(
            "{}://{}:{}",
            uri.scheme_str().unwrap_or("http"),
            uri.host().unwrap_or("").to_ascii_lowercase(),
            crate::url::port_or_default(uri)
        );
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if hosts.len() >= HOSTS_KEPT && !hosts.contains_key(&key) {
            let max = self.max;
            hosts.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < max);
        }
        hosts
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.max)))
            .clone()
    }
}

fn waited_past(uri: &Uri) -> Error {
    Error::new(ErrorKind::Timeout(TimeoutPhase::Headers))
        .with_detail("the deadline passed while waiting for a connection to the host (pool.max_connections_per_host)")
        .with_url(uri)
}
