//! An OTLP/HTTP receiver on 127.0.0.1 for the `otel` tests: a hyper server that hands every
//! request (head and whole body) to the test's handler and answers what it says, as a
//! collector would.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// What a handler answers: a status and a protobuf body.
pub(crate) type Answer = (u16, Vec<u8>);

/// Starts the receiver; `handle` sees each request and says the answer.
#[allow(dead_code)] // Not every test binary including this file uses plain HTTP.
pub(crate) async fn start<H>(handle: H) -> SocketAddr
where
    H: Fn(hyper::http::request::Parts, Bytes) -> Answer + Send + Sync + 'static,
{
    start_with(handle, None).await
}

/// Starts the receiver over TLS with `tls` (a connection whose handshake fails is dropped).
#[allow(dead_code)] // Not every test binary including this file uses TLS.
pub(crate) async fn start_tls<H>(
    handle: H,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
) -> SocketAddr
where
    H: Fn(hyper::http::request::Parts, Bytes) -> Answer + Send + Sync + 'static,
{
    start_with(handle, Some(tokio_rustls::TlsAcceptor::from(tls))).await
}

/// The TLS a receiver speaks: the certificate and key (PEM) it presents and, when given, the
/// CA (PEM) a client's certificate must chain to (then one is required).
#[allow(dead_code)] // Not every test binary including this file uses TLS.
pub(crate) fn server_tls(
    cert: &str,
    key: &str,
    client_ca: Option<&str>,
) -> Arc<tokio_rustls::rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(cert.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(builder.with_single_cert(chain, key).unwrap())
}

async fn start_with<H>(handle: H, tls: Option<tokio_rustls::TlsAcceptor>) -> SocketAddr
where
    H: Fn(hyper::http::request::Parts, Bytes) -> Answer + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handle = handle.clone();
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let handle = handle.clone();
                    async move {
                        let (head, body) = request.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let (status, answer) = handle(head, body);
                        let response = hyper::Response::builder()
                            .status(status)
                            .header("content-type", "application/x-protobuf")
                            .body(Full::new(Bytes::from(answer)))
                            .unwrap();
                        Ok::<_, Infallible>(response)
                    }
                },
            );
            let tls = tls.clone();
            tokio::spawn(async move {
                let http = hyper::server::conn::http1::Builder::new();
                let _ = match tls {
                    None => http.serve_connection(TokioIo::new(stream), service).await,
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => http.serve_connection(TokioIo::new(stream), service).await,
                        Err(_) => return,
                    },
                };
            });
        }
    });
    addr
}

/// Whether `head` is a protobuf `POST` to `path`, as OTLP/HTTP sends.
pub(crate) fn is_export(head: &hyper::http::request::Parts, path: &str) -> bool {
    let protobuf = head
        .headers
        .get("content-type")
        .is_some_and(|value| value == "application/x-protobuf");
    protobuf && head.method == hyper::Method::POST && head.uri.path() == path
}

/// Clears every variable in `names`, then sets `vars`: the environment is the process', so
/// the caller holds its test binary's lock on it while it sets up what reads it.
#[allow(dead_code)] // Not every test binary including this file sets the environment.
pub(crate) fn set_environment(names: &[&str], vars: &[(&str, String)]) {
    for name in names {
        std::env::remove_var(name);
    }
    for (name, value) in vars {
        std::env::set_var(name, value);
    }
}
