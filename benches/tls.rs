//! The cost of TLS per request, in the same run: one `GET /plaintext` through
//! [`ServiceClient`] on a kept-alive connection to a local microkit server over plain HTTP,
//! over HTTPS, and over HTTPS with mutual TLS; and what a new connection costs: a TCP
//! connect alone against a TCP connect plus a TLS 1.3 handshake (ECDSA P-256 certificates made
//! with rcgen, rustls on ring at both ends).

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use microkit::client::{ClientConfig, ClientTls, ServiceClient};
use microkit::discovery::{Instance, MemoryRegistry, Registry};
use microkit::router::get;
use microkit::server::TlsConfig;
use microkit::{Body, Router};
use microkit_test_support::certs::{authority, leaf_files, write, Authority};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig as RustlsConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// Starts a server on `runtime` (over TLS when given); it serves until the process ends.
fn start(runtime: &tokio::runtime::Runtime, tls: Option<TlsConfig>) -> SocketAddr {
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/plaintext", get(|| async { "Hello, World!" }));
        let server = microkit::serve(listener, app);
        let server = match tls {
            Some(tls) => server.tls(tls),
            None => server,
        };
        tokio::spawn(server.into_future());
        addr
    })
}

fn server_tls(dir: &Path, ca: &Authority, mutual: bool) -> TlsConfig {
    let (cert, key) = leaf_files(dir, ca, "bench", &["bench"]);
    let tls = TlsConfig::from_pem_files(cert, key).unwrap();
    if mutual {
        tls.client_ca(dir.join("ca.pem")).unwrap()
    } else {
        tls
    }
}

fn tls_cost(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = authority("bench CA");
    let ca_pem = write(dir.path(), "ca.pem", &ca.pem);
    let plain = start(&runtime, None);
    let https = start(&runtime, Some(server_tls(dir.path(), &ca, false)));
    let mutual = start(&runtime, Some(server_tls(dir.path(), &ca, true)));

    let registry = MemoryRegistry::new();
    let registrations: Vec<_> = [
        Instance::new("plain", plain),
        Instance::new("https", https).with_https(Some("bench".into())),
        Instance::new("mutual", mutual).with_https(Some("bench".into())),
    ]
    .into_iter()
    .map(|instance| runtime.block_on(registry.register(instance)).unwrap())
    .collect();
    let (cert, key) = leaf_files(dir.path(), &ca, "client", &["client"]);
    let tls = ClientTls::trusting(&ca_pem)
        .unwrap()
        .client_cert(cert, key)
        .unwrap();
    let client = ServiceClient::with_config(registry, ClientConfig::default().tls(tls));

    let mut group = c.benchmark_group("tls_get_plaintext_keepalive");
    for service in ["plain", "https", "mutual"] {
        group.bench_function(service, |b| {
            b.to_async(&runtime).iter(|| async {
                let request = http::Request::get("/plaintext")
                    .body(Body::empty())
                    .unwrap();
                let response = client.send(service, request).await.unwrap();
                assert_eq!(response.status(), 200);
                let body = response.into_body().collect_limited(1024).await.unwrap();
                std::hint::black_box(body);
            });
        });
    }
    group.finish();

    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let config = RustlsConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let mut group = c.benchmark_group("tls_new_connection");
    group.bench_function("tcp_connect", |b| {
        b.to_async(&runtime).iter(|| async {
            std::hint::black_box(tokio::net::TcpStream::connect(https).await.unwrap());
        });
    });
    group.bench_function("tcp_connect_and_tls13_handshake", |b| {
        b.to_async(&runtime).iter(|| async {
            let tcp = tokio::net::TcpStream::connect(https).await.unwrap();
            let name = ServerName::try_from("bench").unwrap();
            std::hint::black_box(connector.connect(name, tcp).await.unwrap());
        });
    });
    group.finish();
    drop(registrations);
}

criterion_group!(benches, tls_cost);
criterion_main!(benches);
