//! An async GET: send the request, look at the head, read the body as text.
//!
//! ```text
//! cargo run --release --features cli -- serve        # prints http://127.0.0.1:PORT
//! cargo run --example get -- http://127.0.0.1:PORT/json1k
//! HTTPFLEET_BACKEND=curl cargo run --example get -- http://127.0.0.1:PORT/small
//! ```
//!
//! The URL defaults to `http://127.0.0.1:8080/`. The backend and every other knob come from the
//! `HTTPFLEET_*` environment variables (`Config::from_env`).

use std::time::Duration;

use httpfleet::{Client, Config};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080/".into());
    let config = Config::from_env()?.timeout(Duration::from_secs(10));
    let client = Client::from_config(&config)?;

    // `send` resolves once the response head has arrived; the body is read after.
    let resp = client.get(&url).header("x-example", "get").send().await?;
    eprintln!("{} {} via {}", resp.status(), resp.url(), resp.backend());
    let text = resp.error_for_status()?.text().await?;
    println!("{text}");
    Ok(())
}
