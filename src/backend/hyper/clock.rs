//! When each phase of opening a hyper connection ended: a [`Clock`] made as the connector
//! starts, marked by the resolver (lookup done), the TCP layer (connected) and the outer
//! connector (TLS done), then carried on the connection (`Connected::extra`) to every response
//! over it. A response reports the phases only when its request was sent before the connection
//! began, that is when the request waited for it.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::response::Phases;

tokio::task_local! {
    /// The clock of the connection being opened, for the resolver inside hyper's connector.
    static OPENING: Clock;
}

/// The marks of one connection.
#[derive(Clone, Debug)]
pub(super) struct Clock(Arc<Marks>);

#[derive(Debug)]
struct Marks {
    start: Instant,
    looked_up: OnceLock<Instant>,
    connected: OnceLock<Instant>,
    secured: OnceLock<Instant>,
}

impl Clock {
    /// A clock started now.
    pub(super) fn start() -> Clock {
        Clock(Arc::new(Marks {
            start: Instant::now(),
            looked_up: OnceLock::new(),
            connected: OnceLock::new(),
            secured: OnceLock::new(),
        }))
    }

    /// Runs `opening` (hyper's TCP connector) with this clock for the resolver to mark.
    pub(super) fn around<F: Future>(&self, opening: F) -> impl Future<Output = F::Output> {
        OPENING.scope(self.clone(), opening)
    }

    /// Marks the end of a lookup on the clock of the connection being opened, if any.
    pub(super) fn looked_up() {
        let _ = OPENING.try_with(|c| c.0.looked_up.set(Instant::now()));
    }

    /// Marks the TCP connection (through a proxy: ready to carry requests) as open.
    pub(super) fn connected(&self) {
        let _ = self.0.connected.set(Instant::now());
    }

    /// Marks the TLS handshake as done.
    pub(super) fn secured(&self) {
        let _ = self.0.secured.set(Instant::now());
    }

    /// The phases, for a request sent at `sent`: none when the connection began before it.
    pub(super) fn phases(&self, sent: Instant) -> Phases {
        let m = &*self.0;
        if m.start < sent {
            return Phases::default();
        }
        let looked_up = m.looked_up.get().copied();
        let connected = m.connected.get().copied();
        Phases {
            dns: looked_up.map(|at| at - m.start),
            connect: connected.map(|at| at - looked_up.unwrap_or(m.start)),
            tls: m.secured.get().zip(connected).map(|(s, c)| *s - c),
        }
    }
}
