//! The pooled client's own HTTP/1.1 codec against a raw TCP server writing hand-made answers:
//! chunked bodies with extensions and trailers, close-delimited bodies, `Connection: close`,
//! interim `100 Continue`, `HEAD`, bytes after an answer, a server closing in the middle of a
//! body or while a connection sits idle, and how requests are framed on the wire.

use microkit_test_support as support;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use microkit::client::{ClientConfig, ClientError, ServiceClient};
use microkit::discovery::{MemoryRegistry, Registration};
use microkit::http::{Method, StatusCode};
use microkit::{Body, BoxError, Request, Response};
use support::cluster::{chunked_body, eventually, register};
use support::PATIENCE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does after writing an answer.
#[derive(Clone, Copy)]
enum Then {
    /// Waits for the next request on the same connection.
    KeepOpen,
    /// Closes the connection at once.
    Close,
    /// Closes the connection after a pause (a keep-alive timeout firing while the client
    /// holds the connection idle).
    CloseAfter(Duration),
}

/// A loopback server answering each request, whatever its connection, with the next scripted
/// answer, and recording every request's bytes and every connection.
struct RawServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    accepted: Arc<AtomicUsize>,
    closed_by_client: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Script = Arc<Mutex<VecDeque<(Vec<u8>, Then)>>>;

impl RawServer {
    async fn start(answers: Vec<(&[u8], Then)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let addr = listener.local_addr().expect("the listener's address");
        let script: Script = Arc::new(Mutex::new(
            answers
                .into_iter()
                .map(|(bytes, then)| (bytes.to_vec(), then))
                .collect(),
        ));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed_by_client = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (requests, accepted, closed) =
                (requests.clone(), accepted.clone(), closed_by_client.clone());
            async move {
                let mut connections = tokio::task::JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    connections.spawn(serve(
                        stream,
                        script.clone(),
                        requests.clone(),
                        closed.clone(),
                    ));
                }
            }
        });
        Self {
            addr,
            requests,
            accepted,
            closed_by_client,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    script: Script,
    requests: Arc<Mutex<Vec<String>>>,
    closed_by_client: Arc<AtomicUsize>,
) {
    let mut received = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut received).await else {
            closed_by_client.fetch_add(1, Ordering::SeqCst);
            return;
        };
        requests
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&request).into_owned());
        let Some((answer, then)) = script.lock().unwrap().pop_front() else {
            return;
        };
        if stream.write_all(&answer).await.is_err() {
            return;
        }
        match then {
            Then::KeepOpen => {}
            Then::Close => return,
            Then::CloseAfter(pause) => {
                tokio::time::sleep(pause).await;
                return;
            }
        }
    }
}

/// One request (head and body, framed by `Content-Length` or chunked) off the front of what
/// the connection sent; `None` once the client closed it.
async fn read_request(stream: &mut TcpStream, received: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = request_end(received) {
            return Some(received.drain(..end).collect());
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(read) => received.extend_from_slice(&chunk[..read]),
        }
    }
}

fn request_end(received: &[u8]) -> Option<usize> {
    let head_end = received.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        let body_end = received[head_end..]
            .windows(5)
            .position(|w| w == b"0\r\n\r\n")?;
        return Some(head_end + body_end + 5);
    }
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().expect("a length"));
    (received.len() >= head_end + length).then_some(head_end + length)
}

/// A client of `server` (as service `svc`) that makes one attempt per call, so that what the
/// codec does is seen rather than retried away.
async fn client(server: &RawServer) -> (ServiceClient, Registration) {
    let registry = MemoryRegistry::new();
    let registration = register(&registry, "svc", server.addr).await;
    let config = ClientConfig::default().max_attempts(1).ejection(
        1_000,
        Duration::from_secs(30),
        Duration::from_secs(300),
    );
    (ServiceClient::with_config(registry, config), registration)
}

async fn get(client: &ServiceClient, method: Method, path: &str) -> Result<Response, ClientError> {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .expect("a request");
    client.send("svc", request).await
}

async fn text(response: Response) -> Result<String, String> {
    let bytes = response
        .into_body()
        .collect_limited(1 << 20)
        .await
        .map_err(|err| err.to_string())?;
    Ok(String::from_utf8(bytes.to_vec()).expect("UTF-8"))
}

const OK_2: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

#[tokio::test]
async fn a_chunked_answer_with_extensions_and_trailers_is_read_whole_and_the_connection_kept() {
    let chunked: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
        5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: 42\r\n\r\n";
    let server = RawServer::start(vec![(chunked, Then::KeepOpen), (chunked, Then::KeepOpen)]).await;
    let (client, _registry) = client(&server).await;
    for _ in 0..2 {
        let response = get(&client, Method::GET, "/chunked")
            .await
            .expect("an answer");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(response).await.unwrap(), "hello world");
    }
    assert_eq!(server.accepted(), 1, "the connection was reused");
}

#[tokio::test]
async fn the_trailers_of_a_chunked_answer_arrive_as_a_trailers_frame() {
    use http_body_util::BodyExt;
    let chunked: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
        3\r\nabc\r\n0\r\nx-checksum: 42\r\n\r\n";
    let server = RawServer::start(vec![(chunked, Then::KeepOpen)]).await;
    let (client, _registry) = client(&server).await;
    let response = get(&client, Method::GET, "/chunked")
        .await
        .expect("an answer");
    let collected = response.into_body().collect().await.expect("a body");
    assert_eq!(collected.trailers().expect("trailers")["x-checksum"], "42");
    assert_eq!(&collected.to_bytes()[..], b"abc");
}

#[tokio::test]
async fn a_close_delimited_answer_ends_with_the_connection_which_is_not_reused() {
    let server = RawServer::start(vec![
        (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", Then::Close),
        (OK_2, Then::KeepOpen),
    ])
    .await;
    let (client, _registry) = client(&server).await;
    let response = get(&client, Method::GET, "/a").await.expect("an answer");
    assert_eq!(text(response).await.unwrap(), "until the end");
    let response = get(&client, Method::GET, "/b").await.expect("an answer");
    assert_eq!(text(response).await.unwrap(), "ok");
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn connection_close_or_http_1_0_answers_are_not_reused() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"[..],
        b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok",
    ] {
        // The server would keep the connection: the client must not.
        let server = RawServer::start(vec![(answer, Then::KeepOpen), (OK_2, Then::KeepOpen)]).await;
        let (client, _registry) = client(&server).await;
        for _ in 0..2 {
            let response = get(&client, Method::GET, "/").await.expect("an answer");
            assert_eq!(text(response).await.unwrap(), "ok");
        }
        assert_eq!(server.accepted(), 2, "{}", String::from_utf8_lossy(answer));
        eventually("the first connection closed by the client", || {
            server.closed_by_client.load(Ordering::SeqCst) == 1
        })
        .await;
    }
    // HTTP/1.0 with keep-alive asked for is reused.
    let kept: &[u8] = b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok";
    let server = RawServer::start(vec![(kept, Then::KeepOpen), (kept, Then::KeepOpen)]).await;
    let (client, _registry) = client(&server).await;
    for _ in 0..2 {
        let response = get(&client, Method::GET, "/").await.expect("an answer");
        assert_eq!(text(response).await.unwrap(), "ok");
    }
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn interim_100_continue_answers_are_skipped() {
    let server = RawServer::start(vec![(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\nmade",
        Then::KeepOpen,
    )])
    .await;
    let (client, _registry) = client(&server).await;
    let request = Request::post("/things")
        .body(Body::from("thing"))
        .expect("a request");
    let response = client.send("svc", request).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(text(response).await.unwrap(), "made");
}

#[tokio::test]
async fn head_and_204_answers_have_no_body_whatever_their_length_says() {
    let server = RawServer::start(vec![
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n",
            Then::KeepOpen,
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", Then::KeepOpen),
        (OK_2, Then::KeepOpen),
    ])
    .await;
    let (client, _registry) = client(&server).await;
    let response = get(&client, Method::HEAD, "/").await.expect("an answer");
    assert_eq!(response.headers()["content-length"], "1000");
    assert_eq!(text(response).await.unwrap(), "");
    let response = get(&client, Method::DELETE, "/x").await.expect("an answer");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(text(response).await.unwrap(), "");
    let response = get(&client, Method::GET, "/").await.expect("an answer");
    assert_eq!(text(response).await.unwrap(), "ok");
    assert_eq!(server.accepted(), 1, "one connection carried all three");
}

#[tokio::test]
async fn bytes_after_an_answer_are_never_taken_for_the_next_one() {
    // A broken server sends a second answer nobody asked for.
    let doubled: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirstHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstale";
    let server = RawServer::start(vec![(doubled, Then::KeepOpen), (OK_2, Then::KeepOpen)]).await;
    let (client, _registry) = client(&server).await;
    let response = get(&client, Method::GET, "/a").await.expect("an answer");
    assert_eq!(text(response).await.unwrap(), "first");
    let response = get(&client, Method::GET, "/b").await.expect("an answer");
    assert_eq!(text(response).await.unwrap(), "ok");
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn a_server_closing_in_the_middle_of_a_body_is_an_error() {
    let server = RawServer::start(vec![
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial",
            Then::Close,
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
            Then::Close,
        ),
    ])
    .await;
    let (client, _registry) = client(&server).await;
    for _ in 0..2 {
        let response = get(&client, Method::GET, "/")
            .await
            .expect("the head arrives");
        let err = tokio::time::timeout(PATIENCE, text(response))
            .await
            .expect("an end, not a hang")
            .unwrap_err();
        assert!(err.contains("before the end of the answer's body"), "{err}");
    }
}

#[tokio::test]
async fn a_server_closing_before_answering_or_answering_garbage_is_an_error() {
    let server = RawServer::start(vec![
        (b"", Then::Close),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            Then::KeepOpen,
        ),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", Then::KeepOpen),
    ])
    .await;
    let (client, _registry) = client(&server).await;
    for expected in [
        "the upstream closed the connection before answering",
        "malformed response head: invalid Content-Length",
        "malformed response head",
    ] {
        let err = get(&client, Method::GET, "/").await.unwrap_err();
        let ClientError::Transport { source, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(source.to_string().contains(expected), "{source}");
    }
}

#[tokio::test]
async fn a_pooled_connection_the_server_closed_while_idle_is_not_used_and_the_post_goes_out_once() {
    let server = RawServer::start(vec![
        (OK_2, Then::CloseAfter(Duration::from_millis(50))),
        (OK_2, Then::KeepOpen),
    ])
    .await;
    let (client, _registry) = client(&server).await;
    let post = || {
        Request::post("/orders")
            .body(Body::from("order"))
            .expect("a request")
    };
    let response = client.send("svc", post()).await.expect("the first answer");
    assert_eq!(text(response).await.unwrap(), "ok");
    // The server closes the idle connection: the client finds out before writing on it (the
    // probe of a connection idle for a while, or the read before writing), and connects again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = client
        .send("svc", post())
        .await
        .expect("sent on a new connection, not failed on the closed one");
    assert_eq!(text(response).await.unwrap(), "ok");
    assert_eq!(server.accepted(), 2);
    let posts = server.requests();
    assert_eq!(
        posts.len(),
        2,
        "each POST reached the server once: {posts:?}"
    );
}

#[tokio::test]
async fn request_bodies_are_framed_by_their_length_or_chunked() {
    let server = RawServer::start(vec![
        (OK_2, Then::KeepOpen),
        (OK_2, Then::KeepOpen),
        (OK_2, Then::KeepOpen),
    ])
    .await;
    let (client, _registry) = client(&server).await;

    let request = Request::post("/known")
        .header("x-custom", "1")
        .body(Body::from("twelve bytes"))
        .expect("a request");
    assert_eq!(
        client.send("svc", request).await.unwrap().status(),
        StatusCode::OK
    );

    let (chunks, body) = chunked_body();
    let request = Request::put("/streamed")
        .body(Body::new(body))
        .expect("a request");
    let feed = tokio::spawn(async move {
        chunks.send(Bytes::from_static(b"first ")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        chunks.send(Bytes::from(vec![b'x'; 5000])).await.unwrap();
    });
    assert_eq!(
        client.send("svc", request).await.unwrap().status(),
        StatusCode::OK
    );
    feed.await.unwrap();

    assert_eq!(
        get(&client, Method::GET, "/empty").await.unwrap().status(),
        StatusCode::OK
    );

    let requests = server.requests();
    let known = &requests[0];
    assert!(known.starts_with("POST /known HTTP/1.1\r\n"), "{known}");
    assert!(known.contains("\r\nx-custom: 1\r\n"), "{known}");
    assert!(known.contains("\r\ncontent-length: 12\r\n"), "{known}");
    assert!(known.ends_with("\r\n\r\ntwelve bytes"), "{known}");
    let streamed = &requests[1];
    assert!(
        streamed.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{streamed}"
    );
    let expected_body = format!("6\r\nfirst \r\n1388\r\n{}\r\n0\r\n\r\n", "x".repeat(5000));
    assert!(
        streamed.ends_with(&format!("\r\n\r\n{expected_body}")),
        "{streamed}"
    );
    let empty = &requests[2];
    assert!(empty.starts_with("GET /empty HTTP/1.1\r\n"), "{empty}");
    assert!(!empty.contains("content-length") && !empty.contains("transfer-encoding"));
    assert_eq!(server.accepted(), 1);
}

/// A request body that gives one chunk, then fails.
struct FailingBody {
    sent: bool,
}

impl hyper::body::Body for FailingBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.sent {
            return Poll::Ready(Some(Err("the caller's body broke".into())));
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"half")))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(100)
    }
}

#[tokio::test]
async fn a_request_body_failing_midway_fails_the_exchange_and_closes_the_connection() {
    let server = RawServer::start(vec![(OK_2, Then::KeepOpen)]).await;
    let (client, _registry) = client(&server).await;
    let request = Request::post("/upload")
        .body(Body::new(FailingBody { sent: false }))
        .expect("a request");
    let err = client.send("svc", request).await.unwrap_err();
    let ClientError::Transport { source, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        source.to_string().contains("the caller's body broke"),
        "{source}"
    );
    eventually("the connection closed", || {
        server.closed_by_client.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(
        server.requests().is_empty(),
        "the server never saw a whole request"
    );
}
