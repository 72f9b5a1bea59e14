//! The server the benchmarks load: `cargo run --release --example bench_server -- --listen
//! 127.0.0.1:8080 --threads 2`.
//!
//! Routes: `GET /plaintext`, `GET /json`, `GET /user/{id}` (`id` a u64, 400 otherwise),
//! `POST /echo` (a product parsed and returned), and every route of the GitHub API table in
//! `benches/data/github-api-routes.txt`, each answering 200 with its own pattern.

use std::net::SocketAddr;

use microkit::extract::{MatchedPath, Path};
use microkit::router::{get, post};
use microkit::{Json, Router};
use serde::{Deserialize, Serialize};

const GITHUB_ROUTES: &str = include_str!("../benches/data/github-api-routes.txt");

#[derive(Serialize, schemars::JsonSchema)]
struct Message {
    message: &'static str,
}

#[derive(Serialize, schemars::JsonSchema)]
struct User {
    id: u64,
    name: String,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
struct Product {
    id: u64,
    name: String,
    price_cents: i64,
    tags: Vec<String>,
    description: String,
}

async fn user(Path(id): Path<u64>) -> Json<User> {
    Json(User {
        id,
        name: format!("user-{id}"),
    })
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

struct Args {
    listen: SocketAddr,
    threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        threads: std::thread::available_parallelism().map_or(1, usize::from),
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => args.listen = value.parse().map_err(|e| format!("--listen: {e}"))?,
            "--threads" => {
                args.threads = value
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--threads: expected a positive number")?;
            }
            _ => {
                return Err(format!(
                    "unknown flag {flag} (expected --listen ADDR, --threads N)"
                ))
            }
        }
    }
    Ok(args)
}

fn main() -> std::io::Result<()> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("bench_server: {message}");
            std::process::exit(2);
        }
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(args.listen).await?;
            println!("bench_server http://{}", listener.local_addr()?);
            microkit::serve(listener, app())
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
        })
}
