//! What a [`KlineSource`](super::KlineSource) call returns: the candles and gaps of a range or
//! of one batch ([`KlineSet`]), and how they were put together ([`SourceReport`]).

use super::super::Window;
use super::super::error::MarketError;
use super::super::kline::Kline;
use super::super::vision::ChecksumStatus;
use super::{Gap, GapKind};

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
        /// Without a verified checksum, its rows were checked against REST's and agree.
        confirmed_by_rest: bool,
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

/// A Vision file found wrong: its rows were replaced or completed from REST or from the daily
/// files.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DefectiveFile {
    /// The file's path.
    pub file: String,
    /// What was wrong with it.
    pub reason: String,
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
    /// Vision files found wrong (a missing day, rows REST has and they lack, rows that differ
    /// from REST's without a checksum), and what replaced them.
    pub defective_files: Vec<DefectiveFile>,
}

impl SourceReport {
    /// The Vision files used without a verified CHECKSUM (their rows confirmed by REST, or the
    /// policy [`ChecksumPolicy::ReportOnly`](super::ChecksumPolicy::ReportOnly)).
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

/// The result of [`KlineSource::klines`](super::KlineSource::klines), and each batch of
/// [`KlineSource::stream`](super::KlineSource::stream).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct KlineSet {
    /// Closed candles with open time in the range, in order, no duplicates.
    pub klines: Vec<Kline>,
    /// Open times in the range with no candle, each with what proves it.
    pub gaps: Vec<Gap>,
    /// How the set was put together.
    pub report: SourceReport,
}

impl KlineSet {
    /// Candles missing (exchange gaps, confirmed or not; not the time before the listing).
    pub fn missing(&self) -> u64 {
        self.gaps
            .iter()
            .filter(|g| g.is_missing())
            .map(|g| g.missing)
            .sum()
    }

    /// Appends `batch`, the next one of a stream: its rows after these, a gap that goes on
    /// from the last one joined to it, its report added.
    pub(crate) fn absorb(&mut self, batch: KlineSet) -> Result<(), MarketError> {
        if let (Some(last), Some(first)) = (self.klines.last(), batch.klines.first()) {
            if first.open_time <= last.open_time {
                return Err(MarketError::data(
                    first.open_time,
                    "a batch opens before the end of the one before it",
                ));
            }
        }
        self.klines.extend(batch.klines);
        for gap in batch.gaps {
            match self.gaps.last_mut() {
                Some(g) if g.end == gap.start && g.kind == gap.kind => {
                    g.end = gap.end;
                    g.missing += gap.missing;
                }
                _ => self.gaps.push(gap),
            }
        }
        let (r, b) = (&mut self.report, batch.report);
        r.parts.extend(b.parts);
        r.fallbacks.extend(b.fallbacks);
        r.duplicates_dropped += b.duplicates_dropped;
        r.open_candles_dropped += b.open_candles_dropped;
        r.defective_files.extend(b.defective_files);
        Ok(())
    }

    /// The gaps that could not be confirmed.
    pub fn unconfirmed(&self) -> impl Iterator<Item = &Gap> {
        self.gaps
            .iter()
            .filter(|g| matches!(g.kind, GapKind::Unconfirmed { .. }))
    }
}
