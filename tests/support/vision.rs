//! A fake data.binance.vision (hyper 1) for the market-data tests.
//!
//! `FakeVision::start()` binds 127.0.0.1:0 on its own thread and runtime. Files are added at
//! test time: `add_csv(path, csv)` zips the CSV (one entry named like the zip, `.csv`) and makes
//! its `.CHECKSUM` (`sha256sum` format: 64 hex digits, two spaces, the zip's name, a newline).
//! `GET /<path>` serves the zip, honouring `Range: bytes=a-b` / `bytes=a-` with 206 and
//! `Content-Range` (416 past the end); `GET /<path>.CHECKSUM` serves the checksum.
//!
//! Faults: `corrupt(path)` flips bytes inside the zip (the CHECKSUM stays the original's);
//! `drop_checksum(path)` makes the CHECKSUM 404; `remove(path)` makes the zip 404;
//! `break_at(path, pos, times)` sends the next `times` responses that cover byte `pos` only up to
//! it, then closes the connection (the declared `Content-Length` is never reached);
//! `ignore_range(path)` answers 200 with the whole file whatever the `Range`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future as _;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

/// A zip holding one entry, `entry_name`, deflated.
pub fn zip_one(entry_name: &str, content: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    w.start_file(entry_name, options).expect("zip: start");
    w.write_all(content).expect("zip: write");
    w.finish().expect("zip: finish").into_inner()
}

/// A zip holding one entry, `entry_name`, stored (no compression: cheap to make).
pub fn zip_stored(entry_name: &str, content: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(content.len() > u32::MAX as usize);
    w.start_file(entry_name, options).expect("zip: start");
    w.write_all(content).expect("zip: write");
    w.finish().expect("zip: finish").into_inner()
}

/// `sha256sum` output for `bytes` named `name`: hex, two spaces, name, newline.
pub fn checksum_text(bytes: &[u8], name: &str) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}  {name}\n")
}

impl Entry {
    /// `zip` served at `path`, with its CHECKSUM.
    fn new(path: &str, zip: Vec<u8>) -> Entry {
        let name = path.rsplit('/').next().unwrap_or(path);
        Entry {
            checksum: Some(checksum_text(&zip, name)),
            zip: zip.into(),
            missing: false,
            ignore_range: false,
            break_at: None,
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    zip: Bytes,
    checksum: Option<String>,
    missing: bool,
    ignore_range: bool,
    /// (absolute byte, remaining responses to break)
    break_at: Option<(u64, usize)>,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct VisionRequest {
    pub at: Instant,
    pub path: String,
    pub range: Option<String>,
    pub status: u16,
    /// True when the body was cut short on purpose.
    pub broken: bool,
}

impl VisionRequest {
    /// The first byte of `Range: bytes=N-...`.
    pub fn range_start(&self) -> Option<u64> {
        self.range
            .as_deref()?
            .strip_prefix("bytes=")?
            .split('-')
            .next()?
            .parse()
            .ok()
    }
}

#[derive(Default)]
struct VState {
    files: Mutex<HashMap<String, Entry>>,
    log: Mutex<Vec<VisionRequest>>,
    /// Makes the zip of a path not added (see [`FakeVision::generate`]).
    generator: Mutex<Option<Generator>>,
    /// Paths made by the generator, oldest first (the oldest are forgotten).
    generated: Mutex<std::collections::VecDeque<String>>,
}

type Generator = Arc<dyn Fn(&str) -> Option<Vec<u8>> + Send + Sync>;

/// Files made by the generator kept at once.
const GENERATED_KEPT: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct FakeVision {
    state: Arc<VState>,
    addr: SocketAddr,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeVision {
    pub fn start() -> FakeVision {
        let l = StdTcpListener::bind("127.0.0.1:0").expect("vision: bind");
        l.set_nonblocking(true).expect("vision: nonblocking");
        let addr = l.local_addr().expect("vision: addr");
        let state = Arc::new(VState::default());
        let (tx, rx) = watch::channel(false);
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("fake-vision".into())
            .spawn(move || run(l, st, rx))
            .expect("vision: spawn");
        FakeVision {
            state,
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `zip` at `path` (`data/spot/daily/...zip`, no leading `/`) with its CHECKSUM.
    pub fn add_zip(&self, path: &str, zip: Vec<u8>) {
        lock(&self.state.files).insert(path.to_owned(), Entry::new(path, zip));
    }

    /// Serves every path not added with the zip `make(path)` returns (404 for `None`), with
    /// its CHECKSUM; made when first asked, the last few kept.
    pub fn generate(&self, make: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static) {
        *lock(&self.state.generator) = Some(Arc::new(make));
    }

    /// Zips `csv` (entry `<name>.csv`) and serves it at `path` with its CHECKSUM.
    pub fn add_csv(&self, path: &str, csv: &[u8]) {
        let name = path.rsplit('/').next().expect("file name");
        let entry = name.trim_end_matches(".zip").to_owned() + ".csv";
        self.add_zip(path, zip_one(&entry, csv));
    }

    fn with(&self, path: &str, f: impl FnOnce(&mut Entry)) {
        let mut files = lock(&self.state.files);
        f(files
            .get_mut(path)
            .unwrap_or_else(|| panic!("vision: no file {path}")));
    }

    /// The zip's bytes as served.
    pub fn zip_bytes(&self, path: &str) -> Bytes {
        lock(&self.state.files)[path].zip.clone()
    }

    /// Flips bytes in the middle of the zip; the CHECKSUM stays the original's.
    pub fn corrupt(&self, path: &str) {
        self.with(path, |e| {
            let mut v = e.zip.to_vec();
            let mid = v.len() / 2;
            for b in &mut v[mid..mid + 8] {
                *b ^= 0x5a;
            }
            e.zip = v.into();
        });
    }

    pub fn drop_checksum(&self, path: &str) {
        self.with(path, |e| e.checksum = None);
    }

    pub fn set_checksum(&self, path: &str, text: &str) {
        self.with(path, |e| e.checksum = Some(text.to_owned()));
    }

    /// The zip (and its CHECKSUM) answer 404.
    pub fn remove(&self, path: &str) {
        self.with(path, |e| e.missing = true);
    }

    pub fn break_at(&self, path: &str, pos: u64, times: usize) {
        self.with(path, |e| e.break_at = Some((pos, times)));
    }

    pub fn ignore_range(&self, path: &str) {
        self.with(path, |e| e.ignore_range = true);
    }

    pub fn requests(&self) -> Vec<VisionRequest> {
        lock(&self.state.log).clone()
    }

    /// Requests for the zip at `path` (not its CHECKSUM).
    pub fn zip_requests(&self, path: &str) -> Vec<VisionRequest> {
        let p = format!("/{path}");
        self.requests()
            .into_iter()
            .filter(|r| r.path == p)
            .collect()
    }

    pub fn clear_log(&self) {
        lock(&self.state.log).clear();
    }
}

impl Drop for FakeVision {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(l: StdTcpListener, state: Arc<VState>, mut shutdown: watch::Receiver<bool>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("vision: runtime");
    rt.block_on(async move {
        let l = tokio::net::TcpListener::from_std(l).expect("vision: listener");
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                accepted = l.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(serve(stream, state.clone()));
                    }
                }
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}

async fn serve(stream: tokio::net::TcpStream, state: Arc<VState>) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(&state, &req)) }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A body that sends `data`, or its first bytes and then, once they have been flushed (a short
/// pause), fails, which makes hyper close the connection short of the declared length.
pub struct CutBody {
    data: Option<Bytes>,
    cut: bool,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    declared: u64,
}

impl CutBody {
    fn new(data: Bytes, cut: bool, declared: u64) -> Self {
        CutBody {
            data: Some(data),
            cut,
            pause: None,
            declared,
        }
    }
}

impl Body for CutBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        if let Some(b) = this.data.take() {
            if !b.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
        }
        if !this.cut {
            return Poll::Ready(None);
        }
        let pause = this
            .pause
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(30))));
        match pause.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                this.cut = false;
                Poll::Ready(Some(Err(std::io::Error::other("cut on purpose"))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.data.as_ref().is_none_or(|b| b.is_empty()) && !self.cut
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.declared)
    }
}

fn respond(status: u16, headers: &[(&str, String)], body: CutBody) -> hyper::Response<CutBody> {
    let mut b = hyper::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(body).expect("vision: response")
}

fn full(b: Bytes) -> CutBody {
    let declared = b.len() as u64;
    CutBody::new(b, false, declared)
}

fn handle(state: &VState, req: &hyper::Request<hyper::body::Incoming>) -> hyper::Response<CutBody> {
    let path = req.uri().path().to_owned();
    let range = req
        .headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let key = path.trim_start_matches('/');
    generate(state, key.strip_suffix(".CHECKSUM").unwrap_or(key));
    let mut broken = false;
    let resp = {
        let mut files = lock(&state.files);
        if let Some(base) = key.strip_suffix(".CHECKSUM") {
            match files.get(base) {
                Some(Entry {
                    checksum: Some(text),
                    missing: false,
                    ..
                }) => respond(
                    200,
                    &[("content-type", "text/plain".into())],
                    full(Bytes::from(text.clone())),
                ),
                _ => not_found(),
            }
        } else {
            match files.get_mut(key) {
                Some(e) if !e.missing => {
                    let len = e.zip.len() as u64;
                    let asked = match (&range, e.ignore_range) {
                        (Some(r), false) => parse_range(r, len),
                        _ => None,
                    };
                    let (status, a, b) = match asked {
                        Some(Ok((a, b))) => (206, a, b),
                        Some(Err(())) => {
                            let resp = respond(
                                416,
                                &[("content-range", format!("bytes */{len}"))],
                                full(Bytes::new()),
                            );
                            drop(files);
                            log(state, path, range, 416, false);
                            return resp;
                        }
                        None => (200, 0, len.saturating_sub(1)),
                    };
                    let declared = if len == 0 { 0 } else { b - a + 1 };
                    let mut body = if len == 0 {
                        Bytes::new()
                    } else {
                        e.zip.slice(a as usize..=b as usize)
                    };
                    let mut cut = false;
                    if let Some((pos, times)) = &mut e.break_at {
                        if *times > 0 && a <= *pos && *pos <= b {
                            *times -= 1;
                            body = body.slice(..(*pos - a) as usize);
                            cut = true;
                            broken = true;
                        }
                    }
                    let mut headers = vec![
                        ("content-type", "application/zip".to_owned()),
                        ("accept-ranges", "bytes".to_owned()),
                        ("content-length", declared.to_string()),
                    ];
                    if status == 206 {
                        headers.push(("content-range", format!("bytes {a}-{b}/{len}")));
                    }
                    respond(status, &headers, CutBody::new(body, cut, declared))
                }
                _ => not_found(),
            }
        }
    };
    let status = resp.status().as_u16();
    log(state, path, range, status, broken);
    resp
}

/// Makes `key`'s zip with the generator when there is one and the file was not added.
fn generate(state: &VState, key: &str) {
    let Some(make) = lock(&state.generator).clone() else {
        return;
    };
    if lock(&state.files).contains_key(key) {
        return;
    }
    let Some(zip) = make(key) else {
        return;
    };
    let mut files = lock(&state.files);
    files.insert(key.to_owned(), Entry::new(key, zip));
    let mut made = lock(&state.generated);
    made.push_back(key.to_owned());
    while made.len() > GENERATED_KEPT {
        if let Some(old) = made.pop_front() {
            files.remove(&old);
        }
    }
}

fn not_found() -> hyper::Response<CutBody> {
    respond(
        404,
        &[("content-type", "application/xml".into())],
        full(Bytes::from_static(
            b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code></Error>",
        )),
    )
}

fn log(state: &VState, path: String, range: Option<String>, status: u16, broken: bool) {
    lock(&state.log).push(VisionRequest {
        at: Instant::now(),
        path,
        range,
        status,
        broken,
    });
}

/// `bytes=a-b` or `bytes=a-` against a file of `len` bytes: `Err` when unsatisfiable.
fn parse_range(r: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = r.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let a: u64 = a.parse().ok()?;
    if a >= len {
        return Some(Err(()));
    }
    let b = if b.is_empty() {
        len - 1
    } else {
        b.parse::<u64>().ok()?.min(len - 1)
    };
    if b < a {
        return Some(Err(()));
    }
    Some(Ok((a, b)))
}
