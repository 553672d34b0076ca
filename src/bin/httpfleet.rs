//! The `httpfleet` command: `bench` (overhead against each client used directly, interleaved,
//! on an embedded loopback server), `get` (one request through any backend or fleet), `serve`
//! (the benchmark server alone) and `instr` (a fixed request loop for instruction counting).

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use httpfleet::bench::{BenchServer, Direct, Route, Row, Spec, Surface};
use httpfleet::{BackendKind, Client, Config, FleetBuilder, Member, Strategy};

#[derive(Parser)]
#[command(
    name = "httpfleet",
    version,
    about = "One HTTP client API over curl, reqwest, hyper and ureq"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure httpfleet's overhead against each client used directly, on a loopback server.
    Bench(BenchArgs),
    /// Send one request through a backend or a fleet.
    Get(GetArgs),
    /// Run the benchmark server alone and print its URL.
    Serve {
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
    },
    /// Fetch klines over any range from a Binance-compatible REST API and/or Vision files.
    #[cfg(feature = "market")]
    Klines(KlinesCmd),
    /// Run a fixed number of requests (for `scripts/instructions.sh` under callgrind).
    #[command(hide = true)]
    Instr(InstrArgs),
}

#[cfg(feature = "market")]
#[derive(clap::Args)]
struct KlinesCmd {
    /// spot, usdm or coinm.
    #[arg(long, default_value = "spot")]
    market: String,
    /// The symbol, such as BTCUSDT.
    #[arg(long)]
    symbol: String,
    /// The interval: 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M.
    #[arg(long)]
    interval: String,
    /// First day (YYYY-MM-DD) or instant, inclusive.
    #[arg(long)]
    start: String,
    /// End day or instant, exclusive.
    #[arg(long)]
    end: String,
    /// Where candles come from: auto (Vision files for past days and months, REST for the
    /// rest), rest or vision.
    #[arg(long, default_value = "auto")]
    source: String,
    /// A REST base URL (repeatable; failover in order). Default: the exchange's hosts.
    #[arg(long = "rest-url")]
    rest_urls: Vec<String>,
    /// A Vision base URL (repeatable). Default: data.binance.vision.
    #[arg(long = "vision-url")]
    vision_urls: Vec<String>,
    /// The backend serving the requests.
    #[arg(long, value_parser = parse_kind)]
    backend: Option<BackendKind>,
    /// Cache directory for Vision files.
    #[arg(long)]
    cache_dir: Option<std::path::PathBuf>,
    /// Output CSV file (`-` for standard output).
    #[arg(short = 'o', long, default_value = "-")]
    output: std::path::PathBuf,
}

#[derive(clap::Args)]
struct BenchArgs {
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
    /// Run only these parts: overhead, strategies, hedging (repeatable; default: all).
    #[arg(long = "only")]
    only: Vec<String>,
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

#[derive(clap::Args)]
struct GetArgs {
    /// The URL (a path such as `/get` with `--fleet` members that have base URLs).
    url: String,
    /// The backend.
    #[arg(long, value_parser = parse_kind)]
    backend: Option<BackendKind>,
    /// A fleet: comma-separated backends, each optionally `kind=BASE_URL`.
    #[arg(long)]
    fleet: Option<String>,
    /// The fleet strategy: single, failover, round-robin, random, hedged, adaptive.
    #[arg(long, default_value = "failover")]
    strategy: String,
    /// A header, `name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// A request body (makes the request a POST unless --method says otherwise).
    #[arg(long)]
    data: Option<String>,
    /// The method.
    #[arg(short = 'X', long)]
    method: Option<String>,
    /// Total deadline in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    timeout: u64,
    /// Write the body to this file instead of standard output.
    #[arg(short = 'o', long)]
    output: Option<std::path::PathBuf>,
    /// Show the status line, headers, the member that answered, attempts and timing.
    #[arg(short, long)]
    verbose: bool,
    /// No progress bar (otherwise drawn on stderr for a download over 1 MiB when stdout is a
    /// terminal or -o is given).
    #[arg(long)]
    no_progress: bool,
}

/// A download progress bar on stderr, redrawn at most ten times a second.
struct ProgressBar {
    started: Instant,
    state: std::sync::Mutex<BarState>,
}

struct BarState {
    last_draw: Option<Instant>,
    drawn: bool,
    received: u64,
    total: Option<u64>,
}

impl ProgressBar {
    /// Bodies below this size get no bar.
    const LARGE: u64 = 1 << 20;

    fn new() -> Self {
        ProgressBar {
            started: Instant::now(),
            state: std::sync::Mutex::new(BarState {
                last_draw: None,
                drawn: false,
                received: 0,
                total: None,
            }),
        }
    }

    fn update(&self, received: u64, total: Option<u64>, last: bool) {
        if total.unwrap_or(received).max(received) < Self::LARGE {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (state.received, state.total) = (received, total);
        let now = Instant::now();
        if !last
            && state
                .last_draw
                .is_some_and(|t| now - t < Duration::from_millis(100))
        {
            return;
        }
        state.last_draw = Some(now);
        state.drawn = true;
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let secs = (now - self.started).as_secs_f64().max(1e-6);
        let rate = format!("{:.1} MiB/s", mib(received) / secs);
        let line = match total {
            Some(t) if t > 0 => {
                let done = (received.min(t) as f64 / t as f64).clamp(0.0, 1.0);
                let filled = (done * 30.0).round() as usize;
                format!(
                    "{:>4.0}% [{}{}] {:.1} / {:.1} MiB  {rate}",
                    done * 100.0,
                    "#".repeat(filled),
                    ".".repeat(30 - filled),
                    mib(received),
                    mib(t)
                )
            }
            _ => format!("{:.1} MiB  {rate}", mib(received)),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}\x1b[K");
        if last {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }

    /// Draws the bar a last time and ends its line, if it was drawn.
    fn finish(&self) {
        let (drawn, received, total) = {
            let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            (s.drawn, s.received, s.total)
        };
        if drawn {
            self.update(received, total, true);
        }
    }
}

#[derive(clap::Args)]
struct InstrArgs {
    #[arg(long, value_parser = parse_kind)]
    backend: BackendKind,
    /// bare (the client with no deadline), direct (the client with its own deadline),
    /// httpfleet, or ab (the single client and a fleet over one backend, their batches
    /// interleaved in one process, with an A/A control: see `scripts/instructions.sh`).
    #[arg(long)]
    mode: String,
    /// async or blocking.
    #[arg(long)]
    surface: String,
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// The fleet's strategy in `--mode ab` (see `get --strategy`).
    #[arg(long, default_value = "failover")]
    strategy: String,
    /// Give each request its own URL (`?n=<i>` appended) instead of repeating one.
    #[arg(long)]
    vary: bool,
    /// `--mode ab` with a fleet over members without base URLs, each request given the whole URL
    /// (a fleet over client libraries rather than hosts).
    #[arg(long)]
    whole_url: bool,
    /// Lays the heap out differently before anything else (blocks of assorted sizes allocated,
    /// every other one freed, as many as this number): what `malloc` and `memcpy` cost depends
    /// on where blocks fall, so runs over several layouts average that out (see
    /// `scripts/instructions.sh`). Defaults to 0 (no change).
    #[arg(long, default_value_t = 0)]
    heap_layout: usize,
    /// Requests per batch of `--mode ab` (the single client's, the fleet's, the control's in
    /// turn, until `--requests` each). Defaults to 100.
    #[arg(long, default_value_t = 100)]
    batch: usize,
}

impl InstrArgs {
    /// The URL of request `i` in `url`: `--url` itself, or with `?n=<i>` under `--vary`.
    fn nth_url(&self, url: &mut String, i: usize) {
        if self.vary {
            url.clear();
            let _ = write!(url, "{}?n={i}", self.url);
        }
    }
}

fn parse_kind(s: &str) -> Result<BackendKind, String> {
    s.parse::<BackendKind>().map_err(|e| e.to_string())
}

fn parse_route(s: &str) -> Result<Route, String> {
    Route::parse(s).ok_or_else(|| format!("unknown route {s:?}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench(args),
        Command::Get(args) => get(args),
        Command::Serve { workers } => serve(workers),
        #[cfg(feature = "market")]
        Command::Klines(args) => klines(args),
        Command::Instr(args) => instr(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("httpfleet: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res = Result<(), Box<dyn std::error::Error>>;

fn bench(args: BenchArgs) -> Res {
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

fn strategy(name: &str) -> Result<Strategy, String> {
    Ok(match name {
        "single" => Strategy::Single,
        "failover" => Strategy::Failover,
        "round-robin" => Strategy::RoundRobin,
        "random" => Strategy::Random { seed: None },
        "hedged" => Strategy::hedged(Duration::from_millis(50)),
        "adaptive" => Strategy::adaptive(),
        other => return Err(format!("unknown strategy {other:?}")),
    })
}

fn get(args: GetArgs) -> Res {
    let mut config = Config::from_env()?.timeout(Duration::from_millis(args.timeout));
    if let Some(kind) = args.backend {
        config = config.backend(kind);
    }
    let client = match &args.fleet {
        None => Client::from_config(&config)?,
        Some(list) => {
            let mut b = FleetBuilder::new(&config).strategy(strategy(&args.strategy)?);
            for item in list.split(',').filter(|s| !s.is_empty()) {
                let (kind, base) = match item.split_once('=') {
                    Some((k, u)) => (parse_kind(k)?, Some(u)),
                    None => (parse_kind(item)?, None),
                };
                let mut m = Member::new(kind);
                if let Some(u) = base {
                    m = m.base_url(u);
                }
                b = b.member(m);
            }
            b.build()?
        }
    };
    let method = args.method.clone().unwrap_or_else(|| {
        if args.data.is_some() {
            "POST".into()
        } else {
            "GET".into()
        }
    });
    let mut req = client.request(method.as_str(), &args.url);
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("header {h:?} is not `name: value`"))?;
        req = req.header(k.trim(), v.trim());
    }
    if let Some(d) = &args.data {
        req = req.body(d.clone());
    }
    let show_progress = !args.no_progress
        && (args.output.is_some() || std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let bar = std::sync::Arc::new(ProgressBar::new());
    if show_progress {
        let bar = bar.clone();
        req = req.on_progress(move |received, total| bar.update(received, total, false));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let start = Instant::now();
    let result = rt.block_on(req.send());
    let took = start.elapsed();
    let resp = match result {
        Ok(r) => {
            bar.finish();
            r
        }
        Err(e) => {
            if args.verbose {
                eprintln!("* failed after {took:?}: {e}");
            }
            return Err(e.into());
        }
    };
    if args.verbose {
        eprintln!("< {:?} {}", resp.version(), resp.status());
        for (k, v) in resp.headers() {
            eprintln!("< {k}: {}", String::from_utf8_lossy(v.as_bytes()));
        }
        eprintln!(
            "* served by {} (backend {}), {} attempt(s), {} bytes in {:?}, final URL {}",
            resp.member().unwrap_or("-"),
            resp.backend(),
            resp.attempts(),
            resp.bytes().len(),
            took,
            resp.url()
        );
        for s in client.stats() {
            eprintln!(
                "* member {}: {} requests, {} failures, {} retries, {} hedges, breaker {:?}",
                s.name, s.requests, s.failures, s.retries, s.hedges, s.breaker
            );
        }
    }
    match &args.output {
        Some(path) => {
            std::fs::write(path, resp.bytes())?;
            eprintln!("wrote {} bytes to {}", resp.bytes().len(), path.display());
        }
        None => std::io::stdout().write_all(resp.bytes())?,
    }
    Ok(())
}

#[cfg(feature = "market")]
fn klines(cmd: KlinesCmd) -> Res {
    use httpfleet::market::cli::{KlinesArgs, run_klines};
    use httpfleet::market::{Interval, Market, Progress, SourceMode, Timestamp};
    use std::io::IsTerminal;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let market: Market = cmd.market.parse()?;
    let interval: Interval = cmd.interval.parse()?;
    let (start, end): (Timestamp, Timestamp) = (cmd.start.parse()?, cmd.end.parse()?);
    let mut args = KlinesArgs::new(market, &cmd.symbol, interval, start, end, &cmd.output);
    args.source = cmd.source.parse::<SourceMode>()?;
    args.rest_urls = cmd.rest_urls;
    args.vision_urls = cmd.vision_urls;
    if let Some(b) = cmd.backend {
        args.backend = b;
    }
    args.cache_dir = cmd.cache_dir;
    // A progress bar on standard error when a person watches, or when the CSV goes to a file.
    let to_file = cmd.output.as_os_str() != "-";
    let show = to_file || std::io::stdout().is_terminal();
    let planned = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let rows = Arc::new(AtomicUsize::new(0));
    let hook: Option<httpfleet::market::ProgressHook> = show.then(|| {
        let (planned, done, rows) = (planned.clone(), done.clone(), rows.clone());
        Arc::new(move |p: Progress| {
            match p {
                Progress::Planned { steps } => {
                    planned.fetch_add(steps, Ordering::Relaxed);
                }
                Progress::RestWindow { rows: n } | Progress::VisionFile { rows: n, .. } => {
                    done.fetch_add(1, Ordering::Relaxed);
                    rows.fetch_add(n, Ordering::Relaxed);
                }
                #[allow(unreachable_patterns)]
                _ => {}
            }
            let (p, d) = (
                planned.load(Ordering::Relaxed).max(1),
                done.load(Ordering::Relaxed),
            );
            let filled = (d * 30 / p).min(30);
            eprint!(
                "\r[{}{}] {d}/{p} parts, {} rows",
                "#".repeat(filled),
                ".".repeat(30 - filled),
                rows.load(Ordering::Relaxed)
            );
        }) as httpfleet::market::ProgressHook
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let summary = rt.block_on(run_klines(&args, hook))?;
    if show {
        eprintln!();
    }
    eprintln!(
        "{} rows in {:?} ({:.0} rows/s); {} minutes missing at the exchange in {} gap(s)",
        summary.rows,
        summary.elapsed,
        summary.rows_per_sec(),
        summary.missing,
        summary.gaps.len()
    );
    Ok(())
}

fn serve(workers: usize) -> Res {
    let server = BenchServer::start(workers)?;
    println!("{}", server.url(""));
    std::io::stdout().flush()?;
    loop {
        std::thread::park();
    }
}

fn instr(args: InstrArgs) -> Res {
    let mut kept = Vec::new();
    for i in 0..args.heap_layout {
        let block = vec![0u8; 16 + (i * 2_731) % 12_288];
        if i % 2 == 0 {
            kept.push(block);
        }
    }
    std::mem::forget(kept);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let blocking = args.surface == "blocking";
    // Every client is built whichever runs, so that the heap is laid out the same before any
    // runs: what `malloc` and `memcpy` cost depends on where blocks fall.
    let bare = Direct::new(args.backend, None).ok_or("backend not enabled")?;
    let direct =
        Direct::new(args.backend, Some(httpfleet::bench::TIMEOUT)).ok_or("backend not enabled")?;
    let config = Config::default()
        .backend(args.backend)
        .timeout(httpfleet::bench::TIMEOUT);
    let c = Client::from_config(&config)?;
    let b = httpfleet::blocking::Client::from_config(&config)?;
    // A fleet over two healthy members of the backend, on the same server.
    let base = args
        .url
        .rsplit_once('/')
        .map_or(args.url.as_str(), |(b, _)| b);
    let path = &args.url[base.len()..];
    // Both members share one backend (one connection pool), so every strategy reuses one
    // connection, as a single backend does: what differs is the strategy's work.
    let backend = httpfleet::Backend::from_config(&config)?;
    let member = |name: &str| {
        let m = Member::with_backend(backend.clone()).name(name);
        if args.whole_url { m } else { m.base_url(base) }
    };
    let f = FleetBuilder::new(&config)
        .member(member("a"))
        .member(member("b"))
        .strategy(match args.strategy.as_str() {
            // Under valgrind a connection's first request can take 50 ms: a hedge it sent would
            // be counted as the strategy's overhead over healthy members.
            "hedged" => Strategy::hedged(Duration::from_secs(2)),
            // Seeded, so that every run sends the same sequence of members.
            "random" => Strategy::Random { seed: Some(7) },
            name => strategy(name)?,
        })
        .build()?;
    let mut url = args.url.clone();
    match args.mode.as_str() {
        "direct" | "bare" => {
            let d = if args.mode == "direct" {
                &direct
            } else {
                &bare
            };
            for i in 0..args.requests {
                args.nth_url(&mut url, i);
                if blocking {
                    d.send_blocking(&url, Route::Small, &rt);
                } else {
                    rt.block_on(d.send(&url, Route::Small));
                }
            }
        }
        "httpfleet" => {
            for i in 0..args.requests {
                args.nth_url(&mut url, i);
                if blocking {
                    b.get(&url).send()?;
                } else {
                    rt.block_on(c.get(&url).send())?;
                }
            }
        }
        "ab" => {
            // One process, one heap, one connection: the single client and the fleet share the
            // backend (so its pool), and their batches alternate, each in its own function, so
            // that callgrind's inclusive cost of each is its requests' cost alone.
            let single = Client::with_backend(backend.clone(), &config)?;
            let fleet_url = if args.whole_url {
                args.url.as_str()
            } else {
                path
            };
            // Warm-up out of the measured functions: connections, lazy state, a full retry
            // budget.
            warm(&rt, &single, &args.url, 100)?;
            warm(&rt, &f, fleet_url, 600)?;
            warm(&rt, &single, &args.url, 100)?;
            let n = args.batch;
            for _ in 0..args.requests.div_ceil(n) {
                ab_single(&rt, &single, &args.url, n)?;
                ab_fleet(&rt, &f, fleet_url, n)?;
                ab_control(&rt, &single, &args.url, n)?;
            }
            healthy(&f)?;
        }
        other => return Err(format!("unknown mode {other:?}").into()),
    }
    Ok(())
}

/// `n` requests through `client` to `url`, each awaited in turn (`instr --mode ab`): inlined into
/// each named batch function below, so that each reads as one function in callgrind.
#[inline(always)]
fn requests(rt: &tokio::runtime::Runtime, client: &Client, url: &str, n: usize) -> Res {
    for _ in 0..n {
        rt.block_on(client.get(url).send())?;
    }
    Ok(())
}

/// The warm-up of `instr --mode ab` (not counted).
#[inline(never)]
fn warm(rt: &tokio::runtime::Runtime, client: &Client, url: &str, n: usize) -> Res {
    requests(rt, client, url, n)
}

/// `instr --mode ab`: a batch of the single client's requests (A).
#[inline(never)]
fn ab_single(rt: &tokio::runtime::Runtime, client: &Client, url: &str, n: usize) -> Res {
    std::hint::black_box(1u8);
    requests(rt, client, url, n)
}

/// `instr --mode ab`: a batch of the fleet's requests (B).
#[inline(never)]
fn ab_fleet(rt: &tokio::runtime::Runtime, client: &Client, url: &str, n: usize) -> Res {
    std::hint::black_box(2u8);
    requests(rt, client, url, n)
}

/// `instr --mode ab`: the same as [`ab_single`], in a function of its own (the A/A control).
#[inline(never)]
fn ab_control(rt: &tokio::runtime::Runtime, client: &Client, url: &str, n: usize) -> Res {
    std::hint::black_box(3u8);
    requests(rt, client, url, n)
}

/// Fails unless every request of the fleet was one healthy attempt: a hedge, retry or failure
/// would be measured as the strategy's overhead.
fn healthy(f: &Client) -> Res {
    for m in f.stats() {
        eprintln!(
            "member {}: {} requests, {} hedges, {} retries, {} failures",
            m.name, m.requests, m.hedges, m.retries, m.failures
        );
        if m.hedges + m.retries + m.failures > 0 {
            return Err(format!("member {} was not healthy", m.name).into());
        }
    }
    Ok(())
}
