//! Routing by method within one path: `get(list).post(create)`.

use std::fmt;

use http::{HeaderValue, Method};
use tower_layer::Layer;

use super::route::{layer_fn, Endpoint, LayerFn, Route, RouteService};
use crate::handler::Handler;
use crate::openapi::{Operation, RouteDoc};

/// The standard methods, in the order `Allow` headers list them.
const STANDARD_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
];

const GET_SLOT: usize = 0;

fn slot(method: &Method) -> Option<usize> {
    Some(match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::CONNECT => 8,
        _ => return None,
    })
}

/// The endpoints of one path, by method. Build it with [`get`], [`post`] and their siblings,
/// then chain more methods: `get(list).post(create)`.
pub struct MethodRouter<S = ()> {
    standard: [Option<Endpoint<S>>; 9],
    custom: Vec<(Method, Endpoint<S>)>,
    any: Option<Endpoint<S>>,
    body_limit: Option<usize>,
    /// The documentation of each method routed, in the order routed; `None` for the route of
    /// every method not routed otherwise (`any`).
    docs: Vec<(Option<Method>, RouteDoc)>,
}

impl<S> Clone for MethodRouter<S> {
    fn clone(&self) -> Self {
        Self {
            standard: self.standard.clone(),
            custom: self.custom.clone(),
            any: self.any.clone(),
            body_limit: self.body_limit,
            docs: self.docs.clone(),
        }
    }
}

impl<S> fmt::Debug for MethodRouter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MethodRouter")
            .field("methods", &self.methods())
            .field("any", &self.any.is_some())
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

impl<S> MethodRouter<S> {
    /// Applies `f` to every endpoint.
    fn map<S2>(self, mut f: impl FnMut(Endpoint<S>) -> Endpoint<S2>) -> MethodRouter<S2> {
        MethodRouter {
            standard: self.standard.map(|e| e.map(&mut f)),
            custom: self
                .custom
                .into_iter()
                .map(|(method, e)| (method, f(e)))
                .collect(),
            any: self.any.map(&mut f),
            body_limit: self.body_limit,
            docs: self.docs,
        }
    }

    /// The documentation of each method routed; `None` for `any`.
    pub(crate) fn docs(&self) -> &[(Option<Method>, RouteDoc)] {
        &self.docs
    }

    /// The methods a route listing shows: every standard one for an `any` route.
    pub(super) fn listed_methods(&self) -> Vec<Method> {
        if self.any.is_some() {
            STANDARD_METHODS.to_vec()
        } else {
            self.methods()
        }
    }

    /// The methods routed explicitly, in `Allow` order (`HEAD` only when routed itself).
    pub(super) fn methods(&self) -> Vec<Method> {
        STANDARD_METHODS
            .iter()
            .zip(&self.standard)
            .filter(|(_, endpoint)| endpoint.is_some())
            .map(|(method, _)| method.clone())
            .chain(self.custom.iter().map(|(method, _)| method.clone()))
            .collect()
    }
}

impl<S> Default for MethodRouter<S> {
    fn default() -> Self {
        Self {
            standard: Default::default(),
            custom: Vec::new(),
            any: None,
            body_limit: None,
            docs: Vec::new(),
        }
    }
}

macro_rules! method_fns {
    ($($name:ident => $method:ident,)*) => {
        $(
            #[doc = concat!("Routes `", stringify!($method), "` requests to `handler`.")]
            pub fn $name<H, T, S>(handler: H) -> MethodRouter<S>
            where
                H: Handler<T, S>,
                T: 'static,
                S: Clone + Send + Sync + 'static,
            {
                MethodRouter::new().on(Method::$method, handler)
            }
        )*

        impl<S: Clone + Send + Sync + 'static> MethodRouter<S> {
            $(
                #[doc = concat!("Also routes `", stringify!($method), "` requests to `handler`.")]
                pub fn $name<H, T>(self, handler: H) -> Self
                where
                    H: Handler<T, S>,
                    T: 'static,
                {
                    self.on(Method::$method, handler)
                }
            )*
        }
    };
}

method_fns! {
    get => GET,
    head => HEAD,
    post => POST,
    put => PUT,
    patch => PATCH,
    delete => DELETE,
    options => OPTIONS,
    trace => TRACE,
}

/// Routes requests of `method` to `handler`.
pub fn on<H, T, S>(method: Method, handler: H) -> MethodRouter<S>
where
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    MethodRouter::new().on(method, handler)
}

/// Routes requests of every method to `handler`.
pub fn any<H, T, S>(handler: H) -> MethodRouter<S>
where
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    MethodRouter::new().any(handler)
}

/// Routes requests of every method to a tower service (a proxy, another framework's app).
/// Its document lists every method with the path's parameters and any answer (a service has
/// no types to say more); [`describe`](MethodRouter::describe) adds what it should say.
pub fn any_service<Svc: RouteService, S>(service: Svc) -> MethodRouter<S> {
    MethodRouter {
        any: Some(Endpoint::Route(Route::from_service(service))),
        docs: vec![(None, RouteDoc::new(describe_service))],
        ..MethodRouter::default()
    }
}

/// What a tower service's types say of its operation: nothing (the path's parameters and
/// "any answer" are added to every operation that says no more).
fn describe_service(_: &mut Operation) {}

impl<S: Clone + Send + Sync + 'static> MethodRouter<S> {
    /// A method router that routes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes requests of `method` to `handler`.
    ///
    /// # Panics
    /// When `method` already has a handler here.
    pub fn on<H, T>(self, method: Method, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let doc = RouteDoc::new(<H as Handler<T, S>>::describe);
        let mut routed = self.on_endpoint(method.clone(), Endpoint::from_handler(handler));
        routed.docs.push((Some(method), doc));
        routed
    }

    /// Adds to the documentation of the method routed last: a summary, tags, an operation
    /// id, examples, or responses its types cannot tell (a handler that returns a plain
    /// [`Response`](crate::Response)). The types' own description comes first, then these
    /// edits, in order.
    ///
    /// ```
    /// use http::StatusCode;
    /// use microkit::router::post;
    /// use microkit::{Json, Router};
    ///
    /// async fn pay() -> (StatusCode, Json<u64>) { (StatusCode::CREATED, Json(7)) }
    ///
    /// let app: Router = Router::new().route(
    ///     "/pay",
    ///     post(pay).describe(|op| {
    ///         op.summary("Pays").tag("payments").success_status(StatusCode::CREATED);
    ///     }),
    /// );
    /// ```
    ///
    /// # Panics
    /// When no method is routed to a handler yet.
    pub fn describe(mut self, edit: impl Fn(&mut Operation) + Send + Sync + 'static) -> Self {
        let (_, doc) = self
            .docs
            .last_mut()
            .expect("`describe` follows the method it describes, such as `get(handler)`");
        doc.edits.push(std::sync::Arc::new(edit));
        self
    }

    /// Leaves the method routed last out of the OpenAPI document.
    ///
    /// # Panics
    /// When no method is routed to a handler yet.
    pub fn undocumented(mut self) -> Self {
        let (_, doc) = self
            .docs
            .last_mut()
            .expect("`undocumented` follows the method it hides, such as `get(handler)`");
        doc.hidden = true;
        self
    }

    /// Routes requests of `method` to a tower service. Its document gives the path's
    /// parameters and any answer; [`describe`](Self::describe) adds what it should say.
    ///
    /// # Panics
    /// When `method` already has a handler here.
    pub fn on_service<Svc: RouteService>(self, method: Method, service: Svc) -> Self {
        self.on_route(method, Route::from_service(service))
    }

    /// Routes requests of `method` to `route`, documented as a service is.
    pub(crate) fn on_route(self, method: Method, route: Route) -> Self {
        let mut routed = self.on_endpoint(method.clone(), Endpoint::Route(route));
        routed
            .docs
            .push((Some(method), RouteDoc::new(describe_service)));
        routed
    }

    /// Routes requests of every method not routed otherwise to `route`, documented as a
    /// service is.
    pub(crate) fn any_route(self, route: Route) -> Self {
        let mut routed = self.any_endpoint(Endpoint::Route(route));
        routed.docs.push((None, RouteDoc::new(describe_service)));
        routed
    }

    /// Routes requests of every method not routed otherwise to `handler`. The document
    /// gives the handler's operation under each of those methods (an operation id set with
    /// [`describe`](Self::describe) gets the method appended, `proxyGet`, so that ids stay
    /// unique).
    ///
    /// # Panics
    /// When this method router already has such a handler.
    pub fn any<H, T>(self, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let mut routed = self.any_endpoint(Endpoint::from_handler(handler));
        let doc = RouteDoc::new(<H as Handler<T, S>>::describe);
        routed.docs.push((None, doc));
        routed
    }

    /// Caps the request body that body extractors read on these routes, overriding the
    /// server's limit (1 MiB by default).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = Some(bytes);
        self
    }

    /// Wraps every endpoint of this method router in a tower layer.
    pub fn layer<L>(self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: RouteService,
    {
        self.map_endpoints(&layer_fn(layer))
    }

    fn on_endpoint(mut self, method: Method, endpoint: Endpoint<S>) -> Self {
        let taken = match slot(&method) {
            Some(index) => self.standard[index].replace(endpoint).is_some(),
            None if self.custom.iter().any(|(m, _)| *m == method) => true,
            None => {
                self.custom.push((method.clone(), endpoint));
                false
            }
        };
        assert!(!taken, "the method {method} is routed twice on one path");
        self
    }

    pub(super) fn map_endpoints(self, layer: &LayerFn) -> Self {
        self.map(|endpoint| endpoint.layer(layer))
    }

    /// Adds `other`'s methods to these.
    pub(super) fn merge(mut self, other: Self, path: &str) -> Self {
        for (index, endpoint) in other.standard.into_iter().enumerate() {
            if let Some(endpoint) = endpoint {
                let method = &STANDARD_METHODS[index];
                assert!(
                    self.standard[index].is_none(),
                    "the route `{method} {path}` is registered twice"
                );
                self.standard[index] = Some(endpoint);
            }
        }
        for (method, endpoint) in other.custom {
            assert!(
                !self.custom.iter().any(|(m, _)| *m == method),
                "the route `{method} {path}` is registered twice"
            );
            self.custom.push((method, endpoint));
        }
        if let Some(any) = other.any {
            assert!(self.any.is_none(), "`any` is registered twice on `{path}`");
            self.any = Some(any);
        }
        self.body_limit = self.body_limit.or(other.body_limit);
        self.docs.extend(other.docs);
        self
    }

    pub(super) fn any_endpoint(mut self, endpoint: Endpoint<S>) -> Self {
        assert!(
            self.any.is_none(),
            "`any` is set twice on one method router"
        );
        self.any = Some(endpoint);
        self
    }

    pub(super) fn with_state<S2>(self, state: &S) -> MethodRouter<S2> {
        self.map(|endpoint| endpoint.with_state(state))
    }

    pub(super) fn into_table(self, state: &S) -> MethodTable {
        let mut allowed = self.methods();
        if self.standard[GET_SLOT].is_some() && self.standard[1].is_none() {
            allowed.insert(1, Method::HEAD);
        }
        if self.any.is_some() {
            allowed = STANDARD_METHODS.to_vec();
        }
        let allow = join(&allowed);
        if !allowed.contains(&Method::OPTIONS) {
            allowed.push(Method::OPTIONS);
        }
        let allow_with_options = join(&allowed);
        let ready = self.map(|endpoint| Endpoint::<()>::Route(endpoint.into_route(state)));
        MethodTable {
            standard: ready.standard.map(|e| e.map(Endpoint::into_ready)),
            custom: ready
                .custom
                .into_iter()
                .map(|(method, e)| (method, e.into_ready()))
                .collect(),
            any: ready.any.map(Endpoint::into_ready),
            allow,
            allow_with_options,
            body_limit: ready.body_limit,
        }
    }
}

pub(super) fn join(methods: &[Method]) -> HeaderValue {
    let joined = methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(",");
    HeaderValue::from_str(&joined).expect("method names are valid header values")
}

/// The routes of one path, ready to serve.
pub(super) struct MethodTable {
    standard: [Option<Route>; 9],
    custom: Vec<(Method, Route)>,
    any: Option<Route>,
    /// `Allow` for a 405: the routed methods, with `HEAD` wherever `GET` is routed.
    pub(super) allow: HeaderValue,
    /// `Allow` for an automatic `OPTIONS` answer: the above, with `OPTIONS`.
    pub(super) allow_with_options: HeaderValue,
    pub(super) body_limit: Option<usize>,
}

impl MethodTable {
    /// The route for `method` itself, without the `HEAD`-from-`GET` or `OPTIONS` defaults.
    pub(super) fn route(&self, method: &Method) -> Option<&Route> {
        let routed = match slot(method) {
            Some(index) => self.standard[index].as_ref(),
            None => self
                .custom
                .iter()
                .find(|(m, _)| m == method)
                .map(|(_, route)| route),
        };
        routed.or(self.any.as_ref())
    }

    pub(super) fn get(&self) -> Option<&Route> {
        self.standard[GET_SLOT].as_ref()
    }

    /// Whether a request of `method` would reach a route or an automatic answer here.
    pub(super) fn answers(&self, method: &Method) -> bool {
        self.route(method).is_some()
            || *method == Method::OPTIONS
            || (*method == Method::HEAD && self.get().is_some())
    }
}
