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
}

#[cfg(feature = "market")]
pub(crate) fn klines(cmd: KlinesCmd) -> Res {
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
