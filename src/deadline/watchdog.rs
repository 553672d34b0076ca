//! One thread per process that ends requests at their deadline.
//!
//! A request registers its deadline here on its first pending poll (one uncontended lock; the
//! entry is an ended one reused, or one small allocation) and marks it done when it ends. The
//! thread sleeps until the earliest deadline, wakes the requests whose deadline has passed and
//! goes back to sleep. Requests that end before their deadline, which is nearly all of them, are
//! dropped from the queue by later registrations, not by the thread: a polling loop whose
//! requests all use the same timeout wakes the thread once per timeout period, never per
//! request, and arms no timer in the async runtime.
//!

use std::collections::VecDeque;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Done entries are swept from the middle of the queue once it holds at least this many and
/// more than twice the live ones.
const SWEEP_AT: usize = 64;

/// Lanes of the queue, each in deadline order. A deadline is appended to the lane whose last
/// entry is the latest one not after it: deadlines a fixed time from now (request timeouts,
/// hedge delays) each keep to a lane of their own and are never inserted in the middle.
const LANES: usize = 4;

/// Ended entries kept for reuse: a registration then allocates nothing.
const SPARES: usize = 64;

static REGISTRY: Registry = Registry::new();

/// A request's deadline, enforced by the watchdog thread. Registered on the first
/// [`poll_expired`](Watch::poll_expired); dropping it withdraws the registration.
pub(crate) struct Watch {
    at: Instant,
    state: Registration,
}

enum Registration {
    /// Not yet polled.
    None,
    Watched(Arc<Entry>),
    /// The watchdog thread could not be started: a tokio timer keeps the deadline instead.
    Fallback(Pin<Box<tokio::time::Sleep>>),
}

impl Watch {
    /// A deadline at `at`; nothing is registered until it is first polled.
    pub(crate) fn new(at: Instant) -> Watch {
        Watch {
            at,
            state: Registration::None,
        }
    }

    /// `Ready` once the deadline has passed; otherwise the task of `cx` is woken when it does.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.state {
            Registration::None => match REGISTRY.register(self.at, cx.waker()) {
                Some(entry) => {
                    self.state = Registration::Watched(entry);
                    Poll::Pending
                }
                None => {
                    let at = tokio::time::Instant::from_std(self.at);
                    self.state = Registration::Fallback(Box::pin(tokio::time::sleep_until(at)));
                    self.poll_expired(cx)
                }
            },
            Registration::Watched(entry) => {
                if entry.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                {
                    let mut waker = lock(&entry.waker);
                    match &*waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => *waker = Some(cx.waker().clone()),
                    }
                }
                // The thread sets `fired` before it takes the waker, so a deadline that passed
                // while the waker was replaced is seen here.
                if entry.fired.load(Ordering::Acquire) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }
            Registration::Fallback(sleep) => sleep.as_mut().poll(cx),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Registration::Watched(entry) = &self.state {
            REGISTRY.withdraw(entry);
        }
    }
}

/// One registered deadline, shared by its [`Watch`] and the queue.
#[derive(Debug)]
struct Entry {
    at: Instant,
    /// Set by the thread when the deadline has passed, before it wakes the task.
    fired: AtomicBool,
    /// Set when the [`Watch`] is dropped: the thread has nothing left to do for it.
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Entry {
    fn new(at: Instant, waker: &Waker) -> Entry {
        Entry {
            at,
            fired: AtomicBool::new(false),
            done: AtomicBool::new(false),
            waker: Mutex::new(Some(waker.clone())),
        }
    }
}

struct Registry {
    state: Mutex<State>,
    /// Wakes the thread when a deadline earlier than the one it sleeps until arrives.
    wake: Condvar,
    /// Registered watches not yet dropped.
    live: AtomicUsize,
}

struct State {
    /// Entries in deadline order within each lane (see [`LANES`]), lanes opened as needed;
    /// done entries are removed lazily.
    lanes: Vec<VecDeque<Arc<Entry>>>,
    /// Ended entries that nothing else holds, for reuse.
    spares: Vec<Arc<Entry>>,
    thread: Thread,
}

impl State {
    /// No lanes, no spares, no thread yet.
    const fn empty() -> State {
        State {
            lanes: Vec::new(),
            spares: Vec::new(),
            thread: Thread::NotStarted,
        }
    }

    /// Entries queued, done or not.
    fn queued(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }

    /// Queues `entry` in its lane (see [`State::lane_for`]), in order of what is next due.
    fn enqueue(&mut self, entry: Arc<Entry>) {
        let at = entry.at;
        let lane = self.lane_for(at);
        if lane.back().is_none_or(|last| last.at <= at) {
            lane.push_back(entry);
        } else {
            let i = lane.partition_point(|e| e.at <= at);
            lane.insert(i, entry);
        }
    }

    /// The lane for a deadline at `at`: the one whose last entry is the latest not after `at`,
    /// else an empty one, else a new one while fewer than [`LANES`] are open, else the first
    /// (where it is inserted in order).
    fn lane_for(&mut self, at: Instant) -> &mut VecDeque<Arc<Entry>> {
        let lanes = &mut self.lanes;
        let mut best: Option<(usize, Instant)> = None;
        let mut empty = None;
        for (i, lane) in lanes.iter().enumerate() {
            match lane.back() {
                None => {
                    empty.get_or_insert(i);
                }
                Some(last) if last.at <= at && best.is_none_or(|(_, b)| last.at > b) => {
                    best = Some((i, last.at));
                }
                Some(_) => {}
            }
        }
        let i = match best.map(|(i, _)| i).or(empty) {
            Some(i) => i,
            None if lanes.len() < LANES => {
                lanes.push(VecDeque::new());
                lanes.len() - 1
            }
            None => 0,
        };
        &mut lanes[i]
    }

    /// Moves every entry whose deadline has passed at `now` into `due`; drops the ended ones
    /// from the lanes' fronts. The earliest deadline left, if any.
    fn take_due(&mut self, now: Instant, due: &mut Vec<Arc<Entry>>) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for lane in &mut self.lanes {
            loop {
                drop_ended(lane, &mut self.spares);
                match lane.front() {
                    Some(first) if first.at <= now => {
                        due.extend(lane.pop_front());
                    }
                    Some(first) => {
                        next = Some(next.map_or(first.at, |t| t.min(first.at)));
                        break;
                    }
                    None => break,
                }
            }
        }
        next
    }
}

/// Drops the ended entries at the front of `lane`, keeping up to [`SPARES`] of them for reuse.
fn drop_ended(lane: &mut VecDeque<Arc<Entry>>, spares: &mut Vec<Arc<Entry>>) {
    while lane.front().is_some_and(|e| e.done.load(Ordering::Relaxed)) {
        if let Some(ended) = lane.pop_front() {
            if spares.len() < SPARES {
                spares.push(ended);
            }
        }
    }
}

/// What the watchdog thread is doing, so that a registration knows whether to wake it.
#[derive(Clone, Copy)]
enum Thread {
    NotStarted,
    /// Working through the queue: it looks at the queue again before it sleeps.
    Busy,
    /// Sleeping with nothing to watch.
    Idle,
    /// Sleeping until this instant.
    Until(Instant),
}

impl Registry {
    const fn new() -> Registry {
        Registry {
            state: Mutex::new(State::empty()),
            wake: Condvar::new(),
            live: AtomicUsize::new(0),
        }
    }

    /// Queues a deadline at `at` that wakes `waker`, starting the thread on first use; `None`
    /// if the thread cannot start.
    fn register(&'static self, at: Instant, waker: &Waker) -> Option<Arc<Entry>> {
        let mut guard = lock(&self.state);
        let s = &mut *guard;
        for lane in &mut s.lanes {
            drop_ended(lane, &mut s.spares);
        }
        let live = self.live.load(Ordering::Relaxed);
        let queued = s.queued();
        if queued >= SWEEP_AT && queued > 2 * live {
            for lane in &mut s.lanes {
                lane.retain(|e| !e.done.load(Ordering::Relaxed));
            }
        }
        let wake = match s.thread {
            Thread::NotStarted => {
                let spawned = std::thread::Builder::new()
                    .name("hf-deadline".into())
                    .spawn(move || self.run());
                if spawned.is_err() {
                    return None;
                }
                s.thread = Thread::Busy;
                false
            }
            Thread::Busy => false,
            Thread::Idle => true,
            Thread::Until(t) => at < t,
        };
        // A spare is reused only when nothing else holds it (its watch may still be dropping).
        let entry = match s.spares.pop() {
            Some(mut spare) => match Arc::get_mut(&mut spare) {
                Some(e) => {
                    *e = Entry::new(at, waker);
                    spare
                }
                None => Arc::new(Entry::new(at, waker)),
            },
            None => Arc::new(Entry::new(at, waker)),
        };
        s.enqueue(entry.clone());
        self.live.fetch_add(1, Ordering::Relaxed);
        drop(guard);
        if wake {
            self.wake.notify_one();
        }
        Some(entry)
    }

    /// Marks `entry` done: the thread has nothing left to do for it, and a later registration
    /// takes it out of the queue (and reuses it once it is dropped).
    fn withdraw(&self, entry: &Entry) {
        entry.done.store(true, Ordering::Relaxed);
        // Release the task now rather than when the entry leaves the queue.
        drop(lock(&entry.waker).take());
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    /// The watchdog thread: fires every deadline that has passed, then sleeps until the next.
    /// A waker is the caller's code and may panic: the panic is caught and the thread goes on.
    /// Should the thread end all the same, the next registration starts another ([`Restart`]).
    fn run(&'static self) {
        let _restart = Restart(self);
        let mut due = Vec::new();
        let mut s = lock(&self.state);
        loop {
            let now = Instant::now();
            let next = s.take_due(now, &mut due);
            if !due.is_empty() {
                s.thread = Thread::Busy;
                drop(s);
                for entry in due.drain(..) {
                    entry.fired.store(true, Ordering::Release);
                    let waker = lock(&entry.waker).take();
                    if let Some(waker) = waker {
                        wake(waker);
                    }
                }
                s = lock(&self.state);
                continue;
            }
            s = match next {
                None => {
                    s.thread = Thread::Idle;
                    self.wake.wait(s).unwrap_or_else(PoisonError::into_inner)
                }
                Some(at) => {
                    s.thread = Thread::Until(at);
                    self.wake
                        .wait_timeout(s, at - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

/// Wakes a task, catching a panic of its waker (the caller's code), so that one bad waker
/// never stops the deadlines of every other request.
fn wake(waker: Waker) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()));
}

/// Marks the watchdog thread gone when it ends, however it ends, so that the next
/// registration starts another.
struct Restart(&'static Registry);

impl Drop for Restart {
    fn drop(&mut self) {
        lock(&self.0.state).thread = Thread::NotStarted;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn expired(watch: &mut Watch) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        watch.poll_expired(&mut cx).is_ready()
    }

    /// Polls `watch` on the current tokio task until it fires; returns how long that took.
    async fn fires(mut watch: Watch) -> Duration {
        let start = Instant::now();
        std::future::poll_fn(|cx| watch.poll_expired(cx)).await;
        start.elapsed()
    }

    #[tokio::test]
    async fn a_deadline_fires_at_its_time_not_before() {
        let took = fires(Watch::new(Instant::now() + Duration::from_millis(30))).await;
        assert!(took >= Duration::from_millis(30), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[tokio::test]
    async fn an_earlier_deadline_registered_after_a_later_one_still_fires_first() {
        let mut late = Watch::new(Instant::now() + Duration::from_secs(60));
        assert!(!expired(&mut late));
        let took = fires(Watch::new(Instant::now() + Duration::from_millis(20))).await;
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert!(!expired(&mut late));
    }

    /// A registry of the test's own (with its own thread), so that other tests' deadlines do
    /// not share its queue.
    fn registry() -> &'static Registry {
        Box::leak(Box::new(Registry::new()))
    }

    #[test]
    fn an_ended_deadline_entry_is_reused_by_the_next_registration() {
        let r = registry();
        let now = Instant::now();
        let first = r
            .register(now + Duration::from_secs(60), Waker::noop())
            .unwrap();
        let reused = Arc::as_ptr(&first);
        r.withdraw(&first);
        drop(first);
        let second = r
            .register(now + Duration::from_secs(61), Waker::noop())
            .unwrap();
        assert_eq!(Arc::as_ptr(&second), reused);
        assert_eq!(second.at, now + Duration::from_secs(61));
        assert!(!second.done.load(Ordering::Relaxed));
        assert!(!second.fired.load(Ordering::Relaxed));
        // One still held elsewhere is not reused.
        r.withdraw(&second);
        let third = r
            .register(now + Duration::from_secs(62), Waker::noop())
            .unwrap();
        assert_ne!(Arc::as_ptr(&third), Arc::as_ptr(&second));
    }

    #[test]
    fn deadlines_at_two_offsets_are_appended_to_two_lanes_in_order() {
        // As request timeouts and hedge delays are: each registration's offset from now is one
        // of two, the later one registered first. (Far off, so that none fires during the test.)
        let r = registry();
        let now = Instant::now();
        let mut held = Vec::new();
        for i in 0..100u64 {
            let t = now + Duration::from_micros(i);
            held.push(
                r.register(t + Duration::from_secs(30), Waker::noop())
                    .unwrap(),
            );
            held.push(
                r.register(t + Duration::from_secs(20), Waker::noop())
                    .unwrap(),
            );
        }
        let s = lock(&r.state);
        assert_eq!(s.lanes.len(), 2);
        for lane in &s.lanes {
            assert_eq!(lane.len(), 100);
            assert!(
                lane.iter()
                    .zip(lane.iter().skip(1))
                    .all(|(a, b)| a.at <= b.at)
            );
            // One offset per lane: no deadline was inserted among the other offset's.
            let later = |e: &Arc<Entry>| e.at - now >= Duration::from_secs(25);
            assert!(lane.iter().all(|e| later(e) == later(&lane[0])));
        }
    }

    #[test]
    fn the_thread_takes_what_is_due_in_every_lane_and_sleeps_until_the_earliest_left() {
        let mut s = State::empty();
        let start = Instant::now();
        let ms = Duration::from_millis;
        // Three offsets interleaved, as request timeouts and hedge delays are: three lanes.
        for i in 0..5 {
            for offset in [60, 20, 40] {
                s.enqueue(Arc::new(Entry::new(start + ms(offset + i), Waker::noop())));
            }
        }
        assert_eq!(s.lanes.len(), 3);
        // A done entry at a lane's front is dropped, not fired.
        s.lanes[1][0].done.store(true, Ordering::Relaxed);
        let mut due = Vec::new();
        let next = s.take_due(start + ms(42), &mut due);
        let mut fired: Vec<_> = due.iter().map(|e| e.at - start).collect();
        fired.sort();
        assert_eq!(fired, [21, 22, 23, 24, 40, 41, 42].map(ms));
        assert_eq!(next, Some(start + ms(43)));
        assert_eq!(s.queued(), 7);
    }

    #[test]
    fn ended_requests_do_not_pile_up_in_the_queue() {
        for _ in 0..10_000 {
            let mut w = Watch::new(Instant::now() + Duration::from_secs(60));
            assert!(!expired(&mut w));
        }
        let len = lock(&REGISTRY.state).queued();
        assert!(len <= 2 * SWEEP_AT, "{len} entries queued");
    }
}
