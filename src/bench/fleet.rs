//! Fleet benchmarks behind `httpfleet bench`: what hedging does to the tail against a realistic
//! exchange round trip, and what each strategy costs over healthy members.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::runner::TIMEOUT;
use super::server::BenchServer;
use crate::fleet::{BudgetConfig, HedgeDelay, RetryPolicy};
use crate::{BackendKind, Client, Config, FleetBuilder, Member, Strategy};

/// The tail of one strategy against `/exchange`.
#[derive(Debug, Clone, Serialize)]
pub struct HedgeRow {
    /// The strategy.
    pub strategy: String,
    /// Requests sent by the caller.
    pub requests: usize,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// p99 / p50.
    pub p99_over_p50: f64,
    /// Extra requests the server saw (hedges), as a share of the caller's requests.
    pub extra_share: f64,
}

/// The per-request cost of one strategy over healthy members, against one backend.
#[derive(Debug, Clone, Serialize)]
pub struct StrategyRow {
    /// The strategy.
    pub strategy: String,
    /// Median latency of the single-backend client, µs.
    pub single_median_us: f64,
    /// Median latency through the fleet, µs.
    pub fleet_median_us: f64,
    /// Median of the per-round ratios fleet / single.
    pub ratio: f64,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Two hyper members on the server, each with its own backend, or both over `shared`.
fn two_members(server: &BenchServer, shared: Option<&crate::Backend>) -> Vec<Member> {
    (0..2)
        .map(|i| {
            match shared {
                Some(backend) => Member::with_backend(backend.clone()),
                None => Member::new(BackendKind::Hyper),
            }
            .base_url(server.url(""))
            .name(format!("hyper-{i}"))
        })
        .collect()
}

/// Single against hedged (fixed delay, percentile delay) on `/exchange`: `n` sequential requests
/// each, after a warm-up.
pub fn hedging(
    server: &BenchServer,
    n: usize,
    mut progress: impl FnMut(&HedgeRow),
) -> Vec<HedgeRow> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = Config::default().timeout(TIMEOUT);
    let strategies = [
        ("single", Strategy::Single),
        (
            "hedged fixed 8 ms",
            Strategy::hedged(Duration::from_millis(8)),
        ),
        (
            "hedged p95 (floor 6 ms)",
            Strategy::Hedged {
                delay: HedgeDelay::Percentile {
                    quantile: 0.95,
                    floor: Duration::from_millis(6),
                },
                max_extra: 1,
            },
        ),
    ];
    let mut rows = Vec::new();
    for (name, strategy) in strategies {
        let client = FleetBuilder::new(&config)
            .members(two_members(server, None))
            .strategy(strategy)
            .retry(RetryPolicy::none().budget(BudgetConfig::default()))
            .build()
            .expect("fleet");
        let mut lat = Vec::with_capacity(n);
        rt.block_on(async {
            for _ in 0..100 {
                let resp = client.get("/exchange").send().await.expect("warm-up");
                resp.bytes().await.expect("warm-up body");
            }
            let before = server.requests();
            for _ in 0..n {
                let t = Instant::now();
                let resp = client.get("/exchange").send().await.expect("request");
                resp.bytes().await.expect("body");
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            // Lost hedges still reach the server a moment later.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let seen = server.requests() - before;
            lat.sort_by(|a, b| a.total_cmp(b));
            let row = HedgeRow {
                strategy: name.to_owned(),
                requests: n,
                p50_ms: pct(&lat, 0.5),
                p99_ms: pct(&lat, 0.99),
                p999_ms: pct(&lat, 0.999),
                p99_over_p50: pct(&lat, 0.99) / pct(&lat, 0.5),
                extra_share: seen.saturating_sub(n) as f64 / n as f64,
            };
            progress(&row);
            rows.push(row);
        });
    }
    rows
}

/// Each strategy over two healthy hyper members against a plain hyper client, on `/small`:
/// interleaved rounds, median of per-round ratios of medians. The members share one hyper
/// backend (one connection pool, as the plain client has), so what differs is the strategy's
/// own work, not how many connections are kept warm. The first row is the A/A control: a
/// second plain client against the first, same run.
pub fn strategies(
    server: &BenchServer,
    rounds: usize,
    per_round: usize,
    mut progress: impl FnMut(&StrategyRow),
) -> Vec<StrategyRow> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = Config::default()
        .backend(BackendKind::Hyper)
        .timeout(TIMEOUT);
    let single = Client::from_config(&config).expect("client");
    let shared = crate::Backend::from_config(&config).expect("backend");
    let url = server.url("/small");
    let strategies = [
        ("control (client vs client)", None),
        ("single", Some(Strategy::Single)),
        ("failover", Some(Strategy::Failover)),
        ("round-robin", Some(Strategy::RoundRobin)),
        ("random", Some(Strategy::Random { seed: Some(7) })),
        ("adaptive", Some(Strategy::adaptive())),
        (
            "hedged (50 ms, none fire)",
            Some(Strategy::hedged(Duration::from_millis(50))),
        ),
    ];
    let mut rows = Vec::new();
    for (name, strategy) in strategies {
        let (fleet, fleet_url) = match strategy {
            Some(strategy) => (
                FleetBuilder::new(&config)
                    .members(two_members(server, Some(&shared)))
                    .strategy(strategy)
                    .build()
                    .expect("fleet"),
                "/small",
            ),
            None => (Client::from_config(&config).expect("client"), url.as_str()),
        };
        let time = |c: &Client, path: &str, n: usize| -> Vec<f64> {
            rt.block_on(async {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let t = Instant::now();
                    let resp = c.get(path).send().await.expect("request");
                    std::hint::black_box(resp.bytes().await.expect("body"));
                    v.push(t.elapsed().as_secs_f64() * 1e6);
                }
                v.sort_by(|a, b| a.total_cmp(b));
                v
            })
        };
        time(&single, &url, 50);
        time(&fleet, fleet_url, 50);
        let (mut all_s, mut all_f, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (s, f) = if round % 2 == 0 {
                let s = time(&single, &url, per_round);
                (s, time(&fleet, fleet_url, per_round))
            } else {
                let f = time(&fleet, fleet_url, per_round);
                (time(&single, &url, per_round), f)
            };
            ratios.push(pct(&f, 0.5) / pct(&s, 0.5));
            all_s.extend(s);
            all_f.extend(f);
        }
        for v in [&mut all_s, &mut all_f, &mut ratios] {
            v.sort_by(|a, b| a.total_cmp(b));
        }
        let row = StrategyRow {
            strategy: name.to_owned(),
            single_median_us: pct(&all_s, 0.5),
            fleet_median_us: pct(&all_f, 0.5),
            ratio: pct(&ratios, 0.5),
        };
        progress(&row);
        rows.push(row);
    }
    rows
}
