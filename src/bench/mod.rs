//! Benchmark support shared by `benches/overhead.rs` and the `httpfleet bench` command: an
//! embedded loopback server. Enabled by the `cli` feature; not part of the stable API.

mod server;

pub use server::{BenchServer, SMALL};
