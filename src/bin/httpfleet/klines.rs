//! `httpfleet klines`: market data over any range, from REST and Vision files.

use super::{Res, parse_kind};
use httpfleet::BackendKind;

#[cfg(feature = "market")]
#[derive(clap::Args)]
pub(crate) struct KlinesCmd {
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
    /// Timestamps of the CSV: ms (the Vision layout before 2025) or us.
    #[arg(long, default_value = "ms")]
    time_unit: String,
    /// Write the futures CSV header line first.
    #[arg(long)]
    header: bool,
    /// Vision checksums: require (a file without one is an error), verify (without one, its
    /// rows must agree with REST's) or report (used, and listed as unverified).
    #[arg(long, default_value = "verify")]
    checksum: String,
    /// REST windows and Vision downloads at a time.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Show progress even when standard error is not a terminal (a line per update).
    #[arg(long)]
    progress: bool,
    /// Go on from the last whole row of an interrupted output (`<output>.part`).
    #[arg(long)]
    resume: bool,
}

#[cfg(feature = "market")]
pub(crate) fn klines(cmd: KlinesCmd) -> Res {
    use httpfleet::market::cli::{KlinesArgs, run_klines};
    use httpfleet::market::{Interval, Market, Progress, SourceMode, Timestamp};
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
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
    args.time_unit = cmd.time_unit.parse()?;
    args.header = cmd.header;
    args.checksum = httpfleet::market::cli::parse_checksum_policy(&cmd.checksum)?;
    if cmd.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    args.concurrency = cmd.concurrency;
    args.resume = cmd.resume;
    // A progress bar on standard error when a person watches, or when the CSV goes to a file;
    // with `--progress`, a line per update where standard error is not a terminal.
    let to_file = cmd.output.as_os_str() != "-";
    let show = cmd.progress || to_file || std::io::stdout().is_terminal();
    let hook: Option<httpfleet::market::ProgressHook> = show.then(|| {
        let target = if cmd.progress {
            ProgressDrawTarget::term_like_with_hz(Box::new(super::get::Lines), 10)
        } else {
            ProgressDrawTarget::stderr_with_hz(10)
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template("[{bar:30}] {pos}/{len} parts, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("#>."),
        );
        let rows = AtomicUsize::new(0);
        Arc::new(move |p: Progress| match p {
            Progress::Planned { steps } => bar.inc_length(steps as u64),
            Progress::RestWindow { rows: n } | Progress::VisionFile { rows: n, .. } => {
                let total = rows.fetch_add(n, Ordering::Relaxed) + n;
                bar.set_message(format!("{total} rows"));
                bar.inc(1);
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }) as httpfleet::market::ProgressHook
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let summary = rt.block_on(run_klines(&args, hook))?;
    for line in summary.lines() {
        eprintln!("{line}");
    }
    Ok(())
}
