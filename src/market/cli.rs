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
//! for line in summary.lines() {
//!     eprintln!("{line}");
//! }
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::error::MarketError;
use super::interval::Interval;
use super::kline::TimeUnit;
use super::output::Output;
use super::rest::RestDataClient;
use super::source::{Gap, GapKind, KlineSet, KlineSource, ServedBy, SourceMode, SourceReport};
use super::time::Timestamp;
use super::vision::{ChecksumPolicy, ChecksumStatus, VisionDataClient};
use super::{Market, ProgressHook};
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
    /// `--resume`: go on from the last whole row of an interrupted output (`<output>.part`)
    /// instead of starting over. Defaults to false.
    pub resume: bool,
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
            resume: false,
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
    /// Candles missing (exchange gaps, confirmed or not; see [`KlineSet::missing`](super::KlineSet::missing)).
    pub missing: u64,
    /// The gaps, each with what proves it.
    pub gaps: Vec<Gap>,
    /// The interval, the unit of the gap counts.
    pub interval: Interval,
    /// What served each span, fallbacks, unverified files.
    pub report: SourceReport,
    /// Wall time of the fetch and the write.
    pub elapsed: Duration,
    /// With `--resume`: the open time of the last row the interrupted output held (rows after
    /// it were fetched).
    pub resumed_after: Option<Timestamp>,
}

impl KlinesSummary {
    /// Rows per second.
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The summary as `httpfleet klines` prints it: rows, then each kind of gap counted in
    /// candles of the interval, then every defective and every unverified file.
    pub fn lines(&self) -> Vec<String> {
        let iv = self.interval;
        let mut out = vec![format!(
            "{} rows in {:.1?} ({:.0} rows/s)",
            self.rows,
            self.elapsed,
            self.rows_per_sec()
        )];
        if let Some(t) = self.resumed_after {
            out.push(format!("resumed after the row of {t}"));
        }
        let sum = |f: &dyn Fn(&GapKind) -> bool| -> (usize, u64) {
            let g = self.gaps.iter().filter(|g| f(&g.kind));
            g.fold((0, 0), |(n, m), g| (n + 1, m + g.missing))
        };
        let (n, m) = sum(&|k| *k == GapKind::Exchange);
        out.push(format!(
            "exchange gaps (confirmed): {n}, {m} candle(s) of {iv} missing"
        ));
        let (n, m) = sum(&|k| matches!(k, GapKind::Unconfirmed { .. }));
        out.push(format!("unconfirmed gaps: {n}, {m} candle(s) of {iv}"));
        for g in &self.gaps {
            if let GapKind::Unconfirmed { reason } = &g.kind {
                out.push(format!("  unconfirmed [{}, {}): {reason}", g.start, g.end));
            }
        }
        let (n, m) = sum(&|k| *k == GapKind::BeforeListing);
        if n > 0 {
            out.push(format!(
                "before the symbol's first candle: {m} candle(s) of {iv} (not an outage)"
            ));
        }
        out.push(format!(
            "defective files: {}",
            self.report.defective_files.len()
        ));
        for d in &self.report.defective_files {
            out.push(format!("  defective {}: {}", d.file, d.reason));
        }
        let unverified: Vec<_> = self
            .report
            .parts
            .iter()
            .filter_map(|p| match &p.served_by {
                ServedBy::Vision {
                    file,
                    checksum,
                    confirmed_by_rest,
                    ..
                } if *checksum != ChecksumStatus::Verified => Some((file, *confirmed_by_rest)),
                _ => None,
            })
            .collect();
        out.push(format!("unverified files: {}", unverified.len()));
        for (file, confirmed) in unverified {
            let how = if confirmed {
                "no CHECKSUM; its rows agree with REST's"
            } else {
                "not verified (checksum policy report)"
            };
            out.push(format!("  unverified {file}: {how}"));
        }
        out
    }
}

/// Fetches the range with a [`KlineSource`] and writes it as Vision-layout CSV as its batches
/// arrive (memory bounded whatever the range): to standard output, or to `<output>.part`, renamed
/// to `output` once whole. Must run inside a tokio runtime. `progress` receives [`Progress`](super::Progress) events for a progress bar.
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
    .progress_hook(progress);
    let (unit, interval) = (args.time_unit, args.interval);
    let mut out = Output::open(&args.output, args.header, args.resume).await?;
    let resumed_after = out.resumed_after;
    let start = match resumed_after {
        Some(last) => interval.next(last).max(args.start),
        None => args.start,
    };
    // Rows go out as their batches arrive; the summary keeps no rows.
    let mut seen = KlineSet::default();
    let mut rows = 0;
    let mut stream = source.stream(&args.symbol, interval, start, args.end);
    while let Some(batch) = std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)
    })
    .await
    {
        let mut batch = batch?;
        rows += batch.klines.len();
        let klines = std::mem::take(&mut batch.klines);
        out = out.write(klines, unit).await?;
        seen.absorb(batch)?;
    }
    out.finish().await?;
    Ok(KlinesSummary {
        rows,
        missing: seen.missing(),
        gaps: seen.gaps,
        interval,
        report: seen.report,
        elapsed: started.elapsed(),
        resumed_after,
    })
}
