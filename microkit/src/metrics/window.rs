//! The last few minutes of one route, for the console: a ring of fixed time slots, each
//! counting requests, errors and latencies, so its memory is fixed however long the process
//! runs and however busy it is.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use super::histogram::quantile;

/// The length of a slot.
pub(crate) const SLOT_SECONDS: u64 = 10;
/// How many slots the ring keeps: five minutes.
pub(crate) const SLOTS: usize = 30;

/// The smallest latency bound; anything faster counts in the first bucket.
const FINEST: f64 = 50e-6;
/// Bounds per doubling: a quantile is then off by at most one bucket, 19% of its value.
const PER_DOUBLING: f64 = 4.0;
/// 80 bounds reach about 43 s; slower requests count above the last one.
const FINE_BOUNDS: usize = 80;

/// Latency bucket bounds in seconds, finer than the exported histogram's, so that the
/// console's p50 and p99 mean something at every scale.
static BOUNDS: LazyLock<[f64; FINE_BOUNDS]> =
    LazyLock::new(|| std::array::from_fn(|k| FINEST * (k as f64 / PER_DOUBLING).exp2()));

/// The bucket of a latency: the first whose bound is at least `seconds` (the bounds are
/// inclusive), or the overflow bucket past the last. A binary search over the bounds, seven
/// comparisons, rather than a logarithm and its rounding on every request.
fn bucket_of(seconds: f64) -> usize {
    BOUNDS.partition_point(|&bound| bound < seconds)
}

/// One slot of the ring.
struct Slot {
    /// The number of the period the slot counts (seconds since the epoch / `SLOT_SECONDS`),
    /// plus one: zero is a slot never used.
    period: AtomicU64,
    requests: AtomicU32,
    errors: AtomicU32,
    latencies: [AtomicU32; FINE_BOUNDS + 1],
}

impl Slot {
    fn new() -> Self {
        Self {
            period: AtomicU64::new(0),
            requests: AtomicU32::new(0),
            errors: AtomicU32::new(0),
            latencies: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    fn clear(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
        for count in &self.latencies {
            count.store(0, Ordering::Relaxed);
        }
    }
}

/// Requests, errors and latencies over the last [`SLOTS`] × [`SLOT_SECONDS`] seconds.
pub(crate) struct Window {
    slots: Box<[Slot]>,
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window").finish_non_exhaustive()
    }
}

/// What one slot counted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    /// When the slot began, in seconds since the Unix epoch.
    pub(crate) start: u64,
    pub(crate) requests: u32,
    pub(crate) errors: u32,
    /// Median and 99th percentile latencies in seconds, when there were requests.
    pub(crate) p50: Option<f64>,
    pub(crate) p99: Option<f64>,
}

impl Window {
    pub(crate) fn new() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Slot::new()).collect(),
        }
    }

    /// Counts a request answered at `now` (seconds since the epoch) after `elapsed`.
    ///
    /// The first request of a new period clears the slot it reuses; a request counted by
    /// another thread in that instant may be lost with the old counts, which a console can
    /// afford and a lock on every request could not.
    pub(crate) fn record(&self, now: u64, elapsed: Duration, error: bool) {
        let period = now / SLOT_SECONDS;
        let slot = &self.slots[(period % SLOTS as u64) as usize];
        let current = slot.period.load(Ordering::Acquire);
        if current != period + 1
            && current < period + 1
            && slot
                .period
                .compare_exchange(current, period + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            slot.clear();
        } else if current > period + 1 {
            // A clock step backwards: the slot belongs to a later period already.
            return;
        }
        slot.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            slot.errors.fetch_add(1, Ordering::Relaxed);
        }
        slot.latencies[bucket_of(elapsed.as_secs_f64())].fetch_add(1, Ordering::Relaxed);
    }

    /// The whole window up to `now`: its counts, and quantiles over all its requests.
    pub(crate) fn summary(&self, now: u64) -> Point {
        let last = now / SLOT_SECONDS;
        let first = (last + 1).saturating_sub(SLOTS as u64);
        let mut merged = Point {
            start: first * SLOT_SECONDS,
            requests: 0,
            errors: 0,
            p50: None,
            p99: None,
        };
        let mut counts = vec![0u64; FINE_BOUNDS + 1];
        for period in first..=last {
            let slot = &self.slots[(period % SLOTS as u64) as usize];
            if slot.period.load(Ordering::Acquire) != period + 1 {
                continue;
            }
            merged.requests += slot.requests.load(Ordering::Relaxed);
            merged.errors += slot.errors.load(Ordering::Relaxed);
            for (total, count) in counts.iter_mut().zip(&slot.latencies) {
                *total += u64::from(count.load(Ordering::Relaxed));
            }
        }
        merged.p50 = quantile(&BOUNDS[..], &counts, 0.5);
        merged.p99 = quantile(&BOUNDS[..], &counts, 0.99);
        merged
    }

    /// The slots of the last [`SLOTS`] periods up to `now`, oldest first; periods without a
    /// request are zeros.
    pub(crate) fn points(&self, now: u64) -> Vec<Point> {
        let last = now / SLOT_SECONDS;
        let first = (last + 1).saturating_sub(SLOTS as u64);
        (first..=last)
            .map(|period| {
                let slot = &self.slots[(period % SLOTS as u64) as usize];
                let start = period * SLOT_SECONDS;
                if slot.period.load(Ordering::Acquire) != period + 1 {
                    return Point {
                        start,
                        requests: 0,
                        errors: 0,
                        p50: None,
                        p99: None,
                    };
                }
                let counts: Vec<u64> = slot
                    .latencies
                    .iter()
                    .map(|count| u64::from(count.load(Ordering::Relaxed)))
                    .collect();
                Point {
                    start,
                    requests: slot.requests.load(Ordering::Relaxed),
                    errors: slot.errors.load(Ordering::Relaxed),
                    p50: quantile(&BOUNDS[..], &counts, 0.5),
                    p99: quantile(&BOUNDS[..], &counts, 0.99),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_cover_the_range() {
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(FINEST), 0);
        assert_eq!(bucket_of(FINEST * 1.01), 1);
        for (index, &bound) in BOUNDS.iter().enumerate() {
            assert_eq!(bucket_of(bound), index, "at {bound}");
            assert_eq!(bucket_of(bound * 1.0001), index + 1, "above {bound}");
        }
        assert_eq!(bucket_of(3600.0), FINE_BOUNDS);
        assert!(BOUNDS[FINE_BOUNDS - 1] > 40.0);
    }

    #[test]
    fn quantiles_are_within_one_bucket_of_the_truth() {
        let window = Window::new();
        let now = 1_000_000;
        // 1..=1000 ms, one of each: p50 is 500 ms, p99 990 ms.
        for ms in 1..=1000 {
            window.record(now, Duration::from_millis(ms), ms % 100 == 0);
        }
        let point = window.points(now).pop().unwrap();
        assert_eq!(point.requests, 1000);
        assert_eq!(point.errors, 10);
        let (p50, p99) = (point.p50.unwrap(), point.p99.unwrap());
        let bucket = 2f64.powf(0.25);
        assert!(p50 > 0.5 / bucket && p50 < 0.5 * bucket, "p50 {p50}");
        assert!(p99 > 0.99 / bucket && p99 < 0.99 * bucket, "p99 {p99}");
    }

    #[test]
    fn the_ring_keeps_the_last_periods_only_and_its_size_is_fixed() {
        let window = Window::new();
        let start = 1_000_000 - 1_000_000 % SLOT_SECONDS;
        for period in 0..100u64 {
            for _ in 0..=period {
                window.record(
                    start + period * SLOT_SECONDS,
                    Duration::from_millis(1),
                    false,
                );
            }
        }
        let now = start + 99 * SLOT_SECONDS + 5;
        let points = window.points(now);
        assert_eq!(points.len(), SLOTS);
        // The oldest kept period is number 70, which counted 71 requests.
        assert_eq!(points[0].requests, 71);
        assert_eq!(points[0].start, start + 70 * SLOT_SECONDS);
        assert_eq!(points[SLOTS - 1].requests, 100);
        // Later, quiet periods read as zeros, not as the stale counts of their slots.
        let later = window.points(now + 10 * SLOT_SECONDS);
        assert_eq!(later[SLOTS - 1].requests, 0);
        assert_eq!(later[SLOTS - 1].p50, None);
        assert_eq!(later[SLOTS - 11].requests, 100);
        let summary = window.summary(now);
        assert_eq!(summary.requests, (71..=100).sum::<u32>());
        let p50 = summary.p50.unwrap();
        assert!(
            p50 > 0.001 / 2f64.powf(0.25) && p50 < 0.001 * 2f64.powf(0.25),
            "{p50}"
        );
        // A late request of an earlier period whose slot moved on is dropped, not misfiled.
        window.record(start, Duration::from_millis(1), false);
        assert_eq!(window.points(now)[0].requests, 71);
    }
}
