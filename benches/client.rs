//! One `GET /plaintext` round trip on a keep-alive connection to a local microkit server,
//! through [`ServiceClient`] (name resolution, balancing, deadline header, retry bookkeeping)
//! and through a bare hyper-util client, in the same run. Target: the `ServiceClient` at most
//! 1.15x the bare client.
//!
//! The calls are made from a task on the runtime's workers, as a handler or the gateway makes
//! them, not from the thread criterion blocks on: that thread parks on a futex rather than on
//! the I/O driver, so whichever client does its I/O there (the `ServiceClient` drives its
//! connection in the calling task; hyper-util hands each request to a connection task on a
//! worker) pays a thread wake-up per read that no service pays.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use microkit::client::ServiceClient;
use microkit::discovery::{Instance, MemoryRegistry, Registry};
use microkit::router::get;
use microkit::{Body, Router};

/// Starts the server on `runtime`; it serves until the process ends.
fn start_server(runtime: &tokio::runtime::Runtime) -> SocketAddr {
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let addr = listener.local_addr().expect("the listener's address");
        let app = Router::new().route("/plaintext", get(|| async { "Hello, World!" }));
        tokio::spawn(microkit::serve(listener, app).into_future());
        addr
    })
}

fn round_trip(c: &mut Criterion) {
    // The server runs on a runtime of its own, as a service called over the network runs in a
    // process of its own: on one shared runtime the two ends of each exchange were scheduled
    // on different workers, and every round trip paid a worker hand-off (tokio's work
    // stealing) that no call between two services pays.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("the server's runtime");
    let addr = start_server(&server_runtime);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("the client's runtime");

    let registry = MemoryRegistry::new();
    let registration = runtime
        .block_on(registry.register(Instance::new("bench", addr)))
        .expect("registering");
    let service_client = ServiceClient::new(registry);
    // The same socket options as the ServiceClient's connector, so only the client differs.
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let bare = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
    let uri: http::Uri = format!("http://{addr}/plaintext").parse().expect("a URI");

    let mut group = c.benchmark_group("client_get_plaintext");
    group.bench_function("service_client", |b| {
        b.iter_custom(|iterations| {
            let client = service_client.clone();
            on_a_worker(&runtime, iterations, move || {
                let client = client.clone();
                async move {
                    let request = http::Request::get("/plaintext")
                        .body(Body::empty())
                        .expect("a request");
                    let response = client.send("bench", request).await.expect("an answer");
                    assert_eq!(response.status(), 200);
                    std::hint::black_box(response.into_body().collect().await.expect("a body"));
                }
            })
        });
    });
    group.bench_function("bare_hyper_util", |b| {
        b.iter_custom(|iterations| {
            let (bare, uri) = (bare.clone(), uri.clone());
            on_a_worker(&runtime, iterations, move || {
                let (bare, uri) = (bare.clone(), uri.clone());
                async move {
                    let response = bare.get(uri).await.expect("an answer");
                    assert_eq!(response.status(), 200);
                    std::hint::black_box(response.into_body().collect().await.expect("a body"));
                }
            })
        });
    });
    group.finish();
    drop(registration);
}

/// Runs `call` `iterations` times, one after another, in a task on the runtime's workers, and
/// returns how long that took.
fn on_a_worker<F, Fut>(runtime: &tokio::runtime::Runtime, iterations: u64, call: F) -> Duration
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let calls = runtime.spawn(async move {
        let started = Instant::now();
        for _ in 0..iterations {
            call().await;
        }
        started.elapsed()
    });
    runtime.block_on(calls).expect("the calling task")
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
