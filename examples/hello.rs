//! The smallest microkit service: `cargo run --example hello`, then `curl localhost:3000/hello/you`.

use microkit::extract::Path;
use microkit::middleware::RequestIdLayer;
use microkit::router::get;
use microkit::{Json, Router};
use serde::Serialize;

#[derive(Serialize, schemars::JsonSchema)]
struct Greeting {
    message: String,
}

async fn hello(Path(name): Path<String>) -> Json<Greeting> {
    Json(Greeting {
        message: format!("Hello, {name}!"),
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new()
        .route("/", get(|| async { "Hello, World!" }))
        .route("/hello/{name}", get(hello))
        .layer(RequestIdLayer::new());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    microkit::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
