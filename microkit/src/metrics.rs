//! Metrics in Prometheus' text format, or OpenMetrics' when the scraper asks for it (with
//! exemplars: the trace and span ids (`trace_id`, `span_id`: a request's server span) of a
//! recent request in each histogram bucket, from the [trace context](crate::trace)). Named after OpenTelemetry's
//! semantic conventions where they have a name, with dots made underscores and the unit
//! appended, as OpenTelemetry's Prometheus exporter writes them.
//!
//! | metric | labels |
//! |---|---|
//! | `http_server_request_duration_seconds` (histogram) | `http_request_method`, `http_route`, `http_response_status_code` |
//! | `http_requests_total` | `method`, `route`, `status` (the histogram's count, under its older name) |
//! | `http_server_active_requests` (gauge) | |
//! | `http_server_open_connections` (gauge) | (counted when served with [`Serve::metrics`](crate::server::Serve::metrics)) |
//! | `http_server_rejections_total` | `reason`: `body_limit` (413) or `timeout` (408) |
//! | `client_calls_total` | `service`, `outcome` |
//! | `client_call_duration_seconds` (histogram) | `service` (a whole call, retries included) |
//! | `client_attempts_total`, `client_retries_total`, `client_ejections_total` | `service` |
//! | `client_retry_budget_exhausted_total` | (retries refused for want of budget) |
//! | `client_instance_in_flight`, `client_instance_latency_ewma_seconds`, `client_instance_ejected` (gauges) | `service`, `address` |
//! | `db_client_operation_duration_seconds` (histogram) | `db_system_name`, `db_collection_name`, `db_operation_name`, `error_type` (failures only; `cancelled` for an operation dropped midway); from a [`MeteredStore`](crate::resource::store::MeteredStore) |
//! | `db_client_connection_count` (gauge) | `db_client_connection_pool_name`, `db_client_connection_state`: `idle` or `used` |
//! | `db_client_connection_max`, `db_client_connection_pending_requests` (gauges) | `db_client_connection_pool_name` |
//! | `db_client_connection_wait_time_seconds` (histogram) | `db_client_connection_pool_name` |
//!
//! With the `otel` feature, `metrics::otel::export` pushes the same metrics over OTLP/HTTP,
//! under OpenTelemetry's names and attributes where its conventions have them.
//!
//! Durations use OpenTelemetry's advised buckets (5 ms to 10 s; 1 ms to 10 s for stores). A request is timed from the
//! moment the service sees it to its response's head.
//!
//! Every label takes a bounded set of values whatever clients send, so that a scanner cannot
//! grow the metrics (and the memory of every Prometheus scraping them) without end. Routes are
//! labelled by pattern (`/user/{id}`), never by path, and every path no route matches counts
//! as `unmatched`. Methods are labelled by name when standard (RFC 9110's eight and `PATCH`) or
//! routed by name on the route that answered; any other method token counts as `_OTHER`, as
//! OpenTelemetry's HTTP semantic conventions do.
//!
//! Recording costs a few relaxed atomic adds and read locks: a series is made (and its labels
//! allocated) the first time it is seen, never again on the request path.

mod client;
mod exposition;
mod histogram;
mod layer;
#[cfg(feature = "otel")]
pub mod otel;
mod server;
mod sink;
mod store;
mod window;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{HeaderValue, CONTENT_TYPE};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method};

use self::exposition::Exposition;
pub use self::exposition::Format;
pub(crate) use self::histogram::unix_seconds;
pub(crate) use self::histogram::Histogram;
use self::layer::Asked;
pub use self::layer::{MetricsFuture, MetricsLayer, MetricsService};
use self::server::ProblemSeen;
pub(crate) use self::server::ServerMetrics;
use self::sink::{Family, Kind, OtelName, Sink};
pub(crate) use self::store::{
    ErrorType as StoreErrorType, Operation as StoreOperation, StoreMetrics, SystemSeries,
    DB_DURATION_BOUNDS,
};
pub(crate) use self::window::{Point, SLOT_SECONDS};
use crate::client::{CallObserver, CallOutcome, ServiceClient};
use crate::middleware::X_REQUEST_ID;
use crate::problem::PROBLEM_JSON;
use crate::router::MatchedRoute;
pub(crate) use crate::trace::{SpanId, TraceId};
use crate::{Body, Response};

/// The method label for metrics whose values must stay a bounded set.
const OTHER_METHOD: &str = "_OTHER";

fn is_standard(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::DELETE
            | Method::CONNECT
            | Method::OPTIONS
            | Method::TRACE
            | Method::PATCH
    )
}

/// The labels of a request: its method (or `_OTHER`) and its route (or `unmatched`). A method
/// keeps its name when standard, or when the route that answered routes it by name (so that
/// a method the application chose to route keeps its own label).
fn labels<'a>(method: &'a Method, matched: Option<&'a MatchedRoute>) -> (&'a str, &'a str) {
    let route = matched.map_or("unmatched", MatchedRoute::pattern);
    // Only custom methods need the look-up, and they are rare.
    if is_standard(method) || matched.is_some_and(|matched| matched.routes_by_name(method)) {
        (method.as_str(), route)
    } else {
        (OTHER_METHOD, route)
    }
}

/// The metrics of one service, shared by its server layer and its client.
#[derive(Debug)]
pub struct Metrics {
    server: ServerMetrics,
    client: client::ClientMetrics,
    store: StoreMetrics,
    /// Where every cumulative count starts (OTLP sends it with each point).
    created: SystemTime,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            server: ServerMetrics::default(),
            client: client::ClientMetrics::default(),
            store: StoreMetrics::default(),
            created: SystemTime::now(),
        }
    }
}

impl Metrics {
    /// Fresh metrics, all at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
        self.encode_as(Format::Prometheus)
    }

    /// The metrics in `format`.
    pub fn encode_as(&self, format: Format) -> String {
        let mut out = Exposition::new(format);
        self.write_to(&mut out);
        out.finish()
    }

    /// The metrics as a `GET /metrics` answer, in Prometheus' text format.
    pub fn response(&self) -> Response {
        self.response_as(Format::Prometheus)
    }

    /// The metrics as an answer to a scrape with `headers`: OpenMetrics when its `Accept`
    /// prefers it (see [`Format::negotiate`]).
    pub fn response_to(&self, headers: &HeaderMap) -> Response {
        self.response_as(Format::negotiate(headers))
    }

    fn response_as(&self, format: Format) -> Response {
        let mut response = Response::new(Body::from(self.encode_as(format)));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        response
    }

    /// When these metrics started counting.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) fn created(&self) -> SystemTime {
        self.created
    }

    pub(crate) fn server(&self) -> &ServerMetrics {
        &self.server
    }

    /// What [`MeteredStore`](crate::resource::store::MeteredStore)s report here.
    pub(crate) fn store(&self) -> &StoreMetrics {
        &self.store
    }

    /// What every client reporting here knows now.
    pub(crate) fn client_stats(&self) -> Vec<crate::client::ClientStats> {
        self.client.stats()
    }

    /// The clients reporting here that are still alive.
    pub(crate) fn clients(&self) -> Vec<ServiceClient> {
        self.client
            .clients()
            .iter()
            .filter_map(|view| view.client())
            .collect()
    }

    /// Counts an open connection until the returned guard drops.
    pub(crate) fn connection_opened(self: &Arc<Self>) -> Opened {
        Opened::new(self.clone(), Gauge::Connections)
    }

    fn record_response(&self, asked: Asked, response: &Response) {
        let Asked {
            method,
            path,
            request_id,
            route,
            trace,
            started,
        } = asked;
        let elapsed = started.elapsed();
        let (method, route) = labels(&method, route.get());
        let status = response.status().as_u16();
        let now = unix_seconds();
        self.server
            .series(method, route)
            .record(status, elapsed, now as u64, trace);
        let rejections = match status {
            413 => Some(&self.server.body_limit_rejections),
            408 => Some(&self.server.timeout_rejections),
            _ => None,
        };
        if let Some(rejections) = rejections {
            rejections.fetch_add(1, Ordering::Relaxed);
        }
        let is_problem = response
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
        if status >= 400 && is_problem {
            let request_id = response
                .headers()
                .get(X_REQUEST_ID)
                .or(request_id.as_ref())
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            self.server.problem(ProblemSeen {
                at_ms: (now * 1000.0) as u64,
                method: method.to_owned(),
                route: route.to_owned(),
                path: path.as_ref().map_or("/", PathAndQuery::path).to_owned(),
                status,
                request_id,
                trace_id: trace.map(|(trace_id, _)| trace_id),
            });
        }
    }

    /// Writes every metric to `out`: the one walk behind the text formats and OTLP.
    pub(crate) fn write_to(&self, out: &mut dyn Sink) {
        self.write_server(out);
        self.write_client(out);
        self.store.write_to(out);
    }

    fn write_server(&self, out: &mut dyn Sink) {
        let series = self.server.request_series();
        out.family(&REQUEST_DURATION);
        for one in &series {
            let status = one.status.to_string();
            let labels = [
                ("http.request.method", one.method.as_str()),
                ("http.route", one.route.as_str()),
                ("http.response.status_code", status.as_str()),
            ];
            out.histogram(&labels, &one.histogram);
        }
        out.family(&REQUESTS);
        for one in &series {
            let status = one.status.to_string();
            let labels = [
                ("method", one.method.as_str()),
                ("route", one.route.as_str()),
                ("status", status.as_str()),
            ];
            out.counter(&labels, one.histogram.count);
        }
        let gauges = [
            (&ACTIVE_REQUESTS, &self.server.in_flight),
            (&OPEN_CONNECTIONS, &self.server.open_connections),
        ];
        for (family, gauge) in gauges {
            out.family(family);
            out.gauge(&[], gauge.load(Ordering::Relaxed) as f64);
        }
        out.family(&REJECTIONS);
        let rejections = [
            ("body_limit", &self.server.body_limit_rejections),
            ("timeout", &self.server.timeout_rejections),
        ];
        for (reason, count) in rejections {
            out.counter(&[("reason", reason)], count.load(Ordering::Relaxed));
        }
    }

    fn write_client(&self, out: &mut dyn Sink) {
        let calls = self.client.calls();
        out.family(&CLIENT_CALLS);
        for series in &calls {
            for (outcome, count) in client::OUTCOMES.iter().zip(series.outcomes) {
                if count > 0 {
                    let labels = [
                        ("service", series.service.as_str()),
                        ("outcome", outcome.as_str()),
                    ];
                    out.counter(&labels, count);
                }
            }
        }
        out.family(&CLIENT_CALL_DURATION);
        for series in &calls {
            out.histogram(&[("service", series.service.as_str())], &series.duration);
        }

        let stats = self.client.stats();
        let services = merge_services(&stats);
        type ServiceValue = fn(&crate::client::ServiceStats) -> u64;
        let counters: [(&Family, ServiceValue); 3] = [
            (&CLIENT_ATTEMPTS, |s| s.attempts),
            (&CLIENT_RETRIES, |s| s.retries),
            (&CLIENT_EJECTIONS, |s| s.ejections),
        ];
        for (family, value) in counters {
            out.family(family);
            for service in &services {
                out.counter(&[("service", service.service.as_str())], value(service));
            }
        }
        out.family(&CLIENT_BUDGET_EXHAUSTED);
        out.counter(&[], stats.iter().map(|s| s.budget_exhausted).sum());

        type InstanceValue = fn(&crate::client::InstanceStats) -> f64;
        let gauges: [(&Family, InstanceValue); 3] = [
            (&CLIENT_INSTANCE_IN_FLIGHT, |i| i.in_flight as f64),
            (&CLIENT_INSTANCE_LATENCY, |i| i.ewma.as_secs_f64()),
            (&CLIENT_INSTANCE_EJECTED, |i| f64::from(u8::from(i.ejected))),
        ];
        for (family, value) in gauges {
            out.family(family);
            for service in &services {
                for instance in &service.instances {
                    let address = instance.instance.addr.to_string();
                    let labels = [
                        ("service", service.service.as_str()),
                        ("address", address.as_str()),
                    ];
                    out.gauge(&labels, value(instance));
                }
            }
        }
    }
}

const REQUEST_DURATION: Family = Family::new(
    "http_server_request_duration_seconds",
    Kind::Histogram,
    "s",
    "Duration of HTTP server requests",
)
.otel(OtelName::Convention("http.server.request.duration"));
const REQUESTS: Family = Family::new(
    "http_requests",
    Kind::Counter,
    "{request}",
    "Requests served, by route and status",
)
.otel(OtelName::Omitted);
const ACTIVE_REQUESTS: Family = Family::new(
    "http_server_active_requests",
    Kind::UpDown,
    "{request}",
    "Requests being answered now",
)
.otel(OtelName::Convention("http.server.active_requests"));
const OPEN_CONNECTIONS: Family = Family::new(
    "http_server_open_connections",
    Kind::UpDown,
    "{connection}",
    "Client connections open now",
);
const REJECTIONS: Family = Family::new(
    "http_server_rejections",
    Kind::Counter,
    "{request}",
    "Requests refused at a limit: a body too large (413) or too slow (408)",
);
const CLIENT_CALLS: Family = Family::new(
    "client_calls",
    Kind::Counter,
    "{call}",
    "Calls to other services, by outcome",
);
const CLIENT_CALL_DURATION: Family = Family::new(
    "client_call_duration_seconds",
    Kind::Histogram,
    "s",
    "Time for a call to another service, retries included",
);
const CLIENT_ATTEMPTS: Family = Family::new(
    "client_attempts",
    Kind::Counter,
    "{attempt}",
    "Attempts sent, first tries and retries",
);
const CLIENT_RETRIES: Family = Family::new(
    "client_retries",
    Kind::Counter,
    "{attempt}",
    "Attempts that were retries",
);
const CLIENT_EJECTIONS: Family = Family::new(
    "client_ejections",
    Kind::Counter,
    "{ejection}",
    "Instances ejected after consecutive failures",
);
const CLIENT_BUDGET_EXHAUSTED: Family = Family::new(
    "client_retry_budget_exhausted",
    Kind::Counter,
    "{retry}",
    "Retries refused because the retry budget was spent",
);
const CLIENT_INSTANCE_IN_FLIGHT: Family = Family::new(
    "client_instance_in_flight",
    Kind::UpDown,
    "{attempt}",
    "Attempts in flight to the instance",
);
const CLIENT_INSTANCE_LATENCY: Family = Family::new(
    "client_instance_latency_ewma_seconds",
    Kind::Gauge,
    "s",
    "The instance's peak-EWMA latency, as the balancer sees it",
);
const CLIENT_INSTANCE_EJECTED: Family = Family::new(
    "client_instance_ejected",
    Kind::Gauge,
    "1",
    "1 while the instance is ejected",
);

/// One entry per service across clients, counters summed, each instance once.
pub(crate) fn merge_services(
    stats: &[crate::client::ClientStats],
) -> Vec<crate::client::ServiceStats> {
    let mut merged: Vec<crate::client::ServiceStats> = Vec::new();
    for service in stats.iter().flat_map(|client| &client.services) {
        match merged.iter_mut().find(|m| m.service == service.service) {
            None => merged.push(service.clone()),
            Some(known) => {
                known.attempts += service.attempts;
                known.retries += service.retries;
                known.ejections += service.ejections;
                for instance in &service.instances {
                    if !known
                        .instances
                        .iter()
                        .any(|k| k.instance.id == instance.instance.id)
                    {
                        known.instances.push(instance.clone());
                    }
                }
            }
        }
    }
    merged.sort_by(|a, b| a.service.cmp(&b.service));
    merged
}

impl CallObserver for Metrics {
    fn observe(&self, service: &str, outcome: CallOutcome, elapsed: Duration) {
        self.client.record(service, outcome, elapsed);
    }

    fn attach(&self, client: &ServiceClient) {
        self.client.attach(client);
    }
}

/// Which gauge an [`Opened`] counts in.
#[derive(Debug, Clone, Copy)]
enum Gauge {
    InFlight,
    Connections,
}

/// Counts one request in flight or one open connection until dropped, even when the future
/// holding it is dropped midway.
#[derive(Debug)]
pub(crate) struct Opened {
    metrics: Arc<Metrics>,
    gauge: Gauge,
}

impl Opened {
    fn new(metrics: Arc<Metrics>, gauge: Gauge) -> Self {
        metrics.gauge(gauge).fetch_add(1, Ordering::Relaxed);
        Self { metrics, gauge }
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        self.metrics
            .gauge(self.gauge)
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    fn gauge(&self, gauge: Gauge) -> &std::sync::atomic::AtomicI64 {
        match gauge {
            Gauge::InFlight => &self.server.in_flight,
            Gauge::Connections => &self.server.open_connections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::get;
    use crate::Request;
    use crate::Router;

    #[tokio::test]
    async fn requests_are_counted_by_pattern_and_status() {
        let metrics = Arc::new(Metrics::new());
        let service = Router::new()
            .route("/user/{id}", get(|| async { "user" }))
            .layer(MetricsLayer::new(metrics.clone()))
            .into_service();
        for path in ["/user/1", "/user/2", "/missing"] {
            let request = Request::get(path).body(Body::empty()).unwrap();
            service.call(request).await;
        }
        let text = metrics.encode();
        assert!(
            text.contains(r#"http_requests_total{method="GET",route="/user/{id}",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"route="unmatched",status="404"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("http_server_request_duration_seconds_bucket{http_request_method=\"GET\",http_route=\"/user/{id}\",http_response_status_code=\"200\",le=\"0.005\"}"),
            "{text}"
        );
    }

    /// The route label is the outer router's pattern for a request a router mounted as a
    /// route's service answers, and the route a handler's panic answered from; and a layer
    /// asking for the route in the response's extensions still gets it beside the metrics.
    #[tokio::test]
    async fn the_outer_pattern_labels_and_the_public_report_still_works() {
        let metrics = Arc::new(Metrics::new());
        // A service mounted at a pattern sees the whole path.
        let inner = Router::new()
            .route("/api/user/{id}", get(|| async { "user" }))
            .into_service();
        let service = Router::new()
            .route_service("/api/{*rest}", inner)
            .route(
                "/panics",
                get(|| async {
                    panic!("a handler's bug");
                    #[allow(unreachable_code)]
                    ""
                }),
            )
            .layer(MetricsLayer::new(metrics.clone()))
            .into_service();
        let mut request = Request::get("/api/user/7").body(Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(crate::router::ReportMatchedRoute);
        let response = service.call(request).await;
        assert_eq!(response.status(), http::StatusCode::OK);
        let matched = response.extensions().get::<MatchedRoute>().unwrap();
        assert_eq!(matched.pattern(), "/api/{*rest}");
        let request = Request::get("/panics").body(Body::empty()).unwrap();
        assert_eq!(service.call(request).await.status(), 500);
        let text = metrics.encode();
        for series in [
            r#"http_requests_total{method="GET",route="/api/{*rest}",status="200"} 1"#,
            r#"http_requests_total{method="GET",route="/panics",status="500"} 1"#,
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
    }

    /// The label sets of `http_requests_total` in `text`.
    fn request_series(text: &str) -> std::collections::BTreeSet<String> {
        text.lines()
            .filter(|line| line.starts_with("http_requests_total{"))
            .map(|line| {
                line.rsplit_once(' ')
                    .map_or(line, |(labels, _)| labels)
                    .to_owned()
            })
            .collect()
    }

    #[tokio::test]
    async fn made_up_methods_and_paths_add_at_most_two_series() {
        let metrics = Arc::new(Metrics::new());
        let purge = Method::from_bytes(b"PURGE").unwrap();
        let service = Router::new()
            .route(
                "/user/{id}",
                get(|| async { "user" }).on(purge.clone(), || async { "purged" }),
            )
            .route("/any", crate::router::any(|| async { "any" }))
            .layer(MetricsLayer::new(metrics.clone()))
            .into_service();
        let send = |method: &str, path: &str| {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            service.call(request)
        };
        send("GET", "/user/1").await;
        send("PURGE", "/user/1").await;
        let before = request_series(&metrics.encode());
        for n in 0..1_000 {
            send(&format!("XMK{n:04}"), "/user/1").await;
            send("GET", &format!("/made-up/{n}")).await;
        }
        let after = request_series(&metrics.encode());
        let added: Vec<_> = after.difference(&before).collect();
        assert!(added.len() <= 2, "{added:#?}");
        // A catch-all route answers any method, but only names routed methods by name.
        for n in 0..1_000 {
            send(&format!("XMK{n:04}"), "/any").await;
        }
        let text = metrics.encode();
        assert!(
            text.contains(r#"method="PURGE",route="/user/{id}""#),
            "{text}"
        );
        assert!(
            text.contains(r#"method="_OTHER",route="/any",status="200"} 1000"#),
            "{text}"
        );
        assert!(
            text.contains(r#"method="_OTHER",route="unmatched",status="405"} 1000"#),
            "{text}"
        );
        assert!(
            text.contains(r#"method="GET",route="unmatched",status="404"} 1000"#),
            "{text}"
        );
        assert!(!text.contains("XMK"), "{text}");
    }

    #[tokio::test]
    async fn a_request_counts_in_flight_until_answered_or_abandoned() {
        let metrics = Arc::new(Metrics::new());
        let gate = Arc::new(tokio::sync::Notify::new());
        let opened = gate.clone();
        let service = Router::new()
            .route(
                "/wait",
                get(move || {
                    let opened = opened.clone();
                    async move { opened.notified().await }
                }),
            )
            .layer(MetricsLayer::new(metrics.clone()))
            .into_service();
        let in_flight = || metrics.server.in_flight.load(Ordering::Relaxed);
        let waiting = |service: &crate::router::RouterService| {
            let request = Request::get("/wait").body(Body::empty()).unwrap();
            tokio::spawn(service.call(request))
        };

        let answered = waiting(&service);
        tokio::task::yield_now().await;
        assert_eq!(in_flight(), 1);
        gate.notify_one();
        assert_eq!(answered.await.unwrap().status(), 200);
        assert_eq!(in_flight(), 0);
        assert!(metrics
            .encode()
            .contains(r#"route="/wait",status="200"} 1"#));

        let abandoned = waiting(&service);
        tokio::task::yield_now().await;
        assert_eq!(in_flight(), 1);
        abandoned.abort();
        assert!(abandoned.await.unwrap_err().is_cancelled());
        assert_eq!(in_flight(), 0);
        assert!(metrics
            .encode()
            .contains(r#"route="/wait",status="200"} 1"#));
    }

    #[test]
    fn client_calls_are_counted_by_outcome() {
        let metrics = Metrics::new();
        metrics.observe("catalog", CallOutcome::Success, Duration::from_millis(3));
        metrics.observe("catalog", CallOutcome::Timeout, Duration::from_millis(3));
        let text = metrics.encode();
        assert!(
            text.contains(r#"client_calls_total{service="catalog",outcome="timeout"} 1"#),
            "{text}"
        );
    }
}
