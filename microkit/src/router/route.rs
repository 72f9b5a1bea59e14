//! Type-erased endpoints: what a method table stores for each method.

use std::convert::Infallible;
use std::fmt;
use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tower_layer::Layer;
use tower_service::Service;

use super::dispatch::RouterFuture;
use crate::handler::{Handler, HandlerFuture};
use crate::response::IntoResponse;
use crate::{Body, BoxError, Problem, Request, Response};

/// One endpoint, type-erased: a handler bound to its state, or a tower service.
///
/// Routes are what tower layers wrap (`L: Layer<Route>`); users meet the type only in such
/// bounds. Cloning is a reference-count increment.
#[derive(Clone)]
pub struct Route(Arc<dyn CallRoute>);

pub(super) trait CallRoute: Send + Sync {
    fn call(&self, request: Request) -> HandlerFuture;

    /// The call as a tower service's future: what a layer around this route polls.
    fn call_service(&self, request: Request) -> RouteFuture {
        RouteFuture(RouteCall::Boxed(self.call(request)))
    }
}

struct HandlerRoute<H, T, S> {
    handler: H,
    state: S,
    _arguments: PhantomData<fn() -> T>,
}

impl<H, T, S> CallRoute for HandlerRoute<H, T, S>
where
    H: Handler<T, S>,
    S: Clone + Send + Sync + 'static,
{
    fn call(&self, request: Request) -> HandlerFuture {
        self.handler.clone().call(request, self.state.clone())
    }
}

struct ServiceRoute<Svc> {
    service: Svc,
}

impl<Svc, B> CallRoute for ServiceRoute<Svc>
where
    Svc: Service<Request, Response = http::Response<B>> + Clone + Send + Sync + 'static,
    Svc::Error: Into<BoxError>,
    Svc::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    fn call(&self, request: Request) -> HandlerFuture {
        let mut service = self.service.clone();
        // Most services are ready at once (a layer over a route passes on the route's
        // readiness, which is always): asked once with a waker that does nothing, a ready one
        // is called here, and the request goes straight into its future rather than first
        // into one of ours (a copy of the request, and a larger box, per request). One that is
        // not ready is asked again, with the real waker, by the future below.
        match service.poll_ready(&mut Context::from_waker(
            futures_util::task::noop_waker_ref(),
        )) {
            Poll::Ready(Ok(())) => Box::pin(Answered {
                future: service.call(request),
            }),
            Poll::Ready(Err(err)) => {
                let response = failed(err.into());
                Box::pin(std::future::ready(response))
            }
            Poll::Pending => Box::pin(async move {
                // `poll_ready` then `call`, rather than `oneshot`: its state enum would hold
                // the request and then the service's future side by side, each moved in and
                // out. The error is boxed before the next await: the service's own need not be
                // `Send`.
                let ready: Result<(), BoxError> = poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .map_err(Into::into);
                match ready {
                    Ok(()) => {
                        Answered {
                            future: service.call(request),
                        }
                        .await
                    }
                    Err(err) => failed(err),
                }
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// A tower service's future, answering with microkit's response: its body boxed (unless it
    /// is microkit's), its error a 500 problem.
    struct Answered<F> {
        #[pin]
        future: F,
    }
}

impl<F, B, E> Future for Answered<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    E: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        self.project()
            .future
            .poll(cx)
            .map(|answered| match answered {
                Ok(response) => response.map(Body::new),
                Err(err) => failed(err.into()),
            })
    }
}

/// The answer when a service behind the router fails: a 500 problem, the error logged.
fn failed(err: BoxError) -> Response {
    tracing::error!(error = %err, "a service behind the router failed");
    Problem::internal("the request could not be processed").into_response()
}

/// A function from a request to its answer's future, called as it is: no extractors.
struct FnRoute<F>(F);

impl<F> CallRoute for FnRoute<F>
where
    F: Fn(Request) -> HandlerFuture + Send + Sync,
{
    fn call(&self, request: Request) -> HandlerFuture {
        (self.0)(request)
    }
}

impl Route {
    /// A route that hands the whole request to `call`: for the crate's own endpoints on the
    /// hot path (the gateway's forwarding), whose future is boxed once, as `call` makes it.
    /// A handler taking `Request` would box a future holding both the request it was given
    /// and the one it passes on.
    pub(crate) fn from_fn(call: impl Fn(Request) -> HandlerFuture + Send + Sync + 'static) -> Self {
        Self(Arc::new(FnRoute(call)))
    }

    pub(crate) fn from_handler<H, T, S>(handler: H, state: S) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
        S: Clone + Send + Sync + 'static,
    {
        Self(Arc::new(HandlerRoute {
            handler,
            state,
            _arguments: PhantomData,
        }))
    }

    /// A route that answers with `call` directly, without a tower service's readiness check
    /// and clone per request: for the router's own core under router-wide layers.
    pub(super) fn from_call(call: impl CallRoute + 'static) -> Self {
        Self(Arc::new(call))
    }

    /// Wraps a tower service. Its errors become 500 problems (and are logged): put fallible
    /// layers such as `tower::timeout` behind one that turns errors into responses, or accept
    /// that default.
    pub fn from_service(service: impl RouteService) -> Self {
        service.into_route()
    }

    pub(crate) fn call(&self, request: Request) -> HandlerFuture {
        self.0.call(request)
    }
}

/// A tower service that can serve as a route: it answers microkit requests with HTTP
/// responses of any body, and is cheap to clone. Implemented for every such service; layers
/// that wrap routes must produce one.
pub trait RouteService: Clone + Send + Sync + 'static {
    /// Erases the service's type.
    fn into_route(self) -> Route;
}

impl<Svc, B> RouteService for Svc
where
    Svc: Service<Request, Response = http::Response<B>> + Clone + Send + Sync + 'static,
    Svc::Error: Into<BoxError>,
    Svc::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    fn into_route(self) -> Route {
        Route(Arc::new(ServiceRoute { service: self }))
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Route")
    }
}

impl Service<Request> for Route {
    type Response = Response;
    type Error = Infallible;
    type Future = RouteFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> RouteFuture {
        self.0.call_service(request)
    }
}

/// The future of a [`Route`] used as a tower service.
pub struct RouteFuture(RouteCall);

/// What a route's call runs.
pub(super) enum RouteCall {
    /// An endpoint's boxed future.
    Boxed(HandlerFuture),
    /// The router itself under router-wide layers, inline: its own future already holds the
    /// endpoint's box, and a second box per request would only wrap it.
    Router(RouterFuture),
}

impl RouteFuture {
    pub(super) fn router(future: RouterFuture) -> Self {
        Self(RouteCall::Router(future))
    }
}

impl fmt::Debug for RouteFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RouteFuture")
    }
}

impl Future for RouteFuture {
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            RouteCall::Boxed(future) => future.as_mut().poll(cx).map(Ok),
            RouteCall::Router(future) => Pin::new(future).poll(cx).map(Ok),
        }
    }
}

/// A shared function that wraps a route in a layer: how layers are kept until the state, and
/// so the routes, are known.
pub(crate) type LayerFn = Arc<dyn Fn(Route) -> Route + Send + Sync>;

pub(crate) fn layer_fn<L>(layer: L) -> LayerFn
where
    L: Layer<Route> + Clone + Send + Sync + 'static,
    L::Service: RouteService,
{
    Arc::new(move |route: Route| layer.layer(route).into_route())
}

/// An endpoint before or after the router's state is known.
pub(crate) enum Endpoint<S> {
    /// Ready to call.
    Route(Route),
    /// A handler waiting for the state, with the layers to wrap it in once bound.
    Handler(BoxedIntoRoute<S>),
}

impl<S> Clone for Endpoint<S> {
    fn clone(&self) -> Self {
        match self {
            Self::Route(route) => Self::Route(route.clone()),
            Self::Handler(handler) => Self::Handler(handler.clone()),
        }
    }
}

impl Endpoint<()> {
    /// The route of an endpoint whose state is bound.
    pub(crate) fn into_ready(self) -> Route {
        self.into_route(&())
    }
}

impl<S: Clone + Send + Sync + 'static> Endpoint<S> {
    pub(crate) fn from_handler<H, T>(handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        Self::Handler(BoxedIntoRoute {
            make: Arc::new(move |state: S| Route::from_handler(handler.clone(), state)),
            layers: Vec::new(),
        })
    }

    pub(crate) fn layer(self, layer: &LayerFn) -> Self {
        match self {
            Self::Route(route) => Self::Route(layer(route)),
            Self::Handler(mut handler) => {
                handler.layers.push(layer.clone());
                Self::Handler(handler)
            }
        }
    }

    pub(crate) fn into_route(self, state: &S) -> Route {
        match self {
            Self::Route(route) => route,
            Self::Handler(handler) => handler.into_route(state),
        }
    }

    pub(crate) fn with_state<S2>(self, state: &S) -> Endpoint<S2> {
        Endpoint::Route(self.into_route(state))
    }
}

/// A handler that becomes a [`Route`] once given the router's state.
pub(crate) struct BoxedIntoRoute<S> {
    make: Arc<dyn Fn(S) -> Route + Send + Sync>,
    layers: Vec<LayerFn>,
}

impl<S> Clone for BoxedIntoRoute<S> {
    fn clone(&self) -> Self {
        Self {
            make: self.make.clone(),
            layers: self.layers.clone(),
        }
    }
}

impl<S: Clone> BoxedIntoRoute<S> {
    fn into_route(self, state: &S) -> Route {
        let route = (self.make)(state.clone());
        self.layers.iter().fold(route, |route, layer| layer(route))
    }
}
