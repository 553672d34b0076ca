//! [`RestDataClient`]: Binance-compatible klines and server time over REST, on a fleet of hosts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinSet;

use super::error::MarketError;
use super::governor::{Admit, Governor, Weight};
use super::interval::Interval;
use super::kline::{Kline, parse_json};
use super::time::{Timestamp, US_PER_DAY};
use super::{Market, Progress, ProgressFn, Window, check_symbol};
use crate::fleet::{BreakerConfig, BudgetConfig, Classifier, RetryPolicy};
use crate::{BackendKind, Client, Config, ErrorKind, FleetBuilder, Member, Strategy};

/// The exchange's used-weight header.
pub const USED_WEIGHT_HEADER: &str = "x-mbx-used-weight-1m";

/// Klines and server time from a Binance-compatible REST API. Cheap to clone: clones share the
/// fleet, the weight governor and the 429/418 state.
///
/// ## Hosts, failover, retries
///
/// The client is a [`Strategy::Failover`] fleet over the configured base URLs: a transport error
/// or a 5xx fails over to the next host at once (no backoff between hosts: another host is
/// another server); when every host has failed, the window is retried after a full-jitter
/// exponential backoff, up to [`RestDataClientBuilder::attempts`] rounds. A 4xx never fails over
/// and is never retried: the exchange's error JSON becomes [`MarketError::Exchange`]. Hedging is
/// never used: every request here spends request weight.
///
/// Every attempt, failovers included, is admitted by the weight governor (on the fleet's
/// per-attempt [`Hook`](crate::Hook)): its weight counted, a full window waited out, a 429
/// pausing every request to every host at once and a 418 refusing everything until it ends. A
/// request waits for its turn before its deadline starts, so a pause does not use it up.
///
/// ## Pagination
///
/// A range is cut into windows that each hold at most `limit` candles (`limit × interval` long,
/// calendar months for `1M`) and, on COIN-M, span at most 200 days. `startTime` and `endTime`
/// are both inclusive at the exchange, so a window `[a, b)` is sent as `startTime=a` and
/// `endTime=b-1ms`: consecutive windows neither overlap nor leave a hole. Because no window holds
/// more than `limit` candles, the answer is the whole window whether the exchange pages forward
/// (spot and USD-M: the first `limit` from `startTime`) or backward (COIN-M: the most recent
/// `limit` before `endTime`). Should a page come back without reaching the window's end (full,
/// or shorter than asked: a proxy, a mirror or another venue may page smaller), the rest is
/// fetched in the exchange's own direction, until the window's end or an empty page. Every row
/// must lie inside what was asked (so a page that overlaps the one before fails), in strictly
/// increasing open time, or the call fails: rows are never dropped silently.
#[derive(Clone, Debug)]
pub struct RestDataClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    market: Market,
    governor: Arc<Governor>,
    limit: u32,
    concurrency: usize,
    attempts: u32,
    backoff: (Duration, Duration),
    max_rate_limit_waits: u32,
    rng: AtomicU64,
}

/// Builds a [`RestDataClient`]; see [`RestDataClient::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RestDataClientBuilder {
    market: Market,
    base_urls: Option<Vec<String>>,
    members: Vec<Member>,
    config: Config,
    weight_limit: Option<u32>,
    weight_window: Duration,
    limit: Option<u32>,
    concurrency: usize,
    attempts: u32,
    backoff: (Duration, Duration),
    breaker: BreakerConfig,
    max_rate_limit_waits: u32,
}

impl RestDataClientBuilder {
    /// Replaces the base URLs, in failover order. Defaults to [`Market::default_base_urls`].
    pub fn base_urls<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.base_urls = Some(urls.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a base URL; the first call replaces the defaults.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_urls.get_or_insert_with(Vec::new).push(url.into());
        self
    }

    /// Adds a fleet member (a backend and a base URL) instead of base URLs: for a mock backend
    /// in tests, or a member with its own backend. When members are given, base URLs are not
    /// used.
    pub fn member(mut self, member: Member) -> Self {
        self.members.push(member);
        self
    }

    /// The HTTP configuration (backend, timeouts, TLS, proxy). Defaults to [`Config::default`].
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The backend of the members built from base URLs.
    pub fn backend(mut self, kind: BackendKind) -> Self {
        self.config = self.config.backend(kind);
        self
    }

    /// The request-weight budget per window. Defaults to the market's, 6000 spot, 2400 futures.
    pub fn weight_limit(mut self, limit: u32) -> Self {
        self.weight_limit = Some(limit);
        self
    }

    /// The window the weight budget counts over; windows start at multiples of it on the wall
    /// clock. Defaults to one minute, as Binance counts `X-MBX-USED-WEIGHT-1M`.
    pub fn weight_window(mut self, window: Duration) -> Self {
        self.weight_window = window;
        self
    }

    /// Candles per request. Defaults to, and at most, 1000 spot, 1500 futures.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Windows in flight at once. Defaults to 4, at least 1.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Rounds over the hosts per window before the window fails. Defaults to 3, at least 1.
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = n.max(1);
        self
    }

    /// Full-jitter exponential backoff between rounds. Defaults to 200 ms doubling up to 5 s.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff = (base, cap.max(base));
        self
    }

    /// The circuit breaker of each host. Defaults to [`BreakerConfig::default`].
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// How many 429 pauses one window waits out before it fails with
    /// [`MarketError::RateLimited`]. Defaults to 5.
    pub fn max_rate_limit_waits(mut self, n: u32) -> Self {
        self.max_rate_limit_waits = n;
        self
    }

    /// Builds the fleet and the client.
    pub fn build(self) -> Result<RestDataClient, MarketError> {
        let max = self.market.max_limit();
        let limit = self.limit.unwrap_or(max);
        if limit == 0 || limit > max {
            return Err(MarketError::invalid_input(format!(
                "limit {limit} is outside 1..={max} for {}",
                self.market
            )));
        }
        let members: Vec<Member> = if self.members.is_empty() {
            let urls = self.base_urls.unwrap_or_else(|| {
                self.market
                    .default_base_urls()
                    .iter()
                    .map(|u| (*u).to_owned())
                    .collect()
            });
            if urls.is_empty() {
                return Err(MarketError::invalid_input("no base URL"));
            }
            urls.into_iter()
                .map(|u| Member::new(self.config.backend).base_url(u))
                .collect()
        } else {
            self.members
        };
        let hosts = members.len() as u32;
        let weight_limit = self
            .weight_limit
            .unwrap_or_else(|| self.market.default_weight_limit());
        let governor = Governor::new(weight_limit, self.weight_window);
        let client = FleetBuilder::new(&self.config)
            .hook(Admit(governor.clone()))
            .members(members)
            .strategy(Strategy::Failover)
            .retry(
                RetryPolicy::default()
                    .max_attempts(hosts.clamp(1, crate::fleet::MAX_ATTEMPTS))
                    .backoff(Duration::ZERO, Duration::ZERO)
                    .budget(BudgetConfig::unlimited()),
            )
            .breaker(self.breaker)
            // Every 5xx fails over (the default counts 502, 503 and 504 only).
            .classifier(Classifier::default().failure_statuses(500..=599))
            .build()
            .map_err(|e| MarketError::Http {
                window: None,
                what: "building the REST fleet".to_owned(),
                source: e,
            })?;
        Ok(RestDataClient {
            inner: Arc::new(Inner {
                client,
                market: self.market,
                governor,
                limit,
                concurrency: self.concurrency,
                attempts: self.attempts,
                backoff: self.backoff,
                max_rate_limit_waits: self.max_rate_limit_waits,
                rng: AtomicU64::new(seed()),
            }),
        })
    }
}

fn seed() -> u64 {
    let t = Timestamp::now().as_micros() as u64;
    (t ^ 0x9E37_79B9_7F4A_7C15).max(1)
}

impl RestDataClient {
    /// A builder for `market` with its default hosts, limits and weight budget.
    pub fn builder(market: Market) -> RestDataClientBuilder {
        RestDataClientBuilder {
            market,
            base_urls: None,
            members: Vec::new(),
            config: Config::default(),
            weight_limit: None,
            weight_window: Duration::from_secs(60),
            limit: None,
            concurrency: 4,
            attempts: 3,
            backoff: (Duration::from_millis(200), Duration::from_secs(5)),
            breaker: BreakerConfig::default(),
            max_rate_limit_waits: 5,
        }
    }

    /// A client for `market` on `base_urls` with every other setting at its default.
    pub fn new<I, S>(market: Market, base_urls: I) -> Result<Self, MarketError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RestDataClient::builder(market).base_urls(base_urls).build()
    }

    /// The market.
    pub fn market(&self) -> Market {
        self.inner.market
    }

    /// Candles per request.
    pub fn limit(&self) -> u32 {
        self.inner.limit
    }

    /// The weight counted in the current window (sent by this client, or reported higher by the
    /// exchange), and the limit.
    pub fn weight(&self) -> (u32, u32) {
        (self.inner.governor.used(), self.inner.governor.limit())
    }

    /// Per-host counters and breaker states of the fleet.
    pub fn stats(&self) -> Vec<crate::fleet::MemberStats> {
        self.inner.client.stats()
    }

    /// The exchange's clock (`/api/v3/time`, `/fapi/v1/time`, `/dapi/v1/time`; weight 1).
    pub async fn server_time(&self) -> Result<Timestamp, MarketError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Time {
            server_time: i64,
        }
        let path = self.inner.market.time_path();
        let body = self.get(path, &[], 1, None).await?;
        let t: Time = serde_json::from_slice(&body)
            .map_err(|e| MarketError::data(path, format!("server time JSON: {e}")))?;
        Ok(Timestamp::from_exchange(t.server_time))
    }

    /// `GET path?query` of any endpoint of the exchange's REST API (`/api/v3/exchangeInfo`,
    /// `/api/v3/depth`, `/fapi/v1/fundingRate`...), through the same weight governor, 429 pause,
    /// 418 ban, failover and retry rounds as klines; the body as it came. `weight`: the
    /// request's weight, or `None` to look it up among Binance's published weights of the
    /// market-data endpoints (an endpoint not listed is refused with
    /// [`MarketError::InvalidInput`]: give its weight).
    ///
    /// ```no_run
    /// # async fn run(rest: httpfleet::market::RestDataClient) -> Result<(), httpfleet::market::MarketError> {
    /// let info = rest.get_weighted("/api/v3/exchangeInfo", &[("symbol", "BTCUSDT".into())], None).await?;
    /// let book = rest.get_weighted("/api/v3/depth", &[("symbol", "BTCUSDT".into()), ("limit", "500".into())], Some(25)).await?;
    /// # let _ = (info, book); Ok(()) }
    /// ```
    pub async fn get_weighted(
        &self,
        path: &str,
        query: &[(&str, String)],
        weight: Option<u32>,
    ) -> Result<Bytes, MarketError> {
        if !path.starts_with('/') || path.contains("://") || path.contains('?') {
            return Err(MarketError::invalid_input(format!(
                "{path:?} is not a path of the API (`/api/v3/...`, query apart)"
            )));
        }
        let market = self.inner.market;
        let weight = match weight {
            Some(w) => w,
            None => super::weights::weight_of(market, path, query).ok_or_else(|| {
                MarketError::invalid_input(format!(
                    "no known weight for {path} on {market}: give it"
                ))
            })?,
        };
        self.get(path, query, weight, None).await
    }

    /// The open time of the symbol's first candle at the exchange (`None` when it has none, or on
    /// COIN-M, which answers only the most recent candles): one request, `startTime=0&limit=1`.
    pub async fn first_open_time(
        &self,
        symbol: &str,
        interval: Interval,
    ) -> Result<Option<Timestamp>, MarketError> {
        check_symbol(symbol)?;
        let market = self.inner.market;
        market.check_interval(interval)?;
        if market.pages_backward() {
            return Ok(None);
        }
        let query = [
            ("symbol", symbol.to_owned()),
            ("interval", interval.as_str().to_owned()),
            ("startTime", "0".to_owned()),
            ("limit", "1".to_owned()),
        ];
        let path = market.klines_path();
        let body = self
            .get(path, &query, market.klines_weight(1), None)
            .await?;
        let rows = parse_json(&body, &format_args!("the first candle of {symbol}"))?;
        Ok(rows.first().map(|k| k.open_time))
    }

    /// The windows [`RestDataClient::klines`] sends for `[start, end)`, in order.
    pub fn windows(&self, interval: Interval, start: Timestamp, end: Timestamp) -> Vec<Window> {
        plan_windows(self.inner.market, interval, start, end, self.inner.limit)
    }

    /// Every candle of `symbol` whose open time is in `[start, end)`, in open-time order, with no
    /// duplicate and no hole that the exchange does not have. Windows run `concurrency` at a
    /// time; if one still fails after its retries the whole call fails with an error that names
    /// it ([`MarketError::window`]).
    pub async fn klines(
        &self,
        symbol: &str,
        interval: Interval,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Kline>, MarketError> {
        self.klines_with_progress(symbol, interval, start, end, None)
            .await
    }

    pub(crate) async fn klines_with_progress(
        &self,
        symbol: &str,
        interval: Interval,
        start: Timestamp,
        end: Timestamp,
        progress: Option<&ProgressFn>,
    ) -> Result<Vec<Kline>, MarketError> {
        check_symbol(symbol)?;
        self.inner.market.check_interval(interval)?;
        if end <= start {
            return Ok(Vec::new());
        }
        self.inner.governor.check_ban()?;
        let windows = self.windows(interval, start, end);
        let n = windows.len();
        if let Some(p) = progress {
            p(Progress::Planned { steps: n });
        }
        let mut parts: Vec<Option<Vec<Kline>>> = vec![None; n];
        let mut set: JoinSet<(usize, Result<Vec<Kline>, MarketError>)> = JoinSet::new();
        let symbol: Arc<str> = symbol.into();
        let mut next = 0;
        let mut done = 0;
        while done < n {
            while next < n && set.len() < self.inner.concurrency {
                let (this, symbol, w, i) = (self.clone(), symbol.clone(), windows[next], next);
                set.spawn(async move { (i, this.window(&symbol, interval, w).await) });
                next += 1;
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            let (i, result) = joined.map_err(|e| MarketError::Data {
                what: "a klines window task".to_owned(),
                detail: e.to_string(),
            })?;
            // The first failure ends the call; dropping the set cancels the other windows.
            let rows = result?;
            if let Some(p) = progress {
                p(Progress::RestWindow { rows: rows.len() });
            }
            parts[i] = Some(rows);
            done += 1;
        }
        let total = parts.iter().flatten().map(Vec::len).sum();
        let mut out = Vec::with_capacity(total);
        for part in parts {
            out.extend(part.expect("every window finished"));
        }
        Ok(out)
    }

    /// One window, continued in the exchange's direction until its end or an empty page.
    async fn window(
        &self,
        symbol: &str,
        interval: Interval,
        w: Window,
    ) -> Result<Vec<Kline>, MarketError> {
        let market = self.inner.market;
        let limit = self.inner.limit;
        let mut chunks: Vec<Vec<Kline>> = Vec::new();
        let mut cur = w;
        // A window holds at most `limit` candles, so one request is the rule. A page shorter
        // than asked is not the end (a proxy, a mirror or another venue may page smaller):
        // paging goes on past the last row until the window's end or an empty page.
        for _ in 0..64 {
            let query = [
                ("symbol", symbol.to_owned()),
                ("interval", interval.as_str().to_owned()),
                ("startTime", cur.start.as_millis_ceil().to_string()),
                ("endTime", (cur.end.as_millis_ceil() - 1).to_string()),
                ("limit", limit.to_string()),
            ];
            let body = self
                .get(
                    market.klines_path(),
                    &query,
                    market.klines_weight(limit),
                    Some(w),
                )
                .await?;
            let rows = parse_json(&body, &format_args!("window {w}"))?;
            check_rows(&rows, cur, w)?;
            let (first, last) = match (rows.first(), rows.last()) {
                (Some(f), Some(l)) => (f.open_time, l.open_time),
                _ => break,
            };
            chunks.push(rows);
            if market.pages_backward() {
                if first <= cur.start {
                    break;
                }
                cur.end = first;
            } else {
                if interval.next(last) >= cur.end {
                    break;
                }
                cur.start = last.add_micros(1);
            }
        }
        if market.pages_backward() {
            chunks.reverse();
        }
        Ok(chunks.into_iter().flatten().collect())
    }

    /// One weighted GET through the governor, with failover (in the fleet), rounds with backoff,
    /// 429 pauses and 418 bans.
    pub(super) async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        weight: u32,
        window: Option<Window>,
    ) -> Result<Bytes, MarketError> {
        let inner = &self.inner;
        let mut failures = 0u32;
        let mut waits = 0u32;
        loop {
            // Every attempt of the fleet, failovers included, is admitted by the governor
            // (`Admit`, its per-attempt hook). The request waits for its turn here first, so
            // that a pause or a full window is not spent out of its own deadline.
            inner.governor.ready(weight).await?;
            let sent = inner
                .client
                .get(path)
                .query(query)
                .extension(Weight(weight))
                .send()
                .await;
            let resp = match sent {
                Ok(resp) => resp,
                Err(e) => {
                    // Refused by the hook: a ban that began while the request was on its way.
                    inner.governor.check_ban()?;
                    failures += 1;
                    if !transient(e.kind()) || failures >= inner.attempts {
                        return Err(MarketError::Http {
                            window,
                            what: path.to_owned(),
                            source: e,
                        });
                    }
                    tokio::time::sleep(self.backoff(failures, None)).await;
                    continue;
                }
            };
            let status = resp.status().as_u16();
            match status {
                200..=299 => match resp.bytes().await {
                    Ok(body) => return Ok(body),
                    Err(e) => {
                        failures += 1;
                        if !transient(e.kind()) || failures >= inner.attempts {
                            return Err(MarketError::Http {
                                window,
                                what: path.to_owned(),
                                source: e,
                            });
                        }
                        tokio::time::sleep(self.backoff(failures, None)).await;
                    }
                },
                429 => {
                    // The hook paused every request; this one waits its turn again.
                    let retry_after = resp.retry_after();
                    waits += 1;
                    if waits > inner.max_rate_limit_waits {
                        return Err(MarketError::RateLimited {
                            window,
                            retry_after,
                        });
                    }
                    tracing::debug!(path, ?retry_after, "429: every request paused");
                }
                418 => return Err(inner.governor.ban(resp.retry_after())),
                500..=599 if failures + 1 < inner.attempts => {
                    failures += 1;
                    let wait = self.backoff(failures, resp.retry_after());
                    tracing::debug!(path, status, ?wait, "every host failed; next round");
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    let body = resp.bytes().await.unwrap_or_default();
                    return Err(status_error(path, status, &body, window));
                }
            }
        }
    }

    fn backoff(&self, round: u32, retry_after: Option<Duration>) -> Duration {
        let (base, cap) = self.inner.backoff;
        if let Some(after) = retry_after {
            return after.min(cap);
        }
        let ceiling = base
            .saturating_mul(
                1u32.checked_shl(round.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(cap);
        // xorshift64*, shared; full jitter.
        let mut x = self.inner.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.inner.rng.store(x, Ordering::Relaxed);
        let unit = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        ceiling.mul_f64(unit)
    }
}

/// Transport failures worth another round.
pub(super) fn transient(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Dns
            | ErrorKind::Connect
            | ErrorKind::Timeout(_)
            | ErrorKind::Body
            | ErrorKind::Protocol
            | ErrorKind::Canceled
    )
}

/// The error for a non-success status: the exchange's `{"code", "msg"}` when the body is that.
fn status_error(path: &str, status: u16, body: &[u8], window: Option<Window>) -> MarketError {
    #[derive(serde::Deserialize)]
    struct ExchangeError {
        code: i64,
        msg: String,
    }
    match serde_json::from_slice::<ExchangeError>(body) {
        Ok(e) => MarketError::Exchange {
            window,
            status,
            code: e.code,
            msg: e.msg,
        },
        Err(_) => MarketError::Status {
            window,
            what: path.to_owned(),
            status,
            body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        },
    }
}

/// Rows must lie in the window asked for, in strictly increasing open time.
fn check_rows(rows: &[Kline], asked: Window, w: Window) -> Result<(), MarketError> {
    let mut prev: Option<Timestamp> = None;
    for (i, k) in rows.iter().enumerate() {
        if k.open_time < asked.start || k.open_time >= asked.end {
            return Err(MarketError::data(
                format_args!("window {w}"),
                format!("row {i} opens at {} outside the window", k.open_time),
            ));
        }
        if prev.is_some_and(|p| k.open_time <= p) {
            return Err(MarketError::data(
                format_args!("window {w}"),
                format!("row {i} opens at {}, not after the row before", k.open_time),
            ));
        }
        prev = Some(k.open_time);
    }
    Ok(())
}

/// Cuts `[start, end)` into windows of at most `limit` candles (and at most the market's longest
/// lookup span), contiguous and disjoint.
pub(crate) fn plan_windows(
    market: Market,
    interval: Interval,
    start: Timestamp,
    end: Timestamp,
    limit: u32,
) -> Vec<Window> {
    let mut out = Vec::new();
    let max_span = market.max_lookup_days().map(|d| d * US_PER_DAY);
    let mut s = start;
    while s < end {
        let e = match interval.fixed_micros() {
            Some(step) => {
                let mut span = step.saturating_mul(i64::from(limit));
                if let Some(max) = max_span {
                    span = span.min(max);
                }
                s.add_micros(span)
            }
            None => {
                // Months: up to `limit` month starts from the first one at or after `s`.
                let first = interval.ceil(s);
                let mut n = i64::from(limit);
                let mut e = first.add_months(n);
                while let Some(max) = max_span {
                    if e.as_micros() - s.as_micros() <= max || n <= 1 {
                        break;
                    }
                    n -= 1;
                    e = first.add_months(n);
                }
                e
            }
        };
        let e = e.min(end);
        out.push(Window { start: s, end: e });
        s = e;
    }
    out
}
