//! The console: one page for operators, at `GET /console` on the gateway and on every
//! [`Microservice`](crate::service::Microservice), refreshed live.
//!
//! It shows every service and instance the process knows (address, health, registered since,
//! ejected or not, requests in flight, peak-EWMA latency), per route the request rate, error
//! rate and p50/p99 latency over the last five minutes as small charts, and the most recent
//! problems answered with their request and trace ids. The page draws plain SVG with a small
//! script shipped in the crate: nothing is fetched from elsewhere.
//!
//! The page reads `GET /console/data`, JSON meant to be scripted too:
//!
//! ```json
//! { "name": "gateway", "now_ms": 1764374400000, "slot_seconds": 10,
//!   "server": { "in_flight": 1, "open_connections": 4, "instance": null },
//!   "routes": [ { "method": "GET", "route": "/product/{id}",
//!                 "requests": 120, "errors": 0, "p50_ms": 1.2, "p99_ms": 4.8,
//!                 "points": [ { "start": 1764374100, "requests": 4, "errors": 0,
//!                               "p50_ms": 1.1, "p99_ms": 3.9 } ] } ],
//!   "services": [ { "name": "catalog", "attempts": 120, "retries": 0, "ejections": 0,
//!                   "instances": [ { "id": "…", "address": "127.0.0.1:40123",
//!                                    "version": "", "health": "up",
//!                                    "registered_since_ms": 1764374000000,
//!                                    "ejected": false, "in_flight": 0, "ewma_ms": 1.3,
//!                                    "attempts": 60, "failures": 0 } ] } ],
//!   "problems": [ { "at_ms": 1764374399000, "status": 503, "method": "GET",
//!                   "route": "/product/{id}", "path": "/product/7",
//!                   "request_id": "…", "trace_id": null } ] }
//! ```
//!
//! Windows are kept in a ring of thirty 10-second slots per route and method (fixed memory);
//! problems in a list of the last fifty. Like `/metrics`, the console answers callers from
//! the operator's networks only (loopback and the private ranges by default) and never
//! requests forwarded by the gateway; others get a 403 problem.

mod data;

use std::sync::Arc;

use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};

pub use self::data::{
    ConsoleData, InstanceData, PointData, ProblemData, RouteData, ServerData, ServiceData,
    REGISTERED_SINCE,
};
use crate::discovery::Instance;
use crate::gateway::{AllowNetworksLayer, Network};
use crate::metrics::Metrics;
use crate::router::get;
use crate::{Body, Json, Request, Response, Router};

/// The page.
const PAGE: &str = include_str!("page.html");
/// The script that draws it.
const SCRIPT: &str = include_str!("console.js");

/// What a console shows, and where it reads it from.
#[derive(Debug, Clone)]
pub struct Console {
    name: String,
    metrics: Arc<Metrics>,
    own: Option<Instance>,
    services: Vec<String>,
}

impl Console {
    /// The console of `name` (a service's name, or `gateway`), reading `metrics` and the
    /// clients reporting to them.
    pub fn new(name: impl Into<String>, metrics: Arc<Metrics>) -> Self {
        Self {
            name: name.into(),
            metrics,
            own: None,
            services: Vec::new(),
        }
    }

    /// The instance serving the console, shown as itself.
    pub fn instance(mut self, instance: Instance) -> Self {
        self.own = Some(instance);
        self
    }

    /// Services to show even before any call reached them (the gateway's route targets).
    pub fn services(mut self, services: impl IntoIterator<Item = String>) -> Self {
        self.services = services.into_iter().collect();
        self
    }

    /// What the page shows, now.
    pub async fn data(&self) -> ConsoleData {
        data::collect(self).await
    }

    /// The operator's routes: `GET /metrics` (in the format the scraper asks for) and the
    /// console, for callers from `operators` only, and never through the gateway; others get
    /// a 403 problem. Services and the gateway add them themselves; this is for a router built
    /// by hand.
    pub fn operator_router(self, operators: impl IntoIterator<Item = Network>) -> Router {
        let metrics = self.metrics.clone();
        Router::new()
            .route(
                "/metrics",
                get(move |request: Request| {
                    let metrics = metrics.clone();
                    async move { metrics.response_to(request.headers()) }
                })
                .undocumented(),
            )
            .merge(self.router())
            .route_layer(AllowNetworksLayer::new(operators))
    }

    /// `GET /console`, its script and `GET /console/data`, for anyone: guard them with
    /// [`AllowNetworksLayer`] (the gateway and
    /// [`Microservice`](crate::service::Microservice) do).
    pub fn router(self) -> Router {
        let console = Arc::new(self);
        Router::new()
            .route(
                "/console",
                get(|| async { asset(PAGE, "text/html; charset=utf-8") }).undocumented(),
            )
            .route(
                "/console/console.js",
                get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }).undocumented(),
            )
            .route(
                "/console/data",
                get(move || {
                    let console = console.clone();
                    async move {
                        let mut response = crate::response::IntoResponse::into_response(Json(
                            console.data().await,
                        ));
                        response
                            .headers_mut()
                            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                        response
                    }
                })
                .undocumented(),
            )
    }
}

fn asset(text: &'static str, content_type: &'static str) -> Response {
    let mut response = Response::new(Body::from(text));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // The page runs its own script only, and talks to its own origin only.
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    response
}
