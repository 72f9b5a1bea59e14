//! A product catalog in thirty lines: `cargo run --example resource`, then
//! `curl -d '{"name":"Lamp","price_cents":1999}' -H 'content-type: application/json' localhost:3000/product/`.

use std::sync::Arc;

use microkit::openapi::document_router;
use microkit::resource::store::MemoryStore;
use microkit::resource::ResourceRoutes;
use microkit::{Resource, Router};
use serde::{Deserialize, Serialize};

/// `POST /product/`, `GET|PUT|PATCH|DELETE /product/{id}`, `GET /products/?offset=&limit=&name=`.
#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/product", list_path = "/products/")]
struct Product {
    #[resource(id)]
    id: u64,
    #[resource(unique, filter, validate(length(min = 1, max = 200)))]
    name: String,
    #[resource(validate(range(min = 0)))]
    price_cents: i64,
    #[serde(default)]
    description: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let store = Arc::new(MemoryStore::new());
    let app: Router = ResourceRoutes::<Product>::new(store).router();
    // The routes document themselves: served at /openapi.json, shown at /docs.
    let document = document_router(&app.openapi("catalog", "1.0.0"));
    let app = app.merge(document);
    // The address to listen on: the first argument, 127.0.0.1:3000 without one.
    let listen = std::env::args().nth(1);
    let listener =
        tokio::net::TcpListener::bind(listen.as_deref().unwrap_or("127.0.0.1:3000")).await?;
    println!(
        "catalog http://{} (see /openapi.json)",
        listener.local_addr()?
    );
    microkit::serve(listener, app).await
}
