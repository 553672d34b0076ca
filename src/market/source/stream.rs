//! [`KlineStream`]: the batches of [`KlineSource::stream`], produced by one task that fetches a
//! few segments at a time and hands them over in open-time order through a channel of one, so
//! that memory holds only the segments in flight, however long the range.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::super::Window;
use super::super::error::MarketError;
use super::super::interval::Interval;
use super::{KlineSet, KlineSource};

/// Segments fetched at a time.
const IN_FLIGHT: usize = 2;

/// The batches of [`KlineSource::stream`], in open-time order; a [`Stream`] of
/// `Result<KlineSet, MarketError>` that ends after the first error.
pub struct KlineStream {
    /// What to produce, until the first poll starts the producer.
    pending: Option<(KlineSource, Arc<str>, Interval, Window)>,
    rx: Option<mpsc::Receiver<Result<KlineSet, MarketError>>>,
    producer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for KlineStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KlineStream")
            .field("started", &self.pending.is_none())
            .finish_non_exhaustive()
    }
}

impl KlineStream {
    pub(super) fn new(
        source: KlineSource,
        symbol: Arc<str>,
        interval: Interval,
        range: Window,
    ) -> Self {
        KlineStream {
            pending: Some((source, symbol, interval, range)),
            rx: None,
            producer: None,
        }
    }
}

impl Drop for KlineStream {
    fn drop(&mut self) {
        if let Some(p) = &self.producer {
            p.abort();
        }
    }
}

impl Stream for KlineStream {
    type Item = Result<KlineSet, MarketError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some((source, symbol, interval, range)) = self.pending.take() {
            if tokio::runtime::Handle::try_current().is_err() {
                return Poll::Ready(Some(Err(MarketError::invalid_input(
                    "a kline stream is read inside a tokio runtime",
                ))));
            }
            let (tx, rx) = mpsc::channel(1);
            self.rx = Some(rx);
            self.producer = Some(tokio::spawn(produce(source, symbol, interval, range, tx)));
        }
        match &mut self.rx {
            Some(rx) => rx.poll_recv(cx),
            None => Poll::Ready(None),
        }
    }
}

/// Fetches the segments of `range`, [`IN_FLIGHT`] at a time, and sends them in order; stops at
/// the first error (sent) or when the stream is gone.
async fn produce(
    source: KlineSource,
    symbol: Arc<str>,
    interval: Interval,
    range: Window,
    tx: mpsc::Sender<Result<KlineSet, MarketError>>,
) {
    let planned = async {
        let call = Arc::new(source.call().await?);
        let segments = source.segments(&symbol, interval, range, call.now)?;
        Ok::<_, MarketError>((call, segments))
    };
    let (call, segments) = match planned.await {
        Ok(p) => p,
        Err(e) => {
            let _ = tx.send(Err(e)).await;
            return;
        }
    };
    let mut tasks = JoinSet::new();
    let mut done: BTreeMap<usize, Result<KlineSet, MarketError>> = BTreeMap::new();
    let (mut next, mut sent) = (0, 0);
    while sent < segments.len() {
        while next < segments.len() && next < sent + IN_FLIGHT {
            let (source, symbol, call, w) =
                (source.clone(), symbol.clone(), call.clone(), segments[next]);
            let i = next;
            tasks.spawn(async move {
                (
                    i,
                    source
                        .segment(&symbol, interval, w.start, w.end, &call)
                        .await,
                )
            });
            next += 1;
        }
        while !done.contains_key(&sent) {
            match tasks.join_next().await {
                Some(Ok((i, batch))) => {
                    done.insert(i, batch);
                }
                Some(Err(e)) => {
                    let _ = tx
                        .send(Err(MarketError::data(
                            "a kline segment task",
                            e.to_string(),
                        )))
                        .await;
                    return;
                }
                None => return,
            }
        }
        let Some(batch) = done.remove(&sent) else {
            return;
        };
        sent += 1;
        let failed = batch.is_err();
        if tx.send(batch).await.is_err() || failed {
            return;
        }
    }
}
