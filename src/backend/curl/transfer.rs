//! One curl transfer, driven by whoever reads it: the blocking caller itself, or a transfer
//! thread for async code. [`Pair`] is a reused easy handle with the multi handle that drives it
//! (the multi keeps its connections); [`Transfer`] is the pair while it runs.
//!
//! The drive loop is libcurl's own `curl_easy_perform` turned inside out: perform, look for the
//! transfer's end, wait on its sockets, until what the reader wants has come (the head, a
//! piece of the body) or the deadline passes. A reader that does not read does not drive, so a
//! slow reader holds the transfer paused rather than its body in memory. A waker lets another
//! thread end the wait at once (a dropped async request).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use curl::easy::Easy2;
use curl::multi::{Easy2Handle, Multi, MultiWaker};

use super::Inner;
use super::collector::Collector;
use crate::error::{Error, ErrorKind, Result, TimeoutPhase};
use crate::response::Phases;

/// The longest single wait on libcurl's sockets: libcurl's own timers are no finer.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// A reused easy handle and the multi handle that drives it, whose connection cache it uses.
pub(super) struct Pair {
    pub(super) multi: Multi,
    pub(super) easy: Easy2<Collector>,
    /// What the handle was last set up with (kept between transfers). Boxed: a transfer,
    /// which holds it, moves through several futures and a thread's queue as it starts.
    pub(super) sent: Box<super::Sent>,
}

// SAFETY: libcurl lets a handle move from thread to thread as long as one thread at a time uses
// it (libcurl-thread(3)). A pair is owned, by the pool or by the one transfer running on it,
// and its handles are reached only through it; a `MultiWaker` (a weak reference) only calls
// `curl_multi_wakeup`, which libcurl makes for other threads.
#[allow(unsafe_code)]
unsafe impl Send for Pair {}

/// A transfer in progress: a pair whose easy handle is added to its multi handle.
pub(super) struct Transfer {
    /// The running pair: `None` once the transfer is finished or failed.
    running: Option<Running>,
    inner: Arc<Inner>,
    /// When the transfer started, and its deadline.
    started: Instant,
    deadline: Instant,
    /// The transfer's end, once libcurl reported it.
    end: Option<std::result::Result<(), curl::Error>>,
    /// Set by another thread to end the transfer (see [`Transfer::canceler`]).
    cancel: Arc<AtomicBool>,
}

/// A pair while its transfer runs. Dropped without [`Transfer::finish`], its handle is removed
/// from the multi handle, which ends the transfer and closes its connection unless the
/// response was read to its end.
struct Running {
    multi: Multi,
    handle: Easy2Handle<Collector>,
    sent: Box<super::Sent>,
}

// SAFETY: as for `Pair`: the transfer owns its handles, used by one thread at a time.
#[allow(unsafe_code)]
unsafe impl Send for Transfer {}

/// Ends a transfer from another thread: sets its flag and wakes its wait.
pub(super) struct Canceler {
    flag: Arc<AtomicBool>,
    waker: MultiWaker,
}

impl Canceler {
    pub(super) fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
        let _ = self.waker.wakeup();
    }
}

/// The error of a transfer used after it ended (never, from the code paths that read it).
fn gone() -> Error {
    Error::new(ErrorKind::Canceled).with_detail("the transfer has ended")
}

impl Transfer {
    /// Starts the transfer of `pair` (set up for its request) by `deadline`.
    pub(super) fn start(inner: Arc<Inner>, pair: Pair, deadline: Instant) -> Result<Transfer> {
        let Pair { multi, easy, sent } = pair;
        let handle = multi.add2(easy).map_err(|e| {
            Error::new(ErrorKind::Builder)
                .with_detail("libcurl refused the transfer")
                .with_source(e)
        })?;
        Ok(Transfer {
            running: Some(Running {
                multi,
                handle,
                sent,
            }),
            inner,
            started: Instant::now(),
            deadline,
            end: None,
            cancel: Arc::new(AtomicBool::new(false)),
        })
    }

    /// What ends this transfer from another thread.
    pub(super) fn canceler(&self) -> Option<Canceler> {
        self.running.as_ref().map(|r| Canceler {
            flag: self.cancel.clone(),
            waker: r.multi.waker(),
        })
    }

    /// How opening its connection went (nothing for a reused one).
    pub(super) fn phases(&self) -> Phases {
        let Some(r) = &self.running else {
            return Phases::default();
        };
        let named = || {
            let host = r.sent.url.as_ref().and_then(|u| u.host());
            host.is_some_and(|h| crate::url::host_ip(h).is_none())
        };
        phases_of(r.handle.raw(), named)
    }

    /// What was collected so far (`None` once the transfer is over).
    pub(super) fn collector(&mut self) -> Option<&mut Collector> {
        self.running.as_mut().map(|r| r.handle.get_mut())
    }

    /// Drives the transfer until its head has arrived (or it ended).
    pub(super) fn until_head(&mut self) -> Result<()> {
        self.drive(|c| c.headers_done)
    }

    /// Its deadline.
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether libcurl reported the transfer's end.
    pub(super) fn ended(&self) -> bool {
        self.end.is_some()
    }

    /// The next piece of the body, `None` at its end (the pair then goes back to the pool).
    /// `whole`: the reader reads the body whole: the transfer never pauses for it, and the
    /// body is gathered in one buffer to its end (one copy of it, not one per piece).
    pub(super) fn next_piece(&mut self, whole: bool) -> Result<Option<Bytes>> {
        let Some(c) = self.collector() else {
            return Ok(None);
        };
        c.whole |= whole;
        c.asked = true;
        if !c.whole && !c.body.is_empty() {
            return Ok(Some(c.take_body()));
        }
        if self.end.is_none() {
            // Read whole, the transfer runs to its end before the body is taken.
            self.drive(|c| !c.whole && !c.body.is_empty())?;
        }
        if let Some(c) = self.collector().filter(|c| !c.body.is_empty()) {
            return Ok(Some(c.take_body()));
        }
        self.finish()?;
        Ok(None)
    }

    /// Performs and waits until `ready` holds for what was collected, or the transfer ended.
    fn drive(&mut self, ready: impl Fn(&Collector) -> bool) -> Result<()> {
        let read_timeout = self.inner.limits.read_timeout;
        let mut waiting_since = Instant::now();
        loop {
            let Some(r) = &mut self.running else {
                return Err(gone());
            };
            let c = r.handle.get_mut();
            if std::mem::take(&mut c.paused) {
                if let Err(e) = r.handle.unpause_write() {
                    return Err(self.fail(e));
                }
            }
            r.handle.get_mut().received = false;
            if let Err(e) = r.multi.perform() {
                return Err(self.failed_multi(e));
            }
            self.read_end();
            match self.end.take() {
                Some(Err(e)) => return Err(self.fail(e)),
                Some(Ok(())) => {
                    self.end = Some(Ok(()));
                    return Ok(());
                }
                None => {}
            }
            let Some(r) = &mut self.running else {
                return Err(gone());
            };
            let c = r.handle.get_mut();
            if ready(c) {
                return Ok(());
            }
            if self.cancel.load(Ordering::Acquire) {
                self.running = None;
                return Err(Error::new(ErrorKind::Canceled).with_detail("the request was dropped"));
            }
            let now = Instant::now();
            if c.received {
                waiting_since = now;
            }
            let body = c.headers_done;
            if now >= self.deadline {
                self.running = None;
                let phase = if body {
                    TimeoutPhase::Body
                } else {
                    TimeoutPhase::Headers
                };
                return Err(Error::new(ErrorKind::Timeout(phase)).with_detail("deadline reached"));
            }
            // `read_timeout` covers each wait for the body, not the reader's own pauses.
            let idle_left = match read_timeout {
                Some(idle) if body => {
                    let left = idle.saturating_sub(now - waiting_since);
                    if left.is_zero() {
                        self.running = None;
                        return Err(Error::new(ErrorKind::Timeout(TimeoutPhase::Body))
                            .with_detail("read_timeout reached waiting for the body"));
                    }
                    left
                }
                _ => MAX_WAIT,
            };
            let curl_wants = r.multi.get_timeout().ok().flatten().unwrap_or(MAX_WAIT);
            let wait = (self.deadline - now)
                .min(idle_left)
                .min(curl_wants)
                .min(MAX_WAIT);
            if !wait.is_zero() {
                if let Err(e) = r.multi.poll(&mut [], wait) {
                    return Err(self.failed_multi(e));
                }
            }
        }
    }

    /// Notes the transfer's end if libcurl reports it.
    fn read_end(&mut self) {
        let Some(r) = &self.running else {
            return;
        };
        let mut end = None;
        r.multi.messages(|m| {
            if let Some(result) = m.result_for2(&r.handle) {
                end = Some(result);
            }
        });
        if end.is_some() {
            self.end = end;
        }
    }

    /// The error that ended the transfer, mapped with what was collected; the transfer is
    /// then dropped where it is (its connection closed).
    fn fail(&mut self, e: curl::Error) -> Error {
        let total_hit = self.started.elapsed() + Duration::from_millis(10)
            >= self.deadline.saturating_duration_since(self.started);
        let err = match self.collector() {
            Some(c) => super::map_error(e, c, c.proxied, total_hit),
            None => Error::new(ErrorKind::Protocol).with_source(e),
        };
        self.running = None;
        err
    }

    fn failed_multi(&mut self, e: curl::MultiError) -> Error {
        self.running = None;
        Error::new(ErrorKind::Protocol)
            .with_detail("libcurl's multi handle failed")
            .with_source(e)
    }

    /// The transfer ended well: its pair goes back to the pool, connections and all.
    fn finish(&mut self) -> Result<()> {
        let Some(Running {
            multi,
            mut handle,
            sent,
        }) = self.running.take()
        else {
            return Ok(());
        };
        handle.get_mut().clear();
        match multi.remove2(handle) {
            Ok(easy) => {
                self.inner.put_back(Pair { multi, easy, sent });
                Ok(())
            }
            Err(e) => Err(Error::new(ErrorKind::Protocol)
                .with_detail("libcurl could not end the transfer")
                .with_source(e)),
        }
    }
}

/// libcurl's timings of the connection a transfer opened, read while it runs: the `curl`
/// crate reads them only from a handle outside a multi handle. Each is from the transfer's
/// start: the lookup ends at `NAMELOOKUP`, the TCP connection at `CONNECT`, TLS at
/// `APPCONNECT` (0 without TLS). `named`: whether the URL named a host (else there was no
/// lookup), asked only for a new connection.
#[allow(unsafe_code)]
fn phases_of(easy: *mut curl_sys::CURL, named: impl FnOnce() -> bool) -> Phases {
    let mut connects: std::os::raw::c_long = 0;
    // SAFETY: `easy` is the live handle of this transfer, used by this thread only; a `LONG`
    // info writes one `c_long` through the pointer.
    let rc = unsafe {
        curl_sys::curl_easy_getinfo(
            easy,
            curl_sys::CURLINFO_NUM_CONNECTS,
            &mut connects as *mut std::os::raw::c_long,
        )
    };
    if rc != curl_sys::CURLE_OK || connects == 0 {
        return Phases::default();
    }
    let secs = |info| {
        let mut v: std::os::raw::c_double = 0.0;
        // SAFETY: as above; a `DOUBLE` info writes one `c_double`.
        let rc = unsafe {
            curl_sys::curl_easy_getinfo(easy, info, &mut v as *mut std::os::raw::c_double)
        };
        (rc == curl_sys::CURLE_OK && v.is_finite() && v > 0.0).then(|| Duration::from_secs_f64(v))
    };
    // 0 where libcurl took no time it could measure (a name from its cache).
    let at = |info| secs(info).unwrap_or_default();
    let dns = named().then(|| at(curl_sys::CURLINFO_NAMELOOKUP_TIME));
    let connected = at(curl_sys::CURLINFO_CONNECT_TIME);
    Phases {
        dns,
        connect: Some(connected.saturating_sub(dns.unwrap_or_default())),
        tls: secs(curl_sys::CURLINFO_APPCONNECT_TIME).map(|s| s.saturating_sub(connected)),
    }
}
