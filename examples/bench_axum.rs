//! The axum twin of `bench_server`, for `benches/http/run.sh`: the same routes and the same
//! bytes on the wire for every answer a load generator asks for.
//!
//! `cargo run --release --example bench_axum -- --listen 127.0.0.1:8081 --threads 1`

#[path = "bench_common/args.rs"]
mod args;

use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

const GITHUB_ROUTES: &str = include_str!("../benches/data/github-api-routes.txt");

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
struct Problem {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: String,
}

/// The same 400 problem that microkit answers for `/user/abc`.
fn bad_id(raw: &str) -> Response {
    let problem = Problem {
        kind: "about:blank",
        title: "Bad Request",
        status: 400,
        detail: format!("path parameter `id`: cannot parse `{raw}` as u64"),
    };
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/problem+json")],
        serde_json::to_vec(&problem).unwrap_or_default(),
    )
        .into_response()
}

async fn user(id: Result<Path<u64>, PathRejection>, raw: Path<String>) -> Response {
    match id {
        Ok(Path(id)) => Json(User {
            id,
            name: format!("user-{id}"),
        })
        .into_response(),
        Err(_) => bad_id(&raw.0),
    }
}

async fn pattern(path: MatchedPath) -> String {
    path.as_str().to_owned()
}

fn app() -> Router {
    let router = Router::new()
        .route("/plaintext", get(|| async { "Hello, World!" }))
        .route(
            "/json",
            get(|| async {
                Json(Message {
                    message: "Hello, World!",
                })
            }),
        )
        .route("/user/{id}", get(user))
        .route(
            "/echo",
            post(|Json(product): Json<Product>| async { Json(product) }),
        );
    GITHUB_ROUTES
        .lines()
        .filter(|line| !line.trim().is_empty())
        .fold(router, |router, route| {
            router.route(route.trim(), get(pattern))
        })
}

fn main() -> std::io::Result<()> {
    let args::Args {
        listen, threads, ..
    } = args::parse("bench_axum", 8081, false);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!("bench_axum http://{}", listener.local_addr()?);
            let listener = listener.tap_io(|stream| {
                let _ = stream.set_nodelay(true);
            });
            axum::serve(listener, app()).await
        })
}
