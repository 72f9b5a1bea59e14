//! The contract of `microkit::serve`, checked over real loopback connections: body, header and
//! connection limits, timeouts, HTTP/2 (h2c), `HEAD`, the client address, panics and graceful
//! shutdown.

use microkit_test_support as support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use microkit::extract::{Extension, MatchedPath, Path, RemoteAddr};
use microkit::http::{Method, StatusCode, Version};
use microkit::router::{get, post};
use microkit::{Json, Router, ServerConfig};
use support::{
    connect, get as get_path, raw_exchange, read_until_closed, request, send, send_h2, spawn,
    Http1Conn, PATIENCE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const PROBLEM_JSON: &str = "application/problem+json";

/// Limits small enough for the suite to stay fast.
fn config() -> ServerConfig {
    ServerConfig::default()
        .header_read_timeout(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(2))
        .shutdown_timeout(Duration::from_secs(2))
}

async fn echo_len(Json(value): Json<serde_json::Value>) -> String {
    value.to_string().len().to_string()
}

async fn bytes_len(body: Bytes) -> String {
    body.len().to_string()
}

fn json_app() -> Router {
    Router::new()
        .route("/json", post(echo_len))
        .route("/small", post(bytes_len).body_limit(16))
        .route("/roomy", post(bytes_len).body_limit(4096))
        .route("/bytes", post(bytes_len))
}

/// A JSON document of about `bytes` bytes.
fn json_of(bytes: usize) -> Vec<u8> {
    format!("{{\"data\":\"{}\"}}", "x".repeat(bytes)).into_bytes()
}

fn assert_problem(status: u16, content_type: Option<&str>, body: &[u8], expected: StatusCode) {
    assert_eq!(
        status,
        expected.as_u16(),
        "status; body: {}",
        String::from_utf8_lossy(body)
    );
    assert_eq!(content_type, Some(PROBLEM_JSON));
    let problem: serde_json::Value = serde_json::from_slice(body).expect("a JSON problem");
    assert_eq!(problem["status"], expected.as_u16());
}

#[tokio::test]
async fn oversized_json_body_with_content_length_is_413_problem() {
    let server = spawn(json_app(), config()).await;
    let body = json_of(2 * 1024 * 1024);
    let mut wire = format!(
        "POST /json HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    wire.extend_from_slice(&body);
    let response = raw_exchange(server.addr, wire).await;
    assert_problem(
        response.status,
        response.header("content-type"),
        &response.body,
        StatusCode::PAYLOAD_TOO_LARGE,
    );

    // Just under the 1 MiB default is accepted: the limit is the default, not something smaller.
    let body = json_of(1024 * 1024 - 64);
    let expected = body.len().to_string();
    let reply = send(
        server.addr,
        microkit::http::Request::builder()
            .method(Method::POST)
            .uri("/json")
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), expected);
    server.stop().await;
}

#[tokio::test]
async fn oversized_chunked_json_body_is_413_problem() {
    let server = spawn(json_app(), config()).await;
    let mut wire = b"POST /json HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                     Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for chunk in json_of(2 * 1024 * 1024).chunks(64 * 1024) {
        wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        wire.extend_from_slice(chunk);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let response = raw_exchange(server.addr, wire).await;
    assert_problem(
        response.status,
        response.header("content-type"),
        &response.body,
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    server.stop().await;
}

#[tokio::test]
async fn per_route_body_limit_overrides_the_server_limit() {
    let server = spawn(json_app(), config().body_limit(1024)).await;
    let post_bytes = |path: &'static str, len: usize| {
        send(server.addr, request(Method::POST, path, vec![b'a'; len]))
    };

    let reply = post_bytes("/small", 8).await;
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::OK, "8".to_owned())
    );
    let reply = post_bytes("/small", 64).await;
    assert_problem(
        reply.status.as_u16(),
        Some(reply.header("content-type")),
        &reply.body,
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    assert_eq!(reply.json()["limit"], 16);

    // The server-wide limit (1 KiB here) applies where the route sets none...
    let reply = post_bytes("/bytes", 2048).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json()["limit"], 1024);
    // ...and a route's own, larger limit wins over it.
    let reply = post_bytes("/roomy", 2048).await;
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::OK, "2048".to_owned())
    );
    server.stop().await;
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let app = Router::new().route("/", get(|| async { "ok" }));
    let server = spawn(app, config().max_header_bytes(8 * 1024)).await;
    let wire = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(16 * 1024)
    );
    let response = raw_exchange(server.addr, wire.into_bytes()).await;
    assert_eq!(response.status, 431);

    // Headers within the limit are served.
    let wire = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(4 * 1024)
    );
    let response = raw_exchange(server.addr, wire.into_bytes()).await;
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"ok"[..])
    );
    server.stop().await;
}

#[tokio::test]
async fn too_many_header_fields_get_431() {
    let app = Router::new().route("/", get(|| async { "ok" }));
    let server = spawn(app, config().max_headers(10)).await;
    let fields = |count: usize| {
        let mut wire = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
        for i in 0..count {
            wire.push_str(&format!("X-Field-{i}: {i}\r\n"));
        }
        wire.push_str("\r\n");
        wire.into_bytes()
    };
    let response = raw_exchange(server.addr, fields(30)).await;
    assert_eq!(response.status, 431);
    let response = raw_exchange(server.addr, fields(5)).await;
    assert_eq!(response.status, 200);
    server.stop().await;
}

/// Sends a request head one header line every 100 ms: never complete, always some progress.
fn trickle_head(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
) -> tokio::task::JoinHandle<tokio::net::tcp::OwnedWriteHalf> {
    tokio::spawn(async move {
        let _ = writer
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
            .await;
        for i in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer
                .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
        writer
    })
}

#[tokio::test]
async fn slow_client_is_cut_off_after_the_header_read_timeout() {
    a_trickled_head_is_cut_off(false).await;
}

#[tokio::test]
async fn a_slow_second_head_on_a_kept_alive_connection_is_cut_off_too() {
    a_trickled_head_is_cut_off(true).await;
}

/// A head that never completes closes the connection after the header read timeout, on a
/// fresh connection or after a first request was answered.
async fn a_trickled_head_is_cut_off(after_one_request: bool) {
    let app = Router::new().route("/", get(|| async { "ok" }));
    let timeout = Duration::from_millis(300);
    // A long keep-alive timeout, so only the header read timeout can close the connection.
    let config = config()
        .header_read_timeout(timeout)
        .keep_alive_timeout(Duration::from_secs(10));
    let server = spawn(app, config).await;
    let (mut reader, mut writer) = connect(server.addr).await.into_split();
    if after_one_request {
        writer
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 512];
        let n = tokio::time::timeout(PATIENCE, reader.read(&mut first))
            .await
            .expect("the first answer in time")
            .unwrap();
        assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    }
    let started = Instant::now();
    let trickle = trickle_head(writer);
    let read = read_until_closed(&mut reader, PATIENCE).await;
    let elapsed = started.elapsed();
    trickle.abort();
    let read = read.expect("the server kept a trickling client connected");
    assert!(
        elapsed >= timeout - Duration::from_millis(50),
        "cut off too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "cut off too late: {elapsed:?}"
    );
    // Whatever it sent before closing, it did not serve the request.
    assert!(
        !read.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&read)
    );
    server.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let app = Router::new().route("/", get(|| async { "ok" }));
    let timeout = Duration::from_millis(300);
    // A long header read timeout, so only the keep-alive timeout can close the connection.
    let config = config()
        .keep_alive_timeout(timeout)
        .header_read_timeout(Duration::from_secs(10));
    let server = spawn(app, config).await;
    let mut stream = connect(server.addr).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    let response = loop {
        if let Some(response) = support::parse_response(&buf, false) {
            break response;
        }
        assert!(Instant::now() < deadline, "no response in time");
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .unwrap();
        assert_ne!(n, 0, "closed before answering");
        buf.extend_from_slice(&chunk[..n]);
    };
    assert_eq!(response.status, 200);
    assert_ne!(response.header("connection"), Some("close"));

    let idle_since = Instant::now();
    let rest = read_until_closed(&mut stream, PATIENCE)
        .await
        .expect("the idle connection was never closed");
    let idle = idle_since.elapsed();
    assert!(
        rest.is_empty(),
        "unexpected bytes: {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        idle >= timeout - Duration::from_millis(100),
        "closed too early: {idle:?}"
    );
    assert!(idle < Duration::from_secs(2), "closed too late: {idle:?}");
    server.stop().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    let app = Router::new().route(
        "/version",
        get(|version: Version| async move { format!("{version:?}") }),
    );
    let server = spawn(app, config()).await;
    let reply = send_h2(server.addr, request(Method::GET, "/version", Bytes::new())).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!(reply.text(), "HTTP/2.0");

    // HTTP/1.1 on the same server still works.
    let reply = get_path(server.addr, "/version").await;
    assert_eq!(reply.version, Version::HTTP_11);
    assert_eq!(reply.text(), "HTTP/1.1");
    server.stop().await;
}

#[tokio::test]
async fn head_over_the_wire_has_the_get_length_and_no_body() {
    let app = Router::new().route("/", get(|| async { "hello, head!" }));
    let server = spawn(app, config()).await;
    let get_reply = get_path(server.addr, "/").await;
    assert_eq!(get_reply.text(), "hello, head!");
    let get_length = get_reply.header("content-length").to_owned();
    assert_eq!(get_length, "12");

    // Read a HEAD answer to the end of the connection: nothing may follow the head.
    let mut stream = connect(server.addr).await;
    stream
        .write_all(b"HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let wire = read_until_closed(&mut stream, PATIENCE)
        .await
        .expect("the connection closed after the HEAD answer");
    let response = support::parse_response(&wire, true).expect("a response head");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-length"), Some(get_length.as_str()));
    assert!(
        response.body.is_empty(),
        "HEAD sent a body: {:?}",
        response.body
    );
    server.stop().await;
}

#[tokio::test]
async fn remote_addr_is_the_clients_address() {
    let app = Router::new().route(
        "/whoami",
        get(|RemoteAddr(addr): RemoteAddr| async move { addr.to_string() }),
    );
    let server = spawn(app, config()).await;
    let mut conn = Http1Conn::open(server.addr).await;
    let reply = conn
        .send(request(Method::GET, "/whoami", Bytes::new()))
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), conn.local_addr().to_string());
    assert!(reply.text().starts_with("127.0.0.1:"));
    server.stop().await;
}

/// What a layer around the router read: the server keeps the address with the route match,
/// and a layer (which runs before routing) finds it with `RemoteAddr::of`.
#[derive(Clone)]
struct SeenByLayer(Option<RemoteAddr>);

#[tokio::test]
async fn a_layer_reads_the_clients_address_and_the_route_still_matches() {
    let app = Router::new()
        .route(
            "/user/{id}",
            get(
                |Extension(SeenByLayer(seen)): Extension<SeenByLayer>,
                 RemoteAddr(addr): RemoteAddr,
                 matched: MatchedPath,
                 Path(id): Path<u32>| async move {
                    let seen = seen.map_or("none".to_owned(), |RemoteAddr(addr)| addr.to_string());
                    format!("{seen} {addr} {} {id}", matched.as_str())
                },
            ),
        )
        .layer(tower::util::MapRequestLayer::new(
            |mut request: microkit::Request| {
                let seen = SeenByLayer(RemoteAddr::of(request.extensions()));
                request.extensions_mut().insert(seen);
                request
            },
        ));
    let server = spawn(app, config()).await;
    let mut conn = Http1Conn::open(server.addr).await;
    let reply = conn
        .send(request(Method::GET, "/user/7", Bytes::new()))
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let client = conn.local_addr().to_string();
    assert_eq!(reply.text(), format!("{client} {client} /user/{{id}} 7"));
    server.stop().await;
}

/// A route whose handler reports when it starts, then sleeps for `sleep`.
fn slow_app(sleep: Duration) -> (Router, mpsc::UnboundedReceiver<()>) {
    let (started, started_rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/slow",
        get(move || async move {
            let _ = started.send(());
            tokio::time::sleep(sleep).await;
            "done"
        }),
    );
    (app, started_rx)
}

/// Sends `GET /finishing` and closes the sending side at once, as a client that only
/// reads from then on; returns what the server wrote before closing, and whether the handler
/// ran to its end.
async fn half_closing_client(config: ServerConfig) -> (String, bool) {
    let finished = Arc::new(AtomicBool::new(false));
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let flag = finished.clone();
    let app = Router::new().route(
        "/finishing",
        get(move || {
            let (flag, started_tx) = (flag.clone(), started_tx.clone());
            async move {
                let _ = started_tx.send(());
                tokio::time::sleep(Duration::from_millis(200)).await;
                flag.store(true, Ordering::SeqCst);
                "done"
            }
        }),
    );
    let server = spawn(app, config).await;
    let mut stream = support::connect(server.addr).await;
    stream
        .write_all(b"GET /finishing HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(PATIENCE, started.recv())
        .await
        .expect("the handler started in time");
    stream.shutdown().await.unwrap();
    let answer = support::read_until_closed(&mut stream, PATIENCE)
        .await
        .expect("the server closes the connection");
    // Long enough for a handler that was not stopped to have finished.
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.stop().await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        finished.load(Ordering::SeqCst),
    )
}

#[tokio::test]
async fn a_client_that_closes_its_side_stops_its_request_unless_aborts_are_ignored() {
    let (answer, finished) = half_closing_client(config()).await;
    assert_eq!(answer, "", "answered a client that left");
    assert!(!finished, "the handler ran on after its client left");

    let (answer, finished) = half_closing_client(config().ignore_client_abort(true)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("done"), "{answer}");
    assert!(finished);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests_and_refuses_new_connections() {
    let (app, mut started) = slow_app(Duration::from_millis(300));
    let mut server = spawn(app, config()).await;
    let addr = server.addr;
    let in_flight =
        tokio::spawn(async move { send(addr, request(Method::GET, "/slow", Bytes::new())).await });
    tokio::time::timeout(PATIENCE, started.recv())
        .await
        .expect("the handler started in time");

    server.trigger_shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !in_flight.is_finished(),
        "the request should still be running"
    );
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(
        refused.is_err(),
        "a new connection was accepted during shutdown"
    );

    let reply = tokio::time::timeout(PATIENCE, in_flight)
        .await
        .expect("the in-flight request finished in time")
        .expect("the client task");
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::OK, "done".to_owned())
    );
    assert!(
        server.finished_within(PATIENCE).await,
        "the server did not return"
    );
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_timeout_bounds_a_handler_that_runs_too_long() {
    let (app, mut started) = slow_app(Duration::from_secs(30));
    let shutdown_timeout = Duration::from_millis(200);
    let mut server = spawn(app, config().shutdown_timeout(shutdown_timeout)).await;
    let addr = server.addr;
    let in_flight = tokio::spawn(async move {
        support::try_send(addr, request(Method::GET, "/slow", Bytes::new())).await
    });
    tokio::time::timeout(PATIENCE, started.recv())
        .await
        .expect("the handler started in time");

    let triggered = Instant::now();
    server.trigger_shutdown();
    assert!(
        server.finished_within(Duration::from_secs(2)).await,
        "the server waited past its shutdown timeout"
    );
    assert!(triggered.elapsed() >= shutdown_timeout - Duration::from_millis(20));
    // The connection was closed under the request: the client gets an error, not an answer.
    let outcome = tokio::time::timeout(PATIENCE, in_flight)
        .await
        .expect("the client saw the connection close")
        .expect("the client task");
    assert!(outcome.is_err(), "unexpected answer: {outcome:?}");
}

#[tokio::test]
async fn max_connections_holds_back_a_second_connection() {
    let app = Router::new().route("/", get(|| async { "ok" }));
    let config = config()
        .max_connections(1)
        .keep_alive_timeout(Duration::from_secs(10))
        .header_read_timeout(Duration::from_secs(10));
    let server = spawn(app, config).await;

    let mut first = Http1Conn::open(server.addr).await;
    let reply = first
        .send(request(Method::GET, "/", Bytes::new()))
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);

    let addr = server.addr;
    let mut second = tokio::spawn(async move { get_path(addr, "/").await });
    assert!(
        tokio::time::timeout(Duration::from_millis(400), &mut second)
            .await
            .is_err(),
        "a second connection was served while the first was open"
    );

    first.close();
    let reply = tokio::time::timeout(PATIENCE, second)
        .await
        .expect("the second connection was served once the first closed")
        .expect("the client task");
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::OK, "ok".to_owned())
    );
    server.stop().await;
}

async fn boom() -> &'static str {
    panic!("the handler blew up")
}

#[tokio::test]
async fn panicking_handler_is_a_500_problem_and_the_server_keeps_serving() {
    let app = Router::new()
        .route("/panic", get(boom))
        .route("/ok", get(|| async { "still here" }));
    let server = spawn(app, config()).await;

    let mut conn = Http1Conn::open(server.addr).await;
    let reply = conn
        .send(request(Method::GET, "/panic", Bytes::new()))
        .await
        .unwrap();
    assert_problem(
        reply.status.as_u16(),
        Some(reply.header("content-type")),
        &reply.body,
        StatusCode::INTERNAL_SERVER_ERROR,
    );
    assert!(
        !reply.text().contains("blew up"),
        "the panic message leaked"
    );

    // The same connection and a new one are both still served.
    let reply = conn
        .send(request(Method::GET, "/ok", Bytes::new()))
        .await
        .unwrap();
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::OK, "still here".to_owned())
    );
    let reply = get_path(server.addr, "/ok").await;
    assert_eq!(reply.status, StatusCode::OK);
    server.stop().await;
}

/// Body timeouts short enough for the suite: 300 ms of silence, or under 240 B/s after 500 ms.
fn paced_config() -> ServerConfig {
    config()
        .body_read_timeout(Duration::from_millis(300))
        .min_body_rate(240, Duration::from_millis(500))
}

/// Writes `head` and `body`, keeps the connection open, and reads until the server closes it.
async fn cut_off(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (String, Duration) {
    let mut stream = connect(addr).await;
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    // Longer than the default 5 s grace period.
    let answer = read_until_closed(&mut stream, 2 * PATIENCE)
        .await
        .expect("the server closes the connection");
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

fn assert_408(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(PROBLEM_JSON), "{answer}");
    assert!(answer.contains(r#""status":408"#), "{answer}");
}

#[tokio::test]
async fn a_body_that_never_arrives_is_408_and_the_connection_closes() {
    let server = spawn(json_app(), paced_config()).await;
    let (answer, took) = cut_off(
        server.addr,
        "POST /bytes HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
        b"",
    )
    .await;
    assert_408(&answer);
    assert!(took < Duration::from_secs(3), "{took:?}");
    // The same for a JSON handler, and with the default limits (cut after the 5 s grace).
    let server = spawn(json_app(), config()).await;
    let (answer, took) = cut_off(
        server.addr,
        "POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 10\r\n\r\n",
        b"{",
    )
    .await;
    assert_408(&answer);
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[tokio::test]
async fn a_body_that_stops_after_a_burst_is_cut_after_the_gap() {
    let server = spawn(json_app(), paced_config()).await;
    let started = Instant::now();
    let (answer, _) = cut_off(
        server.addr,
        "POST /bytes HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n",
        &[b'a'; 100_000],
    )
    .await;
    assert_408(&answer);
    // 100 KB earned minutes under the rate rule: only the gap can have cut it.
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_trickling_body_is_cut_by_the_minimum_rate() {
    let server = spawn(json_app(), paced_config()).await;
    let (mut reader, mut writer) = connect(server.addr).await.into_split();
    writer
        .write_all(b"POST /bytes HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let reading = tokio::spawn(async move { read_until_closed(&mut reader, PATIENCE).await });
    // One byte every 100 ms: never a 300 ms gap, but 10 B/s.
    while !reading.is_finished() && started.elapsed() < Duration::from_secs(3) {
        let _ = writer.write_all(b"a").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = reading
        .await
        .unwrap()
        .expect("the server closes the connection");
    assert_408(&String::from_utf8_lossy(&answer));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_silent_http2_stream_is_408() {
    use http_body_util::BodyExt;
    let server = spawn(json_app(), paced_config()).await;
    let stream = connect(server.addr).await;
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let (_chunks, body) = support::cluster::chunked_body();
    let request = microkit::http::Request::post(format!("http://{}/bytes", server.addr))
        .body(body)
        .unwrap();
    let response = tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("an answer in time")
        .expect("an HTTP/2 response");
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains(r#""status":408"#));
    // The server goes on serving.
    let reply = send_h2(server.addr, request_of_json()).await;
    assert_eq!(reply.status, StatusCode::OK);
}

fn request_of_json() -> microkit::http::Request<http_body_util::Full<Bytes>> {
    let mut request = request(Method::POST, "/json", Bytes::from_static(b"{}"));
    request
        .headers_mut()
        .insert("content-type", support::value("application/json"));
    request
}

#[tokio::test]
async fn an_expectation_other_than_100_continue_is_417() {
    let server = spawn(json_app(), config()).await;
    let reply = raw_exchange(
        server.addr,
        b"POST /bytes HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\nhi"
            .to_vec(),
    )
    .await;
    assert_problem(
        reply.status,
        reply.header("content-type"),
        &reply.body,
        StatusCode::EXPECTATION_FAILED,
    );
}
