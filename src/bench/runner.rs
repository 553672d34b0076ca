//! The interleaved overhead benchmark behind `httpfleet bench`: for every backend, surface and
//! route, rounds of `direct` and `httpfleet` alternate (A B, then B A, ...) so the machine's
//! drift cancels; each round gives a ratio of medians, and the figure is the median of those
//! ratios, with their spread. An A/A row (the client against itself) shows the noise floor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::direct::{Direct, Route};
use crate::{BackendKind, Client, Config};

/// Which client surface a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Surface {
    /// `Client` from async code, one request at a time.
    Async,
    /// `Client` from async code, 32 requests in flight.
    Async32,
    /// `blocking::Client`.
    Blocking,
}

impl Surface {
    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Surface::Async => "async",
            Surface::Async32 => "async x32",
            Surface::Blocking => "blocking",
        }
    }
}

/// What the baseline of a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// The client used directly, no deadline.
    Direct,
    /// The client used directly with the same total deadline set its own way.
    DirectTimeout,
    /// A/A control: the direct client against a second direct client.
    Control,
}

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The backend.
    pub backend: String,
    /// The surface.
    pub surface: String,
    /// The route.
    pub route: String,
    /// The baseline.
    pub baseline: Baseline,
    /// Median latency of the baseline, µs.
    pub direct_median_us: f64,
    /// p99 latency of the baseline, µs.
    pub direct_p99_us: f64,
    /// Median latency through httpfleet (or of the second direct client for the control), µs.
    pub httpfleet_median_us: f64,
    /// p99 latency through httpfleet, µs.
    pub httpfleet_p99_us: f64,
    /// Median of the per-round ratios httpfleet / baseline.
    pub ratio: f64,
    /// 25th percentile of the per-round ratios.
    pub ratio_p25: f64,
    /// 75th percentile of the per-round ratios.
    pub ratio_p75: f64,
    /// Requests per second of the baseline.
    pub direct_rps: f64,
    /// Requests per second through httpfleet.
    pub httpfleet_rps: f64,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Backends to measure.
    pub backends: Vec<BackendKind>,
    /// Surfaces to measure.
    pub surfaces: Vec<Surface>,
    /// Routes to measure.
    pub routes: Vec<Route>,
    /// Rounds per row.
    pub rounds: usize,
    /// Requests per side per round.
    pub per_round: usize,
    /// Also measure against the direct client with its own deadline.
    pub timeout_baseline: bool,
    /// Add the A/A control row per backend and surface.
    pub control: bool,
}

/// The total deadline both sides use.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// One side of a comparison.
enum Side {
    Direct(Arc<Direct>),
    Fleet(Client),
}

impl Side {
    async fn one(&self, url: &str, route: Route) -> usize {
        match self {
            Side::Direct(d) => d.send(url, route).await,
            Side::Fleet(c) => route.send(c, url).await,
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Latencies (µs) of `n` requests on one side.
fn measure(
    side: &Side,
    blocking: Option<&crate::blocking::Client>,
    surface: Surface,
    url: &str,
    route: Route,
    n: usize,
    rt: &tokio::runtime::Runtime,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    match (surface, side) {
        (Surface::Blocking, Side::Direct(d)) => {
            for _ in 0..n {
                let t = Instant::now();
                std::hint::black_box(d.send_blocking(url, route, rt));
                out.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        (Surface::Blocking, Side::Fleet(_)) => {
            let c = blocking.expect("blocking client");
            for _ in 0..n {
                let t = Instant::now();
                std::hint::black_box(route.send_blocking(c, url));
                out.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        (Surface::Async, side) => {
            rt.block_on(async {
                for _ in 0..n {
                    let t = Instant::now();
                    std::hint::black_box(side.one(url, route).await);
                    out.push(t.elapsed().as_secs_f64() * 1e6);
                }
            });
        }
        (Surface::Async32, side) => {
            rt.block_on(async {
                let batches = n.div_ceil(32).max(1);
                for _ in 0..batches {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..32 {
                        let side = match side {
                            Side::Direct(d) => Side::Direct(d.clone()),
                            Side::Fleet(c) => Side::Fleet(c.clone()),
                        };
                        let url = url.to_owned();
                        set.spawn(async move {
                            let t = Instant::now();
                            std::hint::black_box(side.one(&url, route).await);
                            t.elapsed().as_secs_f64() * 1e6
                        });
                    }
                    while let Some(r) = set.join_next().await {
                        out.push(r.expect("request task"));
                    }
                }
            });
        }
    }
    out
}

/// Runs `spec` against the server at `base` (`http://127.0.0.1:PORT`), calling `progress` with
/// each finished row.
pub fn run(spec: &Spec, base: &str, mut progress: impl FnMut(&Row)) -> Vec<Row> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    for &kind in &spec.backends {
        // The same wire as the bare client: the server does the same work for both.
        let config =
            super::direct::same_wire(kind, Config::default().backend(kind).timeout(TIMEOUT));
        let Ok(fleet_client) = Client::from_config(&config) else {
            continue;
        };
        let Ok(blocking) = crate::blocking::Client::from_config(&config) else {
            continue;
        };
        let (Some(direct), Some(direct_t), Some(direct_b)) = (
            Direct::new(kind, None),
            Direct::new(kind, Some(TIMEOUT)),
            Direct::new(kind, None),
        ) else {
            continue;
        };
        let (direct, direct_t, direct_b) =
            (Arc::new(direct), Arc::new(direct_t), Arc::new(direct_b));
        for &surface in &spec.surfaces {
            for &route in &spec.routes {
                let url = format!("{base}{}", route.path());
                let mut baselines = vec![(
                    Baseline::Direct,
                    Side::Direct(direct.clone()),
                    Side::Fleet(fleet_client.clone()),
                )];
                if spec.timeout_baseline {
                    baselines.push((
                        Baseline::DirectTimeout,
                        Side::Direct(direct_t.clone()),
                        Side::Fleet(fleet_client.clone()),
                    ));
                }
                if spec.control && route == Route::Small {
                    baselines.push((
                        Baseline::Control,
                        Side::Direct(direct.clone()),
                        Side::Direct(direct_b.clone()),
                    ));
                }
                for (baseline, a, b) in &baselines {
                    // Warm both sides: connections open, caches filled.
                    measure(a, Some(&blocking), surface, &url, route, 20, &rt);
                    measure(b, Some(&blocking), surface, &url, route, 20, &rt);
                    let (mut all_a, mut all_b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
                    let (mut time_a, mut time_b) = (Duration::ZERO, Duration::ZERO);
                    for round in 0..spec.rounds {
                        let run_side = |side: &Side, all: &mut Vec<f64>, time: &mut Duration| {
                            let t = Instant::now();
                            let v = measure(
                                side,
                                Some(&blocking),
                                surface,
                                &url,
                                route,
                                spec.per_round,
                                &rt,
                            );
                            *time += t.elapsed();
                            let m = percentile(&sorted(v.clone()), 0.5);
                            all.extend(v);
                            m
                        };
                        let (ma, mb) = if round % 2 == 0 {
                            let ma = run_side(a, &mut all_a, &mut time_a);
                            (ma, run_side(b, &mut all_b, &mut time_b))
                        } else {
                            let mb = run_side(b, &mut all_b, &mut time_b);
                            (run_side(a, &mut all_a, &mut time_a), mb)
                        };
                        ratios.push(mb / ma);
                    }
                    let (sa, sb, sr) = (sorted(all_a), sorted(all_b), sorted(ratios));
                    let rps = |n: usize, t: Duration| n as f64 / t.as_secs_f64().max(1e-9);
                    let row = Row {
                        backend: kind.to_string(),
                        surface: surface.name().to_owned(),
                        route: route.name().to_owned(),
                        baseline: *baseline,
                        direct_median_us: percentile(&sa, 0.5),
                        direct_p99_us: percentile(&sa, 0.99),
                        httpfleet_median_us: percentile(&sb, 0.5),
                        httpfleet_p99_us: percentile(&sb, 0.99),
                        ratio: percentile(&sr, 0.5),
                        ratio_p25: percentile(&sr, 0.25),
                        ratio_p75: percentile(&sr, 0.75),
                        direct_rps: rps(sa.len(), time_a),
                        httpfleet_rps: rps(sb.len(), time_b),
                    };
                    progress(&row);
                    rows.push(row);
                }
            }
        }
    }
    rows
}
