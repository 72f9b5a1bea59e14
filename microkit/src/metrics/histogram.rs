//! A histogram of durations made of atomics: recording is a few relaxed atomic adds, with no
//! lock and no allocation, so it can sit on every request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{SpanId, TraceId};

/// OpenTelemetry's advised bucket boundaries for `http.server.request.duration` and
/// `http.client.request.duration`, in seconds.
pub(crate) const OTEL_DURATION_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// A cumulative histogram of durations over fixed bucket bounds (upper bounds, inclusive, in
/// seconds), with the last exemplar seen in each bucket.
#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, and one more for `+Inf`; not cumulative (made so when encoded).
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
    exemplars: Box<[Mutex<Option<Exemplar>>]>,
}

/// A sample that links a bucket to the trace of one request that fell in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exemplar {
    pub(crate) trace_id: TraceId,
    /// The span current when it was recorded (a request's server span, a call's caller).
    pub(crate) span_id: SpanId,
    pub(crate) value: f64,
    /// Seconds since the Unix epoch.
    pub(crate) timestamp: f64,
}

/// What a histogram holds at one moment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistogramSnapshot {
    /// `(upper bound, cumulative count)`, ending with `+Inf` and the total count.
    pub(crate) buckets: Vec<(f64, u64)>,
    pub(crate) sum: f64,
    pub(crate) count: u64,
    /// The exemplar of each bucket, by bucket index.
    pub(crate) exemplars: Vec<Option<Exemplar>>,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            exemplars: (0..=bounds.len()).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Records `elapsed`, and keeps `trace` (trace and span ids) as the bucket's exemplar
    /// when there is one.
    pub(crate) fn observe(&self, elapsed: Duration, trace: Option<(TraceId, SpanId)>) {
        let seconds = elapsed.as_secs_f64();
        let index = self.bounds.partition_point(|&bound| bound < seconds);
        self.counts[index].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        if let Some((trace_id, span_id)) = trace {
            // An exemplar is a sample, not a record: under contention, skip it rather than
            // wait for the lock.
            if let Ok(mut slot) = self.exemplars[index].try_lock() {
                *slot = Some(Exemplar {
                    trace_id,
                    span_id,
                    value: seconds,
                    timestamp: unix_seconds(),
                });
            }
        }
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (index, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let bound = self.bounds.get(index).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, cumulative));
        }
        let exemplars = self
            .exemplars
            .iter()
            .map(|slot| *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
            .collect();
        HistogramSnapshot {
            buckets,
            sum: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count: cumulative,
            exemplars,
        }
    }
}

/// The time now in seconds since the Unix epoch.
pub(crate) fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The `q` quantile (0 to 1) of the samples counted per bucket in `counts` (not cumulative),
/// the bucket `i` holding values up to `bounds[i]` and above `bounds[i - 1]` (or 0), the last
/// one everything above the last bound. Interpolates linearly within the bucket, as
/// Prometheus' `histogram_quantile` does; a quantile in the overflow bucket is its lower
/// bound. `None` without samples.
pub(crate) fn quantile(bounds: &[f64], counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0u64;
    for (index, &count) in counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        if (below + count) as f64 >= rank {
            let lower = if index == 0 { 0.0 } else { bounds[index - 1] };
            let Some(&upper) = bounds.get(index) else {
                return Some(lower);
            };
            let within = (rank - below as f64) / count as f64;
            return Some(lower + (upper - lower) * within);
        }
        below += count;
    }
    bounds.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_the_sum() {
        let histogram = Histogram::new(&OTEL_DURATION_BOUNDS);
        histogram.observe(Duration::from_millis(5), None);
        histogram.observe(Duration::from_millis(7), None);
        histogram.observe(Duration::from_secs(60), None);
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 3);
        // 5 ms is at the first bound exactly: bounds are inclusive.
        assert_eq!(snapshot.buckets[0], (0.005, 1));
        assert_eq!(snapshot.buckets[1], (0.01, 2));
        assert_eq!(*snapshot.buckets.last().unwrap(), (f64::INFINITY, 3));
        assert_eq!(snapshot.buckets.len(), OTEL_DURATION_BOUNDS.len() + 1);
        assert!((snapshot.sum - 60.012).abs() < 1e-9, "{}", snapshot.sum);
    }

    #[test]
    fn the_last_trace_in_a_bucket_is_its_exemplar() {
        let histogram = Histogram::new(&OTEL_DURATION_BOUNDS);
        let first = TraceId::from_bytes([1; 16]).unwrap();
        let second = TraceId::from_bytes([2; 16]).unwrap();
        let span = SpanId::from_u64(9).unwrap();
        histogram.observe(Duration::from_millis(30), Some((first, span)));
        histogram.observe(Duration::from_millis(40), Some((second, span)));
        histogram.observe(Duration::from_millis(45), None);
        let exemplars = histogram.snapshot().exemplars;
        let in_50ms = exemplars[3].expect("an exemplar at le=0.05");
        assert_eq!((in_50ms.trace_id, in_50ms.span_id), (second, span));
        assert!((in_50ms.value - 0.04).abs() < 1e-12);
        assert!(exemplars.iter().filter(|e| e.is_some()).count() == 1);
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let bounds = [1.0, 2.0, 4.0];
        // 10 samples in (0, 1], 10 in (1, 2], none in (2, 4], 1 above 4.
        let counts = [10, 10, 0, 1];
        assert_eq!(quantile(&bounds, &counts, 0.0), Some(0.0));
        let median = quantile(&bounds, &counts, 0.5).unwrap();
        assert!((median - 1.05).abs() < 1e-9, "{median}");
        assert_eq!(quantile(&bounds, &counts, 20.0 / 21.0), Some(2.0));
        assert_eq!(quantile(&bounds, &counts, 1.0), Some(4.0));
        assert_eq!(quantile(&bounds, &[0, 0, 0, 0], 0.5), None);
        let p99 = quantile(&bounds, &[0, 100, 0, 0], 0.99).unwrap();
        assert!((p99 - 1.99).abs() < 1e-9, "{p99}");
    }
}
