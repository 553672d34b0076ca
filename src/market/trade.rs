//! [`AggTrade`]: one aggregate trade, with exact decimals and a microsecond UTC time, parsed from
//! the exchange's JSON (`aggTrades`) and from Vision CSV rows; and [`AggTradeSet`], trades by id
//! with the ids missing among them ([`IdGap`]).
//!
//! Aggregate trade ids follow one another with no hole, so a missing id is found from the data
//! itself and proven by asking for it.

use serde::Deserialize;

use super::error::MarketError;
use super::kline::Decimal;
use super::time::Timestamp;

/// One aggregate trade: trades at one price from one taker order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AggTrade {
    /// The aggregate trade id (`a`).
    pub id: u64,
    /// Price (`p`).
    pub price: Decimal,
    /// Quantity (`q`).
    pub quantity: Decimal,
    /// The first trade id it aggregates (`f`).
    pub first_trade_id: u64,
    /// The last trade id it aggregates (`l`).
    pub last_trade_id: u64,
    /// When it happened (`T`).
    pub time: Timestamp,
    /// The buyer was the maker (`m`).
    pub buyer_is_maker: bool,
    /// The trade was the best price match (`M`; spot only).
    pub best_match: Option<bool>,
}

impl AggTrade {
    /// Parses one Vision CSV row: `agg_trade_id, price, quantity, first_trade_id,
    /// last_trade_id, transact_time, is_buyer_maker[, is_best_match]` (booleans `True`/`true`).
    pub fn from_csv_row(line: &str) -> Result<AggTrade, String> {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if !(7..=8).contains(&f.len()) {
            return Err(format!("{} columns, not 7 or 8", f.len()));
        }
        let id = |s: &str, name: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("{name} {s:?} is not an id"))
        };
        let dec = |s: &str, name: &str| {
            Decimal::from_str_exact(s).map_err(|e| format!("{name} {s:?}: {e}"))
        };
        let flag = |s: &str, name: &str| match s {
            "True" | "true" => Ok(true),
            "False" | "false" => Ok(false),
            _ => Err(format!("{name} {s:?} is not a boolean")),
        };
        let time: i64 = f[5]
            .parse()
            .map_err(|_| format!("transact_time {:?} is not an integer", f[5]))?;
        Ok(AggTrade {
            id: id(f[0], "agg_trade_id")?,
            price: dec(f[1], "price")?,
            quantity: dec(f[2], "quantity")?,
            first_trade_id: id(f[3], "first_trade_id")?,
            last_trade_id: id(f[4], "last_trade_id")?,
            time: Timestamp::from_exchange(time),
            buyer_is_maker: flag(f[6], "is_buyer_maker")?,
            best_match: f.get(7).map(|s| flag(s, "is_best_match")).transpose()?,
        })
    }
}

/// The header line of futures aggTrades CSV files.
pub(crate) const AGG_TRADES_HEADER: &str =
    "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker";

/// One aggregate trade as the REST API sends it.
#[derive(Deserialize)]
struct RawAggTrade<'a> {
    a: u64,
    #[serde(borrow)]
    p: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    q: std::borrow::Cow<'a, str>,
    f: u64,
    l: u64,
    #[serde(rename = "T")]
    t: i64,
    m: bool,
    #[serde(rename = "M")]
    best: Option<bool>,
}

/// Parses a REST `aggTrades` body.
pub(crate) fn parse_json(
    body: &[u8],
    what: &dyn std::fmt::Display,
) -> Result<Vec<AggTrade>, MarketError> {
    let raw: Vec<RawAggTrade<'_>> = serde_json::from_slice(body)
        .map_err(|e| MarketError::data(what, format!("aggTrades JSON: {e}")))?;
    raw.into_iter()
        .map(|r| {
            let dec = |s: &str| {
                Decimal::from_str_exact(s)
                    .map_err(|e| MarketError::data(what, format!("trade {}: {s:?}: {e}", r.a)))
            };
            Ok(AggTrade {
                id: r.a,
                price: dec(&r.p)?,
                quantity: dec(&r.q)?,
                first_trade_id: r.f,
                last_trade_id: r.l,
                time: Timestamp::from_exchange(r.t),
                buyer_is_maker: r.m,
                best_match: r.best,
            })
        })
        .collect()
}

/// Ids with no trade among trades that should hold every id of a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdGap {
    /// The first missing id.
    pub first: u64,
    /// The next id that has a trade (or the end of the range).
    pub end: u64,
}

impl IdGap {
    /// Ids missing.
    pub fn missing(&self) -> u64 {
        self.end - self.first
    }
}

/// Aggregate trades of an id range, in id order, and the ids the exchange did not give.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct AggTradeSet {
    /// The trades, in increasing id, no duplicates.
    pub trades: Vec<AggTrade>,
    /// Ids in the range with no trade, asked of the exchange and not given.
    pub gaps: Vec<IdGap>,
}

/// The holes among `trades` (in increasing id) between `from` and `to` (exclusive).
pub(crate) fn id_gaps(trades: &[AggTrade], from: u64, to: u64) -> Vec<IdGap> {
    let mut gaps = Vec::new();
    let mut expect = from;
    for t in trades {
        if t.id > expect {
            gaps.push(IdGap {
                first: expect,
                end: t.id,
            });
        }
        expect = t.id + 1;
    }
    if expect < to {
        gaps.push(IdGap {
            first: expect,
            end: to,
        });
    }
    gaps
}

/// Checks that `trades` are in strictly increasing id inside `[from, to)`.
pub(crate) fn check_ids(
    trades: &[AggTrade],
    from: u64,
    to: u64,
    what: &dyn std::fmt::Display,
) -> Result<(), MarketError> {
    let mut prev: Option<u64> = None;
    for t in trades {
        if t.id < from || t.id >= to {
            return Err(MarketError::data(
                what,
                format!("trade {} is outside the ids asked [{from}, {to})", t.id),
            ));
        }
        if prev.is_some_and(|p| t.id <= p) {
            return Err(MarketError::data(
                what,
                format!("trade {} is out of order", t.id),
            ));
        }
        prev = Some(t.id);
    }
    Ok(())
}
