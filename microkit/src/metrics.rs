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
//! Routes are labelled by pattern (`/user/{id}`), never by path, so the label set stays small
//! whatever clients send.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::header::{HeaderValue, CONTENT_TYPE};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tower_layer::Layer;
use tower_service::Service;

use crate::client::{CallObserver, CallOutcome};
use crate::{Body, Request, Response};

/// Where the router writes the pattern that matched, for layers outside it to read.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteSlot(pub(crate) Arc<OnceLock<Arc<str>>>);

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
        let slot = RouteSlot::default();
        request.extensions_mut().insert(slot.clone());
        let method = request.method().clone();
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let route = slot.0.get().map_or("unmatched", |route| route.as_ref());
            metrics.record_request(
                method.as_str(),
                route,
                response.status().as_u16(),
                started.elapsed(),
            );
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
