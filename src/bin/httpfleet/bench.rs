//! `httpfleet bench`: httpfleet's overhead against each client used directly, interleaved on an
//! embedded loopback server; then the fleet strategies and hedging.

use std::io::Write as _;

use clap::ValueEnum;
use httpfleet::BackendKind;
use httpfleet::bench::{BenchServer, Route, Row, Spec, Surface};

use super::{Res, parse_kind, parse_route};

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Backends to measure (default: every enabled one).
    #[arg(long = "backend", value_parser = parse_kind)]
    backends: Vec<BackendKind>,
    /// Surfaces to measure.
    #[arg(long = "surface", value_enum)]
    surfaces: Vec<SurfaceArg>,
    /// Routes: get-13B, get-1KiB-json, get-1MiB, post-1KiB (default: all).
    #[arg(long = "route", value_parser = parse_route)]
    routes: Vec<Route>,
    /// Interleaved rounds per row.
    #[arg(long, default_value_t = 12)]
    rounds: usize,
    /// Requests per side per round.
    #[arg(long, default_value_t = 100)]
    requests: usize,
    /// Skip the baseline with the client's own deadline.
    #[arg(long)]
    no_timeout_baseline: bool,
    /// Skip the A/A control rows.
    #[arg(long)]
    no_control: bool,
    /// Write the rows as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Run only these parts: overhead, throughput, strategies, hedging (repeatable; default:
    /// all).
    #[arg(long = "only")]
    only: Vec<String>,
    /// MiB per download in the throughput part.
    #[arg(long, default_value_t = 256)]
    stream_mib: u64,
    /// Requests per strategy in the hedging part (each a 5 ms exchange round trip).
    #[arg(long, default_value_t = 2000)]
    hedge_requests: usize,
}

#[derive(Clone, Copy, ValueEnum)]
enum SurfaceArg {
    Async,
    Async32,
    Blocking,
}

pub(crate) fn bench(args: BenchArgs) -> Res {
    let server = BenchServer::start(1)?;
    let part = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let mut json = serde_json::Map::new();
    let backends = if args.backends.is_empty() {
        BackendKind::enabled()
            .filter(|k| *k != BackendKind::Mock)
            .collect()
    } else {
        args.backends
    };
    let surfaces = if args.surfaces.is_empty() {
        vec![Surface::Async, Surface::Blocking, Surface::Async32]
    } else {
        args.surfaces
            .iter()
            .map(|s| match s {
                SurfaceArg::Async => Surface::Async,
                SurfaceArg::Async32 => Surface::Async32,
                SurfaceArg::Blocking => Surface::Blocking,
            })
            .collect()
    };
    let spec = Spec {
        backends,
        surfaces,
        routes: if args.routes.is_empty() {
            Route::ALL.to_vec()
        } else {
            args.routes
        },
        rounds: args.rounds.max(1),
        per_round: args.requests.max(1),
        timeout_baseline: !args.no_timeout_baseline,
        control: !args.no_control,
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "httpfleet {} bench: loopback server {}, {} rounds x {} requests per side, interleaved; {} CPUs",
        env!("CARGO_PKG_VERSION"),
        server.url(""),
        spec.rounds,
        spec.per_round,
        cpus
    );
    println!(
        "{:<8} {:<10} {:<14} {:<15} {:>10} {:>10} {:>10} {:>10} {:>7} {:>15} {:>9} {:>9}",
        "backend",
        "surface",
        "route",
        "baseline",
        "base p50",
        "fleet p50",
        "base p99",
        "fleet p99",
        "ratio",
        "ratio p25-p75",
        "base r/s",
        "fleet r/s"
    );
    let rows = if !part("overhead") {
        Vec::new()
    } else {
        httpfleet::bench::run(&spec, &server.url(""), |r: &Row| {
            println!(
                "{:<8} {:<10} {:<14} {:<15} {:>8.1}us {:>8.1}us {:>8.1}us {:>8.1}us {:>7.3} {:>7.3}-{:<7.3} {:>9.0} {:>9.0}",
                r.backend,
                r.surface,
                r.route,
                format!("{:?}", r.baseline).to_lowercase(),
                r.direct_median_us,
                r.httpfleet_median_us,
                r.direct_p99_us,
                r.httpfleet_p99_us,
                r.ratio,
                r.ratio_p25,
                r.ratio_p75,
                r.direct_rps,
                r.httpfleet_rps
            );
            let _ = std::io::stdout().flush();
        })
    };
    json.insert("overhead".into(), serde_json::to_value(&rows)?);
    if part("throughput") {
        println!();
        let rounds = spec.rounds;
        println!(
            "streamed download of {} MiB, read piece by piece, {rounds} interleaved rounds",
            args.stream_mib
        );
        println!(
            "{:<8} {:<10} {:<9} {:>12} {:>12} {:>7}",
            "backend", "surface", "baseline", "base MiB/s", "fleet MiB/s", "ratio"
        );
        let rows = httpfleet::bench::throughput(
            &spec.backends,
            &server.url(""),
            args.stream_mib.max(1),
            rounds,
            |r| {
                println!(
                    "{:<8} {:<10} {:<9} {:>12.0} {:>12.0} {:>7.3}",
                    r.backend, r.surface, r.baseline, r.direct_mib_s, r.httpfleet_mib_s, r.ratio
                );
                let _ = std::io::stdout().flush();
            },
        );
        json.insert("throughput".into(), serde_json::to_value(&rows)?);
    }
    if part("strategies") {
        println!();
        println!(
            "fleet strategies over two healthy hyper members vs one hyper client, GET 13 B, interleaved"
        );
        println!(
            "{:<28} {:>12} {:>12} {:>8}",
            "strategy", "single p50", "fleet p50", "ratio"
        );
        let rows = httpfleet::bench::strategies(&server, spec.rounds, spec.per_round, |r| {
            println!(
                "{:<28} {:>10.1}us {:>10.1}us {:>8.3}",
                r.strategy, r.single_median_us, r.fleet_median_us, r.ratio
            );
        });
        json.insert("strategies".into(), serde_json::to_value(&rows)?);
    }
    if part("hedging") {
        println!();
        println!(
            "hedging against a 5 ms exchange round trip, 2% of answers 50 ms later; {} requests each",
            args.hedge_requests
        );
        println!(
            "{:<26} {:>9} {:>9} {:>9} {:>9} {:>8}",
            "strategy", "p50", "p99", "p99.9", "p99/p50", "extra"
        );
        let rows = httpfleet::bench::hedging(&server, args.hedge_requests.max(100), |r| {
            println!(
                "{:<26} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>9.2} {:>7.1}%",
                r.strategy,
                r.p50_ms,
                r.p99_ms,
                r.p999_ms,
                r.p99_over_p50,
                r.extra_share * 100.0
            );
        });
        json.insert("hedging".into(), serde_json::to_value(&rows)?);
    }
    println!(
        "connections accepted by the server: {}",
        server.connections()
    );
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_vec_pretty(&json)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
