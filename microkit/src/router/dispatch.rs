//! Answering requests with a frozen router: match the path, pick the method, call the route.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, LOCATION};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, StatusCode};
use http_body::Body as _;
use tower_service::Service;

use super::matched_route::{MatchedRoute, ReportMatchedRoute};
use super::matcher::Matcher;
use super::method_routing::{join, MethodTable};
use super::route::{CallRoute, Endpoint, Route, RouteFuture};
use super::Router;
use crate::extract::{PathParams, RouteMatch};
use crate::handler::HandlerFuture;
use crate::request_context::RequestContext;
use crate::response::IntoResponse;
use crate::{Body, BoxError, Problem, Request, Response};

/// A frozen [`Router`]: a tower service answering requests, cheap to clone.
#[derive(Clone)]
pub struct RouterService {
    inner: Dispatch,
}

#[derive(Clone)]
enum Dispatch {
    /// No router-wide layers: call the core directly, without boxing.
    Plain(Arc<RouterCore>),
    Layered(Route),
}

struct RouterCore {
    matcher: Matcher<usize>,
    tables: Vec<(Arc<str>, MethodTable)>,
    fallback: Route,
    redirect_trailing_slash: bool,
    /// `Allow` for `OPTIONS *`: every method the router routes anywhere.
    server_allow: HeaderValue,
}

impl RouterService {
    pub(super) fn new(router: Router<()>) -> Self {
        let Router {
            paths,
            fallback,
            layers,
            redirect_trailing_slash,
            ..
        } = router;
        let mut matcher = Matcher::new();
        let mut tables = Vec::with_capacity(paths.len());
        let mut all_methods = vec![Method::OPTIONS];
        for (path, method_router) in paths {
            let table = method_router.into_table(&());
            for method in table.allow.to_str().unwrap_or_default().split(',') {
                if let Ok(method) = method.parse::<Method>() {
                    if !all_methods.contains(&method) {
                        all_methods.push(method);
                    }
                }
            }
            matcher
                .insert(path.as_str(), tables.len())
                .expect("routes were checked for conflicts as they were added");
            tables.push((Arc::from(path), table));
        }
        let fallback = fallback.map_or_else(
            || Route::from_handler(not_found, ()),
            |endpoint: Endpoint<()>| endpoint.into_route(&()),
        );
        let core = Arc::new(RouterCore {
            matcher,
            tables,
            fallback,
            redirect_trailing_slash,
            server_allow: join(&all_methods),
        });
        let inner = if layers.is_empty() {
            Dispatch::Plain(core)
        } else {
            let route = Route::from_call(CoreRoute(core));
            Dispatch::Layered(layers.iter().fold(route, |route, layer| layer(route)))
        };
        Self { inner }
    }

    /// Answers one request.
    pub fn call(&self, request: Request) -> RouterFuture {
        let dispatched = catch_unwind(AssertUnwindSafe(|| match &self.inner {
            Dispatch::Plain(core) => core.dispatch(request),
            Dispatch::Layered(route) => Answer::running(route.call(request)),
        }));
        RouterFuture {
            state: match dispatched {
                Ok(answer) => answer,
                Err(panic) => Answer::ready(panic_response(panic.as_ref())),
            },
        }
    }
}

impl fmt::Debug for RouterService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RouterService")
    }
}

async fn not_found(request: Request) -> Problem {
    Problem::not_found(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}

enum Answer {
    /// Boxed: the router answers by itself rarely (405, `OPTIONS`, redirects, panics), and a
    /// response is larger than the rest of the future, which is moved on every request.
    Ready(Option<Box<Response>>),
    Running {
        future: HandlerFuture,
        /// A `HEAD` request answered by the `GET` route: the body is dropped once it answers.
        head: bool,
        /// The route, for the response's extensions when the request asked for it.
        report: Option<MatchedRoute>,
    },
}

impl Answer {
    fn ready(response: Response) -> Self {
        Answer::Ready(Some(Box::new(response)))
    }

    fn running(future: HandlerFuture) -> Self {
        Answer::Running {
            future,
            head: false,
            report: None,
        }
    }
}

impl RouterCore {
    fn dispatch(&self, mut request: Request) -> Answer {
        let path = request.uri().path();
        let Ok(matched) = self.matcher.at(path) else {
            return self.unmatched(request);
        };
        let (pattern, table) = &self.tables[*matched.value];
        let method = request.method();
        let (route, head) = match table.route(method) {
            Some(route) => (route, false),
            None if *method == Method::HEAD && table.get().is_some() => {
                (table.get().expect("checked above"), true)
            }
            None if *method == Method::OPTIONS => {
                return Answer::ready(allow_response(
                    StatusCode::NO_CONTENT,
                    &table.allow_with_options,
                ));
            }
            None => return Answer::ready(method_not_allowed(&request, &table.allow)),
        };
        // Owned, for the span once the route match is in: cheap, a standard method is a tag.
        let method = method.clone();
        let path = request.uri().path_and_query().cloned();
        let params = PathParams::new(
            path.unwrap_or_else(|| PathAndQuery::from_static("/")),
            &matched.params,
        );
        let extensions = request.extensions_mut();
        // What a layer outside the router is told, by either way it asked: the response's
        // extensions (a marker) or the request's context (the metrics layer).
        let matched_route = || MatchedRoute::new(pattern.clone(), table.allow.clone());
        // Taken out, its work done, rather than read: the extensions' first table holds three
        // entries, and the server's, the request id's and this marker fill it; a fourth, from a
        // route's own layer, would make it grow: a new table and every entry moved.
        let report = extensions
            .remove::<ReportMatchedRoute>()
            .map(|_| matched_route());
        let span = RequestContext::matched(
            extensions,
            RouteMatch {
                pattern: pattern.clone(),
                params,
                body_limit: table.body_limit,
            },
            matched_route,
        );
        if let Some(span) = span {
            span.matched(&method, pattern);
        }
        Answer::Running {
            future: route.call(request),
            head,
            report,
        }
    }

    fn unmatched(&self, request: Request) -> Answer {
        if request.method() == Method::OPTIONS && request.uri().path() == "*" {
            return Answer::ready(allow_response(StatusCode::NO_CONTENT, &self.server_allow));
        }
        if self.redirect_trailing_slash {
            if let Some(redirect) = self.slash_redirect(&request) {
                return Answer::ready(redirect);
            }
        }
        Answer::running(self.fallback.call(request))
    }

    /// A 308 to the same path with the trailing slash added or removed, when that form is
    /// routed for the request's method.
    fn slash_redirect(&self, request: &Request) -> Option<Response> {
        let path = request.uri().path();
        // Only a path has a form with or without the slash: not the authority of a `CONNECT`
        // (`example.com:443`, whose path is empty) nor the `*` of `OPTIONS`.
        if !path.starts_with('/') || could_name_another_host(path) {
            return None;
        }
        let alternative = match path.strip_suffix('/') {
            Some("") => return None,
            Some(trimmed) => trimmed.to_owned(),
            None => format!("{path}/"),
        };
        let matched = self.matcher.at(&alternative).ok()?;
        if !self.tables[*matched.value].1.answers(request.method()) {
            return None;
        }
        let location = match request.uri().query() {
            Some(query) => format!("{alternative}?{query}"),
            None => alternative,
        };
        let location = HeaderValue::try_from(location).ok()?;
        let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
        response.headers_mut().insert(LOCATION, location);
        Some(response)
    }
}

/// Whether a browser could read `path`, sent back as a `Location`, as naming another host.
///
/// Why so wary: `//evil.example/x` is a protocol-relative URL, and browsers treat `\` as `/`
/// and skip tabs and newlines, so `/\evil.example` and `/\t/evil.example` leave the site too.
/// Some proxies and frameworks decode `%2F` and `%5C` before a browser sees the path, so the
/// percent-encoded forms count as well: a redirect is only a convenience, never worth an open
/// redirect.
fn could_name_another_host(path: &str) -> bool {
    let mut rest = path.strip_prefix('/').unwrap_or(path).as_bytes();
    loop {
        let (byte, len) = match rest {
            [b'%', high, low, ..] => match (hex(*high), hex(*low)) {
                (Some(high), Some(low)) => (high << 4 | low, 3),
                _ => return false,
            },
            [byte, ..] => (*byte, 1),
            [] => return false,
        };
        match byte {
            b'\t' | b'\n' | b'\r' => rest = &rest[len..],
            b'/' | b'\\' => return true,
            _ => return false,
        }
    }
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|value| value as u8)
}

fn allow_response(status: StatusCode, allow: &HeaderValue) -> Response {
    let mut response = status.into_response();
    response.headers_mut().insert(ALLOW, allow.clone());
    response
}

fn method_not_allowed(request: &Request, allow: &HeaderValue) -> Response {
    let problem = Problem::new(StatusCode::METHOD_NOT_ALLOWED).with_detail(format!(
        "{} is not allowed on {}; allowed: {}",
        request.method(),
        request.uri().path(),
        allow.to_str().unwrap_or_default()
    ));
    let mut response = problem.into_response();
    response.headers_mut().insert(ALLOW, allow.clone());
    response
}

fn panic_response(panic: &(dyn std::any::Any + Send)) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    tracing::error!(panic = message, "a request handler panicked");
    Problem::internal("the request handler failed unexpectedly").into_response()
}

/// Drops a response's body for `HEAD`, keeping the length it would have had.
fn without_body(mut response: Response) -> Response {
    if !response.headers().contains_key(CONTENT_LENGTH) {
        if let Some(length) = response.body().size_hint().exact() {
            response
                .headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
    *response.body_mut() = Body::empty();
    response
}

/// The future of [`RouterService::call`]. A panic while it runs becomes a 500 problem.
pub struct RouterFuture {
    state: Answer,
}

impl RouterFuture {
    /// A future that answers `response` at once: for a server that refuses a request before
    /// routing it.
    pub(crate) fn ready(response: Response) -> Self {
        Self {
            state: Answer::ready(response),
        }
    }
}

impl fmt::Debug for RouterFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RouterFuture")
    }
}

impl Future for RouterFuture {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let (future, head, report) = match &mut self.state {
            Answer::Ready(response) => {
                return Poll::Ready(*response.take().expect("polled after completion"));
            }
            Answer::Running {
                future,
                head,
                report,
            } => (future, *head, report),
        };
        let polled = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)));
        let mut response = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(response)) if head => without_body(response),
            Ok(Poll::Ready(response)) => response,
            Err(panic) => panic_response(panic.as_ref()),
        };
        if let Some(matched) = report.take() {
            response.extensions_mut().insert(matched);
        }
        self.state = Answer::Ready(None);
        Poll::Ready(response)
    }
}

/// The router core as a route, for router-wide layers to wrap.
struct CoreRoute(Arc<RouterCore>);

impl CallRoute for CoreRoute {
    fn call(&self, request: Request) -> HandlerFuture {
        Box::pin(RouterFuture {
            state: self.0.dispatch(request),
        })
    }

    fn call_service(&self, request: Request) -> RouteFuture {
        RouteFuture::router(RouterFuture {
            state: self.0.dispatch(request),
        })
    }
}

impl<B> Service<http::Request<B>> for RouterService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> ServiceFuture {
        ServiceFuture(RouterService::call(self, request.map(Body::new)))
    }
}

/// The future of [`RouterService`] used as a tower service.
pub struct ServiceFuture(RouterFuture);

impl fmt::Debug for ServiceFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceFuture")
    }
}

impl Future for ServiceFuture {
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::get;

    #[test]
    fn paths_a_browser_reads_as_another_host_are_recognised() {
        for path in [
            "//evil.example/",
            "/\\evil.example/",
            "/%2Fevil.example/",
            "/%2fevil.example/",
            "/%5Cevil.example/",
            "/%5cevil.example/",
            "/%09/evil.example/",
            "/%2F%2Fevil.example/",
        ] {
            assert!(could_name_another_host(path), "{path}");
        }
        for path in ["/", "/evil.example/", "/a//b/", "/a%2Fb/", "/%zz/", "/%2"] {
            assert!(!could_name_another_host(path), "{path}");
        }
    }

    #[tokio::test]
    async fn the_trailing_slash_redirect_never_leaves_the_host() {
        let service = Router::new()
            .route("/{first}/{*rest}", get(|| async { "" }))
            .route("/{first}", get(|| async { "" }))
            .into_service();
        for path in [
            "/%5Cevil.example/",
            "/%2Fevil.example/",
            "/%5C%5Cevil.example/",
        ] {
            let request = Request::get(path).body(Body::empty()).unwrap();
            let response = service.call(request).await;
            let location = response.headers().get(LOCATION);
            assert!(
                response.status() != StatusCode::PERMANENT_REDIRECT,
                "{path} redirected to {location:?}"
            );
        }
        let request = Request::get("/shop/").body(Body::empty()).unwrap();
        let response = service.call(request).await;
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(response.headers()[LOCATION], "/shop");
    }

    #[tokio::test]
    async fn parameters_are_those_routed_whatever_a_route_layer_does_to_the_uri() {
        let rewrite = tower::util::MapRequestLayer::new(|mut request: Request| {
            *request.uri_mut() = "/elsewhere/99?x=1".parse().unwrap();
            request
        });
        let long = "l".repeat(200);
        let service = Router::new()
            .route(
                "/user/{id}/files/{*rest}",
                get(
                    |crate::extract::Path((id, rest)): crate::extract::Path<(u64, String)>| async move {
                        format!("{id} {rest}")
                    },
                ),
            )
            .route_layer(rewrite)
            .into_service();
        let request = Request::get(format!("/user/7/files/a%20b/{long}"))
            .body(Body::empty())
            .unwrap();
        let response = service.call(request).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(body, format!("7 a b/{long}"));
    }

    #[tokio::test]
    async fn a_target_that_is_not_a_path_is_not_redirected() {
        let service = Router::new()
            .route("/", crate::router::any(|| async { "root" }))
            .into_service();
        let request = Request::builder()
            .method(Method::CONNECT)
            .uri("example.com:443")
            .body(Body::empty())
            .unwrap();
        assert_eq!(request.uri().path(), "");
        let response = service.call(request).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(response.headers().get(LOCATION).is_none());
    }

    #[tokio::test]
    async fn a_marked_request_learns_which_route_answered_it() {
        let purge = Method::from_bytes(b"PURGE").unwrap();
        let service = Router::new()
            .route("/user/{id}", get(|| async { "user" }))
            .route(
                "/panics",
                get(|| async { panic!("on purpose") as &'static str }),
            )
            .route("/any", crate::router::any(|| async { "any" }))
            .into_service();
        let marked = |method: &Method, path: &str| {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(path)
                .body(Body::empty())
                .unwrap();
            request.extensions_mut().insert(ReportMatchedRoute);
            request
        };
        let response = service.call(marked(&Method::HEAD, "/user/7")).await;
        let matched = response
            .extensions()
            .get::<MatchedRoute>()
            .expect("a route");
        assert_eq!(matched.pattern(), "/user/{id}");
        assert!(matched.routes_by_name(&Method::GET));
        let response = service.call(marked(&Method::GET, "/panics")).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response
                .extensions()
                .get::<MatchedRoute>()
                .unwrap()
                .pattern(),
            "/panics"
        );
        let response = service.call(marked(&purge, "/any")).await;
        let matched = response.extensions().get::<MatchedRoute>().unwrap();
        assert!(!matched.routes_by_name(&purge));
        for (method, path) in [(Method::GET, "/missing"), (Method::POST, "/user/7")] {
            let response = service.call(marked(&method, path)).await;
            assert!(
                response.extensions().get::<MatchedRoute>().is_none(),
                "{path}"
            );
        }
        let unmarked = Request::get("/user/7").body(Body::empty()).unwrap();
        let response = service.call(unmarked).await;
        assert!(response.extensions().get::<MatchedRoute>().is_none());
    }
}
