//! The raw hyper twin of `bench_server`, for `benches/http/run.sh`: hyper's HTTP/1.1
//! connection and a hand-written dispatch (matchit for the GitHub table), the floor that any
//! framework on hyper adds its cost to. It answers the same bytes as `bench_server` for every
//! request a load generator sends.
//!
//! `cargo run --release --example bench_hyper -- --listen 127.0.0.1:8082 --threads 1`

#[path = "bench_common/args.rs"]
mod args;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

const GITHUB_ROUTES: &str = include_str!("../benches/data/github-api-routes.txt");
const BODY_LIMIT: usize = 1024 * 1024;
const USER_ROUTE: &str = "/user/{id}";
const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const PROBLEM: &str = "application/problem+json";

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

#[derive(Serialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Serialize, Deserialize)]
struct Product {
    id: u64,
    name: String,
    price_cents: i64,
    tags: Vec<String>,
    description: String,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json(value: &impl Serialize) -> Response<Full<Bytes>> {
    answer(
        StatusCode::OK,
        JSON,
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

fn problem(status: StatusCode, detail: Option<String>) -> Response<Full<Bytes>> {
    let body = Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or(""),
        status: status.as_u16(),
        detail,
    };
    answer(
        status,
        PROBLEM,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

async fn echo(request: Request<Incoming>) -> Response<Full<Bytes>> {
    let is_json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(JSON));
    if !is_json {
        return problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
    }
    let Ok(body) = Limited::new(request.into_body(), BODY_LIMIT)
        .collect()
        .await
    else {
        return problem(StatusCode::PAYLOAD_TOO_LARGE, None);
    };
    match serde_json::from_slice::<Product>(&body.to_bytes()) {
        Ok(product) => json(&product),
        Err(err) => problem(StatusCode::BAD_REQUEST, Some(err.to_string())),
    }
}

async fn dispatch(
    table: Arc<matchit::Router<&'static str>>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    match (request.method(), path) {
        (&Method::GET, "/plaintext") => answer(StatusCode::OK, TEXT, "Hello, World!"),
        (&Method::GET, "/json") => json(&Message {
            message: "Hello, World!",
        }),
        (&Method::POST, "/echo") => echo(request).await,
        (&Method::GET, _) => match table.at(path) {
            // `/user/{id}` sits in the table with the GitHub routes, so that a static route
            // such as `/user/keys` wins over it, as in microkit's and axum's routers.
            Ok(found) if *found.value == USER_ROUTE => {
                let raw = found.params.get("id").unwrap_or_default();
                match raw.parse::<u64>() {
                    Ok(id) => json(&User {
                        id,
                        name: format!("user-{id}"),
                    }),
                    Err(_) => problem(
                        StatusCode::BAD_REQUEST,
                        Some(format!("path parameter `id`: cannot parse `{raw}` as u64")),
                    ),
                }
            }
            Ok(found) => answer(StatusCode::OK, TEXT, *found.value),
            Err(_) => problem(StatusCode::NOT_FOUND, None),
        },
        _ => problem(StatusCode::METHOD_NOT_ALLOWED, None),
    }
}

fn table() -> matchit::Router<&'static str> {
    let mut table = matchit::Router::new();
    table
        .insert(USER_ROUTE, USER_ROUTE)
        .expect("the user route fits the table");
    for route in GITHUB_ROUTES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        table
            .insert(route, route)
            .expect("the GitHub table has no conflicts");
    }
    table
}

fn main() -> std::io::Result<()> {
    let args::Args {
        listen, threads, ..
    } = args::parse("bench_hyper", 8082, false);
    let table = Arc::new(table());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!("bench_hyper http://{}", listener.local_addr()?);
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                let table = table.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let table = table.clone();
                        async move { Ok::<_, Infallible>(dispatch(table, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
}
