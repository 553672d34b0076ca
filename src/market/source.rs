//! [`KlineSource`]: one call for a symbol, an interval and a range. It plans monthly Vision files
//! for whole past months, daily files for whole past days and REST for the rest, falls back
//! (monthly → daily → REST) for files that are not published yet or missing, merges without
//! duplicates, and reports the exchange's own gaps as data.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::error::MarketError;
use super::interval::Interval;
use super::kline::Kline;
use super::rest::RestDataClient;
use super::time::{Date, Timestamp, US_PER_DAY};
use super::vision::{ChecksumStatus, FileOutcome, Period, VisionDataClient, VisionFile};
use super::{Clock, Market, Progress, ProgressHook, Window, check_symbol};

/// Where [`KlineSource`] may get data from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SourceMode {
    /// Vision files for whole past periods, REST for the rest and for files not there.
    #[default]
    Auto,
    /// REST only.
    Rest,
    /// Vision only: a range that needs REST (a partial day, a file not published) is an error.
    Vision,
}

impl FromStr for SourceMode {
    type Err = MarketError;

    fn from_str(s: &str) -> Result<Self, MarketError> {
        match s {
            "auto" => Ok(SourceMode::Auto),
            "rest" => Ok(SourceMode::Rest),
            "vision" => Ok(SourceMode::Vision),
            _ => Err(MarketError::invalid_input(format!(
                "unknown source {s:?} (auto, rest or vision)"
            ))),
        }
    }
}

impl fmt::Display for SourceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceMode::Auto => "auto",
            SourceMode::Rest => "rest",
            SourceMode::Vision => "vision",
        })
    }
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// A Vision file, covering its whole period.
    Vision(VisionFile),
    /// REST over a span.
    Rest(Window),
}

impl Part {
    /// The open times this part covers.
    pub fn span(&self) -> Window {
        match self {
            Part::Vision(f) => f.span(),
            Part::Rest(w) => *w,
        }
    }
}

/// Open times with no candle at the exchange, inside the range asked for: data, not a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The first missing open time.
    pub start: Timestamp,
    /// The next open time that has a candle (or the end of the range).
    pub end: Timestamp,
    /// Candles missing.
    pub missing: u64,
}

/// What served a span.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServedBy {
    /// A Vision file.
    Vision {
        /// Its path.
        file: String,
        /// Its checksum verdict ([`ChecksumStatus::Missing`] is worth a warning).
        checksum: ChecksumStatus,
        /// Served from the on-disk cache.
        from_cache: bool,
        /// Chunks asked again after a broken body or a failure.
        resumed: u32,
    },
    /// The REST API.
    Rest,
}

/// One served span.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartReport {
    /// The span.
    pub span: Window,
    /// What served it.
    pub served_by: ServedBy,
    /// Its rows.
    pub rows: usize,
}

/// A Vision file that was planned but not there, and what replaced it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fallback {
    /// The file's path.
    pub file: String,
    /// True for not published yet, false for missing.
    pub not_yet_published: bool,
}

/// How a [`KlineSet`] was put together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceReport {
    /// Every served span, in order.
    pub parts: Vec<PartReport>,
    /// Vision files that were not there (their spans went to daily files or REST).
    pub fallbacks: Vec<Fallback>,
    /// Exact duplicate rows dropped while merging.
    pub duplicates_dropped: usize,
    /// Candles dropped because they had not closed yet.
    pub open_candles_dropped: usize,
}

impl SourceReport {
    /// The Vision files used without a CHECKSUM to verify them.
    pub fn unverified_files(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|p| match &p.served_by {
                ServedBy::Vision { file, checksum, .. }
                    if *checksum != ChecksumStatus::Verified =>
                {
                    Some(file.as_str())
                }
                _ => None,
            })
            .collect()
    }

    /// Rows served over REST.
    pub fn rest_rows(&self) -> usize {
        self.parts
            .iter()
            .filter(|p| p.served_by == ServedBy::Rest)
            .map(|p| p.rows)
            .sum()
    }

    /// Rows served from Vision files.
    pub fn vision_rows(&self) -> usize {
        self.parts
            .iter()
            .filter(|p| matches!(p.served_by, ServedBy::Vision { .. }))
            .map(|p| p.rows)
            .sum()
    }
}

/// The result of [`KlineSource::klines`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KlineSet {
    /// Closed candles with open time in the range, in order, no duplicates.
    pub klines: Vec<Kline>,
    /// Open times in the range with no candle at the exchange.
    pub gaps: Vec<Gap>,
    /// How the set was put together.
    pub report: SourceReport,
}

impl KlineSet {
    /// Candles missing at the exchange, over every gap.
    pub fn missing(&self) -> u64 {
        self.gaps.iter().map(|g| g.missing).sum()
    }
}

/// Plans and fetches klines from Vision and REST. Cheap to clone.
#[derive(Clone)]
pub struct KlineSource {
    rest: Option<RestDataClient>,
    vision: Option<VisionDataClient>,
    mode: SourceMode,
    clock: Clock,
    progress: Option<ProgressHook>,
}

impl fmt::Debug for KlineSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KlineSource")
            .field("rest", &self.rest)
            .field("vision", &self.vision)
            .field("mode", &self.mode)
            .field("clock", &self.clock)
            .finish()
    }
}

impl KlineSource {
    /// Vision and REST ([`SourceMode::Auto`]); both clients must be for the same market.
    pub fn new(rest: RestDataClient, vision: VisionDataClient) -> Result<Self, MarketError> {
        if rest.market() != vision.market() {
            return Err(MarketError::invalid_input(format!(
                "REST is for {} but Vision for {}",
                rest.market(),
                vision.market()
            )));
        }
        Ok(KlineSource {
            rest: Some(rest),
            vision: Some(vision),
            mode: SourceMode::Auto,
            clock: Clock::System,
            progress: None,
        })
    }

    /// REST only.
    pub fn rest_only(rest: RestDataClient) -> Self {
        KlineSource {
            rest: Some(rest),
            vision: None,
            mode: SourceMode::Rest,
            clock: Clock::System,
            progress: None,
        }
    }

    /// Vision only.
    pub fn vision_only(vision: VisionDataClient) -> Self {
        KlineSource {
            rest: None,
            vision: Some(vision),
            mode: SourceMode::Vision,
            clock: Clock::System,
            progress: None,
        }
    }

    /// Restricts the sources (a mode whose client is missing fails when used).
    pub fn mode(mut self, mode: SourceMode) -> Self {
        self.mode = mode;
        self
    }

    /// The clock that decides which periods are complete and which candles have closed.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A progress callback.
    pub fn progress(mut self, f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    pub(crate) fn progress_hook(mut self, hook: Option<ProgressHook>) -> Self {
        self.progress = hook;
        self
    }

    fn market(&self) -> Option<Market> {
        self.rest
            .as_ref()
            .map(|r| r.market())
            .or_else(|| self.vision.as_ref().map(|v| v.market()))
    }

    /// The plan for `[start, end)`: Vision files for whole months and days that have ended
    /// (monthly only for `3d`, `1w`, `1M`), REST for the rest, adjacent REST spans joined. Only
    /// open times before now are planned.
    pub fn plan(
        &self,
        symbol: &str,
        interval: Interval,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Part>, MarketError> {
        check_symbol(symbol)?;
        let market = self
            .market()
            .ok_or_else(|| MarketError::invalid_input("no client"))?;
        market.check_interval(interval)?;
        let now = self.clock.now();
        let end = end.min(now);
        let mut parts = Vec::new();
        if end <= start {
            return Ok(parts);
        }
        if self.mode == SourceMode::Rest {
            parts.push(Part::Rest(Window::new(start, end)));
            return Ok(parts);
        }
        let daily = interval.has_daily_files();
        let mut rest_from: Option<Timestamp> = None;
        let mut cursor = start;
        let flush = |parts: &mut Vec<Part>, rest_from: &mut Option<Timestamp>, to: Timestamp| {
            if let Some(from) = rest_from.take() {
                parts.push(Part::Rest(Window::new(from, to)));
            }
        };
        while cursor < end {
            if cursor == cursor.month_start() {
                let month_end = cursor.add_months(1);
                if month_end <= end {
                    flush(&mut parts, &mut rest_from, cursor);
                    parts.push(Part::Vision(VisionFile::new(
                        market,
                        symbol,
                        interval,
                        Period::month_of(cursor),
                    )?));
                    cursor = month_end;
                    continue;
                }
            }
            if daily && cursor.micros_of_day() == 0 {
                let day_end = cursor.add_micros(US_PER_DAY);
                if day_end <= end {
                    flush(&mut parts, &mut rest_from, cursor);
                    parts.push(Part::Vision(VisionFile::daily(
                        market,
                        symbol,
                        interval,
                        cursor.date(),
                    )?));
                    cursor = day_end;
                    continue;
                }
            }
            let next = if daily {
                Timestamp::from_date(cursor.date()).add_micros(US_PER_DAY)
            } else {
                cursor.month_start().add_months(1)
            };
            rest_from.get_or_insert(cursor);
            cursor = next.min(end);
        }
        flush(&mut parts, &mut rest_from, cursor);
        Ok(parts)
    }

    /// Every closed candle of `symbol` with open time in `[start, end)`, with the exchange's gaps.
    /// A file or window that fails fails the call; a gap is data.
    pub async fn klines(
        &self,
        symbol: &str,
        interval: Interval,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<KlineSet, MarketError> {
        let now = self.clock.now();
        let plan = self.plan(symbol, interval, start, end)?;
        let progress = self.progress.clone();
        let emit = |p: Progress| {
            if let Some(f) = &progress {
                f(p)
            }
        };
        let mut report = SourceReport::default();
        // Served pieces, each with its span: (span, rows, who).
        let mut pieces: Vec<(Window, Vec<Kline>, ServedBy)> = Vec::new();
        let mut rest_spans: Vec<Window> = Vec::new();

        // Vision: planned files, then daily files for months that were not there.
        let mut files: Vec<VisionFile> = plan
            .iter()
            .filter_map(|p| match p {
                Part::Vision(f) => Some(f.clone()),
                Part::Rest(_) => None,
            })
            .collect();
        rest_spans.extend(plan.iter().filter_map(|p| match p {
            Part::Rest(w) => Some(*w),
            Part::Vision(_) => None,
        }));
        let mut round = 0;
        while !files.is_empty() {
            round += 1;
            let vision = self.vision.as_ref().ok_or_else(|| {
                MarketError::invalid_input("the plan needs Vision but there is no Vision client")
            })?;
            emit(Progress::Planned { steps: files.len() });
            let outcomes = vision
                .files_with(&files, |o| {
                    let (rows, bytes) = match o {
                        FileOutcome::Fetched(k) => {
                            (k.klines.len(), if k.from_cache { 0 } else { k.bytes })
                        }
                        _ => (0, 0),
                    };
                    emit(Progress::VisionFile { rows, bytes });
                })
                .await?;
            let mut retry = Vec::new();
            for outcome in outcomes {
                let (f, not_yet_published) = match outcome {
                    FileOutcome::Fetched(k) => {
                        pieces.push((
                            k.file.span(),
                            k.klines,
                            ServedBy::Vision {
                                file: k.file.path(),
                                checksum: k.checksum,
                                from_cache: k.from_cache,
                                resumed: k.resumed,
                            },
                        ));
                        continue;
                    }
                    FileOutcome::NotYetPublished(f) => (f, true),
                    FileOutcome::Missing(f) => (f, false),
                };
                report.fallbacks.push(Fallback {
                    file: f.path(),
                    not_yet_published,
                });
                match f.period() {
                    Period::Month { .. } if round == 1 && interval.has_daily_files() => {
                        let span = f.span();
                        let mut d: Date = span.start.date();
                        while Timestamp::from_date(d) < span.end {
                            let day_end = Timestamp::from_date(d.succ());
                            if day_end <= now {
                                retry.push(VisionFile::daily(f.market(), f.symbol(), interval, d)?);
                            } else {
                                rest_spans
                                    .push(Window::new(Timestamp::from_date(d), span.end.min(now)));
                                break;
                            }
                            d = d.succ();
                        }
                    }
                    _ => rest_spans.push(f.span()),
                }
            }
            files = retry;
        }

        // REST for the rest, adjacent spans joined.
        rest_spans.sort();
        let mut joined: Vec<Window> = Vec::new();
        for w in rest_spans {
            match joined.last_mut() {
                Some(last) if last.end == w.start => last.end = w.end,
                _ => joined.push(w),
            }
        }
        if !joined.is_empty() && self.mode == SourceMode::Vision {
            return Err(MarketError::invalid_input(format!(
                "Vision only, but {} needs REST (a partial day or a file not there)",
                joined[0]
            )));
        }
        for w in joined {
            let rest = self.rest.as_ref().ok_or_else(|| {
                MarketError::invalid_input("the plan needs REST but there is no REST client")
            })?;
            let rows = rest
                .klines_with_progress(symbol, interval, w.start, w.end, self.progress.as_deref())
                .await?;
            pieces.push((w, rows, ServedBy::Rest));
        }

        // Merge in span order; drop candles still open.
        pieces.sort_by_key(|(w, _, _)| *w);
        let total: usize = pieces.iter().map(|(_, r, _)| r.len()).sum();
        let mut klines: Vec<Kline> = Vec::with_capacity(total);
        for (span, rows, served_by) in pieces {
            let mut kept = 0;
            for k in rows {
                if !span.contains(k.open_time) || k.open_time < start || k.open_time >= end {
                    continue;
                }
                if interval.next(k.open_time) > now {
                    report.open_candles_dropped += 1;
                    continue;
                }
                if let Some(last) = klines.last() {
                    if k.open_time < last.open_time {
                        return Err(MarketError::data(
                            span,
                            format!("{} opens before the row before it", k.open_time),
                        ));
                    }
                    if k.open_time == last.open_time {
                        if k == *last {
                            report.duplicates_dropped += 1;
                            continue;
                        }
                        return Err(MarketError::data(
                            span,
                            format!("two different candles open at {}", k.open_time),
                        ));
                    }
                }
                klines.push(k);
                kept += 1;
            }
            report.parts.push(PartReport {
                span,
                served_by,
                rows: kept,
            });
        }
        let gaps = find_gaps(&klines, interval, start, end, now);
        Ok(KlineSet {
            klines,
            gaps,
            report,
        })
    }
}

/// Open times in `[start, end)` of candles that have closed by `now` and are not in `klines`.
/// Fixed intervals use the grid of the data's own open times (the phase of the first candle),
/// the default grid when there is no data; `1M` uses month starts.
pub(crate) fn find_gaps(
    klines: &[Kline],
    interval: Interval,
    start: Timestamp,
    end: Timestamp,
    now: Timestamp,
) -> Vec<Gap> {
    let first_expected = match (interval.fixed_micros(), klines.first()) {
        (Some(step), Some(k)) => {
            let phase = k.open_time.as_micros().rem_euclid(step);
            let s = start.as_micros();
            Timestamp::from_micros(s + (phase - s).rem_euclid(step))
        }
        _ => interval.ceil(start),
    };
    let closed = |t: Timestamp| t < end && interval.next(t) <= now;
    let count = |from: Timestamp, to: Timestamp| -> u64 {
        match interval.fixed_micros() {
            Some(step) => ((to.as_micros() - from.as_micros() + step - 1) / step).max(0) as u64,
            None => {
                let mut n = 0;
                let mut t = from;
                while t < to {
                    n += 1;
                    t = interval.next(t);
                }
                n
            }
        }
    };
    let mut gaps = Vec::new();
    let mut expect = first_expected;
    for k in klines {
        if k.open_time > expect {
            gaps.push(Gap {
                start: expect,
                end: k.open_time,
                missing: count(expect, k.open_time),
            });
        }
        expect = interval.next(k.open_time);
    }
    // The tail: expected candles that have closed, up to the end of the range.
    let mut tail_end = expect;
    match interval.fixed_micros() {
        Some(step) => {
            let limit = end.min(Timestamp::from_micros(
                now.as_micros().saturating_sub(step) + 1,
            ));
            if limit > expect {
                tail_end = expect.add_micros(step * count(expect, limit) as i64);
            }
        }
        None => {
            while closed(tail_end) {
                tail_end = interval.next(tail_end);
            }
        }
    }
    let tail_end = tail_end.min(end);
    if tail_end > expect {
        gaps.push(Gap {
            start: expect,
            end: tail_end,
            missing: count(expect, tail_end),
        });
    }
    gaps
}
