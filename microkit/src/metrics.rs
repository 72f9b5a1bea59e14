//! Prometheus metrics: requests served by route and status, with latency histograms, and
//! calls made to other services by outcome.
//!
//! | metric | labels |
//! |---|---|
//! | `http_requests_total` | `method`, `route` (the pattern, or `unmatched`), `status` |
//! | `http_request_duration_seconds` (histogram) | `method`, `route` |
//! | `client_calls_total` | `service`, `outcome` |
//! | `client_call_duration_seconds` (histogram) | `service` |
//!
//! Every label takes a bounded set of values whatever clients send, so that a scanner cannot
//! grow the metrics (and the memory of every Prometheus scraping them) without end. Routes are
//! labelled by pattern (`/user/{id}`), never by path, and every path no route matches counts
//! as `unmatched`. Methods are labelled by name when standard (RFC 9110's eight and `PATCH`) or
//! routed by name on the route that answered; any other method token counts as `_OTHER`, as
//! OpenTelemetry's HTTP semantic conventions do.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::header::{HeaderValue, CONTENT_TYPE};
use http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tower_layer::Layer;
use tower_service::Service;

use crate::client::{CallObserver, CallOutcome};
use crate::router::{MatchedRoute, ReportMatchedRoute};
use crate::{Body, Request, Response};

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

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    service: String,
    outcome: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s, doubling.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The metrics of one service, shared by its server layer and its client.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_latency: HistogramFamily<RouteLabels>,
    calls: Family<CallLabels, Counter>,
    call_latency: HistogramFamily<ServiceLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_latency: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        let calls = Family::<CallLabels, Counter>::default();
        let call_latency: HistogramFamily<ServiceLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_requests",
            "Requests served, by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route",
            request_latency.clone(),
        );
        registry.register(
            "client_calls",
            "Calls to other services, by outcome",
            calls.clone(),
        );
        registry.register(
            "client_call_duration_seconds",
            "Time for a call to another service, retries included",
            call_latency.clone(),
        );
        Self {
            registry,
            requests,
            request_latency,
            calls,
            call_latency,
        }
    }

    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// The metrics as a `GET /metrics` answer.
    pub fn response(&self) -> Response {
        let mut response = Response::new(Body::from(self.encode()));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }

    fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.request_latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

impl CallObserver for Metrics {
    fn observe(&self, service: &str, outcome: CallOutcome, elapsed: Duration) {
        self.calls
            .get_or_create(&CallLabels {
                service: service.to_owned(),
                outcome: outcome.as_str().to_owned(),
            })
            .inc();
        self.call_latency
            .get_or_create(&ServiceLabels {
                service: service.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// Records every request the wrapped router answers into [`Metrics`]. Put it on the whole
/// router with [`Router::layer`](crate::Router::layer), so 404s and 405s count too.
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
}

impl MetricsLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service of [`MetricsLayer`].
#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for MetricsService<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        request.extensions_mut().insert(ReportMatchedRoute);
        let method = request.method().clone();
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let (method, route) = labels(&method, response.extensions().get::<MatchedRoute>());
            metrics.record_request(method, route, response.status().as_u16(), started.elapsed());
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::get;
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
            text.contains("http_request_duration_seconds_bucket"),
            "{text}"
        );
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
