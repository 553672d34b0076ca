//! [`Kline`]: one candle, with exact decimals and microsecond UTC timestamps, parsed from the
//! exchange's JSON arrays and from Vision CSV rows, and written back as CSV.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, BufRead};

pub use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::error::MarketError;
use super::time::Timestamp;

/// One candle.
///
/// Prices and volumes are [`Decimal`]s parsed exactly from the source text (never through
/// `f64`; a value that does not fit in 28 digits is an error, not a rounding): each keeps its
/// scale, so `4724.89000000` prints back as `4724.89000000`. Timestamps are normalised to
/// microseconds whatever the source used.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Kline {
    /// Open time.
    pub open_time: Timestamp,
    /// First trade price.
    pub open: Decimal,
    /// Highest trade price.
    pub high: Decimal,
    /// Lowest trade price.
    pub low: Decimal,
    /// Last trade price.
    pub close: Decimal,
    /// Base asset volume.
    pub volume: Decimal,
    /// Close time (as the source gives it: `open + interval - 1 ms` for millisecond sources).
    pub close_time: Timestamp,
    /// Quote asset volume.
    pub quote_volume: Decimal,
    /// Number of trades.
    pub trades: u64,
    /// Taker buy base asset volume.
    pub taker_buy_base_volume: Decimal,
    /// Taker buy quote asset volume.
    pub taker_buy_quote_volume: Decimal,
}

/// The unit timestamps are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TimeUnit {
    /// Milliseconds, rounded down: what Binance REST and pre-2025 Vision files use. Rows read
    /// from a millisecond source are written back byte for byte.
    #[default]
    Millis,
    /// Microseconds: lossless for every source.
    Micros,
}

impl std::str::FromStr for TimeUnit {
    type Err = MarketError;

    fn from_str(s: &str) -> Result<Self, MarketError> {
        match s {
            "ms" | "millis" => Ok(TimeUnit::Millis),
            "us" | "µs" | "micros" => Ok(TimeUnit::Micros),
            _ => Err(MarketError::invalid_input(format!(
                "unknown time unit {s:?} (ms or us)"
            ))),
        }
    }
}

impl TimeUnit {
    fn value(self, t: Timestamp) -> i64 {
        match self {
            TimeUnit::Millis => t.as_millis_floor(),
            TimeUnit::Micros => t.as_micros(),
        }
    }
}

/// The header line Binance puts on newer futures CSV files, written by [`write_csv`] when asked.
pub const CSV_HEADER: &str = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore";

impl Kline {
    /// Appends this kline as one CSV row in the Vision layout (12 columns, the last one the
    /// exchange's unused `ignore` field written as `0`), with a trailing `\n`.
    pub fn write_csv_row(&self, out: &mut String, unit: TimeUnit) {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},0",
            unit.value(self.open_time),
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            unit.value(self.close_time),
            self.quote_volume,
            self.trades,
            self.taker_buy_base_volume,
            self.taker_buy_quote_volume
        );
    }

    /// Parses one CSV row (11 or 12 columns; the 12th is ignored). Timestamps in milliseconds or
    /// microseconds are told apart per value.
    pub fn from_csv_row(line: &str) -> Result<Kline, String> {
        let mut f = line.split(',');
        let mut next = |name: &str| f.next().ok_or_else(|| format!("missing column {name}"));
        let k = Kline {
            open_time: int(next("open_time")?, "open_time").map(Timestamp::from_exchange)?,
            open: dec(next("open")?, "open")?,
            high: dec(next("high")?, "high")?,
            low: dec(next("low")?, "low")?,
            close: dec(next("close")?, "close")?,
            volume: dec(next("volume")?, "volume")?,
            close_time: int(next("close_time")?, "close_time").map(Timestamp::from_exchange)?,
            quote_volume: dec(next("quote_volume")?, "quote_volume")?,
            trades: next("count")?
                .trim()
                .parse()
                .map_err(|_| "count is not an unsigned integer".to_owned())?,
            taker_buy_base_volume: dec(next("taker_buy_volume")?, "taker_buy_volume")?,
            taker_buy_quote_volume: dec(next("taker_buy_quote_volume")?, "taker_buy_quote_volume")?,
        };
        let _ignore = f.next();
        if f.next().is_some() {
            return Err("more than 12 columns".to_owned());
        }
        Ok(k)
    }
}

fn int(s: &str, name: &str) -> Result<i64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{name} {s:?} is not an integer"))
}

fn dec(s: &str, name: &str) -> Result<Decimal, String> {
    Decimal::from_str_exact(s.trim())
        .map_err(|e| format!("{name} {s:?} is not an exact decimal: {e}"))
}

/// Writes `klines` as CSV in the Vision layout, optionally with [`CSV_HEADER`] first.
pub fn write_csv<W: io::Write>(
    mut w: W,
    klines: &[Kline],
    unit: TimeUnit,
    header: bool,
) -> io::Result<()> {
    let mut buf = String::with_capacity(64 * 1024);
    if header {
        buf.push_str(CSV_HEADER);
        buf.push('\n');
    }
    for k in klines {
        k.write_csv_row(&mut buf, unit);
        if buf.len() >= 60 * 1024 {
            w.write_all(buf.as_bytes())?;
            buf.clear();
        }
    }
    w.write_all(buf.as_bytes())?;
    w.flush()
}

/// Parses a Vision CSV: an optional header line (the futures header, whose first field is
/// `open_time`), then one kline per line; blank lines are skipped, `\r\n` accepted. A first
/// line that is neither the header nor a valid row (a byte-order mark, a damaged first field)
/// is an error: a row is never skipped for a header.
pub(crate) fn parse_csv<R: BufRead>(mut r: R, what: &str) -> Result<Vec<Kline>, MarketError> {
    let mut out = Vec::new();
    let mut line = String::new();
    let mut n = 0u64;
    loop {
        line.clear();
        let read = r
            .read_line(&mut line)
            .map_err(|e| MarketError::data(what, format!("reading line {}: {e}", n + 1)))?;
        if read == 0 {
            break;
        }
        n += 1;
        let row = line.trim_end_matches(['\n', '\r']);
        if row.trim().is_empty() {
            continue;
        }
        if n == 1 && is_header(row) {
            continue;
        }
        let k = Kline::from_csv_row(row)
            .map_err(|e| MarketError::data(what, format!("line {n}: {e}")))?;
        out.push(k);
    }
    Ok(out)
}

fn is_header(row: &str) -> bool {
    row.split(',').next() == Some("open_time")
}

/// One kline as the REST API sends it: a 12-element array, numbers as strings.
#[derive(Deserialize)]
struct RawKline<'a>(
    i64,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    i64,
    #[serde(borrow)] Cow<'a, str>,
    u64,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    IgnoredAny,
);

/// Parses a REST klines body.
pub(crate) fn parse_json(
    body: &[u8],
    what: &dyn std::fmt::Display,
) -> Result<Vec<Kline>, MarketError> {
    let raw: Vec<RawKline<'_>> = serde_json::from_slice(body)
        .map_err(|e| MarketError::data(what, format!("klines JSON: {e}")))?;
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let row = |e: String| MarketError::data(what, format!("row {i}: {e}"));
            Ok(Kline {
                open_time: Timestamp::from_exchange(r.0),
                open: dec(&r.1, "open").map_err(row)?,
                high: dec(&r.2, "high").map_err(row)?,
                low: dec(&r.3, "low").map_err(row)?,
                close: dec(&r.4, "close").map_err(row)?,
                volume: dec(&r.5, "volume").map_err(row)?,
                close_time: Timestamp::from_exchange(r.6),
                quote_volume: dec(&r.7, "quote_volume").map_err(row)?,
                trades: r.8,
                taker_buy_base_volume: dec(&r.9, "taker_buy_base_volume").map_err(row)?,
                taker_buy_quote_volume: dec(&r.10, "taker_buy_quote_volume").map_err(row)?,
            })
        })
        .collect()
}
