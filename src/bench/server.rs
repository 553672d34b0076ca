//! A lean loopback HTTP/1.1 server for benchmarks: fixed routes, no recording, TCP_NODELAY.
//!
//! Routes: `/small` (13 bytes), `/json1k` (1 KiB JSON), `/bytes1m` (1 MiB), `POST /echo-len`
//! (answers the request body's length), `/exchange` (a realistic exchange round trip: 5 ms, and
//! one answer in 50 — 2% — a further 50 ms late), `/stream/N` (N bytes with their
//! `Content-Length`, sent 256 KiB at a time from one shared buffer), anything else 404.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A running benchmark server. Dropping it stops the server.
#[derive(Debug)]
pub struct BenchServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

/// The 13-byte body of `/small`.
pub const SMALL: &[u8] = b"Hello, World!";

fn json_1k() -> Bytes {
    let mut s = String::from("[");
    let mut i = 0;
    while s.len() < 1000 {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"t\":{},\"p\":\"{}.{:02}\"}}",
            1_500_000_000_000u64 + i,
            4000 + i,
            i % 100
        ));
        i += 1;
    }
    s.push(']');
    s.truncate(1023);
    s.push(']');
    Bytes::from(s)
}

impl BenchServer {
    /// Starts the server on 127.0.0.1 with its own runtime (`workers` threads).
    pub fn start(workers: usize) -> std::io::Result<BenchServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("bench-server")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let json = json_1k();
        let big = Bytes::from(vec![b'x'; 1 << 20]);
        let counter = connections.clone();
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = requests.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let (json, big, seen) = (json.clone(), big.clone(), seen.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (json, big) = (json.clone(), big.clone());
                        let n = seen.fetch_add(1, Ordering::Relaxed);
                        async move { Ok::<_, Infallible>(route(req, json, big, n).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(BenchServer {
            addr,
            connections,
            requests,
            _runtime: runtime,
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// A body of `left` bytes, handed out as clones of one buffer.
pub(crate) struct Repeat {
    piece: Bytes,
    left: u64,
}

impl hyper::body::Body for Repeat {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(self.piece.len() as u64);
        self.left -= n;
        let piece = self.piece.slice(..n as usize);
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(piece))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}

/// The body of a route: whole, or repeated (`/stream/N`).
type RouteBody = http_body_util::Either<Full<Bytes>, Repeat>;

async fn route(req: Request<Incoming>, json: Bytes, big: Bytes, n: usize) -> Response<RouteBody> {
    if let Some(len) = req.uri().path().strip_prefix("/stream/") {
        let left = len.parse().unwrap_or(0);
        let piece = big.slice(..256 * 1024);
        return Response::new(http_body_util::Either::Right(Repeat { piece, left }));
    }
    let (status, body) = match req.uri().path() {
        "/exchange" => {
            let slow = n % 50 == 49;
            let wait = if slow { 55 } else { 5 };
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            (200, Bytes::from_static(SMALL))
        }
        "/small" => (200, Bytes::from_static(SMALL)),
        "/json1k" => (200, json),
        "/bytes1m" => (200, big),
        "/echo-len" => {
            let n = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().len())
                .unwrap_or(0);
            (200, Bytes::from(n.to_string()))
        }
        _ => (404, Bytes::new()),
    };
    let mut resp = Response::new(http_body_util::Either::Left(Full::new(body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).expect("valid status");
    resp
}
