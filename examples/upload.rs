//! An upload from a file: `Body::file` streams it from disk as it is sent, with its length in
//! `Content-Length`; a file body can be sent again (after a redirect or a stale connection).
//!
//! ```text
//! cargo run --release --features cli -- serve        # prints http://127.0.0.1:PORT
//! cargo run --example upload -- Cargo.toml http://127.0.0.1:PORT/echo-len
//! ```
//!
//! The file defaults to `Cargo.toml`, the URL to `http://127.0.0.1:8080/`.

use std::time::Duration;

use httpfleet::{Body, Client, Config};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "Cargo.toml".into());
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080/".into());
    let config = Config::from_env()?.timeout(Duration::from_secs(60));
    let client = Client::from_config(&config)?;

    let body = Body::file(&path)?;
    eprintln!("sending {path}: {:?}", body);
    let resp = client
        .post(&url)
        .header("content-type", "application/octet-stream")
        .body(body)
        // Bytes sent so far, and the body's length when known.
        .on_upload_progress(|sent, total| eprintln!("sent {sent} of {total:?} bytes"))
        .send()
        .await?;
    println!("{} {}", resp.status(), resp.text().await?);
    Ok(())
}
