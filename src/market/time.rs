//! [`Timestamp`] (UTC, microseconds since the Unix epoch) and [`Date`] (a UTC calendar day), with
//! the little civil-date arithmetic the market module needs (days from civil, month steps), done
//! by hand so no date crate is pulled in.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::MarketError;

/// Microseconds per millisecond, second, minute, hour and day.
pub(crate) const US_PER_MS: i64 = 1_000;
pub(crate) const US_PER_SEC: i64 = 1_000_000;
pub(crate) const US_PER_MIN: i64 = 60 * US_PER_SEC;
pub(crate) const US_PER_HOUR: i64 = 60 * US_PER_MIN;
pub(crate) const US_PER_DAY: i64 = 24 * US_PER_HOUR;

/// Raw exchange timestamps below this are milliseconds, at or above it microseconds.
///
/// `10^14` ms is the year 5138 and `10^14` µs is 1973-03-03, so the two ranges that can hold a
/// trading timestamp never overlap. Binance spot switched its Vision files from milliseconds to
/// microseconds on 2025-01-01 (and offers microseconds on REST on request); futures stay in
/// milliseconds. Each value is judged on its own, so a file that mixes both still normalises.
pub const MICROS_THRESHOLD: i64 = 100_000_000_000_000;

/// An instant in UTC with microsecond precision: microseconds since 1970-01-01T00:00:00Z.
///
/// `Display` is RFC 3339 (`2017-09-01T00:00:00Z`, with `.ffffff` when there are sub-seconds);
/// [`FromStr`] accepts that, a bare date (`2017-09-01`, midnight UTC), `YYYY-MM-DDTHH:MM[:SS]`
/// with an optional fraction and `Z`, and a raw integer in milliseconds or microseconds (told
/// apart by [`MICROS_THRESHOLD`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The earliest representable instant.
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// The latest representable instant.
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// From microseconds since the epoch.
    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    /// From milliseconds since the epoch (saturating).
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms.saturating_mul(US_PER_MS))
    }

    /// From a raw exchange value in milliseconds or microseconds, told apart per value by
    /// [`MICROS_THRESHOLD`].
    pub const fn from_exchange(raw: i64) -> Self {
        if raw.unsigned_abs() < MICROS_THRESHOLD as u64 {
            Timestamp::from_millis(raw)
        } else {
            Timestamp(raw)
        }
    }

    /// Midnight UTC of `date`.
    pub fn from_date(date: Date) -> Self {
        Timestamp(date.days_since_epoch() * US_PER_DAY)
    }

    /// Now, from the system clock.
    pub fn now() -> Self {
        Timestamp::from_system_time(SystemTime::now())
    }

    /// From a [`SystemTime`] (truncated to microseconds, saturating).
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX)),
        }
    }

    /// As a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_micros(self.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_micros(self.0.unsigned_abs())
        }
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Milliseconds since the epoch, rounded down (`...59999999` µs gives `...59999` ms, which
    /// is how millisecond sources write close times).
    pub const fn as_millis_floor(self) -> i64 {
        self.0.div_euclid(US_PER_MS)
    }

    /// Milliseconds since the epoch, rounded up.
    pub const fn as_millis_ceil(self) -> i64 {
        -((-self.0).div_euclid(US_PER_MS))
    }

    /// The UTC calendar day this instant falls in.
    pub fn date(self) -> Date {
        Date::from_days_since_epoch(self.0.div_euclid(US_PER_DAY))
    }

    /// Microseconds since midnight UTC.
    pub const fn micros_of_day(self) -> i64 {
        self.0.rem_euclid(US_PER_DAY)
    }

    /// `self + us` microseconds, saturating.
    pub const fn add_micros(self, us: i64) -> Self {
        Timestamp(self.0.saturating_add(us))
    }

    /// The duration from `earlier` to `self` (zero when `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// Midnight UTC of the first day of this instant's month.
    pub fn month_start(self) -> Self {
        let d = self.date();
        Timestamp::from_date(Date::new_unchecked(d.year, d.month, 1))
    }

    /// `self` moved by `months` calendar months, keeping the day of month and the time of day
    /// (the day is clamped to the target month's length).
    pub fn add_months(self, months: i64) -> Self {
        let d = self.date();
        let index = i64::from(d.year) * 12 + i64::from(d.month) - 1 + months;
        let (year, month) = (
            index.div_euclid(12) as i32,
            (index.rem_euclid(12) + 1) as u8,
        );
        let day = d.day.min(days_in_month(year, month));
        Timestamp::from_date(Date::new_unchecked(year, month, day)).add_micros(self.micros_of_day())
    }

    /// Parses the forms listed on [`Timestamp`].
    pub fn parse(s: &str) -> Result<Self, MarketError> {
        parse_timestamp(s.trim()).ok_or_else(|| {
            MarketError::invalid_input(format!(
                "{s:?} is not a timestamp (YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z], or epoch ms/µs)"
            ))
        })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = self.date();
        let us = self.micros_of_day();
        let (h, m, s, frac) = (
            us / US_PER_HOUR,
            us % US_PER_HOUR / US_PER_MIN,
            us % US_PER_MIN / US_PER_SEC,
            us % US_PER_SEC,
        );
        write!(f, "{date}T{h:02}:{m:02}:{s:02}")?;
        if frac != 0 {
            write!(f, ".{frac:06}")?;
        }
        f.write_str("Z")
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Timestamp {
    type Err = MarketError;

    fn from_str(s: &str) -> Result<Self, MarketError> {
        Timestamp::parse(s)
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;

    /// `self + d`, saturating.
    fn add(self, d: Duration) -> Timestamp {
        self.add_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        Timestamp::from_system_time(t)
    }
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_timestamp(s: &str) -> Option<Timestamp> {
    if let Some(rest) = s.strip_prefix('-') {
        return digits(rest).map(|v| Timestamp::from_exchange(-v));
    }
    if s.len() > 10 && s.bytes().all(|b| b.is_ascii_digit()) {
        return digits(s).map(Timestamp::from_exchange);
    }
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let day = Timestamp::from_date(date.parse::<Date>().ok()?);
    let Some(time) = time else {
        return Some(day);
    };
    let time = time.strip_suffix('Z').unwrap_or(time);
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (time, None),
    };
    let mut parts = hms.split(':');
    let h = digits(parts.next()?)?;
    let m = digits(parts.next()?)?;
    let sec = match parts.next() {
        Some(p) => digits(p)?,
        None => 0,
    };
    if parts.next().is_some() || h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let frac_us = match frac {
        None => 0,
        Some(f) if (1..=6).contains(&f.len()) => digits(f)? * 10i64.pow(6 - f.len() as u32),
        Some(_) => return None,
    };
    Some(day.add_micros(h * US_PER_HOUR + m * US_PER_MIN + sec * US_PER_SEC + frac_us))
}

/// A UTC calendar day. `Display` and [`FromStr`] use `YYYY-MM-DD`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

impl Date {
    /// The day `year-month-day`, or an error when it does not exist.
    pub fn new(year: i32, month: u8, day: u8) -> Result<Self, MarketError> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(MarketError::invalid_input(format!(
                "{year:04}-{month:02}-{day:02} is not a calendar day"
            )));
        }
        Ok(Date { year, month, day })
    }

    pub(crate) const fn new_unchecked(year: i32, month: u8, day: u8) -> Self {
        Date { year, month, day }
    }

    /// The year.
    pub const fn year(self) -> i32 {
        self.year
    }

    /// The month, 1 to 12.
    pub const fn month(self) -> u8 {
        self.month
    }

    /// The day of the month, from 1.
    pub const fn day(self) -> u8 {
        self.day
    }

    /// The next day.
    pub fn succ(self) -> Date {
        Date::from_days_since_epoch(self.days_since_epoch() + 1)
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    pub fn days_since_epoch(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The day `days` after 1970-01-01 (`civil_from_days`).
    pub fn from_days_since_epoch(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Date {
    type Err = MarketError;

    fn from_str(s: &str) -> Result<Self, MarketError> {
        let bad = || MarketError::invalid_input(format!("{s:?} is not a date (YYYY-MM-DD)"));
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let year = digits(&s[0..4]).ok_or_else(bad)? as i32;
        let month = digits(&s[5..7]).ok_or_else(bad)? as u8;
        let day = digits(&s[8..10]).ok_or_else(bad)? as u8;
        Date::new(year, month, day)
    }
}

/// Days in `month` of `year` (proleptic Gregorian).
pub(crate) fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}
