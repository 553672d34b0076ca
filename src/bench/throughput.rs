//! Streamed download throughput: a large body read piece by piece through httpfleet against
//! each client's own streaming read, interleaved round by round, beside an A/A control (the
//! client against itself).

use std::time::Instant;

use serde::Serialize;

use super::direct::{Direct, same_wire};
use super::runner::Surface;
use crate::{BackendKind, Client, Config};

/// One measured row: MiB/s medians and the median of the per-round ratios.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRow {
    /// The backend.
    pub backend: String,
    /// The surface.
    pub surface: String,
    /// `direct` (httpfleet against the client) or `control` (the client against itself).
    pub baseline: String,
    /// Median MiB/s of the client's own read.
    pub direct_mib_s: f64,
    /// Median MiB/s through httpfleet (or of the client again for the control).
    pub httpfleet_mib_s: f64,
    /// Median of the per-round ratios httpfleet / client (throughput: above 1 is faster).
    pub ratio: f64,
}

/// One side of a round, on a client of its own (so on connections of its own).
#[allow(clippy::large_enum_variant)] // two per round, never on a measured path
enum Reader {
    Direct(Direct),
    Async(Client),
    Blocking(crate::blocking::Client),
}

impl Reader {
    /// `kind` used directly, or (`fleet`) httpfleet over it built from `config`, for `surface`;
    /// `None` when it cannot be built.
    fn new(kind: BackendKind, config: &Config, surface: Surface, fleet: bool) -> Option<Self> {
        match (fleet, surface) {
            (false, _) => Direct::new(kind, None).map(Reader::Direct),
            (true, Surface::Blocking) => crate::blocking::Client::from_config(config)
                .ok()
                .map(Reader::Blocking),
            (true, _) => Client::from_config(config).ok().map(Reader::Async),
        }
    }

    /// Reads `url`'s body to its end as it streams; its length.
    fn read(&self, url: &str, surface: Surface, rt: &tokio::runtime::Runtime) -> u64 {
        match (self, surface) {
            (Reader::Direct(d), Surface::Blocking) => d.stream_blocking(url, rt),
            (Reader::Direct(d), _) => rt.block_on(d.stream(url)),
            (Reader::Blocking(b), _) => stream_blocking(b, url),
            (Reader::Async(c), _) => rt.block_on(stream(c, url)),
        }
    }
}

/// Reads `url`'s body piece by piece as it streams ([`Client`]'s `chunk()`); its length.
pub async fn stream(client: &Client, url: &str) -> u64 {
    let mut resp = client.get(url).send().await.expect("httpfleet request");
    let mut n = 0;
    while let Some(piece) = resp.chunk().await.expect("httpfleet body") {
        n += piece.len() as u64;
    }
    n
}

/// [`stream`] on the blocking client.
pub fn stream_blocking(client: &crate::blocking::Client, url: &str) -> u64 {
    let mut resp = client.get(url).send().expect("httpfleet request");
    let mut n = 0;
    while let Some(piece) = resp.chunk().expect("httpfleet body") {
        n += piece.len() as u64;
    }
    n
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Measures a `mib` MiB download from the bench server at `base` for each backend and surface
/// (async and blocking), `rounds` interleaved rounds each; calls `progress` with each row.
pub fn throughput(
    backends: &[BackendKind],
    base: &str,
    mib: u64,
    rounds: usize,
    mut progress: impl FnMut(&ThroughputRow),
) -> Vec<ThroughputRow> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = format!("{base}/stream/{}", mib << 20);
    let mut rows = Vec::new();
    for &kind in backends {
        let config = same_wire(
            kind,
            Config::default()
                .backend(kind)
                .timeout(super::TIMEOUT)
                .max_response_bytes(u64::MAX),
        );
        // New clients, so new connections, every round: on this machine a loopback connection
        // keeps the rate it started at (about 4,000 or 11,000 MiB/s) for its life, whichever
        // client holds it. Made afresh every round, that rate is a draw of each round, which the
        // median of the rounds sets aside, not a bias of the whole row.
        let side = |surface, fleet| Reader::new(kind, &config, surface, fleet);
        if side(Surface::Async, true).is_none() || side(Surface::Async, false).is_none() {
            continue;
        }
        for surface in [Surface::Async, Surface::Blocking] {
            for baseline in ["direct", "control"] {
                let (mut av, mut zv, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
                // A warm-up round of each side, not counted.
                for round in 0..=rounds {
                    let made = "the clients were made before";
                    let a = side(surface, false).expect(made);
                    let z = side(surface, baseline == "direct").expect(made);
                    let timed = |r: &Reader| {
                        let t = Instant::now();
                        assert_eq!(r.read(&url, surface, &rt), mib << 20, "{kind} read short");
                        mib as f64 / t.elapsed().as_secs_f64()
                    };
                    // Which side goes first alternates (A B, B A, ...).
                    let (x, y) = if round % 2 == 0 {
                        (timed(&a), timed(&z))
                    } else {
                        let y = timed(&z);
                        (timed(&a), y)
                    };
                    if round > 0 {
                        av.push(x);
                        zv.push(y);
                        ratios.push(y / x);
                    }
                }
                let row = ThroughputRow {
                    backend: kind.to_string(),
                    surface: surface.name().to_owned(),
                    baseline: baseline.to_owned(),
                    direct_mib_s: median(av),
                    httpfleet_mib_s: median(zv),
                    ratio: median(ratios),
                };
                progress(&row);
                rows.push(row);
            }
        }
    }
    rows
}
