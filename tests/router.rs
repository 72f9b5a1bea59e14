//! Router behaviour, in process: method tables, 405/Allow, HEAD, OPTIONS, trailing-slash
//! redirects, nesting, merging, fallbacks, percent-decoding, layers and route listing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use microkit::extract::{MatchedPath, Path};
use microkit::router::RouterService;
use microkit::router::{any, delete, get, on, patch, post, MethodRouter, Router};
use microkit::{Body, Request, Response};
use serde_json::Value;

async fn send(service: &RouterService, method: &str, uri: &str) -> Response {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    service.call(request).await
}

async fn body_text(response: Response) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn problem(response: Response) -> Value {
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/problem+json",
        "errors are problem+json"
    );
    let status = response.status().as_u16();
    let json: Value = serde_json::from_str(&body_text(response).await).unwrap();
    assert_eq!(json["status"], status);
    assert!(json["title"].is_string());
    json
}

#[tokio::test]
async fn conformance_http_cases_of_the_axum_profile() {
    let data: Value = serde_json::from_str(include_str!("data/router-conformance.json")).unwrap();
    let mut checked = 0;
    for case in data["http_cases"].as_array().unwrap() {
        if case["profile"] != "axum-0.8" {
            continue;
        }
        let mut router = Router::new();
        for route in case["routes"].as_array().unwrap() {
            let mut method_router = MethodRouter::new();
            for method in route["methods"].as_array().unwrap() {
                let method: Method = method.as_str().unwrap().parse().unwrap();
                method_router = method_router.on(method, || async { "ok" });
            }
            router = router.route(route["path"].as_str().unwrap(), method_router);
        }
        let service = router.into_service();
        for request in case["requests"].as_array().unwrap() {
            let response = send(
                &service,
                request["method"].as_str().unwrap(),
                request["path"].as_str().unwrap(),
            )
            .await;
            let name = &case["name"];
            assert_eq!(
                response.status(),
                request["status"].as_u64().unwrap() as u16,
                "{name}"
            );
            if let Some(allow) = request["allow"].as_str() {
                assert_eq!(response.headers()[ALLOW], allow, "{name}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 4, "the axum profile cases ran");
}

#[tokio::test]
async fn wrong_method_is_405_problem_with_allow() {
    let service = Router::new()
        .route(
            "/item/{id}",
            get(|| async { "get" }).delete(|| async { "delete" }),
        )
        .into_service();
    let response = send(&service, "POST", "/item/1").await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[ALLOW], "GET,HEAD,DELETE");
    let body = problem(response).await;
    assert!(body["detail"].as_str().unwrap().contains("POST"));
}

#[tokio::test]
async fn head_is_answered_by_get_without_body_and_with_its_length() {
    let service = Router::new()
        .route("/text", get(|| async { "Hello, World!" }))
        .into_service();
    let response = send(&service, "HEAD", "/text").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_LENGTH], "13");
    assert_eq!(body_text(response).await, "");
}

#[tokio::test]
async fn explicit_head_and_options_handlers_win() {
    let service = Router::new()
        .route(
            "/x",
            get(|| async { "get" })
                .head(|| async { (StatusCode::ACCEPTED, "") })
                .options(|| async { "custom options" }),
        )
        .into_service();
    assert_eq!(
        send(&service, "HEAD", "/x").await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        body_text(send(&service, "OPTIONS", "/x").await).await,
        "custom options"
    );
}

#[tokio::test]
async fn automatic_options_lists_allowed_methods() {
    let service = Router::new()
        .route("/a", get(|| async { "" }).post(|| async { "" }))
        .route("/b", patch(|| async { "" }))
        .into_service();
    let response = send(&service, "OPTIONS", "/a").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.headers()[ALLOW], "GET,HEAD,POST,OPTIONS");
    let response = send(&service, "OPTIONS", "*").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let allow = response.headers()[ALLOW].to_str().unwrap().to_owned();
    for method in ["GET", "HEAD", "POST", "PATCH", "OPTIONS"] {
        assert!(allow.split(',').any(|m| m == method), "{allow}");
    }
    assert_eq!(
        send(&service, "OPTIONS", "/missing").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn trailing_slash_misses_redirect_with_308_keeping_the_query() {
    let service = Router::new()
        .route("/path", get(|| async { "" }).patch(|| async { "" }))
        .route("/dir/", get(|| async { "" }))
        .into_service();
    let response = send(&service, "GET", "/path/?a=1").await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.headers()[LOCATION], "/path?a=1");
    let response = send(&service, "GET", "/dir").await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.headers()[LOCATION], "/dir/");
    let response = send(&service, "PATCH", "/path/").await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    // A method the redirect target does not route is not redirected.
    assert_eq!(
        send(&service, "DELETE", "/path/").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&service, "GET", "/nope").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn trailing_slash_redirect_can_be_switched_off_and_never_leaves_the_site() {
    let service = Router::new()
        .route("/path", get(|| async { "" }))
        .redirect_trailing_slash(false)
        .into_service();
    assert_eq!(
        send(&service, "GET", "/path/").await.status(),
        StatusCode::NOT_FOUND
    );

    let service = Router::new()
        .route("/{*rest}", get(|| async { "" }))
        .into_service();
    assert_eq!(
        send(&service, "GET", "//evil.example/").await.status(),
        StatusCode::OK
    );
    let service = Router::new()
        .route("/a/{*rest}", get(|| async { "" }))
        .into_service();
    let response = send(&service, "GET", "//evil.example/").await;
    assert_ne!(response.status(), StatusCode::PERMANENT_REDIRECT);
}

#[tokio::test]
async fn unknown_routes_are_404_problems_unless_a_fallback_answers() {
    let service = Router::new()
        .route("/", get(|| async { "" }))
        .into_service();
    let response = send(&service, "GET", "/missing").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    problem(response).await;

    let service = Router::new()
        .route("/", get(|| async { "" }))
        .fallback(|request: Request| async move { format!("fallback for {}", request.uri()) })
        .into_service();
    assert_eq!(
        body_text(send(&service, "GET", "/x?y").await).await,
        "fallback for /x?y"
    );
}

#[tokio::test]
async fn nesting_prefixes_routes_including_parameters() {
    let items = Router::new()
        .route(
            "/",
            get(|Path(uid): Path<u64>| async move { format!("list of {uid}") }),
        )
        .route(
            "/{id}",
            get(|Path((uid, id)): Path<(u64, u64)>| async move { format!("{id} of {uid}") }),
        );
    let service = Router::new().nest("/user/{uid}/cart", items).into_service();
    assert_eq!(
        body_text(send(&service, "GET", "/user/7/cart").await).await,
        "list of 7"
    );
    assert_eq!(
        body_text(send(&service, "GET", "/user/7/cart/3").await).await,
        "3 of 7"
    );
}

#[tokio::test]
async fn nested_fallback_answers_under_its_prefix_only() {
    let api = Router::new()
        .route("/known", get(|| async { "known" }))
        .fallback(|| async { "api fallback" });
    let service = Router::new().nest("/api", api).into_service();
    assert_eq!(
        body_text(send(&service, "GET", "/api/unknown").await).await,
        "api fallback"
    );
    assert_eq!(
        send(&service, "GET", "/other").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn merging_combines_routes_and_methods() {
    let a = Router::new().route("/x", get(|| async { "get" }));
    let b = Router::new()
        .route("/x", post(|| async { "post" }))
        .route("/y", delete(|| async { "delete" }));
    let router = a.merge(b);
    let routes = router.routes();
    assert_eq!(
        routes,
        vec![
            (Method::GET, "/x".to_owned()),
            (Method::POST, "/x".to_owned()),
            (Method::DELETE, "/y".to_owned()),
        ]
    );
    let service = router.into_service();
    assert_eq!(body_text(send(&service, "POST", "/x").await).await, "post");
}

#[test]
#[should_panic(expected = "/users/{name}")]
fn conflicting_routes_fail_loudly_naming_both() {
    let result = std::panic::catch_unwind(|| {
        Router::<()>::new()
            .route("/users/{id}", get(|| async { "" }))
            .route("/users/{name}", get(|| async { "" }))
    });
    let message = *result.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("/users/{id}"), "{message}");
    panic!("{message}");
}

#[test]
#[should_panic(expected = "routed twice")]
fn routing_a_method_twice_fails_loudly() {
    let _ = Router::<()>::new().route("/x", get(|| async { "" }).get(|| async { "" }));
}

#[tokio::test]
async fn custom_methods_and_any() {
    let service = Router::new()
        .route(
            "/dav",
            on(Method::from_bytes(b"PROPFIND").unwrap(), || async {
                "props"
            }),
        )
        .route(
            "/proxy/{*rest}",
            any(|method: Method| async move { method.to_string() }),
        )
        .into_service();
    assert_eq!(
        body_text(send(&service, "PROPFIND", "/dav").await).await,
        "props"
    );
    assert_eq!(
        body_text(send(&service, "PUT", "/proxy/a/b").await).await,
        "PUT"
    );
}

#[tokio::test]
async fn parameters_are_percent_decoded_after_matching_on_the_raw_path() {
    let service = Router::new()
        .route(
            "/files/{name}",
            get(|Path(name): Path<String>| async move { name }),
        )
        .route("/static/a%20b", get(|| async { "raw static" }))
        .into_service();
    assert_eq!(
        body_text(send(&service, "GET", "/files/a%20b%2Fc").await).await,
        "a b/c"
    );
    assert_eq!(
        body_text(send(&service, "GET", "/static/a%20b").await).await,
        "raw static"
    );
    let response = send(&service, "GET", "/files/%FF%FE").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    problem(response).await;
}

#[tokio::test]
async fn matched_path_names_the_pattern() {
    let service = Router::new()
        .route(
            "/user/{id}",
            get(|path: MatchedPath| async move { path.as_str().to_owned() }),
        )
        .into_service();
    assert_eq!(
        body_text(send(&service, "GET", "/user/5").await).await,
        "/user/{id}"
    );
}

#[derive(Clone)]
struct CountLayer(Arc<AtomicUsize>);

#[derive(Clone)]
struct CountService<S> {
    inner: S,
    count: Arc<AtomicUsize>,
}

impl<S> tower::Layer<S> for CountLayer {
    type Service = CountService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountService {
            inner,
            count: self.0.clone(),
        }
    }
}

impl<S: tower::Service<Request>> tower::Service<Request> for CountService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.inner.call(request)
    }
}

#[tokio::test]
async fn router_layers_see_everything_route_layers_only_matches() {
    let all = Arc::new(AtomicUsize::new(0));
    let matched = Arc::new(AtomicUsize::new(0));
    let service = Router::new()
        .route("/x", get(|| async { "x" }))
        .route_layer(CountLayer(matched.clone()))
        .layer(CountLayer(all.clone()))
        .into_service();
    send(&service, "GET", "/x").await;
    send(&service, "GET", "/missing").await;
    send(&service, "POST", "/x").await;
    assert_eq!(all.load(Ordering::SeqCst), 3);
    assert_eq!(matched.load(Ordering::SeqCst), 1);
}

/// A layer whose service is not ready on its first poll (and wakes its task), or never: its
/// `poll_ready` fails.
#[derive(Clone)]
struct ReadinessLayer {
    fails: bool,
}

#[derive(Clone)]
struct ReadinessService<S> {
    inner: S,
    fails: bool,
    polled: bool,
}

impl<S> tower::Layer<S> for ReadinessLayer {
    type Service = ReadinessService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReadinessService {
            inner,
            fails: self.fails,
            polled: false,
        }
    }
}

impl<S> tower::Service<Request> for ReadinessService<S>
where
    S: tower::Service<Request>,
    S::Error: Into<microkit::BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = microkit::BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<S::Response, microkit::BoxError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        if self.fails {
            return std::task::Poll::Ready(Err("overloaded".into()));
        }
        if !self.polled {
            self.polled = true;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move { answer.await.map_err(Into::into) })
    }
}

#[tokio::test]
async fn a_layer_is_called_once_ready_and_its_readiness_error_is_a_500_problem() {
    let service = Router::new()
        .route("/x", get(|| async { "x" }))
        .route_layer(ReadinessLayer { fails: false })
        .into_service();
    assert_eq!(body_text(send(&service, "GET", "/x").await).await, "x");

    let service = Router::new()
        .route("/x", get(|| async { "x" }))
        .route_layer(ReadinessLayer { fails: true })
        .into_service();
    let response = send(&service, "GET", "/x").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(problem(response).await["status"], 500);
}

#[tokio::test]
async fn a_layer_panicking_when_called_is_a_500_problem_and_the_router_keeps_serving() {
    // The panic is in the layer's `call` (`MapRequest` maps the request there), not in its
    // future: the router calls a ready service as it dispatches.
    let panic_on_call = || {
        tower::util::MapRequestLayer::new(|request: Request| {
            assert_ne!(request.uri().path(), "/boom", "the layer broke");
            request
        })
    };
    let routes = || {
        Router::new()
            .route("/boom", get(|| async { "unreached" }))
            .route("/x", get(|| async { "x" }))
    };
    for service in [
        routes().route_layer(panic_on_call()).into_service(),
        routes().layer(panic_on_call()).into_service(),
    ] {
        let response = send(&service, "GET", "/boom").await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(problem(response).await["status"], 500);
        assert_eq!(body_text(send(&service, "GET", "/x").await).await, "x");
    }
}

#[tokio::test]
async fn state_reaches_handlers() {
    #[derive(Clone)]
    struct AppState {
        name: &'static str,
    }
    let service = Router::new()
        .route(
            "/",
            get(
                |microkit::extract::State(state): microkit::extract::State<AppState>| async move {
                    state.name
                },
            ),
        )
        .with_state(AppState { name: "shop" })
        .into_service();
    assert_eq!(body_text(send(&service, "GET", "/").await).await, "shop");
}
