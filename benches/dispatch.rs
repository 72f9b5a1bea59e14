//! In-process dispatch, no socket: a `GET /user/{id}` request in, a JSON response out, through
//! microkit's router and through axum's, in the same run. Target: microkit at most 1.0x axum.

use criterion::{criterion_group, criterion_main, Criterion};
use serde::Serialize;
use tower::Service;

#[derive(Serialize, schemars::JsonSchema)]
struct User {
    id: u64,
    name: String,
}

fn user(id: u64) -> User {
    User {
        id,
        name: format!("user-{id}"),
    }
}

async fn microkit_user(
    microkit::extract::Path(id): microkit::extract::Path<u64>,
) -> microkit::Json<User> {
    microkit::Json(user(id))
}

async fn axum_user(axum::extract::Path(id): axum::extract::Path<u64>) -> axum::Json<User> {
    axum::Json(user(id))
}

fn dispatch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let microkit_app = microkit::Router::new()
        .route("/user/{id}", microkit::router::get(microkit_user))
        .into_service();
    let mut axum_app: axum::Router = axum::Router::new()
        .route("/user/{id}", axum::routing::get(axum_user))
        .with_state(());

    let mut group = c.benchmark_group("dispatch_get_user_json");
    group.bench_function("microkit", |b| {
        b.to_async(&runtime).iter(|| async {
            let request = http::Request::get("/user/12345")
                .body(microkit::Body::empty())
                .expect("a request");
            let response = microkit_app.call(request).await;
            assert_eq!(response.status(), 200);
            response
        });
    });
    group.bench_function("axum", |b| {
        b.to_async(&runtime).iter(|| {
            let request = http::Request::get("/user/12345")
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
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
