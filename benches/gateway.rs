//! Throughput through the gateway: 64 `GET /plaintext` requests, 8 in flight, per iteration,
//! through a [`Gateway`] to a backend and straight to the same backend, in the same run. The
//! ratio is the price of the extra hop (a second HTTP exchange, header rewriting, balancing).

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use microkit::client::ServiceClient;
use microkit::discovery::{Instance, MemoryRegistry, Registry};
use microkit::gateway::Gateway;
use microkit::router::get;
use microkit::Router;

const REQUESTS: usize = 64;
const IN_FLIGHT: usize = 8;

/// Serves `router` on a free loopback port until the process ends.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let addr = listener.local_addr().expect("the listener's address");
    tokio::spawn(microkit::serve(listener, router).into_future());
    addr
}

/// Sends [`REQUESTS`] GETs to `uri`, [`IN_FLIGHT`] at a time, reading every body.
async fn burst(client: &Client<HttpConnector, Empty<Bytes>>, uri: &Arc<http::Uri>) {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..IN_FLIGHT {
        let (client, uri) = (client.clone(), uri.clone());
        tasks.spawn(async move {
            for _ in (worker..REQUESTS).step_by(IN_FLIGHT) {
                let response = client.get((*uri).clone()).await.expect("an answer");
                assert_eq!(response.status(), 200);
                std::hint::black_box(response.into_body().collect().await.expect("a body"));
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a worker");
    }
}

fn throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let registry = MemoryRegistry::new();
    let (backend, gateway, registration) = runtime.block_on(async {
        let backend =
            serve(Router::new().route("/plaintext", get(|| async { "Hello, World!" }))).await;
        let registration = registry
            .register(Instance::new("backend", backend))
            .await
            .expect("registering");
        let edge = Gateway::new(ServiceClient::new(registry.clone()))
            .route("/plaintext", "backend")
            .into_router();
        (backend, serve(edge).await, registration)
    });
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
    let direct = Arc::new(
        format!("http://{backend}/plaintext")
            .parse()
            .expect("a URI"),
    );
    let through_gateway = Arc::new(
        format!("http://{gateway}/plaintext")
            .parse()
            .expect("a URI"),
    );

    let mut group = c.benchmark_group("gateway_64_gets_8_in_flight");
    group.throughput(Throughput::Elements(REQUESTS as u64));
    group.bench_function("through_gateway", |b| {
        b.to_async(&runtime)
            .iter(|| burst(&client, &through_gateway));
    });
    group.bench_function("direct", |b| {
        b.to_async(&runtime).iter(|| burst(&client, &direct));
    });
    group.finish();
    drop(registration);
}

criterion_group!(benches, throughput);
criterion_main!(benches);
