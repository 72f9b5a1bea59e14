//! Helpers shared by the integration tests: a server on a free loopback port that the test
//! stops, a small HTTP/1.1 and h2c client on hyper's connection API, and raw TCP exchanges
//! for requests that a well-behaved client would never send.
//!
//! Every wait here is bounded by [`PATIENCE`], so a regression fails a test instead of
//! hanging the suite.
//!
//! A crate of its own (not a `mod support;` in each test file) so that it is compiled once
//! for every integration-test binary. A test file starts with
//! `use microkit_test_support as support;`.

pub mod browser;
pub mod certs;
pub mod cluster;
pub mod database;
pub mod etcd;
pub mod postgres;
pub mod shop;
pub mod stores;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use microkit::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, Version};
use microkit::{Router, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The longest any helper waits for the server before failing the test.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A server started by [`spawn`]; dropping it triggers its shutdown and aborts its task.
pub struct TestServer {
    /// Where it listens (127.0.0.1 and a port the system chose).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<io::Result<()>>>,
}

impl TestServer {
    /// Fires the graceful shutdown signal (once; later calls do nothing).
    pub fn trigger_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Waits up to `limit` for the server future to return; `true` when it did, `false` when
    /// it is still running. Panics when it returned an error or panicked.
    pub async fn finished_within(&mut self, limit: Duration) -> bool {
        let handle = self.handle.as_mut().expect("the server was already joined");
        match tokio::time::timeout(limit, handle).await {
            Ok(joined) => {
                self.handle = None;
                joined
                    .expect("the server task panicked")
                    .expect("the server returned an error");
                true
            }
            Err(_) => false,
        }
    }

    /// Shuts the server down gracefully and checks that it returns in time.
    pub async fn stop(mut self) {
        self.trigger_shutdown();
        assert!(
            self.finished_within(PATIENCE).await,
            "the server did not return after its shutdown signal"
        );
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.trigger_shutdown();
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

/// Serves `router` with `config` on 127.0.0.1, on a port the system picks.
pub async fn spawn(router: Router, config: ServerConfig) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let addr = listener.local_addr().expect("the listener's address");
    let (shutdown, signal) = oneshot::channel::<()>();
    let server = microkit::serve(listener, router)
        .config(config)
        .with_graceful_shutdown(async move {
            let _ = signal.await;
        });
    let handle = tokio::spawn(async move { server.await });
    TestServer {
        addr,
        shutdown: Some(shutdown),
        handle: Some(handle),
    }
}

/// Binds `service` and runs it on a task until the sender returned is dropped (or sent on);
/// returns the address it listens on.
pub async fn run_service(
    service: microkit::service::Microservice,
) -> (SocketAddr, oneshot::Sender<()>) {
    let bound = service.bind().await.expect("binding the service");
    let addr = bound.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(bound.run(async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// A response, read to its end.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: StatusCode,
    /// The HTTP version the response came in.
    pub version: Version,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Reply {
    /// A header as text; `""` when missing.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("a textual header"))
            .unwrap_or_default()
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("a UTF-8 body")
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A request for `path` (origin form) with an in-memory body.
pub fn request(method: Method, path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "localhost")
        .body(Full::new(body.into()))
        .expect("a valid request")
}

/// One HTTP/1.1 client connection, driven by a task of its own.
pub struct Http1Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    local_addr: SocketAddr,
    driver: JoinHandle<()>,
}

impl Http1Conn {
    /// Opens a connection to `addr`.
    pub async fn open(addr: SocketAddr) -> Self {
        let stream = connect(addr).await;
        let local_addr = stream.local_addr().expect("the client's address");
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .expect("an HTTP/1.1 handshake");
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Self {
            sender,
            local_addr,
            driver,
        }
    }

    /// The client side's address of the connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Sends one request on this connection and reads the whole response.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<Reply, String> {
        let exchange = async {
            self.sender.ready().await.map_err(|e| e.to_string())?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            collect(response).await
        };
        tokio::time::timeout(PATIENCE, exchange)
            .await
            .map_err(|_| "no response in time".to_owned())?
    }

    /// Closes the connection (dropping it does the same).
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for Http1Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

async fn collect(response: hyper::Response<hyper::body::Incoming>) -> Result<Reply, String> {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    })
}

/// Sends `request` over a new HTTP/1.1 connection; an error when the exchange fails.
pub async fn try_send(addr: SocketAddr, request: Request<Full<Bytes>>) -> Result<Reply, String> {
    Http1Conn::open(addr).await.send(request).await
}

/// Sends `request` over a new HTTP/1.1 connection.
pub async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> Reply {
    try_send(addr, request)
        .await
        .unwrap_or_else(|err| panic!("the request to {addr} failed: {err}"))
}

/// `GET path` over a new HTTP/1.1 connection.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, request(Method::GET, path, Bytes::new())).await
}

/// Sends `request` over a new HTTP/2 connection with prior knowledge (h2c, no upgrade).
pub async fn send_h2(addr: SocketAddr, request: Request<Full<Bytes>>) -> Reply {
    let stream = connect(addr).await;
    let (mut sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("an HTTP/2 handshake");
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    // HTTP/2 carries the scheme and authority as pseudo-headers: give the URI both.
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://{addr}{path}")
        .parse::<Uri>()
        .expect("an absolute URI");
    parts.headers.remove(header::HOST);
    let exchange = async {
        let response = sender
            .send_request(Request::from_parts(parts, body))
            .await
            .map_err(|e| e.to_string())?;
        collect(response).await
    };
    let reply = tokio::time::timeout(PATIENCE, exchange)
        .await
        .expect("no HTTP/2 response in time")
        .expect("the HTTP/2 request failed");
    driver.abort();
    reply
}

/// Connects to `addr`.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    tokio::time::timeout(PATIENCE, TcpStream::connect(addr))
        .await
        .expect("connecting in time")
        .expect("connecting to the test server")
}

/// A response read off the wire by hand.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code from the status line.
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body: `Content-Length` bytes, or everything up to the close.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header's value; `None` when missing.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a response head and, when `Content-Length` says how long the body is, the body.
/// `None` until enough bytes are there; with `at_eof`, whatever follows the head is the body.
pub fn parse_response(bytes: &[u8], at_eof: bool) -> Option<RawResponse> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).expect("a textual response head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a malformed status line: {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &bytes[end + 4..];
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let body = match length {
        Some(length) if rest.len() >= length => rest[..length].to_vec(),
        _ if at_eof => rest.to_vec(),
        _ => return None,
    };
    Some(RawResponse {
        status,
        headers,
        body,
    })
}

/// Writes `request` (in the background, ignoring write errors: the server may answer and
/// close before reading it all) and reads one response.
pub async fn raw_exchange(addr: SocketAddr, request: Vec<u8>) -> RawResponse {
    let (mut reader, mut writer) = connect(addr).await.into_split();
    // The task hands the write half back rather than dropping it: a half-closed connection
    // may be closed by the server before it answers.
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        writer
    });
    let reading = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(response) = parse_response(&buf, false) {
                return response;
            }
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    return parse_response(&buf, true).unwrap_or_else(|| {
                        panic!(
                            "the connection closed without a response; got {:?}",
                            String::from_utf8_lossy(&buf)
                        )
                    })
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let response = tokio::time::timeout(PATIENCE, reading)
        .await
        .expect("a response in time");
    writing.abort();
    response
}

/// Reads from `stream` until the peer closes it (EOF or a reset); `None` when it is still open
/// after `limit`. Returns the bytes read.
pub async fn read_until_closed(
    stream: &mut (impl AsyncReadExt + Unpin),
    limit: Duration,
) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let reading = async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(limit, reading).await.ok()?;
    Some(buf)
}

/// A header value from text.
pub fn value(text: &'static str) -> HeaderValue {
    HeaderValue::from_static(text)
}
