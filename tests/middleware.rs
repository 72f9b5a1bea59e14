//! tower compatibility: real tower-http layers and microkit's own `RequestIdLayer` on a
//! `microkit::Router`, through `Router::layer` and `Router::route_layer`, in process and over a
//! served loopback connection.

use microkit_test_support as support;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use microkit::http::{header, HeaderValue, Method, Request, StatusCode};
use microkit::middleware::{RequestId, RequestIdLayer};
use microkit::router::{get, post, RouterService};
use microkit::{Body, Router, ServerConfig};
use tower::ServiceExt;
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// A response read to its end, in process.
struct Answer {
    status: StatusCode,
    headers: microkit::http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("a textual header"))
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("a UTF-8 body")
    }
}

fn req(method: Method, path: &str) -> microkit::http::request::Builder {
    Request::builder().method(method).uri(path)
}

/// Answers `request` with the router as a tower service, without a socket.
async fn call(service: &RouterService, request: Request<Body>) -> Answer {
    let response = tokio::time::timeout(support::PATIENCE, service.clone().oneshot(request))
        .await
        .expect("an answer in time")
        .expect("the router service is infallible");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("a readable body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

async fn call_get(service: &RouterService, path: &str) -> Answer {
    call(service, req(Method::GET, path).body(Body::empty()).unwrap()).await
}

/// Counts what a `TraceLayer` sees: requests, and the statuses of responses.
#[derive(Clone, Default)]
struct Seen {
    requests: Arc<AtomicUsize>,
    statuses: Arc<Mutex<Vec<u16>>>,
}

impl Seen {
    /// `router` wrapped in a counting `TraceLayer`, with `Router::layer` or, when
    /// `routes_only`, with `Router::route_layer`.
    fn trace(&self, router: Router, routes_only: bool) -> Router {
        let requests = self.requests.clone();
        let statuses = self.statuses.clone();
        let layer = TraceLayer::new_for_http()
            .on_request(move |_: &microkit::Request, _: &_| {
                requests.fetch_add(1, Ordering::SeqCst);
            })
            .on_response(move |response: &microkit::Response, _: Duration, _: &_| {
                statuses.lock().unwrap().push(response.status().as_u16());
            });
        if routes_only {
            router.route_layer(layer)
        } else {
            router.layer(layer)
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn statuses(&self) -> Vec<u16> {
        self.statuses.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn trace_layer_on_the_router_sees_every_request() {
    let seen = Seen::default();
    let app = seen
        .trace(
            Router::new().route("/hello", get(|| async { "hello" })),
            false,
        )
        .into_service();

    let answer = call_get(&app, "/hello").await;
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (StatusCode::OK, "hello")
    );
    // The router's own answers go through a router-wide layer too.
    let answer = call_get(&app, "/missing").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = call(
        &app,
        req(Method::DELETE, "/hello").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);

    assert_eq!(seen.requests(), 3);
    assert_eq!(seen.statuses(), vec![200, 404, 405]);
}

#[tokio::test]
async fn trace_route_layer_sees_only_the_routes_added_before_it() {
    let seen = Seen::default();
    let app = seen
        .trace(
            Router::new().route("/hello", get(|| async { "hello" })),
            true,
        )
        .route("/later", get(|| async { "later" }))
        .into_service();

    assert_eq!(call_get(&app, "/hello").await.status, StatusCode::OK);
    assert_eq!(seen.requests(), 1);
    // Neither the fallback nor a route added after `route_layer` is wrapped.
    assert_eq!(
        call_get(&app, "/missing").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(call_get(&app, "/later").await.text(), "later");
    assert_eq!(seen.requests(), 1);
    assert_eq!(seen.statuses(), vec![200]);
}

const ORIGIN: &str = "https://app.example";

fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin([HeaderValue::from_static(ORIGIN)])
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}

#[tokio::test]
async fn cors_layer_answers_preflights_and_marks_simple_requests() {
    let app = Router::new()
        .route(
            "/items",
            get(|| async { "items" }).post(|| async { "created" }),
        )
        .layer(cors())
        .into_service();

    let preflight = req(Method::OPTIONS, "/items")
        .header(header::ORIGIN, ORIGIN)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        .body(Body::empty())
        .unwrap();
    let answer = call(&app, preflight).await;
    // The router alone would answer OPTIONS with 204 + Allow; the layer answers first.
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("access-control-allow-origin"), Some(ORIGIN));
    let methods = answer
        .header("access-control-allow-methods")
        .unwrap_or_default();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let headers = answer
        .header("access-control-allow-headers")
        .unwrap_or_default();
    assert!(headers.contains("content-type"), "{headers}");
    assert_eq!(answer.header("access-control-max-age"), Some("600"));

    let simple = req(Method::GET, "/items")
        .header(header::ORIGIN, ORIGIN)
        .body(Body::empty())
        .unwrap();
    let answer = call(&app, simple).await;
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (StatusCode::OK, "items")
    );
    assert_eq!(answer.header("access-control-allow-origin"), Some(ORIGIN));

    let stranger = req(Method::GET, "/items")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::empty())
        .unwrap();
    let answer = call(&app, stranger).await;
    assert_eq!(answer.header("access-control-allow-origin"), None);
}

fn large_text() -> String {
    "microkit compresses this line, and the next one, and the one after.\n".repeat(2_000)
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("a valid gzip stream");
    text
}

#[tokio::test]
async fn compression_layer_gzips_large_responses_for_clients_that_accept_it() {
    let app = Router::new()
        .route("/text", get(|| async { large_text() }))
        .layer(CompressionLayer::new())
        .into_service();

    let gzip = req(Method::GET, "/text")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let answer = call(&app, gzip).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-encoding"), Some("gzip"));
    assert!(
        answer.body.len() < large_text().len() / 10,
        "{} bytes compressed",
        answer.body.len()
    );
    assert_eq!(gunzip(&answer.body), large_text());

    // A client that did not ask for gzip gets the text as it is.
    let answer = call_get(&app, "/text").await;
    assert_eq!(answer.header("content-encoding"), None);
    assert_eq!(answer.text(), large_text());
}

#[tokio::test]
async fn timeout_layer_answers_408_for_a_slow_handler() {
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "too late"
            }),
        )
        .route("/fast", get(|| async { "fast" }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(100),
        ))
        .into_service();

    let started = Instant::now();
    let answer = call_get(&app, "/slow").await;
    assert_eq!(answer.status, StatusCode::REQUEST_TIMEOUT);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let answer = call_get(&app, "/fast").await;
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (StatusCode::OK, "fast")
    );
}

/// Whether `text` is a lower-case hyphenated UUID v4 (RFC 9562 variant).
fn is_uuid_v4(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
        && bytes[14] == b'4'
        && matches!(bytes[19], b'8' | b'9' | b'a' | b'b')
}

async fn echo_id(id: RequestId) -> String {
    id.as_str().to_owned()
}

fn request_id_app() -> RouterService {
    Router::new()
        .route("/id", get(echo_id))
        .layer(RequestIdLayer::new())
        .into_service()
}

async fn call_with_id(app: &RouterService, id: Option<&'static str>) -> Answer {
    let mut request = req(Method::GET, "/id");
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    call(app, request.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn request_id_layer_keeps_an_incoming_id() {
    let app = request_id_app();
    let answer = call_with_id(&app, Some("abc-123")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "abc-123");
    assert_eq!(answer.header("x-request-id"), Some("abc-123"));
}

#[tokio::test]
async fn request_id_layer_generates_a_uuid_when_none_or_a_bad_one_came() {
    let app = request_id_app();
    let first = call_with_id(&app, None).await;
    let id = first
        .header("x-request-id")
        .expect("an echoed id")
        .to_owned();
    assert!(is_uuid_v4(&id), "not a UUID v4: {id}");
    assert_eq!(
        first.text(),
        id,
        "the handler saw another id than the response carries"
    );

    let second = call_with_id(&app, None).await;
    assert_ne!(
        second.header("x-request-id"),
        Some(id.as_str()),
        "ids repeat"
    );

    let replaced = call_with_id(&app, Some("has space")).await;
    let id = replaced.header("x-request-id").unwrap_or_default();
    assert!(is_uuid_v4(id), "a malformed incoming id was kept: {id}");
    assert_eq!(replaced.text(), id);
}

#[tokio::test]
async fn request_id_as_route_layer_leaves_the_router_answers_alone() {
    let app = Router::new()
        .route("/id", get(echo_id))
        .route_layer(RequestIdLayer::new())
        .into_service();
    let routed = call_with_id(&app, None).await;
    assert!(is_uuid_v4(
        routed.header("x-request-id").unwrap_or_default()
    ));
    let missing = call_get(&app, "/missing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("x-request-id"), None);

    // Without the layer the extractor has nothing to take: the handler is not called.
    let bare = Router::new().route("/id", get(echo_id)).into_service();
    assert_eq!(
        call_with_id(&bare, Some("abc")).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn layers_work_over_a_served_connection() {
    let seen = Seen::default();
    let app = Router::new()
        .route("/id", get(echo_id))
        .route("/text", get(|| async { large_text() }))
        .route("/echo", post(|body: Bytes| async move { body }))
        .layer(RequestIdLayer::new())
        .layer(CompressionLayer::new())
        .layer(cors());
    let app = seen.trace(app, false);
    let config = ServerConfig::default()
        .keep_alive_timeout(Duration::from_secs(2))
        .shutdown_timeout(Duration::from_secs(2));
    let server = support::spawn(app, config).await;

    let mut request = support::request(Method::GET, "/id", Bytes::new());
    request
        .headers_mut()
        .insert("x-request-id", HeaderValue::from_static("wire-1"));
    request
        .headers_mut()
        .insert(header::ORIGIN, HeaderValue::from_static(ORIGIN));
    let reply = support::send(server.addr, request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "wire-1");
    assert_eq!(reply.header("x-request-id"), "wire-1");
    assert_eq!(reply.header("access-control-allow-origin"), ORIGIN);

    let mut request = support::request(Method::GET, "/text", Bytes::new());
    request
        .headers_mut()
        .insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    let reply = support::send(server.addr, request).await;
    assert_eq!(reply.header("content-encoding"), "gzip");
    assert_eq!(gunzip(&reply.body), large_text());
    assert!(is_uuid_v4(reply.header("x-request-id")));

    let reply = support::send(
        server.addr,
        support::request(Method::POST, "/echo", Bytes::from_static(b"ping")),
    )
    .await;
    assert_eq!(reply.text(), "ping");

    assert_eq!(seen.requests(), 3);
    assert_eq!(seen.statuses(), vec![200, 200, 200]);
    server.stop().await;
}
