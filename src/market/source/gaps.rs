//! Gaps: open times with no candle, found in the merged rows ([`find_gaps`]) and reported only
//! with what proves them ([`GapKind`]): a hole in a Vision file is asked of REST (rows it has
//! fill the hole, and the file is reported defective), and the time before the symbol's first
//! candle is told apart from an outage.

use super::super::error::MarketError;
use super::super::interval::Interval;
use super::super::kline::Kline;
use super::super::time::{Date, Timestamp, US_PER_DAY};
use super::super::vision::{Period, VisionFile};
use super::super::{SourceMode, Window};
use super::{Call, DefectiveFile, KlineSet, KlineSource};

/// Open times inside the range asked for with no candle: data, not a failure, and what proves
/// it ([`GapKind`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The first missing open time.
    pub start: Timestamp,
    /// The next open time that has a candle (or the end of the range).
    pub end: Timestamp,
    /// Candles missing.
    pub missing: u64,
    /// Why there is no candle there, and how sure that is.
    pub kind: GapKind,
}

/// What a [`Gap`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GapKind {
    /// The exchange has no candle there: its REST API, asked for this very span, has none (a
    /// hole in a Vision file is asked of REST before it is called this).
    Exchange,
    /// A hole that could not be confirmed: the second source was not reachable.
    Unconfirmed {
        /// Why it could not be asked.
        reason: String,
    },
    /// Before the symbol's first candle at the exchange (asked of it): not an outage.
    BeforeListing,
}

impl Gap {
    /// True when the candles are missing (an exchange gap, confirmed or not), false for the
    /// time before the symbol was listed.
    pub fn is_missing(&self) -> bool {
        self.kind != GapKind::BeforeListing
    }
}

impl KlineSource {
    /// The gaps of `set` with what proves each (see [`GapKind`]), holes REST can fill filled,
    /// and the Vision files with such holes reported defective; into `set`.
    pub(super) async fn prove(
        &self,
        symbol: &str,
        interval: Interval,
        vision_spans: &[(Window, String)],
        set: &mut KlineSet,
        range: Window,
        call: &Call,
    ) -> Result<(), MarketError> {
        let (start, end, now) = (range.start, range.end, call.now);
        let gaps = find_gaps(&set.klines, interval, start, end, now);
        let rest = self
            .rest
            .as_ref()
            .filter(|_| self.mode != SourceMode::Vision);
        // Spans proven: (span, kind).
        let mut proven: Vec<(Window, GapKind)> = Vec::new();
        let mut filled: Vec<Kline> = Vec::new();
        for (i, gap) in gaps.into_iter().enumerate() {
            let mut span = Window::new(gap.start, gap.end);
            if i == 0 && set.klines.first().is_none_or(|k| k.open_time >= gap.end) {
                // A range that opens with a hole: the part before the symbol's first candle is
                // not an outage (asked of the exchange, never assumed).
                let first = match rest {
                    Some(r) => {
                        *call
                            .listing
                            .get_or_init(|| async {
                                r.first_open_time(symbol, interval).await.ok().flatten()
                            })
                            .await
                    }
                    None => None,
                };
                if let Some(first) = first {
                    let listed = first.min(span.end).max(span.start);
                    if listed > span.start {
                        proven.push((Window::new(span.start, listed), GapKind::BeforeListing));
                        span.start = listed;
                    }
                }
            }
            if span.start >= span.end {
                continue;
            }
            let in_files: Vec<&String> = vision_spans
                .iter()
                .filter(|(w, _)| w.start < span.end && span.start < w.end)
                .map(|(_, f)| f)
                .collect();
            if in_files.is_empty() {
                // Found by REST itself, paging each window to its end.
                proven.push((span, GapKind::Exchange));
                continue;
            }
            let Some(rest) = rest else {
                let reason = "no REST client to confirm a hole in a Vision file".to_owned();
                proven.push((span, GapKind::Unconfirmed { reason }));
                continue;
            };
            match rest.klines(symbol, interval, span.start, span.end).await {
                Err(e) => proven.push((
                    span,
                    GapKind::Unconfirmed {
                        reason: format!("REST could not be asked: {e}"),
                    },
                )),
                Ok(rows) => {
                    let rows: Vec<Kline> = rows
                        .into_iter()
                        .filter(|k| span.contains(k.open_time) && interval.next(k.open_time) <= now)
                        .collect();
                    if !rows.is_empty() {
                        for file in in_files {
                            let has = |w: &Window| rows.iter().any(|k| w.contains(k.open_time));
                            if vision_spans.iter().any(|(w, f)| f == file && has(w)) {
                                set.report.defective_files.push(DefectiveFile {
                                    file: file.clone(),
                                    reason: format!(
                                        "rows missing that REST has (from {}): filled from REST",
                                        rows[0].open_time
                                    ),
                                });
                            }
                        }
                    }
                    filled.extend(rows);
                    proven.push((span, GapKind::Exchange));
                }
            }
        }
        if !filled.is_empty() {
            set.klines.extend(filled);
            set.klines.sort_by_key(|k| k.open_time);
        }
        // What is still missing, each part with the proof of the span it lies in.
        for gap in find_gaps(&set.klines, interval, start, end, now) {
            let mut at = gap.start;
            for (w, kind) in &proven {
                let (from, to) = (w.start.max(at), w.end.min(gap.end));
                if from < to {
                    set.gaps.push(Gap {
                        start: from,
                        end: to,
                        missing: count(interval, from, to),
                        kind: kind.clone(),
                    });
                    at = to;
                }
            }
            if at < gap.end {
                // Not met while proving (a grid shifted by filled rows): unproven.
                set.gaps.push(Gap {
                    start: at,
                    end: gap.end,
                    missing: count(interval, at, gap.end),
                    kind: GapKind::Unconfirmed {
                        reason: "not asked of a second source".into(),
                    },
                });
            }
        }
        Ok(())
    }
}

/// The first day of a monthly file's period (that has ended by `now`) without a row: a monthly
/// file must cover every day of its month (for intervals of a day or less).
pub(super) fn missing_day(
    klines: &[Kline],
    file: &VisionFile,
    interval: Interval,
    now: Timestamp,
) -> Option<Date> {
    if !matches!(file.period(), Period::Month { .. })
        || interval.fixed_micros().is_none_or(|step| step > US_PER_DAY)
    {
        return None;
    }
    let span = file.span();
    let mut rows = klines.iter().peekable();
    let mut day = span.start.date();
    while Timestamp::from_date(day) < span.end && Timestamp::from_date(day.succ()) <= now {
        let day_end = Timestamp::from_date(day.succ());
        let mut any = false;
        while let Some(k) = rows.next_if(|k| k.open_time < day_end) {
            any |= k.open_time >= Timestamp::from_date(day);
        }
        if !any {
            return Some(day);
        }
        day = day.succ();
    }
    None
}

/// Candles of `interval` opening in `[from, to)`.
fn count(interval: Interval, from: Timestamp, to: Timestamp) -> u64 {
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
}

/// Open times in `[start, end)` of candles that have closed by `now` and are not in `klines`
/// (each called [`GapKind::Exchange`] until proven).
/// Fixed intervals use the grid of the data's own open times (the phase of the first candle),
/// the default grid when there is no data; `1M` uses month starts.
fn find_gaps(
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
    let count = |from: Timestamp, to: Timestamp| count(interval, from, to);
    let mut gaps = Vec::new();
    let mut expect = first_expected;
    for k in klines {
        if k.open_time > expect {
            gaps.push(Gap {
                start: expect,
                end: k.open_time,
                missing: count(expect, k.open_time),
                kind: GapKind::Exchange,
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
            kind: GapKind::Exchange,
        });
    }
    gaps
}
