//! The CSV output of `httpfleet klines` ([`run_klines`](super::cli::run_klines)): rows written as
//! their batches arrive, to standard output or to `<output>.part`, which is renamed to the output
//! once whole, and which an interrupted run can go on from (`--resume`).

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::error::MarketError;
use super::kline::{CSV_HEADER, Kline, TimeUnit, write_csv};
use super::time::Timestamp;
use super::vision::blocking;

/// Where rows go.
pub(crate) struct Output {
    sink: Sink,
    /// Write the header before the first row.
    header: bool,
    /// The open time of the last row of the output resumed.
    pub(crate) resumed_after: Option<Timestamp>,
}

enum Sink {
    Stdout,
    File {
        part: PathBuf,
        target: PathBuf,
        file: BufWriter<File>,
    },
}

impl Output {
    /// Standard output for `-`; else `<path>.part`, new, or (with `resume`) the interrupted one
    /// cut after its last whole row.
    pub(crate) async fn open(path: &Path, header: bool, resume: bool) -> Result<Self, MarketError> {
        if path.as_os_str() == "-" {
            return Ok(Output {
                sink: Sink::Stdout,
                header,
                resumed_after: None,
            });
        }
        let target = path.to_owned();
        blocking(move || {
            let part = part_path(&target);
            if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| MarketError::io(dir, e))?;
            }
            let (file, resumed_after, empty) = if resume && part.exists() {
                let (file, last, empty) = cut_to_last_row(&part)?;
                (file, last, empty)
            } else {
                (
                    File::create(&part).map_err(|e| MarketError::io(&part, e))?,
                    None,
                    true,
                )
            };
            Ok(Output {
                sink: Sink::File {
                    part,
                    target,
                    file: BufWriter::with_capacity(256 * 1024, file),
                },
                header: header && empty,
                resumed_after,
            })
        })
        .await
    }

    /// Writes `klines` (the header first, once).
    pub(crate) async fn write(
        mut self,
        klines: Vec<Kline>,
        unit: TimeUnit,
    ) -> Result<Self, MarketError> {
        let header = std::mem::take(&mut self.header);
        blocking(move || {
            let result = match &mut self.sink {
                Sink::Stdout => write_csv(std::io::stdout().lock(), &klines, unit, header),
                Sink::File { file, .. } => write_csv(&mut *file, &klines, unit, header),
            };
            result.map_err(|e| MarketError::io(self.name(), e))?;
            Ok(self)
        })
        .await
    }

    /// The output whole: the header if no row came, then `<output>.part` renamed to the output.
    pub(crate) async fn finish(self) -> Result<(), MarketError> {
        let this = self.write(Vec::new(), TimeUnit::Millis).await?;
        blocking(move || match this.sink {
            Sink::Stdout => Ok(()),
            Sink::File { part, target, file } => {
                let file = file
                    .into_inner()
                    .map_err(|e| MarketError::io(&part, e.into_error()))?;
                file.sync_all().map_err(|e| MarketError::io(&part, e))?;
                std::fs::rename(&part, &target).map_err(|e| MarketError::io(&target, e))
            }
        })
        .await
    }

    fn name(&self) -> PathBuf {
        match &self.sink {
            Sink::Stdout => PathBuf::from("<stdout>"),
            Sink::File { part, .. } => part.clone(),
        }
    }
}

/// `out.csv.part` for `out.csv`.
pub(crate) fn part_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Opens `part` for appending after its last whole row (a line cut short is dropped): the file,
/// the last row's open time, and whether it holds nothing (not even a header).
fn cut_to_last_row(part: &Path) -> Result<(File, Option<Timestamp>, bool), MarketError> {
    let io = |e| MarketError::io(part, e);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(part)
        .map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    // The last row is within the last few KiB (a row is under 300 bytes).
    let from = len.saturating_sub(8 * 1024);
    file.seek(SeekFrom::Start(from)).map_err(io)?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(io)?;
    let whole = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let keep = if whole == 0 && from > 0 {
        len
    } else {
        from + whole as u64
    };
    file.set_len(keep).map_err(io)?;
    file.seek(SeekFrom::End(0)).map_err(io)?;
    let text = String::from_utf8_lossy(&tail[..whole]);
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && *l != CSV_HEADER)
        .map(|l| {
            Kline::from_csv_row(l)
                .map(|k| k.open_time)
                .map_err(|e| MarketError::data(part.display(), format!("its last row: {e}")))
        })
        .transpose()?;
    Ok((file, last, keep == 0))
}
