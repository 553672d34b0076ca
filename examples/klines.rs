//! Market klines from a Binance-compatible REST API (feature `market`): every 1-minute candle
//! of a day, paginated, rate-limited and checked for gaps.
//!
//! ```text
//! cargo run --example klines --features market -- http://127.0.0.1:8080 BTCUSDT 2024-01-01 2024-01-02
//! cargo run --example klines --features market -- https://api.binance.com   # the real exchange
//! ```
//!
//! Arguments: the REST base URL (defaults to `http://127.0.0.1:8080`: a local fake exchange or
//! mirror; nothing goes to the internet unless asked), the symbol (`BTCUSDT`), the first day
//! and the end day, exclusive (`2018-02-09` and `2018-02-10`).

use httpfleet::market::{Interval, KlineSource, Market, RestDataClient, Timestamp};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let symbol = args.next().unwrap_or_else(|| "BTCUSDT".into());
    let start: Timestamp = args.next().as_deref().unwrap_or("2018-02-09").parse()?;
    let end: Timestamp = args.next().as_deref().unwrap_or("2018-02-10").parse()?;

    let rest = RestDataClient::builder(Market::Spot)
        .base_url(base)
        .build()?;
    let source = KlineSource::rest_only(rest);
    let set = source.klines(&symbol, Interval::M1, start, end).await?;

    println!(
        "{} candles of {symbol} from {start} to {end}",
        set.klines.len()
    );
    if let (Some(first), Some(last)) = (set.klines.first(), set.klines.last()) {
        println!("first: {} open {}", first.open_time, first.open);
        println!("last:  {} close {}", last.open_time, last.close);
    }
    // Minutes the exchange itself has no candle for are data, never a silent hole.
    for gap in &set.gaps {
        println!(
            "gap: {} to {} ({} missing)",
            gap.start, gap.end, gap.missing
        );
    }
    Ok(())
}
