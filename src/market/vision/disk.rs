//! What a download leaves on disk: temporary files removed unless kept, files written
//! atomically, and the small helpers of ranged downloads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::Sha256;

use super::super::error::MarketError;
use super::super::time::Timestamp;

/// A file that is removed when dropped unless kept.
pub(super) struct TempFile {
    pub(super) path: PathBuf,
    pub(super) keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub(super) static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary path beside `target` (same directory, so a rename is atomic).
pub(super) fn temp_beside(target: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = target
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(
        ".{name}.{}.{}.{n}.tmp",
        std::process::id(),
        Timestamp::now().as_micros()
    ))
}

/// Writes `path` atomically: `write` fills a temporary file beside it, which is synced and
/// renamed over `path`, so a reader sees the old file or the whole new one.
fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), MarketError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| MarketError::io(dir, e))?;
    }
    let tmp = TempFile {
        path: temp_beside(path),
        keep: false,
    };
    let f = std::fs::File::create(&tmp.path).map_err(|e| MarketError::io(&tmp.path, e))?;
    let mut w = std::io::BufWriter::with_capacity(256 * 1024, f);
    write(&mut w)
        .and_then(|_| w.flush())
        .map_err(|e| MarketError::io(&tmp.path, e))?;
    let f = w
        .into_inner()
        .map_err(|e| MarketError::io(&tmp.path, e.into_error()))?;
    f.sync_all().map_err(|e| MarketError::io(&tmp.path, e))?;
    drop(f);
    std::fs::rename(&tmp.path, path).map_err(|e| MarketError::io(path, e))?;
    Ok(())
}

/// Writes `bytes` to `path` atomically.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MarketError> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// A download in progress: the file and the running hash.
pub(super) struct Sink {
    pub(super) file: std::fs::File,
    pub(super) hasher: Sha256,
    pub(super) len: u64,
}

/// The result of a download.
pub(super) struct Downloaded {
    pub(super) sha256: String,
    pub(super) len: u64,
    pub(super) requests: u32,
    pub(super) resumed: u32,
}

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MarketError> + Send + 'static,
) -> Result<T, MarketError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(MarketError::io(
            PathBuf::new(),
            std::io::Error::other(format!("blocking task failed: {e}")),
        ))
    })
}

/// `bytes a-b/total` (`total` may be `*`).
pub(super) fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let total = if total == "*" {
        None
    } else {
        Some(total.parse().ok()?)
    };
    let (a, b) = range.split_once('-')?;
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then_some((a, b, total))
}

/// The total of `bytes */total` (a 416's `Content-Range`).
pub(super) fn parse_unsatisfied_range(v: &str) -> Option<u64> {
    v.trim().strip_prefix("bytes */")?.parse().ok()
}
