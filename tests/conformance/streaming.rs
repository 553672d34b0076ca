//! Streaming bodies both ways, and the per-attempt hook, written once and run on every backend
//! through both surfaces: `streaming::curl::async_surface::pieces_arrive_before_the_body_ends`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use httpfleet::Body;
use httpfleet::hook::{Admission, After, Before, Hook};

use super::*;
use support::harness::Session;

macro_rules! streaming_case {
    ($name:ident, $kind:expr, $surface:expr) => {{
        crate::set_dead_proxy_env();
        let _bridge = crate::on_bridge(stringify!($name), $kind, $surface);
        cases::$name(&crate::Fx::new($kind, $surface));
    }};
}

support::per_backend_tests!(streaming_case;
    pieces_arrive_before_the_body_ends,
    a_slow_reader_holds_the_sender_back_and_a_drop_closes_the_connection,
    a_body_read_to_its_end_returns_the_connection_to_the_pool,
    a_dropped_response_does_not_return_its_connection,
    a_held_body_does_not_hold_up_the_next_request,
    the_deadline_covers_a_body_read_slowly,
    read_timeout_ends_an_idle_body,
    the_limit_holds_as_the_body_streams,
    an_upload_from_a_file_is_sent_with_its_length_and_progress,
    an_upload_from_a_reader_is_sent_with_or_without_a_length,
    a_body_sent_once_is_not_redirected_by_307_or_308,
    a_hook_sees_changes_and_may_refuse_each_attempt,
    a_chunk_dropped_before_it_completes_loses_nothing,
    pieces_kept_by_the_caller_keep_their_bytes_while_the_client_reads_on,
);

/// A server that answers one request per connection with a 1 GiB body, written as fast as the
/// client takes it: how much it wrote tells whether the client holds it back, and a failed
/// write that the client closed the connection.
struct Firehose {
    addr: SocketAddr,
    written: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
}

impl Firehose {
    fn start() -> Firehose {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let written = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let (w, c) = (written.clone(), closed.clone());
        std::thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let total: u64 = 1 << 30;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {total}\r\n\r\n"
            );
            if s.write_all(head.as_bytes()).is_err() {
                return;
            }
            let piece = vec![7u8; 64 * 1024];
            while w.load(Ordering::Relaxed) < total {
                match s.write(&piece) {
                    Ok(n) => {
                        w.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        // Held back for 5 s: not a close.
                        return;
                    }
                    Err(_) => {
                        c.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
        });
        Firehose {
            addr,
            written,
            closed,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/firehose", self.addr)
    }
}

/// Reads `resp` to its end: the bytes, or the error that ended it.
fn read_all(s: &Session<'_>, resp: &mut Streamed) -> (usize, httpfleet::Result<()>) {
    let mut n = 0;
    loop {
        match s.chunk(resp) {
            Ok(Some(piece)) => n += piece.len(),
            Ok(None) => return (n, Ok(())),
            Err(e) => return (n, Err(e)),
        }
    }
}

/// The text of an upload: 300,000 bytes, longer than any one buffer on the way.
fn upload_text() -> String {
    "0123456789abcdef-".repeat(300_000 / 17 + 1)[..300_000].to_owned()
}

/// What the hook saw after an attempt: the member, the attempt's number, its status.
type Seen = (Option<String>, u32, Option<u16>);

/// Counts attempts and stamps each one; refuses any to `/refuse`.
#[derive(Clone, Default)]
struct Stamp {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Hook for Stamp {
    fn before<'a>(&'a self, attempt: &'a mut Before<'_>) -> Admission<'a> {
        Box::pin(async move {
            if attempt.request().url().path() == "/refuse" {
                return Err(httpfleet::Error::refused("not now"));
            }
            let n = attempt.number().to_string();
            attempt
                .request_mut()
                .headers_mut()
                .insert("x-stamp", n.parse().unwrap());
            Ok(())
        })
    }

    fn after(&self, attempt: &After<'_>) {
        self.seen.lock().unwrap().push((
            attempt.member().map(str::to_owned),
            attempt.number(),
            attempt.status().map(|s| s.as_u16()),
        ));
    }
}

mod cases {
    use super::*;

    /// `Response::chunk` is cancel-safe: polled once and dropped, again and again, it loses no
    /// piece of a decoded body (the blocking surface reads the same body piece by piece).
    pub fn a_chunk_dropped_before_it_completes_loses_nothing(fx: &Fx) {
        use std::future::Future;
        use std::task::Poll;
        let s = fx.session(&fx.config()).unwrap();
        // An echo long enough, and random enough, to be decoded in several slices.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let noise: String = (0..16_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_digit((x % 16) as u32, 16).unwrap()
            })
            .collect();
        let url = fx.url(&format!("/gzip?noise={noise}"));
        let body = match s.stream(|c| c.get(&url)).unwrap() {
            support::harness::Streamed::Async(mut resp) => fx.block_on(async {
                let mut out = Vec::new();
                loop {
                    let polled = {
                        let mut once = std::pin::pin!(resp.chunk());
                        std::future::poll_fn(|cx| Poll::Ready(once.as_mut().poll(cx))).await
                    };
                    match polled {
                        Poll::Ready(piece) => match piece.unwrap() {
                            Some(p) => out.extend_from_slice(&p),
                            None => break out,
                        },
                        Poll::Pending => tokio::time::sleep(Duration::from_millis(1)).await,
                    }
                }
            }),
            mut blocking => {
                let mut out = Vec::new();
                while let Some(p) = s.chunk(&mut blocking).unwrap() {
                    out.extend_from_slice(&p);
                }
                out
            }
        };
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["gzipped"], true);
        assert_eq!(v["args"]["noise"], noise.as_str());
    }

    pub fn pieces_arrive_before_the_body_ends(fx: &Fx) {
        let s = fx.session(&fx.config()).unwrap();
        let start = Instant::now();
        let mut resp = s
            .stream(|c| c.get(fx.url("/drip?bytes=4&duration_ms=1600")))
            .unwrap();
        let first = s.chunk(&mut resp).unwrap().unwrap();
        let at_first = start.elapsed();
        assert!(!first.is_empty());
        assert!(at_first < Duration::from_millis(700), "{at_first:?}");
        let (rest, end) = read_all(&s, &mut resp);
        end.unwrap();
        assert_eq!(first.len() + rest, 4);
        assert!(start.elapsed() >= Duration::from_millis(1000));
    }

    /// Pieces the caller keeps are never written over: not by the rest of their body, nor by
    /// the client's next body (a client may read into a buffer again once its piece is let go).
    pub fn pieces_kept_by_the_caller_keep_their_bytes_while_the_client_reads_on(fx: &Fx) {
        const N: usize = 3 << 20;
        let s = fx.session(&fx.config()).unwrap();
        let mut first = s.stream(|c| c.get(fx.url(&format!("/bytes/{N}")))).unwrap();
        let mut kept = Vec::new();
        while let Some(piece) = s.chunk(&mut first).unwrap() {
            kept.push(piece);
        }
        drop(first);
        for fill in [9u8, 10] {
            let mut next = s
                .stream(|c| c.get(fx.url(&format!("/bytes/{N}?fill={fill}"))))
                .unwrap();
            let mut n = 0;
            while let Some(piece) = s.chunk(&mut next).unwrap() {
                assert!(piece.iter().all(|&b| b == fill), "a piece of body {fill}");
                n += piece.len();
            }
            assert_eq!(n, N);
        }
        assert_eq!(kept.concat(), support::pattern_bytes(N));
    }

    pub fn a_slow_reader_holds_the_sender_back_and_a_drop_closes_the_connection(fx: &Fx) {
        let hose = Firehose::start();
        let config = fx.config().max_response_bytes(u64::MAX);
        let s = fx.session(&config).unwrap();
        let mut resp = s.stream(|c| c.get(hose.url())).unwrap();
        assert!(!s.chunk(&mut resp).unwrap().unwrap().is_empty());
        std::thread::sleep(Duration::from_millis(500));
        // Socket buffers on both sides, and the client's own (a pipe, a paused transfer).
        let written = hose.written.load(Ordering::Relaxed);
        assert!(written < 32 << 20, "the server wrote {written} bytes ahead");
        drop(resp);
        let start = Instant::now();
        while !hose.closed.load(Ordering::Relaxed) {
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "the connection stayed open after the response was dropped"
            );
            // The async client's connection tasks run on its runtime: keep it going.
            fx.block_on(async { tokio::time::sleep(Duration::from_millis(10)).await });
        }
    }

    pub fn a_body_read_to_its_end_returns_the_connection_to_the_pool(fx: &Fx) {
        let s = fx.session(&fx.config()).unwrap();
        let mut resp = s
            .stream(|c| c.get(fx.url("/stream-bytes/300000?chunk_size=4096")))
            .unwrap();
        let (n, end) = read_all(&s, &mut resp);
        end.unwrap();
        assert_eq!(n, 300_000);
        drop(resp);
        s.run(|c| c.get(fx.url("/small"))).unwrap();
        assert_eq!(fx.server.connections_accepted(), 1);
    }

    pub fn a_dropped_response_does_not_return_its_connection(fx: &Fx) {
        let s = fx.session(&fx.config()).unwrap();
        let mut resp = s.stream(|c| c.get(fx.url("/bytes/8388608"))).unwrap();
        assert!(s.chunk(&mut resp).unwrap().is_some());
        drop(resp);
        let got = s.run(|c| c.get(fx.url("/small"))).unwrap();
        assert_eq!(got.text().unwrap(), "Hello, World!");
        assert_eq!(fx.server.connections_accepted(), 2);
    }

    /// A response whose body is still coming, held unread, does not hold up the next requests
    /// of the same client: each is answered at once, and the held body still reads to its end.
    pub fn a_held_body_does_not_hold_up_the_next_request(fx: &Fx) {
        let s = fx.session(&fx.config()).unwrap();
        let mut held = s
            .stream(|c| c.get(fx.url("/drip?bytes=10&duration_ms=1500")))
            .unwrap();
        for _ in 0..3 {
            let start = Instant::now();
            let got = s.run(|c| c.get(fx.url("/small"))).unwrap();
            assert_eq!(got.text().unwrap(), "Hello, World!");
            assert!(
                start.elapsed() < Duration::from_millis(700),
                "{:?}",
                start.elapsed()
            );
        }
        let (n, end) = read_all(&s, &mut held);
        end.unwrap();
        assert_eq!(n, 10);
    }

    pub fn the_deadline_covers_a_body_read_slowly(fx: &Fx) {
        let hose = Firehose::start();
        let config = fx
            .config()
            .timeout(Duration::from_secs(1))
            .max_response_bytes(u64::MAX);
        let s = fx.session(&config).unwrap();
        let start = Instant::now();
        let mut resp = s.stream(|c| c.get(hose.url())).unwrap();
        assert!(s.chunk(&mut resp).unwrap().is_some());
        std::thread::sleep(Duration::from_millis(1200));
        let (_, end) = read_all(&s, &mut resp);
        let err = end.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Timeout(TimeoutPhase::Body),
            "{err:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
    }

    pub fn read_timeout_ends_an_idle_body(fx: &Fx) {
        let config = fx.config().read_timeout(Some(Duration::from_millis(300)));
        let s = fx.session(&config).unwrap();
        let start = Instant::now();
        let mut resp = s
            .stream(|c| c.get(fx.url("/drip?bytes=3&duration_ms=6000")))
            .unwrap();
        let (n, end) = read_all(&s, &mut resp);
        let err = end.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Timeout(TimeoutPhase::Body),
            "{err:?}"
        );
        assert!(n >= 1, "the first byte came at once");
        assert!(
            start.elapsed() < Duration::from_millis(2500),
            "{:?}",
            start.elapsed()
        );
    }

    pub fn the_limit_holds_as_the_body_streams(fx: &Fx) {
        let config = fx.config().max_response_bytes(100_000);
        let s = fx.session(&config).unwrap();
        let mut resp = s
            .stream(|c| c.get(fx.url("/stream-bytes/1000000?chunk_size=8192")))
            .unwrap();
        let (n, end) = read_all(&s, &mut resp);
        assert_eq!(end.unwrap_err().kind(), ErrorKind::BodyTooLarge);
        assert!(n <= 100_000, "{n} bytes handed out past the limit");
    }

    pub fn an_upload_from_a_file_is_sent_with_its_length_and_progress(fx: &Fx) {
        let text = upload_text();
        let path = std::env::temp_dir().join(format!(
            "httpfleet-upload-{}-{}-{:?}",
            fx.kind,
            std::process::id(),
            fx.surface
        ));
        std::fs::write(&path, &text).unwrap();
        let last = Arc::new(Mutex::new(None));
        let seen = last.clone();
        let got = fx
            .go(|c| {
                c.post(fx.url("/anything"))
                    .body(Body::file(&path).unwrap())
                    .on_upload_progress(move |sent, total| {
                        *seen.lock().unwrap() = Some((sent, total));
                    })
            })
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let v = json(&got);
        assert_eq!(v["data"], text.as_str());
        assert_eq!(v["headers"]["content-length"], "300000");
        assert_eq!(*last.lock().unwrap(), Some((300_000, Some(300_000))));
    }

    pub fn an_upload_from_a_reader_is_sent_with_or_without_a_length(fx: &Fx) {
        let text = upload_text();
        let len = text.len() as u64;
        let mut bodies = vec![
            (
                Body::reader(std::io::Cursor::new(text.clone()), Some(len)),
                true,
            ),
            (
                Body::reader(std::io::Cursor::new(text.clone()), None),
                false,
            ),
        ];
        if fx.surface == Surface::Async {
            let stream = |t: &str| {
                let pieces: Vec<Result<bytes::Bytes, std::io::Error>> = t
                    .as_bytes()
                    .chunks(7000)
                    .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
                    .collect();
                Pieces(pieces.into())
            };
            bodies.push((Body::stream(stream(&text), Some(len)), true));
            bodies.push((Body::stream(stream(&text), None), false));
            bodies.push((
                Body::async_reader(std::io::Cursor::new(text.clone().into_bytes()), None),
                false,
            ));
        }
        for (i, (body, sized)) in bodies.into_iter().enumerate() {
            let got = fx.go(|c| c.put(fx.url("/anything")).body(body)).unwrap();
            let v = json(&got);
            assert_eq!(v["data"], text.as_str(), "body {i}");
            if sized {
                assert_eq!(v["headers"]["content-length"], "300000", "body {i}");
            } else {
                assert_eq!(v["headers"]["transfer-encoding"], "chunked", "body {i}");
                assert!(v["headers"].get("content-length").is_none(), "body {i}");
            }
        }
    }

    pub fn a_body_sent_once_is_not_redirected_by_307_or_308(fx: &Fx) {
        for code in [307, 308] {
            fx.server.reset_counters();
            let got = fx
                .go(|c| {
                    c.post(fx.url(&format!("/redirect-to?url=/anything&status_code={code}")))
                        .body(Body::reader(
                            std::io::Cursor::new(b"once".to_vec()),
                            Some(4),
                        ))
                })
                .unwrap();
            assert_eq!(got.status().as_u16(), code);
            assert_eq!(fx.server.requests_seen(), 1);
        }
    }

    pub fn a_hook_sees_changes_and_may_refuse_each_attempt(fx: &Fx) {
        let hook = Stamp::default();
        let s = fx.session_hooked(&fx.config(), hook.clone()).unwrap();
        let got = s.run(|c| c.get(fx.url("/anything"))).unwrap();
        assert_eq!(json(&got)["headers"]["x-stamp"], "1");
        let err = s.run(|c| c.get(fx.url("/refuse"))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Refused);
        assert!(err.to_string().contains("not now"), "{err}");
        assert_eq!(fx.server.requests_seen(), 1);
        assert_eq!(*hook.seen.lock().unwrap(), vec![(None, 1, Some(200))]);
    }
}

/// A stream of ready pieces.
struct Pieces(std::collections::VecDeque<Result<bytes::Bytes, std::io::Error>>);

impl futures_core::Stream for Pieces {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.pop_front())
    }
}
