//! Never hang, never leak, never let in.
//!
//! - `matrix`: every fault of `support::fault` × every backend × async and blocking: the exact
//!   `ErrorKind` (identical across backends) and the call's return by its deadline plus a margin.
//!   Every call runs under an outer watchdog, so a hang fails its test instead of stalling CI.
//! - `cancellation`: dropped request futures and half-read bodies close their connection and
//!   leave the pool healthy; 1,000 cancellations leave the open file descriptors where they were.
//! - `soak` (ignored by default, run by `.ci/run`): 50,000 keep-alive requests per backend;
//!   descriptors back to baseline and resident memory growth under 10 MiB.
//! - `security`: nothing leaves for rejected input, credentials stay where they belong.

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use httpfleet::{BackendKind, Client, Config, ErrorKind, TimeoutPhase};
use support::fault::{Fault, FaultServer};
use support::harness::{Harness, Surface};

/// Tests that count the process's descriptors or memory run alone: they take this lock for
/// writing, every other test of this binary for reading.
static PROCESS: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    PROCESS.read().unwrap_or_else(|p| p.into_inner())
}

fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    PROCESS.write().unwrap_or_else(|p| p.into_inner())
}

/// Longest any single call may take before the watchdog calls it a hang.
const WATCHDOG: Duration = Duration::from_secs(20);

/// Runs `f` on a thread and fails the test if it does not return within [`WATCHDOG`].
fn watchdog<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(v) => v,
        Err(_) => panic!("{what}: no answer within {WATCHDOG:?}: a hang"),
    }
}

/// Appends one measured matrix cell to the report that `scripts/parity.py` turns into the
/// fault table of docs/faults.md.
fn report(case: &str, kind: BackendKind, surface: Surface, outcome: &str, took: Duration) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let line = format!(
        "{{\"case\":\"{case}\",\"backend\":\"{kind}\",\"surface\":\"{}\",\"outcome\":\"{outcome}\",\"ms\":{}}}\n",
        match surface {
            Surface::Async => "async",
            Surface::Blocking => "blocking",
        },
        took.as_millis()
    );
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("faults-report.jsonl"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
}

mod matrix {
    use super::*;

    /// One cell: a fault, the config for it, what must come back and by when.
    pub struct Case {
        pub fault: Fault,
        pub config: fn(Config) -> Config,
        pub expect: Result<&'static str, ErrorKind>,
        /// The call must return within this (the deadline that applies, plus a margin).
        pub within: Duration,
    }

    fn short(c: Config) -> Config {
        c.timeout(Duration::from_millis(600))
    }

    /// 80 MiB of zeros in `coding`, over the default 64 MiB `max_response_bytes`.
    fn bomb(coding: &'static str) -> Case {
        Case {
            fault: Fault::Bomb {
                coding,
                decoded: 80 * 1024 * 1024,
                times: 1,
            },
            config: |c| c,
            expect: Err(ErrorKind::BodyTooLarge),
            within: Duration::from_millis(8000),
        }
    }

    pub fn case(name: &str) -> Case {
        let ms = Duration::from_millis;
        match name {
            "refused_connection" => Case {
                fault: Fault::Refused,
                config: |c| c,
                expect: Err(ErrorKind::Connect),
                within: ms(1500),
            },
            "connect_never_completes" => Case {
                fault: Fault::ConnectBlackhole,
                config: |c| {
                    c.connect_timeout(Duration::from_millis(300))
                        .timeout(Duration::from_secs(3))
                },
                expect: Err(ErrorKind::Timeout(TimeoutPhase::Connect)),
                within: ms(1300),
            },
            "connect_outlasts_total_deadline" => Case {
                fault: Fault::ConnectBlackhole,
                config: |c| c.timeout(Duration::from_millis(400)),
                expect: Err(ErrorKind::Timeout(TimeoutPhase::Headers)),
                within: ms(1400),
            },
            "accepted_but_never_answered" => Case {
                fault: Fault::AcceptNeverAnswer,
                config: short,
                expect: Err(ErrorKind::Timeout(TimeoutPhase::Headers)),
                within: ms(1600),
            },
            "headers_then_stalled_body" => Case {
                fault: Fault::HeadersThenStall,
                config: short,
                expect: Err(ErrorKind::Timeout(TimeoutPhase::Body)),
                within: ms(1600),
            },
            "body_dripped_slower_than_deadline" => Case {
                fault: Fault::DripBody {
                    total: 20,
                    interval_ms: 100,
                },
                config: short,
                expect: Err(ErrorKind::Timeout(TimeoutPhase::Body)),
                within: ms(1600),
            },
            "reset_during_headers" => Case {
                fault: Fault::ResetDuringHeaders,
                config: |c| c,
                expect: Err(ErrorKind::Protocol),
                within: ms(1500),
            },
            "reset_during_body" => Case {
                fault: Fault::ResetDuringBody,
                config: |c| c,
                expect: Err(ErrorKind::Body),
                within: ms(1500),
            },
            "close_before_content_length" => Case {
                fault: Fault::CloseBeforeContentLength,
                config: |c| c,
                expect: Err(ErrorKind::Body),
                within: ms(1500),
            },
            "malformed_status_line" => Case {
                fault: Fault::MalformedStatusLine,
                config: |c| c,
                expect: Err(ErrorKind::Protocol),
                within: ms(1500),
            },
            "malformed_chunked_encoding" => Case {
                fault: Fault::MalformedChunked,
                config: |c| c,
                expect: Err(ErrorKind::Protocol),
                within: ms(1500),
            },
            "header_block_over_the_limit" => Case {
                fault: Fault::HugeHeaders { bytes: 256 * 1024 },
                config: |c| c,
                expect: Err(ErrorKind::Protocol),
                within: ms(2000),
            },
            "endless_redirect_loop" => Case {
                fault: Fault::RedirectLoop,
                config: |c| c,
                expect: Err(ErrorKind::Redirect),
                within: ms(2000),
            },
            "redirect_to_closed_port" => Case {
                fault: Fault::RedirectToClosedPort,
                config: |c| c,
                expect: Err(ErrorKind::Connect),
                within: ms(1500),
            },
            "gzip_inflating_past_the_limit" => bomb("gzip"),
            "brotli_inflating_past_the_limit" => bomb("br"),
            "zstd_inflating_past_the_limit" => bomb("zstd"),
            "tls_handshake_stalls" => Case {
                fault: Fault::TlsHandshakeStall,
                config: |c| {
                    c.connect_timeout(Duration::from_millis(300))
                        .timeout(Duration::from_secs(3))
                },
                expect: Err(ErrorKind::Timeout(TimeoutPhase::Connect)),
                within: ms(1300),
            },
            "tls_certificate_for_wrong_host" => Case {
                fault: Fault::TlsWrongHost,
                config: |c| c,
                expect: Err(ErrorKind::Tls),
                within: ms(1500),
            },
            "declared_length_over_the_limit" => Case {
                fault: Fault::DeclaredLength { declared: 1 << 62 },
                config: |c| c,
                expect: Err(ErrorKind::BodyTooLarge),
                within: ms(1500),
            },
            // Nothing may reserve what the server declares: with no limit at all, 2^62 bytes
            // declared and 10 sent end as a short body, not an abort.
            "declared_length_with_no_limit" => Case {
                fault: Fault::DeclaredLength { declared: 1 << 62 },
                config: |c| c.max_response_bytes(u64::MAX),
                expect: Err(ErrorKind::Body),
                within: ms(1500),
            },
            "content_length_past_u64" => Case {
                fault: Fault::ContentLengthPastU64,
                config: |c| c,
                expect: Err(ErrorKind::Protocol),
                within: ms(1500),
            },
            "valid_trailer" => Case {
                fault: Fault::Trailer {
                    line: "X-Checksum: abc",
                },
                config: |c| c,
                expect: Ok("hello"),
                within: ms(1500),
            },
            "invalid_trailer" => Case {
                fault: Fault::Trailer {
                    line: "not a header line",
                },
                config: |c| c,
                expect: Err(ErrorKind::Protocol),
                within: ms(1500),
            },
            "trailer_like_a_status_line" => Case {
                fault: Fault::Trailer {
                    line: "HTTP/1.1 503 Service Unavailable",
                },
                config: |c| c,
                expect: Err(ErrorKind::Protocol),
                within: ms(1500),
            },
            other => panic!("no case {other}"),
        }
    }

    pub fn run(name: &'static str, kind: BackendKind, surface: Surface) {
        // A coding whose feature is off is not decoded (nor asked for): nothing to test.
        if name.starts_with("brotli") && !cfg!(feature = "brotli")
            || name.starts_with("zstd") && !cfg!(feature = "zstd")
        {
            return;
        }
        let _shared = shared();
        let case = case(name);
        let server = FaultServer::start(case.fault.clone());
        let mut config = (case.config)(Config::default().backend(kind));
        if let Some(ca) = server.ca_file() {
            config = config.tls_ca_file(ca);
        }
        let url = server.url("/fault");
        let within = case.within;
        let (result, took) = watchdog(name, move || {
            let h = Harness::new(kind, surface);
            let start = Instant::now();
            let r = h.run(&config, |c| c.get(&url));
            (r.map_err(|e| (e.kind(), format!("{e:?}"))), start.elapsed())
        });
        let shown = match &result {
            Ok(resp) => format!("{} (ok)", resp.status().as_u16()),
            Err((k, _)) => format!("{k:?}"),
        };
        report(name, kind, surface, &shown, took);
        match (&case.expect, &result) {
            (Err(kind), Err((got, debug))) => assert_eq!(got, kind, "{name}: {debug}"),
            (Ok(body), Ok(resp)) => assert_eq!(resp.text().unwrap(), *body),
            (expect, got) => panic!(
                "{name}: expected {expect:?}, got {}",
                match got {
                    Ok(r) => format!("status {}", r.status()),
                    Err((_, d)) => d.clone(),
                }
            ),
        }
        assert!(
            took <= within,
            "{name}: took {took:?}, more than {within:?}"
        );
        drop(server);
    }

    /// A keep-alive connection the server closes between two requests: the second request, on
    /// the now stale pooled connection, is retried once on a fresh one and succeeds.
    pub fn stale_pooled_connection_is_retried_on_a_fresh_one(kind: BackendKind, surface: Surface) {
        let _shared = shared();
        let server = FaultServer::start(Fault::StaleKeepAlive);
        let url = server.url("/fault");
        let (a, b, took) = watchdog("stale", move || {
            let h = Harness::new(kind, surface);
            let s = h
                .session(
                    &Config::default()
                        .backend(kind)
                        .timeout(Duration::from_secs(5)),
                )
                .unwrap();
            let a = s.run(|c| c.get(&url)).map(|r| r.text().unwrap());
            std::thread::sleep(Duration::from_millis(150));
            let start = Instant::now();
            let b = s.run(|c| c.get(&url)).map(|r| r.text().unwrap());
            (a, b, start.elapsed())
        });
        report(
            "stale_pooled_connection",
            kind,
            surface,
            &match &b {
                Ok(_) => "200 (ok)".to_owned(),
                Err(e) => format!("{:?}", e.kind()),
            },
            took,
        );
        assert_eq!(a.unwrap(), "first");
        assert_eq!(b.unwrap(), "fresh");
        assert_eq!(server.connections(), 2);
    }
}

/// One matrix cell for one backend and surface.
macro_rules! matrix_cell {
    (stale_pooled_connection_is_retried_on_a_fresh_one, $kind:expr, $surface:expr) => {
        matrix::stale_pooled_connection_is_retried_on_a_fresh_one($kind, $surface)
    };
    ($name:ident, $kind:expr, $surface:expr) => {
        matrix::run(stringify!($name), $kind, $surface)
    };
}

support::per_backend_tests!(matrix_cell;
                refused_connection, connect_never_completes, connect_outlasts_total_deadline,
                accepted_but_never_answered, headers_then_stalled_body,
                body_dripped_slower_than_deadline, reset_during_headers, reset_during_body,
                close_before_content_length, malformed_status_line, malformed_chunked_encoding,
                header_block_over_the_limit, endless_redirect_loop, redirect_to_closed_port,
                gzip_inflating_past_the_limit, brotli_inflating_past_the_limit,
                zstd_inflating_past_the_limit, tls_handshake_stalls, tls_certificate_for_wrong_host,
    stale_pooled_connection_is_retried_on_a_fresh_one,
    declared_length_over_the_limit, declared_length_with_no_limit, content_length_past_u64,
    valid_trailer, invalid_trailer, trailer_like_a_status_line,
);

/// The content codings httpfleet decodes in this build, with the names the report uses.
fn enabled_codings() -> Vec<(&'static str, &'static str)> {
    let mut codings = vec![("gzip", "gzip")];
    if cfg!(feature = "brotli") {
        codings.push(("br", "brotli"));
    }
    if cfg!(feature = "zstd") {
        codings.push(("zstd", "zstd"));
    }
    codings
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Waits up to `limit` for `cond`.
fn eventually(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

mod cancellation {
    use super::*;

    /// Dropping the request future while the server holds the response (mid-headers) or the
    /// body (mid-body): the connection is closed (the server sees it) by the request's deadline
    /// at the latest (ureq cannot be interrupted; its own deadline ends it), and the client's
    /// pool serves the next request.
    pub fn dropped_future_closes_its_connection(kind: BackendKind, fault: Fault) {
        let _shared = shared();
        let server = FaultServer::start(fault);
        let healthy = FaultServer::start(Fault::Ok);
        let rt = multi_thread_runtime();
        let deadline = Duration::from_millis(800);
        let client =
            Client::from_config(&Config::default().backend(kind).timeout(deadline)).unwrap();
        let url = server.url("/fault");
        let dropped = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(150), async {
                client.get(&url).send().await?.bytes().await
            })
            .await
        });
        assert!(
            dropped.is_err(),
            "the request should still be pending when dropped"
        );
        let dropped_at = Instant::now();
        let closed = rt.block_on(async {
            let limit = deadline + Duration::from_millis(700);
            let start = Instant::now();
            while start.elapsed() < limit {
                if server.closed_by_peer() >= 1 {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            false
        });
        assert!(
            closed,
            "{kind}: the server never saw the dropped request's connection close"
        );
        assert!(dropped_at.elapsed() <= deadline + Duration::from_millis(700));
        let next = rt
            .block_on(async { client.get(healthy.url("/ok")).send().await?.text().await })
            .expect("the pool serves the next request");
        assert_eq!(next, "ok");
    }

    /// A thousand requests dropped mid-flight leave the process's descriptors where they were.
    pub fn thousand_cancellations_leak_no_descriptors(kind: BackendKind) {
        let _alone = alone();
        let server = FaultServer::start(Fault::AcceptNeverAnswer);
        let rt = multi_thread_runtime();
        let client = Client::from_config(
            &Config::default()
                .backend(kind)
                .timeout(Duration::from_millis(300)),
        )
        .unwrap();
        let url = server.url("/fault");
        // Warm up with a burst: runtime threads, the blocking pool and the backend's idle
        // handles reach their steady state; the count after that is the baseline.
        let storm = |n: usize| {
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..n {
                    let (c, u) = (client.clone(), url.clone());
                    set.spawn(async move {
                        let _ =
                            tokio::time::timeout(Duration::from_millis(3), c.get(&u).send()).await;
                    });
                    if set.len() >= 64 {
                        set.join_next().await;
                    }
                }
                while set.join_next().await.is_some() {}
            })
        };
        storm(128);
        std::thread::sleep(Duration::from_millis(600));
        let before = open_fds();
        storm(1000);
        let settled = eventually(Duration::from_secs(8), || open_fds() <= before + 2);
        let after = open_fds();
        println!("{kind}: open descriptors before {before}, after 1,000 cancellations {after}");
        assert!(settled, "{kind}: descriptors grew from {before} to {after}");
    }
}

macro_rules! cancellation {
    ($($(#[$meta:meta])* $module:ident => $kind:expr;)*) => {
        $(
            $(#[$meta])*
            mod $module {
                use super::*;

                #[test]
                fn drop_mid_headers_closes_the_connection() {
                    cancellation::dropped_future_closes_its_connection($kind, Fault::AcceptNeverAnswer);
                }

                #[test]
                fn drop_mid_body_closes_the_connection() {
                    cancellation::dropped_future_closes_its_connection($kind, Fault::HeadersThenStall);
                }

                #[test]
                fn thousand_cancellations_leak_no_descriptors() {
                    cancellation::thousand_cancellations_leak_no_descriptors($kind);
                }

                #[test]
                #[ignore = "soak: run by .ci/run with --ignored"]
                fn soak_fifty_thousand_keep_alive_requests() {
                    soak::fifty_thousand($kind);
                }
            }
        )*
    };
}

mod cancel_and_soak {
    use super::*;
    cancellation! {
        #[cfg(feature = "hyper")]
        hyper => BackendKind::Hyper;
        #[cfg(feature = "reqwest")]
        reqwest => BackendKind::Reqwest;
        #[cfg(feature = "curl")]
        curl => BackendKind::Curl;
        #[cfg(feature = "ureq")]
        ureq => BackendKind::Ureq;
    }
}

mod soak {
    use super::*;

    /// 50,000 keep-alive requests: descriptors back to the baseline, resident memory growth
    /// under 10 MiB. Prints both figures.
    pub fn fifty_thousand(kind: BackendKind) {
        let _alone = alone();
        const N: usize = 50_000;
        let server = FaultServer::start(Fault::Ok);
        let url = server.url("/ok");
        let client = httpfleet::blocking::Client::from_config(
            &Config::default()
                .backend(kind)
                .timeout(Duration::from_secs(10)),
        )
        .unwrap();
        for _ in 0..200 {
            client.get(&url).send().unwrap().bytes().unwrap();
        }
        let (fds, rss) = (open_fds(), rss_kib());
        let start = Instant::now();
        for _ in 0..N {
            let resp = client.get(&url).send().unwrap();
            assert_eq!(resp.bytes().unwrap().len(), 2);
        }
        let took = start.elapsed();
        let settled = eventually(Duration::from_secs(5), || open_fds() <= fds);
        let (fds_after, rss_after) = (open_fds(), rss_kib());
        let growth_kib = rss_after.saturating_sub(rss);
        println!(
            "soak {kind}: {N} requests in {took:?}; open descriptors {fds} -> {fds_after}; resident memory {rss} KiB -> {rss_after} KiB (+{growth_kib} KiB); server connections {}",
            server.connections()
        );
        assert!(settled, "{kind}: descriptors {fds} -> {fds_after}");
        assert!(
            growth_kib < 10 * 1024,
            "{kind}: resident memory grew by {growth_kib} KiB"
        );
        assert!(server.connections() <= 2, "{kind}: keep-alive not used");
    }
}

mod security {
    use super::*;
    use support::TestServer;

    fn each_backend(f: impl Fn(BackendKind)) {
        let _alone = alone();
        for kind in BackendKind::enabled().filter(|k| *k != BackendKind::Mock) {
            f(kind);
        }
    }

    #[test]
    fn credentials_are_dropped_when_a_redirect_changes_the_port() {
        let (a, b) = (TestServer::start(), TestServer::start());
        each_backend(|kind| {
            b.reset_counters();
            let client =
                httpfleet::blocking::Client::from_config(&Config::default().backend(kind)).unwrap();
            let target = b.url("/headers");
            let resp = client
                .get(a.url("/redirect-to"))
                .query(&[("url", target.as_str()), ("status_code", "307")])
                .basic_auth("user", "secret")
                .header("cookie", "session=1")
                .header("proxy-authorization", "Basic cHJveHk6c2VjcmV0")
                .send()
                .unwrap();
            assert_eq!(resp.status(), 200, "{kind}");
            let seen = b.last_request().unwrap();
            for h in ["authorization", "cookie", "proxy-authorization"] {
                assert_eq!(seen.header(h), None, "{kind}: {h} crossed to another port");
            }
        });
    }

    #[test]
    fn decompression_bomb_ends_in_body_too_large_with_memory_bounded() {
        for (coding, _) in enabled_codings() {
            bomb_ends_in_body_too_large_with_memory_bounded(coding);
        }
    }

    fn bomb_ends_in_body_too_large_with_memory_bounded(coding: &'static str) {
        let server = FaultServer::start(Fault::Bomb {
            coding,
            decoded: 80 * 1024 * 1024,
            times: 1,
        });
        each_backend(|kind| {
            let client = httpfleet::blocking::Client::from_config(
                &Config::default()
                    .backend(kind)
                    .max_response_bytes(1024 * 1024),
            )
            .unwrap();
            let before = rss_kib();
            let err = client
                .get(server.url("/bomb"))
                .send()
                .and_then(|r| r.bytes())
                .unwrap_err();
            let growth = rss_kib().saturating_sub(before);
            assert_eq!(err.kind(), ErrorKind::BodyTooLarge, "{coding} {kind}");
            assert!(
                growth < 32 * 1024,
                "{coding} {kind}: resident memory grew by {growth} KiB"
            );
        });
    }

    #[test]
    fn rejected_input_never_opens_a_connection() {
        let server = FaultServer::start(Fault::Ok);
        each_backend(|kind| {
            let client =
                httpfleet::blocking::Client::from_config(&Config::default().backend(kind)).unwrap();
            let bad = [
                client.get(server.url("/x\r\nX-Injected: 1")).send(),
                client
                    .get(server.url("/x"))
                    .header("x-a", "1\r\nX-Injected: 1")
                    .send(),
                client.get(server.url("/x")).header("x-a", "a\0b").send(),
                client.get(server.url("/x")).header("x-a\n", "1").send(),
                client.request("GE T", server.url("/x")).send(),
            ];
            for r in bad {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::Builder, "{kind}");
            }
            assert_eq!(server.connections(), 0, "{kind}: a connection was opened");
            assert_eq!(server.requests(), 0);
        });
    }

    #[test]
    fn tls_verification_is_on_by_default() {
        let server = FaultServer::start(Fault::TlsWrongHost);
        each_backend(|kind| {
            let client =
                httpfleet::blocking::Client::from_config(&Config::default().backend(kind)).unwrap();
            let err = client.get(server.url("/")).send().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Tls, "{kind}");
            assert_eq!(
                server.requests(),
                0,
                "{kind}: a request went through an unverified TLS"
            );
        });
    }
}

/// Counts the largest single allocation the process asks for while `WATCHING` is set: no
/// buffer may be sized by what a server declares.
mod alloc_probe {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    pub struct Probe;

    pub static WATCHING: AtomicBool = AtomicBool::new(false);
    pub static LARGEST: AtomicUsize = AtomicUsize::new(0);

    fn note(size: usize) {
        if WATCHING.load(Ordering::Relaxed) {
            LARGEST.fetch_max(size, Ordering::Relaxed);
        }
    }

    // SAFETY: every call is passed on to the system allocator unchanged.
    unsafe impl GlobalAlloc for Probe {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note(new_size);
            unsafe { System.realloc(ptr, layout, new_size) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static PROBE: alloc_probe::Probe = alloc_probe::Probe;

/// What a hostile server, a careless config or a dropped future must never do: reserve memory
/// the server asked for, run more transfer threads than the cap, silence the deadline
/// watchdog, send a non-idempotent request twice, or decode a body past its deadline or on the
/// executor's time.
mod hardening {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// The most transfer threads a curl or ureq backend runs at once (`backend/worker.rs`).
    const TRANSFER_CAP: usize = 512;

    /// Transfer threads alive in this process (by name).
    fn transfer_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == "hf-transfer")
            .count()
    }

    /// A response that declares 60 MiB and sends 20 bytes: no buffer of more than 1 MiB is
    /// asked for, on any backend or surface.
    pub fn declared_lengths_reserve_nothing_up_front(kind: BackendKind, surface: Surface) {
        let _alone = alone();
        let server = FaultServer::start(Fault::DeclaredLength { declared: 60 << 20 });
        let h = Harness::new(kind, surface);
        let s = h.session(&h.config()).unwrap();
        let url = server.url("/declared");
        alloc_probe::LARGEST.store(0, Ordering::Relaxed);
        alloc_probe::WATCHING.store(true, Ordering::Relaxed);
        let result = s.run(|c| c.get(&url));
        alloc_probe::WATCHING.store(false, Ordering::Relaxed);
        let largest = alloc_probe::LARGEST.load(Ordering::Relaxed);
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Body);
        assert!(
            largest <= 1 << 20,
            "{kind} {surface:?}: a buffer of {largest} bytes was reserved"
        );
    }

    /// 2,000 requests to a server that never answers, each dropped 5 ms after it started:
    /// never more transfer threads than the cap, descriptors back at the baseline once the
    /// deadlines pass, and a request sent right after with a 300 ms timeout ends within 800 ms.
    pub fn cancellation_storm_stays_within_the_transfer_cap(kind: BackendKind) {
        let _alone = alone();
        let server = FaultServer::start(Fault::AcceptNeverAnswer);
        let rt = multi_thread_runtime();
        let client = Client::from_config(
            &Config::default()
                .backend(kind)
                .timeout(Duration::from_secs(2)),
        )
        .unwrap();
        let url = server.url("/fault");
        let fds = open_fds();
        let (peak, storming) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(true)),
        );
        let sampler = {
            let (peak, storming) = (peak.clone(), storming.clone());
            std::thread::spawn(move || {
                while storming.load(Ordering::Relaxed) {
                    peak.fetch_max(transfer_threads(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..2000 {
                let (c, u) = (client.clone(), url.clone());
                set.spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_millis(5), c.get(&u).send()).await;
                });
                if set.len() >= 256 {
                    set.join_next().await;
                }
            }
            while set.join_next().await.is_some() {}
        });
        let start = Instant::now();
        let next = rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(5),
                client.get(&url).timeout(Duration::from_millis(300)).send(),
            )
            .await
        });
        let took = start.elapsed();
        storming.store(false, Ordering::Relaxed);
        sampler.join().unwrap();
        let peak = peak.load(Ordering::Relaxed);
        let err = next
            .expect("the request after the storm never ended")
            .unwrap_err();
        assert!(err.is_timeout(), "{kind}: {err:?}");
        assert!(took <= Duration::from_millis(800), "{kind}: took {took:?}");
        assert!(
            peak <= TRANSFER_CAP,
            "{kind}: {peak} transfer threads at once"
        );
        let settled = eventually(Duration::from_secs(10), || open_fds() <= fds + 2);
        println!(
            "{kind}: cancellation storm: at most {peak} transfer threads; descriptors {fds} -> {}",
            open_fds()
        );
        assert!(settled, "{kind}: descriptors {fds} -> {}", open_fds());
    }

    /// A waker that panics when the deadline watchdog wakes it.
    struct PanicsOnWatchdogWake(AtomicBool);

    impl std::task::Wake for PanicsOnWatchdogWake {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            if std::thread::current().name() == Some("hf-deadline")
                && !self.0.swap(true, Ordering::SeqCst)
            {
                panic!("a user's waker panicked (on purpose)");
            }
        }
    }

    /// A user's waker that panics on the deadline watchdog's thread does not stop later
    /// deadlines from firing.
    pub fn a_panicking_waker_does_not_stop_deadlines(kind: BackendKind) {
        use std::future::Future;
        let _alone = alone();
        let server = FaultServer::start(Fault::AcceptNeverAnswer);
        let rt = multi_thread_runtime();
        let client = Client::from_config(
            &Config::default()
                .backend(kind)
                .timeout(Duration::from_millis(200)),
        )
        .unwrap();
        let url = server.url("/fault");
        let waker = Arc::new(PanicsOnWatchdogWake(AtomicBool::new(false)));
        {
            let _enter = rt.enter();
            let mut fut = Box::pin(client.get(&url).send());
            let w = std::task::Waker::from(waker.clone());
            let mut cx = std::task::Context::from_waker(&w);
            let start = Instant::now();
            while !waker.0.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(3) {
                let _ = fut.as_mut().poll(&mut cx);
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                waker.0.load(Ordering::SeqCst),
                "{kind}: the watchdog never woke the request"
            );
        }
        for _ in 0..3 {
            let start = Instant::now();
            let result = rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(3), client.get(&url).send()).await
            });
            let err = result
                .expect("a deadline no longer fired after a waker panicked")
                .unwrap_err();
            assert!(err.is_timeout(), "{kind}: {err:?}");
            assert!(start.elapsed() < Duration::from_secs(1));
        }
    }

    /// A POST whose reused connection dies after the server read it whole is received exactly
    /// once: not sent again by the backend, the client or a fleet.
    pub fn post_received_once_when_its_connection_dies_after_it_was_read(
        kind: BackendKind,
        surface: Surface,
    ) {
        let _shared = shared();
        let mut outcomes = Vec::new();
        for fleet in [false, true] {
            let server = FaultServer::start(Fault::ResetAfterSecondRequest);
            let url = server.url("/order");
            let (first, post, took) = watchdog("post once", move || {
                let config = Config::default()
                    .backend(kind)
                    .timeout(Duration::from_secs(5));
                let client = if fleet {
                    httpfleet::FleetBuilder::new(&config)
                        .members([kind, kind])
                        .strategy(httpfleet::Strategy::Failover)
                        .build()
                        .unwrap()
                } else {
                    Client::from_config(&config).unwrap()
                };
                let blocking = httpfleet::blocking::Client::from_config(&config).unwrap();
                let fleet_blocking = httpfleet::FleetBuilder::new(&config)
                    .members([kind, kind])
                    .build_blocking()
                    .unwrap();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let send = |req: httpfleet::RequestBuilder<'_, Client>| match surface {
                    Surface::Async => rt.block_on(async {
                        support::harness::got(client.execute(req.build().unwrap()).await?).await
                    }),
                    Surface::Blocking if fleet => support::harness::got_blocking(
                        fleet_blocking.execute(req.build().unwrap())?,
                    ),
                    Surface::Blocking => {
                        support::harness::got_blocking(blocking.execute(req.build().unwrap())?)
                    }
                };
                let first = send(client.get(&url)).map(|r| r.text().unwrap());
                let start = Instant::now();
                let post = send(client.post(&url).body("order=1")).map(|r| r.status());
                (first, post.map_err(|e| e.kind()), start.elapsed())
            });
            assert_eq!(first.unwrap(), "ok");
            let posts = server.methods().iter().filter(|m| *m == "POST").count();
            assert_eq!(
                posts, 1,
                "{kind} {surface:?} fleet={fleet}: the POST was sent {posts} times ({post:?})"
            );
            assert_eq!(
                post,
                Err(ErrorKind::Protocol),
                "{kind} {surface:?} fleet={fleet}"
            );
            outcomes.push((post, took));
        }
        let (post, took) = &outcomes[0];
        report(
            "post_reset_after_it_was_read (received once)",
            kind,
            surface,
            &format!("{:?}", post.unwrap_err()),
            *took,
        );
    }

    /// A body that inflates to 640 MiB (brotli), 10 GiB (gzip) or 128 GiB (zstd), little on the wire,
    /// streamed and dropped piece by piece under no size limit, with a 500 ms deadline: the
    /// request ends in `Timeout(Body)` by its deadline rather than decoding on past it.
    pub fn decompression_ends_by_the_deadline(kind: BackendKind, surface: Surface) {
        let _shared = shared();
        for (coding, name) in enabled_codings() {
            // gzip members and zstd frames may follow one another; brotli is one stream.
            // zstd writes zeros as RLE blocks, decoded at memory speed: far more of them.
            let (decoded, times) = match coding {
                "br" => (640 << 20, 1),
                "zstd" => (64 << 20, 2048),
                _ => (64 << 20, 160),
            };
            let server = FaultServer::start(Fault::Bomb {
                coding,
                decoded,
                times,
            });
            let url = server.url("/bomb");
            let (result, took) = watchdog("decode", move || {
                let h = Harness::new(kind, surface);
                let config = h
                    .config()
                    .timeout(Duration::from_millis(500))
                    .max_response_bytes(1 << 40);
                let start = Instant::now();
                let read = || {
                    let session = h.session(&config)?;
                    let mut resp = session.stream(|c| c.get(&url))?;
                    let mut n = 0;
                    while let Some(piece) = session.chunk(&mut resp)? {
                        n += piece.len();
                    }
                    Ok::<_, httpfleet::Error>(n)
                };
                (read().map_err(|e| e.kind()), start.elapsed())
            });
            report(
                &format!("{name}_decoding_past_the_deadline"),
                kind,
                surface,
                &match &result {
                    Ok(n) => format!("{n} bytes (ok)"),
                    Err(k) => format!("{k:?}"),
                },
                took,
            );
            assert_eq!(
                result,
                Err(ErrorKind::Timeout(TimeoutPhase::Body)),
                "{coding} {kind}"
            );
            assert!(
                took < Duration::from_millis(1100),
                "{coding} {kind}: took {took:?}"
            );
        }
    }

    /// While one request decodes a large body (64 MiB, four times), another task on the same
    /// current-thread runtime still runs every few milliseconds.
    pub fn decompression_does_not_stall_the_runtime(kind: BackendKind) {
        let _shared = shared();
        let server = FaultServer::start(Fault::Bomb {
            coding: "gzip",
            decoded: 64 << 20,
            times: 4,
        });
        let url = server.url("/bomb");
        let gap = watchdog("decode beside a ticker", move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let client = Client::from_config(
                &Config::default()
                    .backend(kind)
                    .timeout(Duration::from_secs(15))
                    .max_response_bytes(1 << 30),
            )
            .unwrap();
            rt.block_on(async {
                let done = Arc::new(AtomicBool::new(false));
                let ticker = {
                    let done = done.clone();
                    tokio::spawn(async move {
                        let mut last = Instant::now();
                        let mut gap = Duration::ZERO;
                        while !done.load(Ordering::Relaxed) {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            gap = gap.max(last.elapsed());
                            last = Instant::now();
                        }
                        gap
                    })
                };
                let resp = client.get(&url).send().await.unwrap();
                assert_eq!(resp.bytes().await.unwrap().len(), 256 << 20);
                done.store(true, Ordering::Relaxed);
                ticker.await.unwrap()
            })
        });
        assert!(
            gap < Duration::from_millis(150),
            "{kind}: the runtime stalled for {gap:?} while a body was decoded"
        );
    }

    /// One blocking caller stuck in its progress callback for 1.5 s does not hold up another
    /// blocking caller of the same client.
    pub fn a_blocking_caller_stuck_in_a_callback_holds_up_no_other(kind: BackendKind) {
        let _shared = shared();
        let slow = FaultServer::start(Fault::DripBody {
            total: 4,
            interval_ms: 50,
        });
        let ok = FaultServer::start(Fault::Ok);
        let client = httpfleet::blocking::Client::from_config(
            &Config::default()
                .backend(kind)
                .timeout(Duration::from_secs(10)),
        )
        .unwrap();
        let (inside_tx, inside_rx) = mpsc::channel();
        let stuck = {
            let (client, url) = (client.clone(), slow.url("/drip"));
            std::thread::spawn(move || {
                let once = AtomicBool::new(false);
                client
                    .get(&url)
                    .on_progress(move |_, _| {
                        if !once.swap(true, Ordering::SeqCst) {
                            let _ = inside_tx.send(());
                            std::thread::sleep(Duration::from_millis(1500));
                        }
                    })
                    .send()
                    .and_then(|r| r.bytes())
                    .map(|b| b.len())
            })
        };
        inside_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the first caller never reached its callback");
        let url = ok.url("/ok");
        let (text, took) = watchdog("second caller", move || {
            let start = Instant::now();
            let text = client.get(&url).send().map(|r| r.text().unwrap());
            (text, start.elapsed())
        });
        assert_eq!(text.unwrap(), "ok");
        assert!(
            took < Duration::from_millis(700),
            "{kind}: the second caller waited {took:?} for the first one's callback"
        );
        assert_eq!(stuck.join().unwrap().unwrap(), 4);
    }
}

macro_rules! hardening_cell {
    ($name:ident, $kind:expr, $surface:expr) => {
        hardening::$name($kind, $surface)
    };
}

mod hardening_cells {
    use super::*;
    support::per_backend_tests!(hardening_cell;
        declared_lengths_reserve_nothing_up_front,
        post_received_once_when_its_connection_dies_after_it_was_read,
        decompression_ends_by_the_deadline,
    );
}

macro_rules! hardening_per_backend {
    ($($(#[$meta:meta])* $module:ident => $kind:expr;)*) => {
        $(
            $(#[$meta])*
            mod $module {
                use super::*;

                #[test]
                fn decompression_does_not_stall_the_runtime() {
                    hardening::decompression_does_not_stall_the_runtime($kind);
                }

                #[test]
                fn a_blocking_caller_stuck_in_a_callback_holds_up_no_other() {
                    hardening::a_blocking_caller_stuck_in_a_callback_holds_up_no_other($kind);
                }
            }
        )*
    };
}

mod hardening_per_backend {
    use super::*;
    hardening_per_backend! {
        #[cfg(feature = "hyper")]
        hyper => BackendKind::Hyper;
        #[cfg(feature = "reqwest")]
        reqwest => BackendKind::Reqwest;
        #[cfg(feature = "curl")]
        curl => BackendKind::Curl;
        #[cfg(feature = "ureq")]
        ureq => BackendKind::Ureq;
    }

    #[cfg(feature = "curl")]
    #[test]
    fn curl_cancellation_storm_stays_within_the_transfer_cap() {
        hardening::cancellation_storm_stays_within_the_transfer_cap(BackendKind::Curl);
    }

    #[cfg(feature = "ureq")]
    #[test]
    fn ureq_cancellation_storm_stays_within_the_transfer_cap() {
        hardening::cancellation_storm_stays_within_the_transfer_cap(BackendKind::Ureq);
    }

    #[cfg(feature = "hyper")]
    #[test]
    fn hyper_a_panicking_waker_does_not_stop_deadlines() {
        hardening::a_panicking_waker_does_not_stop_deadlines(BackendKind::Hyper);
    }

    #[cfg(feature = "reqwest")]
    #[test]
    fn reqwest_a_panicking_waker_does_not_stop_deadlines() {
        hardening::a_panicking_waker_does_not_stop_deadlines(BackendKind::Reqwest);
    }
}

/// A gibibyte each way, streamed: resident memory stays bounded whatever the body's size.
mod gib {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    const GIB: u64 = 1 << 30;

    /// A server on its own thread: `GET` answers 1 GiB (`Content-Length`), written as fast as the
    /// client takes it; `PUT` reads the body to its end (`Content-Length` or chunked) and answers
    /// the number of bytes it read. One request per connection.
    fn start() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                std::thread::spawn(move || serve(conn));
            }
        });
        url
    }

    fn serve(mut s: std::net::TcpStream) {
        let mut buf = vec![0u8; 256 * 1024];
        let mut head = Vec::new();
        let end = loop {
            let n = match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            head.extend_from_slice(&buf[..n]);
            if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
        if text.starts_with("get") {
            let _ = s.write_all(
                format!("HTTP/1.1 200 OK\r\ncontent-length: {GIB}\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            );
            let piece = vec![b'x'; 256 * 1024];
            let mut sent = 0;
            while sent < GIB {
                if s.write_all(&piece).is_err() {
                    return;
                }
                sent += piece.len() as u64;
            }
            return;
        }
        // A PUT: count the body (its framing read loosely: enough for the clients under test).
        let declared = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<u64>().ok());
        let mut got = (head.len() - end) as u64;
        let mut tail = head[end..].to_vec();
        loop {
            let done = match declared {
                Some(len) => got >= len,
                None => tail.ends_with(b"0\r\n\r\n"),
            };
            if done {
                break;
            }
            let n = match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            got += n as u64;
            tail = buf[n.saturating_sub(5)..n].to_vec();
        }
        let body = got.to_string();
        let _ = s.write_all(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    }

    /// The process's peak resident memory since the last reset, in KiB; resets it.
    fn peak_kib_and_reset() -> u64 {
        let peak = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0);
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        peak
    }

    #[test]
    #[ignore = "gib: run by .ci/run with --ignored"]
    fn gib_download_and_upload_stream_in_bounded_memory() {
        let _alone = alone();
        let url = start();
        let dir = std::env::temp_dir();
        let source = dir.join(format!("httpfleet-gib-source-{}", std::process::id()));
        // A sparse file: read back as zeros, from no disk.
        std::fs::File::create(&source)
            .unwrap()
            .set_len(GIB)
            .unwrap();
        let sink = dir.join(format!("httpfleet-gib-sink-{}", std::process::id()));
        let config = |kind| {
            Config::default()
                .backend(kind)
                .timeout(Duration::from_secs(300))
                .max_response_bytes(u64::MAX)
        };
        for kind in BackendKind::enabled().filter(|k| *k != BackendKind::Mock) {
            for surface in [Surface::Async, Surface::Blocking] {
                let h = Harness::new(kind, surface);
                let async_client = Client::from_config(&config(kind)).unwrap();
                let blocking = httpfleet::blocking::Client::from_config(&config(kind)).unwrap();
                let base = rss_kib();
                peak_kib_and_reset();
                let start = Instant::now();
                let mut file = std::fs::File::create(&sink).unwrap();
                let written = match surface {
                    Surface::Async => h.block_on(async {
                        let mut resp = async_client.get(&url).send().await.unwrap();
                        let mut n = 0u64;
                        while let Some(piece) = resp.chunk().await.unwrap() {
                            file.write_all(&piece).unwrap();
                            n += piece.len() as u64;
                        }
                        n
                    }),
                    Surface::Blocking => {
                        let mut resp = blocking.get(&url).send().unwrap();
                        resp.copy_to(&mut file).unwrap()
                    }
                };
                let down = start.elapsed();
                let down_peak = peak_kib_and_reset().saturating_sub(base);
                assert_eq!(written, GIB, "{kind} {surface:?}");
                let body = || httpfleet::Body::file(&source).unwrap();
                let start = Instant::now();
                let echoed = match surface {
                    Surface::Async => h.block_on(async {
                        let resp = async_client.put(&url).body(body()).send().await.unwrap();
                        resp.text().await.unwrap()
                    }),
                    Surface::Blocking => blocking
                        .put(&url)
                        .body(body())
                        .send()
                        .unwrap()
                        .text()
                        .unwrap(),
                };
                let up = start.elapsed();
                let up_peak = peak_kib_and_reset().saturating_sub(base);
                assert_eq!(echoed, GIB.to_string(), "{kind} {surface:?}");
                let mib_s = |d: Duration| 1024.0 / d.as_secs_f64();
                println!(
                    "gib {kind} {surface:?}: download {down:?} ({:.0} MiB/s), peak resident growth {down_peak} KiB; upload {up:?} ({:.0} MiB/s), peak resident growth {up_peak} KiB",
                    mib_s(down),
                    mib_s(up)
                );
                assert!(
                    down_peak < 16 * 1024,
                    "{kind} {surface:?}: download grew {down_peak} KiB"
                );
                assert!(
                    up_peak < 16 * 1024,
                    "{kind} {surface:?}: upload grew {up_peak} KiB"
                );
            }
        }
        let _ = std::fs::remove_file(&source);
        let _ = std::fs::remove_file(&sink);
    }
}
