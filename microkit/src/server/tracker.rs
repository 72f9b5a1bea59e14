//! Which connections are open and how busy each is; one sweeper tells the idle ones to close,
//! and a shutdown tells them all.
//!
//! Why a sweeper rather than a timer and a shutdown receiver in each connection: a connection's
//! task polls everything it waits on each time it wakes, which is once per request. A timer
//! and a channel receiver cost a fifth of a small request's own work in the server (a
//! `watch::Receiver::changed` and a `Sleep` polled, a random branch order drawn). Here a wake
//! costs a waker registration and two flag reads; the sweeper walks the open connections a
//! few times per timeout, which costs nothing per request.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::Context;
use std::time::Duration;

use atomic_waker::AtomicWaker;
use slab::Slab;
use tokio::time::{Instant, MissedTickBehavior};

/// How long a connection may wait for the next request head.
///
/// The server keeps this timer itself rather than letting hyper arm its header read timer,
/// which allocates and registers a fresh timer for every request head (an eighth of a small
/// request's instructions). Waiting for the next request on an HTTP/1.1 connection is waiting
/// for its head, so there the header read timeout caps the keep-alive timeout (as it did under
/// hyper's timer); a slow head on a fresh connection is cut by the same deadline.
#[derive(Debug, Clone, Copy)]
pub(super) struct IdleTimeouts {
    pub(super) keep_alive: Duration,
    pub(super) header_read: Duration,
}

impl IdleTimeouts {
    /// How often the sweeper looks. It learns of a connection's last request on its next pass
    /// and sees the deadline pass on a later one, so a connection is closed at most a quarter
    /// of the shorter timeout late, and never early.
    fn sweep_period(self) -> Duration {
        (self.keep_alive.min(self.header_read) / 8).max(Duration::from_millis(1))
    }
}

/// The open connections.
pub(super) struct Tracker {
    connections: Mutex<Slab<Arc<Activity>>>,
    timeouts: IdleTimeouts,
    shutting_down: AtomicBool,
}

impl Tracker {
    pub(super) fn new(timeouts: IdleTimeouts) -> Arc<Self> {
        Arc::new(Self {
            connections: Mutex::new(Slab::new()),
            timeouts,
            shutting_down: AtomicBool::new(false),
        })
    }

    /// Starts tracking a connection that begins serving now; it is told to close at once if
    /// the server is already shutting down.
    pub(super) fn open(self: &Arc<Self>) -> Tracked {
        let activity = Arc::new(Activity {
            started: Instant::now(),
            timeouts: self.timeouts,
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            http2: AtomicBool::new(false),
            seen_requests: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        let mut connections = self.lock();
        if self.shutting_down.load(Ordering::Relaxed) {
            activity.shutdown.store(true, Ordering::Release);
        }
        let key = connections.insert(activity.clone());
        Tracked {
            activity,
            key,
            tracker: self.clone(),
        }
    }

    /// Tells every connection, and every one opened from now on, to finish and close.
    pub(super) fn shut_down(&self) {
        let connections = self.lock();
        self.shutting_down.store(true, Ordering::Relaxed);
        for (_, activity) in connections.iter() {
            activity.tell(&activity.shutdown);
        }
    }

    /// Sweeps for idle connections until the tracker is dropped or shuts down. Holds the
    /// tracker weakly, so a server dropped without shutting down ends it too.
    pub(super) async fn sweep(tracker: Weak<Self>, period: Duration) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(tracker) = tracker.upgrade() else {
                return;
            };
            if tracker.shutting_down.load(Ordering::Relaxed) {
                return;
            }
            tracker.tell_idle(Instant::now());
        }
    }

    pub(super) fn sweep_period(&self) -> Duration {
        self.timeouts.sweep_period()
    }

    fn tell_idle(&self, now: Instant) {
        for (_, activity) in self.lock().iter() {
            if activity.idle_at(now) {
                activity.tell(&activity.idle);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slab<Arc<Activity>>> {
        // The slab stays consistent whatever panicked while it was held.
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A tracked connection; dropping it stops the tracking.
pub(super) struct Tracked {
    activity: Arc<Activity>,
    key: usize,
    tracker: Arc<Tracker>,
}

impl Tracked {
    pub(super) fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.tracker.lock().remove(self.key);
    }
}

/// What the server told a connection since it last asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Told {
    Nothing,
    /// The server shuts down: finish the requests in flight and close.
    ShutDown,
    /// The connection looked idle past its deadline when the sweeper passed.
    Idle,
}

/// How many requests a connection started and has running, what it speaks, what the sweeper
/// last saw of it, and what the server told it.
///
/// A request only counts itself (two atomic increments, one decrement): when it happened is
/// for the sweeper to notice, so no request reads the clock for it.
pub(super) struct Activity {
    started: Instant,
    timeouts: IdleTimeouts,
    /// Requests started, ever.
    requests: AtomicU64,
    in_flight: AtomicUsize,
    /// Whether the connection speaks HTTP/2, whose idle wait is not a header read.
    http2: AtomicBool,
    /// `requests` when the sweeper last looked, and when (ms after `started`) it last saw a
    /// request started or running. Only the sweeper writes them.
    seen_requests: AtomicU64,
    last_active_ms: AtomicU64,
    shutdown: AtomicBool,
    idle: AtomicBool,
    /// The connection's task, woken when it is told something.
    waker: AtomicWaker,
}

impl Activity {
    /// What the server told the connection, registering its task to be woken for the next
    /// news. An idle notice is handed out once.
    pub(super) fn told(&self, cx: &Context<'_>) -> Told {
        // Registered before the flags are read, so news set after the read wakes the task.
        self.waker.register(cx.waker());
        if self.shutdown.load(Ordering::Acquire) {
            Told::ShutDown
        } else if self.idle.load(Ordering::Relaxed) && self.idle.swap(false, Ordering::Acquire) {
            Told::Idle
        } else {
            Told::Nothing
        }
    }

    /// Whether no request started or ran since the sweeper found the connection idle: a
    /// request may have arrived between its pass and the connection acting on the notice.
    pub(super) fn still_idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
            && self.requests.load(Ordering::Relaxed) == self.seen_requests.load(Ordering::Relaxed)
    }

    /// Whether any request head arrived: until one does, hyper's graceful shutdown does not
    /// close a connection that sent part of one, so an idle one is closed outright.
    pub(super) fn served(&self) -> bool {
        self.requests.load(Ordering::Relaxed) > 0
    }

    /// The sweeper's look at `now`: whether the connection has been idle past its deadline.
    /// A request started or running since the last look makes `now` its last activity.
    fn idle_at(&self, now: Instant) -> bool {
        let now_ms = now.saturating_duration_since(self.started).as_millis() as u64;
        let requests = self.requests.load(Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) > 0
            || requests != self.seen_requests.load(Ordering::Relaxed)
        {
            self.seen_requests.store(requests, Ordering::Relaxed);
            self.last_active_ms.store(now_ms, Ordering::Relaxed);
            return false;
        }
        let timeouts = self.timeouts;
        let limit = if self.http2.load(Ordering::Relaxed) {
            timeouts.keep_alive
        } else {
            timeouts.keep_alive.min(timeouts.header_read)
        };
        let idle_since = Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed));
        self.started + idle_since + limit <= now
    }

    fn tell(&self, flag: &AtomicBool) {
        flag.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// Counts a request as in flight until dropped, even when the client goes away mid-request.
pub(super) struct InFlight(Arc<Activity>);

impl InFlight {
    pub(super) fn start(activity: &Arc<Activity>, version: http::Version) -> Self {
        if activity.requests.fetch_add(1, Ordering::Relaxed) == 0 {
            activity
                .http2
                .store(version == http::Version::HTTP_2, Ordering::Relaxed);
        }
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn timeouts() -> IdleTimeouts {
        IdleTimeouts {
            keep_alive: Duration::from_secs(60),
            header_read: Duration::from_secs(10),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_told_once_and_a_busy_one_never() {
        let tracker = Tracker::new(timeouts());
        let idle = tracker.open();
        let busy = tracker.open();
        let request = InFlight::start(busy.activity(), http::Version::HTTP_11);
        let cx = Context::from_waker(Waker::noop());
        tracker.tell_idle(Instant::now());
        assert_eq!(idle.activity().told(&cx), Told::Nothing);

        tokio::time::advance(Duration::from_secs(11)).await;
        tracker.tell_idle(Instant::now());
        assert_eq!(idle.activity().told(&cx), Told::Idle);
        assert_eq!(idle.activity().told(&cx), Told::Nothing, "told once");
        assert_eq!(busy.activity().told(&cx), Told::Nothing);

        drop(request);
        tracker.tell_idle(Instant::now());
        assert_eq!(
            busy.activity().told(&cx),
            Told::Nothing,
            "just finished one"
        );
        tokio::time::advance(Duration::from_secs(9)).await;
        tracker.tell_idle(Instant::now());
        assert_eq!(
            busy.activity().told(&cx),
            Told::Nothing,
            "idle since the last look"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        tracker.tell_idle(Instant::now());
        assert_eq!(busy.activity().told(&cx), Told::Idle);
        assert!(busy.activity().still_idle());
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_between_the_sweep_and_the_notice_keeps_the_connection() {
        let tracker = Tracker::new(timeouts());
        let tracked = tracker.open();
        tokio::time::advance(Duration::from_secs(11)).await;
        tracker.tell_idle(Instant::now());
        drop(InFlight::start(tracked.activity(), http::Version::HTTP_11));
        let cx = Context::from_waker(Waker::noop());
        assert_eq!(tracked.activity().told(&cx), Told::Idle);
        assert!(!tracked.activity().still_idle());
        assert!(tracked.activity().served());
    }

    #[tokio::test(start_paused = true)]
    async fn http2_connections_wait_the_keep_alive_timeout() {
        let tracker = Tracker::new(timeouts());
        let h2 = tracker.open();
        drop(InFlight::start(h2.activity(), http::Version::HTTP_2));
        assert!(
            !h2.activity().idle_at(Instant::now()),
            "a request since the last look"
        );
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!h2.activity().idle_at(Instant::now()));
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(h2.activity().idle_at(Instant::now()));
    }

    #[tokio::test]
    async fn shutdown_reaches_open_and_later_connections_and_untracks_closed_ones() {
        let tracker = Tracker::new(timeouts());
        let open = tracker.open();
        let closed = tracker.open();
        drop(closed);
        assert_eq!(tracker.lock().len(), 1);
        tracker.shut_down();
        let cx = Context::from_waker(Waker::noop());
        assert_eq!(open.activity().told(&cx), Told::ShutDown);
        assert_eq!(tracker.open().activity().told(&cx), Told::ShutDown);
    }
}
