//! Fault-injection HTTP/1.1 server for the "every fault × every backend" tests.
//!
//! `let srv = support::fault::FaultServer::start(Fault::HeadersThenStall);` then point a client
//! at `srv.url("/x")`. Like [`TestServer`](super::TestServer) it runs on its own OS thread with
//! its own tokio runtime (current-thread: fault servers are many and tiny), binds 127.0.0.1:0,
//! and dropping it stops everything at once, stalled connections included: every connection
//! task races its handler against a shutdown watch channel.
//!
//! The server speaks raw HTTP/1.1 over plain TCP (`tokio::net`), or over TLS (tokio-rustls,
//! ring) for the TLS faults. Requests are read head first (up to the blank line, at most
//! 64 KiB), then the body (`Content-Length` bytes, or a chunked body), so a client's write side
//! never blocks on an unread request.
//!
//! Counters (all `SeqCst`, readable while the server runs):
//! - `connections()`: TCP connections accepted;
//! - `requests()`: request heads fully read;
//! - `closed_by_peer()`: connections on which the server saw EOF or an error from the client
//!   (a read returning 0 or failing, a write failing, a TLS handshake aborted by the client)
//!   before the server itself decided to close;
//! - `open_connections()`: accepted and not yet closed by the server;
//! - `methods()`: the method of every request head read, in order.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener as StdTcpListener, TcpStream as StdTcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::rustls;

/// What the server does wrong. Every variant is served on 127.0.0.1 (`url()` says
/// `https://localhost:PORT` for the TLS ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Nothing listens on the port: a port taken from a listener that was then dropped.
    /// (Another test could in theory bind the same port later; Linux picks ephemeral ports at
    /// random, so this is unlikely.)
    Refused,
    /// A listener whose accept queue is full, so the kernel drops every new SYN and the
    /// client's `connect()` hangs (SYN retransmits until the client's connect timeout, or
    /// about two minutes). Listens with backlog 1, never accepts, and `start()` fills the queue
    /// with its own connections first, until one probe connect hangs. `connections()` stays 0.
    ConnectBlackhole,
    /// Accept, read the request, never write (the socket stays open).
    AcceptNeverAnswer,
    /// `HTTP/1.1 200 OK`, `Content-Length: 100`, 10 body bytes, then silence forever.
    HeadersThenStall,
    /// Headers with `Content-Length: total`, then one byte (`b'x'`) every `interval_ms`
    /// (the first right after the headers). Keep-alive once the body is complete.
    DripBody { total: usize, interval_ms: u64 },
    /// `HTTP/1.1 200 OK\r\nContent-Le`, ~100 ms later a TCP RST (`SO_LINGER` 0 and close).
    ResetDuringHeaders,
    /// Full headers with `Content-Length: 1000`, 100 bytes, ~100 ms later a TCP RST.
    ResetDuringBody,
    /// Full headers with `Content-Length: 1000`, 100 bytes, then a clean FIN.
    CloseBeforeContentLength,
    /// `HTTP/1.1 abc Nope\r\n\r\n`, then a clean FIN.
    MalformedStatusLine,
    /// `Transfer-Encoding: chunked` with body `zz\r\nhello\r\n0\r\n\r\n` (an invalid chunk
    /// size), then a clean FIN.
    MalformedChunked,
    /// A 200 whose header block (status line to blank line inclusive) is exactly `bytes` long
    /// (at least ~100): `X-Pad-N` headers of 1 KiB per line, then body `ok`. Keep-alive.
    HugeHeaders { bytes: usize },
    /// Every request: `302 Found`, `Location: /loop` (relative), `Content-Length: 0`.
    /// Keep-alive.
    RedirectLoop,
    /// `302 Found`, `Location: http://127.0.0.1:<closed port>/` (a port nothing listens on).
    /// Keep-alive.
    RedirectToClosedPort,
    /// 200, `Content-Encoding: <coding>` (`gzip`, `br` or `zstd`), `Content-Type:
    /// application/octet-stream`, body = `decoded` zero bytes in that coding (one gzip member,
    /// brotli stream or zstd frame), `times` over (gzip members and zstd frames follow one
    /// another; brotli takes `times: 1`), `Content-Length` set. Keep-alive. The encoded body is
    /// built once per coding and size per test process (cached).
    Bomb {
        coding: &'static str,
        decoded: usize,
        times: usize,
    },
    /// Accept TCP, read the ClientHello record, never answer.
    TlsHandshakeStall,
    /// Real TLS with a certificate for `wrong.example` only (issued by [`CA_PEM`], which no
    /// client trusts by default; trust it with `FaultServer::ca_file()` to isolate the name
    /// mismatch). A client that accepts it gets the `Ok` behaviour (200 `ok`, keep-alive).
    TlsWrongHost,
    /// Connection #1: the first request gets 200 `first` (`Content-Length: 5`, no
    /// `Connection: close`), then the server closes it (FIN) ~50 ms later without a word and
    /// without reading anything more. Every later connection: 200 `fresh` to every request,
    /// keep-alive.
    StaleKeepAlive,
    /// A 200 declaring `Content-Length: declared`, then 10 body bytes, 20 ms later 10 more, and
    /// a clean FIN: a client that reserves what the server declares asks for `declared` bytes
    /// up front.
    DeclaredLength { declared: u64 },
    /// A 200 whose `Content-Length` is `18446744073709551616` (one past `u64::MAX`), body `ok`,
    /// then a clean FIN.
    ContentLengthPastU64,
    /// A chunked 200 with body `hello`, its last chunk followed by the trailer line `line` (and
    /// the blank line), then a clean FIN.
    Trailer { line: &'static str },
    /// Every connection: its first request gets 200 `ok` (keep-alive); its second is read whole,
    /// body included, then the connection is reset without an answer. A client that sends the
    /// second request again, on a new connection, gets 200 `ok` there.
    ResetAfterSecondRequest,
    /// A normal 200 `ok` keep-alive server (control).
    Ok,
}

impl Fault {
    /// One of each fault, with parameters small enough for a test matrix.
    pub fn all() -> Vec<Fault> {
        vec![
            Fault::Refused,
            Fault::ConnectBlackhole,
            Fault::AcceptNeverAnswer,
            Fault::HeadersThenStall,
            Fault::DripBody {
                total: 20,
                interval_ms: 100,
            },
            Fault::ResetDuringHeaders,
            Fault::ResetDuringBody,
            Fault::CloseBeforeContentLength,
            Fault::MalformedStatusLine,
            Fault::MalformedChunked,
            Fault::HugeHeaders { bytes: 256 * 1024 },
            Fault::RedirectLoop,
            Fault::RedirectToClosedPort,
            // Over the default `max_response_bytes` (64 MiB).
            Fault::Bomb {
                coding: "gzip",
                decoded: 80 * 1024 * 1024,
                times: 1,
            },
            Fault::TlsHandshakeStall,
            Fault::TlsWrongHost,
            Fault::StaleKeepAlive,
            Fault::Ok,
        ]
    }

    /// Whether `url()` is `https://localhost:PORT`.
    pub fn is_tls(&self) -> bool {
        matches!(self, Fault::TlsHandshakeStall | Fault::TlsWrongHost)
    }
}

/// The CA that issued the `wrong.example` certificate of [`Fault::TlsWrongHost`]
/// (ECDSA P-256, valid 2000-01-01 to 2099-12-31).
pub const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBeDCCAR6gAwIBAgICEAAwCgYIKoZIzj0EAwIwIjEgMB4GA1UEAwwXaHR0cGZs
ZWV0IGZhdWx0LXRlc3QgQ0EwIBcNMDAwMTAxMDAwMDAwWhgPMjA5OTEyMzEyMzU5
NTlaMCIxIDAeBgNVBAMMF2h0dHBmbGVldCBmYXVsdC10ZXN0IENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAE7FLT3MKLGHoC/eMvjiNF/UajBY6ZYq/ODG4Yx6XH
D6b4voNyHHFFdzN3/knhZW+7m8KuWDV5TBvzCc0KbP0rY6NCMEAwDwYDVR0TAQH/
BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFLRwmLXTRK1lsakxausm
SVM5e5bOMAoGCCqGSM49BAMCA0gAMEUCIBU0cH8pjqNqcyRomHbMoobNM8e4r4we
7CA9miAjnbR/AiEAymraXnIrBSI9MnGaoiZCRxa5+5v4ZIp+Rbe/JdaPHoQ=
-----END CERTIFICATE-----
";

/// Leaf certificate: CN and only SAN `DNS:wrong.example`, CA:FALSE, EKU serverAuth, issued by
/// [`CA_PEM`], valid 2000-01-01 to 2099-12-31. Made once with `openssl ca` (test-only keys).
const LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBvjCCAWOgAwIBAgICEAEwCgYIKoZIzj0EAwIwIjEgMB4GA1UEAwwXaHR0cGZs
ZWV0IGZhdWx0LXRlc3QgQ0EwIBcNMDAwMTAxMDAwMDAwWhgPMjA5OTEyMzEyMzU5
NTlaMBgxFjAUBgNVBAMMDXdyb25nLmV4YW1wbGUwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAS0OcOnx5e+1MIdwxPDVxjiU13nbmmwXIK0mGwoavXXVt672/EIQ+UL
FpW/RfkjYBAUcR/pw97pfJVKzx4XnCj/o4GQMIGNMAwGA1UdEwEB/wQCMAAwDgYD
VR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMBgGA1UdEQQRMA+CDXdy
b25nLmV4YW1wbGUwHQYDVR0OBBYEFHRS+CsCDhYISbd5zTn1txdHoPY3MB8GA1Ud
IwQYMBaAFLRwmLXTRK1lsakxausmSVM5e5bOMAoGCCqGSM49BAMCA0kAMEYCIQCH
ycGxqfkqt6ABKMUX6i1inYnsNe/gUeQclJsJQFGkLAIhANrWZzZxtEGJxB25usif
KssB0mLgDkOTsNfjtSpAn1tB
-----END CERTIFICATE-----
";

/// PKCS#8 key of [`LEAF_PEM`].
const LEAF_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgC/mD8HvX6m0xWzlb
kZ7Rj72RQVjCDKGsb5OxNTPUghahRANCAAS0OcOnx5e+1MIdwxPDVxjiU13nbmmw
XIK0mGwoavXXVt672/EIQ+ULFpW/RfkjYBAUcR/pw97pfJVKzx4XnCj/
-----END PRIVATE KEY-----
";

const MAX_HEAD: usize = 64 * 1024;
/// How long a server-initiated reset waits after its last write, so the client has read it.
const BEFORE_RESET: Duration = Duration::from_millis(100);
/// How long `StaleKeepAlive` keeps connection #1 open after answering.
const STALE_AFTER: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Counters {
    connections: AtomicUsize,
    requests: AtomicUsize,
    closed_by_peer: AtomicUsize,
    open: AtomicUsize,
    methods: std::sync::Mutex<Vec<String>>,
}

/// A running fault server; dropping it stops it.
pub struct FaultServer {
    fault: Fault,
    addr: SocketAddr,
    counters: Arc<Counters>,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
    /// `ConnectBlackhole`: our own connections sitting in the listener's accept queue.
    fillers: Vec<StdTcpStream>,
    ca_file: Option<PathBuf>,
}

impl FaultServer {
    /// Binds 127.0.0.1:0 and serves `fault` on a dedicated thread.
    pub fn start(fault: Fault) -> FaultServer {
        let counters = Arc::new(Counters::default());
        if fault == Fault::Refused {
            return FaultServer {
                fault,
                addr: closed_addr(),
                counters,
                shutdown: None,
                thread: None,
                fillers: Vec::new(),
                ca_file: None,
            };
        }
        let shared = Arc::new(Shared::new(&fault, counters.clone()));
        let (tx, rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let f = fault.clone();
        let thread = std::thread::Builder::new()
            .name("fault-server".into())
            .spawn(move || run(f, shared, rx, ready_tx))
            .expect("fault server: spawn thread");
        let addr = ready_rx
            .recv()
            .expect("fault server: thread died before binding");
        let mut srv = FaultServer {
            fault,
            addr,
            counters,
            shutdown: Some(tx),
            thread: Some(thread),
            fillers: Vec::new(),
            ca_file: None,
        };
        if srv.fault == Fault::ConnectBlackhole {
            srv.fillers = fill_accept_queue(addr);
        }
        if srv.fault == Fault::TlsWrongHost {
            let path = std::env::temp_dir().join(format!(
                "httpfleet-fault-ca-{}-{}.pem",
                std::process::id(),
                addr.port()
            ));
            std::fs::File::create(&path)
                .and_then(|mut f| f.write_all(CA_PEM.as_bytes()))
                .expect("fault server: write CA file");
            srv.ca_file = Some(path);
        }
        srv
    }

    pub fn fault(&self) -> &Fault {
        &self.fault
    }

    /// `http://127.0.0.1:PORT` + `path`, or `https://localhost:PORT` + `path` for the TLS
    /// faults (a leading `/` is added if missing).
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        if self.fault.is_tls() {
            format!("https://localhost:{}{slash}{path}", self.addr.port())
        } else {
            format!("http://{}{slash}{path}", self.addr)
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A PEM file holding [`CA_PEM`] (for `Config::tls_ca_file`), `TlsWrongHost` only; removed
    /// when the server is dropped.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// HTTP request heads fully read.
    pub fn requests(&self) -> usize {
        self.counters.requests.load(Ordering::SeqCst)
    }

    /// The method of every request head read, in order.
    pub fn methods(&self) -> Vec<String> {
        self.counters
            .methods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Connections on which the server saw EOF or an error from the client first.
    pub fn closed_by_peer(&self) -> usize {
        self.counters.closed_by_peer.load(Ordering::SeqCst)
    }

    /// Connections accepted and not yet closed by the server.
    pub fn open_connections(&self) -> usize {
        self.counters.open.load(Ordering::SeqCst)
    }

    /// Polls `cond` every 10 ms until it holds or `timeout` passes; returns whether it held.
    /// For counters that move a little after the client is done (e.g. `closed_by_peer`).
    pub fn wait_for(&self, timeout: Duration, cond: impl Fn(&FaultServer) -> bool) -> bool {
        let end = std::time::Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if std::time::Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.fillers.clear();
        if let Some(p) = self.ca_file.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// An address on which nothing listens.
fn closed_addr() -> SocketAddr {
    let l = StdTcpListener::bind("127.0.0.1:0").expect("fault server: bind 127.0.0.1:0");
    l.local_addr().expect("fault server: local_addr")
}

/// Opens connections to the never-accepting listener at `addr` until one hangs (its SYN dropped
/// because the accept queue is full), and returns the ones that got in.
fn fill_accept_queue(addr: SocketAddr) -> Vec<StdTcpStream> {
    let mut fillers = Vec::new();
    for _ in 0..32 {
        match StdTcpStream::connect_timeout(&addr, Duration::from_millis(150)) {
            Ok(s) => fillers.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return fillers,
            Err(e) => panic!("fault server: filling the accept queue of {addr}: {e}"),
        }
    }
    panic!(
        "fault server: {} connections to {addr} all got in: the kernel does not drop SYNs on a \
         full accept queue here (tcp_abort_on_overflow / syncookies?)",
        fillers.len()
    );
}

/// Per-server data the connection tasks share.
struct Shared {
    counters: Arc<Counters>,
    /// `Bomb` body.
    encoded: Arc<Vec<u8>>,
    /// `RedirectToClosedPort` target port.
    closed_port: u16,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Shared {
    fn new(fault: &Fault, counters: Arc<Counters>) -> Shared {
        let encoded = match fault {
            Fault::Bomb {
                coding,
                decoded,
                times,
            } => Arc::new(zeros_in(coding, *decoded).repeat(*times)),
            _ => Arc::default(),
        };
        let closed_port = match fault {
            Fault::RedirectToClosedPort => closed_addr().port(),
            _ => 0,
        };
        let tls = match fault {
            Fault::TlsWrongHost => Some(tls_acceptor()),
            _ => None,
        };
        Shared {
            counters,
            encoded,
            closed_port,
            tls,
        }
    }
}

/// Gzip of `decoded` zero bytes, built once per size per test process (Compression::best runs
/// at ~60 MiB/s decoded in a debug build).
/// `decoded` zero bytes in `coding` (`gzip`, `br`, `zstd`), best compression, cached.
fn zeros_in(coding: &'static str, decoded: usize) -> Arc<Vec<u8>> {
    use flate2::{Compression, write::GzEncoder};
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Cache = HashMap<(&'static str, usize), Arc<Vec<u8>>>;
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache
        .entry((coding, decoded))
        .or_insert_with(|| {
            let mut out = Vec::new();
            {
                let mut enc: Box<dyn std::io::Write + '_> = match coding {
                    "gzip" => Box::new(GzEncoder::new(&mut out, Compression::best())),
                    "br" => Box::new(brotli::CompressorWriter::new(&mut out, 1 << 16, 5, 22)),
                    "zstd" => Box::new(zstd::Encoder::new(&mut out, 19).unwrap().auto_finish()),
                    other => panic!("no encoder for {other}"),
                };
                let chunk = vec![0u8; 1 << 20];
                let mut left = decoded;
                while left > 0 {
                    let n = left.min(chunk.len());
                    enc.write_all(&chunk[..n]).expect("encode");
                    left -= n;
                }
                enc.flush().expect("encode");
            }
            Arc::new(out)
        })
        .clone()
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = vec![CertificateDer::from_pem_slice(LEAF_PEM.as_bytes()).expect("leaf cert")];
    let key = PrivateKeyDer::from_pem_slice(LEAF_KEY_PEM.as_bytes()).expect("leaf key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server cert");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn run(
    fault: Fault,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    ready: std::sync::mpsc::SyncSender<SocketAddr>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("fault server: build runtime");
    rt.block_on(async move {
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        if fault == Fault::ConnectBlackhole {
            let sock = tokio::net::TcpSocket::new_v4().expect("fault server: socket");
            sock.bind(local).expect("fault server: bind");
            let listener = sock.listen(1).expect("fault server: listen");
            let _ = ready.send(listener.local_addr().expect("fault server: local_addr"));
            // Never accept; hold the listener (and its full queue) until shutdown.
            wait_shutdown(&mut shutdown).await;
            drop(listener);
            return;
        }
        let listener = TcpListener::bind(local).await.expect("fault server: bind");
        let _ = ready.send(listener.local_addr().expect("fault server: local_addr"));
        let fault = Arc::new(fault);
        loop {
            tokio::select! {
                _ = wait_shutdown(&mut shutdown) => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    };
                    let c = &shared.counters;
                    let index = c.connections.fetch_add(1, Ordering::SeqCst) + 1;
                    c.open.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.set_nodelay(true);
                    let (fault, shared, mut rx) = (fault.clone(), shared.clone(), shutdown.clone());
                    tokio::spawn(async move {
                        let _open = OpenGuard(shared.counters.clone());
                        tokio::select! {
                            _ = wait_shutdown(&mut rx) => {}
                            _ = serve(&fault, stream, index, &shared) => {}
                        }
                    });
                }
            }
        }
    });
    // Dropping the runtime drops every task that is still alive, closing its socket.
    rt.shutdown_timeout(Duration::from_secs(1));
}

async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Counts a connection as open until its task ends (or is dropped).
struct OpenGuard(Arc<Counters>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The request facts the faults care about.
struct Request {
    head_request: bool,
    keep_alive: bool,
}

/// One connection: the stream, bytes read past the last request, and the counters.
struct Conn<S> {
    s: S,
    buf: Vec<u8>,
    counters: Arc<Counters>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(s: S, counters: Arc<Counters>) -> Self {
        Conn {
            s,
            buf: Vec::new(),
            counters,
        }
    }

    fn peer_closed(&self) {
        self.counters.closed_by_peer.fetch_add(1, Ordering::SeqCst);
    }

    /// Reads more bytes into `buf`; `false` (counted as closed by peer) on EOF or error.
    async fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 16 * 1024];
        match self.s.read(&mut tmp).await {
            Ok(0) | Err(_) => {
                self.peer_closed();
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// Reads one request (head, then its body). `None`: the peer closed (counted) or the
    /// head was over 64 KiB or unparsable (not counted).
    async fn read_request(&mut self) -> Option<Request> {
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD || !self.fill().await {
                return None;
            }
        };
        if end > MAX_HEAD {
            return None;
        }
        let head: Vec<u8> = self.buf.drain(..end).collect();
        let head = String::from_utf8_lossy(&head);
        self.counters.requests.fetch_add(1, Ordering::SeqCst);
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or("");
        self.counters
            .methods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(method.to_owned());
        let version = parts.nth(1).unwrap_or("HTTP/1.1");
        let mut content_length = 0usize;
        let mut chunked = false;
        let mut connection = String::new();
        for line in lines {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.parse().ok()?;
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.to_ascii_lowercase().contains("chunked");
            } else if k.eq_ignore_ascii_case("connection") {
                connection = v.to_ascii_lowercase();
            }
        }
        if chunked {
            self.read_chunked().await?;
        } else {
            while self.buf.len() < content_length {
                if !self.fill().await {
                    return None;
                }
            }
            self.buf.drain(..content_length);
        }
        let keep_alive = if version == "HTTP/1.0" {
            connection.contains("keep-alive")
        } else {
            !connection.contains("close")
        };
        Some(Request {
            head_request: method == "HEAD",
            keep_alive,
        })
    }

    async fn read_line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).collect();
                return Some(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            if self.buf.len() > MAX_HEAD || !self.fill().await {
                return None;
            }
        }
    }

    async fn read_chunked(&mut self) -> Option<()> {
        loop {
            let line = self.read_line().await?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16).ok()?;
            if size == 0 {
                // Trailers up to the blank line.
                while !self.read_line().await?.is_empty() {}
                return Some(());
            }
            while self.buf.len() < size + 2 {
                if !self.fill().await {
                    return None;
                }
            }
            self.buf.drain(..size + 2);
        }
    }

    /// Writes and flushes; `false` (counted as closed by peer) on error.
    async fn send(&mut self, bytes: &[u8]) -> bool {
        let ok = self.s.write_all(bytes).await.is_ok() && self.s.flush().await.is_ok();
        if !ok {
            self.peer_closed();
        }
        ok
    }

    /// Never writes again; reads (and drops) whatever comes until the peer closes.
    async fn stall(&mut self) {
        self.buf.clear();
        while self.fill().await {
            self.buf.clear();
        }
    }

    /// Waits `d` while watching the socket; `false` if the peer closed meanwhile.
    async fn idle(&mut self, d: Duration) -> bool {
        let sleep = tokio::time::sleep(d);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return true,
                ok = self.fill() => if !ok { return false },
            }
        }
    }

    /// Clean close: FIN, then drain the client's side (briefly) so no unread byte turns the
    /// close into a RST.
    async fn close_gracefully(mut self) {
        let _ = self.s.shutdown().await;
        let mut tmp = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Ok(n) = self.s.read(&mut tmp).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }

    /// Answers every request with `respond(&request)` until the peer closes or asks to.
    async fn keep_alive<'b>(&mut self, respond: impl Fn(&Request) -> (String, &'b [u8])) {
        while let Some(req) = self.read_request().await {
            let (head, body) = respond(&req);
            let mut out = head.into_bytes();
            if !req.head_request {
                out.extend_from_slice(body);
            }
            if !self.send(&out).await || !req.keep_alive {
                return;
            }
        }
    }
}

impl Conn<TcpStream> {
    /// Waits a little (so the client has read what was sent), then closes with a RST.
    async fn reset(mut self) {
        if !self.idle(BEFORE_RESET).await {
            return;
        }
        let _ = self.s.set_zero_linger();
        drop(self);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn ok_head(len: usize) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: text/plain\r\n\r\n")
}

/// A 200 head of exactly `total` bytes (when `total` is above the ~60-byte minimum), padded
/// with `X-Pad-N: aaa…` header lines of 1 KiB each (the last ones shorter).
fn huge_head(total: usize) -> String {
    let mut head =
        String::from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n");
    let mut left = total.saturating_sub(head.len() + 2);
    let mut n = 0;
    // A line needs `X-Pad-N: ` (at most 14 bytes), one value byte and CRLF.
    while left >= 17 {
        let len = if left <= 1024 {
            left
        } else if left - 1024 < 32 {
            left - 32
        } else {
            1024
        };
        let name = format!("X-Pad-{n}: ");
        head.push_str(&name);
        head.push_str(&"a".repeat(len - name.len() - 2));
        head.push_str("\r\n");
        left -= len;
        n += 1;
    }
    head.push_str("\r\n");
    head
}

async fn serve(fault: &Fault, stream: TcpStream, index: usize, shared: &Shared) {
    let counters = shared.counters.clone();
    let mut c = Conn::new(stream, counters.clone());
    match fault {
        Fault::Refused | Fault::ConnectBlackhole => {}
        Fault::AcceptNeverAnswer => {
            if c.read_request().await.is_some() {
                c.stall().await;
            }
        }
        Fault::HeadersThenStall => {
            if c.read_request().await.is_some()
                && c.send(format!("{}0123456789", ok_head(100)).as_bytes())
                    .await
            {
                c.stall().await;
            }
        }
        Fault::DripBody { total, interval_ms } => {
            while let Some(req) = c.read_request().await {
                if !c.send(ok_head(*total).as_bytes()).await {
                    return;
                }
                if !req.head_request {
                    for i in 0..*total {
                        if i > 0 && !c.idle(Duration::from_millis(*interval_ms)).await {
                            return;
                        }
                        if !c.send(b"x").await {
                            return;
                        }
                    }
                }
                if !req.keep_alive {
                    return;
                }
            }
        }
        Fault::ResetDuringHeaders => {
            if c.read_request().await.is_some() && c.send(b"HTTP/1.1 200 OK\r\nContent-Le").await {
                c.reset().await;
            }
        }
        Fault::ResetDuringBody => {
            if c.read_request().await.is_some()
                && c.send(format!("{}{}", ok_head(1000), "b".repeat(100)).as_bytes())
                    .await
            {
                c.reset().await;
            }
        }
        Fault::CloseBeforeContentLength => {
            if c.read_request().await.is_some()
                && c.send(format!("{}{}", ok_head(1000), "b".repeat(100)).as_bytes())
                    .await
            {
                c.close_gracefully().await;
            }
        }
        Fault::MalformedStatusLine => {
            if c.read_request().await.is_some() && c.send(b"HTTP/1.1 abc Nope\r\n\r\n").await {
                c.close_gracefully().await;
            }
        }
        Fault::MalformedChunked => {
            let resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
            if c.read_request().await.is_some() && c.send(resp.as_bytes()).await {
                c.close_gracefully().await;
            }
        }
        Fault::HugeHeaders { bytes } => {
            let head = huge_head(*bytes);
            c.keep_alive(|_| (head.clone(), b"ok")).await;
        }
        Fault::RedirectLoop => {
            c.keep_alive(|_| {
                let head = "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n";
                (head.to_string(), b"")
            })
            .await;
        }
        Fault::RedirectToClosedPort => {
            let head = format!(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{}/\r\nContent-Length: 0\r\n\r\n",
                shared.closed_port
            );
            c.keep_alive(|_| (head.clone(), b"")).await;
        }
        Fault::Bomb { coding, .. } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Encoding: {coding}\r\nContent-Type: application/octet-stream\r\n\r\n",
                shared.encoded.len()
            );
            c.keep_alive(|_| (head.clone(), &shared.encoded[..])).await;
        }
        Fault::TlsHandshakeStall => {
            // A TLS record: 5-byte header (type, version, length), then `length` bytes.
            while c.buf.len() < 5
                || c.buf.len() < 5 + u16::from_be_bytes([c.buf[3], c.buf[4]]) as usize
            {
                if !c.fill().await {
                    return;
                }
            }
            c.stall().await;
        }
        Fault::TlsWrongHost => {
            let acceptor = shared.tls.clone().expect("TLS acceptor");
            let stream = c.s;
            match acceptor.accept(stream).await {
                Ok(tls) => {
                    let mut c = Conn::new(tls, counters);
                    c.keep_alive(|_| (ok_head(2), b"ok")).await;
                }
                // The client gave up on the handshake (alert, EOF or reset).
                Err(_) => {
                    counters.closed_by_peer.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        Fault::StaleKeepAlive => {
            if index == 1 {
                if c.read_request().await.is_some()
                    && c.send(format!("{}first", ok_head(5)).as_bytes()).await
                {
                    // Close without a word; whatever the client sends meanwhile stays unread.
                    tokio::time::sleep(STALE_AFTER).await;
                }
            } else {
                c.keep_alive(|_| (ok_head(5), b"fresh")).await;
            }
        }
        Fault::DeclaredLength { declared } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\nContent-Type: application/octet-stream\r\n\r\n0123456789"
            );
            if c.read_request().await.is_some()
                && c.send(head.as_bytes()).await
                && c.idle(Duration::from_millis(20)).await
                && c.send(b"0123456789").await
            {
                c.close_gracefully().await;
            }
        }
        Fault::ContentLengthPastU64 => {
            let resp = "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\nContent-Type: text/plain\r\n\r\nok";
            if c.read_request().await.is_some() && c.send(resp.as_bytes()).await {
                c.close_gracefully().await;
            }
        }
        Fault::Trailer { line } => {
            let resp = format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n{line}\r\n\r\n"
            );
            if c.read_request().await.is_some() && c.send(resp.as_bytes()).await {
                c.close_gracefully().await;
            }
        }
        Fault::ResetAfterSecondRequest => {
            let Some(first) = c.read_request().await else {
                return;
            };
            let mut out = ok_head(2).into_bytes();
            if !first.head_request {
                out.extend_from_slice(b"ok");
            }
            if !c.send(&out).await || !first.keep_alive {
                return;
            }
            if c.read_request().await.is_some() {
                c.reset().await;
            }
        }
        Fault::Ok => {
            c.keep_alive(|_| (ok_head(2), b"ok")).await;
        }
    }
}
