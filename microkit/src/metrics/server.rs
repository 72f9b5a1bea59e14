//! What a server measures: every answer by method, route and status, the requests and
//! connections open now, the requests refused at the limits, and the latest problems.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::histogram::{Histogram, HistogramSnapshot, OTEL_DURATION_BOUNDS};
use super::window::{Point, Window};
use super::{SpanId, TraceId};

/// How many problems the console remembers.
pub(crate) const RECENT_PROBLEMS: usize = 50;
/// The longest text of a problem's fields kept, so the memory of the list stays bounded.
const MAX_FIELD: usize = 160;

/// The series of one server.
#[derive(Debug, Default)]
pub(crate) struct ServerMetrics {
    routes: RwLock<Routes>,
    pub(crate) in_flight: AtomicI64,
    pub(crate) open_connections: AtomicI64,
    pub(crate) body_limit_rejections: AtomicU64,
    pub(crate) timeout_rejections: AtomicU64,
    problems: Mutex<VecDeque<ProblemSeen>>,
}

/// The series by route pattern, looked up on every request: hashed with foldhash rather than
/// SipHash, as the keys are the service's own patterns (and `unmatched`), never a client's
/// text, so a hash that resists chosen keys defends nothing.
type Routes = HashMap<Arc<str>, Arc<RouteSeries>, foldhash::fast::RandomState>;

/// The series of one route pattern, by method.
#[derive(Debug)]
struct RouteSeries {
    methods: RwLock<Vec<Arc<MethodSeries>>>,
}

/// The series of one method on one route: a histogram per status, and the console's window.
#[derive(Debug)]
pub(crate) struct MethodSeries {
    method: Box<str>,
    statuses: RwLock<Vec<(u16, Arc<Histogram>)>>,
    pub(crate) window: Window,
}

/// One histogram series as exported.
pub(crate) struct RequestSeries {
    pub(crate) method: String,
    pub(crate) route: String,
    pub(crate) status: u16,
    pub(crate) histogram: HistogramSnapshot,
}

/// One route and method as the console shows it.
pub(crate) struct RouteActivity {
    pub(crate) method: String,
    pub(crate) route: String,
    /// The whole window.
    pub(crate) summary: Point,
    /// Slot by slot, oldest first.
    pub(crate) points: Vec<Point>,
}

/// A problem answered, as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProblemSeen {
    /// Milliseconds since the Unix epoch.
    pub(crate) at_ms: u64,
    pub(crate) method: String,
    pub(crate) route: String,
    pub(crate) path: String,
    pub(crate) status: u16,
    pub(crate) request_id: Option<String>,
    pub(crate) trace_id: Option<TraceId>,
}

impl ServerMetrics {
    /// The series of `method` on `route`, made on first use. After that, finding it takes
    /// read locks and comparisons only: no allocation on the request path.
    pub(crate) fn series(&self, method: &str, route: &str) -> Arc<MethodSeries> {
        let existing = self
            .routes
            .read()
            .expect("routes lock poisoned")
            .get(route)
            .cloned();
        let route_series = existing.unwrap_or_else(|| {
            self.routes
                .write()
                .expect("routes lock poisoned")
                .entry(Arc::from(route))
                .or_insert_with(|| {
                    Arc::new(RouteSeries {
                        methods: RwLock::new(Vec::new()),
                    })
                })
                .clone()
        });
        let found = route_series
            .methods
            .read()
            .expect("methods lock poisoned")
            .iter()
            .find(|series| &*series.method == method)
            .cloned();
        found.unwrap_or_else(|| {
            let mut methods = route_series.methods.write().expect("methods lock poisoned");
            if let Some(series) = methods.iter().find(|series| &*series.method == method) {
                return series.clone();
            }
            let series = Arc::new(MethodSeries {
                method: method.into(),
                statuses: RwLock::new(Vec::new()),
                window: Window::new(),
            });
            methods.push(series.clone());
            series
        })
    }

    /// Every histogram series, sorted by route, method and status.
    pub(crate) fn request_series(&self) -> Vec<RequestSeries> {
        let mut all = Vec::new();
        for (route, series) in self.routes.read().expect("routes lock poisoned").iter() {
            for method in series.methods.read().expect("methods lock poisoned").iter() {
                for (status, histogram) in method.statuses.read().expect("lock poisoned").iter() {
                    all.push(RequestSeries {
                        method: method.method.to_string(),
                        route: route.to_string(),
                        status: *status,
                        histogram: histogram.snapshot(),
                    });
                }
            }
        }
        all.sort_by(|a, b| (&a.route, &a.method, a.status).cmp(&(&b.route, &b.method, b.status)));
        all
    }

    /// The console's view of every route and method up to `now` (seconds since the epoch).
    pub(crate) fn activity(&self, now: u64) -> Vec<RouteActivity> {
        let mut all = Vec::new();
        for (route, series) in self.routes.read().expect("routes lock poisoned").iter() {
            for method in series.methods.read().expect("methods lock poisoned").iter() {
                all.push(RouteActivity {
                    method: method.method.to_string(),
                    route: route.to_string(),
                    summary: method.window.summary(now),
                    points: method.window.points(now),
                });
            }
        }
        all.sort_by(|a, b| (&a.route, &a.method).cmp(&(&b.route, &b.method)));
        all
    }

    /// Remembers a problem, forgetting the oldest past [`RECENT_PROBLEMS`].
    pub(crate) fn problem(&self, mut seen: ProblemSeen) {
        truncate(&mut seen.path);
        truncate(&mut seen.route);
        if let Some(id) = &mut seen.request_id {
            truncate(id);
        }
        let mut problems = self.problems.lock().expect("problems lock poisoned");
        if problems.len() == RECENT_PROBLEMS {
            problems.pop_front();
        }
        problems.push_back(seen);
    }

    /// The problems remembered, newest first.
    pub(crate) fn recent_problems(&self) -> Vec<ProblemSeen> {
        let problems = self.problems.lock().expect("problems lock poisoned");
        problems.iter().rev().cloned().collect()
    }
}

fn truncate(text: &mut String) {
    if text.len() > MAX_FIELD {
        let mut end = MAX_FIELD;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
}

impl MethodSeries {
    /// Counts an answer with `status` after `elapsed`, at `now` (seconds since the epoch).
    pub(crate) fn record(
        &self,
        status: u16,
        elapsed: Duration,
        now: u64,
        trace: Option<(TraceId, SpanId)>,
    ) {
        self.histogram(status).observe(elapsed, trace);
        self.window.record(now, elapsed, status >= 500);
    }

    fn histogram(&self, status: u16) -> Arc<Histogram> {
        let found = self
            .statuses
            .read()
            .expect("statuses lock poisoned")
            .iter()
            .find(|(code, _)| *code == status)
            .map(|(_, histogram)| histogram.clone());
        found.unwrap_or_else(|| {
            let mut statuses = self.statuses.write().expect("statuses lock poisoned");
            if let Some((_, histogram)) = statuses.iter().find(|(code, _)| *code == status) {
                return histogram.clone();
            }
            let histogram = Arc::new(Histogram::new(&OTEL_DURATION_BOUNDS));
            statuses.push((status, histogram.clone()));
            histogram
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_made_once_and_found_again() {
        let metrics = ServerMetrics::default();
        let first = metrics.series("GET", "/a");
        let again = metrics.series("GET", "/a");
        assert!(Arc::ptr_eq(&first, &again));
        first.record(200, Duration::from_millis(2), 100, None);
        again.record(200, Duration::from_millis(2), 100, None);
        metrics
            .series("POST", "/a")
            .record(500, Duration::from_millis(2), 100, None);
        let series = metrics.request_series();
        assert_eq!(series.len(), 2);
        assert_eq!((series[0].method.as_str(), series[0].status), ("GET", 200));
        assert_eq!(series[0].histogram.count, 2);
        let activity = metrics.activity(100);
        assert_eq!(activity[1].points.last().unwrap().errors, 1);
    }

    #[test]
    fn the_problem_list_is_bounded_and_newest_first() {
        let metrics = ServerMetrics::default();
        for n in 0..(RECENT_PROBLEMS as u64 + 10) {
            metrics.problem(ProblemSeen {
                at_ms: n,
                method: "GET".into(),
                route: "/x".into(),
                path: "p".repeat(1000),
                status: 500,
                request_id: None,
                trace_id: None,
            });
        }
        let problems = metrics.recent_problems();
        assert_eq!(problems.len(), RECENT_PROBLEMS);
        assert_eq!(problems[0].at_ms, RECENT_PROBLEMS as u64 + 9);
        assert!(problems[0].path.len() <= MAX_FIELD + '…'.len_utf8());
    }
}
