//! Threads that run a blocking client's transfers for async callers (curl, ureq).
//!
//! Each idle worker waits parked on its own one-job mailbox, so handing it a transfer wakes
//! exactly that thread.
//! tokio's shared blocking pool (`spawn_blocking`) keeps its idle threads on one condition
//! variable: on a request loop the notification often wakes a thread that then finds the work
//! already taken by the one just finishing: a wasted wake-up and a context switch per request.
//! Measured with `strace -f -c` on `httpfleet instr --backend curl --surface async`: 6.2 futex
//! calls per request through `spawn_blocking` (4.2 for bare curl on `spawn_blocking`), 0.9 on
//! these threads; in time, curl async went from 1.05–1.07 to 1.01–1.03 of curl used directly.
//!
//! A worker runs one job at a time. Up to `max_idle` workers wait for work; under more
//! concurrency new ones start, up to [`MAX_THREADS`] running transfers at once (as tokio's
//! blocking pool caps its threads at 512): further requests wait for a free slot, and that wait
//! counts against their deadline. The slot belongs to the transfer, not to the request that
//! started it: a dropped request drops its worker's handle, and the thread finishes the job it
//! has (the backend aborts the transfer, or lets it run to its deadline) before the slot is
//! free again and the thread ends. So however many requests are dropped, no more than
//! [`MAX_THREADS`] transfers run. A worker whose thread died is never handed another job.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::Thread;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, ErrorKind, Result, TimeoutPhase};

/// The most transfers one backend runs at once.
pub(crate) const MAX_THREADS: usize = 512;

/// Idle workers for jobs of type `J`, each run by `run` on the worker's thread.
pub(crate) struct Workers<J> {
    idle: Mutex<Vec<Worker<J>>>,
    max_idle: usize,
    /// One permit per running transfer, held by its thread until the transfer ends.
    slots: Arc<Semaphore>,
    run: fn(J),
}

/// A worker thread's mailbox: one job slot, and whether the thread is still there to take it.
/// A job is handed over by filling the slot and unparking the thread: no channel, whose
/// blocks (allocated and zeroed every few dozen messages) cost more than the hand-over itself.
struct Mailbox<J> {
    /// The job, with the transfer slot it holds while it runs.
    job: Mutex<Option<(J, OwnedSemaphorePermit)>>,
    /// Cleared when the handle is dropped: the thread ends once its slot is empty.
    wanted: AtomicBool,
    /// Cleared when the thread ends (panics included).
    alive: AtomicBool,
    /// Set when a job is handed over, cleared when the thread has run it to its end (a
    /// transfer goes on past its head, streaming the body, long after its caller has it).
    busy: AtomicBool,
}

/// The handle on one worker thread; dropping it lets the thread end after its job.
struct Worker<J> {
    mailbox: Arc<Mailbox<J>>,
    thread: Thread,
}

impl<J> Worker<J> {
    /// Hands `job`, and the slot it runs in, to the thread; `false` if the thread is gone (the
    /// job and its slot are then dropped).
    fn hand(&self, job: J, slot: OwnedSemaphorePermit) -> bool {
        self.mailbox.busy.store(true, Ordering::Release);
        *lock(&self.mailbox.job) = Some((job, slot));
        self.thread.unpark();
        if self.mailbox.alive.load(Ordering::Acquire) {
            return true;
        }
        drop(lock(&self.mailbox.job).take());
        false
    }
}

impl<J> Drop for Worker<J> {
    fn drop(&mut self) {
        self.mailbox.wanted.store(false, Ordering::Release);
        self.thread.unpark();
    }
}

/// Marks the thread gone and drops any job left in its slot, however the thread ends: the
/// caller waiting on that job's result then sees it end without one.
struct Exit<J>(Arc<Mailbox<J>>);

impl<J> Drop for Exit<J> {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::Release);
        drop(lock(&self.0.job).take());
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<J: Send + 'static> Workers<J> {
    /// Workers that keep at most `max_idle` (at least one) idle threads.
    pub(crate) fn new(max_idle: usize, run: fn(J)) -> Self {
        Workers {
            idle: Mutex::new(Vec::new()),
            max_idle: max_idle.clamp(1, MAX_THREADS),
            slots: Arc::new(Semaphore::new(MAX_THREADS)),
            run,
        }
    }

    /// Runs the job `make` builds around the sender of its result on a worker thread, and
    /// waits for the result. `Ok(None)` when the job ended without sending one; a `Timeout`
    /// error when no transfer slot came free before `deadline`.
    pub(crate) async fn run<T>(
        &self,
        deadline: tokio::time::Instant,
        make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> J,
    ) -> Result<Option<T>> {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            // Boxed: only a request that must wait carries the wait's timer.
            Err(_) => Box::pin(self.wait_for_slot(deadline)).await?,
        };
        // A worker whose thread still runs its last transfer (streaming a body) is not free.
        let idle = {
            let mut idle = lock(&self.idle);
            idle.iter()
                .rposition(|w| !w.mailbox.busy.load(Ordering::Acquire))
                .map(|i| idle.swap_remove(i))
        };
        let worker = match idle {
            Some(worker) => worker,
            None => self.spawn()?,
        };
        let (done, result) = tokio::sync::oneshot::channel();
        if !worker.hand(make(done), slot) {
            return Ok(None);
        }
        let result = result.await.ok();
        if worker.mailbox.alive.load(Ordering::Acquire) {
            let mut idle = lock(&self.idle);
            if idle.len() < self.max_idle {
                idle.push(worker);
            }
        }
        Ok(result)
    }

    /// Waits for a transfer slot until `deadline`.
    #[cold]
    async fn wait_for_slot(&self, deadline: tokio::time::Instant) -> Result<OwnedSemaphorePermit> {
        match tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(slot),
            // The slots are never closed.
            Ok(Err(closed)) => Err(Error::new(ErrorKind::Canceled).with_source(closed)),
            Err(_) => Err(
                Error::new(ErrorKind::Timeout(TimeoutPhase::Headers)).with_detail(
                    "deadline reached waiting for one of the 512 transfer threads to come free",
                ),
            ),
        }
    }

    fn spawn(&self) -> Result<Worker<J>> {
        let mailbox = Arc::new(Mailbox {
            job: Mutex::new(None),
            wanted: AtomicBool::new(true),
            alive: AtomicBool::new(true),
            busy: AtomicBool::new(false),
        });
        let exit = Exit(mailbox.clone());
        let run = self.run;
        let thread = std::thread::Builder::new()
            .name("hf-transfer".into())
            .spawn(move || {
                let mailbox = &exit.0;
                loop {
                    let job = lock(&mailbox.job).take();
                    match job {
                        // The slot is given back when the transfer has ended.
                        Some((job, _slot)) => {
                            run(job);
                            mailbox.busy.store(false, Ordering::Release);
                        }
                        None if !mailbox.wanted.load(Ordering::Acquire) => break,
                        None => std::thread::park(),
                    }
                }
            })
            .map_err(|e| Error::builder("cannot start a transfer thread").with_source(e))?;
        Ok(Worker {
            mailbox,
            thread: thread.thread().clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Workers;

    type Job = (
        std::sync::mpsc::Receiver<()>,
        tokio::sync::oneshot::Sender<u32>,
    );

    fn far() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(60)
    }

    fn run((gate, done): Job) {
        let _ = gate.recv();
        let _ = done.send(7);
    }

    /// Transfer threads alive in this process (by name, which Linux cuts at 15 bytes: other
    /// tests start none).
    fn transfer_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == "hf-transfer")
            .count()
    }

    fn settles_at(n: usize) {
        let until = Instant::now() + Duration::from_secs(5);
        while transfer_threads() != n && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(transfer_threads(), n);
    }

    #[test]
    fn idle_threads_are_bounded_and_a_dropped_request_ends_its_thread() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let workers = Workers::<Job>::new(2, run);
        // Three at once: three threads; afterwards two stay idle, the third ends.
        let mut gates = Vec::new();
        let results = rt.block_on(async {
            let (a, b, c) = {
                let mut start = || {
                    let (open, gate) = std::sync::mpsc::channel();
                    gates.push(open);
                    workers.run(far(), move |done| (gate, done))
                };
                (start(), start(), start())
            };
            let release = async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                gates.drain(..).for_each(|g| g.send(()).unwrap());
            };
            let (a, b, c, ()) = tokio::join!(a, b, c, release);
            [a, b, c]
        });
        assert!(results.iter().all(|r| matches!(r, Ok(Some(7)))));
        settles_at(2);
        // A request dropped while its job runs: the thread finishes the job and ends.
        let (open, gate) = std::sync::mpsc::channel();
        rt.block_on(async {
            let fut = workers.run(far(), move |done| (gate, done));
            let _ = tokio::time::timeout(Duration::from_millis(20), fut).await;
        });
        settles_at(2);
        drop(open);
        settles_at(1);
    }

    /// A job that panics ends its thread: that thread is never handed another job.
    #[test]
    fn a_worker_whose_thread_died_is_not_reused() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        fn run(job: (bool, tokio::sync::oneshot::Sender<u32>)) {
            if job.0 {
                panic!("a transfer panicked (on purpose)");
            }
            let _ = job.1.send(7);
        }
        let workers = Workers::new(4, run);
        rt.block_on(async {
            assert!(matches!(
                workers.run(far(), |done| (true, done)).await,
                Ok(None)
            ));
            for _ in 0..3 {
                assert!(matches!(
                    workers.run(far(), |done| (false, done)).await,
                    Ok(Some(7))
                ));
            }
        });
    }
}
