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

use httpfleet::{BackendKind, Config, ErrorKind, TimeoutPhase};
use support::fault::{Fault, FaultServer};
use support::harness::{Harness, Surface};

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

/// Appends one measured matrix cell to the report that `scripts/parity.py` turns into README's
/// fault table.
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
            "gzip_inflating_past_the_limit" => Case {
                fault: Fault::GzipBomb {
                    decoded: 80 * 1024 * 1024,
                },
                config: |c| c,
                expect: Err(ErrorKind::BodyTooLarge),
                within: ms(8000),
            },
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
            other => panic!("no case {other}"),
        }
    }

    pub fn run(name: &'static str, kind: BackendKind, surface: Surface) {
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

macro_rules! matrix {
    ($($(#[$meta:meta])* $module:ident => $kind:expr;)*) => {
        $(
            $(#[$meta])*
            mod $module {
                use super::*;
                matrix!(@surface async_surface, $kind, Surface::Async);
                matrix!(@surface blocking_surface, $kind, Surface::Blocking);
            }
        )*
    };
    (@surface $surface_mod:ident, $kind:expr, $surface:expr) => {
        mod $surface_mod {
            use super::*;
            matrix!(@cells $kind, $surface;
                refused_connection, connect_never_completes, connect_outlasts_total_deadline,
                accepted_but_never_answered, headers_then_stalled_body,
                body_dripped_slower_than_deadline, reset_during_headers, reset_during_body,
                close_before_content_length, malformed_status_line, malformed_chunked_encoding,
                header_block_over_the_limit, endless_redirect_loop, redirect_to_closed_port,
                gzip_inflating_past_the_limit, tls_handshake_stalls, tls_certificate_for_wrong_host,
            );
            #[test]
            fn stale_pooled_connection_is_retried_on_a_fresh_one() {
                matrix::stale_pooled_connection_is_retried_on_a_fresh_one($kind, $surface);
            }
        }
    };
    (@cells $kind:expr, $surface:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                matrix::run(stringify!($name), $kind, $surface);
            }
        )*
    };
}

matrix! {
    #[cfg(feature = "hyper")]
    hyper => BackendKind::Hyper;
    #[cfg(feature = "reqwest")]
    reqwest => BackendKind::Reqwest;
    #[cfg(feature = "curl")]
    curl => BackendKind::Curl;
    #[cfg(feature = "ureq")]
    ureq => BackendKind::Ureq;
}
