//! In-process dispatch, no socket: a `GET /user/{id}` request in, a JSON response out, through
//! microkit's router and through axum's, in the same run. Target: microkit at most 1.0x axum.
//!
//! `microkit_traced` adds what the server does around every request for tracing (read the
//! `traceparent`, open the span, make both current: `ServerTrace`) with no subscriber
//! listening; `microkit_traced_subscribed` with a `tracing_subscriber` registry that builds
//! every span. Target: traced at most 1.1x `microkit`.

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
    group.bench_function("microkit_traced", |b| {
        b.to_async(&runtime).iter(|| traced(&microkit_app));
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
    // Last: once a subscriber has been set, every span's interest is asked again.
    {
        let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry());
        group.bench_function("microkit_traced_subscribed", |b| {
            b.to_async(&runtime).iter(|| traced(&microkit_app));
        });
    }
    group.finish();
}

/// One request as `serve` answers it: in its trace context and span.
async fn traced(app: &microkit::router::RouterService) -> microkit::Response {
    // The same request as `microkit`'s: no `traceparent`, so a new trace is started.
    let mut request = http::Request::get("/user/12345")
        .body(microkit::Body::empty())
        .expect("a request");
    let mut trace = microkit::trace::ServerTrace::start(&mut request);
    let answer = trace.in_scope(|| app.call(request));
    let response = trace.run(answer).await;
    assert_eq!(response.status(), 200);
    response
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
