//! In-process httpbin-like HTTP test server for the integration tests.
//!
//! Use with `mod support;` at the top of a test file, then
//! `let srv = support::TestServer::start();`.
//!
//! The server runs on its own OS thread with its own multi-thread tokio
//! runtime, so it works from plain `#[test]` functions and from
//! `#[tokio::test]` functions alike, and keeps serving while the caller blocks.
//! It speaks HTTP/1.1 and HTTP/2 with prior knowledge (h2c), both on the same
//! port. Dropping the `TestServer` shuts it down.
#![allow(dead_code)]

mod body;
pub mod exchange;
pub mod fault;
pub mod harness;
mod routes;
pub mod vision;

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

#[allow(unused_imports)]
pub use body::RespBody;
#[allow(unused_imports)]
pub use routes::{base64_decode, pattern_bytes};

/// One request as it reached the router (body fully read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// e.g. `"GET"`.
    pub method: String,
    /// e.g. `"/get?a=1"`.
    pub path_and_query: String,
    /// Header names are lowercase (as `http` stores them); values are lossy UTF-8.
    /// Order is the `HeaderMap` iteration order (repeated names are adjacent).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `"HTTP/1.0"`, `"HTTP/1.1"` or `"HTTP/2.0"`.
    pub version: String,
}

impl SeenRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Shared state between the server thread and the `TestServer` handle.
pub(crate) struct State {
    pub(crate) addr: SocketAddr,
    pub(crate) requests_seen: AtomicUsize,
    pub(crate) connections_accepted: AtomicUsize,
    pub(crate) requests: Mutex<Vec<SeenRequest>>,
}

impl State {
    pub(crate) fn record(&self, req: SeenRequest) {
        let mut v = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        v.push(req);
        self.requests_seen.fetch_add(1, Ordering::SeqCst);
    }
}

pub struct TestServer {
    state: Arc<State>,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Binds 127.0.0.1:0 and starts serving on a dedicated thread.
    pub fn start() -> TestServer {
        let listener = StdTcpListener::bind("127.0.0.1:0").expect("test server: bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("test server: set_nonblocking");
        let addr = listener.local_addr().expect("test server: local_addr");
        let state = Arc::new(State {
            addr,
            requests_seen: AtomicUsize::new(0),
            connections_accepted: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let (tx, rx) = watch::channel(false);
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("test-server-{}", addr.port()))
            .spawn(move || run_server(listener, st, rx))
            .expect("test server: spawn thread");
        TestServer {
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.state.addr
    }

    /// `http://127.0.0.1:PORT` + `path` (a leading `/` is added if missing).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("http://{}{}", self.state.addr, path)
        } else {
            format!("http://{}/{}", self.state.addr, path)
        }
    }

    /// Number of HTTP requests that reached the router (any path) since start
    /// or the last `reset_counters()`.
    pub fn requests_seen(&self) -> usize {
        self.state.requests_seen.load(Ordering::SeqCst)
    }

    /// Number of TCP connections accepted since start or the last `reset_counters()`.
    pub fn connections_accepted(&self) -> usize {
        self.state.connections_accepted.load(Ordering::SeqCst)
    }

    /// Resets both counters and clears the recorded request list.
    pub fn reset_counters(&self) {
        let mut v = self
            .state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        v.clear();
        self.state.requests_seen.store(0, Ordering::SeqCst);
        self.state.connections_accepted.store(0, Ordering::SeqCst);
    }

    /// The most recent request that reached the router.
    pub fn last_request(&self) -> Option<SeenRequest> {
        let v = self
            .state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        v.last().cloned()
    }

    /// All recorded requests, in arrival order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        let v = self
            .state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        v.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run_server(listener: StdTcpListener, state: Arc<State>, mut shutdown: watch::Receiver<bool>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("test-server-worker")
        .build()
        .expect("test server: build runtime");
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::from_std(listener).expect("test server: tokio listener");
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                accepted = listener.accept() => {
                    match accepted {
                        Ok((stream, peer)) => {
                            state.connections_accepted.fetch_add(1, Ordering::SeqCst);
                            let _ = stream.set_nodelay(true);
                            tokio::spawn(serve_conn(stream, peer, state.clone()));
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            }
        }
    });
    // Dropping the runtime cancels every connection task, closing their sockets.
    rt.shutdown_timeout(Duration::from_secs(1));
}

async fn serve_conn(stream: tokio::net::TcpStream, peer: SocketAddr, state: Arc<State>) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(routes::handle(state, req, peer).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let _ = builder
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// For every backend this build has, a module (`hyper`, `reqwest`, `curl`, `ureq`) with an
/// `async_surface` and a `blocking_surface` module, each holding one `#[test]` per name; a test's
/// body is `$run!(name, BackendKind, Surface)`. Test names read `hyper::async_surface::name`.
#[allow(unused_macros)]
macro_rules! per_backend_tests {
    ($run:ident; $($name:ident),* $(,)?) => {
        $crate::support::per_backend_tests!(@backend hyper, "hyper", Hyper, $run; $($name),*);
        $crate::support::per_backend_tests!(@backend reqwest, "reqwest", Reqwest, $run; $($name),*);
        $crate::support::per_backend_tests!(@backend curl, "curl", Curl, $run; $($name),*);
        $crate::support::per_backend_tests!(@backend ureq, "ureq", Ureq, $run; $($name),*);
    };
    (@backend $module:ident, $feature:literal, $kind:ident, $run:ident; $($name:ident),*) => {
        #[cfg(feature = $feature)]
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::support::per_backend_tests!(@surface async_surface, $kind, Async, $run; $($name),*);
            $crate::support::per_backend_tests!(@surface blocking_surface, $kind, Blocking, $run; $($name),*);
        }
    };
    (@surface $module:ident, $kind:ident, $surface:ident, $run:ident; $($name:ident),*) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    $run!(
                        $name,
                        ::httpfleet::BackendKind::$kind,
                        crate::support::harness::Surface::$surface
                    );
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use per_backend_tests;
