//! One `GET /plaintext` round trip on a keep-alive connection to a local microkit server,
//! through [`ServiceClient`] (name resolution, balancing, deadline header, retry bookkeeping)
//! and through a bare hyper-util client, in the same run. Target: the `ServiceClient` at most
//! 1.15x the bare client.

use std::future::IntoFuture;
use std::net::SocketAddr;

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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let addr = start_server(&runtime);

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
        b.to_async(&runtime).iter(|| async {
            let request = http::Request::get("/plaintext")
                .body(Body::empty())
                .expect("a request");
            let response = service_client
                .send("bench", request)
                .await
                .expect("an answer");
            assert_eq!(response.status(), 200);
            std::hint::black_box(response.into_body().collect().await.expect("a body"));
        });
    });
    group.bench_function("bare_hyper_util", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = bare.get(uri.clone()).await.expect("an answer");
            assert_eq!(response.status(), 200);
            std::hint::black_box(response.into_body().collect().await.expect("a body"));
        });
    });
    group.finish();
    drop(registration);
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
