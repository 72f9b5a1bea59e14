//! The gateway: the balancer at the edge.
//!
//! A gateway is nothing new: a [`Router`] whose handlers forward through a
//! [`ServiceClient`]. Each route maps a path pattern to a service; the request goes to an
//! instance of it unchanged (same method, path, query and body), with hop-by-hop headers
//! stripped, `Forwarded` and `X-Forwarded-For/-Proto/-Host` added, and the request id and the
//! deadline passed on. Bodies stream both ways; small idempotent requests are retried by the
//! client on another instance. Failures become problems: 503 when no instance is there, 504
//! when time runs out, 502 for anything else that went wrong behind the gateway; a client's
//! own broken body is its fault (400, 413 past the limit, 408 when it stalls), never a 502.
//!
//! Internal routes are refused with 403 for every method that could reach their handler:
//! any method on a route made [`internal`](Gateway::internal), and `HEAD` wherever `GET` is
//! internal (the services answer `HEAD` with their `GET` handler). `OPTIONS` on a route with
//! internal methods is forwarded where the route forwards every method, and answered at the
//! edge otherwise; `Allow` never lists an internal method.
//! Everything forwarded carries the [`GATEWAY_MARK`], which the services'
//! [`AllowNetworks`] refuses, so an internal route stays closed even if this table forgets it.
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
mod inbound;
mod mark;
mod networks;
mod openapi;
#[cfg(feature = "auth")]
mod requirements;

use std::sync::Arc;

use http::header::{HeaderValue, ALLOW, CONNECTION};
use http::{Method, StatusCode, Version};
use http_body::Body as _;
use serde_json::json;

pub use self::mark::GATEWAY_MARK;
pub use self::networks::{AllowNetworks, AllowNetworksLayer, Network};
use crate::client::{HeaderLines, Payload, ServiceClient};
use crate::console::Console;
use crate::extract::{RemoteAddr, DEFAULT_BODY_LIMIT};
use crate::handler::HandlerFuture;
use crate::metrics::{Metrics, MetricsLayer};
use crate::middleware::RequestIdLayer;
use crate::response::IntoResponse;
use crate::router::{get, MethodRouter, Route, Router};
use crate::{Json, Problem, Request, Response};

/// A route table from path patterns to services, turned into a [`Router`].
#[derive(Debug, Clone)]
pub struct Gateway {
    client: ServiceClient,
    body_limit: usize,
    on_forward: Option<ForwardHook>,
    #[cfg(feature = "auth")]
    requirements: requirements::Requirements,
    /// Where the gateway records what crosses it, and who may read it.
    metrics: Option<(Arc<Metrics>, Vec<Network>)>,
    /// Pattern, the method (`None`: every method not listed otherwise), and where it goes.
    routes: Vec<(String, Option<Method>, Target)>,
}

/// A change made to every request the gateway forwards; see [`Gateway::on_forward`].
#[derive(Clone)]
struct ForwardHook(Arc<dyn Fn(&mut http::request::Parts) + Send + Sync>);

impl std::fmt::Debug for ForwardHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForwardHook")
    }
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
            on_forward: None,
            #[cfg(feature = "auth")]
            requirements: Default::default(),
            metrics: None,
            routes: Vec::new(),
        }
    }

    /// Records every request crossing the gateway into `metrics` and serves them at
    /// `GET /metrics`, with the [console](crate::console) at `GET /console`, to callers from
    /// loopback and the private ranges (see
    /// [`operator_networks`](Self::operator_networks)). Build the gateway's client with
    /// `metrics` as its observer ([`ServiceClient::with_observer`]) to see its calls too.
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        let operators = self
            .metrics
            .take()
            .map_or_else(Network::private, |(_, nets)| nets);
        self.metrics = Some((metrics, operators));
        self
    }

    /// The networks whose callers may read the gateway's `/metrics` (loopback and the private
    /// ranges by default); others get a 403 problem.
    pub fn operator_networks(mut self, networks: impl IntoIterator<Item = Network>) -> Self {
        if let Some((_, operators)) = &mut self.metrics {
            *operators = networks.into_iter().collect();
        }
        self
    }

    /// Calls `hook` on every request about to be forwarded, after the gateway's own header
    /// changes: to relay a verified identity (`microkit::auth::IdentityRelay::forward_hook`,
    /// feature `auth`), or to add a header of your own. A forwarding field the hook sets
    /// (`X-Forwarded-Proto: https` behind a TLS terminator, say) replaces the gateway's.
    pub fn on_forward(
        mut self,
        hook: impl Fn(&mut http::request::Parts) + Send + Sync + 'static,
    ) -> Self {
        self.on_forward = Some(ForwardHook(Arc::new(hook)));
        self
    }

    /// Requires of callers to paths under `prefix` (on a segment boundary: `/invoices` covers
    /// `/invoices/7`, not `/invoicesx`) a verified identity, a scheme or a scope (feature
    /// `auth`): 401 with a challenge without one, 403 without the scope. The identity is the one
    /// an [`Authenticate`](crate::auth::Authenticate) layer around
    /// [`into_router`](Self::into_router) verified (make it `optional` so that open routes
    /// stay open). Every matching rule must hold.
    #[cfg(feature = "auth")]
    pub fn require(mut self, prefix: &str, requirement: crate::auth::Requirement) -> Self {
        self.requirements.add(prefix, requirement);
        self
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
    /// [`route`](Self::route) sends them: `POST /log` is public, `GET /log` is not. An
    /// internal `GET` makes `HEAD` internal too.
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
    /// `GET /openapi.json` (the services' public operations merged) and `GET /docs`, and a
    /// request id on everything.
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
            router = router.route(pattern, self.methods_of(pattern));
        }
        let services = self.services();
        #[cfg(feature = "auth")]
        if !self.requirements.is_empty() {
            router = router.layer(self.requirements.clone());
        }
        let console_services = services.clone();
        let metrics = self.metrics.clone();
        let router = openapi::serve(router, self.client.clone(), self.routes, services);
        let router = router.layer(RequestIdLayer::new());
        match metrics {
            Some((metrics, operators)) => router
                .merge(
                    Console::new("gateway", metrics.clone())
                        .services(console_services)
                        .operator_router(operators),
                )
                .layer(MetricsLayer::new(metrics)),
            None => router,
        }
    }

    /// The method table of one pattern: internal methods refused, the rest forwarded.
    fn methods_of(&self, pattern: &str) -> MethodRouter {
        let entries: Vec<(&Option<Method>, &Target)> = self
            .routes
            .iter()
            .filter(|(p, _, _)| p == pattern)
            .map(|(_, method, target)| (method, target))
            .collect();
        if entries
            .iter()
            .any(|(method, target)| method.is_none() && matches!(target, Target::Internal))
        {
            // `any` covers HEAD, OPTIONS and made-up methods alike.
            return MethodRouter::new().any(refuse_internal);
        }
        let mut hidden: Vec<Method> = entries
            .iter()
            .filter_map(|(method, target)| match target {
                Target::Internal => (*method).clone(),
                Target::Service(_) => None,
            })
            .collect();
        if hidden.contains(&Method::GET) && !hidden.contains(&Method::HEAD) {
            hidden.push(Method::HEAD);
        }
        let hidden: Arc<[Method]> = hidden.into();
        let mut methods = MethodRouter::new();
        for method in hidden.iter() {
            methods = methods.on(method.clone(), refuse_internal);
        }
        let mut public = Vec::new();
        for (method, target) in &entries {
            let Target::Service(service) = target else {
                continue;
            };
            let forwarder = Arc::new(Forwarder {
                client: self.client.clone(),
                service: service.clone(),
                body_limit: self.body_limit,
                hidden: hidden.clone(),
                allow: allow_value(&PUBLIC_METHODS, &hidden),
                on_forward: self.on_forward.clone(),
            });
            // The forwarding future boxed as it is: through a handler taking `Request`, the
            // box would also hold the request the handler was given, and the future would be
            // moved into it once more.
            let forward = Route::from_fn(move |request: Request| {
                Forwarder::forward(Arc::clone(&forwarder), request)
            });
            match method {
                Some(method) if hidden.contains(method) => {}
                Some(method) => {
                    public.push(method.clone());
                    methods = methods.on_route(method.clone(), forward);
                }
                None => {
                    public.extend(PUBLIC_METHODS.iter().cloned());
                    methods = methods.any_route(forward);
                }
            }
        }
        // A route forwarding every method forwards OPTIONS too: the service's `Allow` says
        // which methods it has, the internal ones taken out.
        let forwards_any = entries
            .iter()
            .any(|(method, target)| method.is_none() && matches!(target, Target::Service(_)));
        if !hidden.is_empty() && !hidden.contains(&Method::OPTIONS) && !forwards_any {
            public.push(Method::OPTIONS);
            let allow = allow_value(&public, &hidden);
            methods = methods.on(Method::OPTIONS, move || {
                let allow = allow.clone();
                async move {
                    let mut response = StatusCode::NO_CONTENT.into_response();
                    response.headers_mut().insert(ALLOW, allow);
                    response
                }
            });
        }
        methods
    }
}

/// The methods a route forwarding every method offers in an edge `OPTIONS` answer.
const PUBLIC_METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// `Allow` listing `public` methods, once each, none of the `hidden` ones.
fn allow_value(public: &[Method], hidden: &[Method]) -> HeaderValue {
    let mut names: Vec<&str> = Vec::new();
    for method in public {
        if !hidden.contains(method) && !names.contains(&method.as_str()) {
            names.push(method.as_str());
        }
    }
    HeaderValue::from_str(&names.join(",")).expect("method names are valid header values")
}

/// Removes internal methods from an `Allow` a service sent (with a 405, say), so that the
/// answer does not tell a client what the route keeps for the services.
fn hide_methods(response: &mut Response, hidden: &[Method]) {
    if hidden.is_empty() {
        return;
    }
    let Some(allow) = response.headers().get(ALLOW).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let listed: Vec<Method> = allow
        .split(',')
        .filter_map(|name| name.trim().parse().ok())
        .collect();
    let filtered = allow_value(&listed, hidden);
    response.headers_mut().insert(ALLOW, filtered);
}

/// What a forwarding route needs.
#[derive(Debug)]
struct Forwarder {
    client: ServiceClient,
    service: Arc<str>,
    body_limit: usize,
    /// The route's internal methods, kept out of `Allow` answers.
    hidden: Arc<[Method]>,
    /// `Allow` of the gateway's own 405 (to `CONNECT`): what it forwards, as an edge
    /// `OPTIONS` answers.
    allow: HeaderValue,
    on_forward: Option<ForwardHook>,
}

impl Forwarder {
    /// Whether `request` declares a body larger than the limit, to be refused (413) before
    /// anything is sent. Read from the body's size hint: the server made the body from the
    /// `Content-Length` it checked (hyper refuses an invalid one), so the field is not looked
    /// up and parsed again.
    fn declares_too_much(&self, request: &Request) -> bool {
        request.body().size_hint().lower() > self.body_limit as u64
    }

    /// 405 to a `CONNECT`: forwarded, it would turn an upstream connection into a tunnel. (A
    /// `CONNECT` in its proper form, to an authority, has no path and matches no route.)
    fn refuse_tunnel(&self) -> Response {
        let mut response = Problem::new(StatusCode::METHOD_NOT_ALLOWED)
            .with_detail("the gateway does not open tunnels: CONNECT is not forwarded")
            .into_response();
        response.headers_mut().insert(ALLOW, self.allow.clone());
        response
    }

    /// The 413 for a body declared past the limit.
    fn too_large(&self) -> Response {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE)
            .with_detail(format!(
                "the request body is larger than the limit of {} bytes",
                self.body_limit
            ))
            .with_extension("limit", self.body_limit)
            .into_response()
    }

    /// Forwards `request` (the whole request, not extractors: each extractor splits and
    /// rebuilds it, and this runs for every request crossing the gateway).
    ///
    /// The head is rewritten before the future is made, and the future owns what the call
    /// borrows (the head, the body, the lines): it is boxed, and so copied, once per request,
    /// and what it holds beside the call's own state is all it costs.
    fn forward(self: Arc<Self>, request: Request) -> HandlerFuture {
        if request.method() == Method::CONNECT {
            return Box::pin(std::future::ready(self.refuse_tunnel()));
        }
        if self.declares_too_much(&request) {
            return Box::pin(std::future::ready(self.too_large()));
        }
        let (mut parts, body) = request.into_parts();
        let mut lines = HeaderLines::new();
        let remote = RemoteAddr::of(&parts.extensions);
        headers::strip_hop_by_hop(&mut parts.headers);
        headers::write_forwarding(
            &mut parts.headers,
            remote.map(|RemoteAddr(addr)| addr),
            &mut lines,
        );
        if let Some(ForwardHook(hook)) = &self.on_forward {
            hook(&mut parts);
            headers::let_hook_override(&parts.headers, &mut lines);
        }
        let http1 = parts.version < Version::HTTP_2;
        let (body, fault) = inbound::watch(body, self.body_limit);
        let mut payload = Payload::from(body);
        Box::pin(async move {
            let sent = self
                .client
                .send_with_lines(&self.service, &mut parts, &mut payload, &mut lines)
                .await;
            match sent {
                Ok(mut response) => {
                    headers::strip_hop_by_hop(response.headers_mut());
                    hide_methods(&mut response, &self.hidden);
                    response
                }
                // The client's fault first: a broken or stalled body fails the upstream
                // exchange too.
                Err(err) => match fault.get() {
                    Some(fault) => {
                        let mut response = fault.problem().into_response();
                        // The rest of a broken body cannot be read, nor skipped: the connection
                        // is done. (HTTP/2 resets the stream instead, and forbids the header.)
                        if http1 {
                            response
                                .headers_mut()
                                .insert(CONNECTION, HeaderValue::from_static("close"));
                        }
                        response
                    }
                    None => err.to_problem().into_response(),
                },
            }
        })
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
