//! A streaming download: the body goes to a file piece by piece as it arrives, so memory stays
//! small whatever its size, with a progress line on standard error.
//!
//! ```text
//! cargo run --release --features cli -- serve        # prints http://127.0.0.1:PORT
//! cargo run --example download -- http://127.0.0.1:PORT/bytes1m out.bin
//! ```
//!
//! The URL defaults to `http://127.0.0.1:8080/`, the file to `download.out`. The total
//! deadline covers the whole body; `max_response_bytes` is lifted for the download.

use std::time::Duration;

use httpfleet::{Client, Config};
use tokio::io::AsyncWriteExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080/".into());
    let path = args.next().unwrap_or_else(|| "download.out".into());
    let config = Config::from_env()?
        .timeout(Duration::from_secs(600))
        .max_response_bytes(u64::MAX);
    let client = Client::from_config(&config)?;

    let mut resp = client
        .get(&url)
        // Bytes received so far (as sent, before decompression) and the declared length.
        .on_progress(|received, total| match total {
            Some(total) => eprint!("\r{received} / {total} bytes"),
            None => eprint!("\r{received} bytes"),
        })
        .send()
        .await?
        .error_for_status()?;
    let mut file = tokio::fs::File::create(&path).await?;
    let mut written = 0u64;
    // `chunk` hands out the next piece of the (decoded) body, `None` at its end.
    while let Some(piece) = resp.chunk().await? {
        file.write_all(&piece).await?;
        written += piece.len() as u64;
    }
    file.flush().await?;
    eprintln!("\nwrote {written} bytes to {path}");
    Ok(())
}
