//! Aggregate trades end to end: over REST by id (`fromId` paging) and by time, and over days
//! from Vision files with REST filling and proving the holes ([`AggTradeSource`]), under the
//! same rules as klines: a hole is reported only once REST was asked for it, rows REST has fill
//! it and the file is reported defective, and a file without a verified CHECKSUM is used only
//! when REST's trades agree.

use std::ops::Range;

use super::error::MarketError;
use super::rest::RestDataClient;
use super::source::DefectiveFile;
use super::time::{Date, Timestamp};
use super::trade::{self, AggTrade, AggTradeSet, IdGap, check_ids, id_gaps};
use super::vision::{AggTradesFile, ChecksumPolicy, ChecksumStatus, Period, VisionDataClient};
use super::{Window, check_symbol, same_market, weights};

/// Trades per `aggTrades` request at most.
const PAGE: u64 = 1000;

impl RestDataClient {
    /// Every aggregate trade of `symbol` with an id in `ids`, in id order, paging with `fromId`
    /// through the weight governor. Ids the exchange does not give are
    /// [`AggTradeSet::gaps`]: each was asked for (the exchange answers from the next id it has).
    pub async fn agg_trades(
        &self,
        symbol: &str,
        ids: Range<u64>,
    ) -> Result<AggTradeSet, MarketError> {
        check_symbol(symbol)?;
        let path = self.market().agg_trades_path();
        let mut trades = Vec::new();
        let mut next = ids.start;
        while next < ids.end {
            let query = [
                ("symbol", symbol.to_owned()),
                ("fromId", next.to_string()),
                ("limit", (ids.end - next).min(PAGE).to_string()),
            ];
            let page = self.agg_page(path, &query, next).await?;
            let Some(last) = page.last().map(|t| t.id) else {
                break;
            };
            check_ids(
                &page,
                next,
                u64::MAX,
                &format_args!("aggTrades from {next}"),
            )?;
            trades.extend(page.into_iter().take_while(|t| t.id < ids.end));
            next = last + 1;
        }
        let gaps = id_gaps(&trades, ids.start, ids.end);
        Ok(AggTradeSet { trades, gaps })
    }

    /// Every aggregate trade of `symbol` at a time in `[start, end)`, in id order: an hour at a
    /// time (`startTime` and `endTime` at most an hour apart), continued with `fromId` past a
    /// full page.
    pub async fn agg_trades_between(
        &self,
        symbol: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<AggTrade>, MarketError> {
        check_symbol(symbol)?;
        let path = self.market().agg_trades_path();
        let mut out: Vec<AggTrade> = Vec::new();
        let mut from = start;
        while from < end {
            let to = from.add_micros(3_600_000_000).min(end);
            let hour = Window::new(from, to);
            let mut query = vec![
                ("symbol", symbol.to_owned()),
                ("startTime", from.as_millis_ceil().to_string()),
                ("endTime", (to.as_millis_ceil() - 1).to_string()),
                ("limit", PAGE.to_string()),
            ];
            loop {
                let after = out.last().map_or(0, |t| t.id + 1);
                let page = self.agg_page(path, &query, after).await?;
                check_ids(&page, after, u64::MAX, &format_args!("aggTrades of {hour}"))?;
                let before = out.len();
                out.extend(page.into_iter().take_while(|t| t.time < to));
                if out[before..].iter().any(|t| !hour.contains(t.time)) {
                    return Err(MarketError::data(hour, "a trade outside the hour asked"));
                }
                // A short page, or one that ran past the hour: the hour is whole.
                if out.len() - before < PAGE as usize {
                    break;
                }
                let next = out.last().map_or(0, |t| t.id + 1);
                query = vec![
                    ("symbol", symbol.to_owned()),
                    ("fromId", next.to_string()),
                    ("limit", PAGE.to_string()),
                ];
            }
            from = to;
        }
        Ok(out)
    }

    /// One page of `aggTrades`, its trades from id `after` on.
    async fn agg_page(
        &self,
        path: &str,
        query: &[(&str, String)],
        after: u64,
    ) -> Result<Vec<AggTrade>, MarketError> {
        let weight = weights::weight_of(self.market(), path, query).unwrap_or(20);
        let body = self.get(path, query, weight, None).await?;
        trade::parse_json(&body, &format_args!("aggTrades from id {after}"))
    }
}

/// Aggregate trades of a range of days: each day's Vision file, REST for a day without one,
/// and every hole in the ids asked of REST. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AggTradeSource {
    rest: RestDataClient,
    vision: VisionDataClient,
}

/// What [`AggTradeSource::days`] returns.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct AggTradeDays {
    /// The trades, in increasing id, no duplicates.
    pub trades: Vec<AggTrade>,
    /// Ids with no trade at the exchange: REST, asked for them, has none.
    pub gaps: Vec<IdGap>,
    /// Holes REST could not be asked about, each with why.
    pub unconfirmed: Vec<(IdGap, String)>,
    /// Files found wrong (trades missing that REST has, trades that differ from REST's without
    /// a CHECKSUM), their trades replaced or completed from REST.
    pub defective_files: Vec<DefectiveFile>,
    /// Files used without a verified CHECKSUM (their trades confirmed by REST, or the policy
    /// report).
    pub unverified_files: Vec<String>,
    /// Days with no file (not published yet, or missing), served over REST.
    pub rest_days: Vec<Date>,
}

impl AggTradeSource {
    /// Vision and REST, for the same market.
    pub fn new(rest: RestDataClient, vision: VisionDataClient) -> Result<Self, MarketError> {
        same_market(&rest, &vision)?;
        Ok(AggTradeSource { rest, vision })
    }

    /// Every aggregate trade of `symbol` on the days `[first, end)`, with its holes proven.
    pub async fn days(
        &self,
        symbol: &str,
        first: Date,
        end: Date,
    ) -> Result<AggTradeDays, MarketError> {
        check_symbol(symbol)?;
        let mut out = AggTradeDays::default();
        // The trades of every day in order, and the file that served each day (`None`: REST).
        let mut trades: Vec<AggTrade> = Vec::new();
        let mut files: Vec<Option<String>> = Vec::new();
        let mut day = first;
        while day < end {
            let file = AggTradesFile::new(self.vision.market(), symbol, Period::Day(day))?;
            let served = match self.vision.agg_trades(&file).await? {
                Ok(f) => match self.confirmed(symbol, &f.trades, &f.checksum).await? {
                    Some(true) => {
                        out.unverified_files.push(file.path());
                        Some(f.trades)
                    }
                    Some(false) => Some(f.trades),
                    None => {
                        out.defective_files.push(DefectiveFile {
                            file: file.path(),
                            reason: "no CHECKSUM, and its trades differ from REST's: REST's used"
                                .into(),
                        });
                        None
                    }
                },
                Err(_) => {
                    out.rest_days.push(day);
                    None
                }
            };
            let (file, served) = match served {
                Some(t) => (Some(file.path()), t),
                None => {
                    let span = Period::Day(day).span();
                    let t = self
                        .rest
                        .agg_trades_between(symbol, span.start, span.end)
                        .await?;
                    (None, t)
                }
            };
            if let (Some(last), Some(next)) = (trades.last(), served.first()) {
                if next.id <= last.id {
                    return Err(MarketError::data(next.time, "days overlap in trade ids"));
                }
            }
            trades.extend(served);
            files.push(file);
            day = day.succ();
        }
        let (Some(lo), Some(hi)) = (trades.first().map(|t| t.id), trades.last().map(|t| t.id))
        else {
            return Ok(out);
        };
        let mut filled: Vec<AggTrade> = Vec::new();
        for gap in id_gaps(&trades, lo, hi + 1) {
            match self.rest.agg_trades(symbol, gap.first..gap.end).await {
                Ok(set) => {
                    filled.extend(set.trades);
                    out.gaps.extend(set.gaps);
                }
                Err(e) => out
                    .unconfirmed
                    .push((gap, format!("REST could not be asked: {e}"))),
            }
        }
        // Each file that lacked trades REST has (the file of the day they happened on), once.
        let mut lacking: Vec<(usize, u64)> = Vec::new();
        for t in &filled {
            let i = t.time.date().days_since_epoch() - first.days_since_epoch();
            if let Ok(i) = usize::try_from(i) {
                if !lacking.iter().any(|(j, _)| *j == i) {
                    lacking.push((i, t.id));
                }
            }
        }
        for (i, id) in lacking {
            if let Some(Some(file)) = files.get(i) {
                out.defective_files.push(DefectiveFile {
                    file: file.clone(),
                    reason: format!("trades missing that REST has (from id {id}): filled"),
                });
            }
        }
        trades.extend(filled);
        trades.sort_by_key(|t| t.id);
        out.trades = trades;
        Ok(out)
    }

    /// Whether a file's trades may be used: `Some(false)` verified by its CHECKSUM (or the
    /// policy report), `Some(true)` without one but the same as REST's, `None` different.
    async fn confirmed(
        &self,
        symbol: &str,
        trades: &[AggTrade],
        checksum: &ChecksumStatus,
    ) -> Result<Option<bool>, MarketError> {
        if *checksum == ChecksumStatus::Verified {
            return Ok(Some(false));
        }
        if self.vision.checksum_policy() == ChecksumPolicy::ReportOnly {
            return Ok(Some(true));
        }
        let (Some(lo), Some(hi)) = (trades.first(), trades.last()) else {
            return Ok(Some(true));
        };
        let rest = self.rest.agg_trades(symbol, lo.id..hi.id + 1).await?;
        Ok((rest.trades == trades).then_some(true))
    }
}
