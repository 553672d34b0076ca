//! Benchmark support shared by `benches/overhead.rs` and the `httpfleet bench` command: an
//! embedded loopback server, each client used directly, and the interleaved runner. Enabled by
//! the `cli` feature; not part of the stable API.

mod direct;
mod fleet;
mod runner;
mod server;
mod throughput;

pub use direct::{Direct, Route, own_headers, same_wire};
pub use fleet::{HedgeRow, StrategyRow, hedging, strategies};
pub use runner::{Baseline, Row, Spec, Surface, TIMEOUT, run};
pub use server::{BenchServer, SMALL};
pub use throughput::{ThroughputRow, stream, stream_blocking, throughput};
