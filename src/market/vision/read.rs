//! Reading a downloaded Vision zip: its one CSV entry (named after the file), inflated and
//! parsed as a stream into klines or aggregate trades, and klines checked against their period.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use super::super::error::MarketError;
use super::super::kline::{Kline, parse_csv};
use super::super::trade::{AGG_TRADES_HEADER, AggTrade};
use super::VisionFile;
use super::disk::blocking;

/// Reads the one CSV of the zip at `zip_path` as a stream.
pub(super) async fn read_zip<T: Send + 'static>(
    zip_path: PathBuf,
    what: String,
    expected: String,
    parse: fn(&mut dyn BufRead, &str) -> Result<Vec<T>, MarketError>,
) -> Result<Vec<T>, MarketError> {
    blocking(move || {
        let zerr = |detail: String| MarketError::Zip {
            file: what.clone(),
            detail,
        };
        let f = std::fs::File::open(&zip_path).map_err(|e| MarketError::io(&zip_path, e))?;
        let mut archive =
            zip::ZipArchive::new(BufReader::new(f)).map_err(|e| zerr(e.to_string()))?;
        if archive.len() != 1 {
            return Err(zerr(format!("{} entries, expected one CSV", archive.len())));
        }
        let entry = archive.by_index(0).map_err(|e| zerr(e.to_string()))?;
        let name = entry.name().to_owned();
        if name != expected {
            return Err(zerr(format!("its entry is {name:?}, not {expected:?}")));
        }
        // Inflate errors and a CRC-32 mismatch surface as read errors of the entry.
        parse(
            &mut BufReader::with_capacity(256 * 1024, entry),
            &format!("{what} ({name})"),
        )
        .map_err(|e| match e {
            MarketError::Data { detail, .. } if detail.contains("reading line") => zerr(detail),
            other => other,
        })
    })
    .await
}

/// Rows of a file must lie in its period, in strictly increasing open time (exact duplicate rows
/// are tolerated here and dropped when merged).
pub(super) fn check_span(klines: &[Kline], file: &VisionFile) -> Result<(), MarketError> {
    let span = file.span();
    let mut prev: Option<&Kline> = None;
    for (i, k) in klines.iter().enumerate() {
        if !span.contains(k.open_time) {
            return Err(MarketError::data(
                file,
                format!("row {} opens at {}, outside {span}", i + 1, k.open_time),
            ));
        }
        if let Some(p) = prev {
            if k.open_time < p.open_time || (k.open_time == p.open_time && k != p) {
                return Err(MarketError::data(
                    file,
                    format!(
                        "row {} opens at {}: out of order or a conflicting duplicate",
                        i + 1,
                        k.open_time
                    ),
                ));
            }
        }
        prev = Some(k);
    }
    Ok(())
}

/// [`parse_csv`] of klines, as [`read_zip`] calls it.
pub(super) fn parse_klines(r: &mut dyn BufRead, what: &str) -> Result<Vec<Kline>, MarketError> {
    parse_csv(r, what)
}

/// An aggTrades CSV: the futures header line first or none, then one trade per line; a first
/// line that is neither is an error.
pub(super) fn parse_agg_trades(
    r: &mut dyn BufRead,
    what: &str,
) -> Result<Vec<AggTrade>, MarketError> {
    let mut out = Vec::new();
    for (n, line) in r.lines().enumerate() {
        let line =
            line.map_err(|e| MarketError::data(what, format!("reading line {}: {e}", n + 1)))?;
        let row = line.trim_end_matches('\r');
        if row.trim().is_empty() || (n == 0 && row == AGG_TRADES_HEADER) {
            continue;
        }
        let t = AggTrade::from_csv_row(row)
            .map_err(|e| MarketError::data(what, format!("line {}: {e}", n + 1)))?;
        out.push(t);
    }
    Ok(out)
}
