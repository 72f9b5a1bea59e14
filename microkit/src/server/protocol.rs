//! Which HTTP a connection speaks, and hyper's connection for it.
//!
//! A plain TCP connection whose first bytes are not the start of HTTP/2's prior-knowledge
//! preface is served by hyper's HTTP/1.1 connection directly. Everything else (h2c, a preface
//! not yet all arrived, TLS sessions) goes through hyper-util's automatic builder, which reads
//! the first bytes itself and replays them.
//!
//! Why not the automatic builder for every connection: it wraps the stream in a replaying
//! reader and the connection in a wrapper of its own, which every read and every poll of
//! every request pass through (about a hundred instructions per request). A peek at the
//! first bytes, once per connection, answers the same question.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::{BoxError, Response};

/// The preface an HTTP/2 client with prior knowledge opens with (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// hyper's builders, configured once per server.
pub(super) struct Protocols {
    pub(super) http1: http1::Builder,
    pub(super) auto: auto::Builder<TokioExecutor>,
}

/// A stream a connection is served over.
pub(super) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Whether the first bytes rule HTTP/2 out, once some arrived (`Ok(None)` at the end of
    /// the stream); `Ok(Some(false))` when the transport cannot tell without consuming them.
    fn poll_http1_only(&self, cx: &mut Context<'_>) -> Poll<io::Result<Option<bool>>> {
        let _ = cx;
        Poll::Ready(Ok(Some(false)))
    }
}

impl Transport for TcpStream {
    fn poll_http1_only(&self, cx: &mut Context<'_>) -> Poll<io::Result<Option<bool>>> {
        let mut first = [0; H2_PREFACE.len()];
        let mut first = ReadBuf::new(&mut first);
        std::task::ready!(self.poll_peek(cx, &mut first))?;
        let first = first.filled();
        Poll::Ready(Ok(
            (!first.is_empty()).then(|| !H2_PREFACE.starts_with(first))
        ))
    }
}

#[cfg(feature = "tls")]
impl Transport for tokio_rustls::server::TlsStream<TcpStream> {}

pin_project_lite::pin_project! {
    /// hyper's connection serving one stream.
    #[project = ServingProjection]
    pub(super) enum Serving<'a, IO, S>
    where
        S: Service<Request<Incoming>, Response = Response, Error = Infallible>,
    {
        Http1 { #[pin] connection: http1::UpgradeableConnection<TokioIo<IO>, S> },
        Sniffed { #[pin] connection: auto::UpgradeableConnection<'a, TokioIo<IO>, S, TokioExecutor> },
    }
}

impl<'a, IO, S> Serving<'a, IO, S>
where
    IO: Transport,
    S: Service<Request<Incoming>, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    /// Serves `stream` with `service`: over HTTP/1.1 directly when `http1_only`, otherwise as
    /// the first bytes say.
    pub(super) fn new(protocols: &'a Protocols, stream: IO, service: S, http1_only: bool) -> Self {
        let io = TokioIo::new(stream);
        if http1_only {
            Serving::Http1 {
                connection: protocols
                    .http1
                    .serve_connection(io, service)
                    .with_upgrades(),
            }
        } else {
            Serving::Sniffed {
                connection: protocols.auto.serve_connection_with_upgrades(io, service),
            }
        }
    }

    /// Finishes the requests in flight, then closes (HTTP/2: a GOAWAY first).
    pub(super) fn graceful_shutdown(self: Pin<&mut Self>) {
        match self.project() {
            ServingProjection::Http1 { connection } => connection.graceful_shutdown(),
            ServingProjection::Sniffed { connection } => connection.graceful_shutdown(),
        }
    }
}

impl<IO, S> Future for Serving<'_, IO, S>
where
    IO: Transport,
    S: Service<Request<Incoming>, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Output = Result<(), BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ServingProjection::Http1 { connection } => connection.poll(cx).map_err(Into::into),
            ServingProjection::Sniffed { connection } => connection.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn first_bytes_say(sent: &[u8]) -> Option<bool> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(sent).await.unwrap();
        if sent.is_empty() {
            client.shutdown().await.unwrap();
        }
        std::future::poll_fn(|cx| server.poll_http1_only(cx))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn only_bytes_that_cannot_start_the_preface_rule_http2_out() {
        assert_eq!(first_bytes_say(b"GET / HTTP/1.1\r\n").await, Some(true));
        assert_eq!(
            first_bytes_say(b"POST /echo HTTP/1.1\r\n").await,
            Some(true)
        );
        assert_eq!(first_bytes_say(H2_PREFACE).await, Some(false));
        assert_eq!(first_bytes_say(b"PRI * HT").await, Some(false));
        assert_eq!(first_bytes_say(b"").await, None);
    }
}
