//! [`VisionDataClient`]: the daily and monthly kline files of data.binance.vision.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use super::error::MarketError;

mod disk;
mod file;
mod read;

use super::interval::Interval;
use super::rest::transient;
use super::{Clock, Market};
use crate::{BackendKind, Client, Config, FleetBuilder, Member, Strategy};
use disk::*;
pub(crate) use disk::{blocking, write_atomic};
pub use file::*;
use read::{check_span, parse_agg_trades, parse_klines, read_zip};

/// The largest Vision file the default configuration downloads (a 1s month is a few hundred MiB).
const MAX_FILE_BYTES: u64 = 4 << 30;

/// Bytes of a download gathered before they are written (the memory one download holds).
const WRITE_BATCH: usize = 1 << 20;

/// Data.binance.vision kline files, on a fleet of hosts. Cheap to clone.
///
/// Layout: `data/{spot|futures/um|futures/cm}/{daily|monthly}/klines/{SYMBOL}/{interval}/
/// {SYMBOL}-{interval}-{YYYY-MM-DD|YYYY-MM}.zip`, with `.zip.CHECKSUM` beside each file
/// (`sha256sum` output: 64 hex digits, two spaces, the file name, with or without a trailing
/// newline). The month interval is spelled `1mo`; `3d`, `1w` and `1mo` exist as monthly files
/// only.
///
/// A download streams to a temporary file, hashed as it goes; a body that breaks is asked
/// again with `Range` from the first byte not yet on disk. The file is then checked against its CHECKSUM, its
/// one CSV inflated and parsed as a stream, and, with a cache directory, moved into the cache
/// with a rename (the CHECKSUM first), so another process sees a whole verified file or none.
#[derive(Clone, Debug)]
pub struct VisionDataClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    market: Market,
    concurrency: usize,
    checksum: ChecksumPolicy,
    cache_dir: Option<PathBuf>,
    temp_dir: PathBuf,
    publication_lag: Duration,
    clock: Clock,
    attempts: u32,
}

/// Builds a [`VisionDataClient`]; see [`VisionDataClient::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct VisionDataClientBuilder {
    market: Market,
    base_urls: Vec<String>,
    members: Vec<Member>,
    config: Config,
    concurrency: usize,
    checksum: ChecksumPolicy,
    cache_dir: Option<PathBuf>,
    temp_dir: Option<PathBuf>,
    publication_lag: Duration,
    clock: Clock,
    attempts: u32,
}

impl VisionDataClientBuilder {
    /// Replaces the base URLs, in failover order. Defaults to `https://data.binance.vision`.
    pub fn base_urls<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.base_urls = urls.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a fleet member instead of base URLs (a mock backend in tests).
    pub fn member(mut self, member: Member) -> Self {
        self.members.push(member);
        self
    }

    /// The HTTP configuration. Decompression is turned off whatever it says: byte ranges count
    /// bytes of the file itself. Its `max_response_bytes` bounds a file (it goes to disk, not
    /// to memory); its `timeout` bounds each request, and a download that breaks by it goes on
    /// from where it stopped. Defaults to [`Config::default`] with `max_response_bytes` 4 GiB.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The backend of the members built from base URLs.
    pub fn backend(mut self, kind: BackendKind) -> Self {
        self.config = self.config.backend(kind);
        self
    }

    /// Files downloaded at once. Defaults to 4, at least 1.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The checksum policy. Defaults to [`ChecksumPolicy::Verify`].
    pub fn checksum(mut self, policy: ChecksumPolicy) -> Self {
        self.checksum = policy;
        self
    }

    /// Keeps verified files under `dir`, keyed by their full path on the server.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Where downloads without a cache go while in progress. Defaults to the system's temp dir.
    pub fn temp_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = Some(dir.into());
        self
    }

    /// How long after its period ends a missing file counts as not published yet rather than
    /// missing. Defaults to 48 h.
    pub fn publication_lag(mut self, lag: Duration) -> Self {
        self.publication_lag = lag;
        self
    }

    /// The clock that decides "not yet published". Defaults to the system clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Rounds per chunk before the download fails, at least 1; within a round the fleet fails
    /// over across hosts. Defaults to 3.
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = n.max(1);
        self
    }

    /// Builds the fleet and the client.
    pub fn build(self) -> Result<VisionDataClient, MarketError> {
        let config = self.config.decompress(false);
        let members: Vec<Member> = if self.members.is_empty() {
            if self.base_urls.is_empty() {
                return Err(MarketError::invalid_input("no base URL"));
            }
            self.base_urls
                .iter()
                .map(|u| Member::new(config.backend).base_url(u.trim_end_matches('/')))
                .collect()
        } else {
            self.members
        };
        let client = FleetBuilder::new(&config)
            .members(members)
            .strategy(Strategy::Failover)
            .classifier(crate::fleet::Classifier::default().failure_statuses(500..=599))
            .build()
            .map_err(|e| MarketError::Http {
                window: None,
                what: "building the Vision fleet".to_owned(),
                source: e,
            })?;
        Ok(VisionDataClient {
            inner: Arc::new(Inner {
                client,
                market: self.market,
                concurrency: self.concurrency,
                checksum: self.checksum,
                cache_dir: self.cache_dir,
                temp_dir: self.temp_dir.unwrap_or_else(std::env::temp_dir),
                publication_lag: self.publication_lag,
                clock: self.clock,
                attempts: self.attempts,
            }),
        })
    }
}

impl VisionDataClient {
    /// A builder for `market` with the default host, policy and limits.
    pub fn builder(market: Market) -> VisionDataClientBuilder {
        VisionDataClientBuilder {
            market,
            base_urls: vec![DEFAULT_VISION_URL.to_owned()],
            members: Vec::new(),
            config: Config::default().max_response_bytes(MAX_FILE_BYTES),
            concurrency: 4,
            checksum: ChecksumPolicy::Verify,
            cache_dir: None,
            temp_dir: None,
            publication_lag: Duration::from_secs(48 * 3600),
            clock: Clock::System,
            attempts: 3,
        }
    }

    /// The market.
    pub fn market(&self) -> Market {
        self.inner.market
    }

    /// The file of this client's market; see [`VisionFile::new`].
    pub fn file_for(
        &self,
        symbol: &str,
        interval: Interval,
        period: Period,
    ) -> Result<VisionFile, MarketError> {
        VisionFile::new(self.inner.market, symbol, interval, period)
    }

    /// Per-host counters and breaker states of the fleet.
    pub fn stats(&self) -> Vec<crate::fleet::MemberStats> {
        self.inner.client.stats()
    }

    /// How long after its period a missing file counts as not published yet.
    pub fn publication_lag(&self) -> Duration {
        self.inner.publication_lag
    }

    /// The checksum policy it was built with.
    pub fn checksum_policy(&self) -> ChecksumPolicy {
        self.inner.checksum
    }

    /// The klines of one file, or whether it is missing or not published yet.
    pub async fn file(&self, file: &VisionFile) -> Result<FileOutcome, MarketError> {
        if let Some(hit) = self.cached(file).await? {
            return Ok(FileOutcome::Fetched(hit));
        }
        let tmp = TempFile {
            path: match &self.inner.cache_dir {
                Some(dir) => temp_beside(&dir.join(file.path())),
                None => temp_beside(&self.inner.temp_dir.join(file.file_name())),
            },
            keep: false,
        };
        let path = file.path();
        let Some((status, expected, got)) = self.fetch(file, &tmp.path).await? else {
            return Ok(if self.published(file) {
                FileOutcome::Missing(file.clone())
            } else {
                FileOutcome::NotYetPublished(file.clone())
            });
        };
        let klines = read_zip(
            tmp.path.clone(),
            path.clone(),
            file.csv_name(),
            parse_klines,
        )
        .await?;
        check_span(&klines, file)?;
        let mut tmp = tmp;
        if let (Some(dir), ChecksumStatus::Verified, Some(exp)) =
            (&self.inner.cache_dir, &status, &expected)
        {
            let target = dir.join(&path);
            let sum = format!("{exp}  {}\n", file.file_name());
            let zip_tmp = tmp.path.clone();
            blocking(move || {
                write_atomic(&checksum_path(&target), sum.as_bytes())?;
                std::fs::rename(&zip_tmp, &target).map_err(|e| MarketError::io(&target, e))
            })
            .await?;
            tmp.keep = true;
        }
        Ok(FileOutcome::Fetched(FileKlines {
            file: file.clone(),
            klines,
            checksum: status,
            from_cache: false,
            bytes: got.len,
            requests: got.requests,
            resumed: got.resumed,
        }))
    }

    /// Several files, `concurrency` at a time, outcomes in the order asked. The first error ends
    /// the call (the other downloads are canceled).
    pub async fn files(&self, files: &[VisionFile]) -> Result<Vec<FileOutcome>, MarketError> {
        self.files_with(files, |_| {}).await
    }

    pub(crate) async fn files_with(
        &self,
        files: &[VisionFile],
        on_done: impl Fn(&FileOutcome),
    ) -> Result<Vec<FileOutcome>, MarketError> {
        let n = files.len();
        let mut out: Vec<Option<FileOutcome>> = vec![None; n];
        let mut set: JoinSet<(usize, Result<FileOutcome, MarketError>)> = JoinSet::new();
        let (mut next, mut done) = (0, 0);
        while done < n {
            while next < n && set.len() < self.inner.concurrency {
                let (this, f, i) = (self.clone(), files[next].clone(), next);
                set.spawn(async move { (i, this.file(&f).await) });
                next += 1;
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            let (i, result) = joined.map_err(|e| MarketError::Data {
                what: "a Vision download task".to_owned(),
                detail: e.to_string(),
            })?;
            let outcome = result?;
            on_done(&outcome);
            out[i] = Some(outcome);
            done += 1;
        }
        Ok(out
            .into_iter()
            .map(|o| o.expect("every file finished"))
            .collect())
    }

    /// The klines of one file; not published yet and missing are errors here
    /// ([`MarketError::NotYetPublished`], [`MarketError::NotFound`]).
    pub async fn klines(&self, file: &VisionFile) -> Result<FileKlines, MarketError> {
        match self.file(file).await? {
            FileOutcome::Fetched(k) => Ok(k),
            FileOutcome::NotYetPublished(f) => Err(MarketError::NotYetPublished { file: f.path() }),
            FileOutcome::Missing(f) => Err(MarketError::NotFound { file: f.path() }),
        }
    }

    /// A verified cached copy, if there is one. A cached file that no longer matches its stored
    /// CHECKSUM (or does not parse) is removed and downloaded again.
    async fn cached(&self, file: &VisionFile) -> Result<Option<FileKlines>, MarketError> {
        let Some(dir) = &self.inner.cache_dir else {
            return Ok(None);
        };
        let target = dir.join(file.path());
        let sum_path = checksum_path(&target);
        let name = file.file_name();
        let path = file.path();
        let checked = blocking({
            let target = target.clone();
            move || {
                let (Ok(sum), true) = (std::fs::read_to_string(&sum_path), target.exists()) else {
                    return Ok(None);
                };
                let Ok(expected) = parse_checksum_file(&sum, &name) else {
                    return Ok(None);
                };
                let mut f =
                    std::fs::File::open(&target).map_err(|e| MarketError::io(&target, e))?;
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; 256 * 1024];
                let mut len = 0u64;
                loop {
                    let n = f.read(&mut buf).map_err(|e| MarketError::io(&target, e))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    len += n as u64;
                }
                Ok(Some((hex(&hasher.finalize()) == expected, len)))
            }
        })
        .await?;
        let len = match checked {
            None => return Ok(None),
            Some((true, len)) => len,
            Some((false, _)) => {
                tracing::warn!(file = %path, "cached copy does not match its CHECKSUM; downloading again");
                let _ = std::fs::remove_file(&target);
                return Ok(None);
            }
        };
        match read_zip(target.clone(), path.clone(), file.csv_name(), parse_klines).await {
            Ok(klines) => {
                check_span(&klines, file)?;
                Ok(Some(FileKlines {
                    file: file.clone(),
                    klines,
                    checksum: ChecksumStatus::Verified,
                    from_cache: true,
                    bytes: len,
                    requests: 0,
                    resumed: 0,
                }))
            }
            Err(_) => {
                let _ = std::fs::remove_file(&target);
                Ok(None)
            }
        }
    }

    /// Downloads `file` to `dest` beside its CHECKSUM: the checksum verdict under the policy
    /// (a mismatch, or a missing CHECKSUM under `Require`, is an error), the digest expected and
    /// the download; `None` when the file is not there (404).
    async fn fetch(
        &self,
        file: &(impl Remote + Sync),
        dest: &Path,
    ) -> Result<Option<(ChecksumStatus, Option<String>, Downloaded)>, MarketError> {
        let (checksum, download) = tokio::join!(self.checksum_of(file), self.download(file, dest));
        let Some(got) = download? else {
            return Ok(None);
        };
        let expected = checksum?;
        let path = file.path();
        let status = match &expected {
            Some(exp) if *exp == got.sha256 => ChecksumStatus::Verified,
            Some(exp) => match self.inner.checksum {
                ChecksumPolicy::ReportOnly => ChecksumStatus::Mismatch {
                    expected: exp.clone(),
                    actual: got.sha256.clone(),
                },
                _ => {
                    return Err(MarketError::ChecksumMismatch {
                        file: path,
                        expected: exp.clone(),
                        actual: got.sha256,
                    });
                }
            },
            None if self.inner.checksum == ChecksumPolicy::Require => {
                return Err(MarketError::ChecksumMissing { file: path });
            }
            None => ChecksumStatus::Missing,
        };
        if status == ChecksumStatus::Missing {
            tracing::warn!(file = %path, "no CHECKSUM file: the data is not verified");
        }
        Ok(Some((status, expected, got)))
    }

    /// Whether a file not there is missing rather than not published yet.
    fn published(&self, file: &impl Remote) -> bool {
        self.inner.clock.now() >= file.ends() + self.inner.publication_lag
    }

    /// The aggregate trades of one file, checked against its CHECKSUM as klines files are
    /// (not cached); `None` when it is not there, with whether it is published yet.
    pub async fn agg_trades(
        &self,
        file: &AggTradesFile,
    ) -> Result<Result<FileAggTrades, bool>, MarketError> {
        let tmp = TempFile {
            path: temp_beside(&self.inner.temp_dir.join(file.file_name())),
            keep: false,
        };
        let Some((status, _, _)) = self.fetch(file, &tmp.path).await? else {
            return Ok(Err(self.published(file)));
        };
        let path = file.path();
        let trades = read_zip(
            tmp.path.clone(),
            path.clone(),
            file.csv_name(),
            parse_agg_trades,
        )
        .await?;
        let span = file.span();
        let mut prev: Option<u64> = None;
        for t in &trades {
            if !span.contains(t.time) || prev.is_some_and(|p| t.id <= p) {
                return Err(MarketError::data(
                    &path,
                    format!(
                        "trade {} at {}: outside {span} or out of order",
                        t.id, t.time
                    ),
                ));
            }
            prev = Some(t.id);
        }
        Ok(Ok(FileAggTrades {
            file: file.clone(),
            trades,
            checksum: status,
        }))
    }

    /// The digest from the file's CHECKSUM, `None` when there is none (404).
    async fn checksum_of(&self, file: &impl Remote) -> Result<Option<String>, MarketError> {
        let path = file.checksum_path();
        let body = match self.get_small(&path).await? {
            Some(b) => b,
            None => return Ok(None),
        };
        let text = std::str::from_utf8(&body).map_err(|_| MarketError::BadChecksumFile {
            file: path.clone(),
            detail: "not UTF-8 text".to_owned(),
        })?;
        parse_checksum_file(text, &file.file_name())
            .map(Some)
            .map_err(|detail| MarketError::BadChecksumFile { file: path, detail })
    }

    /// A small GET with rounds of retries; `None` on 404.
    async fn get_small(&self, path: &str) -> Result<Option<Bytes>, MarketError> {
        let mut failures = 0;
        loop {
            let fault = match self.inner.client.get(format!("/{path}")).send().await {
                Ok(resp) if resp.status().is_success() => match resp.bytes().await {
                    Ok(body) => return Ok(Some(body)),
                    Err(e) => e,
                },
                Ok(resp) if resp.status().as_u16() == 404 => return Ok(None),
                Ok(resp)
                    if resp.status().is_server_error() && failures + 1 < self.inner.attempts =>
                {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(100 << failures.min(5))).await;
                    continue;
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.unwrap_or_default();
                    return Err(MarketError::Status {
                        window: None,
                        what: path.to_owned(),
                        status,
                        body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                    });
                }
                Err(e) => e,
            };
            failures += 1;
            self.again_or_fail(fault, failures, path).await?;
        }
    }

    /// After a request's `failures`th failure `e`: waits before it is asked again, or gives up
    /// (a fault that asking again does not mend, or too many failures).
    async fn again_or_fail(
        &self,
        e: crate::Error,
        failures: u32,
        path: &str,
    ) -> Result<(), MarketError> {
        if !transient(e.kind()) || failures >= self.inner.attempts {
            return Err(MarketError::Http {
                window: None,
                what: path.to_owned(),
                source: e,
            });
        }
        tracing::debug!(file = %path, error = %e, "request failed; asking again");
        tokio::time::sleep(Duration::from_millis(100 << failures.min(5))).await;
        Ok(())
    }

    /// Streams `file` to `dest` while its SHA-256 is computed: one GET, and after a body that
    /// broke, `Range: bytes=N-` from the first byte not on disk (a server that ignores it sends
    /// the whole file again, which starts over). `None` on 404. Each attempt that brought bytes
    /// starts the failure count again, so a long download on a poor link goes on as long as it
    /// moves.
    async fn download(
        &self,
        file: &impl Remote,
        dest: &Path,
    ) -> Result<Option<Downloaded>, MarketError> {
        let path = file.path();
        let url = format!("/{path}");
        let bad = |detail: String| MarketError::Download {
            file: path.clone(),
            detail,
        };
        let mut sink: Option<Sink> = None;
        let mut total: Option<u64> = None;
        let (mut requests, mut resumed, mut failures) = (0u32, 0u32, 0u32);
        loop {
            let offset = sink.as_ref().map_or(0, |s| s.len);
            if total == Some(offset) {
                break;
            }
            requests += 1;
            let mut req = self.inner.client.get(&url);
            if offset > 0 {
                req = req.header("range", format!("bytes={offset}-"));
            }
            let resp = match req.send().await {
                Ok(resp) => resp,
                Err(e) => {
                    failures += 1;
                    resumed += 1;
                    self.again_or_fail(e, failures, &path).await?;
                    continue;
                }
            };
            resumed += resp.attempts().saturating_sub(1);
            let status = resp.status().as_u16();
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let restart = match status {
                // The whole file: the first GET, or a server that ignored `Range`.
                200 => {
                    total = resp.content_length();
                    true
                }
                206 => {
                    let cr = header("content-range")
                        .ok_or_else(|| bad("206 without Content-Range".into()))?;
                    let (a, _, t) = parse_content_range(&cr)
                        .ok_or_else(|| bad(format!("bad Content-Range {cr:?}")))?;
                    if a != offset {
                        return Err(bad(format!(
                            "asked from byte {offset}, got Content-Range {cr:?}"
                        )));
                    }
                    match (total, t) {
                        (Some(old), Some(new)) if old != new => {
                            return Err(bad(format!(
                                "the file changed size ({old} then {new} bytes)"
                            )));
                        }
                        (_, Some(new)) => total = Some(new),
                        _ => {}
                    }
                    false
                }
                416 => {
                    let t = header("content-range").and_then(|v| parse_unsatisfied_range(&v));
                    if t != Some(offset) {
                        return Err(bad(format!("416 from byte {offset} (size {t:?})")));
                    }
                    total = Some(offset);
                    continue;
                }
                404 if offset == 0 => return Ok(None),
                404 => return Err(bad(format!("404 at byte {offset}: the file went away"))),
                500..=599 if failures + 1 < self.inner.attempts => {
                    failures += 1;
                    resumed += 1;
                    tokio::time::sleep(Duration::from_millis(100 << failures.min(5))).await;
                    continue;
                }
                _ => {
                    let body = resp.bytes().await.unwrap_or_default();
                    return Err(MarketError::Status {
                        window: None,
                        what: path.clone(),
                        status,
                        body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                    });
                }
            };
            let (written, broke) = self.save(resp, sink.take(), dest, restart).await?;
            let moved = restart || written.len > offset;
            sink = Some(written);
            let len = sink.as_ref().map_or(0, |s| s.len);
            match broke {
                Some(e) => {
                    failures = if moved { 1 } else { failures + 1 };
                    resumed += 1;
                    self.again_or_fail(e, failures, &path).await?;
                }
                None => match total {
                    Some(t) if len != t => {
                        return Err(bad(format!("the body ended at byte {len} of {t}")));
                    }
                    _ => total = Some(len),
                },
            }
        }
        let sink = match sink {
            Some(s) => s,
            None => self.append(None, dest, Vec::new(), true).await?,
        };
        let Sink { file, hasher, len } = sink;
        let dest_owned = dest.to_owned();
        blocking(move || file.sync_all().map_err(|e| MarketError::io(&dest_owned, e))).await?;
        Ok(Some(Downloaded {
            sha256: hex(&hasher.finalize()),
            len,
            requests,
            resumed,
        }))
    }

    /// Writes `resp`'s body after `sink` (or from the start when `restart`) as it arrives, a
    /// batch of pieces at a time; with the error that broke it, if one did (what came before
    /// it is on disk).
    async fn save(
        &self,
        mut resp: crate::Response,
        sink: Option<Sink>,
        dest: &Path,
        restart: bool,
    ) -> Result<(Sink, Option<crate::Error>), MarketError> {
        let mut sink = self.append(sink, dest, Vec::new(), restart).await?;
        let mut batch: Vec<Bytes> = Vec::new();
        let mut batched = 0;
        loop {
            let piece = resp.chunk().await;
            let end = !matches!(piece, Ok(Some(_)));
            if let Ok(Some(piece)) = piece.as_ref() {
                batched += piece.len();
                batch.push(piece.clone());
            }
            if end || batched >= WRITE_BATCH {
                sink = self
                    .append(Some(sink), dest, std::mem::take(&mut batch), false)
                    .await?;
                batched = 0;
            }
            match piece {
                Ok(Some(_)) => {}
                Ok(None) => return Ok((sink, None)),
                Err(e) => return Ok((sink, Some(e))),
            }
        }
    }

    /// Appends `pieces` to the download (starting over when `restart`), hashing them.
    async fn append(
        &self,
        sink: Option<Sink>,
        dest: &Path,
        pieces: Vec<Bytes>,
        restart: bool,
    ) -> Result<Sink, MarketError> {
        let dest = dest.to_owned();
        blocking(move || {
            let mut sink = match sink {
                Some(s) if !restart => s,
                _ => {
                    if let Some(dir) = dest.parent() {
                        std::fs::create_dir_all(dir).map_err(|e| MarketError::io(dir, e))?;
                    }
                    Sink {
                        file: std::fs::File::create(&dest)
                            .map_err(|e| MarketError::io(&dest, e))?,
                        hasher: Sha256::new(),
                        len: 0,
                    }
                }
            };
            for body in pieces {
                sink.file
                    .write_all(&body)
                    .map_err(|e| MarketError::io(&dest, e))?;
                sink.hasher.update(&body);
                sink.len += body.len() as u64;
            }
            Ok(sink)
        })
        .await
    }
}

/// `<zip path>.CHECKSUM`.
fn checksum_path(zip: &Path) -> PathBuf {
    let mut s = zip.as_os_str().to_owned();
    s.push(".CHECKSUM");
    PathBuf::from(s)
}
