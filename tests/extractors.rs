//! Extractors and responses, in process: every rejection's status and problem body, the
//! `Option` and `Result` forms, response types, and panics becoming 500 problems.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::BodyExt;
use microkit::extract::{Path, Query, Rejection, RejectionKind, RemoteAddr};
use microkit::router::{get, post, RouterService};
use microkit::{Body, FieldError, Json, Problem, Request, Response, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
struct Product {
    id: u64,
    name: String,
    price_cents: i64,
    tags: Vec<String>,
    description: String,
}

fn app() -> RouterService {
    Router::new()
        .route(
            "/user/{id}",
            get(|Path(id): Path<u64>| async move { id.to_string() }),
        )
        .route(
            "/search",
            get(|Query(q): Query<Search>| async move { format!("{}:{}", q.term, q.limit) }),
        )
        .route(
            "/echo",
            post(|Json(p): Json<Product>| async move { Json(p) }),
        )
        .route(
            "/small",
            post(|body: Bytes| async move { body.len().to_string() }).body_limit(8),
        )
        .route(
            "/text",
            post(|text: String| async move { text.chars().rev().collect::<String>() })
                .body_limit(8),
        )
        .route(
            "/maybe",
            post(|body: Option<Json<Product>>| async move { body.is_some().to_string() }),
        )
        .route(
            "/maybe-search",
            get(|q: Option<Query<Search>>| async move {
                q.map_or("none".to_owned(), |Query(q)| q.term)
            }),
        )
        .route(
            "/checked",
            post(|body: Result<Json<Product>, Rejection>| async move {
                match body {
                    Ok(_) => "ok".to_owned(),
                    Err(rejection) => format!("{:?}", rejection.kind()),
                }
            }),
        )
        .route(
            "/parts",
            get(|method: Method, uri: Uri, headers: HeaderMap| async move {
                format!("{method} {uri} {}", headers.len())
            }),
        )
        .route(
            "/addr",
            get(|addr: Option<RemoteAddr>| async move { addr.is_some().to_string() }),
        )
        .route(
            "/created",
            post(|| async {
                (
                    StatusCode::CREATED,
                    [(LOCATION, "/product/1")],
                    Json(json!({"id": 1})),
                )
            }),
        )
        .route(
            "/invalid",
            get(|| async {
                Err::<(), _>(
                    Problem::unprocessable("bad")
                        .with_field_errors([FieldError::new("name", "empty")]),
                )
            }),
        )
        .route("/panic", get(panics))
        .into_service()
}

async fn panics() -> &'static str {
    panic!("boom")
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Search {
    term: String,
    limit: u32,
}

async fn call(
    service: &RouterService,
    method: &str,
    uri: &str,
    body: Option<(&str, &str)>,
) -> Response {
    let mut builder = Request::builder().method(method).uri(uri);
    let body = match body {
        Some((content_type, text)) => {
            builder = builder.header(CONTENT_TYPE, content_type);
            Body::from(text.to_owned())
        }
        None => Body::empty(),
    };
    service.call(builder.body(body).unwrap()).await
}

async fn text(response: Response) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Asserts the response is a problem with `status`, returning its body.
async fn expect_problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
    let body: Value = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(body["status"], status);
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

const PRODUCT: &str =
    r#"{"id":7,"name":"lamp","price_cents":1999,"tags":["home"],"description":"bright"}"#;

#[tokio::test]
async fn path_parse_errors_are_400() {
    let service = app();
    assert_eq!(
        text(call(&service, "GET", "/user/42", None).await).await,
        "42"
    );
    let body = expect_problem(call(&service, "GET", "/user/abc", None).await, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("abc"));
    expect_problem(call(&service, "GET", "/user/-1", None).await, 400).await;
    expect_problem(
        call(&service, "GET", "/user/99999999999999999999", None).await,
        400,
    )
    .await;
}

#[tokio::test]
async fn query_errors_are_400() {
    let service = app();
    assert_eq!(
        text(call(&service, "GET", "/search?term=a%20b&limit=3", None).await).await,
        "a b:3"
    );
    expect_problem(call(&service, "GET", "/search?term=a", None).await, 400).await;
    expect_problem(
        call(&service, "GET", "/search?term=a&limit=x", None).await,
        400,
    )
    .await;
}

#[tokio::test]
async fn json_round_trips() {
    let service = app();
    let response = call(
        &service,
        "POST",
        "/echo",
        Some(("application/json", PRODUCT)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    let back: Product = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(back.name, "lamp");
}

#[tokio::test]
async fn json_rejections_have_distinct_statuses() {
    let service = app();
    expect_problem(
        call(&service, "POST", "/echo", Some(("text/plain", PRODUCT))).await,
        415,
    )
    .await;
    expect_problem(call(&service, "POST", "/echo", None).await, 415).await;
    expect_problem(
        call(
            &service,
            "POST",
            "/echo",
            Some(("application/json", "{\"id\":")),
        )
        .await,
        400,
    )
    .await;
    let body = expect_problem(
        call(
            &service,
            "POST",
            "/echo",
            Some(("application/json", r#"{"id":"x"}"#)),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "id");
    let body = expect_problem(
        call(
            &service,
            "POST",
            "/echo",
            Some(("application/json", r#"{"id":1}"#)),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "name");
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let service = app();
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    expect_problem(
        call(&service, "POST", "/echo", Some(("application/json", &big))).await,
        413,
    )
    .await;
    expect_problem(
        call(
            &service,
            "POST",
            "/small",
            Some(("text/plain", "123456789")),
        )
        .await,
        413,
    )
    .await;
    assert_eq!(
        text(call(&service, "POST", "/small", Some(("text/plain", "1234"))).await).await,
        "4"
    );
}

#[tokio::test]
async fn a_string_body_is_utf8_within_the_limit() {
    let service = app();
    assert_eq!(
        text(call(&service, "POST", "/text", Some(("text/plain", "héllo"))).await).await,
        "olléh"
    );
    let request = Request::builder()
        .method("POST")
        .uri("/text")
        .header(CONTENT_TYPE, "text/plain")
        .body(Body::from(Bytes::from_static(b"ab\xff\xfe")))
        .unwrap();
    let problem = expect_problem(service.call(request).await, 400).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("UTF-8"),
        "{problem}"
    );
    expect_problem(
        call(&service, "POST", "/text", Some(("text/plain", "123456789"))).await,
        413,
    )
    .await;
}

#[tokio::test]
async fn option_is_none_only_when_absent_and_result_never_rejects() {
    let service = app();
    // No body at all: absent.
    let response = call(&service, "POST", "/maybe", None).await;
    assert_eq!(text(response).await, "false");
    // A body of another media type, or JSON that does not parse, is refused, not "absent"
    // (as axum 0.8 does).
    let response = call(&service, "POST", "/maybe", Some(("text/plain", "x"))).await;
    assert_eq!(response.status(), 415);
    let response = call(
        &service,
        "POST",
        "/maybe",
        Some(("application/json", "[1]")),
    )
    .await;
    assert_eq!(response.status(), 422);
    // A query string that does not parse is a 400, not `None`; none at all is `None`.
    assert_eq!(
        text(call(&service, "GET", "/maybe-search", None).await).await,
        "none"
    );
    let response = call(&service, "GET", "/maybe-search?term=a&limit=x", None).await;
    assert_eq!(response.status(), 400);
    let response = call(
        &service,
        "POST",
        "/maybe",
        Some(("application/json", PRODUCT)),
    )
    .await;
    assert_eq!(text(response).await, "true");
    let response = call(
        &service,
        "POST",
        "/checked",
        Some(("application/json", "[1]")),
    )
    .await;
    assert_eq!(
        text(response).await,
        format!("{:?}", RejectionKind::InvalidBody)
    );
}

#[tokio::test]
async fn request_parts_and_missing_remote_address() {
    let service = app();
    let response = call(&service, "GET", "/parts?x=1", None).await;
    assert_eq!(text(response).await, "GET /parts?x=1 0");
    assert_eq!(
        text(call(&service, "GET", "/addr", None).await).await,
        "false"
    );
}

#[tokio::test]
async fn tuples_set_status_headers_and_body() {
    let response = call(&app(), "POST", "/created", None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()[LOCATION], "/product/1");
    assert_eq!(text(response).await, r#"{"id":1}"#);
}

#[tokio::test]
async fn handler_problems_keep_their_extensions() {
    let body = expect_problem(call(&app(), "GET", "/invalid", None).await, 422).await;
    assert_eq!(
        body["errors"][0],
        json!({"field": "name", "message": "empty"})
    );
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_problem_and_the_router_keeps_serving() {
    let service = app();
    let body = expect_problem(call(&service, "GET", "/panic", None).await, 500).await;
    assert!(
        !body["detail"].as_str().unwrap().contains("boom"),
        "panic messages stay internal"
    );
    assert_eq!(
        text(call(&service, "GET", "/user/1", None).await).await,
        "1"
    );
}
