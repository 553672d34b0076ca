//! The `httpfleet` command: `bench` (overhead against each client used directly, interleaved,
//! on an embedded loopback server), `get` (one request through any backend or fleet, streamed),
//! `serve` (the benchmark server alone), `klines` (market data) and `instr` (a fixed request
//! loop for instruction counting).

mod bench;
mod config_args;
mod get;
mod instr;
#[cfg(feature = "market")]
mod klines;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use httpfleet::bench::Route;
use httpfleet::{BackendKind, Strategy};

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
    Bench(bench::BenchArgs),
    /// Send one request through a backend or a fleet.
    Get(Box<get::GetArgs>),
    /// Run the benchmark server alone and print its URL.
    Serve {
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
    },
    /// Fetch klines over any range from a Binance-compatible REST API and/or Vision files.
    #[cfg(feature = "market")]
    Klines(klines::KlinesCmd),
    /// Run a fixed number of requests (for `scripts/instructions.sh` under callgrind).
    #[command(hide = true)]
    Instr(instr::InstrArgs),
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
        Command::Bench(args) => bench::bench(args),
        Command::Get(args) => get::get(*args),
        Command::Serve { workers } => instr::serve(workers),
        #[cfg(feature = "market")]
        Command::Klines(args) => klines::klines(args),
        Command::Instr(args) => instr::instr(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("httpfleet: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What a command returns.
type Res = Result<(), Box<dyn std::error::Error>>;

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
