//! The request weights of Binance's public market-data endpoints, as its API documentation
//! published them (2025), for [`RestDataClient::get_weighted`](super::RestDataClient::get_weighted)
//! when no weight is given. An endpoint not listed here has no weight looked up: give it.

use super::Market;

/// The weight of `GET path?query` on `market`'s API, when the endpoint is listed.
pub(crate) fn weight_of(market: Market, path: &str, query: &[(&str, String)]) -> Option<u32> {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = |default: u32| {
        param("limit")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(default)
    };
    let one_symbol = param("symbol").is_some();
    let symbols = param("symbols").map(|s| s.split(',').count());
    match market {
        Market::Spot => spot(path, limit, one_symbol, symbols),
        Market::UsdM | Market::CoinM => {
            let (prefix, rest) = path.split_at(path.find("/v").unwrap_or(0));
            let expected = if market == Market::UsdM {
                "/fapi"
            } else {
                "/dapi"
            };
            if prefix != expected {
                return None;
            }
            futures(market, rest, limit, one_symbol)
        }
    }
}

fn spot(
    path: &str,
    limit: impl Fn(u32) -> u32,
    one_symbol: bool,
    symbols: Option<usize>,
) -> Option<u32> {
    let per_symbols = |each: u32| {
        let n = u32::try_from(symbols.unwrap_or(1)).unwrap_or(u32::MAX);
        each.saturating_mul(n).min(200)
    };
    Some(match path {
        "/api/v3/ping" | "/api/v3/time" => 1,
        "/api/v3/exchangeInfo" => 20,
        "/api/v3/depth" => match limit(100) {
            0..=100 => 5,
            101..=500 => 25,
            501..=1000 => 50,
            _ => 250,
        },
        "/api/v3/trades" | "/api/v3/historicalTrades" => 25,
        "/api/v3/aggTrades" => 4,
        "/api/v3/klines" | "/api/v3/uiKlines" | "/api/v3/avgPrice" => 2,
        "/api/v3/ticker/24hr" => match (one_symbol, symbols) {
            (true, _) => 2,
            (false, Some(0..=20)) => 2,
            (false, Some(21..=100)) => 40,
            _ => 80,
        },
        "/api/v3/ticker/price" | "/api/v3/ticker/bookTicker" => {
            if one_symbol {
                2
            } else {
                4
            }
        }
        "/api/v3/ticker" | "/api/v3/ticker/tradingDay" => per_symbols(4),
        _ => return None,
    })
}

/// `/v1/...` of USD-M (`/fapi`) and COIN-M (`/dapi`).
fn futures(
    market: Market,
    path: &str,
    limit: impl Fn(u32) -> u32,
    one_symbol: bool,
) -> Option<u32> {
    let klines = |default| market.klines_weight(limit(default));
    Some(match path {
        "/v1/ping" | "/v1/time" | "/v1/exchangeInfo" | "/v1/fundingRate" | "/v1/openInterest" => 1,
        "/v1/depth" => match limit(500) {
            0..=50 => 2,
            51..=100 => 5,
            101..=500 => 10,
            _ => 20,
        },
        "/v1/trades" => 5,
        "/v1/historicalTrades" | "/v1/aggTrades" => 20,
        "/v1/klines"
        | "/v1/continuousKlines"
        | "/v1/indexPriceKlines"
        | "/v1/markPriceKlines"
        | "/v1/premiumIndexKlines" => klines(500),
        "/v1/premiumIndex" => {
            if one_symbol {
                1
            } else {
                10
            }
        }
        "/v1/ticker/24hr" => {
            if one_symbol {
                1
            } else {
                40
            }
        }
        "/v1/ticker/price" => {
            if one_symbol {
                1
            } else {
                2
            }
        }
        "/v1/ticker/bookTicker" => {
            if one_symbol {
                2
            } else {
                5
            }
        }
        _ => return None,
    })
}
