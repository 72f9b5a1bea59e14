//! The router: paths to method tables, with nesting, merging, a fallback and tower layers.
//!
//! Paths are matched by a radix tree ([`matcher`]) with the syntax of axum 0.8 and matchit
//! 0.9: `{name}` captures one segment, `{*rest}` the rest of the path, `{{` and `}}` are
//! literal braces. Per segment a static match beats a parameter with a prefix or suffix, which
//! beats a plain parameter, which beats a catch-all, with backtracking.
//!
//! What the router answers by itself, each error as `application/problem+json`:
//! - no route for the path: the fallback, a 404 problem unless set with [`Router::fallback`];
//! - a path routed for other methods only: 405 with an `Allow` header;
//! - `HEAD` where only `GET` is routed: the `GET` handler's answer without its body, keeping
//!   its `Content-Length`;
//! - `OPTIONS` where it is not routed: 204 with `Allow`;
//! - a path that misses only by a trailing slash: 308 to the routed form, query kept (switch it
//!   off with [`Router::redirect_trailing_slash`]).
//!
//! ```
//! use microkit::router::{get, Router};
//!
//! async fn list() -> &'static str { "all users" }
//! async fn create() -> &'static str { "created" }
//! async fn show() -> &'static str { "one user" }
//!
//! let users = Router::new()
//!     .route("/", get(list).post(create))
//!     .route("/{id}", get(show));
//! let app: Router = Router::new().nest("/users", users);
//! assert_eq!(app.routes().len(), 3);
//! ```

mod dispatch;
mod matched_route;
pub mod matcher;
mod method_routing;
mod route;

use std::collections::HashMap;
use std::fmt;

use http::Method;
use tower_layer::Layer;

pub use self::dispatch::{RouterFuture, RouterService, ServiceFuture};
pub use self::matched_route::{MatchedRoute, ReportMatchedRoute};
use self::matcher::Matcher;
pub use self::method_routing::{
    any, any_service, delete, get, head, on, options, patch, post, put, trace, MethodRouter,
};
use self::route::{layer_fn, Endpoint, LayerFn};
pub use self::route::{Route, RouteFuture, RouteService};
use crate::handler::Handler;

/// Routes requests to handlers by path, then by method.
///
/// `S` is the state that handlers extract with [`State`](crate::extract::State); a router is
/// served once [`with_state`](Router::with_state) has provided it (a `Router<()>` needs none).
pub struct Router<S = ()> {
    paths: Vec<(String, MethodRouter<S>)>,
    index: HashMap<String, usize>,
    conflicts: Matcher<usize>,
    fallback: Option<Endpoint<S>>,
    layers: Vec<LayerFn>,
    redirect_trailing_slash: bool,
}

impl<S> Clone for Router<S> {
    fn clone(&self) -> Self {
        Self {
            paths: self.paths.clone(),
            index: self.index.clone(),
            conflicts: self.conflicts.clone(),
            fallback: self.fallback.clone(),
            layers: self.layers.clone(),
            redirect_trailing_slash: self.redirect_trailing_slash,
        }
    }
}

impl<S> fmt::Debug for Router<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("paths", &self.paths)
            .field("layers", &self.layers.len())
            .field("redirect_trailing_slash", &self.redirect_trailing_slash)
            .finish()
    }
}

impl<S: Clone + Send + Sync + 'static> Default for Router<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Router<S> {
    /// A router with no routes.
    pub fn new() -> Self {
        Self {
            paths: Vec::new(),
            index: HashMap::new(),
            conflicts: Matcher::new(),
            fallback: None,
            layers: Vec::new(),
            redirect_trailing_slash: true,
        }
    }

    /// Routes `path` to the methods of `method_router`. Routing the same path again adds methods.
    ///
    /// # Panics
    /// When the path is malformed, does not start with `/`, conflicts with a routed path (the
    /// message names both), or routes a method that is already routed on it.
    #[track_caller]
    pub fn route(mut self, path: &str, method_router: MethodRouter<S>) -> Self {
        assert!(
            path.starts_with('/'),
            "the route `{path}` must start with `/`"
        );
        if let Some(&existing) = self.index.get(path) {
            let (_, current) = std::mem::take(&mut self.paths[existing]);
            self.paths[existing] = (path.to_owned(), current.merge(method_router, path));
            return self;
        }
        if let Err(err) = self.conflicts.insert(path, self.paths.len()) {
            panic!("{err}");
        }
        self.index.insert(path.to_owned(), self.paths.len());
        self.paths.push((path.to_owned(), method_router));
        self
    }

    /// Routes `path`, for every method, to a tower service.
    #[track_caller]
    pub fn route_service<Svc: RouteService>(self, path: &str, service: Svc) -> Self {
        self.route(path, any_service(service))
    }

    /// Mounts `router`'s routes under `prefix` (which may hold parameters, such as
    /// `/user/{uid}`). The nested `/` becomes `prefix` itself. The nested router's layers wrap
    /// its own routes only; its fallback, if set, answers the paths under `prefix` that none of
    /// its routes match.
    ///
    /// # Panics
    /// When `prefix` is malformed or holds a catch-all, or a nested route conflicts.
    #[track_caller]
    pub fn nest(mut self, prefix: &str, router: Router<S>) -> Self {
        assert!(
            prefix.starts_with('/'),
            "the nesting prefix `{prefix}` must start with `/`"
        );
        assert!(
            !prefix.contains("{*"),
            "the nesting prefix `{prefix}` must not hold a catch-all"
        );
        let prefix = prefix.trim_end_matches('/');
        let Router {
            paths,
            fallback,
            layers,
            ..
        } = router;
        for (path, method_router) in paths {
            let full = match path.as_str() {
                "/" if !prefix.is_empty() => prefix.to_owned(),
                _ => format!("{prefix}{path}"),
            };
            self = self.route(&full, apply_layers(method_router, &layers));
        }
        if let Some(fallback) = fallback {
            let fallback = layers.iter().fold(fallback, |e, layer| e.layer(layer));
            let catch_all = format!("{prefix}/{{*__microkit_nested_fallback}}");
            self = self.route(&catch_all, MethodRouter::default().any_endpoint(fallback));
        }
        self
    }

    /// Adds `other`'s routes (and its fallback, if this router has none) to this router.
    /// `other`'s layers wrap its own routes only.
    ///
    /// # Panics
    /// When a route conflicts, or both routers have a fallback.
    #[track_caller]
    pub fn merge(mut self, other: Router<S>) -> Self {
        let Router {
            paths,
            fallback,
            layers,
            ..
        } = other;
        for (path, method_router) in paths {
            self = self.route(&path, apply_layers(method_router, &layers));
        }
        if let Some(fallback) = fallback {
            assert!(
                self.fallback.is_none(),
                "both merged routers have a fallback"
            );
            self.fallback = Some(layers.iter().fold(fallback, |e, layer| e.layer(layer)));
        }
        self
    }

    /// Answers requests that match no route with `handler` instead of a 404 problem.
    pub fn fallback<H, T>(mut self, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.fallback = Some(Endpoint::from_handler(handler));
        self
    }

    /// Whether a request that misses only by a trailing slash is redirected (308) to the
    /// routed form. On by default.
    pub fn redirect_trailing_slash(mut self, enabled: bool) -> Self {
        self.redirect_trailing_slash = enabled;
        self
    }

    /// Wraps the whole router in a tower layer: every route, the fallback, and the router's own
    /// answers (405, `OPTIONS`, redirects), including routes added after this call.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: RouteService,
    {
        self.layers.push(layer_fn(layer));
        self
    }

    /// Wraps the routes added so far in a tower layer, but not the fallback nor the router's
    /// own answers: a layer that should only see requests that matched (authentication, say).
    pub fn route_layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: RouteService,
    {
        let layer = layer_fn(layer);
        self.paths = std::mem::take(&mut self.paths)
            .into_iter()
            .map(|(path, method_router)| (path, method_router.map_endpoints(&layer)))
            .collect();
        self
    }

    /// The routes, as (method, pattern) pairs in the order they were added: for documentation
    /// and OpenAPI. A route for every method lists each standard method.
    pub fn routes(&self) -> Vec<(Method, String)> {
        self.paths
            .iter()
            .flat_map(|(path, method_router)| {
                method_router
                    .listed_methods()
                    .into_iter()
                    .map(move |method| (method, path.clone()))
            })
            .collect()
    }

    /// The OpenAPI 3.1 document of the routes, titled `title` at version `version`: each
    /// method routed to a handler, described by its types and its
    /// [`describe`](MethodRouter::describe) notes. See [`openapi`](crate::openapi).
    pub fn openapi(&self, title: &str, version: &str) -> serde_json::Value {
        crate::openapi::Document::new(title, version)
            .routes(self)
            .to_json()
    }

    /// Provides the state, turning every handler into a ready route. The result can be served
    /// (as a `Router<()>`) or nested into a router with another state.
    pub fn with_state<S2>(self, state: S) -> Router<S2> {
        Router {
            paths: self
                .paths
                .into_iter()
                .map(|(path, method_router)| (path, method_router.with_state(&state)))
                .collect(),
            index: self.index,
            conflicts: self.conflicts,
            fallback: self.fallback.map(|e| e.with_state(&state)),
            layers: self.layers,
            redirect_trailing_slash: self.redirect_trailing_slash,
        }
    }
}

impl<S> Router<S> {
    /// Each routed path with its method router, in the order added: what the OpenAPI
    /// document is built from.
    pub(crate) fn method_routers(&self) -> impl Iterator<Item = (&str, &MethodRouter<S>)> {
        self.paths
            .iter()
            .map(|(path, method_router)| (path.as_str(), method_router))
    }
}

impl Router<()> {
    /// Freezes the router into a cheaply clonable tower service that answers requests.
    pub fn into_service(self) -> RouterService {
        RouterService::new(self)
    }
}

fn apply_layers<S: Clone + Send + Sync + 'static>(
    method_router: MethodRouter<S>,
    layers: &[LayerFn],
) -> MethodRouter<S> {
    layers.iter().fold(method_router, |method_router, layer| {
        method_router.map_endpoints(layer)
    })
}
