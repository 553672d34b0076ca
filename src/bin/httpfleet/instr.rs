//! `httpfleet instr` (a fixed request loop for instruction counting under callgrind, see
//! `scripts/instructions.sh`) and `httpfleet serve` (the benchmark server alone).

use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;

use httpfleet::bench::{BenchServer, Direct, Route};
use httpfleet::{BackendKind, Client, Config, FleetBuilder, Member, Strategy};

use super::{Res, parse_kind, strategy};

#[derive(clap::Args)]
pub(crate) struct InstrArgs {
    #[arg(long, value_parser = parse_kind)]
    backend: BackendKind,
    /// bare (the client with no deadline), direct (the client with its own deadline),
    /// httpfleet (sending the same wire as the bare client: no headers of its own),
    /// httpfleet-defaults (with its default headers), or ab (the single client and a fleet over one backend, their batches
    /// interleaved in one process, with an A/A control: see `scripts/instructions.sh`).
    #[arg(long)]
    mode: String,
    /// async or blocking.
    #[arg(long)]
    surface: String,
    /// The server's base URL (`http://127.0.0.1:PORT`).
    #[arg(long)]
    url: String,
    /// The request: get-13B or get-1MiB (see `bench --routes`). Defaults to get-13B.
    #[arg(long, default_value = "get-13B")]
    route: String,
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// The fleet's strategy in `--mode ab` (see `get --strategy`).
    #[arg(long, default_value = "failover")]
    strategy: String,
    /// Give each request its own URL (`?n=<i>` appended) instead of repeating one.
    #[arg(long)]
    vary: bool,
    /// Read each body piece by piece as it streams (httpfleet's `chunk()`, the client's own
    /// streaming read: see `bench --only throughput`) instead of whole. Modes bare, direct and
    /// httpfleet.
    #[arg(long)]
    stream: bool,
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

pub(crate) fn serve(workers: usize) -> Res {
    let server = BenchServer::start(workers)?;
    println!("{}", server.url(""));
    std::io::stdout().flush()?;
    loop {
        std::thread::park();
    }
}

pub(crate) fn instr(args: InstrArgs) -> Res {
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
    let route = Route::parse(&args.route).ok_or("unknown route")?;
    let args = InstrArgs {
        url: format!("{}{}", args.url.trim_end_matches('/'), route.path()),
        ..args
    };
    let config = Config::default()
        .backend(args.backend)
        .timeout(httpfleet::bench::TIMEOUT);
    let c = Client::from_config(&httpfleet::bench::same_wire(args.backend, config.clone()))?;
    let b = httpfleet::blocking::Client::from_config(&httpfleet::bench::same_wire(
        args.backend,
        config.clone(),
    ))?;
    let c_defaults = Client::from_config(&config)?;
    let b_defaults = httpfleet::blocking::Client::from_config(&config)?;
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
                let _length = match (args.stream, blocking) {
                    (true, true) => d.stream_blocking(&url, &rt) as usize,
                    (true, false) => rt.block_on(d.stream(&url)) as usize,
                    (false, true) => d.send_blocking(&url, route, &rt),
                    (false, false) => rt.block_on(d.send(&url, route)),
                };
            }
        }
        "httpfleet" | "httpfleet-defaults" => {
            let (c, b) = if args.mode == "httpfleet" {
                (&c, &b)
            } else {
                (&c_defaults, &b_defaults)
            };
            for i in 0..args.requests {
                args.nth_url(&mut url, i);
                let _length = match (args.stream, blocking) {
                    (true, true) => httpfleet::bench::stream_blocking(b, &url) as usize,
                    (true, false) => rt.block_on(httpfleet::bench::stream(c, &url)) as usize,
                    (false, true) => route.send_blocking(b, &url),
                    (false, false) => rt.block_on(route.send(c, &url)),
                };
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
        rt.block_on(async { client.get(url).send().await?.bytes().await })?;
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
