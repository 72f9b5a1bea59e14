//! Generated resource endpoints on the memory store against a hand-written axum handler doing
//! the same work over a `RwLock<HashMap>`: parse the id, look it up, answer JSON with an ETag;
//! parse and validate a body, allocate an id, store, answer 201 with Location and ETag.
//! Target: microkit at most 1.1x axum's time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use criterion::{criterion_group, criterion_main, Criterion};
use microkit::resource::store::MemoryStore;
use microkit::resource::ResourceRoutes;
use microkit::Resource;
use serde::{Deserialize, Serialize};
use tower::Service;

#[derive(Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/product", list_path = "/products/")]
struct Product {
    #[resource(id)]
    id: u64,
    #[resource(validate(length(min = 1, max = 200)))]
    name: String,
    #[resource(validate(range(min = 0)))]
    price_cents: i64,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct NewProduct {
    name: String,
    price_cents: i64,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Default)]
struct HandWritten {
    next_id: AtomicU64,
    products: RwLock<HashMap<u64, (Product, u64)>>,
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("a valid etag")
}

async fn axum_get(
    axum::extract::State(db): axum::extract::State<Arc<HandWritten>>,
    axum::extract::Path(id): axum::extract::Path<u64>,
) -> axum::response::Response {
    let found = db.products.read().expect("lock").get(&id).cloned();
    match found {
        Some((product, version)) => {
            let mut response = axum::Json(product).into_response();
            response.headers_mut().insert(header::ETAG, etag(version));
            response
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn axum_create(
    axum::extract::State(db): axum::extract::State<Arc<HandWritten>>,
    axum::Json(new): axum::Json<NewProduct>,
) -> axum::response::Response {
    let name_ok = (1..=200).contains(&new.name.chars().count());
    if !name_ok || new.price_cents < 0 {
        return StatusCode::UNPROCESSABLE_ENTITY.into_response();
    }
    let id = db.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let product = Product {
        id,
        name: new.name,
        price_cents: new.price_cents,
        description: new.description,
    };
    db.products
        .write()
        .expect("lock")
        .insert(id, (product.clone(), 1));
    let mut response = (StatusCode::CREATED, axum::Json(product)).into_response();
    let location = HeaderValue::from_str(&format!("/product/{id}")).expect("a valid location");
    response.headers_mut().insert(header::LOCATION, location);
    response.headers_mut().insert(header::ETAG, etag(1));
    response
}

const BODY: &str = r#"{"name":"Lamp","price_cents":1999,"description":"bright"}"#;

fn resource(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let microkit_app = ResourceRoutes::<Product>::new(Arc::new(MemoryStore::new()))
        .router()
        .into_service();
    let mut axum_app: axum::Router = axum::Router::new()
        .route("/product/", axum::routing::post(axum_create))
        .route("/product/{id}", axum::routing::get(axum_get))
        .with_state(Arc::new(HandWritten::default()));

    // The same 1000 products in both.
    runtime.block_on(async {
        for _ in 0..1000 {
            let request = || {
                http::Request::post("/product/")
                    .header("content-type", "application/json")
                    .body(BODY)
                    .expect("a request")
            };
            assert_eq!(
                microkit_app
                    .call(request().map(microkit::Body::from))
                    .await
                    .status(),
                201
            );
            let response = axum_app
                .call(request().map(axum::body::Body::from))
                .await
                .expect("infallible");
            assert_eq!(response.status(), 201);
        }
    });

    let mut group = c.benchmark_group("resource_get_product");
    group.bench_function("microkit", |b| {
        b.to_async(&runtime).iter(|| async {
            let request = http::Request::get("/product/500")
                .body(microkit::Body::empty())
                .expect("a request");
            let response = microkit_app.call(request).await;
            assert_eq!(response.status(), 200);
            response
        });
    });
    group.bench_function("axum", |b| {
        b.to_async(&runtime).iter(|| {
            let request = http::Request::get("/product/500")
                .body(axum::body::Body::empty())
                .expect("a request");
            let future = axum_app.call(request);
            async move {
                let response = future.await.expect("infallible");
                assert_eq!(response.status(), 200);
                response
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("resource_create_product");
    group.bench_function("microkit", |b| {
        b.to_async(&runtime).iter(|| async {
            let request = http::Request::post("/product/")
                .header("content-type", "application/json")
                .body(microkit::Body::from(BODY))
                .expect("a request");
            let response = microkit_app.call(request).await;
            assert_eq!(response.status(), 201);
            response
        });
    });
    group.bench_function("axum", |b| {
        b.to_async(&runtime).iter(|| {
            let request = http::Request::post("/product/")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(BODY))
                .expect("a request");
            let future = axum_app.call(request);
            async move {
                let response = future.await.expect("infallible");
                assert_eq!(response.status(), 201);
                response
            }
        });
    });
    group.finish();
}

criterion_group!(benches, resource);
criterion_main!(benches);
