//! A hedged fleet of two members (hyper and libcurl, each with its own base URL): a request
//! goes to the first member, and if no acceptable response head has come after the hedge delay
//! the same request goes to the second. The first acceptable head wins; the other attempt is
//! dropped, which closes its connection.
//!
//! ```text
//! cargo run --release --features cli -- serve        # prints http://127.0.0.1:PORT
//! cargo run --example hedged_fleet -- /exchange http://127.0.0.1:PORT http://127.0.0.1:PORT
//! ```
//!
//! Arguments: a path, then the two members' base URLs (both default to
//! `http://127.0.0.1:8080`). The path defaults to `/`.

use std::time::Duration;

use httpfleet::fleet::{HedgeDelay, RetryPolicy};
use httpfleet::{BackendKind, Config, FleetBuilder, Member, Strategy};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "/".into());
    let first = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let second = args.next().unwrap_or_else(|| first.clone());

    // One deadline for every attempt, backoff and hedge of a request.
    let config = Config::default().timeout(Duration::from_secs(5));
    let client = FleetBuilder::new(&config)
        .member(Member::new(BackendKind::Hyper).base_url(first))
        .member(Member::new(BackendKind::Curl).base_url(second))
        .strategy(Strategy::Hedged {
            // The 95th percentile of recent latencies, never under 10 ms.
            delay: HedgeDelay::Percentile {
                quantile: 0.95,
                floor: Duration::from_millis(10),
            },
            max_extra: 1,
        })
        .retry(RetryPolicy::default().max_attempts(2))
        .build()?;

    for _ in 0..20 {
        // A path alone is rebased on each member's base URL.
        let resp = client.get(&path).send().await?;
        let member = resp.member().unwrap_or("-").to_owned();
        let attempts = resp.attempts();
        let body = resp.bytes().await?;
        println!("{member}: {} bytes, {attempts} attempt(s)", body.len());
    }
    for s in client.stats() {
        println!(
            "{}: {} requests, {} hedges, {} canceled, breaker {:?}",
            s.name, s.requests, s.hedges, s.canceled, s.breaker
        );
    }
    Ok(())
}
