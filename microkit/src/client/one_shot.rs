//! One HTTP/1.1 request on a connection of its own, for the rare fetches outside the service
//! client's pool: a JWKS document (feature `auth`) and OTLP exports (feature `otel`). Over TLS
//! for `https` (microkit's [`ClientTls`](super::ClientTls), feature `tls`), the answer read whole
//! up to a limit, the connection's task bounded in time so a stalled server cannot keep it.

use std::time::Duration;

use bytes::{Buf, Bytes};
use http::header::{HeaderValue, HOST};
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::BoxError;

/// The TLS configuration for `https` URLs: microkit's [`ClientTls`](super::ClientTls) with the
/// `tls` feature, and nothing to give without it.
#[cfg(feature = "tls")]
pub(crate) type Tls = super::ClientTls;
/// The TLS configuration for `https` URLs: nothing to give without the `tls` feature.
#[cfg(not(feature = "tls"))]
pub(crate) type Tls = std::convert::Infallible;

/// Sends `request` (its URI absolute; over `tls` for `https`, refused without it) and reads
/// the answer, at most `max_answer` bytes of body; the connection is given up after `timeout`
/// whatever happens.
pub(crate) async fn exchange<B>(
    tls: Option<&Tls>,
    request: Request<B>,
    max_answer: usize,
    timeout: Duration,
) -> Result<Response<Bytes>, BoxError>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Buf + Send,
    B::Error: Into<BoxError>,
{
    let uri = request.uri().clone();
    let https = uri.scheme_str() == Some("https");
    let (host, port) = address(&uri)?;
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|err| format!("connecting to {host}:{port}: {err}"))?;
    let _ = tcp.set_nodelay(true);
    if !https {
        return send_on(tcp, request, max_answer, timeout).await;
    }
    let Some(tls) = tls else {
        return Err(format!("`{uri}` is https and no TLS was set up for it").into());
    };
    #[cfg(feature = "tls")]
    {
        let stream = tls
            .connect(host, tcp)
            .await
            .map_err(|err| format!("TLS with {host}: {err}"))?;
        send_on(stream, request, max_answer, timeout).await
    }
    #[cfg(not(feature = "tls"))]
    match *tls {}
}

/// The host and port `uri` names, the port by its scheme when it has none.
pub(crate) fn address(uri: &Uri) -> Result<(&str, u16), BoxError> {
    let host = uri.host().ok_or_else(|| format!("`{uri}` has no host"))?;
    // An IPv6 address is written in brackets in a URL, and without them everywhere else.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let https = uri.scheme_str() == Some("https");
    Ok((host, uri.port_u16().unwrap_or(if https { 443 } else { 80 })))
}

/// The exchange on `io`: the request in origin form with its `Host`, the answer read whole.
async fn send_on<S, B>(
    io: S,
    request: Request<B>,
    max_answer: usize,
    timeout: Duration,
) -> Result<Response<Bytes>, BoxError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Buf + Send,
    B::Error: Into<BoxError>,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    // It ends once the answer is read and the sender dropped; bounded, for a server that stalls.
    tokio::spawn(tokio::time::timeout(timeout, connection));
    let (mut head, body) = request.into_parts();
    if let Some(authority) = head.uri.authority() {
        if !head.headers.contains_key(HOST) {
            let host = HeaderValue::from_str(authority.as_str())?;
            head.headers.insert(HOST, host);
        }
    }
    let target = head
        .uri
        .path_and_query()
        .map_or("/", |target| target.as_str());
    head.uri = target.parse()?;
    let response = sender.send_request(Request::from_parts(head, body)).await?;
    let (head, body) = response.into_parts();
    let body = Limited::new(body, max_answer)
        .collect()
        .await
        .map_err(|err| format!("reading the answer: {err}"))?
        .to_bytes();
    Ok(Response::from_parts(head, body))
}
