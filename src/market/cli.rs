//! The library side of `httpfleet klines`: everything but argument parsing and the progress bar,
//! so the binary stays thin and the behaviour is tested here.
//!
//! ```no_run
//! # async fn run() -> Result<(), httpfleet::market::MarketError> {
//! use httpfleet::market::cli::{KlinesArgs, run_klines};
//! use httpfleet::market::{Interval, Market};
//!
//! let args = KlinesArgs::new(
//!     Market::Spot,
//!     "BTCUSDT",
//!     Interval::M1,
//!     "2017-09-01".parse()?,
//!     "2017-09-03".parse()?,
//!     "out.csv",
//! );
//! let summary = run_klines(&args, None).await?;
//! eprintln!("{} rows, {} missing at the exchange", summary.rows, summary.missing);
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::error::MarketError;
use super::interval::Interval;
use super::kline::{TimeUnit, write_csv};
use super::rest::RestDataClient;
use super::source::{Gap, KlineSource, SourceMode, SourceReport};
use super::time::Timestamp;
use super::vision::{ChecksumPolicy, VisionDataClient};
use super::{Clock, Market, ProgressHook};
use crate::BackendKind;

/// The arguments of `httpfleet klines`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KlinesArgs {
    /// `--market spot|um|cm`.
    pub market: Market,
    /// `--symbol BTCUSDT`.
    pub symbol: String,
    /// `--interval 1m` (case-sensitive).
    pub interval: Interval,
    /// `--start 2017-09-01` (inclusive).
    pub start: Timestamp,
    /// `--end 2017-09-03` (exclusive: this example gives two days).
    pub end: Timestamp,
    /// `--source auto|rest|vision`. Defaults to auto.
    pub source: SourceMode,
    /// `--rest-url` (repeatable, failover order; default: the market's hosts).
    pub rest_urls: Vec<String>,
    /// `--vision-url` (repeatable; default data.binance.vision).
    pub vision_urls: Vec<String>,
    /// `-o out.csv` (`-` for standard output). Written atomically (temp file + rename).
    pub output: PathBuf,
    /// `--backend`. Defaults to the build's default backend.
    pub backend: BackendKind,
    /// `--cache-dir` for Vision files.
    pub cache_dir: Option<PathBuf>,
    /// `--time-unit ms|us` of the CSV. Defaults to ms, the Vision layout before 2025.
    pub time_unit: TimeUnit,
    /// `--header`: write the futures CSV header line first.
    pub header: bool,
    /// `--checksum require|verify|report`. Defaults to verify.
    pub checksum: ChecksumPolicy,
    /// `--concurrency` of REST windows and Vision downloads. Defaults to 4.
    pub concurrency: usize,
}

impl KlinesArgs {
    /// Arguments with every option at its default.
    pub fn new(
        market: Market,
        symbol: impl Into<String>,
        interval: Interval,
        start: Timestamp,
        end: Timestamp,
        output: impl Into<PathBuf>,
    ) -> Self {
        KlinesArgs {
            market,
            symbol: symbol.into(),
            interval,
            start,
            end,
            source: SourceMode::Auto,
            rest_urls: Vec::new(),
            vision_urls: Vec::new(),
            output: output.into(),
            backend: BackendKind::default(),
            cache_dir: None,
            time_unit: TimeUnit::Millis,
            header: false,
            checksum: ChecksumPolicy::Verify,
            concurrency: 4,
        }
    }
}

/// Parses `--checksum require|verify|report`.
pub fn parse_checksum_policy(s: &str) -> Result<ChecksumPolicy, MarketError> {
    match s {
        "require" => Ok(ChecksumPolicy::Require),
        "verify" => Ok(ChecksumPolicy::Verify),
        "report" | "report-only" => Ok(ChecksumPolicy::ReportOnly),
        _ => Err(MarketError::invalid_input(format!(
            "unknown checksum policy {s:?} (require, verify or report)"
        ))),
    }
}

/// What `run_klines` did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KlinesSummary {
    /// Rows written.
    pub rows: usize,
    /// Candles missing at the exchange (sum over `gaps`).
    pub missing: u64,
    /// The exchange's gaps.
    pub gaps: Vec<Gap>,
    /// What served each span, fallbacks, unverified files.
    pub report: SourceReport,
    /// Wall time of the fetch and the write.
    pub elapsed: Duration,
}

impl KlinesSummary {
    /// Rows per second.
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Fetches the range with a [`KlineSource`] and writes it as Vision-layout CSV. Must run inside
/// a tokio runtime. `progress` receives [`Progress`](super::Progress) events for a progress bar.
pub async fn run_klines(
    args: &KlinesArgs,
    progress: Option<ProgressHook>,
) -> Result<KlinesSummary, MarketError> {
    let started = Instant::now();
    let rest = || {
        let mut b = RestDataClient::builder(args.market)
            .backend(args.backend)
            .concurrency(args.concurrency);
        if !args.rest_urls.is_empty() {
            b = b.base_urls(args.rest_urls.iter().cloned());
        }
        b.build()
    };
    let vision = || {
        let mut b = VisionDataClient::builder(args.market)
            .backend(args.backend)
            .concurrency(args.concurrency)
            .checksum(args.checksum);
        if !args.vision_urls.is_empty() {
            b = b.base_urls(args.vision_urls.iter().cloned());
        }
        if let Some(dir) = &args.cache_dir {
            b = b.cache_dir(dir);
        }
        b.build()
    };
    let source = match args.source {
        SourceMode::Rest => KlineSource::rest_only(rest()?),
        SourceMode::Vision => KlineSource::vision_only(vision()?),
        _ => KlineSource::new(rest()?, vision()?)?,
    }
    .clock(Clock::System)
    .progress_hook(progress);
    let set = source
        .klines(&args.symbol, args.interval, args.start, args.end)
        .await?;
    let rows = set.klines.len();
    let (unit, header) = (args.time_unit, args.header);
    if args.output.as_os_str() == "-" {
        let stdout = std::io::stdout();
        write_csv(stdout.lock(), &set.klines, unit, header)
            .map_err(|e| MarketError::io("<stdout>", e))?;
    } else {
        let output = args.output.clone();
        let klines = set.klines;
        tokio::task::spawn_blocking(move || {
            super::vision::write_atomic_with(&output, |w| write_csv(w, &klines, unit, header))
        })
        .await
        .map_err(|e| MarketError::io(&args.output, std::io::Error::other(e.to_string())))??;
    }
    Ok(KlinesSummary {
        rows,
        missing: set.gaps.iter().map(|g| g.missing).sum(),
        gaps: set.gaps,
        report: set.report,
        elapsed: started.elapsed(),
    })
}
