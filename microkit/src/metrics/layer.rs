//! The layer that records every request a router answers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::uri::PathAndQuery;
use http::{HeaderValue, Method};
use tower_layer::Layer;
use tower_service::Service;

use super::{Gauge, Metrics, Opened, SpanId, TraceId};
use crate::middleware::{RequestId, X_REQUEST_ID};
use crate::request_context::{RequestContext, RouteSlot};
use crate::{Request, Response};

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
{
    type Response = Response;
    type Error = S::Error;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let route = RequestContext::report_route(request.extensions_mut());
        // The id a `RequestIdLayer` outside this one settled on, read from its extension
        // rather than by the header's name (hashed a byte at a time); else the caller's.
        let request_id = match request.extensions().get::<RequestId>() {
            Some(id) => Some(id.header_value().clone()),
            None => request.headers().get(X_REQUEST_ID).cloned(),
        };
        let asked = Asked {
            method: request.method().clone(),
            // Cheap clones (shared bytes), kept for the rare problem answer: the path alone,
            // not the whole `Uri` (88 bytes, moved with the future through every layer).
            path: request.uri().path_and_query().cloned(),
            request_id,
            route,
            // The server's trace scope is current while the request is handed over.
            trace: crate::trace::current_ids(),
            started: Instant::now(),
        };
        let in_flight = Opened::new(self.metrics.clone(), Gauge::InFlight);
        MetricsFuture {
            answer: self.inner.call(request),
            waiting: Some((asked, in_flight)),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`MetricsService`]: the answer, recorded when it comes. A named future
    /// rather than a boxed `async` block, so that a request costs no allocation here.
    pub struct MetricsFuture<F> {
        #[pin]
        answer: F,
        // What is recorded with the answer, and the request counted in flight until it comes
        // (or until this future is dropped).
        waiting: Option<(Asked, Opened)>,
    }
}

impl<F, E> Future for MetricsFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The exemplar records this trace: the calls the request makes pass it on. (Here, in
        // the request's future, where its calls run, not in `call`'s own scope.)
        crate::trace::record_current();
        let response = std::task::ready!(this.answer.poll(cx))?;
        if let Some((asked, in_flight)) = this.waiting.take() {
            in_flight.metrics.record_response(asked, &response);
        }
        Poll::Ready(Ok(response))
    }
}

impl<F> std::fmt::Debug for MetricsFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsFuture").finish_non_exhaustive()
    }
}

/// What the metrics keep of a request until its answer.
pub(super) struct Asked {
    pub(super) method: Method,
    pub(super) path: Option<PathAndQuery>,
    pub(super) request_id: Option<HeaderValue>,
    /// Where the router leaves the route that answers.
    pub(super) route: RouteSlot,
    /// The trace and the server span the request is in, for the exemplar and the problem.
    pub(super) trace: Option<(TraceId, SpanId)>,
    pub(super) started: Instant,
}
