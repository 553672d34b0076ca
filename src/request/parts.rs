//! [`Parts`]: a replayable body made of bytes and files, sent one after the other, each file
//! opened when it is reached: a file body is one part, a multipart form several.

use std::io::Read;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;

use super::body::ReaderStream;

/// Bytes and files, in order. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Parts(Arc<[Segment]>);

/// One part of a [`Parts`].
pub(crate) enum Segment {
    /// Bytes from memory (the heads and fields of a multipart form).
    #[cfg_attr(not(feature = "multipart"), allow(dead_code))]
    Bytes(Bytes),
    File(PathBuf),
}

impl Parts {
    pub(crate) fn new(segments: Vec<Segment>) -> Self {
        Parts(segments.into())
    }

    /// The files it reads, for messages.
    pub(crate) fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.0.iter().filter_map(|s| match s {
            Segment::File(p) => Some(p),
            Segment::Bytes(_) => None,
        })
    }

    /// A blocking reader from the first byte.
    pub(crate) fn reader(&self) -> PartsReader {
        PartsReader {
            parts: self.clone(),
            next: 0,
            current: None,
        }
    }

    /// A stream of pieces from the first byte, files read through tokio.
    #[cfg(any(feature = "hyper", feature = "reqwest"))]
    pub(crate) fn stream(&self) -> PartsStream {
        PartsStream {
            parts: self.clone(),
            next: 0,
            current: None,
        }
    }

    /// The segment after `index`, opened: its bytes, or its file.
    fn open(&self, index: usize) -> Option<std::io::Result<Opened>> {
        Some(match self.0.get(index)? {
            Segment::Bytes(b) => Ok(Opened::Bytes(b.clone())),
            Segment::File(path) => std::fs::File::open(path)
                .map(Opened::File)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        })
    }
}

enum Opened {
    Bytes(Bytes),
    File(std::fs::File),
}

/// [`Parts`] as a blocking `Read`.
pub(crate) struct PartsReader {
    parts: Parts,
    next: usize,
    current: Option<Opened>,
}

impl PartsReader {
    /// Back to the first byte (the next read opens the first file again).
    pub(crate) fn rewind(&mut self) {
        self.next = 0;
        self.current = None;
    }
}

impl Read for PartsReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = match &mut self.current {
                Some(Opened::Bytes(b)) => {
                    let n = b.len().min(buf.len());
                    buf[..n].copy_from_slice(&b.split_to(n));
                    n
                }
                Some(Opened::File(f)) => f.read(buf)?,
                None => match self.parts.open(self.next) {
                    None => return Ok(0),
                    Some(opened) => {
                        self.current = Some(opened?);
                        self.next += 1;
                        continue;
                    }
                },
            };
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.current = None;
        }
    }
}

/// [`Parts`] as a stream of pieces for async senders.
#[cfg(any(feature = "hyper", feature = "reqwest"))]
pub(crate) struct PartsStream {
    parts: Parts,
    next: usize,
    current: Option<ReaderStream>,
}

#[cfg(any(feature = "hyper", feature = "reqwest"))]
impl Stream for PartsStream {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(file) = &mut this.current {
                match Pin::new(file).poll_next(cx) {
                    Poll::Ready(None) => this.current = None,
                    other => return other,
                }
            }
            match this.parts.open(this.next) {
                None => return Poll::Ready(None),
                Some(opened) => {
                    this.next += 1;
                    match opened {
                        Err(e) => return Poll::Ready(Some(Err(e))),
                        Ok(Opened::Bytes(b)) if b.is_empty() => {}
                        Ok(Opened::Bytes(b)) => return Poll::Ready(Some(Ok(b))),
                        Ok(Opened::File(f)) => {
                            this.current = Some(ReaderStream::new(tokio::fs::File::from_std(f)));
                        }
                    }
                }
            }
        }
    }
}
