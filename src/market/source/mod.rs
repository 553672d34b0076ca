//! [`KlineSource`]: one call for a symbol, an interval and a range. It plans monthly Vision files
//! for whole past months, daily files for whole past days and REST for the rest, falls back
//! (monthly → daily → REST) for files that are not published yet or missing, merges without
//! duplicates, and reports the exchange's own gaps as data.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

mod gaps;
mod set;
mod stream;

pub use gaps::{Gap, GapKind};
pub use set::{DefectiveFile, Fallback, KlineSet, PartReport, ServedBy, SourceReport};
pub use stream::KlineStream;

use gaps::missing_day;

use super::error::MarketError;
use super::interval::Interval;
use super::kline::Kline;
use super::rest::RestDataClient;
use super::time::{Date, Timestamp, US_PER_DAY};
use super::vision::{
    ChecksumPolicy, ChecksumStatus, FileOutcome, Period, VisionDataClient, VisionFile,
};
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

/// Plans and fetches klines from Vision and REST. Cheap to clone.
#[derive(Clone)]
pub struct KlineSource {
    rest: Option<RestDataClient>,
    vision: Option<VisionDataClient>,
    mode: SourceMode,
    clock: Clock,
    /// The exchange's clock less the local one (µs), and when it was measured.
    offset: Arc<std::sync::Mutex<Option<(i64, std::time::Instant)>>>,
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
        super::same_market(&rest, &vision)?;
        Ok(KlineSource {
            rest: Some(rest),
            vision: Some(vision),
            mode: SourceMode::Auto,
            clock: Clock::Exchange,
            offset: Arc::default(),
            progress: None,
        })
    }

    /// REST only.
    pub fn rest_only(rest: RestDataClient) -> Self {
        KlineSource {
            rest: Some(rest),
            vision: None,
            mode: SourceMode::Rest,
            clock: Clock::Exchange,
            offset: Arc::default(),
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
            offset: Arc::default(),
            progress: None,
        }
    }

    /// Restricts the sources (a mode whose client is missing fails when used).
    pub fn mode(mut self, mode: SourceMode) -> Self {
        self.mode = mode;
        self
    }

    /// The clock that decides which periods are complete and which candles have closed.
    /// Defaults to [`Clock::Exchange`] with REST (the local clock for Vision alone).
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
        self.plan_at(symbol, interval, start, end, self.clock.now())
    }

    /// [`KlineSource::plan`] at `now`.
    fn plan_at(
        &self,
        symbol: &str,
        interval: Interval,
        start: Timestamp,
        end: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Part>, MarketError> {
        check_symbol(symbol)?;
        let market = self
            .market()
            .ok_or_else(|| MarketError::invalid_input("no client"))?;
        market.check_interval(interval)?;
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
        // A month of candles shorter than a minute is too many rows for one file in memory.
        let monthly = interval.fixed_micros().is_none_or(|us| us >= 60_000_000);
        while cursor < end {
            if monthly && cursor == cursor.month_start() {
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

    /// Every closed candle of `symbol` with open time in `[start, end)`, with its gaps: the
    /// batches of [`KlineSource::stream`] gathered (gaps that run from one batch into the next
    /// joined). A file or window that fails fails the call; a gap is data, reported only with
    /// what proves it: a hole in a Vision file is asked of REST first (rows REST has fill it,
    /// and the file is reported defective), and the time before the symbol's first candle is
    /// told apart. For long ranges of short intervals, read the stream instead: this holds every
    /// row in memory.
    pub async fn klines(
        &self,
        symbol: &str,
        interval: Interval,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<KlineSet, MarketError> {
        let mut stream = self.stream(symbol, interval, start, end);
        let mut set = KlineSet::default();
        while let Some(batch) = std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)
        })
        .await
        {
            set.absorb(batch?)?;
        }
        Ok(set)
    }

    /// The candles of `[start, end)` as a stream of batches in open-time order, each a whole
    /// part of the plan (a Vision file, or a day of REST windows) with its own gaps and report,
    /// as they complete: a few parts are fetched at a time and memory stays bounded by them,
    /// whatever the range. The first error ends the stream. Dropping it cancels what is in
    /// flight. Read inside a tokio runtime.
    pub fn stream(
        &self,
        symbol: &str,
        interval: Interval,
        start: Timestamp,
        end: Timestamp,
    ) -> KlineStream {
        KlineStream::new(
            self.clone(),
            symbol.into(),
            interval,
            Window::new(start, end),
        )
    }

    /// What one call shares between its parts: now, and the symbol's first candle once asked.
    async fn call(&self) -> Result<Call, MarketError> {
        Ok(Call {
            now: self.now().await?,
            listing: tokio::sync::OnceCell::new(),
        })
    }

    /// The spans a call is fetched in: each Vision file of the plan, and its REST spans cut at
    /// day boundaries (for intervals with daily files).
    fn segments(
        &self,
        symbol: &str,
        interval: Interval,
        range: Window,
        now: Timestamp,
    ) -> Result<Vec<Window>, MarketError> {
        let mut out = Vec::new();
        for part in self.plan_at(symbol, interval, range.start, range.end, now)? {
            match part {
                Part::Vision(f) => out.push(f.span()),
                Part::Rest(w) if interval.has_daily_files() => {
                    let mut at = w.start;
                    while at < w.end {
                        let next = Timestamp::from_date(at.date().succ()).min(w.end);
                        out.push(Window::new(at, next));
                        at = next;
                    }
                }
                Part::Rest(w) => out.push(w),
            }
        }
        Ok(out)
    }

    /// One segment of a call: its plan fetched, merged and its gaps proven.
    async fn segment(
        &self,
        symbol: &str,
        interval: Interval,
        start: Timestamp,
        end: Timestamp,
        call: &Call,
    ) -> Result<KlineSet, MarketError> {
        let now = call.now;
        let plan = self.plan_at(symbol, interval, start, end, now)?;
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

        // Vision: planned files, then daily files for months that were not there or not whole.
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
                let f = match outcome {
                    FileOutcome::Fetched(k) => {
                        match missing_day(&k.klines, &k.file, interval, now) {
                            Some(day) if round == 1 && interval.has_daily_files() => {
                                report.defective_files.push(DefectiveFile {
                                    file: k.file.path(),
                                    reason: format!("no row for {day}: the daily files used"),
                                });
                                k.file
                            }
                            _ => {
                                let served_by = self.verified(symbol, interval, &k).await?;
                                pieces.push(match served_by {
                                    Some(by) => (k.file.span(), k.klines, by),
                                    None => {
                                        let span = k.file.span();
                                        report.defective_files.push(DefectiveFile {
                                            file: k.file.path(),
                                            reason: "no CHECKSUM, and its rows differ from \
                                                     REST's: REST's used"
                                                .into(),
                                        });
                                        let rows = self.rest_rows(symbol, interval, span).await?;
                                        (span, rows, ServedBy::Rest)
                                    }
                                });
                                continue;
                            }
                        }
                    }
                    FileOutcome::NotYetPublished(f) => {
                        report.fallbacks.push(Fallback {
                            file: f.path(),
                            not_yet_published: true,
                        });
                        f
                    }
                    FileOutcome::Missing(f) => {
                        report.fallbacks.push(Fallback {
                            file: f.path(),
                            not_yet_published: false,
                        });
                        f
                    }
                };
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
            let rows = self.rest_rows(symbol, interval, w).await?;
            pieces.push((w, rows, ServedBy::Rest));
        }

        let klines = merge(pieces, interval, start, end, now, &mut report)?;
        let vision_spans: Vec<(Window, String)> = report
            .parts
            .iter()
            .filter_map(|p| match &p.served_by {
                ServedBy::Vision { file, .. } => Some((p.span, file.clone())),
                ServedBy::Rest => None,
            })
            .collect();
        let mut set = KlineSet {
            klines,
            gaps: Vec::new(),
            report,
        };
        self.prove(
            symbol,
            interval,
            &vision_spans,
            &mut set,
            Window::new(start, end),
            call,
        )
        .await?;
        Ok(set)
    }

    /// Every candle of `w` over REST.
    async fn rest_rows(
        &self,
        symbol: &str,
        interval: Interval,
        w: Window,
    ) -> Result<Vec<Kline>, MarketError> {
        let rest = self.rest.as_ref().ok_or_else(|| {
            MarketError::invalid_input("the plan needs REST but there is no REST client")
        })?;
        rest.klines_with_progress(symbol, interval, w.start, w.end, self.progress.as_deref())
            .await
    }

    /// What served a fetched file, when its rows may be used: verified by its CHECKSUM, or
    /// (without one, under the default policy) the same as REST's rows for its span. `None`:
    /// they differ from REST's. Without REST to ask, a file without a verified CHECKSUM is
    /// refused unless the policy is [`ChecksumPolicy::ReportOnly`].
    async fn verified(
        &self,
        symbol: &str,
        interval: Interval,
        k: &super::FileKlines,
    ) -> Result<Option<ServedBy>, MarketError> {
        let by = |confirmed_by_rest| ServedBy::Vision {
            file: k.file.path(),
            checksum: k.checksum.clone(),
            from_cache: k.from_cache,
            resumed: k.resumed,
            confirmed_by_rest,
        };
        let policy = self.vision.as_ref().map(|v| v.checksum_policy());
        if k.checksum == ChecksumStatus::Verified || policy == Some(ChecksumPolicy::ReportOnly) {
            return Ok(Some(by(false)));
        }
        if self.rest.is_none() || self.mode == SourceMode::Vision {
            return Err(MarketError::ChecksumMissing {
                file: k.file.path(),
            });
        }
        let rows = self.rest_rows(symbol, interval, k.file.span()).await?;
        Ok((rows == k.klines).then(|| by(true)))
    }

    /// Now, on the exchange's clock under [`Clock::Exchange`]: the local clock plus the
    /// exchange's offset, measured once (`server_time`, half its round trip allowed for) and
    /// again every ten minutes. A source without REST uses the local clock.
    async fn now(&self) -> Result<Timestamp, MarketError> {
        let (Clock::Exchange, Some(rest)) = (self.clock, &self.rest) else {
            return Ok(self.clock.now());
        };
        let cached = *self
            .offset
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let offset = match cached {
            Some((offset, at)) if at.elapsed() < OFFSET_REFRESH => offset,
            _ => {
                let before = Timestamp::now();
                let server = rest.server_time().await?;
                let after = Timestamp::now();
                let mid = before.as_micros() + (after.as_micros() - before.as_micros()) / 2;
                let offset = server.as_micros() - mid;
                *self
                    .offset
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((offset, std::time::Instant::now()));
                offset
            }
        };
        Ok(Timestamp::now().add_micros(offset))
    }
}

/// What one call of [`KlineSource::stream`] shares between its segments.
#[derive(Debug)]
struct Call {
    /// Now, on the source's clock, once for the whole call.
    now: Timestamp,
    /// The open time of the symbol's first candle, asked of REST at most once.
    listing: tokio::sync::OnceCell<Option<Timestamp>>,
}

/// How often [`KlineSource`] measures the exchange's clock again.
const OFFSET_REFRESH: std::time::Duration = std::time::Duration::from_secs(600);

/// The served pieces merged in span order: rows outside their span or the range dropped, candles
/// still open by `now` dropped (counted), exact duplicates dropped (counted), anything else out
/// of order an error.
fn merge(
    mut pieces: Vec<(Window, Vec<Kline>, ServedBy)>,
    interval: Interval,
    start: Timestamp,
    end: Timestamp,
    now: Timestamp,
    report: &mut SourceReport,
) -> Result<Vec<Kline>, MarketError> {
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
    Ok(klines)
}
