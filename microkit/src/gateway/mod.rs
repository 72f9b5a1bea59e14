//! The gateway: the balancer at the edge.
//!
//! A gateway is nothing new: a [`Router`] whose handlers forward through a
//! [`ServiceClient`]. Each route maps a path pattern to a service; the request goes to an
//! instance of it unchanged (same method, path, query and body), with hop-by-hop headers
//! stripped, `Forwarded` and `X-Forwarded-For/-Proto/-Host` added, and the request id and the
//! deadline passed on. Bodies stream both ways; small idempotent requests are retried by the
//! client on another instance. Failures become problems: 503 when no instance is there, 504
//! when time runs out, 502 for anything else that went wrong behind the gateway.
//!
//! ```
//! use microkit::client::ServiceClient;
//! use microkit::discovery::MemoryRegistry;
//! use microkit::gateway::Gateway;
//!
//! let client = ServiceClient::new(MemoryRegistry::new());
//! let edge = Gateway::new(client)
//!     .route("/product/", "catalog")
//!     .route("/product/{id}", "catalog")
//!     .internal("/emails/")
//!     .into_router();
//! ```

mod headers;
mod networks;

use std::sync::Arc;

use http::header::CONTENT_LENGTH;
use http::{Method, StatusCode};
use serde_json::json;

pub use self::networks::{AllowNetworks, AllowNetworksLayer, Network};
use crate::client::ServiceClient;
use crate::extract::{RemoteAddr, DEFAULT_BODY_LIMIT};
use crate::middleware::RequestIdLayer;
use crate::response::IntoResponse;
use crate::router::{get, MethodRouter, Router};
use crate::{Json, Problem, Request, Response};

/// A route table from path patterns to services, turned into a [`Router`].
#[derive(Debug, Clone)]
pub struct Gateway {
    client: ServiceClient,
    body_limit: usize,
    /// Pattern, the method (`None`: every method not listed otherwise), and where it goes.
    routes: Vec<(String, Option<Method>, Target)>,
}

#[derive(Debug, Clone)]
enum Target {
    Service(Arc<str>),
    Internal,
}

impl Gateway {
    /// A gateway with no routes, forwarding through `client`.
    pub fn new(client: ServiceClient) -> Self {
        Self {
            client,
            body_limit: DEFAULT_BODY_LIMIT,
            routes: Vec::new(),
        }
    }

    /// Forwards requests matching `pattern` (router syntax), whatever their method, to
    /// `service`.
    pub fn route(mut self, pattern: &str, service: &str) -> Self {
        self.routes.push((
            pattern.to_owned(),
            None,
            Target::Service(Arc::from(service)),
        ));
        self
    }

    /// Refuses request bodies declared larger than `bytes` (default 1 MiB, the services'
    /// default) with 413 at the edge. A service refusing a body it has not read closes the
    /// connection under the gateway, which would turn its 413 into a 502; refusing at the edge
    /// answers cleanly, and spares the services the upload.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Refuses requests matching `pattern` with 403: routes that services keep for each
    /// other.
    pub fn internal(mut self, pattern: &str) -> Self {
        self.routes
            .push((pattern.to_owned(), None, Target::Internal));
        self
    }

    /// Refuses `method` on `pattern` with 403 while other methods still go where
    /// [`route`](Self::route) sends them: `POST /log` is public, `GET /log` is not.
    pub fn internal_method(mut self, method: Method, pattern: &str) -> Self {
        self.routes
            .push((pattern.to_owned(), Some(method), Target::Internal));
        self
    }

    /// The services the gateway forwards to.
    pub fn services(&self) -> Vec<String> {
        let mut services: Vec<String> = self
            .routes
            .iter()
            .filter_map(|(_, _, target)| match target {
                Target::Service(name) => Some(name.to_string()),
                Target::Internal => None,
            })
            .collect();
        services.sort();
        services.dedup();
        services
    }

    /// The router: the routes, `GET /health` (200 once every service has a healthy instance),
    /// and a request id on everything.
    pub fn into_router(self) -> Router {
        let services = Arc::new(self.services());
        let health_client = self.client.clone();
        let mut router = Router::new().route(
            "/health",
            get(move || health(health_client.clone(), services.clone())),
        );
        let mut patterns: Vec<&str> = Vec::new();
        for (pattern, _, _) in &self.routes {
            if !patterns.contains(&pattern.as_str()) {
                patterns.push(pattern);
            }
        }
        for pattern in patterns {
            let mut methods = MethodRouter::new();
            for (_, method, target) in self.routes.iter().filter(|(p, _, _)| p == pattern) {
                methods = match (method, target) {
                    (Some(method), Target::Internal) => methods.on(method.clone(), refuse_internal),
                    (None, Target::Internal) => methods.any(refuse_internal),
                    (Some(method), Target::Service(service)) => methods.on(
                        method.clone(),
                        forwarder(&self.client, service, self.body_limit),
                    ),
                    (None, Target::Service(service)) => {
                        methods.any(forwarder(&self.client, service, self.body_limit))
                    }
                };
            }
            router = router.route(pattern, methods);
        }
        router.layer(RequestIdLayer::new())
    }
}

/// A handler forwarding to `service`.
fn forwarder(
    client: &ServiceClient,
    service: &Arc<str>,
    body_limit: usize,
) -> impl Fn(Option<RemoteAddr>, Request) -> ForwardFuture + Clone + Send + Sync + 'static {
    let (client, service) = (client.clone(), service.clone());
    move |remote, request: Request| {
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > body_limit as u64) {
            let problem = Problem::new(StatusCode::PAYLOAD_TOO_LARGE)
                .with_detail(format!(
                    "the request body is larger than the limit of {body_limit} bytes"
                ))
                .with_extension("limit", body_limit);
            return Box::pin(std::future::ready(problem.into_response())) as ForwardFuture;
        }
        Box::pin(forward(client.clone(), service.clone(), remote, request))
    }
}

type ForwardFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

async fn forward(
    client: ServiceClient,
    service: Arc<str>,
    remote: Option<RemoteAddr>,
    mut request: Request,
) -> Response {
    headers::strip_hop_by_hop(request.headers_mut());
    headers::add_forwarded(request.headers_mut(), remote.map(|RemoteAddr(addr)| addr));
    match client.send(&service, request).await {
        Ok(mut response) => {
            headers::strip_hop_by_hop(response.headers_mut());
            response
        }
        Err(err) => err.to_problem().into_response(),
    }
}

async fn refuse_internal() -> Problem {
    Problem::new(StatusCode::FORBIDDEN).with_detail("this route is internal to the services")
}

async fn health(client: ServiceClient, services: Arc<Vec<String>>) -> Response {
    let mut checks = tokio::task::JoinSet::new();
    for service in services.iter().cloned() {
        let client = client.clone();
        checks.spawn(async move {
            let answered = client
                .call::<()>(http::Method::GET, &service, "/health", None)
                .await;
            (service, answered.is_ok())
        });
    }
    let mut unhealthy = Vec::new();
    while let Some(checked) = checks.join_next().await {
        match checked {
            Ok((service, false)) => unhealthy.push(service),
            Ok((_, true)) => {}
            Err(err) => unhealthy.push(format!("(a check failed: {err})")),
        }
    }
    unhealthy.sort();
    if unhealthy.is_empty() {
        Json(json!({ "status": "ok", "services": *services })).into_response()
    } else {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE)
            .with_detail(format!("not healthy yet: {}", unhealthy.join(", ")))
            .with_extension("unhealthy", unhealthy)
            .into_response()
    }
}
