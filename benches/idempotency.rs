//! What honouring `Idempotency-Key` costs a create: the generated endpoint on the memory and
//! SQLite stores, the same request with and without a (fresh) key, in the same run. With a
//! key the create also fingerprints the body, marks the key running, and commits the kept
//! answer in the write's transaction, whose statement that keeps the key also checks it (a
//! resource without hooks does not read the key before it runs). The key table grows with
//! every iteration, as a busy service's does within a key's lifetime. Target: at most 1.3x
//! on SQLite.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use microkit::resource::store::sqlite::SqliteStore;
use microkit::resource::store::{MemoryStore, Store};
use microkit::resource::ResourceRoutes;
use microkit::Resource;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/product", list_path = "/products/")]
struct Product {
    #[resource(id)]
    id: u64,
    #[resource(validate(length(min = 1, max = 200)))]
    name: String,
    #[resource(validate(range(min = 0)))]
    price_cents: i64,
}

const BODY: &str = r#"{"name":"Lamp","price_cents":1999}"#;

fn create(key: Option<String>) -> http::Request<microkit::Body> {
    let mut request = http::Request::post("/product/").header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.body(microkit::Body::from(BODY)).expect("a request")
}

fn idempotency(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let stores: [(&str, Arc<dyn Store>); 2] = [
        ("memory", Arc::new(MemoryStore::new())),
        (
            "sqlite",
            Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("a SQLite store")),
        ),
    ];
    let keys = AtomicU64::new(0);
    for (name, store) in stores {
        let app = ResourceRoutes::<Product>::new(store)
            .router()
            .into_service();
        let mut group = c.benchmark_group(format!("create_{name}"));
        group.bench_function("without_key", |b| {
            b.to_async(&runtime).iter(|| {
                let answer = app.call(create(None));
                async move {
                    let response = answer.await;
                    assert_eq!(response.status(), 201);
                    response
                }
            });
        });
        group.bench_function("with_key", |b| {
            b.to_async(&runtime).iter(|| {
                let key = format!("bench-{}", keys.fetch_add(1, Ordering::Relaxed));
                let answer = app.call(create(Some(key)));
                async move {
                    let response = answer.await;
                    assert_eq!(response.status(), 201);
                    response
                }
            });
        });
        group.finish();
    }
}

criterion_group!(benches, idempotency);
criterion_main!(benches);
