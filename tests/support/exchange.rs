//! A fake Binance REST exchange (hyper 1, HTTP/1.1 and h2c) for the market-data tests.
//!
//! `FakeExchange::start(data, options)` binds `options.hosts` ports on 127.0.0.1 (one "host"
//! each, like api1..api4.binance.com) that share one state, as Binance shares limits per IP. It
//! runs on its own OS thread with its own runtime, like [`TestServer`](super::TestServer).
//!
//! Semantics, as the exchange documents them:
//! - `GET /api/v3/klines`, `/fapi/v1/klines`, `/dapi/v1/klines`: `symbol` and `interval`
//!   required; `startTime` and `endTime` inclusive; `limit` default 500, at most 1000 (spot) or
//!   1500 (futures). Spot and USD-M return the first `limit` candles from `startTime` (the last
//!   `limit` up to `endTime` when only that is given); COIN-M returns the most recent `limit`
//!   candles up to `endTime`, and refuses a span over 200 days. Candles come from the data given
//!   (1m rows; other intervals are valid and empty). `1s` exists on spot only.
//! - `GET /api/v3/time`, `/fapi/v1/time`, `/dapi/v1/time`: `{"serverTime": ms}`, weight 1.
//! - Weight per request: klines 2 on spot; on futures 1 / 2 / 5 / 10 by `limit` (<100, <500,
//!   <=1000, more). Counted per window of `options.weight_window` on the wall clock, reported in
//!   `X-MBX-USED-WEIGHT-1M` (and `X-MBX-USED-WEIGHT` on spot).
//! - Past the limit: 429, `{"code":-1003}`, `Retry-After` = whole seconds to the end of the
//!   weight window (at least 1). Until that `Retry-After` has passed, a request is a violation:
//!   the first `options.tolerated_in_pause` get 429 again (requests already in flight when the
//!   429 was sent), then 418 with `Retry-After` = `options.ban` and every request gets 418
//!   until the ban ends.
//! - Errors: `{"code": -1121, "msg": "Invalid symbol."}`, `-1120` invalid interval, `-1102`
//!   missing parameter, `-1130` invalid limit, `-1127` COIN-M span over 200 days, with HTTP 400.
//!
//! Faults: `fail_host(i, Some(503))` answers every request to host `i` with that status;
//! `fail_covering(t_ms, status, times)` answers the next `times` klines requests whose window
//! holds `t_ms` with `status` (`usize::MAX`: always), on every host.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use tokio::sync::watch;

const DAY_MS: i64 = 86_400_000;

/// One candle row, kept as the exchange's JSON array text.
#[derive(Clone, Debug)]
pub struct Row {
    pub open_ms: i64,
    pub json: Arc<str>,
}

/// Rows from a Vision CSV (no header, 12 columns, ms timestamps): each becomes the JSON array the
/// REST API sends, with every number string copied as it is.
pub fn rows_from_csv(csv: &str) -> Vec<Row> {
    csv.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 12, "fixture row with {} columns: {line}", f.len());
            let json = format!(
                "[{},\"{}\",\"{}\",\"{}\",\"{}\",\"{}\",{},\"{}\",{},\"{}\",\"{}\",\"{}\"]",
                f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11]
            );
            Row {
                open_ms: f[0].parse().expect("open time"),
                json: json.into(),
            }
        })
        .collect()
}

/// `csv` with every timestamp moved by `days` days (for synthetic data).
pub fn shift_csv(csv: &str, days: i64) -> String {
    let mut out = String::with_capacity(csv.len());
    for line in csv.lines().filter(|l| !l.trim().is_empty()) {
        let mut f: Vec<String> = line.split(',').map(str::to_owned).collect();
        for i in [0, 6] {
            let v: i64 = f[i].parse().expect("timestamp");
            f[i] = (v + days * DAY_MS).to_string();
        }
        out.push_str(&f.join(","));
        out.push('\n');
    }
    out
}

/// Options of a [`FakeExchange`].
#[derive(Clone, Debug)]
pub struct ExchangeOptions {
    /// Ports ("hosts") sharing one state.
    pub hosts: usize,
    /// Weight per window on `/api`.
    pub spot_weight_limit: u32,
    /// Weight per window on `/fapi` and `/dapi`.
    pub futures_weight_limit: u32,
    /// The weight window (Binance: one minute).
    pub weight_window: Duration,
    /// Requests during a 429 pause answered 429 before the IP is banned.
    pub tolerated_in_pause: usize,
    /// A ban's length.
    pub ban: Duration,
    /// Delay before every answer.
    pub latency: Duration,
    /// Rows per klines answer at most, whatever `limit` asked (a proxy, a mirror or a venue
    /// that pages smaller). Defaults to none.
    pub page_size: Option<usize>,
    /// The exchange's clock ahead of the local one (behind when negative), as its time
    /// endpoint reports it. Defaults to 0.
    pub clock_offset_ms: i64,
    /// Aggregate trades served by `aggTrades`, in increasing id. Defaults to none.
    pub agg_trades: Vec<AggRow>,
}

/// One aggregate trade of the fake exchange.
#[derive(Clone, Debug)]
pub struct AggRow {
    pub id: u64,
    pub time_ms: i64,
}

impl AggRow {
    /// Price, quantity, first and last trade ids, made from the id.
    fn fields(&self) -> (u64, u64, u64, u64) {
        (
            1000 + self.id % 97,
            1 + self.id % 9,
            self.id * 2,
            self.id * 2 + 1,
        )
    }

    /// The trade as `aggTrades` sends it.
    pub fn json(&self) -> String {
        let (p, q, f, l) = self.fields();
        format!(
            "{{\"a\":{},\"p\":\"{p}.50000000\",\"q\":\"0.0{q}\",\"f\":{f},\"l\":{l},\"T\":{},\"m\":{},\"M\":true}}",
            self.id,
            self.time_ms,
            self.id % 2 == 0
        )
    }

    /// The trade as a spot Vision CSV row.
    pub fn csv(&self) -> String {
        let (p, q, f, l) = self.fields();
        let maker = if self.id % 2 == 0 { "True" } else { "False" };
        format!(
            "{},{p}.50000000,0.0{q},{f},{l},{},{maker},True\n",
            self.id, self.time_ms
        )
    }
}

impl Default for ExchangeOptions {
    fn default() -> Self {
        ExchangeOptions {
            hosts: 1,
            spot_weight_limit: 6000,
            futures_weight_limit: 2400,
            weight_window: Duration::from_secs(60),
            tolerated_in_pause: 0,
            ban: Duration::from_secs(120),
            latency: Duration::ZERO,
            page_size: None,
            clock_offset_ms: 0,
            agg_trades: Vec::new(),
        }
    }
}

/// One request as the exchange saw it.
#[derive(Clone, Debug)]
pub struct ExRequest {
    pub host: usize,
    pub at: Instant,
    pub path: String,
    pub query: HashMap<String, String>,
    pub status: u16,
    /// Weight used in the window after this request.
    pub used: u32,
    /// True when it arrived during a 429 pause or a ban.
    pub violation: bool,
}

impl ExRequest {
    pub fn param(&self, name: &str) -> Option<i64> {
        self.query.get(name).and_then(|v| v.parse().ok())
    }
}

#[derive(Debug)]
struct WindowFault {
    covering_ms: i64,
    status: u16,
    remaining: usize,
}

#[derive(Debug, Default)]
struct Mutable {
    weight: HashMap<&'static str, (i64, u32)>,
    pause_until: Option<Instant>,
    in_pause: usize,
    ban_until: Option<Instant>,
    host_fail: Vec<Option<u16>>,
    faults: Vec<WindowFault>,
    log: Vec<ExRequest>,
}

struct ExState {
    rows: BTreeMap<i64, Row>,
    options: ExchangeOptions,
    m: Mutex<Mutable>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl ExState {
    fn lock(&self) -> MutexGuard<'_, Mutable> {
        self.m.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct FakeExchange {
    state: Arc<ExState>,
    addrs: Vec<SocketAddr>,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeExchange {
    /// Serves `rows` (1m candles) on `options.hosts` ports.
    pub fn start(rows: Vec<Row>, options: ExchangeOptions) -> FakeExchange {
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        for _ in 0..options.hosts.max(1) {
            let l = StdTcpListener::bind("127.0.0.1:0").expect("exchange: bind");
            l.set_nonblocking(true).expect("exchange: nonblocking");
            addrs.push(l.local_addr().expect("exchange: addr"));
            listeners.push(l);
        }
        let state = Arc::new(ExState {
            rows: rows.into_iter().map(|r| (r.open_ms, r)).collect(),
            m: Mutex::new(Mutable {
                host_fail: vec![None; addrs.len()],
                ..Mutable::default()
            }),
            options,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let (tx, rx) = watch::channel(false);
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("fake-exchange".into())
            .spawn(move || run(listeners, st, rx))
            .expect("exchange: spawn");
        FakeExchange {
            state,
            addrs,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` of host `i`.
    pub fn url(&self, i: usize) -> String {
        format!("http://{}", self.addrs[i])
    }

    /// Every host's URL, in order.
    pub fn urls(&self) -> Vec<String> {
        (0..self.addrs.len()).map(|i| self.url(i)).collect()
    }

    /// Host `i` answers every request with `status` (`None`: healthy again).
    pub fn fail_host(&self, i: usize, status: Option<u16>) {
        self.state.lock().host_fail[i] = status;
    }

    /// The next `times` klines requests whose `[startTime, endTime]` holds `t_ms` get `status`.
    pub fn fail_covering(&self, t_ms: i64, status: u16, times: usize) {
        self.state.lock().faults.push(WindowFault {
            covering_ms: t_ms,
            status,
            remaining: times,
        });
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<ExRequest> {
        self.state.lock().log.clone()
    }

    /// Requests to a klines endpoint.
    pub fn klines_requests(&self) -> Vec<ExRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/klines"))
            .collect()
    }

    /// How many answers had `status`.
    pub fn count_status(&self, status: u16) -> usize {
        self.state
            .lock()
            .log
            .iter()
            .filter(|r| r.status == status)
            .count()
    }

    /// Requests that arrived during a 429 pause or a ban.
    pub fn violations(&self) -> usize {
        self.state.lock().log.iter().filter(|r| r.violation).count()
    }

    pub fn clear_log(&self) {
        self.state.lock().log.clear();
        self.state.max_in_flight.store(0, Ordering::SeqCst);
    }

    /// The most requests the exchange was answering at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for FakeExchange {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(listeners: Vec<StdTcpListener>, state: Arc<ExState>, shutdown: watch::Receiver<bool>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("exchange: runtime");
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for (host, l) in listeners.into_iter().enumerate() {
            let (state, mut shutdown) = (state.clone(), shutdown.clone());
            tasks.push(tokio::spawn(async move {
                let l = tokio::net::TcpListener::from_std(l).expect("exchange: listener");
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => break,
                        accepted = l.accept() => {
                            if let Ok((stream, _)) = accepted {
                                let _ = stream.set_nodelay(true);
                                let state = state.clone();
                                tokio::spawn(serve(stream, host, state));
                            }
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}

async fn serve(stream: tokio::net::TcpStream, host: usize, state: Arc<ExState>) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let state = state.clone();
        async move {
            let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            state.max_in_flight.fetch_max(now, Ordering::SeqCst);
            if !state.options.latency.is_zero() {
                tokio::time::sleep(state.options.latency).await;
            }
            let resp = handle(&state, host, req.uri());
            state.in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, Infallible>(resp)
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

struct Answer {
    status: u16,
    body: String,
    retry_after: Option<u64>,
}

fn error(code: i64, msg: &str) -> Answer {
    Answer {
        status: 400,
        body: format!("{{\"code\":{code},\"msg\":\"{msg}\"}}"),
        retry_after: None,
    }
}

fn handle(state: &ExState, host: usize, uri: &http::Uri) -> hyper::Response<Full<Bytes>> {
    let now = Instant::now();
    let path = uri.path().to_owned();
    let query: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let family: &'static str = if path.starts_with("/api/") {
        "spot"
    } else if path.starts_with("/fapi/") {
        "um"
    } else if path.starts_with("/dapi/") {
        "cm"
    } else {
        "other"
    };
    let mut m = state.lock();
    let mut violation = false;
    let answer = 'answer: {
        if let Some(status) = m.host_fail[host] {
            break 'answer Answer {
                status,
                body: format!("<html><body>{status} from host {host}</body></html>"),
                retry_after: None,
            };
        }
        if let Some(until) = m.ban_until {
            if now < until {
                violation = true;
                break 'answer Answer {
                    status: 418,
                    body: "{\"code\":-1003,\"msg\":\"Way too many requests; IP banned.\"}".into(),
                    retry_after: Some((until - now).as_secs().max(1)),
                };
            }
        }
        if let Some(until) = m.pause_until {
            if now < until {
                violation = true;
                m.in_pause += 1;
                if m.in_pause > state.options.tolerated_in_pause {
                    m.ban_until = Some(now + state.options.ban);
                    break 'answer Answer {
                        status: 418,
                        body: "{\"code\":-1003,\"msg\":\"Way too many requests; IP banned.\"}"
                            .into(),
                        retry_after: Some(state.options.ban.as_secs().max(1)),
                    };
                }
                break 'answer Answer {
                    status: 429,
                    body: "{\"code\":-1003,\"msg\":\"Too many requests.\"}".into(),
                    retry_after: Some((until - now).as_secs_f64().ceil() as u64),
                };
            }
        }
        let futures = family != "spot";
        let limit_max = if futures { 1500 } else { 1000 };
        let limit: i64 = match query.get("limit") {
            None => 500,
            Some(v) => v.parse().unwrap_or(-1),
        };
        let weight = match (path.ends_with("/klines"), futures) {
            (false, _) => 1,
            (true, false) => 2,
            (true, true) => match limit {
                ..100 => 1,
                100..500 => 2,
                500..=1000 => 5,
                _ => 10,
            },
        };
        // The weight window.
        let window_ms = state.options.weight_window.as_millis() as i64;
        let wall = wall_ms();
        let id = wall.div_euclid(window_ms);
        let budget = if futures {
            state.options.futures_weight_limit
        } else {
            state.options.spot_weight_limit
        };
        let entry = m.weight.entry(family).or_insert((id, 0));
        if entry.0 != id {
            *entry = (id, 0);
        }
        if entry.1 + weight > budget {
            let left_ms = (id + 1) * window_ms - wall;
            let secs = ((left_ms + 999) / 1000).max(1) as u64;
            m.pause_until = Some(now + Duration::from_secs(secs));
            m.in_pause = 0;
            break 'answer Answer {
                status: 429,
                body: "{\"code\":-1003,\"msg\":\"Too many requests; current limit is exceeded.\"}"
                    .into(),
                retry_after: Some(secs),
            };
        }
        entry.1 += weight;
        match path.as_str() {
            "/api/v3/time" | "/fapi/v1/time" | "/dapi/v1/time" => Answer {
                status: 200,
                body: format!(
                    "{{\"serverTime\":{}}}",
                    wall + state.options.clock_offset_ms
                ),
                retry_after: None,
            },
            "/api/v3/klines" | "/fapi/v1/klines" | "/dapi/v1/klines" => {
                let symbols: &[&str] = match family {
                    "cm" => &["BTCUSD_PERP"],
                    _ => &["BTCUSDT"],
                };
                let Some(symbol) = query.get("symbol") else {
                    break 'answer error(
                        -1102,
                        "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
                    );
                };
                let Some(interval) = query.get("interval") else {
                    break 'answer error(
                        -1102,
                        "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.",
                    );
                };
                let mut intervals = vec![
                    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d",
                    "3d", "1w", "1M",
                ];
                if !futures {
                    intervals.push("1s");
                }
                if !intervals.contains(&interval.as_str()) {
                    break 'answer error(-1120, "Invalid interval.");
                }
                if !symbols.contains(&symbol.as_str()) {
                    break 'answer error(-1121, "Invalid symbol.");
                }
                if !(1..=limit_max).contains(&limit) {
                    break 'answer error(-1130, "Invalid limit.");
                }
                let start = query.get("startTime").and_then(|v| v.parse::<i64>().ok());
                let end = query.get("endTime").and_then(|v| v.parse::<i64>().ok());
                if let (Some(s), Some(e)) = (start, end) {
                    if e < s {
                        break 'answer error(-1023, "Start time is greater than end time.");
                    }
                    if family == "cm" && e - s > 200 * DAY_MS {
                        break 'answer error(
                            -1127,
                            "More than 200 days between startTime and endTime.",
                        );
                    }
                }
                let (lo, hi) = (start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX));
                for f in m.faults.iter_mut() {
                    if f.remaining > 0 && lo <= f.covering_ms && f.covering_ms <= hi {
                        f.remaining = f.remaining.saturating_sub(1);
                        break 'answer Answer {
                            status: f.status,
                            body: "{\"code\":-1001,\"msg\":\"Internal error; unable to process your request. Please try again.\"}"
                                .into(),
                            retry_after: None,
                        };
                    }
                }
                let limit = state
                    .options
                    .page_size
                    .map_or(limit, |p| limit.min(p as i64));
                let rows: Vec<&Row> = if interval != "1m" {
                    Vec::new()
                } else {
                    let range = state.rows.range(lo..=hi).map(|(_, r)| r);
                    let backward = family == "cm" || start.is_none();
                    if backward {
                        let mut v: Vec<&Row> = range.rev().take(limit as usize).collect();
                        v.reverse();
                        v
                    } else {
                        range.take(limit as usize).collect()
                    }
                };
                let mut body = String::with_capacity(rows.len() * 160 + 2);
                body.push('[');
                for (i, r) in rows.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(&r.json);
                }
                body.push(']');
                Answer {
                    status: 200,
                    body,
                    retry_after: None,
                }
            }
            "/api/v3/aggTrades" | "/fapi/v1/aggTrades" | "/dapi/v1/aggTrades" => {
                if !query.contains_key("symbol") {
                    break 'answer error(-1102, "Mandatory parameter 'symbol' was not sent.");
                }
                let limit = query
                    .get("limit")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(500);
                if !(1..=1000).contains(&limit) {
                    break 'answer error(-1130, "Invalid limit.");
                }
                let all = &state.options.agg_trades;
                let from_id = query.get("fromId").and_then(|v| v.parse::<u64>().ok());
                let start = query.get("startTime").and_then(|v| v.parse::<i64>().ok());
                let end = query.get("endTime").and_then(|v| v.parse::<i64>().ok());
                let picked: Vec<&AggRow> = match (from_id, start, end) {
                    (Some(id), None, None) => {
                        let i = all.partition_point(|t| t.id < id);
                        all[i..].iter().take(limit).collect()
                    }
                    (None, Some(s), Some(e)) if e >= s && e - s <= 3_600_000 => all
                        .iter()
                        .filter(|t| s <= t.time_ms && t.time_ms <= e)
                        .take(limit)
                        .collect(),
                    (None, Some(_), Some(_)) => {
                        break 'answer error(
                            -1127,
                            "More than 1 hours between startTime and endTime.",
                        );
                    }
                    _ => all.iter().rev().take(limit).rev().collect(),
                };
                let rows: Vec<String> = picked.iter().map(|t| t.json()).collect();
                Answer {
                    status: 200,
                    body: format!("[{}]", rows.join(",")),
                    retry_after: None,
                }
            }
            _ => Answer {
                status: 404,
                body: "{\"code\":-1000,\"msg\":\"Not found.\"}".into(),
                retry_after: None,
            },
        }
    };
    let used = m.weight.get(family).map_or(0, |e| e.1);
    m.log.push(ExRequest {
        host,
        at: now,
        path,
        query,
        status: answer.status,
        used,
        violation,
    });
    drop(m);
    let mut resp = hyper::Response::builder()
        .status(answer.status)
        .header("content-type", "application/json;charset=UTF-8")
        .header("x-mbx-used-weight-1m", used.to_string());
    if family == "spot" {
        resp = resp.header("x-mbx-used-weight", used.to_string());
    }
    if let Some(secs) = answer.retry_after {
        resp = resp.header("retry-after", secs.to_string());
    }
    resp.body(Full::new(Bytes::from(answer.body)))
        .expect("exchange: response")
}
