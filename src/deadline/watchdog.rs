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
//! A watch may also carry a [`Nudge`]: an earlier instant at which the thread wakes the task
//! without ending anything (a hedged fleet request's hedge delay), so that the request's one
//! registration serves both. Before it wakes a nudged task the thread counts the nudge in a
//! process-wide generation ([`nudges`]): a task that finds the generation unchanged since it
//! started knows, in one atomic load, that no nudge (its own included) has passed, and reads the
//! clock only when one has.

use std::collections::VecDeque;
use std::future::Future as _;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

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

/// Nudges that have passed, counted before their tasks are woken (see [`nudges`]).
static NUDGES: AtomicU64 = AtomicU64::new(0);

/// The generation of nudges: it moves after every nudge that passes, before its task is
/// woken. A task that took it before its own nudge was registered and finds it unchanged knows
/// that its nudge has not passed; when it has moved, the clock tells (some other nudge may have
/// moved it).
#[inline]
pub(crate) fn nudges() -> u64 {
    NUDGES.load(Ordering::Acquire)
}

/// Counts a nudge that passed, before its task is woken.
fn count_nudge() {
    NUDGES.fetch_add(1, Ordering::Release);
}

/// When a watch wakes its task before the deadline without expiring (see [`Watch::nudging`]):
/// a lead before the deadline, so that a request carries it in one word and no clock
/// arithmetic is done unless it is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Nudge(NonZeroU64);

impl Nudge {
    /// A nudge `lead` before the deadline (`None` for none: a zero lead is the deadline).
    pub(crate) fn before_deadline(lead: Duration) -> Option<Nudge> {
        NonZeroU64::new(u64::try_from(lead.as_nanos()).unwrap_or(u64::MAX)).map(Nudge)
    }

    /// The lead before the deadline.
    pub(crate) fn lead(self) -> Duration {
        Duration::from_nanos(self.0.get())
    }
}

/// A request's deadline, enforced by the watchdog thread. Registered on the first
/// [`poll_expired`](Watch::poll_expired); dropping it withdraws the registration.
pub(crate) struct Watch {
    at: Instant,
    /// An earlier instant at which the task is woken without the deadline firing (see
    /// [`Watch::nudging`]).
    nudge: Option<Nudge>,
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
            nudge: None,
            state: Registration::None,
        }
    }

    /// The same watch, also waking its task (without expiring) at `nudge`, counted in the
    /// generation of [`nudges`] first. A hedged fleet request gives its hedge delay here, to the
    /// exchange's own deadline, and so registers no timer of its own.
    pub(crate) fn nudging(mut self, nudge: Option<Nudge>) -> Watch {
        self.nudge = nudge;
        self
    }

    /// The nudge's instant.
    fn nudge_at(&self) -> Option<Instant> {
        self.nudge.and_then(|n| self.at.checked_sub(n.lead()))
    }

    /// When the deadline is.
    pub(crate) fn at(&self) -> Instant {
        self.at
    }

    /// Whether the watch carries a nudge that has not woken the task yet: it must be polled
    /// while the exchange waits, even where another timer is nearer.
    pub(crate) fn nudges(&self) -> bool {
        match &self.state {
            Registration::Watched(entry) => self.nudge.is_some() && !entry.nudged(),
            _ => self.nudge.is_some(),
        }
    }

    /// `Ready` once the deadline has passed; otherwise the task of `cx` is woken when it does
    /// (and, without `Ready`, when a nudge passes).
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.state {
            Registration::None => match REGISTRY.register(self.at, self.nudge_at(), cx.waker()) {
                Some(entry) => {
                    self.state = Registration::Watched(entry);
                    Poll::Pending
                }
                None => {
                    let first = self.nudge_at().unwrap_or(self.at);
                    let first = tokio::time::Instant::from_std(first);
                    self.state = Registration::Fallback(Box::pin(tokio::time::sleep_until(first)));
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
            Registration::Fallback(sleep) => {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if self.nudge.take().is_some() {
                    // The nudge passed: count it, then sleep on until the deadline.
                    count_nudge();
                    sleep
                        .as_mut()
                        .reset(tokio::time::Instant::from_std(self.at));
                    return self.poll_expired(cx);
                }
                Poll::Ready(())
            }
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
    /// When the task is woken first without the deadline firing (see [`Watch::nudging`]).
    nudge: Option<Instant>,
    /// Set by the thread when the nudge has passed, before it wakes the task.
    nudged: AtomicBool,
    /// Set by the thread when the deadline has passed, before it wakes the task.
    fired: AtomicBool,
    /// Set when the [`Watch`] is dropped: the thread has nothing left to do for it.
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Entry {
    fn new(at: Instant, nudge: Option<Instant>, waker: &Waker) -> Entry {
        Entry {
            at,
            nudge,
            nudged: AtomicBool::new(false),
            fired: AtomicBool::new(false),
            done: AtomicBool::new(false),
            waker: Mutex::new(Some(waker.clone())),
        }
    }

    /// When the thread next has something to do for it: the nudge, then the deadline.
    fn next(&self) -> Instant {
        match self.nudge {
            Some(nudge) if !self.nudged() => nudge,
            _ => self.at,
        }
    }

    fn nudged(&self) -> bool {
        self.nudged.load(Ordering::Relaxed)
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
    /// Entries in the order of what is next due for each ([`Entry::next`]: its nudge, then its
    /// deadline) within each lane (see [`LANES`]), lanes opened as needed; done entries are
    /// removed lazily. An entry's next instant changes only while it is out of the queue.
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
        let at = entry.next();
        let lane = self.lane_for(at);
        if lane.back().is_none_or(|last| last.next() <= at) {
            lane.push_back(entry);
        } else {
            let i = lane.partition_point(|e| e.next() <= at);
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
                Some(last) if last.next() <= at && best.is_none_or(|(_, b)| last.next() > b) => {
                    best = Some((i, last.next()));
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

    /// Moves every entry whose deadline has passed at `now` into `due`, and every entry whose
    /// nudge has passed into `nudged` (marked, and queued again at its deadline); drops the
    /// ended ones from the lanes' fronts. The earliest instant left, if any.
    fn take_due(
        &mut self,
        now: Instant,
        due: &mut Vec<Arc<Entry>>,
        nudged: &mut Vec<Arc<Entry>>,
    ) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for lane in &mut self.lanes {
            loop {
                drop_ended(lane, &mut self.spares);
                match lane.front() {
                    Some(first) if first.next() <= now => {
                        let entry = lane.pop_front().expect("a front entry");
                        if entry.nudge.is_some() && !entry.nudged() {
                            entry.nudged.store(true, Ordering::Relaxed);
                            nudged.push(entry);
                        } else {
                            due.push(entry);
                        }
                    }
                    Some(first) => {
                        next = Some(next.map_or(first.next(), |t| t.min(first.next())));
                        break;
                    }
                    None => break,
                }
            }
        }
        for entry in nudged.iter() {
            next = Some(next.map_or(entry.at, |t| t.min(entry.at)));
            self.enqueue(entry.clone());
        }
        next
    }
}

/// Drops the ended entries at the front of `lane`, keeping up to [`SPARES`] of them for reuse.
fn drop_ended(lane: &mut VecDeque<Arc<Entry>>, spares: &mut Vec<Arc<Entry>>) {
    while lane.front().is_some_and(|e| e.done.load(Ordering::Relaxed)) {
        let ended = lane.pop_front().expect("a front entry");
        if spares.len() < SPARES {
            spares.push(ended);
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

    /// Queues a deadline at `at` (and a nudge, if before it) that wakes `waker`, starting the
    /// thread on first use; `None` if the thread cannot start.
    fn register(
        &'static self,
        at: Instant,
        nudge: Option<Instant>,
        waker: &Waker,
    ) -> Option<Arc<Entry>> {
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
            Thread::Until(t) => nudge.unwrap_or(at) < t,
        };
        // A spare is reused only when nothing else holds it (its watch may still be dropping).
        let entry = match s.spares.pop() {
            Some(mut spare) => match Arc::get_mut(&mut spare) {
                Some(e) => {
                    *e = Entry::new(at, nudge, waker);
                    spare
                }
                None => Arc::new(Entry::new(at, nudge, waker)),
            },
            None => Arc::new(Entry::new(at, nudge, waker)),
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

    /// The watchdog thread: fires every deadline that has passed and wakes every task whose
    /// nudge has passed, then sleeps until the next. A waker is the caller's code and may
    /// panic: the panic is caught and the thread goes on. Should the thread end all the same,
    /// the next registration starts another ([`Restart`]).
    fn run(&'static self) {
        let _restart = Restart(self);
        let (mut due, mut nudged) = (Vec::new(), Vec::new());
        let mut s = lock(&self.state);
        loop {
            let now = Instant::now();
            let next = s.take_due(now, &mut due, &mut nudged);
            if !due.is_empty() || !nudged.is_empty() {
                s.thread = Thread::Busy;
                drop(s);
                for entry in nudged.drain(..) {
                    count_nudge();
                    let waker = lock(&entry.waker).clone();
                    if let Some(waker) = waker {
                        wake(waker);
                    }
                }
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
            .register(now + Duration::from_secs(60), None, Waker::noop())
            .unwrap();
        let reused = Arc::as_ptr(&first);
        r.withdraw(&first);
        drop(first);
        let second = r
            .register(now + Duration::from_secs(61), None, Waker::noop())
            .unwrap();
        assert_eq!(Arc::as_ptr(&second), reused);
        assert_eq!(second.at, now + Duration::from_secs(61));
        assert!(!second.done.load(Ordering::Relaxed));
        assert!(!second.fired.load(Ordering::Relaxed));
        // One still held elsewhere is not reused.
        r.withdraw(&second);
        let third = r
            .register(now + Duration::from_secs(62), None, Waker::noop())
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
                r.register(t + Duration::from_secs(30), None, Waker::noop())
                    .unwrap(),
            );
            held.push(
                r.register(t + Duration::from_secs(20), None, Waker::noop())
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
                s.enqueue(Arc::new(Entry::new(
                    start + ms(offset + i),
                    None,
                    Waker::noop(),
                )));
            }
        }
        assert_eq!(s.lanes.len(), 3);
        // A done entry at a lane's front is dropped, not fired.
        s.lanes[1][0].done.store(true, Ordering::Relaxed);
        let (mut due, mut nudged) = (Vec::new(), Vec::new());
        let next = s.take_due(start + ms(42), &mut due, &mut nudged);
        assert!(nudged.is_empty());
        let mut fired: Vec<_> = due.iter().map(|e| e.at - start).collect();
        fired.sort();
        assert_eq!(fired, [21, 22, 23, 24, 40, 41, 42].map(ms));
        assert_eq!(next, Some(start + ms(43)));
        assert_eq!(s.queued(), 7);
    }

    #[tokio::test]
    async fn a_nudge_wakes_the_task_after_moving_the_generation_and_the_deadline_fires_later() {
        let start = Instant::now();
        let nudge = Nudge::before_deadline(Duration::from_millis(100));
        let mut watch = Watch::new(start + Duration::from_millis(120)).nudging(nudge);
        let before = nudges();
        // Woken by the nudge alone, 20 ms in: the watch has not expired, and the generation has
        // moved (other tests' nudges may move it too, so the clock is what tells).
        std::future::poll_fn(|cx| {
            assert!(watch.poll_expired(cx).is_pending(), "expired at the nudge");
            if nudges() != before && start.elapsed() >= Duration::from_millis(20) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        let nudged = start.elapsed();
        assert!(nudged >= Duration::from_millis(20), "{nudged:?}");
        assert!(!watch.nudges());
        let took = fires(watch).await + nudged;
        assert!(took >= Duration::from_millis(120), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn a_nudged_entry_is_queued_again_at_its_deadline() {
        let mut s = State::empty();
        let start = Instant::now();
        let ms = Duration::from_millis;
        let entry = Arc::new(Entry::new(
            start + ms(50),
            Some(start + ms(10)),
            Waker::noop(),
        ));
        s.enqueue(entry.clone());
        s.enqueue(Arc::new(Entry::new(start + ms(30), None, Waker::noop())));
        let (mut due, mut nudged) = (Vec::new(), Vec::new());
        assert_eq!(
            s.take_due(start + ms(5), &mut due, &mut nudged),
            Some(start + ms(10))
        );
        let next = s.take_due(start + ms(12), &mut due, &mut nudged);
        assert!(due.is_empty());
        assert_eq!(nudged.len(), 1);
        assert!(Arc::ptr_eq(&nudged[0], &entry) && entry.nudged());
        assert!(!entry.fired.load(Ordering::Relaxed));
        assert_eq!(next, Some(start + ms(30)));
        nudged.clear();
        // Then the other entry's deadline, then this one's: once each.
        assert_eq!(
            s.take_due(start + ms(31), &mut due, &mut nudged),
            Some(start + ms(50))
        );
        assert_eq!(due.len(), 1);
        due.clear();
        assert_eq!(s.take_due(start + ms(50), &mut due, &mut nudged), None);
        assert!(nudged.is_empty());
        assert!(Arc::ptr_eq(&due[0], &entry));
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
