//! The blocking client: the same builder without `async`; the response implements
//! `std::io::Read`.
//!
//! ```text
//! cargo run --release --features cli -- serve        # prints http://127.0.0.1:PORT
//! cargo run --example blocking -- http://127.0.0.1:PORT/json1k
//! ```
//!
//! The URL defaults to `http://127.0.0.1:8080/`. The backend comes from `HTTPFLEET_BACKEND`
//! (`Config::from_env`).

use std::io::Read;
use std::time::Duration;

use httpfleet::Config;
use httpfleet::blocking::Client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080/".into());
    let config = Config::from_env()?.timeout(Duration::from_secs(10));
    let client = Client::from_config(&config)?;

    // The whole body at once.
    let text = client.get(&url).send()?.error_for_status()?.text()?;
    println!("{} bytes of text", text.len());

    // The same body read through `std::io::Read`, a buffer at a time.
    let mut resp = client.get(&url).send()?;
    let mut buf = [0u8; 8192];
    let mut total = 0;
    loop {
        let n = resp.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n;
    }
    println!(
        "{} {}: {total} bytes through Read",
        resp.status(),
        resp.url()
    );
    Ok(())
}
