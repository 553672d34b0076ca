//! [`Plan`]: the per-request state machine that picks members for a [`Strategy`]. Untried
//! healthy members come first, in the strategy's order; when every member has been tried, retries
//! go round again. A member whose breaker refuses is skipped.

use super::breaker::Permit;
use super::{Fleet, Strategy};

/// Where a request is in its walk over the members.
#[derive(Clone, Copy)]
pub(crate) struct Plan {
    /// The member the walk starts from.
    start: usize,
    /// Bit `i` set: member `i` was tried by this request (fleets of up to 64 members track
    /// exactly; beyond, members past 63 count as untried).
    tried: u64,
}

fn bit(i: usize) -> u64 {
    if i < 64 { 1 << i } else { 0 }
}

impl Plan {
    pub(crate) fn new(fleet: &Fleet) -> Self {
        let n = fleet.slots.len();
        let start = match fleet.strategy {
            Strategy::Single | Strategy::Failover | Strategy::Hedged { .. } => 0,
            Strategy::RoundRobin => {
                fleet
                    .next
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    % n
            }
            Strategy::Random { .. } => fleet.rng.below(n),
            // The power of two choices draws its own pair, and the walk then starts from the
            // first of them (see `Plan::p2c`).
            Strategy::Adaptive { .. } => 0,
        };
        Plan { start, tried: 0 }
    }

    /// The member for the next attempt and its breaker permit, or `None` when every breaker
    /// refuses.
    pub(crate) fn next<'f>(&mut self, fleet: &'f Fleet) -> Option<(usize, Permit<'f>)> {
        let pick = match fleet.strategy {
            Strategy::Single => self.acquire(fleet, 0),
            Strategy::Adaptive { .. } => self
                .p2c(fleet)
                .or_else(|| self.in_order(fleet, true))
                .or_else(|| self.in_order(fleet, false)),
            _ => self
                .in_order(fleet, true)
                .or_else(|| self.in_order(fleet, false)),
        };
        if let Some((i, _)) = &pick {
            self.tried |= bit(*i);
        }
        pick
    }

    /// The strategy's choice for a request's first attempt, before any breaker is asked (the
    /// lower load of a pair for the adaptive strategy; see `Plan::p2c`).
    #[inline(always)]
    pub(crate) fn choice(&mut self, fleet: &Fleet) -> usize {
        match fleet.strategy {
            // Two members are the pair: no draw.
            Strategy::Adaptive { .. } if fleet.slots.len() == 2 => lower_load(fleet, 0, 1)[0],
            Strategy::Adaptive { .. } if fleet.slots.len() > 2 => {
                let (a, b) = fleet.rng.pair_below(fleet.slots.len());
                self.start = a;
                lower_load(fleet, a, b)[0]
            }
            _ => self.start,
        }
    }

    /// Member `slot` takes the attempt.
    pub(crate) fn take(&mut self, slot: usize) {
        self.tried |= bit(slot);
    }

    /// The member for a request's first attempt, `choice` the strategy's ([`Plan::choice`]):
    /// it, if its breaker admits it, else [`Plan::next`].
    pub(crate) fn first<'f>(
        &mut self,
        fleet: &'f Fleet,
        choice: usize,
    ) -> Option<(usize, Permit<'f>)> {
        match self.acquire(fleet, choice) {
            Some(pick) => {
                self.take(choice);
                Some(pick)
            }
            None => self.next(fleet),
        }
    }

    /// A member for a hedge: an untried healthy one only.
    pub(crate) fn hedge<'f>(&mut self, fleet: &'f Fleet) -> Option<(usize, Permit<'f>)> {
        let pick = self.in_order(fleet, true);
        if let Some((i, _)) = &pick {
            self.tried |= bit(*i);
        }
        pick
    }

    fn acquire<'f>(&self, fleet: &'f Fleet, i: usize) -> Option<(usize, Permit<'f>)> {
        fleet.slots[i].breaker.try_acquire().map(|p| (i, p))
    }

    /// The first member from `start` on whose breaker admits it (untried ones only if asked).
    fn in_order<'f>(&self, fleet: &'f Fleet, untried: bool) -> Option<(usize, Permit<'f>)> {
        let n = fleet.slots.len();
        let mut i = self.start;
        for _ in 0..n {
            if !untried || self.tried & bit(i) == 0 {
                if let Some(pick) = self.acquire(fleet, i) {
                    return Some(pick);
                }
            }
            i = if i + 1 == n { 0 } else { i + 1 };
        }
        None
    }

    /// Power of two choices among untried members: the lower peak-EWMA load of two random ones.
    /// The pair is drawn from one random number, and the walk goes on from its first member.
    fn p2c<'f>(&mut self, fleet: &'f Fleet) -> Option<(usize, Permit<'f>)> {
        let n = fleet.slots.len();
        if n == 1 {
            return None;
        }
        let (a, b) = fleet.rng.pair_below(n);
        self.start = a;
        for i in lower_load(fleet, a, b) {
            if self.tried & bit(i) == 0 {
                if let Some(pick) = self.acquire(fleet, i) {
                    return Some(pick);
                }
            }
        }
        None
    }
}

/// Members `a` and `b`, the one with the lower peak-EWMA load first; on a tie, the lower index.
fn lower_load(fleet: &Fleet, a: usize, b: usize) -> [usize; 2] {
    let (load_a, load_b) = (fleet.slots[a].ewma.load(), fleet.slots[b].ewma.load());
    if load_b < load_a || (load_b == load_a && b < a) {
        [b, a]
    } else {
        [a, b]
    }
}
