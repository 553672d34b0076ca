//! Overhead of httpfleet against each client used directly, measured in one run on the same
//! loopback server (`httpfleet::bench::BenchServer`, its own threads).
//!
//! For every backend, surface and route: `direct` (the client as its docs show it, from
//! `httpfleet::bench::Direct`), `direct_timeout` (the same with the total deadline set its own
//! way: `timeout`, `timeout_global`, `CURLOPT_TIMEOUT`, `tokio::time::timeout`) and `httpfleet`
//! (the same client behind `httpfleet::Client`). Both sides send the same request headers. Plus
//! every fleet strategy over two healthy hyper members against one hyper client.
//!
//! Run: `cargo bench --bench overhead --all-features` (`-- hyper` filters). divan runs the
//! benches one after another; the interleaved A/B comparison with an A/A control is
//! `httpfleet bench`, and instruction counts are `scripts/instructions.sh`.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use divan::Bencher;
use httpfleet::bench::{BenchServer, Direct, Route, TIMEOUT};
use httpfleet::{BackendKind, Client, Config, FleetBuilder, Member, Strategy};

fn main() {
    divan::main();
}

static SERVER: LazyLock<BenchServer> =
    LazyLock::new(|| BenchServer::start(1).expect("bench server"));

const ROUTES: [Route; 4] = Route::ALL;
const KINDS: [BackendKind; 4] = [
    BackendKind::Curl,
    BackendKind::Reqwest,
    BackendKind::Hyper,
    BackendKind::Ureq,
];

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn config(kind: BackendKind) -> Config {
    Config::default().backend(kind).timeout(TIMEOUT)
}

/// The async surface, one request at a time.
mod async_surface {
    use super::*;

    #[divan::bench(consts = [0, 1, 2, 3], args = ROUTES)]
    fn direct<const K: usize>(b: Bencher, route: Route) {
        let (rt, d, url) = (
            rt(),
            Direct::new(KINDS[K], None).unwrap(),
            SERVER.url(route.path()),
        );
        b.bench_local(|| rt.block_on(d.send(&url, route)));
    }

    #[divan::bench(consts = [0, 1, 2, 3], args = ROUTES)]
    fn direct_timeout<const K: usize>(b: Bencher, route: Route) {
        let d = Direct::new(KINDS[K], Some(TIMEOUT)).unwrap();
        let (rt, url) = (rt(), SERVER.url(route.path()));
        b.bench_local(|| rt.block_on(d.send(&url, route)));
    }

    #[divan::bench(consts = [0, 1, 2, 3], args = ROUTES)]
    fn httpfleet<const K: usize>(b: Bencher, route: Route) {
        let c = Client::from_config(&config(KINDS[K])).unwrap();
        let (rt, url) = (rt(), SERVER.url(route.path()));
        b.bench_local(|| rt.block_on(route.send(&c, &url)));
    }
}

/// The blocking surface.
mod blocking_surface {
    use super::*;

    #[divan::bench(consts = [0, 1, 2, 3], args = ROUTES)]
    fn direct<const K: usize>(b: Bencher, route: Route) {
        let (rt, d, url) = (
            rt(),
            Direct::new(KINDS[K], None).unwrap(),
            SERVER.url(route.path()),
        );
        b.bench_local(|| d.send_blocking(&url, route, &rt));
    }

    #[divan::bench(consts = [0, 1, 2, 3], args = ROUTES)]
    fn direct_timeout<const K: usize>(b: Bencher, route: Route) {
        let d = Direct::new(KINDS[K], Some(TIMEOUT)).unwrap();
        let (rt, url) = (rt(), SERVER.url(route.path()));
        b.bench_local(|| d.send_blocking(&url, route, &rt));
    }

    #[divan::bench(consts = [0, 1, 2, 3], args = ROUTES)]
    fn httpfleet<const K: usize>(b: Bencher, route: Route) {
        let c = httpfleet::blocking::Client::from_config(&config(KINDS[K])).unwrap();
        let url = SERVER.url(route.path());
        b.bench_local(|| route.send_blocking(&c, &url));
    }
}

/// The async surface with 32 requests in flight (one iteration = 32 requests).
mod async_32_in_flight {
    use super::*;

    #[divan::bench(consts = [0, 1, 2, 3])]
    fn direct<const K: usize>(b: Bencher) {
        let rt = rt();
        let d = Arc::new(Direct::new(KINDS[K], None).unwrap());
        let url: Arc<str> = SERVER.url("/small").into();
        b.bench_local(|| {
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..32 {
                    let (d, url) = (d.clone(), url.clone());
                    set.spawn(async move { d.send(&url, Route::Small).await });
                }
                while set.join_next().await.is_some() {}
            })
        });
    }

    #[divan::bench(consts = [0, 1, 2, 3])]
    fn httpfleet<const K: usize>(b: Bencher) {
        let rt = rt();
        let c = Client::from_config(&config(KINDS[K])).unwrap();
        let url: Arc<str> = SERVER.url("/small").into();
        b.bench_local(|| {
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..32 {
                    let (c, url) = (c.clone(), url.clone());
                    set.spawn(async move { Route::Small.send(&c, &url).await });
                }
                while set.join_next().await.is_some() {}
            })
        });
    }
}

/// Every strategy over two healthy hyper members sharing one backend (one connection pool, as
/// the single client has), against one hyper client (`single_backend`).
mod strategies {
    use super::*;

    fn strategy(i: usize) -> Strategy {
        match i {
            0 => Strategy::Single,
            1 => Strategy::Failover,
            2 => Strategy::RoundRobin,
            3 => Strategy::Random { seed: Some(7) },
            4 => Strategy::adaptive(),
            _ => Strategy::hedged(Duration::from_millis(50)),
        }
    }

    #[divan::bench]
    fn single_backend(b: Bencher) {
        let c = Client::from_config(&config(BackendKind::Hyper)).unwrap();
        let (rt, url) = (rt(), SERVER.url("/small"));
        b.bench_local(|| rt.block_on(Route::Small.send(&c, &url)));
    }

    /// 0 single, 1 failover, 2 round-robin, 3 random, 4 adaptive, 5 hedged (50 ms, none fire).
    #[divan::bench(args = [0, 1, 2, 3, 4, 5])]
    fn fleet(b: Bencher, which: usize) {
        let backend = httpfleet::Backend::from_config(&config(BackendKind::Hyper)).unwrap();
        let member = |name: &str| {
            Member::with_backend(backend.clone())
                .base_url(SERVER.url(""))
                .name(name)
        };
        let c = FleetBuilder::new(&config(BackendKind::Hyper))
            .member(member("a"))
            .member(member("b"))
            .strategy(strategy(which))
            .build()
            .unwrap();
        let rt = rt();
        b.bench_local(|| rt.block_on(Route::Small.send(&c, "/small")));
    }
}
