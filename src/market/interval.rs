//! [`Interval`]: the sixteen kline intervals, their REST and Vision spellings, and the
//! arithmetic of open times.

use std::fmt;
use std::str::FromStr;

use super::error::MarketError;
use super::time::{Timestamp, US_PER_DAY, US_PER_HOUR, US_PER_MIN, US_PER_SEC};

/// A kline interval. Parsing is case-sensitive, as on the exchange: `1m` is a minute, `1M` a
/// month; `1s` exists on spot only.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[non_exhaustive]
pub enum Interval {
    /// `1s` (spot only).
    S1,
    /// `1m`.
    M1,
    /// `3m`.
    M3,
    /// `5m`.
    M5,
    /// `15m`.
    M15,
    /// `30m`.
    M30,
    /// `1h`.
    H1,
    /// `2h`.
    H2,
    /// `4h`.
    H4,
    /// `6h`.
    H6,
    /// `8h`.
    H8,
    /// `12h`.
    H12,
    /// `1d`.
    D1,
    /// `3d` (Vision: monthly files only).
    D3,
    /// `1w`, weeks opening on Monday 00:00 UTC (Vision: monthly files only).
    W1,
    /// `1M`, calendar months (Vision spells it `1mo`, monthly files only).
    Mo1,
}

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 16] = [
        Interval::S1,
        Interval::M1,
        Interval::M3,
        Interval::M5,
        Interval::M15,
        Interval::M30,
        Interval::H1,
        Interval::H2,
        Interval::H4,
        Interval::H6,
        Interval::H8,
        Interval::H12,
        Interval::D1,
        Interval::D3,
        Interval::W1,
        Interval::Mo1,
    ];

    /// The REST spelling (`1s`, `1m`, ..., `1w`, `1M`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Interval::S1 => "1s",
            Interval::M1 => "1m",
            Interval::M3 => "3m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::M30 => "30m",
            Interval::H1 => "1h",
            Interval::H2 => "2h",
            Interval::H4 => "4h",
            Interval::H6 => "6h",
            Interval::H8 => "8h",
            Interval::H12 => "12h",
            Interval::D1 => "1d",
            Interval::D3 => "3d",
            Interval::W1 => "1w",
            Interval::Mo1 => "1M",
        }
    }

    /// The spelling in data.binance.vision paths: as [`Interval::as_str`], but the month is `1mo`.
    pub const fn vision_str(self) -> &'static str {
        match self {
            Interval::Mo1 => "1mo",
            other => other.as_str(),
        }
    }

    /// The fixed length in microseconds; `None` for `1M`.
    pub const fn fixed_micros(self) -> Option<i64> {
        Some(match self {
            Interval::S1 => US_PER_SEC,
            Interval::M1 => US_PER_MIN,
            Interval::M3 => 3 * US_PER_MIN,
            Interval::M5 => 5 * US_PER_MIN,
            Interval::M15 => 15 * US_PER_MIN,
            Interval::M30 => 30 * US_PER_MIN,
            Interval::H1 => US_PER_HOUR,
            Interval::H2 => 2 * US_PER_HOUR,
            Interval::H4 => 4 * US_PER_HOUR,
            Interval::H6 => 6 * US_PER_HOUR,
            Interval::H8 => 8 * US_PER_HOUR,
            Interval::H12 => 12 * US_PER_HOUR,
            Interval::D1 => US_PER_DAY,
            Interval::D3 => 3 * US_PER_DAY,
            Interval::W1 => 7 * US_PER_DAY,
            Interval::Mo1 => return None,
        })
    }

    /// True for `1s`, which only spot serves.
    pub const fn is_spot_only(self) -> bool {
        matches!(self, Interval::S1)
    }

    /// True when data.binance.vision publishes daily files for this interval (`1s` to `1d`);
    /// `3d`, `1w` and `1mo` are monthly only.
    pub const fn has_daily_files(self) -> bool {
        !matches!(self, Interval::D3 | Interval::W1 | Interval::Mo1)
    }

    /// The grid offset of open times: fixed intervals open at multiples of their length since
    /// the epoch, shifted by this much. Weeks open on Monday (the epoch was a Thursday). For
    /// `3d` the phase observed in data wins where there is data (see
    /// [`KlineSource`](super::KlineSource)).
    const fn phase_micros(self) -> i64 {
        match self {
            Interval::W1 => 4 * US_PER_DAY,
            _ => 0,
        }
    }

    /// The open time of the candle that contains `t` (on the default grid).
    pub fn floor(self, t: Timestamp) -> Timestamp {
        match self.fixed_micros() {
            Some(step) => {
                let phase = self.phase_micros();
                Timestamp::from_micros((t.as_micros() - phase).div_euclid(step) * step + phase)
            }
            None => t.month_start(),
        }
    }

    /// The first open time at or after `t` (on the default grid).
    pub fn ceil(self, t: Timestamp) -> Timestamp {
        let f = self.floor(t);
        if f == t { f } else { self.next(f) }
    }

    /// The open time after the candle opening at `open`.
    pub fn next(self, open: Timestamp) -> Timestamp {
        match self.fixed_micros() {
            Some(step) => open.add_micros(step),
            None => open.add_months(1),
        }
    }

    /// The open time `n` candles after `open`.
    pub fn advance(self, open: Timestamp, n: i64) -> Timestamp {
        match self.fixed_micros() {
            Some(step) => open.add_micros(step.saturating_mul(n)),
            None => open.add_months(n),
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Interval {
    type Err = MarketError;

    /// The REST spelling, case-sensitive; `1mo` is accepted for `1M` too.
    fn from_str(s: &str) -> Result<Self, MarketError> {
        if s == "1mo" {
            return Ok(Interval::Mo1);
        }
        Interval::ALL.into_iter().find(|i| i.as_str() == s).ok_or_else(|| {
            MarketError::invalid_input(format!(
                "unknown interval {s:?} (case-sensitive: 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M)"
            ))
        })
    }
}
