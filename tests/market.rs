//! Market data (feature `market`): exact klines from the fixtures over REST (a fake exchange on
//! loopback) and Vision (a fake data.binance.vision), pagination for spot, USD-M and COIN-M, the
//! exchange's gaps as data, typed failures, 429/418 handling (the paused clock on the mock
//! backend, and real timing on loopback), the kline source's plan, and the CLI hook.
//!
//! Fixtures: `tests/fixtures/market/` (byte-for-byte copies of `../shared/fixtures/market/`).
#![cfg(feature = "market")]

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use httpfleet::backend::{MockBackend, MockReply};
use httpfleet::market::cli::{KlinesArgs, run_klines};
use httpfleet::market::{
    ChecksumPolicy, ChecksumStatus, Clock, Date, FileOutcome, Gap, GapKind, Interval, Kline,
    KlineSource, Market, MarketError, Part, Period, RestDataClient, ServedBy, SourceMode, TimeUnit,
    Timestamp, VisionDataClient, VisionFile, Window, parse_checksum_file, write_csv,
};
use httpfleet::{Backend, BackendKind, Config, Member};
use support::exchange::{ExchangeOptions, FakeExchange, rows_from_csv, shift_csv};
use support::vision::FakeVision;

const DAY1: &str = "BTCUSDT-1m-2017-09-01.csv";
const DAY2: &str = "BTCUSDT-1m-2017-09-02.csv";
const OUTAGE: &str = "BTCUSDT-1m-2018-02-09.csv";
const CHECKSUM_FIXTURE: &str = "BTCUSDT-1m-2025-04-11.zip.CHECKSUM";

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/market")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn two_days() -> String {
    fixture(DAY1) + &fixture(DAY2)
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn all_rows() -> Vec<support::exchange::Row> {
    let mut rows = rows_from_csv(&fixture(DAY1));
    rows.extend(rows_from_csv(&fixture(DAY2)));
    rows.extend(rows_from_csv(&fixture(OUTAGE)));
    rows
}

fn csv(klines: &[Kline], unit: TimeUnit) -> String {
    let mut out = Vec::new();
    write_csv(&mut out, klines, unit, false).unwrap();
    String::from_utf8(out).unwrap()
}

fn ms_csv(klines: &[Kline]) -> String {
    csv(klines, TimeUnit::Millis)
}

fn parse_csv_text(text: &str) -> Vec<Kline> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| Kline::from_csv_row(l).unwrap())
        .collect()
}

/// `n` one-minute candles from `from_ms`, all with the same prices.
fn synthetic_minutes(from_ms: i64, n: i64) -> Vec<support::exchange::Row> {
    (0..n)
        .map(|i| {
            let open = from_ms + i * 60_000;
            support::exchange::Row {
                open_ms: open,
                json: format!(
                    "[{open},\"1.0\",\"2.0\",\"0.5\",\"1.5\",\"10.0\",{},\"15.0\",5,\"1.0\",\"1.5\",\"0\"]",
                    open + 59_999
                )
                .into(),
            }
        })
        .collect()
}

/// A port nothing listens on.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "httpfleet-market-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rest_client(market: Market, urls: Vec<String>) -> RestDataClient {
    RestDataClient::builder(market)
        .base_urls(urls)
        .backoff(Duration::from_millis(5), Duration::from_millis(40))
        .build()
        .unwrap()
}

fn spot_file(date: &str) -> VisionFile {
    VisionFile::daily(Market::Spot, "BTCUSDT", Interval::M1, date.parse().unwrap()).unwrap()
}

/// A fake Vision with the spot daily files of the three fixture days, and monthly files for
/// 2017-09 (the two days) and 2018-02 (the outage day). The zips are built once per process.
fn vision_server() -> FakeVision {
    static ZIPS: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    let zips = ZIPS.get_or_init(|| {
        let sep = VisionFile::monthly(Market::Spot, "BTCUSDT", Interval::M1, 2017, 9).unwrap();
        let feb = VisionFile::monthly(Market::Spot, "BTCUSDT", Interval::M1, 2018, 2).unwrap();
        [
            (spot_file("2017-09-01"), fixture(DAY1)),
            (spot_file("2017-09-02"), fixture(DAY2)),
            (spot_file("2018-02-09"), fixture(OUTAGE)),
            (sep, two_days()),
            (feb, fixture(OUTAGE)),
        ]
        .into_iter()
        .map(|(file, csv)| {
            let entry = file.file_name().replace(".zip", ".csv");
            (
                file.path(),
                support::vision::zip_one(&entry, csv.as_bytes()),
            )
        })
        .collect()
    });
    let vs = FakeVision::start();
    for (path, zip) in zips {
        vs.add_zip(path, zip.clone());
    }
    vs
}

fn vision_client(vs: &FakeVision) -> httpfleet::market::VisionDataClientBuilder {
    VisionDataClient::builder(Market::Spot).base_urls([vs.url()])
}

fn fetched(o: FileOutcome) -> httpfleet::market::FileKlines {
    match o {
        FileOutcome::Fetched(k) => k,
        other => panic!("expected a fetched file, got {other:?}"),
    }
}

/// The klines requests that got a 200, as (startTime, endTime) sorted.
fn answered_windows(ex: &FakeExchange) -> Vec<(i64, i64)> {
    let mut w: Vec<(i64, i64)> = ex
        .klines_requests()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| (r.param("startTime").unwrap(), r.param("endTime").unwrap()))
        .collect();
    w.sort();
    w
}

/// Consecutive windows touch (next start = previous end + 1 ms, both inclusive) and cover
/// exactly `[first, last]`.
fn assert_contiguous(windows: &[(i64, i64)], first: i64, last: i64) {
    assert_eq!(windows.first().unwrap().0, first, "{windows:?}");
    assert_eq!(windows.last().unwrap().1, last, "{windows:?}");
    for pair in windows.windows(2) {
        assert_eq!(
            pair[1].0,
            pair[0].1 + 1,
            "a hole or an overlap: {windows:?}"
        );
    }
}

mod values {
    use super::*;

    #[test]
    fn every_fixture_value_round_trips_exactly() {
        for name in [DAY1, DAY2, OUTAGE] {
            let text = fixture(name);
            let klines = parse_csv_text(&text);
            // Byte for byte: every decimal keeps its scale, every timestamp its value.
            assert_eq!(ms_csv(&klines), text, "{name}");
        }
        let first = &parse_csv_text(&fixture(DAY1))[0];
        assert_eq!(first.open.to_string(), "4724.89000000");
        assert_eq!(first.volume.to_string(), "0.00000000");
        assert_eq!(first.open_time, ts("2017-09-01T00:00:00Z"));
        assert_eq!(first.close_time.as_micros(), 1_504_224_059_999_000);
        let second = &parse_csv_text(&fixture(DAY1))[1];
        assert_eq!(second.quote_volume.to_string(), "1981.19663639");
        assert_eq!(second.trades, 6);
    }

    #[test]
    fn values_that_do_not_fit_exactly_are_errors_not_roundings() {
        let row = "1504224000000,1.00000000000000000000000000001,1,1,1,1,1504224059999,1,1,1,1,0";
        assert!(Kline::from_csv_row(row).is_err());
        let row = "1504224000000,1e5,1,1,1,1,1504224059999,1,1,1,1,0";
        assert!(Kline::from_csv_row(row).is_err());
    }

    #[test]
    fn milliseconds_and_microseconds_are_told_apart_per_value() {
        assert_eq!(
            Timestamp::from_exchange(1_504_224_000_000),
            ts("2017-09-01")
        );
        assert_eq!(
            Timestamp::from_exchange(1_735_689_600_000_000),
            ts("2025-01-01")
        );
        assert_eq!(
            Timestamp::from_exchange(1_735_689_600_000),
            ts("2025-01-01")
        );
        // A row with both units.
        let row = "1735689600000000,1,1,1,1,1,1735689659999,1,1,1,1,0";
        let k = Kline::from_csv_row(row).unwrap();
        assert_eq!(k.open_time, ts("2025-01-01"));
        assert_eq!(k.close_time, ts("2025-01-01T00:00:59.999Z"));
    }

    #[test]
    fn timestamps_and_dates() {
        assert_eq!(ts("2017-09-01").as_micros(), 1_504_224_000_000_000);
        assert_eq!(
            ts("2017-09-01T00:01:00Z").to_string(),
            "2017-09-01T00:01:00Z"
        );
        assert_eq!(
            ts("2025-01-01T00:00:59.999999Z").to_string(),
            "2025-01-01T00:00:59.999999Z"
        );
        assert_eq!(ts("1504224000000"), ts("2017-09-01"));
        assert_eq!(ts("2024-02-29").add_months(1), ts("2024-03-29"));
        assert_eq!(ts("2024-01-31").add_months(1), ts("2024-02-29"));
        assert_eq!(ts("2023-12-15").add_months(2), ts("2024-02-15"));
        assert_eq!(ts("2000-03-01").date().succ().to_string(), "2000-03-02");
        assert!("2023-02-29".parse::<Date>().is_err());
        assert!("2024-02-29".parse::<Date>().is_ok());
        assert!(Timestamp::parse("yesterday").is_err());
        for days in [-800_000i64, -1, 0, 1, 17_410, 2_932_896] {
            let d = Date::from_days_since_epoch(days);
            assert_eq!(d.days_since_epoch(), days);
        }
    }

    #[test]
    fn intervals_are_case_sensitive_with_vision_spellings() {
        let all = "1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M";
        for s in all.split(' ') {
            let i: Interval = s.parse().unwrap();
            assert_eq!(i.as_str(), s);
        }
        assert_eq!("1m".parse::<Interval>().unwrap(), Interval::M1);
        assert_eq!("1M".parse::<Interval>().unwrap(), Interval::Mo1);
        assert_eq!(Interval::Mo1.vision_str(), "1mo");
        assert_eq!("1mo".parse::<Interval>().unwrap(), Interval::Mo1);
        for bad in ["1H", "1D", "1W", "2m", "1S", "", "1 m"] {
            assert!(bad.parse::<Interval>().is_err(), "{bad}");
        }
        assert!(Market::Spot.check_interval(Interval::S1).is_ok());
        assert!(Market::UsdM.check_interval(Interval::S1).is_err());
        assert!(Market::CoinM.check_interval(Interval::S1).is_err());
        for i in [Interval::D3, Interval::W1, Interval::Mo1] {
            assert!(!i.has_daily_files());
        }
        // Weeks open on Monday; months on the 1st.
        assert_eq!(
            Interval::W1.floor(ts("2024-01-03T12:00:00Z")),
            ts("2024-01-01")
        );
        assert_eq!(Interval::Mo1.floor(ts("2024-02-20")), ts("2024-02-01"));
        assert_eq!(Interval::Mo1.next(ts("2024-01-01")), ts("2024-02-01"));
    }

    #[test]
    fn checksum_files_in_sha256sum_format() {
        let real = fixture(CHECKSUM_FIXTURE);
        assert!(
            !real.ends_with('\n'),
            "the shared copy has no trailing newline"
        );
        let name = "BTCUSDT-1m-2025-04-11.zip";
        let want = "2f79af36e0ab40e450368ff23a8970072bf205f01ee2af460268177068e4bc98";
        assert_eq!(parse_checksum_file(&real, name).unwrap(), want);
        assert_eq!(
            parse_checksum_file(&(real.clone() + "\n"), name).unwrap(),
            want
        );
        assert_eq!(
            parse_checksum_file(&(real.clone() + "\r\n"), name).unwrap(),
            want
        );
        assert!(parse_checksum_file(&real, "BTCUSDT-1m-2025-04-12.zip").is_err());
        assert!(parse_checksum_file(&real.replacen("  ", " ", 1), name).is_err());
        assert!(parse_checksum_file(&real[1..], name).is_err());
        assert!(parse_checksum_file(&real.replacen('2', "g", 1), name).is_err());
        assert!(parse_checksum_file(&(real.clone() + "\n\n"), name).is_err());
    }

    #[test]
    fn vision_url_layout() {
        let d = spot_file("2017-09-01");
        assert_eq!(
            d.path(),
            "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2017-09-01.zip"
        );
        assert_eq!(
            d.checksum_path(),
            "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2017-09-01.zip.CHECKSUM"
        );
        let um = VisionFile::monthly(Market::UsdM, "BTCUSDT", Interval::Mo1, 2024, 3).unwrap();
        assert_eq!(
            um.path(),
            "data/futures/um/monthly/klines/BTCUSDT/1mo/BTCUSDT-1mo-2024-03.zip"
        );
        let cm = VisionFile::monthly(Market::CoinM, "BTCUSD_PERP", Interval::W1, 2024, 3).unwrap();
        assert_eq!(
            cm.path(),
            "data/futures/cm/monthly/klines/BTCUSD_PERP/1w/BTCUSD_PERP-1w-2024-03.zip"
        );
        assert_eq!(cm.span(), Window::new(ts("2024-03-01"), ts("2024-04-01")));
        for i in [Interval::D3, Interval::W1, Interval::Mo1] {
            assert!(
                VisionFile::daily(Market::Spot, "BTCUSDT", i, "2024-03-01".parse().unwrap())
                    .is_err()
            );
        }
        assert!(
            VisionFile::daily(
                Market::UsdM,
                "BTCUSDT",
                Interval::S1,
                "2024-03-01".parse().unwrap()
            )
            .is_err()
        );
        assert!(
            VisionFile::daily(
                Market::Spot,
                "../etc",
                Interval::M1,
                "2024-03-01".parse().unwrap()
            )
            .is_err()
        );
    }

    #[test]
    fn windows_hold_at_most_limit_candles_and_at_most_200_days_on_coin_m() {
        let rest = RestDataClient::builder(Market::Spot).build().unwrap();
        let w = rest.windows(Interval::M1, ts("2017-09-01"), ts("2017-09-03"));
        assert_eq!(w.len(), 3);
        assert_eq!(
            w[0],
            Window::new(ts("2017-09-01"), ts("2017-09-01T16:40:00Z"))
        );
        assert_eq!(w[2].end, ts("2017-09-03"));
        let cm = RestDataClient::builder(Market::CoinM).build().unwrap();
        for (interval, start, end) in [
            (Interval::D1, "2019-01-01", "2023-01-01"),
            (Interval::H12, "2019-01-01", "2023-01-01"),
            (Interval::Mo1, "2019-01-17", "2024-01-01"),
            (Interval::W1, "2019-01-17", "2024-01-01"),
        ] {
            let ws = cm.windows(interval, ts(start), ts(end));
            assert_eq!(ws[0].start, ts(start));
            assert_eq!(ws.last().unwrap().end, ts(end));
            for pair in ws.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
            for w in &ws {
                let days = w.end.since(w.start).as_secs_f64() / 86_400.0;
                assert!(days <= 200.0, "{interval}: {w} spans {days} days");
            }
        }
        let months = cm.windows(Interval::Mo1, ts("2019-01-01"), ts("2020-01-01"));
        assert!(months.iter().all(|w| w.start.date().day() == 1));
    }
}

mod rest {
    use super::*;

    /// Spot: two fixture days over REST are exactly the fixture rows, on every backend, in three
    /// contiguous windows of at most 1000 candles.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spot_two_days_are_the_fixture_rows_on_every_backend() {
        let ex = FakeExchange::start(all_rows(), ExchangeOptions::default());
        let want = two_days();
        for kind in BackendKind::enabled().filter(|k| *k != BackendKind::Mock) {
            ex.clear_log();
            let rest = RestDataClient::builder(Market::Spot)
                .base_urls(ex.urls())
                .backend(kind)
                .build()
                .unwrap();
            let k = rest
                .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
                .await
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(k.len(), 2880, "{kind}");
            assert_eq!(ms_csv(&k), want, "{kind}: value for value");
            let windows = answered_windows(&ex);
            assert_eq!(windows.len(), 3, "{kind}");
            assert_contiguous(&windows, 1_504_224_000_000, 1_504_396_799_999);
            for r in ex.klines_requests() {
                assert_eq!(r.query["limit"], "1000");
                assert_eq!(r.query["interval"], "1m");
            }
            // Weight was counted from the header (2 per spot klines request).
            assert!(rest.weight().0 >= 6, "{kind}: {:?}", rest.weight());
        }
    }

    /// An exchange that pages smaller than asked (500 rows for `limit=1000`): a short page is
    /// not the end of a window, paging goes on from the last row, and no row is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_page_is_not_the_end_of_a_window() {
        for market in [Market::Spot, Market::CoinM] {
            let ex = FakeExchange::start(
                all_rows(),
                ExchangeOptions {
                    page_size: Some(500),
                    ..ExchangeOptions::default()
                },
            );
            let rest = rest_client(market, ex.urls());
            let symbol = if market == Market::CoinM {
                "BTCUSD_PERP"
            } else {
                "BTCUSDT"
            };
            let k = rest
                .klines(symbol, Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
                .await
                .unwrap_or_else(|e| panic!("{market:?}: {e}"));
            assert_eq!(k.len(), 2880, "{market:?}");
            assert_eq!(ms_csv(&k), two_days(), "{market:?}");
        }
        // The issue's reproduction: through the source, every row and no gap reported.
        let ex = FakeExchange::start(
            all_rows(),
            ExchangeOptions {
                page_size: Some(500),
                ..ExchangeOptions::default()
            },
        );
        let set = KlineSource::rest_only(rest_client(Market::Spot, ex.urls()))
            .clock(Clock::Fixed(ts("2017-10-01")))
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&set.klines), two_days());
        assert!(set.gaps.is_empty(), "{:?}", set.gaps);
        assert_eq!(set.missing(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn usd_m_two_days_in_windows_of_1500() {
        let ex = FakeExchange::start(all_rows(), ExchangeOptions::default());
        let rest = rest_client(Market::UsdM, ex.urls());
        assert_eq!(rest.limit(), 1500);
        let k = rest
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&k), two_days());
        let windows = answered_windows(&ex);
        assert_eq!(windows.len(), 2);
        assert_contiguous(&windows, 1_504_224_000_000, 1_504_396_799_999);
        // limit 1500 weighs 10 on futures; the exchange's header says 20 after both.
        let used: Vec<u32> = ex.klines_requests().iter().map(|r| r.used).collect();
        assert_eq!(used.iter().max(), Some(&20));
        assert_eq!(rest.weight(), (20, 2400));
    }

    /// COIN-M answers the most recent `limit` candles before `endTime`: a window that held more
    /// would lose its beginning. The paginator's windows never hold more, so both days come back
    /// whole, with any limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn coin_m_backward_windows_give_both_days_whole() {
        let ex = FakeExchange::start(all_rows(), ExchangeOptions::default());
        // The exchange's backward semantics, asked directly: one request over both days.
        let raw = httpfleet::Client::from_config(&Config::default()).unwrap();
        let resp = raw
            .get(format!("{}/dapi/v1/klines", ex.url(0)))
            .query(&[
                ("symbol", "BTCUSD_PERP"),
                ("interval", "1m"),
                ("startTime", "1504224000000"),
                ("endTime", "1504396799999"),
                ("limit", "1500"),
            ])
            .send()
            .await
            .unwrap();
        let rows: Vec<serde_json::Value> = resp.json().await.unwrap();
        assert_eq!(rows.len(), 1500);
        assert_eq!(
            rows[0][0],
            1_504_224_000_000i64 + 1380 * 60_000,
            "the most recent 1500"
        );

        for limit in [1500, 1000, 7] {
            ex.clear_log();
            let rest = RestDataClient::builder(Market::CoinM)
                .base_urls(ex.urls())
                .limit(limit)
                .concurrency(8)
                .build()
                .unwrap();
            let k = rest
                .klines(
                    "BTCUSD_PERP",
                    Interval::M1,
                    ts("2017-09-01"),
                    ts("2017-09-03"),
                )
                .await
                .unwrap();
            assert_eq!(ms_csv(&k), two_days(), "limit {limit}");
            let windows = answered_windows(&ex);
            assert_eq!(
                windows.len(),
                2880usize.div_ceil(limit as usize),
                "limit {limit}"
            );
            assert_contiguous(&windows, 1_504_224_000_000, 1_504_396_799_999);
        }
    }

    /// COIN-M refuses spans over 200 days (-1127); the paginator never sends one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn coin_m_never_asks_for_more_than_200_days() {
        let ex = FakeExchange::start(all_rows(), ExchangeOptions::default());
        let rest = rest_client(Market::CoinM, ex.urls());
        for interval in [Interval::D1, Interval::W1, Interval::Mo1] {
            ex.clear_log();
            let k = rest
                .klines("BTCUSD_PERP", interval, ts("2017-01-01"), ts("2019-06-01"))
                .await
                .unwrap_or_else(|e| panic!("{interval}: {e}"));
            assert!(k.is_empty());
            let windows = answered_windows(&ex);
            assert!(windows.len() >= 5, "{interval}: {windows:?}");
            assert_contiguous(&windows, 1_483_228_800_000, 1_559_347_199_999);
            assert_eq!(ex.count_status(400), 0);
        }
    }

    /// Windows run at most `concurrency` at a time, and the rows still come back in open-time
    /// order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrency_is_bounded_and_rows_stay_in_order() {
        let ex = FakeExchange::start(
            all_rows(),
            ExchangeOptions {
                latency: Duration::from_millis(15),
                ..ExchangeOptions::default()
            },
        );
        let rest = RestDataClient::builder(Market::Spot)
            .base_urls(ex.urls())
            .limit(100)
            .concurrency(3)
            .build()
            .unwrap();
        let k = rest
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&k), two_days());
        assert_eq!(ex.klines_requests().len(), 29);
        let peak = ex.max_in_flight();
        assert!((2..=3).contains(&peak), "{peak} windows at once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn server_time() {
        let ex = FakeExchange::start(Vec::new(), ExchangeOptions::default());
        for market in Market::ALL {
            let rest = rest_client(market, ex.urls());
            let t = rest.server_time().await.unwrap();
            assert!(Timestamp::now().since(t) < Duration::from_secs(5));
        }
        let paths: Vec<String> = ex.requests().iter().map(|r| r.path.clone()).collect();
        assert_eq!(paths, ["/api/v3/time", "/fapi/v1/time", "/dapi/v1/time"]);
    }

    /// A refused connection and a host answering 503 fail over to the next host; the rows are
    /// complete.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transport_errors_and_5xx_fail_over_to_the_next_host() {
        let ex = FakeExchange::start(
            all_rows(),
            ExchangeOptions {
                hosts: 2,
                ..ExchangeOptions::default()
            },
        );
        ex.fail_host(0, Some(503));
        let rest = rest_client(Market::Spot, vec![dead_url(), ex.url(0), ex.url(1)]);
        let k = rest
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&k), two_days());
        let reqs = ex.klines_requests();
        assert!(reqs.iter().any(|r| r.host == 0 && r.status == 503));
        assert_eq!(
            reqs.iter()
                .filter(|r| r.host == 1 && r.status == 200)
                .count(),
            3
        );
        let stats = rest.stats();
        assert_eq!(stats.len(), 3);
    }

    /// An exchange error is typed, carries code and message, and is neither retried nor failed
    /// over: the exchange sees exactly one request.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exchange_errors_are_typed_and_never_retried() {
        let ex = FakeExchange::start(
            all_rows(),
            ExchangeOptions {
                hosts: 3,
                ..ExchangeOptions::default()
            },
        );
        let rest = rest_client(Market::Spot, ex.urls());
        let err = rest
            .klines(
                "NOPEUSDT",
                Interval::M1,
                ts("2017-09-01"),
                ts("2017-09-01T10:00:00Z"),
            )
            .await
            .unwrap_err();
        match &err {
            MarketError::Exchange {
                code,
                msg,
                status,
                window,
            } => {
                assert_eq!(
                    (*code, msg.as_str(), *status),
                    (-1121, "Invalid symbol.", 400)
                );
                assert!(window.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.exchange_code(), Some(-1121));
        assert_eq!(
            ex.requests().len(),
            1,
            "a 4xx is not retried nor failed over"
        );

        // Input the exchange would refuse is refused before anything is sent.
        let before = ex.requests().len();
        let um = rest_client(Market::UsdM, ex.urls());
        let err = um
            .klines("BTCUSDT", Interval::S1, ts("2017-09-01"), ts("2017-09-02"))
            .await
            .unwrap_err();
        assert!(matches!(err, MarketError::InvalidInput { .. }), "{err}");
        let err = rest
            .klines("btc/usdt", Interval::M1, ts("2017-09-01"), ts("2017-09-02"))
            .await
            .unwrap_err();
        assert!(matches!(err, MarketError::InvalidInput { .. }), "{err}");
        assert!(
            RestDataClient::builder(Market::Spot)
                .limit(1001)
                .build()
                .is_err()
        );
        assert_eq!(ex.requests().len(), before);

        // The fake exchange's other error answers, asked directly.
        let raw = httpfleet::Client::from_config(&Config::default()).unwrap();
        for (path, query, code) in [
            ("/fapi/v1/klines", "symbol=BTCUSDT&interval=1s", -1120),
            ("/api/v3/klines", "symbol=BTCUSDT&interval=1H", -1120),
            ("/api/v3/klines", "interval=1m", -1102),
            (
                "/api/v3/klines",
                "symbol=BTCUSDT&interval=1m&limit=1001",
                -1130,
            ),
            (
                "/dapi/v1/klines",
                "symbol=BTCUSD_PERP&interval=1d&startTime=0&endTime=17280000001",
                -1127,
            ),
        ] {
            let resp = raw
                .get(format!("{}{path}?{query}", ex.url(0)))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 400);
            let v: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(v["code"], code, "{path}?{query}");
        }
    }

    /// A window that keeps failing fails the whole call with an error naming it: never an empty
    /// window. A window that fails twice and then answers gives complete rows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_window_fails_the_call_and_names_the_window() {
        let ex = FakeExchange::start(
            all_rows(),
            ExchangeOptions {
                hosts: 2,
                ..ExchangeOptions::default()
            },
        );
        let rest = rest_client(Market::Spot, ex.urls());
        let windows = rest.windows(Interval::M1, ts("2017-09-01"), ts("2017-09-03"));
        let second = windows[1];
        let inside = second.start.as_millis_floor() + 60_000;
        ex.fail_covering(inside, 500, usize::MAX);
        let err = rest
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
            .await
            .unwrap_err();
        assert_eq!(err.window(), Some(second), "{err}");
        assert!(err.to_string().contains(&second.to_string()), "{err}");
        // Three rounds over both hosts.
        let failed = ex
            .klines_requests()
            .iter()
            .filter(|r| r.status == 500)
            .count();
        assert_eq!(failed, 6);

        // Two failures, then an answer: complete.
        let ex = FakeExchange::start(
            all_rows(),
            ExchangeOptions {
                hosts: 2,
                ..ExchangeOptions::default()
            },
        );
        ex.fail_covering(inside, 503, 2);
        let rest = rest_client(Market::Spot, ex.urls());
        let k = rest
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&k), two_days());
        assert_eq!(ex.count_status(503), 2);
    }

    /// A range with an empty stretch in the middle at an exchange that pages smaller than asked:
    /// the windows inside the stretch answer an empty page, and every row after it still comes,
    /// with the stretch one confirmed gap.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_empty_page_in_the_middle_is_not_the_end_of_the_range() {
        let noon = ts("2017-09-01T12:00:00Z").as_millis_floor();
        let rows: Vec<_> = all_rows()
            .into_iter()
            .filter(|r| !(noon..noon + 12 * 3_600_000).contains(&r.open_ms))
            .collect();
        let ex = FakeExchange::start(
            rows,
            ExchangeOptions {
                page_size: Some(500),
                ..ExchangeOptions::default()
            },
        );
        let set = KlineSource::rest_only(rest_client(Market::Spot, ex.urls()))
            .clock(Clock::Fixed(ts("2017-10-01")))
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
            .await
            .unwrap();
        assert_eq!(set.klines.len(), 2880 - 720);
        assert_eq!(
            set.klines.last().unwrap().open_time,
            ts("2017-09-02T23:59:00Z")
        );
        assert_eq!(
            set.gaps,
            [Gap {
                start: ts("2017-09-01T12:00:00Z"),
                end: ts("2017-09-02"),
                missing: 720,
                kind: GapKind::Exchange,
            }]
        );
    }

    /// Which candles have closed is judged on the exchange's clock: an exchange an hour behind
    /// the local clock still has the last hour's candles open, and they are not returned.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_candles_are_judged_on_the_exchange_clock() {
        let now_ms = Timestamp::now().as_millis_floor() / 60_000 * 60_000;
        let rows = synthetic_minutes(now_ms - 3 * 3_600_000, 180);
        let ex = FakeExchange::start(
            rows,
            ExchangeOptions {
                clock_offset_ms: -3_600_000,
                ..ExchangeOptions::default()
            },
        );
        let rest = || rest_client(Market::Spot, ex.urls());
        let (start, end) = (
            Timestamp::from_millis(now_ms - 3 * 3_600_000),
            Timestamp::from_millis(now_ms),
        );
        let set = KlineSource::rest_only(rest())
            .klines("BTCUSDT", Interval::M1, start, end)
            .await
            .unwrap();
        // Closed by the exchange's clock: the first two hours, less the minute still open.
        let n = set.klines.len();
        assert!((119..=120).contains(&n), "{n} candles");
        let last = set.klines.last().unwrap().open_time;
        assert!(last < Timestamp::from_millis(now_ms - 3_600_000), "{last}");
        assert!(set.gaps.is_empty(), "{:?}", set.gaps);
        // The local clock would have called them final.
        let local = KlineSource::rest_only(rest())
            .clock(Clock::System)
            .klines("BTCUSDT", Interval::M1, start, end)
            .await
            .unwrap();
        assert!(local.klines.len() >= 179);
    }

    /// The outage day over REST: 840 rows, and the 600 missing minutes as a gap, not an error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_outage_day_is_a_gap_not_an_error() {
        let ex = FakeExchange::start(all_rows(), ExchangeOptions::default());
        let source = KlineSource::rest_only(rest_client(Market::Spot, ex.urls()))
            .clock(Clock::Fixed(ts("2018-03-01")));
        let set = source
            .klines("BTCUSDT", Interval::M1, ts("2018-02-09"), ts("2018-02-10"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&set.klines), fixture(OUTAGE));
        assert_eq!(
            set.gaps,
            [Gap {
                start: ts("2018-02-09T00:00:00Z"),
                end: ts("2018-02-09T10:00:00Z"),
                missing: 600,
                kind: GapKind::Exchange,
            }]
        );
        assert_eq!(set.missing(), 600);
        assert_eq!(set.report.rest_rows(), 840);
    }
}

/// 429, 418 and the weight governor with real timing on loopback: the exchange counts weight
/// per 2-second window so the test stays short.
mod limits_loopback {
    use super::*;

    fn small_budget(hosts: usize, tolerated: usize) -> ExchangeOptions {
        ExchangeOptions {
            hosts,
            spot_weight_limit: 20,
            weight_window: Duration::from_secs(2),
            tolerated_in_pause: tolerated,
            ban: Duration::from_secs(60),
            ..ExchangeOptions::default()
        }
    }

    /// The client thinks it may spend 6000; the exchange allows 20 per window. The 429 pauses
    /// every request to every host for its `Retry-After`: with one window in flight at a time the
    /// exchange sees no request at all before the pause ends (it would ban at the first), and
    /// never answers 418.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_is_sent_between_a_429_and_its_retry_after() {
        let ex = FakeExchange::start(all_rows(), small_budget(2, 0));
        let rest = RestDataClient::builder(Market::Spot)
            .base_urls(ex.urls())
            .limit(100)
            .concurrency(1)
            .build()
            .unwrap();
        let k = rest
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-02"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&k), fixture(DAY1));
        assert!(ex.count_status(429) >= 1, "the budget was spent");
        assert_eq!(ex.violations(), 0, "a request arrived during a 429 pause");
        assert_eq!(ex.count_status(418), 0);
        // 429s are never failed over: every 429 came from the first host.
        assert!(
            ex.requests()
                .iter()
                .filter(|r| r.status == 429)
                .all(|r| r.host == 0)
        );
    }

    /// Four windows in flight: only requests already in flight when the 429 was sent (at most
    /// three) may reach the exchange during the pause; nothing new is sent, and no 418.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_429_stops_every_window_at_once() {
        let ex = FakeExchange::start(all_rows(), small_budget(2, 3));
        let rest = RestDataClient::builder(Market::Spot)
            .base_urls(ex.urls())
            .limit(100)
            .concurrency(4)
            .build()
            .unwrap();
        let k = rest
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-02"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&k), fixture(DAY1));
        assert!(ex.count_status(429) >= 1);
        assert!(
            ex.violations() <= 3,
            "{} requests during the pause",
            ex.violations()
        );
        assert_eq!(ex.count_status(418), 0);
    }

    /// With the exchange's budget configured, the governor waits for the next window instead of
    /// finding the limit with a 429: 30 weight through a budget of 20 per window, no 429.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_governor_stays_under_the_limit_without_a_429() {
        let ex = FakeExchange::start(all_rows(), small_budget(1, 0));
        let rest = RestDataClient::builder(Market::Spot)
            .base_urls(ex.urls())
            .limit(100)
            .concurrency(4)
            .weight_limit(20)
            .weight_window(Duration::from_secs(2))
            .build()
            .unwrap();
        let k = rest
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-02"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&k), fixture(DAY1));
        assert_eq!(ex.klines_requests().len(), 15);
        assert_eq!(ex.count_status(429), 0);
        assert!(ex.klines_requests().iter().all(|r| r.used <= 20));
    }
}

/// The same rules on the mock backend under tokio's paused clock: exact timing, no real waits.
mod limits_paused {
    use super::*;

    fn mock_rest(mocks: &[&MockBackend], concurrency: usize) -> RestDataClient {
        let mut b = RestDataClient::builder(Market::Spot)
            .config(Config::default().backend(BackendKind::Mock))
            .limit(10)
            .concurrency(concurrency);
        for (i, m) in mocks.iter().enumerate() {
            b = b.member(
                Member::with_backend(Backend::from((*m).clone()))
                    .base_url(format!("http://h{i}.test")),
            );
        }
        b.build().unwrap()
    }

    fn empty_ok(used: u32) -> MockReply {
        MockReply::ok("[]").header("x-mbx-used-weight-1m", &used.to_string())
    }

    /// A 429 with `Retry-After: 30` holds every window and every host for 30 s: at 10 s and at
    /// 29 s nothing more has been sent; afterwards every window completes, none on the second
    /// host.
    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_every_window_on_every_host() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.push(
            MockReply::status(429)
                .header("retry-after", "30")
                .body(r#"{"code":-1003,"msg":"Too many requests."}"#)
                .delay(Duration::from_millis(100)),
        );
        a.fallback(empty_ok(10).delay(Duration::from_millis(100)));
        b.fallback(empty_ok(10));
        let rest = mock_rest(&[&a, &b], 4);
        let start = tokio::time::Instant::now();
        let task = tokio::spawn({
            let rest = rest.clone();
            async move {
                rest.klines(
                    "BTCUSDT",
                    Interval::M1,
                    ts("2017-09-01"),
                    ts("2017-09-01T01:40:00Z"),
                )
                .await
            }
        });
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            a.request_count(),
            4,
            "only the four first windows, sent before the 429"
        );
        tokio::time::sleep(Duration::from_secs(19)).await;
        assert_eq!(a.request_count(), 4);
        let rows = task.await.unwrap().unwrap();
        assert!(rows.is_empty());
        assert!(start.elapsed() >= Duration::from_secs(30));
        assert_eq!(
            a.request_count(),
            10 + 1,
            "ten windows and the one that got the 429"
        );
        assert_eq!(b.request_count(), 0, "a 429 is never failed over");
    }

    /// A page with a row outside the window asked, or rows out of order (an overlap with the
    /// page before included), is a typed `Data` error naming the window: never rows dropped.
    #[tokio::test(start_paused = true)]
    async fn a_page_outside_the_window_or_out_of_order_is_a_data_error() {
        let row = |t: &str| {
            let open = ts(t).as_millis_floor();
            format!(
                "[{open},\"1.0\",\"2.0\",\"0.5\",\"1.5\",\"10.0\",{},\"15.0\",5,\"1.0\",\"1.5\",\"0\"]",
                open + 59_999
            )
        };
        for rows in [
            vec![row("2017-09-01T00:00:00Z"), row("2017-09-01T00:30:00Z")],
            vec![row("2017-09-01T00:02:00Z"), row("2017-09-01T00:01:00Z")],
            vec![row("2017-09-01T00:01:00Z"), row("2017-09-01T00:01:00Z")],
        ] {
            let a = MockBackend::new();
            a.fallback(MockReply::ok(format!("[{}]", rows.join(","))));
            let err = mock_rest(&[&a], 1)
                .klines(
                    "BTCUSDT",
                    Interval::M1,
                    ts("2017-09-01"),
                    ts("2017-09-01T00:10:00Z"),
                )
                .await
                .unwrap_err();
            assert!(matches!(err, MarketError::Data { .. }), "{err}");
            assert!(err.to_string().contains("window"), "{err}");
        }
    }

    /// A failover is an attempt like any other: the governor admits it and counts its weight,
    /// and when the window has no room left for it, it waits for the next window.
    #[tokio::test(start_paused = true)]
    async fn every_failover_attempt_is_admitted_by_the_governor() {
        for (limit, waits) in [(6000, false), (3, true)] {
            let (a, b) = (MockBackend::new(), MockBackend::new());
            a.push(MockReply::status(503).body("{}"));
            b.fallback(empty_ok(0));
            let rest = RestDataClient::builder(Market::Spot)
                .config(Config::default().backend(BackendKind::Mock))
                .limit(10)
                .weight_limit(limit)
                .member(Member::with_backend(Backend::from(a.clone())).base_url("http://h0.test"))
                .member(Member::with_backend(Backend::from(b.clone())).base_url("http://h1.test"))
                .build()
                .unwrap();
            let start = tokio::time::Instant::now();
            let rows = rest
                .klines(
                    "BTCUSDT",
                    Interval::M1,
                    ts("2017-09-01"),
                    ts("2017-09-01T00:10:00Z"),
                )
                .await
                .unwrap();
            assert!(rows.is_empty());
            assert_eq!((a.request_count(), b.request_count()), (1, 1));
            if waits {
                // 2 of 3 spent by the first attempt: the failover waited for the next window.
                assert!(
                    start.elapsed() >= Duration::from_millis(100),
                    "{:?}",
                    start.elapsed()
                );
            } else {
                assert_eq!(rest.weight().0, 2 + 2, "both attempts counted");
                assert_eq!(start.elapsed(), Duration::ZERO);
            }
        }
    }

    /// Any endpoint goes through the governor with its weight, given or looked up: a 429 on
    /// `depth` pauses the klines too, a ban fails it, and an endpoint without a known weight
    /// is refused before anything is sent.
    #[tokio::test(start_paused = true)]
    async fn weighted_requests_share_the_governor_with_klines() {
        let a = MockBackend::new();
        a.push(
            MockReply::status(429)
                .header("retry-after", "20")
                .body(r#"{"code":-1003,"msg":"Too many requests."}"#),
        );
        a.fallback(empty_ok(0));
        let rest = mock_rest(&[&a], 1);
        let depth = [
            ("symbol", "BTCUSDT".to_owned()),
            ("limit", "500".to_owned()),
        ];
        let start = tokio::time::Instant::now();
        let (book, rows) = tokio::join!(rest.get_weighted("/api/v3/depth", &depth, None), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            rest.klines(
                "BTCUSDT",
                Interval::M1,
                ts("2017-09-01"),
                ts("2017-09-01T00:05:00Z"),
            )
            .await
        });
        assert_eq!(book.unwrap(), "[]");
        assert!(rows.unwrap().is_empty());
        assert!(
            start.elapsed() >= Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
        // Paused time stands still between these: each request's weight in one minute.
        let used = rest.weight().0;
        rest.get_weighted("/api/v3/depth", &depth, None)
            .await
            .unwrap();
        assert_eq!(rest.weight().0, used + 25, "depth at limit 500 weighs 25");
        let sent = a.request_count();
        let err = rest
            .get_weighted("/api/v3/myTrades", &[], None)
            .await
            .unwrap_err();
        assert!(matches!(err, MarketError::InvalidInput { .. }), "{err}");
        rest.get_weighted("/api/v3/myTrades", &[], Some(20))
            .await
            .unwrap();
        assert_eq!(a.request_count(), sent + 1);
        assert_eq!(rest.weight().0, used + 25 + 20);
        a.push(
            MockReply::status(418)
                .header("retry-after", "60")
                .body("{}"),
        );
        let err = rest
            .get_weighted("/api/v3/exchangeInfo", &[], None)
            .await
            .unwrap_err();
        assert!(matches!(err, MarketError::Banned { .. }), "{err}");
        let err = rest
            .klines(
                "BTCUSDT",
                Interval::M1,
                ts("2017-09-01"),
                ts("2017-09-01T00:05:00Z"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, MarketError::Banned { .. }), "{err}");
    }

    /// A 418 is a ban: a typed error with its end, and nothing is sent to any host, by any call,
    /// until it ends.
    #[tokio::test(start_paused = true)]
    async fn a_418_bans_every_call_until_it_ends() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.push(
            MockReply::status(418)
                .header("retry-after", "120")
                .body(r#"{"code":-1003,"msg":"Way too many requests; IP banned."}"#),
        );
        a.fallback(empty_ok(2));
        let rest = mock_rest(&[&a, &b], 4);
        let range = (ts("2017-09-01"), ts("2017-09-01T01:00:00Z"));
        let err = rest
            .klines("BTCUSDT", Interval::M1, range.0, range.1)
            .await
            .unwrap_err();
        let MarketError::Banned { retry_after, until } = err else {
            panic!("{err:?}");
        };
        assert_eq!(retry_after, Duration::from_secs(120));
        assert!(until > Timestamp::now());
        let sent = a.request_count() + b.request_count();
        tokio::time::sleep(Duration::from_secs(119)).await;
        for _ in 0..3 {
            let err = rest
                .klines("BTCUSDT", Interval::M1, range.0, range.1)
                .await
                .unwrap_err();
            assert!(matches!(err, MarketError::Banned { .. }), "{err:?}");
            let err = rest.server_time().await.unwrap_err();
            assert!(matches!(err, MarketError::Banned { .. }), "{err:?}");
        }
        assert_eq!(
            a.request_count() + b.request_count(),
            sent,
            "nothing sent while banned"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        rest.klines("BTCUSDT", Interval::M1, range.0, range.1)
            .await
            .unwrap();
        assert!(a.request_count() > sent);
    }

    /// The governor reads `X-MBX-USED-WEIGHT-1M`: with 5999 of 6000 used (by another process on
    /// the same IP), the next request waits for the next minute; with 10 used it does not wait.
    #[tokio::test(start_paused = true)]
    async fn the_used_weight_header_feeds_the_governor() {
        let a = MockBackend::new();
        a.fallback(empty_ok(10));
        let rest = mock_rest(&[&a], 1);
        let start = tokio::time::Instant::now();
        rest.klines(
            "BTCUSDT",
            Interval::M1,
            ts("2017-09-01"),
            ts("2017-09-01T00:20:00Z"),
        )
        .await
        .unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);

        let a = MockBackend::new();
        a.fallback(empty_ok(5999));
        let rest = mock_rest(&[&a], 1);
        let start = tokio::time::Instant::now();
        rest.klines(
            "BTCUSDT",
            Interval::M1,
            ts("2017-09-01"),
            ts("2017-09-01T00:20:00Z"),
        )
        .await
        .unwrap();
        let waited = start.elapsed();
        assert!(
            waited > Duration::ZERO && waited <= Duration::from_millis(60_100),
            "{waited:?}"
        );
        assert_eq!(a.request_count(), 2);
    }

    /// 5xx on every host, every round: a typed error naming the window, after the configured
    /// rounds with backoff, never an empty window.
    #[tokio::test(start_paused = true)]
    async fn a_window_failing_on_every_host_is_an_error() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::status(502));
        b.fallback(MockReply::status(503));
        let rest = mock_rest(&[&a, &b], 1);
        let err = rest
            .klines(
                "BTCUSDT",
                Interval::M1,
                ts("2017-09-01"),
                ts("2017-09-01T00:05:00Z"),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.window(),
            Some(Window::new(ts("2017-09-01"), ts("2017-09-01T00:05:00Z")))
        );
        assert!(
            matches!(err, MarketError::Status { status: 503, .. }),
            "{err:?}"
        );
        assert_eq!(
            a.request_count() + b.request_count(),
            6,
            "three rounds over both hosts"
        );
    }
}

mod vision {
    use super::*;

    /// The two fixture days from Vision: verified, exactly the fixture rows, and the same rows as
    /// REST.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_days_from_vision_are_the_fixture_rows_and_the_rest_rows() {
        let vs = vision_server();
        let ex = FakeExchange::start(all_rows(), ExchangeOptions::default());
        let vision = vision_client(&vs).build().unwrap();
        let outcomes = vision
            .files(&[spot_file("2017-09-01"), spot_file("2017-09-02")])
            .await
            .unwrap();
        let mut from_vision = Vec::new();
        for o in outcomes {
            let k = fetched(o);
            assert_eq!(k.checksum, ChecksumStatus::Verified);
            assert!(!k.from_cache);
            from_vision.extend(k.klines);
        }
        assert_eq!(ms_csv(&from_vision), two_days());
        let from_rest = rest_client(Market::Spot, ex.urls())
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
            .await
            .unwrap();
        assert_eq!(from_vision, from_rest, "value for value");
    }

    /// Futures CSVs have a header from about 2022: detected per file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn futures_files_with_and_without_header() {
        let vs = FakeVision::start();
        let with = VisionFile::daily(
            Market::UsdM,
            "BTCUSDT",
            Interval::M1,
            "2017-09-01".parse().unwrap(),
        )
        .unwrap();
        let without = VisionFile::daily(
            Market::UsdM,
            "BTCUSDT",
            Interval::M1,
            "2017-09-02".parse().unwrap(),
        )
        .unwrap();
        let header = httpfleet::market::CSV_HEADER.to_owned() + "\n";
        vs.add_csv(&with.path(), (header + &fixture(DAY1)).as_bytes());
        vs.add_csv(&without.path(), fixture(DAY2).as_bytes());
        let vision = VisionDataClient::builder(Market::UsdM)
            .base_urls([vs.url()])
            .build()
            .unwrap();
        let a = vision.klines(&with).await.unwrap();
        let b = vision.klines(&without).await.unwrap();
        assert_eq!(ms_csv(&a.klines), fixture(DAY1));
        assert_eq!(ms_csv(&b.klines), fixture(DAY2));
    }

    /// Spot files switch to microseconds on 2025-01-01: normalised per value, and written back in
    /// microseconds byte for byte.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn microsecond_spot_files_are_normalised() {
        // 2017-09-01 moved to 2025-01-01 (2679 days later), then written in microseconds.
        let ms = shift_csv(&fixture(DAY1), 2679);
        let mut us = String::new();
        for line in ms.lines() {
            let mut f: Vec<String> = line.split(',').map(str::to_owned).collect();
            f[0] = format!("{}000", f[0]);
            f[6] = format!("{}999", f[6]);
            us.push_str(&f.join(","));
            us.push('\n');
        }
        let vs = FakeVision::start();
        let file = spot_file("2025-01-01");
        vs.add_csv(&file.path(), us.as_bytes());
        let vision = vision_client(&vs).build().unwrap();
        let k = vision.klines(&file).await.unwrap().klines;
        assert_eq!(k.len(), 1440);
        assert_eq!(k[0].open_time, ts("2025-01-01"));
        assert_eq!(k[0].close_time, ts("2025-01-01T00:00:59.999999Z"));
        assert_eq!(csv(&k, TimeUnit::Micros), us);
        // The same candles as the millisecond rows, but for the close time's precision.
        let from_ms = parse_csv_text(&ms);
        for (a, b) in k.iter().zip(&from_ms) {
            assert_eq!(
                (a.open_time, &a.open, &a.close, &a.volume),
                (b.open_time, &b.open, &b.close, &b.volume)
            );
            assert_eq!(
                a.close_time.as_millis_floor(),
                b.close_time.as_millis_floor()
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_corrupted_zip_is_a_checksum_error_never_rows() {
        let vs = vision_server();
        let file = spot_file("2017-09-01");
        let original =
            support::vision::checksum_text(&vs.zip_bytes(&file.path()), &file.file_name());
        vs.corrupt(&file.path());
        let vision = vision_client(&vs).build().unwrap();
        match vision.file(&file).await {
            Err(MarketError::ChecksumMismatch {
                file: f,
                expected,
                actual,
            }) => {
                assert_eq!(f, file.path());
                assert_eq!(expected, original[..64]);
                assert_ne!(actual, expected);
            }
            other => panic!("{other:?}"),
        }
        // Opting out of the checksum still never yields rows from a broken zip.
        let lax = vision_client(&vs)
            .checksum(ChecksumPolicy::ReportOnly)
            .build()
            .unwrap();
        match lax.file(&file).await {
            Err(MarketError::Zip { .. } | MarketError::Data { .. }) => {}
            other => panic!("{other:?}"),
        }
        // A CHECKSUM that matches nothing, on an intact file, is reported under the opt-out.
        vs.add_csv(&file.path(), fixture(DAY1).as_bytes());
        vs.set_checksum(
            &file.path(),
            &format!("{}  {}\n", "0".repeat(64), file.file_name()),
        );
        let k = fetched(lax.file(&file).await.unwrap());
        assert!(matches!(k.checksum, ChecksumStatus::Mismatch { .. }));
        assert_eq!(ms_csv(&k.klines), fixture(DAY1));
        // A CHECKSUM file that is not sha256sum output is an error.
        vs.set_checksum(&file.path(), "not a checksum");
        assert!(matches!(
            vision.file(&file).await,
            Err(MarketError::BadChecksumFile { .. })
        ));
    }

    /// A missing CHECKSUM is reported (default) or an error (`Require`), never silent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_checksum_is_reported() {
        let vs = vision_server();
        let file = spot_file("2017-09-02");
        vs.drop_checksum(&file.path());
        let k = fetched(
            vision_client(&vs)
                .build()
                .unwrap()
                .file(&file)
                .await
                .unwrap(),
        );
        assert_eq!(k.checksum, ChecksumStatus::Missing);
        assert_eq!(ms_csv(&k.klines), fixture(DAY2));
        let strict = vision_client(&vs)
            .checksum(ChecksumPolicy::Require)
            .build()
            .unwrap();
        assert!(matches!(
            strict.file(&file).await,
            Err(MarketError::ChecksumMissing { .. })
        ));
    }

    /// 404 within 48 hours of the day's end: not published yet (a distinct outcome); later:
    /// missing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn not_yet_published_is_a_distinct_outcome() {
        let vs = vision_server();
        let file = spot_file("2017-09-01");
        vs.remove(&file.path());
        let soon = vision_client(&vs)
            .clock(Clock::Fixed(ts("2017-09-02T12:00:00Z")))
            .build()
            .unwrap();
        assert!(matches!(
            soon.file(&file).await.unwrap(),
            FileOutcome::NotYetPublished(_)
        ));
        assert!(matches!(
            soon.klines(&file).await,
            Err(MarketError::NotYetPublished { .. })
        ));
        let late = vision_client(&vs)
            .clock(Clock::Fixed(ts("2017-09-04")))
            .build()
            .unwrap();
        assert!(matches!(
            late.file(&file).await.unwrap(),
            FileOutcome::Missing(_)
        ));
        // Asked once each: a 404 is not retried.
        assert_eq!(vs.zip_requests(&file.path()).len(), 3);
    }

    /// The body breaks midway: the download asks again from the first byte not yet on disk
    /// (`Range: bytes=N-`), and the rows are complete.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_broken_midway_resumes_with_range() {
        let file = spot_file("2017-09-01");
        for kind in BackendKind::enabled().filter(|k| *k != BackendKind::Mock) {
            let vs = vision_server();
            let len = vs.zip_bytes(&file.path()).len() as u64;
            assert!(len > 24_576, "the fixture zip is {len} bytes");
            vs.break_at(&file.path(), 20_000, 1);
            let vision = vision_client(&vs).backend(kind).build().unwrap();
            let k = vision
                .klines(&file)
                .await
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(ms_csv(&k.klines), fixture(DAY1), "{kind}");
            assert_eq!(k.checksum, ChecksumStatus::Verified);
            assert_eq!(k.resumed, 1, "{kind}");
            // One streamed GET, broken at byte 20,000, and the rest from there.
            let reqs = vs.zip_requests(&file.path());
            let ranges: Vec<Option<&str>> = reqs.iter().map(|r| r.range.as_deref()).collect();
            assert_eq!(ranges, [None, Some("bytes=20000-")], "{kind}");
            assert!(reqs[0].broken && !reqs[1].broken, "{kind}");
            assert_eq!(reqs[1].status, 206, "{kind}");
        }

        // A body that breaks every time: a typed error, never rows.
        let vs = vision_server();
        vs.break_at(&file.path(), 20_000, usize::MAX);
        match vision_client(&vs)
            .attempts(1)
            .build()
            .unwrap()
            .klines(&file)
            .await
        {
            Err(MarketError::Http { source, what, .. }) => {
                assert_eq!(source.kind(), httpfleet::ErrorKind::Body);
                assert_eq!(what, file.path());
            }
            other => panic!("{other:?}"),
        }
    }

    /// A server that ignores `Range` (200 with the whole file) works too: a resumed download
    /// starts over.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_ignores_range() {
        let vs = vision_server();
        let file = spot_file("2017-09-02");
        vs.ignore_range(&file.path());
        vs.break_at(&file.path(), 20_000, 1);
        let k = vision_client(&vs)
            .build()
            .unwrap()
            .klines(&file)
            .await
            .unwrap();
        assert_eq!(ms_csv(&k.klines), fixture(DAY2));
        // Broken once; asked from byte 20,000, answered 200 with the whole file: started over.
        let reqs = vs.zip_requests(&file.path());
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[1].status, 200);
    }

    /// The cache: keyed by the full path, written atomically (no temporary file left), served
    /// without a request, and replaced when it no longer matches its CHECKSUM.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cache_is_atomic_and_verified() {
        let vs = vision_server();
        let dir = temp_dir("cache");
        let file = spot_file("2017-09-01");
        let vision = vision_client(&vs).cache_dir(&dir).build().unwrap();
        let first = vision.klines(&file).await.unwrap();
        assert!(!first.from_cache);
        let cached = dir.join(file.path());
        assert_eq!(
            std::fs::read(&cached).unwrap(),
            vs.zip_bytes(&file.path()).to_vec()
        );
        assert!(dir.join(file.checksum_path()).exists());
        let leftovers: Vec<_> = std::fs::read_dir(cached.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        vs.clear_log();
        let again = vision.klines(&file).await.unwrap();
        assert!(again.from_cache);
        assert_eq!(again.klines, first.klines);
        assert!(
            vs.requests().is_empty(),
            "served from the cache without a request"
        );

        std::fs::write(&cached, b"not the zip any more").unwrap();
        let healed = vision.klines(&file).await.unwrap();
        assert!(!healed.from_cache);
        assert_eq!(healed.klines, first.klines);
        assert_eq!(
            std::fs::read(&cached).unwrap(),
            vs.zip_bytes(&file.path()).to_vec()
        );

        // Files that could not be verified are not cached.
        let unverified = spot_file("2017-09-02");
        vs.drop_checksum(&unverified.path());
        vision.klines(&unverified).await.unwrap();
        assert!(!dir.join(unverified.path()).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Transport errors fail over to the next Vision host.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn vision_fails_over_to_the_next_host() {
        let vs = vision_server();
        let vision = VisionDataClient::builder(Market::Spot)
            .base_urls([dead_url(), vs.url()])
            .build()
            .unwrap();
        let k = vision.klines(&spot_file("2018-02-09")).await.unwrap();
        assert_eq!(ms_csv(&k.klines), fixture(OUTAGE));
    }
}

mod source {
    use super::*;

    fn auto(ex: &FakeExchange, vs: &FakeVision, now: &str) -> KlineSource {
        KlineSource::new(
            rest_client(Market::Spot, ex.urls()),
            vision_client(vs)
                .clock(Clock::Fixed(ts(now)))
                .build()
                .unwrap(),
        )
        .unwrap()
        .clock(Clock::Fixed(ts(now)))
    }

    /// Whole past days come from daily files, with nothing asked of REST.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_days_come_from_daily_files() {
        let (ex, vs) = (
            FakeExchange::start(all_rows(), ExchangeOptions::default()),
            vision_server(),
        );
        let source = auto(&ex, &vs, "2017-10-05");
        let plan = source
            .plan("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
            .unwrap();
        assert_eq!(
            plan,
            [
                Part::Vision(spot_file("2017-09-01")),
                Part::Vision(spot_file("2017-09-02"))
            ]
        );
        let set = source
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&set.klines), two_days());
        assert!(set.gaps.is_empty());
        assert_eq!(set.report.vision_rows(), 2880);
        assert!(ex.klines_requests().is_empty());
    }

    /// A whole month from its monthly file, the partial day before it over REST, and the
    /// exchange's gaps (the days the fixture has no data for) reported as gaps.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn months_days_and_rest_are_planned_and_merged() {
        let (ex, vs) = (
            FakeExchange::start(all_rows(), ExchangeOptions::default()),
            vision_server(),
        );
        let source = auto(&ex, &vs, "2017-10-05");
        let (start, end) = (ts("2017-08-31T23:30:00Z"), ts("2017-10-01"));
        let plan = source.plan("BTCUSDT", Interval::M1, start, end).unwrap();
        let sep = VisionFile::monthly(Market::Spot, "BTCUSDT", Interval::M1, 2017, 9).unwrap();
        assert_eq!(
            plan,
            [
                Part::Rest(Window::new(start, ts("2017-09-01"))),
                Part::Vision(sep.clone())
            ]
        );
        let set = source
            .klines("BTCUSDT", Interval::M1, start, end)
            .await
            .unwrap();
        assert_eq!(ms_csv(&set.klines), two_days());
        assert_eq!(
            set.gaps,
            [
                Gap {
                    start,
                    end: ts("2017-09-01"),
                    missing: 30,
                    kind: GapKind::BeforeListing,
                },
                Gap {
                    start: ts("2017-09-03"),
                    end,
                    missing: 28 * 1440,
                    kind: GapKind::Exchange,
                },
            ]
        );
        // The monthly file holds two days only: its days come from the daily files, the rest
        // from REST, which has none of them (confirmed), and the half hour before the first
        // candle is the time before the listing.
        assert_eq!(set.report.defective_files.len(), 1);
        assert_eq!(set.report.defective_files[0].file, sep.path());
        assert!(
            set.report.defective_files[0].reason.contains("2017-09-03"),
            "{:?}",
            set.report.defective_files
        );
        assert_eq!(set.report.vision_rows(), 2880);
        // A range that starts and ends mid-day: REST, daily files, REST.
        let plan = source
            .plan(
                "BTCUSDT",
                Interval::M1,
                ts("2017-09-01T12:00:00Z"),
                ts("2017-09-04T06:00:00Z"),
            )
            .unwrap();
        assert_eq!(
            plan,
            [
                Part::Rest(Window::new(ts("2017-09-01T12:00:00Z"), ts("2017-09-02"))),
                Part::Vision(spot_file("2017-09-02")),
                Part::Vision(spot_file("2017-09-03")),
                Part::Rest(Window::new(ts("2017-09-04"), ts("2017-09-04T06:00:00Z"))),
            ]
        );
        // 1w has monthly files only.
        let plan = source
            .plan("BTCUSDT", Interval::W1, ts("2017-08-01"), ts("2017-09-20"))
            .unwrap();
        assert_eq!(
            plan,
            [
                Part::Vision(
                    VisionFile::monthly(Market::Spot, "BTCUSDT", Interval::W1, 2017, 8).unwrap()
                ),
                Part::Rest(Window::new(ts("2017-09-01"), ts("2017-09-20"))),
            ]
        );
    }

    /// Yesterday's file is not published yet: REST serves that day and today's closed candles;
    /// the candle still open is dropped, and nothing is counted as a gap.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recent_days_fall_back_to_rest() {
        let (ex, vs) = (
            FakeExchange::start(all_rows(), ExchangeOptions::default()),
            vision_server(),
        );
        vs.remove(&spot_file("2017-09-01").path());
        let source = auto(&ex, &vs, "2017-09-02T12:00:30Z");
        let set = source
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
            .await
            .unwrap();
        let want: String = two_days()
            .lines()
            .take(1440 + 720)
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(ms_csv(&set.klines), want);
        assert!(set.gaps.is_empty(), "{:?}", set.gaps);
        assert_eq!(set.report.fallbacks.len(), 1);
        assert!(set.report.fallbacks[0].not_yet_published);
        assert_eq!(set.report.open_candles_dropped, 1);
        assert_eq!(set.report.rest_rows(), 1440 + 720);
    }

    /// A monthly file that is not there falls back to daily files, and days without a file to
    /// REST; the exchange's empty days are gaps.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_month_falls_back_to_days_then_rest() {
        let (ex, vs) = (
            FakeExchange::start(all_rows(), ExchangeOptions::default()),
            vision_server(),
        );
        let sep = VisionFile::monthly(Market::Spot, "BTCUSDT", Interval::M1, 2017, 9).unwrap();
        vs.remove(&sep.path());
        let source = auto(&ex, &vs, "2017-10-05");
        let set = source
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-10-01"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&set.klines), two_days());
        assert_eq!(
            set.gaps,
            [Gap {
                start: ts("2017-09-03"),
                end: ts("2017-10-01"),
                missing: 28 * 1440,
                kind: GapKind::Exchange,
            }]
        );
        assert_eq!(set.report.vision_rows(), 2880);
        assert_eq!(set.report.fallbacks.len(), 1 + 28);
        assert!(set.report.fallbacks.iter().all(|f| !f.not_yet_published));
    }

    /// The outage day via Vision: 840 rows and the 600-minute gap, as data.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_outage_day_via_vision_is_a_gap() {
        let (ex, vs) = (
            FakeExchange::start(all_rows(), ExchangeOptions::default()),
            vision_server(),
        );
        let set = auto(&ex, &vs, "2018-03-05")
            .klines("BTCUSDT", Interval::M1, ts("2018-02-09"), ts("2018-02-10"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&set.klines), fixture(OUTAGE));
        assert_eq!(
            set.gaps,
            [Gap {
                start: ts("2018-02-09"),
                end: ts("2018-02-09T10:00:00Z"),
                missing: 600,
                kind: GapKind::Exchange,
            }]
        );
        assert!(matches!(
            set.report.parts[0].served_by,
            ServedBy::Vision { .. }
        ));
    }

    /// `DAY1` without the rows from 06:00 to 08:00.
    fn day1_with_a_hole() -> String {
        let (from, to) = (
            ts("2017-09-01T06:00:00Z").as_millis_floor(),
            ts("2017-09-01T08:00:00Z").as_millis_floor(),
        );
        fixture(DAY1)
            .lines()
            .filter(|l| {
                let t: i64 = l.split(',').next().unwrap().parse().unwrap();
                !(from..to).contains(&t)
            })
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// A hole in a daily file that REST has rows for: filled from REST, no gap, and the file
    /// reported defective.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hole_in_a_file_is_asked_of_rest_and_filled() {
        let (ex, vs) = (
            FakeExchange::start(all_rows(), ExchangeOptions::default()),
            vision_server(),
        );
        let day1 = spot_file("2017-09-01").path();
        vs.add_csv(&day1, day1_with_a_hole().as_bytes());
        let set = auto(&ex, &vs, "2017-10-05")
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&set.klines), two_days());
        assert!(set.gaps.is_empty(), "{:?}", set.gaps);
        assert_eq!(set.report.defective_files.len(), 1);
        assert_eq!(set.report.defective_files[0].file, day1);
        // One bounded request: the hole's two hours.
        let asked: Vec<_> = ex.klines_requests();
        assert_eq!(asked.len(), 1, "{asked:?}");
    }

    /// The same hole with REST unreachable: a gap, but an unconfirmed one that says why.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hole_rest_cannot_confirm_is_an_unconfirmed_gap() {
        let vs = vision_server();
        let day1 = spot_file("2017-09-01").path();
        vs.add_csv(&day1, day1_with_a_hole().as_bytes());
        let rest = RestDataClient::builder(Market::Spot)
            .base_urls([dead_url()])
            .attempts(1)
            .build()
            .unwrap();
        let set = KlineSource::new(rest, vision_client(&vs).build().unwrap())
            .unwrap()
            .clock(Clock::Fixed(ts("2017-10-05")))
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-02"))
            .await
            .unwrap();
        assert_eq!(set.klines.len(), 1440 - 120);
        assert_eq!(set.gaps.len(), 1);
        let gap = &set.gaps[0];
        assert_eq!(
            (gap.start, gap.end, gap.missing),
            (ts("2017-09-01T06:00:00Z"), ts("2017-09-01T08:00:00Z"), 120)
        );
        match &gap.kind {
            GapKind::Unconfirmed { reason } => {
                assert!(reason.contains("REST could not be asked"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(set.unconfirmed().count(), 1);
    }

    /// A monthly file missing a day: detected, the month's daily files used instead, and the
    /// day no daily file has is filled from REST.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_monthly_file_missing_a_day_is_detected_and_filled_from_rest() {
        let (ex, vs) = (
            FakeExchange::start(all_rows(), ExchangeOptions::default()),
            vision_server(),
        );
        let sep = VisionFile::monthly(Market::Spot, "BTCUSDT", Interval::M1, 2017, 9).unwrap();
        vs.add_csv(&sep.path(), fixture(DAY1).as_bytes());
        vs.remove(&spot_file("2017-09-02").path());
        let set = auto(&ex, &vs, "2017-10-05")
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-10-01"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&set.klines), two_days());
        assert_eq!(set.report.defective_files[0].file, sep.path());
        assert!(set.report.defective_files[0].reason.contains("2017-09-02"));
        assert_eq!(set.report.rest_rows(), 1440);
        assert_eq!(
            set.gaps,
            [Gap {
                start: ts("2017-09-03"),
                end: ts("2017-10-01"),
                missing: 28 * 1440,
                kind: GapKind::Exchange,
            }]
        );
    }

    /// Without a CHECKSUM, a file is used when its rows agree with REST's, REST's rows replace
    /// it when they differ, and without REST to ask it is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_without_a_checksum_needs_rest_to_agree() {
        let (ex, vs) = (
            FakeExchange::start(all_rows(), ExchangeOptions::default()),
            vision_server(),
        );
        let day1 = spot_file("2017-09-01");
        vs.drop_checksum(&day1.path());
        let range = (ts("2017-09-01"), ts("2017-09-02"));
        let set = auto(&ex, &vs, "2017-10-05")
            .klines("BTCUSDT", Interval::M1, range.0, range.1)
            .await
            .unwrap();
        assert_eq!(ms_csv(&set.klines), fixture(DAY1));
        assert!(matches!(
            set.report.parts[0].served_by,
            ServedBy::Vision {
                confirmed_by_rest: true,
                ..
            }
        ));
        assert_eq!(set.report.unverified_files(), [day1.path()]);
        // A changed close price, still without a CHECKSUM: REST's rows are used.
        let changed = fixture(DAY1).replacen("4689.91000000", "4689.92000000", 1);
        assert_ne!(changed, fixture(DAY1));
        vs.add_csv(&day1.path(), changed.as_bytes());
        vs.drop_checksum(&day1.path());
        let set = auto(&ex, &vs, "2017-10-05")
            .klines("BTCUSDT", Interval::M1, range.0, range.1)
            .await
            .unwrap();
        assert_eq!(ms_csv(&set.klines), fixture(DAY1));
        assert_eq!(set.report.defective_files[0].file, day1.path());
        assert_eq!(set.report.parts[0].served_by, ServedBy::Rest);
        // Nothing to ask: refused.
        let err = KlineSource::vision_only(vision_client(&vs).build().unwrap())
            .clock(Clock::Fixed(ts("2017-10-05")))
            .klines("BTCUSDT", Interval::M1, range.0, range.1)
            .await
            .unwrap_err();
        assert!(matches!(err, MarketError::ChecksumMissing { .. }), "{err}");
    }

    /// A first line that is neither the header nor a row (a byte-order mark) and a zip whose
    /// entry is another file's are errors, never a skipped row.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_damaged_first_line_or_a_wrong_entry_is_an_error() {
        let vs = vision_server();
        let day1 = spot_file("2017-09-01");
        let vision = vision_client(&vs)
            .clock(Clock::Fixed(ts("2017-10-05")))
            .build()
            .unwrap();
        vs.add_csv(
            &day1.path(),
            format!("\u{feff}{}", fixture(DAY1)).as_bytes(),
        );
        let err = vision.klines(&day1).await.unwrap_err();
        assert!(matches!(err, MarketError::Data { .. }), "{err}");
        assert!(err.to_string().contains("line 1"), "{err}");
        vs.add_zip(
            &day1.path(),
            support::vision::zip_one("BTCUSDT-1m-2017-09-02.csv", fixture(DAY1).as_bytes()),
        );
        let err = vision.klines(&day1).await.unwrap_err();
        assert!(matches!(err, MarketError::Zip { .. }), "{err}");
        assert!(
            err.to_string().contains("BTCUSDT-1m-2017-09-02.csv"),
            "{err}"
        );
    }

    /// A failure is an error even when the rest of the range is fine.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_corrupted_file_fails_the_whole_call() {
        let (ex, vs) = (
            FakeExchange::start(all_rows(), ExchangeOptions::default()),
            vision_server(),
        );
        vs.corrupt(&spot_file("2017-09-02").path());
        let err = auto(&ex, &vs, "2017-10-05")
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
            .await
            .unwrap_err();
        assert!(matches!(err, MarketError::ChecksumMismatch { .. }), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn vision_only_refuses_spans_that_need_rest() {
        let vs = vision_server();
        let source = KlineSource::vision_only(vision_client(&vs).build().unwrap())
            .clock(Clock::Fixed(ts("2017-10-05")));
        let set = source
            .klines("BTCUSDT", Interval::M1, ts("2017-09-01"), ts("2017-09-03"))
            .await
            .unwrap();
        assert_eq!(ms_csv(&set.klines), two_days());
        let err = source
            .klines(
                "BTCUSDT",
                Interval::M1,
                ts("2017-09-01T12:00:00Z"),
                ts("2017-09-03"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, MarketError::InvalidInput { .. }), "{err}");
    }

    #[test]
    fn source_modes_parse() {
        assert_eq!("auto".parse::<SourceMode>().unwrap(), SourceMode::Auto);
        assert_eq!("rest".parse::<SourceMode>().unwrap(), SourceMode::Rest);
        assert_eq!("vision".parse::<SourceMode>().unwrap(), SourceMode::Vision);
        assert!("both".parse::<SourceMode>().is_err());
        assert_eq!("um".parse::<Market>().unwrap(), Market::UsdM);
        assert_eq!("cm".parse::<Market>().unwrap(), Market::CoinM);
        let _ = Period::Day("2017-09-01".parse().unwrap());
    }
}

mod cli_hook {
    use super::*;

    /// `run_klines` with each source writes the fixture bytes, atomically.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn run_klines_writes_the_fixture_bytes() {
        let (ex, vs) = (
            FakeExchange::start(all_rows(), ExchangeOptions::default()),
            vision_server(),
        );
        let dir = temp_dir("cli");
        for source in [SourceMode::Auto, SourceMode::Rest, SourceMode::Vision] {
            let out = dir.join(format!("{source}.csv"));
            let mut args = KlinesArgs::new(
                Market::Spot,
                "BTCUSDT",
                Interval::M1,
                ts("2017-09-01"),
                ts("2017-09-03"),
                &out,
            );
            args.source = source;
            args.rest_urls = ex.urls();
            args.vision_urls = vec![vs.url()];
            let events = std::sync::Arc::new(AtomicUsize::new(0));
            let counter = events.clone();
            let summary = run_klines(
                &args,
                Some(std::sync::Arc::new(move |_| {
                    counter.fetch_add(1, Ordering::Relaxed);
                })),
            )
            .await
            .unwrap_or_else(|e| panic!("{source}: {e}"));
            assert_eq!(summary.rows, 2880, "{source}");
            assert_eq!(summary.missing, 0);
            assert_eq!(
                std::fs::read_to_string(&out).unwrap(),
                two_days(),
                "{source}"
            );
            assert!(
                events.load(Ordering::Relaxed) >= 3,
                "{source}: progress events"
            );
        }
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| n.ends_with(".csv") && !n.starts_with('.')),
            "{names:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An interrupted output goes on from its last whole row: the line cut short is dropped,
    /// the rows after the last whole one fetched, and the whole file renamed into place.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupted_output_resumes_after_its_last_whole_row() {
        let ex = FakeExchange::start(all_rows(), ExchangeOptions::default());
        let dir = temp_dir("resume");
        let out = dir.join("out.csv");
        let whole = two_days();
        let kept: String = whole.lines().take(1000).map(|l| format!("{l}\n")).collect();
        let cut = &whole.lines().nth(1000).unwrap()[..20];
        std::fs::write(dir.join("out.csv.part"), format!("{kept}{cut}")).unwrap();
        let mut args = KlinesArgs::new(
            Market::Spot,
            "BTCUSDT",
            Interval::M1,
            ts("2017-09-01"),
            ts("2017-09-03"),
            &out,
        );
        args.source = SourceMode::Rest;
        args.rest_urls = ex.urls();
        args.resume = true;
        let summary = run_klines(&args, None).await.unwrap();
        assert_eq!(summary.rows, 2880 - 1000);
        let last_kept = parse_csv_text(&kept).last().unwrap().open_time;
        assert_eq!(summary.resumed_after, Some(last_kept));
        assert!(
            summary
                .lines()
                .iter()
                .any(|l| l.starts_with("resumed after"))
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), whole);
        assert!(!dir.join("out.csv.part").exists());
        // Without --resume, a leftover part file is started over.
        std::fs::write(dir.join("out.csv.part"), "garbage\n").unwrap();
        args.resume = false;
        let summary = run_klines(&args, None).await.unwrap();
        assert_eq!(summary.rows, 2880);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), whole);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The stream hands over one batch per part of the plan, in order, each with its own
    /// report; gathered, they are what `klines` returns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_stream_gives_each_part_in_order() {
        let (ex, vs) = (
            FakeExchange::start(all_rows(), ExchangeOptions::default()),
            vision_server(),
        );
        let source = KlineSource::new(
            rest_client(Market::Spot, ex.urls()),
            vision_client(&vs)
                .clock(Clock::Fixed(ts("2017-10-05")))
                .build()
                .unwrap(),
        )
        .unwrap()
        .clock(Clock::Fixed(ts("2017-10-05")));
        let (start, end) = (ts("2017-09-01"), ts("2017-09-03T12:00:00Z"));
        let mut stream = source.stream("BTCUSDT", Interval::M1, start, end);
        let mut batches = Vec::new();
        while let Some(b) = std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)
        })
        .await
        {
            batches.push(b.unwrap());
        }
        // Two daily files, then half a day over REST (no rows there: a gap).
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[0].klines.len(), 1440);
        assert_eq!(batches[1].klines.len(), 1440);
        assert!(batches[2].klines.is_empty());
        assert_eq!(batches[2].gaps.len(), 1);
        let set = source
            .klines("BTCUSDT", Interval::M1, start, end)
            .await
            .unwrap();
        assert_eq!(ms_csv(&set.klines), two_days());
        assert_eq!(set.gaps, batches[2].gaps);
        // Dropped after its first batch: the rest is canceled, nothing hangs.
        let mut stream = source.stream("BTCUSDT", Interval::M1, start, end);
        let first = std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)
        })
        .await;
        assert!(first.unwrap().is_ok());
        drop(stream);
    }
}

/// The `httpfleet klines` command, run as a process against the fake servers.
#[cfg(feature = "cli")]
mod cli_binary {
    use super::*;

    #[test]
    fn klines_command_writes_the_fixture_rows() {
        let (ex, vs) = (
            FakeExchange::start(all_rows(), ExchangeOptions::default()),
            vision_server(),
        );
        let dir = temp_dir("cli-binary");
        for source in ["rest", "vision", "auto"] {
            let out = dir.join(format!("{source}.csv"));
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_httpfleet"));
            cmd.args([
                "klines",
                "--market",
                "spot",
                "--symbol",
                "BTCUSDT",
                "--interval",
                "1m",
            ])
            .args([
                "--start",
                "2017-09-01",
                "--end",
                "2017-09-03",
                "--source",
                source,
            ])
            .arg("--vision-url")
            .arg(vs.url())
            .arg("-o")
            .arg(&out);
            for u in ex.urls() {
                cmd.arg("--rest-url").arg(u);
            }
            cmd.arg("--progress");
            let output = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{source}: {stderr}");
            for line in [
                "2880 rows in",
                "exchange gaps (confirmed): 0, 0 candle(s) of 1m missing",
                "unconfirmed gaps: 0, 0 candle(s) of 1m",
                "defective files: 0",
                "unverified files: 0",
            ] {
                assert!(stderr.contains(line), "{source}: {line:?} not in {stderr}");
            }
            assert!(stderr.contains("] "), "{source}: no progress bar: {stderr}");
            assert_eq!(
                std::fs::read_to_string(&out).unwrap(),
                two_days(),
                "{source}"
            );
        }
        // The CSV's own flags, and a range with an exchange gap counted in hours.
        let out = dir.join("flags.csv");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_httpfleet"));
        cmd.args(["klines", "--symbol", "BTCUSDT", "--interval", "1m"])
            .args([
                "--start",
                "2017-09-01",
                "--end",
                "2017-09-04",
                "--source",
                "rest",
            ])
            .args(["--time-unit", "us", "--header", "--checksum", "require"])
            .args(["--concurrency", "2", "-o"])
            .arg(&out);
        for u in ex.urls() {
            cmd.arg("--rest-url").arg(u);
        }
        let output = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stderr.contains("exchange gaps (confirmed): 1, 1440 candle(s) of 1m missing"),
            "{stderr}"
        );
        let csv = std::fs::read_to_string(&out).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(httpfleet::market::CSV_HEADER));
        let first = lines.next().unwrap();
        assert!(first.starts_with("1504224000000000,"), "{first}");
        assert_eq!(csv.lines().count(), 1 + 2880);
        let bad_flag = std::process::Command::new(env!("CARGO_BIN_EXE_httpfleet"))
            .args(["klines", "--symbol", "BTCUSDT", "--interval", "1m"])
            .args(["--start", "2017-09-01", "--end", "2017-09-03"])
            .args(["--checksum", "sometimes"])
            .output()
            .unwrap();
        assert!(
            !bad_flag.status.success(),
            "an unknown checksum policy must fail"
        );
        let bad = std::process::Command::new(env!("CARGO_BIN_EXE_httpfleet"))
            .args(["klines", "--symbol", "BTCUSDT", "--interval", "1min"])
            .args(["--start", "2017-09-01", "--end", "2017-09-03"])
            .output()
            .unwrap();
        assert!(!bad.status.success(), "an invalid interval must fail");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Throughput over loopback (debug build): `cargo test --all-features --test market --
/// --ignored --nocapture throughput`.
mod throughput {
    use super::*;

    const DAYS: i64 = 60;

    fn synthetic_days() -> Vec<(Date, String)> {
        let base = fixture(DAY1);
        (0..DAYS)
            .map(|d| {
                let date =
                    Date::from_days_since_epoch(ts("2017-09-01").date().days_since_epoch() + d);
                (date, shift_csv(&base, d))
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement: run with --ignored --nocapture"]
    async fn throughput_rest_and_vision() {
        let days = synthetic_days();
        let rows: Vec<_> = days
            .iter()
            .flat_map(|(_, csv)| rows_from_csv(csv))
            .collect();
        let n = rows.len();
        let ex = FakeExchange::start(rows, ExchangeOptions::default());
        let rest = rest_client(Market::Spot, ex.urls());
        let (start, end) = (
            ts("2017-09-01"),
            ts("2017-09-01").add_micros(DAYS * 86_400_000_000),
        );
        let t = std::time::Instant::now();
        let k = rest
            .klines("BTCUSDT", Interval::M1, start, end)
            .await
            .unwrap();
        let rest_secs = t.elapsed().as_secs_f64();
        assert_eq!(k.len(), n);

        let vs = FakeVision::start();
        let mut files = Vec::new();
        for (date, csv) in &days {
            let f = VisionFile::daily(Market::Spot, "BTCUSDT", Interval::M1, *date).unwrap();
            vs.add_csv(&f.path(), csv.as_bytes());
            files.push(f);
        }
        let vision = vision_client(&vs).build().unwrap();
        let t = std::time::Instant::now();
        let outcomes = vision.files(&files).await.unwrap();
        let vision_secs = t.elapsed().as_secs_f64();
        let vrows: usize = outcomes.into_iter().map(|o| fetched(o).klines.len()).sum();
        assert_eq!(vrows, n);
        println!(
            "REST:   {n} rows in {rest_secs:.2} s = {:.0} rows/s ({} windows of 1000, concurrency 4)",
            n as f64 / rest_secs,
            n.div_ceil(1000)
        );
        println!(
            "Vision: {n} rows in {vision_secs:.2} s = {:.0} rows/s ({DAYS} daily zips, concurrency 4)",
            n as f64 / vision_secs
        );
    }
}

/// A year of 1-second candles (synthetic: a fake Vision server makes each daily file when it is
/// asked) written by the `httpfleet klines` binary, whose peak resident memory stays under
/// 256 MiB. A measurement, run by `.ci/run`:
/// `cargo test --all-features --test market -- --ignored year --nocapture`
/// (`HTTPFLEET_YEAR_DAYS=N` for fewer days).
#[cfg(feature = "cli")]
mod year {
    use super::*;
    use std::fmt::Write as _;

    /// The daily 1s file of `path` (`.../SYNTH-1s-YYYY-MM-DD.zip`): 86,400 rows.
    fn second_candles(path: &str) -> Option<Vec<u8>> {
        let name = path.rsplit('/').next()?;
        let day: Date = name
            .strip_prefix("SYNTH-1s-")?
            .strip_suffix(".zip")?
            .parse()
            .ok()?;
        let start = Timestamp::from_date(day).as_millis_floor();
        let mut csv = String::with_capacity(86_400 * 110);
        for i in 0..86_400 {
            let t = start + i * 1000;
            let _ = writeln!(
                csv,
                "{t},1.00000000,2.00000000,0.50000000,1.50000000,10.00000000,{},15.00000000,5,\
                 1.00000000,1.50000000,0",
                t + 999
            );
        }
        Some(support::vision::zip_stored(
            &name.replace(".zip", ".csv"),
            csv.as_bytes(),
        ))
    }

    /// Peak resident memory of process `pid` so far (KiB), from `/proc`.
    fn peak_kib(pid: u32) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    #[test]
    #[ignore = "a measurement: run by .ci/run"]
    fn a_year_of_second_candles_is_written_in_bounded_memory() {
        let days: i64 = std::env::var("HTTPFLEET_YEAR_DAYS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(366);
        let vs = FakeVision::start();
        vs.generate(second_candles);
        let dir = temp_dir("year");
        let out = dir.join("year.csv");
        let start: Date = "2024-01-01".parse().unwrap();
        let end = Timestamp::from_date(start)
            .add_micros(days * 86_400_000_000)
            .date();
        let began = std::time::Instant::now();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_httpfleet"))
            .args([
                "klines",
                "--symbol",
                "SYNTH",
                "--interval",
                "1s",
                "--source",
            ])
            .args([
                "vision",
                "--start",
                &start.to_string(),
                "--end",
                &end.to_string(),
            ])
            .arg("--vision-url")
            .arg(vs.url())
            .arg("-o")
            .arg(&out)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut peak = 0;
        let status = loop {
            if let Some(kib) = peak_kib(pid) {
                peak = peak.max(kib);
            }
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(status.success(), "{stderr}");
        let rows = (days * 86_400) as usize;
        assert!(stderr.contains(&format!("{rows} rows in")), "{stderr}");
        assert!(stderr.contains("exchange gaps (confirmed): 0,"), "{stderr}");
        let lines = std::process::Command::new("wc")
            .arg("-l")
            .arg(&out)
            .output()
            .unwrap();
        let lines: usize = String::from_utf8_lossy(&lines.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(lines, rows);
        let bytes = std::fs::metadata(&out).unwrap().len();
        println!(
            "year: {rows} rows of 1s candles ({days} days, {} MiB of CSV) in {:.0?}, peak resident \
             {peak} KiB",
            bytes >> 20,
            began.elapsed()
        );
        assert!(peak < 256 * 1024, "peak resident {peak} KiB");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Aggregate trades: REST by id and by time, Vision files, and holes proven by REST.
mod agg {
    use super::*;
    use httpfleet::market::{AggTradeSource, AggTradesFile, IdGap};
    use support::exchange::AggRow;

    /// Ids 1..=2500 a second apart from 2017-09-01, without the ids of the `missing` ranges
    /// `(first, end)`.
    fn trades(missing: &[(u64, u64)]) -> Vec<AggRow> {
        let start = ts("2017-09-01").as_millis_floor();
        (1..=2500u64)
            .filter(|id| !missing.iter().any(|&(a, b)| (a..b).contains(id)))
            .map(|id| AggRow {
                id,
                time_ms: start + id as i64 * 1000,
            })
            .collect()
    }

    fn exchange(missing: &[(u64, u64)]) -> FakeExchange {
        FakeExchange::start(
            Vec::new(),
            ExchangeOptions {
                agg_trades: trades(missing),
                ..ExchangeOptions::default()
            },
        )
    }

    fn day_file(day: &str) -> AggTradesFile {
        AggTradesFile::new(Market::Spot, "BTCUSDT", Period::Day(day.parse().unwrap())).unwrap()
    }

    fn csv_of(rows: &[AggRow]) -> String {
        rows.iter().map(AggRow::csv).collect()
    }

    /// By id: pages of 1,000 with `fromId`; a hole at the exchange is a gap, asked for.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rest_pages_by_id_and_reports_the_ids_it_does_not_have() {
        let ex = exchange(&[(1200, 1300)]);
        let rest = rest_client(Market::Spot, ex.urls());
        let set = rest.agg_trades("BTCUSDT", 1..2501).await.unwrap();
        assert_eq!(set.trades.len(), 2400);
        assert!(set.trades.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(
            set.gaps,
            [IdGap {
                first: 1200,
                end: 1300
            }]
        );
        assert_eq!(set.trades[0].price.to_string(), "1001.50000000");
        // By time: the first hour holds all 2,500, past one full page.
        let by_time = rest
            .agg_trades_between("BTCUSDT", ts("2017-09-01"), ts("2017-09-02"))
            .await
            .unwrap();
        assert_eq!(by_time, set.trades);
    }

    /// A day's file missing trades the exchange has: filled from REST and the file reported
    /// defective; the exchange's own hole is a gap; a day without a file comes over REST.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hole_in_a_file_is_filled_from_rest_and_an_exchange_hole_is_a_gap() {
        let ex = exchange(&[(1200, 1300)]);
        let vs = FakeVision::start();
        let day = day_file("2017-09-01");
        vs.add_csv(
            &day.path(),
            csv_of(&trades(&[(1200, 1300), (1500, 1600)])).as_bytes(),
        );
        let source = AggTradeSource::new(
            rest_client(Market::Spot, ex.urls()),
            vision_client(&vs)
                .clock(Clock::Fixed(ts("2017-10-05")))
                .build()
                .unwrap(),
        )
        .unwrap();
        let days = source
            .days(
                "BTCUSDT",
                "2017-09-01".parse().unwrap(),
                "2017-09-03".parse().unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(days.trades.len(), 2400);
        assert!(days.trades.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(
            days.gaps,
            [IdGap {
                first: 1200,
                end: 1300
            }]
        );
        assert!(days.unconfirmed.is_empty());
        assert_eq!(days.defective_files.len(), 1, "{:?}", days.defective_files);
        assert_eq!(days.defective_files[0].file, day.path());
        assert_eq!(days.rest_days, ["2017-09-02".parse::<Date>().unwrap()]);
        assert!(days.unverified_files.is_empty());
    }

    /// Without a CHECKSUM a file is used when REST agrees (listed unverified), and replaced by
    /// REST's trades when it does not (defective); a monthly file reads the same way.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_without_a_checksum_needs_rest_to_agree() {
        let ex = exchange(&[]);
        let vs = FakeVision::start();
        let day = day_file("2017-09-01");
        vs.add_csv(&day.path(), csv_of(&trades(&[])).as_bytes());
        vs.drop_checksum(&day.path());
        let source = AggTradeSource::new(
            rest_client(Market::Spot, ex.urls()),
            vision_client(&vs)
                .clock(Clock::Fixed(ts("2017-10-05")))
                .build()
                .unwrap(),
        )
        .unwrap();
        let range = ("2017-09-01".parse().unwrap(), "2017-09-02".parse().unwrap());
        let days = source.days("BTCUSDT", range.0, range.1).await.unwrap();
        assert_eq!(days.trades.len(), 2500);
        assert_eq!(days.unverified_files, [day.path()]);
        let changed = csv_of(&trades(&[])).replacen("1001.50000000", "1001.60000000", 1);
        vs.add_csv(&day.path(), changed.as_bytes());
        vs.drop_checksum(&day.path());
        let days = source.days("BTCUSDT", range.0, range.1).await.unwrap();
        assert_eq!(days.trades.len(), 2500);
        assert_eq!(days.trades[0].price.to_string(), "1001.50000000");
        assert_eq!(days.defective_files[0].file, day.path());
        // A monthly file, with the futures header line.
        let month = AggTradesFile::new(
            Market::Spot,
            "BTCUSDT",
            Period::Month {
                year: 2017,
                month: 9,
            },
        )
        .unwrap();
        let text = format!(
            "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n{}",
            csv_of(&trades(&[]))
        );
        vs.add_csv(&month.path(), text.as_bytes());
        let vision = vision_client(&vs)
            .clock(Clock::Fixed(ts("2017-10-05")))
            .build()
            .unwrap();
        let f = vision.agg_trades(&month).await.unwrap().unwrap();
        assert_eq!(f.trades.len(), 2500);
        assert_eq!(f.checksum, ChecksumStatus::Verified);
        assert_eq!(
            month.path(),
            "data/spot/monthly/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2017-09.zip"
        );
    }
}
