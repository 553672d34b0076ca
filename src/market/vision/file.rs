//! The files of data.binance.vision: their periods, names and paths, their CHECKSUM, and what
//! reading one gives.

use std::fmt;

use super::super::error::MarketError;
use super::super::interval::Interval;
use super::super::kline::Kline;
use super::super::time::{Date, Timestamp};
use super::super::trade::AggTrade;
use super::super::{Market, Window, check_symbol};

/// The default host.
pub const DEFAULT_VISION_URL: &str = "https://data.binance.vision";

/// The period a Vision file covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// One UTC day (a `daily` file).
    Day(Date),
    /// One calendar month (a `monthly` file).
    Month {
        /// The year.
        year: i32,
        /// The month, 1 to 12.
        month: u8,
    },
}

impl Period {
    /// The month of `t`.
    pub fn month_of(t: Timestamp) -> Period {
        let d = t.date();
        Period::Month {
            year: d.year(),
            month: d.month(),
        }
    }

    /// The open times the file holds: `[first instant, first instant of the next period)`.
    pub fn span(self) -> Window {
        match self {
            Period::Day(d) => {
                let s = Timestamp::from_date(d);
                Window::new(s, Timestamp::from_date(d.succ()))
            }
            Period::Month { year, month } => {
                let s = Timestamp::from_date(Date::new_unchecked(year, month, 1));
                Window::new(s, s.add_months(1))
            }
        }
    }

    /// Fails unless a month is 1 to 12.
    fn check(self) -> Result<(), MarketError> {
        match self {
            Period::Month { month, .. } if !(1..=12).contains(&month) => Err(
                MarketError::invalid_input(format!("month {month} is not 1 to 12")),
            ),
            _ => Ok(()),
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Period::Day(_) => "daily",
            Period::Month { .. } => "monthly",
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Day(d) => write!(f, "{d}"),
            Period::Month { year, month } => write!(f, "{year:04}-{month:02}"),
        }
    }
}

/// One Vision klines file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VisionFile {
    market: Market,
    symbol: String,
    interval: Interval,
    period: Period,
}

impl VisionFile {
    /// The file of `symbol` and `interval` for `period`. Fails for a symbol that is not 1 to 32
    /// of `A-Z0-9_`, `1s` off spot, and a daily `3d`, `1w` or `1M`.
    pub fn new(
        market: Market,
        symbol: &str,
        interval: Interval,
        period: Period,
    ) -> Result<Self, MarketError> {
        check_symbol(symbol)?;
        market.check_interval(interval)?;
        if matches!(period, Period::Day(_)) && !interval.has_daily_files() {
            return Err(MarketError::invalid_input(format!(
                "data.binance.vision has no daily {} files (monthly only)",
                interval.vision_str()
            )));
        }
        period.check()?;
        Ok(VisionFile {
            market,
            symbol: symbol.to_owned(),
            interval,
            period,
        })
    }

    /// The daily file for `date`.
    pub fn daily(
        market: Market,
        symbol: &str,
        interval: Interval,
        date: Date,
    ) -> Result<Self, MarketError> {
        VisionFile::new(market, symbol, interval, Period::Day(date))
    }

    /// The monthly file for `year`-`month`.
    pub fn monthly(
        market: Market,
        symbol: &str,
        interval: Interval,
        year: i32,
        month: u8,
    ) -> Result<Self, MarketError> {
        VisionFile::new(market, symbol, interval, Period::Month { year, month })
    }

    /// The market.
    pub fn market(&self) -> Market {
        self.market
    }

    /// The symbol.
    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// The interval.
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// The period.
    pub fn period(&self) -> Period {
        self.period
    }

    /// The open times the file holds.
    pub fn span(&self) -> Window {
        self.period.span()
    }

    /// `BTCUSDT-1m-2017-09-01.zip`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}.zip",
            self.symbol,
            self.interval.vision_str(),
            self.period
        )
    }

    /// `data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2017-09-01.zip` (no leading `/`).
    pub fn path(&self) -> String {
        format!(
            "data/{}/{}/klines/{}/{}/{}",
            self.market.vision_segment(),
            self.period.kind(),
            self.symbol,
            self.interval.vision_str(),
            self.file_name()
        )
    }

    /// The path of the `.CHECKSUM` beside the file.
    pub fn checksum_path(&self) -> String {
        format!("{}.CHECKSUM", self.path())
    }
}

impl fmt::Display for VisionFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// A daily or monthly aggregate-trades file of data.binance.vision: `data/{segment}/{daily|
/// monthly}/aggTrades/{SYMBOL}/{SYMBOL}-aggTrades-{YYYY-MM-DD|YYYY-MM}.zip`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AggTradesFile {
    market: Market,
    symbol: String,
    period: Period,
}

impl AggTradesFile {
    /// The file of `symbol` on `market` for `period`.
    pub fn new(market: Market, symbol: &str, period: Period) -> Result<Self, MarketError> {
        check_symbol(symbol)?;
        period.check()?;
        Ok(AggTradesFile {
            market,
            symbol: symbol.to_owned(),
            period,
        })
    }

    /// Its market.
    pub fn market(&self) -> Market {
        self.market
    }

    /// Its symbol.
    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// Its day or month.
    pub fn period(&self) -> Period {
        self.period
    }

    /// The times its trades lie in.
    pub fn span(&self) -> Window {
        self.period.span()
    }

    /// `BTCUSDT-aggTrades-2017-09-01.zip`.
    pub fn file_name(&self) -> String {
        format!("{}-aggTrades-{}.zip", self.symbol, self.period)
    }

    /// `data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2017-09-01.zip`.
    pub fn path(&self) -> String {
        format!(
            "data/{}/{}/aggTrades/{}/{}",
            self.market.vision_segment(),
            self.period.kind(),
            self.symbol,
            self.file_name()
        )
    }
}

impl fmt::Display for AggTradesFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// Where a Vision file is: what the downloads, checksums and zips need of it.
pub(crate) trait Remote {
    /// Its path, no leading `/`.
    fn path(&self) -> String;
    /// Its zip's name.
    fn file_name(&self) -> String;
    /// The end of the period it holds (not published before it).
    fn ends(&self) -> Timestamp;
    /// Its `.CHECKSUM`'s path.
    fn checksum_path(&self) -> String {
        format!("{}.CHECKSUM", self.path())
    }
    /// The one CSV entry of its zip.
    fn csv_name(&self) -> String {
        format!("{}.csv", self.file_name().trim_end_matches(".zip"))
    }
}

impl Remote for VisionFile {
    fn path(&self) -> String {
        VisionFile::path(self)
    }
    fn file_name(&self) -> String {
        VisionFile::file_name(self)
    }
    fn ends(&self) -> Timestamp {
        self.span().end
    }
}

impl Remote for AggTradesFile {
    fn path(&self) -> String {
        AggTradesFile::path(self)
    }
    fn file_name(&self) -> String {
        AggTradesFile::file_name(self)
    }
    fn ends(&self) -> Timestamp {
        self.span().end
    }
}

/// What to do with `.CHECKSUM` files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ChecksumPolicy {
    /// A mismatch and a missing CHECKSUM are both errors.
    Require,
    /// A mismatch is an error; a missing CHECKSUM is reported as [`ChecksumStatus::Missing`]
    /// and the file used. The default.
    #[default]
    Verify,
    /// The explicit opt-out: a mismatch is reported as [`ChecksumStatus::Mismatch`] and the
    /// file used anyway (the zip's own CRC-32 still guards the CSV).
    ReportOnly,
}

/// How a file's checksum turned out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChecksumStatus {
    /// The sha256 matches the CHECKSUM file.
    Verified,
    /// There is no CHECKSUM file (404): the data could not be verified.
    Missing,
    /// The sha256 differs and the policy is [`ChecksumPolicy::ReportOnly`].
    Mismatch {
        /// The hex digest the CHECKSUM gives.
        expected: String,
        /// The hex digest of the bytes received.
        actual: String,
    },
}

/// The klines of one fetched file.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FileKlines {
    /// The file.
    pub file: VisionFile,
    /// Its rows, in file order.
    pub klines: Vec<Kline>,
    /// The checksum verdict.
    pub checksum: ChecksumStatus,
    /// True when served from the on-disk cache (nothing downloaded).
    pub from_cache: bool,
    /// Size of the zip.
    pub bytes: u64,
    /// HTTP requests for the zip (ranged chunks, with any re-sent ones).
    pub requests: u32,
    /// Chunks asked again after a failure (a broken body, a 5xx, a reset), from the first byte
    /// not yet on disk.
    pub resumed: u32,
}

/// The outcome of asking for one file.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum FileOutcome {
    /// The file, verified as the policy asks.
    Fetched(FileKlines),
    /// 404 within the publication lag after the period ended: not there yet. Not an error and
    /// not worth retrying now; fetch the span over REST.
    NotYetPublished(VisionFile),
    /// 404 long after the period ended: Vision has no such file (the symbol did not trade, or
    /// the path is wrong).
    Missing(VisionFile),
}

/// Parses a `.CHECKSUM` file for `file_name`: 64 hex digits, two spaces, the file name, then
/// nothing but an optional newline (`\n` or `\r\n`). Returns the digest in lowercase.
pub fn parse_checksum_file(text: &str, file_name: &str) -> Result<String, String> {
    let line = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    let (hex, name) = line.split_once("  ").ok_or("not `<sha256>  <file name>`")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the digest is not 64 hex digits".to_owned());
    }
    if name != file_name {
        return Err(format!("names {name:?}, not {file_name:?}"));
    }
    Ok(hex.to_ascii_lowercase())
}

pub(super) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The aggregate trades of one Vision file ([`VisionDataClient::agg_trades`](super::VisionDataClient::agg_trades)).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FileAggTrades {
    /// The file.
    pub file: AggTradesFile,
    /// Its trades, in increasing id, inside its period.
    pub trades: Vec<AggTrade>,
    /// Its checksum verdict.
    pub checksum: ChecksumStatus,
}
