//! Market data on the fleet (cargo feature `market`): Binance-compatible klines from the REST API
//! ([`RestDataClient`]) and from the bulk files of data.binance.vision ([`VisionDataClient`]),
//! and a [`KlineSource`] that plans between them and never leaves a silent hole; aggregate
//! trades the same way ([`RestDataClient::agg_trades`], [`VisionDataClient::agg_trades`],
//! [`AggTradeSource`]); any other endpoint through the same governor
//! ([`RestDataClient::get_weighted`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), httpfleet::market::MarketError> {
//! use httpfleet::market::{Interval, KlineSource, Market, RestDataClient, Timestamp, VisionDataClient};
//!
//! let rest = RestDataClient::builder(Market::Spot).build()?; // api.binance.com and its alternates
//! let vision = VisionDataClient::builder(Market::Spot).build()?; // data.binance.vision
//! let source = KlineSource::new(rest, vision)?;
//! let set = source
//!     .klines("BTCUSDT", Interval::M1, "2018-02-09".parse()?, "2018-02-10".parse()?)
//!     .await?;
//! println!("{} candles; exchange gaps: {:?}", set.klines.len(), set.gaps);
//! # Ok(()) }
//! ```
//!
//! ## Guarantees
//!
//! - **Exact values.** Prices and volumes are [`Decimal`]s parsed from the source text, never
//!   through `f64`; each keeps its scale (`4724.89000000` prints back as `4724.89000000`), and
//!   CSV written in milliseconds from millisecond sources is byte for byte the Vision file.
//!   Timestamps are [`Timestamp`]s, UTC microseconds; milliseconds and microseconds are told
//!   apart per value ([`MICROS_THRESHOLD`]), since spot Vision files switched to microseconds on
//!   2025-01-01 while futures stayed in milliseconds.
//! - **No silent holes.** A window or file that fails after its retries fails the call with an
//!   error naming it ([`MarketError::window`], the file path); it never becomes an empty chunk.
//!   Open times without a candle are *data*, [`KlineSet::gaps`], each with what proves it
//!   ([`GapKind`]): a hole in a Vision file is asked of REST over that span first (rows REST has
//!   fill it, and the file is listed in [`SourceReport::defective_files`]), a hole nobody could
//!   confirm says why, and the time before the symbol's first candle is not an outage. A monthly
//!   file with a day without rows gives way to the month's daily files.
//! - **The exchange's clock.** Which candles have closed is judged on the exchange's time
//!   ([`Clock::Exchange`], the default with REST), so an open candle is never returned as final.
//! - **Rate limits per IP.** A weight governor per [`RestDataClient`] fed by
//!   `X-MBX-USED-WEIGHT-1M` keeps under the limit; a 429 pauses every request to every host for
//!   its `Retry-After`; a 418 ban fails every call with [`MarketError::Banned`] and sends nothing
//!   until it ends. 4xx are never retried or failed over, and no request is hedged.
//! - **Verified files.** Vision files are checked against their `.CHECKSUM` (a mismatch is an
//!   error unless [`ChecksumPolicy::ReportOnly`]). Without a CHECKSUM, [`KlineSource`] uses a
//!   file under the default policy only when its rows agree with REST's (else REST's rows, the
//!   file reported defective; without REST to ask, [`MarketError::ChecksumMissing`]), and lists
//!   it in [`SourceReport::unverified_files`]. A file not published yet is
//!   [`FileOutcome::NotYetPublished`], not an error to retry.
//!
//! ## Downloads
//!
//! A Vision file streams to a temporary file while its SHA-256 is computed, a megabyte of it in
//! memory at most; a body that breaks is asked again with `Range` from the first byte not yet on
//! disk. Every REST request, klines and any other endpoint
//! ([`RestDataClient::get_weighted`]), goes through the weight governor.

mod agg;
mod error;
mod governor;
mod interval;
mod kline;
mod output;
mod rest;
mod source;
mod time;
mod trade;
mod vision;
mod weights;

pub mod cli;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

pub use agg::{AggTradeDays, AggTradeSource};
pub use error::MarketError;
pub use interval::Interval;
pub use kline::{CSV_HEADER, Decimal, Kline, TimeUnit, write_csv};
pub use rest::{RestDataClient, RestDataClientBuilder, USED_WEIGHT_HEADER};
pub use source::{
    DefectiveFile, Fallback, Gap, GapKind, KlineSet, KlineSource, KlineStream, Part, PartReport,
    ServedBy, SourceMode, SourceReport,
};
pub use time::{Date, MICROS_THRESHOLD, Timestamp};
pub use trade::{AggTrade, AggTradeSet, IdGap};
pub use vision::{
    AggTradesFile, ChecksumPolicy, ChecksumStatus, DEFAULT_VISION_URL, FileAggTrades, FileKlines,
    FileOutcome, Period, VisionDataClient, VisionDataClientBuilder, VisionFile,
    parse_checksum_file,
};

/// Which Binance market.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Market {
    /// Spot: `/api/v3/klines`, 1000 candles per request, 6000 weight per minute.
    Spot,
    /// USDⓈ-M futures: `/fapi/v1/klines`, 1500 candles per request, 2400 weight per minute.
    UsdM,
    /// COIN-M futures: `/dapi/v1/klines`, 1500 candles per request, at most 200 days per
    /// request, the most recent `limit` candles before `endTime`.
    CoinM,
}

impl Market {
    /// Every market.
    pub const ALL: [Market; 3] = [Market::Spot, Market::UsdM, Market::CoinM];

    /// `spot`, `um` or `cm`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::UsdM => "um",
            Market::CoinM => "cm",
        }
    }

    /// The klines endpoint.
    pub const fn klines_path(self) -> &'static str {
        match self {
            Market::Spot => "/api/v3/klines",
            Market::UsdM => "/fapi/v1/klines",
            Market::CoinM => "/dapi/v1/klines",
        }
    }

    /// The aggregate-trades endpoint.
    pub const fn agg_trades_path(self) -> &'static str {
        match self {
            Market::Spot => "/api/v3/aggTrades",
            Market::UsdM => "/fapi/v1/aggTrades",
            Market::CoinM => "/dapi/v1/aggTrades",
        }
    }

    /// The server-time endpoint.
    pub const fn time_path(self) -> &'static str {
        match self {
            Market::Spot => "/api/v3/time",
            Market::UsdM => "/fapi/v1/time",
            Market::CoinM => "/dapi/v1/time",
        }
    }

    /// The most candles one request may ask for.
    pub const fn max_limit(self) -> u32 {
        match self {
            Market::Spot => 1000,
            Market::UsdM | Market::CoinM => 1500,
        }
    }

    /// The exchange's request-weight limit per minute.
    pub const fn default_weight_limit(self) -> u32 {
        match self {
            Market::Spot => 6000,
            Market::UsdM | Market::CoinM => 2400,
        }
    }

    /// The weight of one klines request for `limit` candles, as the exchange documents it:
    /// 2 on spot; on futures 1 below 100, 2 below 500, 5 up to 1000, 10 above.
    pub const fn klines_weight(self, limit: u32) -> u32 {
        match self {
            Market::Spot => 2,
            Market::UsdM | Market::CoinM => match limit {
                0..100 => 1,
                100..500 => 2,
                500..=1000 => 5,
                _ => 10,
            },
        }
    }

    /// The longest `startTime`..`endTime` span one request may have, in days (COIN-M: 200).
    pub const fn max_lookup_days(self) -> Option<i64> {
        match self {
            Market::CoinM => Some(200),
            _ => None,
        }
    }

    /// True when a full window is the most recent `limit` candles before `endTime` (COIN-M);
    /// false when it is the first `limit` from `startTime`.
    pub const fn pages_backward(self) -> bool {
        matches!(self, Market::CoinM)
    }

    /// The exchange's own hosts, in failover order.
    pub const fn default_base_urls(self) -> &'static [&'static str] {
        match self {
            Market::Spot => &[
                "https://api.binance.com",
                "https://api-gcp.binance.com",
                "https://api1.binance.com",
                "https://api2.binance.com",
                "https://api3.binance.com",
                "https://api4.binance.com",
                "https://data-api.binance.vision",
            ],
            Market::UsdM => &["https://fapi.binance.com"],
            Market::CoinM => &["https://dapi.binance.com"],
        }
    }

    /// The market's folder on data.binance.vision (`spot`, `futures/um`, `futures/cm`).
    pub const fn vision_segment(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::UsdM => "futures/um",
            Market::CoinM => "futures/cm",
        }
    }

    /// `InvalidInput` for an interval this market does not serve (`1s` off spot).
    pub fn check_interval(self, interval: Interval) -> Result<(), MarketError> {
        if interval.is_spot_only() && self != Market::Spot {
            return Err(MarketError::invalid_input(format!(
                "interval {interval} exists on spot only, not on {self}"
            )));
        }
        Ok(())
    }
}

impl fmt::Display for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Market {
    type Err = MarketError;

    /// `spot`; `um`, `usdm`, `usd-m`, `futures/um`; `cm`, `coinm`, `coin-m`, `futures/cm`.
    fn from_str(s: &str) -> Result<Self, MarketError> {
        match s.to_ascii_lowercase().as_str() {
            "spot" => Ok(Market::Spot),
            "um" | "usdm" | "usd-m" | "futures/um" => Ok(Market::UsdM),
            "cm" | "coinm" | "coin-m" | "futures/cm" => Ok(Market::CoinM),
            _ => Err(MarketError::invalid_input(format!(
                "unknown market {s:?} (spot, um or cm)"
            ))),
        }
    }
}

/// A half-open span of open times, `[start, end)`. Sent to the exchange as `startTime=start`,
/// `endTime=end - 1 ms` (both inclusive there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// The first open time included.
    pub start: Timestamp,
    /// The first open time excluded.
    pub end: Timestamp,
}

impl Window {
    /// `[start, end)`.
    pub const fn new(start: Timestamp, end: Timestamp) -> Self {
        Window { start, end }
    }

    /// True when `t` is in the window.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

/// What "now" is for planning (which files are complete, which are not published yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A fixed instant (tests, reproducible backfills).
    Fixed(Timestamp),
    /// The exchange's clock: [`KlineSource`] measures its offset from the local clock with
    /// [`RestDataClient::server_time`] and judges which candles have closed by it. Anywhere
    /// without a REST client to ask, the system clock.
    Exchange,
}

impl Clock {
    /// Now, by this clock (the system clock for [`Clock::Exchange`], whose offset only a
    /// [`KlineSource`] knows).
    pub fn now(self) -> Timestamp {
        match self {
            Clock::System | Clock::Exchange => Timestamp::now(),
            Clock::Fixed(t) => t,
        }
    }
}

/// A progress event, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// `steps` more steps (Vision files or REST windows) were planned.
    Planned {
        /// Steps added.
        steps: usize,
    },
    /// A REST window finished.
    RestWindow {
        /// Its rows.
        rows: usize,
    },
    /// A Vision file finished (fetched, cached, or not there and handed to REST).
    VisionFile {
        /// Its rows (0 when it was not there).
        rows: usize,
        /// Bytes downloaded (0 from the cache).
        bytes: u64,
    },
}

/// A progress callback.
pub type ProgressFn = dyn Fn(Progress) + Send + Sync;

/// A shared progress callback.
pub type ProgressHook = Arc<ProgressFn>;

/// Symbols are 1 to 32 of `A-Z`, `0-9` and `_` (COIN-M's `BTCUSD_PERP`): anything else is
/// refused before it reaches a URL or a cache path.
/// Fails unless `rest` and `vision` are for the same market.
pub(crate) fn same_market(
    rest: &RestDataClient,
    vision: &VisionDataClient,
) -> Result<(), MarketError> {
    if rest.market() == vision.market() {
        return Ok(());
    }
    Err(MarketError::invalid_input(format!(
        "REST is for {} but Vision for {}",
        rest.market(),
        vision.market()
    )))
}

pub(crate) fn check_symbol(symbol: &str) -> Result<(), MarketError> {
    let ok = (1..=32).contains(&symbol.len())
        && symbol
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(MarketError::invalid_input(format!(
            "symbol {symbol:?} is not 1 to 32 of A-Z, 0-9 and _"
        )))
    }
}
