//! The request-weight governor of a [`RestDataClient`](super::RestDataClient): one per client,
//! shared by every window and every host, because Binance counts weight per IP.
//!
//! - Weight is counted per window of the exchange's clock (a wall-clock minute by default) and
//!   fed by `X-MBX-USED-WEIGHT-1M`: the count is the larger of what this client sent and what the
//!   exchange says was used (other processes on the same IP count too). A request whose weight
//!   would pass the limit waits for the next window, so the limit is not crossed and no 429 is
//!   needed to find it. Requests still in flight when a window turns over are counted in the new
//!   one as well, since the exchange may count them on either side.
//! - A 429 pauses every request to every host until its `Retry-After` has passed.
//! - A 418 is a ban: every call fails at once with [`MarketError::Banned`] until it ends, and
//!   nothing is sent.
//!
//! Time is tokio's clock (so tests can pause it); window boundaries are wall-clock instants
//! mapped onto it once, when the governor is made.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::error::MarketError;
use super::time::Timestamp;
use crate::hook::{Admission, After, Before, Hook};

/// Waits for a new window end this long after the boundary, for clock skew.
const ROLLOVER_GRACE: Duration = Duration::from_millis(100);
/// A ban without `Retry-After` lasts this long (Binance's shortest ban).
const DEFAULT_BAN: Duration = Duration::from_secs(120);

#[derive(Debug)]
pub(crate) struct Governor {
    limit: u32,
    window_us: i64,
    anchor: Instant,
    anchor_wall_us: i64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    window: i64,
    used: u32,
    in_flight: u32,
    pause_until: Option<Instant>,
    ban_until: Option<Instant>,
}

/// One admitted request's weight. Dropping it without [`Ticket::finish`] (a transport error, a
/// canceled task) takes it out of the in-flight count.
#[derive(Debug)]
pub(crate) struct Ticket {
    gov: Arc<Governor>,
    weight: u32,
    window: i64,
    done: bool,
}

impl Governor {
    pub(crate) fn new(limit: u32, window: Duration) -> Arc<Self> {
        let window_us = i64::try_from(window.as_micros()).unwrap_or(i64::MAX).max(1);
        let anchor = Instant::now();
        let anchor_wall_us = Timestamp::from_system_time(SystemTime::now()).as_micros();
        let gov = Governor {
            limit: limit.max(1),
            window_us,
            anchor,
            anchor_wall_us,
            state: Mutex::new(State {
                window: anchor_wall_us.div_euclid(window_us),
                used: 0,
                in_flight: 0,
                pause_until: None,
                ban_until: None,
            }),
        };
        Arc::new(gov)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wall_us(&self, now: Instant) -> i64 {
        let since = now.saturating_duration_since(self.anchor).as_micros();
        self.anchor_wall_us
            .saturating_add(i64::try_from(since).unwrap_or(i64::MAX))
    }

    fn window_of(&self, now: Instant) -> i64 {
        self.wall_us(now).div_euclid(self.window_us)
    }

    fn window_start(&self, window: i64) -> Instant {
        let offset = window.saturating_mul(self.window_us) - self.anchor_wall_us;
        self.anchor + Duration::from_micros(offset.max(0) as u64)
    }

    fn roll(&self, s: &mut State, now: Instant) {
        let w = self.window_of(now);
        if w > s.window {
            s.window = w;
            s.used = s.in_flight;
        }
    }

    fn banned(&self, s: &mut State, now: Instant) -> Option<MarketError> {
        match s.ban_until {
            Some(until) if now < until => {
                let left = until - now;
                Some(MarketError::Banned {
                    until: Timestamp::now() + left,
                    retry_after: left,
                })
            }
            Some(_) => {
                s.ban_until = None;
                None
            }
            None => None,
        }
    }

    /// Fails at once while banned.
    pub(crate) fn check_ban(&self) -> Result<(), MarketError> {
        let mut s = self.lock();
        match self.banned(&mut s, Instant::now()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits until `weight` may be sent: past any 429 pause, within the window's budget. Fails
    /// at once while banned.
    pub(crate) async fn acquire(self: &Arc<Self>, weight: u32) -> Result<Ticket, MarketError> {
        loop {
            // Asked with `take`, a wait that ends without an error ends with a ticket.
            if let Some(ticket) = self.wait(weight, true).await? {
                return Ok(ticket);
            }
        }
    }

    /// Waits until `weight` could be sent, without counting it: a request waits here, out of
    /// its own deadline, before its attempts are admitted ([`Admit`]).
    pub(crate) async fn ready(self: &Arc<Self>, weight: u32) -> Result<(), MarketError> {
        self.wait(weight, false).await.map(drop)
    }

    async fn wait(
        self: &Arc<Self>,
        weight: u32,
        take: bool,
    ) -> Result<Option<Ticket>, MarketError> {
        loop {
            let wake = {
                let mut s = self.lock();
                let now = Instant::now();
                if let Some(e) = self.banned(&mut s, now) {
                    return Err(e);
                }
                match s.pause_until {
                    Some(until) if now < until => until,
                    _ => {
                        s.pause_until = None;
                        self.roll(&mut s, now);
                        if s.used == 0 || s.used.saturating_add(weight) <= self.limit {
                            if !take {
                                return Ok(None);
                            }
                            s.used = s.used.saturating_add(weight);
                            s.in_flight = s.in_flight.saturating_add(weight);
                            return Ok(Some(Ticket {
                                gov: self.clone(),
                                weight,
                                window: s.window,
                                done: false,
                            }));
                        }
                        self.window_start(s.window + 1) + ROLLOVER_GRACE
                    }
                }
            };
            tokio::time::sleep_until(wake).await;
        }
    }

    /// A 429: nothing is sent to any host until `retry_after` has passed (the next window when
    /// the exchange gave none). `Retry-After` is the exchange's word on when its count resets,
    /// so it wins over this client's own count.
    pub(crate) fn pause(&self, retry_after: Option<Duration>) {
        let mut s = self.lock();
        let now = Instant::now();
        self.roll(&mut s, now);
        let until = match retry_after {
            Some(d) => now + d,
            None => self.window_start(s.window + 1) + ROLLOVER_GRACE,
        };
        s.pause_until = Some(s.pause_until.map_or(until, |p| p.max(until)));
    }

    /// A 418: banned for `retry_after` (two minutes when the exchange gave none). Returns the
    /// error to report.
    pub(crate) fn ban(&self, retry_after: Option<Duration>) -> MarketError {
        let mut s = self.lock();
        let now = Instant::now();
        let until = now + retry_after.unwrap_or(DEFAULT_BAN);
        s.ban_until = Some(s.ban_until.map_or(until, |b| b.max(until)));
        self.banned(&mut s, now)
            .expect("a ban that was just set is in force")
    }

    /// The weight counted in the current window.
    pub(crate) fn used(&self) -> u32 {
        let mut s = self.lock();
        self.roll(&mut s, Instant::now());
        s.used
    }

    /// The configured limit per window.
    pub(crate) fn limit(&self) -> u32 {
        self.limit
    }
}

impl Ticket {
    /// The request got an answer; `used` is the exchange's `X-MBX-USED-WEIGHT-1M`.
    pub(crate) fn finish(mut self, used: Option<u32>) {
        self.done = true;
        let gov = self.gov.clone();
        let mut s = gov.lock();
        s.in_flight = s.in_flight.saturating_sub(self.weight);
        gov.roll(&mut s, Instant::now());
        // Only a count from the window the request was sent in is trusted: across a turnover
        // the exchange may have counted it in either window.
        if let Some(used) = used {
            if s.window == self.window {
                s.used = s.used.max(used);
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            let mut s = self.gov.lock();
            s.in_flight = s.in_flight.saturating_sub(self.weight);
        }
    }
}

/// A request's weight, carried in its extensions for [`Admit`] (1 when it has none).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Weight(pub(crate) u32);

/// The ticket of an admitted attempt, carried in its request until the attempt ends.
#[derive(Clone, Debug)]
struct Admitted(Arc<Mutex<Option<Ticket>>>);

/// The governor on the fleet's per-attempt hook: every attempt, the first and every failover,
/// waits until its weight fits and is counted; after it, the exchange's used weight is read, a
/// 429 pauses every request to every host and a 418 bans. While banned an attempt is refused
/// ([`ErrorKind::Refused`](crate::ErrorKind::Refused)) and nothing is sent.
#[derive(Debug)]
pub(crate) struct Admit(pub(crate) Arc<Governor>);

impl Hook for Admit {
    fn before<'a>(&'a self, attempt: &'a mut Before<'_>) -> Admission<'a> {
        Box::pin(async move {
            let extensions = attempt.request().extensions();
            let weight = extensions.get::<Weight>().map_or(1, |w| w.0);
            let ticket = self
                .0
                .acquire(weight)
                .await
                .map_err(|e| crate::Error::refused(e.to_string()))?;
            attempt
                .request_mut()
                .extensions_mut()
                .insert(Admitted(Arc::new(Mutex::new(Some(ticket)))));
            Ok(())
        })
    }

    fn after(&self, attempt: &After<'_>) {
        let ticket = attempt
            .request()
            .extensions()
            .get::<Admitted>()
            .and_then(|a| a.0.lock().unwrap_or_else(|p| p.into_inner()).take());
        let resp = attempt.outcome().ok();
        if let Some(ticket) = ticket {
            // Dropped unfinished when there is no answer: out of the in-flight count.
            if let Some(resp) = resp {
                ticket.finish(used_weight(resp));
            }
        }
        match resp.map(|r| (r.status().as_u16(), r.retry_after())) {
            Some((429, after)) => self.0.pause(after),
            Some((418, after)) => {
                self.0.ban(after);
            }
            _ => {}
        }
    }
}

/// The exchange's `X-MBX-USED-WEIGHT-1M` of `resp`.
fn used_weight(resp: &crate::Response) -> Option<u32> {
    resp.headers()
        .get(super::USED_WEIGHT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u32>().ok())
}
