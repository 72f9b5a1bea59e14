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
pub(crate) async fn start<H>(handle: H) -> SocketAddr
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
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
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
