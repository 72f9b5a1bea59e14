//! The gateway's contract, over real loopback servers: requests forwarded unchanged (bodies
//! streamed both ways), hop-by-hop headers stripped and forwarding headers added, request ids
//! and deadlines passed on, failures mapped to 502/503/504 problems, internal routes refused
//! at the edge and by the services' own network allow-lists, failover, and `/health`.

use microkit_test_support as support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use microkit::client::{ClientConfig, ServiceClient};
use microkit::discovery::MemoryRegistry;
use microkit::extract::RemoteAddr;
use microkit::gateway::{AllowNetworksLayer, Gateway, Network};
use microkit::http::{header, Method, Request as HttpRequest, StatusCode};
use microkit::router::{any, get};
use microkit::{Body, Json, Request, Response, Router, ServerConfig};
use serde_json::{json, Value};
use support::cluster::{
    chunked_body, pooled_client, refusing_addr, register, start_load, ChunkedBody,
};
use support::{connect, get as get_path, raw_exchange, request, send, spawn, TestServer, PATIENCE};
use tokio::sync::{oneshot, Notify};

const PROBLEM_JSON: &str = "application/problem+json";

fn server_config() -> ServerConfig {
    ServerConfig::default().shutdown_timeout(Duration::from_secs(2))
}

fn client_config() -> ClientConfig {
    ClientConfig::default().backoff(Duration::from_millis(1), Duration::from_millis(5))
}

/// What the backend saw of a request.
fn inspection(request: &Request, body: &Bytes) -> Value {
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("?").to_owned()))
        .collect();
    json!({
        "method": request.method().as_str(),
        "uri": request.uri().to_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(body),
    })
}

/// Hooks a test uses to watch bodies stream through the gateway.
#[derive(Default)]
struct StreamHooks {
    /// Fired when the first chunk of an upload reaches the backend.
    first_chunk_arrived: Mutex<Option<oneshot::Sender<()>>>,
    /// Lets the backend send the rest of a download.
    release_download: Notify,
}

/// The backend behind the gateway's `/api/` routes.
fn backend(hooks: Arc<StreamHooks>) -> Router {
    let upload_hooks = hooks.clone();
    Router::new()
        .route(
            "/api/inspect/{*rest}",
            any(|request: Request| async move {
                let (parts, body) = request.into_parts();
                let body = body.collect_limited(1 << 20).await.unwrap_or_default();
                Json(inspection(
                    &Request::from_parts(parts, Body::empty()),
                    &body,
                ))
            }),
        )
        // The body goes straight back, frame by frame.
        .route(
            "/api/echo",
            any(|request: Request| async move { Response::new(request.into_body()) }),
        )
        .route(
            "/api/upload",
            any(move |request: Request| {
                let hooks = upload_hooks.clone();
                async move {
                    let mut body = request.into_body();
                    let mut total = 0;
                    while let Some(frame) = body.frame().await {
                        let frame = frame.expect("an upload frame");
                        total += frame.data_ref().map_or(0, Bytes::len);
                        if let Some(arrived) = hooks.first_chunk_arrived.lock().unwrap().take() {
                            let _ = arrived.send(());
                        }
                    }
                    total.to_string()
                }
            }),
        )
        .route(
            "/api/download",
            get(move || {
                let hooks = hooks.clone();
                async move {
                    let (chunks, body) = chunked_body();
                    tokio::spawn(async move {
                        let _ = chunks.send(Bytes::from(vec![b'a'; 32 * 1024])).await;
                        hooks.release_download.notified().await;
                        let _ = chunks.send(Bytes::from(vec![b'b'; 32 * 1024])).await;
                    });
                    Response::new(Body::new(body))
                }
            }),
        )
        .route(
            "/api/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "too late"
            }),
        )
        .route("/health", get(|| async { "ok" }))
}

/// A gateway on a free port: `/api/…` to `backend`, `/ghost/…` to a service never registered,
/// `/dead/…` to `dead`, and `/internal/…` kept for the services.
async fn gateway(registry: &MemoryRegistry, config: ClientConfig) -> TestServer {
    let client = ServiceClient::with_config(registry.clone(), config);
    let router = Gateway::new(client)
        .route("/api/{*rest}", "backend")
        .route("/ghost/{*rest}", "ghost")
        .route("/dead/{*rest}", "dead")
        .internal("/internal/{*rest}")
        .into_router();
    spawn(router, server_config()).await
}

/// A registry with one backend instance, and a gateway in front of it.
struct Edge {
    gateway: TestServer,
    _backend: TestServer,
    _registration: microkit::discovery::Registration,
    hooks: Arc<StreamHooks>,
}

async fn edge(config: ClientConfig) -> Edge {
    let hooks = Arc::new(StreamHooks::default());
    let backend = spawn(backend(hooks.clone()), server_config()).await;
    let registry = MemoryRegistry::new();
    let registration = register(&registry, "backend", backend.addr).await;
    Edge {
        gateway: gateway(&registry, config).await,
        _backend: backend,
        _registration: registration,
        hooks,
    }
}

fn assert_problem(reply: &support::Reply, status: StatusCode) {
    assert_eq!(
        reply.status,
        status,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), PROBLEM_JSON);
    assert_eq!(reply.json()["status"], status.as_u16());
}

#[tokio::test]
async fn requests_are_forwarded_unchanged() {
    let edge = edge(client_config()).await;
    for method in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ] {
        let body = format!("a {method} body");
        let reply = send(
            edge.gateway.addr,
            request(method.clone(), "/api/inspect/a/b?x=1&y=two", body.clone()),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{method}");
        let seen = reply.json();
        assert_eq!(seen["method"], method.as_str());
        assert_eq!(seen["uri"], "/api/inspect/a/b?x=1&y=two");
        assert_eq!(seen["body"], body);
    }
}

#[tokio::test]
async fn a_large_body_is_forwarded_intact_both_ways() {
    let edge = edge(client_config()).await;
    let payload: Bytes = (0..1024 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let reply = send(
        edge.gateway.addr,
        request(Method::PUT, "/api/echo", payload.clone()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.len(), payload.len());
    assert!(reply.body == payload, "the body came back changed");
}

/// An HTTP/1.1 connection whose request bodies the test feeds chunk by chunk.
async fn streaming_connection(addr: SocketAddr) -> http1::SendRequest<ChunkedBody> {
    let (sender, connection) = http1::handshake(TokioIo::new(connect(addr).await))
        .await
        .expect("an HTTP/1.1 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
}

#[tokio::test]
async fn bodies_stream_through_without_being_buffered() {
    let edge = edge(client_config()).await;

    // Upload: the backend sees the first chunk while the rest has not been sent yet.
    let (arrived, first_chunk_arrived) = oneshot::channel();
    *edge.hooks.first_chunk_arrived.lock().unwrap() = Some(arrived);
    let mut sender = streaming_connection(edge.gateway.addr).await;
    let (chunks, body) = chunked_body();
    let upload = HttpRequest::post("/api/upload")
        .header(header::HOST, "edge")
        .body(body)
        .expect("a request");
    let answer = tokio::spawn(sender.send_request(upload));
    chunks
        .send(Bytes::from(vec![b'x'; 48 * 1024]))
        .await
        .expect("the first chunk");
    tokio::time::timeout(PATIENCE, first_chunk_arrived)
        .await
        .expect("the first chunk reached the backend before the upload ended")
        .expect("the hook fired");
    chunks
        .send(Bytes::from(vec![b'y'; 48 * 1024]))
        .await
        .expect("the second chunk");
    drop(chunks);
    let response = tokio::time::timeout(PATIENCE, answer)
        .await
        .expect("an answer in time")
        .expect("the request task")
        .expect("a response");
    let total = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    assert_eq!(&total[..], b"98304");

    // Download: the client gets the first chunk while the backend still holds the rest.
    let reply = pooled_client()
        .get(
            format!("http://{}/api/download", edge.gateway.addr)
                .parse()
                .expect("a URI"),
        )
        .await
        .expect("a response");
    assert_eq!(reply.status(), StatusCode::OK);
    let mut body = reply.into_body();
    let mut received = 0;
    while received < 32 * 1024 {
        let frame = tokio::time::timeout(PATIENCE, body.frame())
            .await
            .expect("the first chunk arrived before the backend finished")
            .expect("a frame")
            .expect("a good frame");
        received += frame.data_ref().map_or(0, Bytes::len);
    }
    edge.hooks.release_download.notify_one();
    let rest = body.collect().await.expect("the rest").to_bytes();
    assert_eq!(received + rest.len(), 64 * 1024);
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_and_forwarding_headers_added() {
    let edge = edge(client_config()).await;
    let reply = raw_exchange(
        edge.gateway.addr,
        b"GET /api/inspect/headers HTTP/1.1\r\nHost: shop.example\r\nConnection: x-foo\r\n\
          x-foo: secret\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic Zm9v\r\n\
          x-kept: yes\r\n\r\n"
            .to_vec(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen: Value = serde_json::from_slice(&reply.body).expect("JSON");
    let headers = &seen["headers"];
    for gone in ["x-foo", "keep-alive", "proxy-authorization"] {
        assert!(
            headers.get(gone).is_none(),
            "{gone} reached the backend: {headers}"
        );
    }
    assert_ne!(headers["connection"], "x-foo");
    assert_eq!(headers["x-kept"], "yes");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "shop.example");
    let forwarded = headers["forwarded"].as_str().expect("a Forwarded header");
    assert!(forwarded.starts_with("for=\"127.0.0.1:"), "{forwarded}");
    assert!(forwarded.contains("proto=http"), "{forwarded}");
    assert!(forwarded.contains("host=\"shop.example\""), "{forwarded}");
}

#[tokio::test]
async fn the_request_id_and_the_deadline_travel_to_the_backend() {
    let edge = edge(client_config().deadline(Duration::from_secs(5))).await;

    let mut kept = request(Method::GET, "/api/inspect/id", Bytes::new());
    kept.headers_mut()
        .insert("x-request-id", support::value("req-42"));
    let reply = send(edge.gateway.addr, kept).await;
    assert_eq!(reply.header("x-request-id"), "req-42");
    let headers = &reply.json()["headers"];
    assert_eq!(headers["x-request-id"], "req-42");
    let millis: u64 = headers["x-microkit-deadline-ms"]
        .as_str()
        .and_then(|ms| ms.parse().ok())
        .expect("a deadline header");
    assert!((4_000..=5_000).contains(&millis), "{millis}");

    let reply = get_path(edge.gateway.addr, "/api/inspect/id").await;
    let generated = reply.header("x-request-id").to_owned();
    assert!(!generated.is_empty(), "the gateway generated an id");
    assert_eq!(reply.json()["headers"]["x-request-id"], generated.as_str());
}

/// With no subscriber in this test binary, a gateway records a trace only through its
/// metrics' exemplars: it passes a trace on when its caller started one or its metrics record
/// it, and otherwise sends no `traceparent` (the service starts the trace).
#[tokio::test]
async fn a_trace_goes_on_when_the_caller_started_it_or_the_gateway_records_it() {
    let edge = edge(client_config()).await;
    let reply = get_path(edge.gateway.addr, "/api/inspect/t").await;
    let headers = &reply.json()["headers"];
    assert!(headers.get("traceparent").is_none(), "{headers}");
    assert!(
        headers["x-request-id"].is_string(),
        "the request id goes on all the same"
    );

    let callers = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut traced = request(Method::GET, "/api/inspect/t", Bytes::new());
    traced
        .headers_mut()
        .insert("traceparent", support::value(callers));
    let reply = send(edge.gateway.addr, traced).await;
    let sent = reply.json()["headers"]["traceparent"]
        .as_str()
        .expect("the caller's trace goes on")
        .to_owned();
    assert!(
        sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && sent != callers,
        "{sent}"
    );

    let registry = MemoryRegistry::new();
    let _registration = register(&registry, "backend", edge._backend.addr).await;
    let client = ServiceClient::with_config(registry.clone(), client_config());
    let measured = Gateway::new(client)
        .route("/api/{*rest}", "backend")
        .metrics(Arc::new(microkit::metrics::Metrics::new()))
        .into_router();
    let measured = spawn(measured, server_config()).await;
    let reply = get_path(measured.addr, "/api/inspect/t").await;
    let sent = reply.json()["headers"]["traceparent"].clone();
    assert!(
        sent.as_str().is_some_and(|sent| sent.starts_with("00-")),
        "exemplars record the trace, so it goes on: {sent}"
    );
}

#[tokio::test]
async fn failures_become_502_503_and_504_problems() {
    let registry = MemoryRegistry::new();
    let backend = spawn(backend(Arc::default()), server_config()).await;
    let _backend = register(&registry, "backend", backend.addr).await;
    let dead = refusing_addr();
    let _dead = register(&registry, "dead", dead.addr).await;
    // The refused calls get the default deadline: with a short one, a test machine busy
    // enough to hold the retry's timer past it would make them a 504.
    let patient = gateway(&registry, client_config()).await;
    assert_problem(
        &get_path(patient.addr, "/ghost/x").await,
        StatusCode::SERVICE_UNAVAILABLE,
    );
    assert_problem(
        &get_path(patient.addr, "/dead/x").await,
        StatusCode::BAD_GATEWAY,
    );

    let hasty = gateway(
        &registry,
        client_config().deadline(Duration::from_millis(300)),
    )
    .await;
    let started = Instant::now();
    assert_problem(
        &get_path(hasty.addr, "/api/slow").await,
        StatusCode::GATEWAY_TIMEOUT,
    );
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn internal_routes_are_refused_at_the_edge() {
    let edge = edge(client_config()).await;
    assert_problem(
        &get_path(edge.gateway.addr, "/internal/stats").await,
        StatusCode::FORBIDDEN,
    );
}

#[tokio::test]
async fn services_guard_their_internal_routes_by_the_real_client_address() {
    let guarded = |layer: AllowNetworksLayer| {
        Router::new()
            .route("/internal/stats", get(|| async { "stats" }))
            .route_layer(layer)
            .route("/public", get(|| async { "public" }))
    };
    let private = spawn(guarded(AllowNetworksLayer::private()), server_config()).await;
    assert_eq!(
        get_path(private.addr, "/internal/stats").await.status,
        StatusCode::OK
    );

    let ten: Network = "10.0.0.0/8".parse().expect("a network");
    let elsewhere = spawn(guarded(AllowNetworksLayer::new([ten])), server_config()).await;
    let reply = get_path(elsewhere.addr, "/internal/stats").await;
    assert_problem(&reply, StatusCode::FORBIDDEN);
    // A forwarded header cannot talk its way in: only the connection's address counts.
    let mut spoofed = request(Method::GET, "/internal/stats", Bytes::new());
    spoofed
        .headers_mut()
        .insert("x-forwarded-for", support::value("10.1.2.3"));
    spoofed
        .headers_mut()
        .insert("forwarded", support::value("for=10.1.2.3"));
    assert_problem(&send(elsewhere.addr, spoofed).await, StatusCode::FORBIDDEN);
    assert_eq!(
        get_path(elsewhere.addr, "/public").await.status,
        StatusCode::OK,
        "other routes are open"
    );
}

/// A layer behind a trusted proxy puts the client's address from the proxy's field in the
/// server's place; the guard then judges that address, not the proxy's.
#[tokio::test]
async fn an_address_a_layer_puts_in_is_the_one_the_guard_judges() {
    let from_proxy = tower::util::MapRequestLayer::new(|mut request: Request| {
        let real = request
            .headers()
            .get("x-real-ip")
            .and_then(|value| value.to_str().ok()?.parse::<std::net::IpAddr>().ok());
        if let Some(ip) = real {
            let addr = std::net::SocketAddr::new(ip, 0);
            request.extensions_mut().insert(RemoteAddr(addr));
        }
        request
    });
    let ten: Network = "10.0.0.0/8".parse().expect("a network");
    let app = Router::new()
        .route("/internal/stats", get(|| async { "stats" }))
        .route_layer(AllowNetworksLayer::new([ten]))
        .layer(from_proxy);
    let server = spawn(app, server_config()).await;
    // From 127.0.0.1, outside 10/8: refused.
    assert_problem(
        &get_path(server.addr, "/internal/stats").await,
        StatusCode::FORBIDDEN,
    );
    let mut relayed = request(Method::GET, "/internal/stats", Bytes::new());
    relayed
        .headers_mut()
        .insert("x-real-ip", support::value("10.1.2.3"));
    assert_eq!(send(server.addr, relayed).await.status, StatusCode::OK);
    let mut outside = request(Method::GET, "/internal/stats", Bytes::new());
    outside
        .headers_mut()
        .insert("x-real-ip", support::value("192.0.2.1"));
    assert_problem(&send(server.addr, outside).await, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_behind_the_gateway() {
    let registry = MemoryRegistry::new();
    let doomed = spawn(backend(Arc::default()), server_config()).await;
    let survivor = spawn(backend(Arc::default()), server_config()).await;
    let _a = register(&registry, "backend", doomed.addr).await;
    let _b = register(&registry, "backend", survivor.addr).await;
    let gateway = gateway(&registry, ClientConfig::default()).await;
    let client = pooled_client();
    let uri = format!("http://{}/api/inspect/load", gateway.addr);
    let load = start_load(2000, 8, move |_| {
        let (client, uri) = (client.clone(), uri.clone());
        async move {
            let request = HttpRequest::get(uri)
                .body(Full::new(Bytes::new()))
                .expect("a request");
            let response = client.request(request).await.map_err(|e| e.to_string())?;
            let status = response.status();
            response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            (status == StatusCode::OK)
                .then_some(())
                .ok_or_else(|| status.to_string())
        }
    });
    load.reached(500).await;
    drop(doomed);
    let report = load.finish().await;
    assert!(
        report.success_ratio() >= 0.999,
        "{} of 2000 failed in {:?}: {:?}",
        report.failed,
        report.elapsed,
        report.errors
    );
}

#[tokio::test]
async fn health_is_503_until_every_service_has_a_healthy_instance() {
    let registry = MemoryRegistry::new();
    let client = ServiceClient::with_config(registry.clone(), client_config());
    let router = Gateway::new(client)
        .route("/alpha/{*rest}", "alpha")
        .route("/beta/{*rest}", "beta")
        .into_router();
    let gateway = spawn(router, server_config()).await;

    let reply = get_path(gateway.addr, "/health").await;
    assert_problem(&reply, StatusCode::SERVICE_UNAVAILABLE);

    let alpha = spawn(backend(Arc::default()), server_config()).await;
    let _alpha = register(&registry, "alpha", alpha.addr).await;
    let reply = get_path(gateway.addr, "/health").await;
    assert_problem(&reply, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["unhealthy"], json!(["beta"]));

    let beta = spawn(backend(Arc::default()), server_config()).await;
    let _beta = register(&registry, "beta", beta.addr).await;
    let reply = get_path(gateway.addr, "/health").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["status"], "ok");
}

/// Every method a test tries on an internal route: the standard ones and a made-up one.
const EVERY_METHOD: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "XMK01",
];

/// A backend with a `/log` that is public to `POST` and internal to `GET`, as the shop's.
fn log_backend() -> Router {
    Router::new()
        .route(
            "/log",
            get(|| async { "the log" }).post(|| async { "logged" }),
        )
        .route("/internal/stats", any(|| async { "stats" }))
}

#[tokio::test]
async fn every_method_that_could_reach_an_internal_handler_is_403_at_the_edge() {
    let backend = spawn(log_backend(), server_config()).await;
    let registry = MemoryRegistry::new();
    let _registration = register(&registry, "backend", backend.addr).await;
    let client = ServiceClient::with_config(registry.clone(), client_config());
    let router = Gateway::new(client)
        .route("/log", "backend")
        .internal_method(Method::GET, "/log")
        .route("/internal/{*rest}", "backend")
        .internal("/internal/{*rest}")
        .into_router();
    let gateway = spawn(router, server_config()).await;
    let mut conn = support::Http1Conn::open(gateway.addr).await;
    for method in EVERY_METHOD {
        let reply = conn
            .send(request(
                method.parse().unwrap(),
                "/internal/stats",
                Bytes::new(),
            ))
            .await
            .unwrap();
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} /internal/stats"
        );
    }
    for method in ["GET", "HEAD"] {
        let reply = conn
            .send(request(method.parse().unwrap(), "/log", Bytes::new()))
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} /log");
    }
    let reply = conn
        .send(request(Method::POST, "/log", Bytes::new()))
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "POST /log stays public");
    // OPTIONS is answered at the edge, and neither it nor a 405 names the internal methods.
    for (method, expected) in [
        ("OPTIONS", StatusCode::NO_CONTENT),
        ("PUT", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let reply = conn
            .send(request(method.parse().unwrap(), "/log", Bytes::new()))
            .await
            .unwrap();
        assert_eq!(reply.status, expected, "{method} /log");
        let allow = reply.header("allow");
        assert!(allow.contains("POST"), "{method}: Allow: {allow}");
        assert!(
            !allow.contains("GET") && !allow.contains("HEAD"),
            "{method}: Allow: {allow}"
        );
    }
}

#[tokio::test]
async fn services_refuse_their_internal_routes_to_what_the_gateway_forwards() {
    let guarded = Router::new()
        .route("/api/internal", get(|| async { "internal" }))
        .route_layer(AllowNetworksLayer::private())
        .route("/api/public", get(|| async { "public" }));
    let backend = spawn(guarded, server_config()).await;
    let registry = MemoryRegistry::new();
    let _registration = register(&registry, "backend", backend.addr).await;
    let gateway = gateway(&registry, client_config()).await;
    // The gateway's table forgot `/api/internal`: the mark still keeps it closed.
    assert_problem(
        &get_path(gateway.addr, "/api/internal").await,
        StatusCode::FORBIDDEN,
    );
    assert_eq!(
        get_path(gateway.addr, "/api/public").await.status,
        StatusCode::OK
    );
    // Neither a forged mark nor a `Connection` naming it gets through.
    let forged = raw_exchange(
        gateway.addr,
        b"GET /api/internal HTTP/1.1\r\nHost: x\r\nConnection: x-microkit-gateway\r\n\
          x-microkit-gateway: \r\n\r\n"
            .to_vec(),
    )
    .await;
    assert_eq!(forged.status, 403);
    // A direct call from loopback still answers.
    assert_eq!(
        get_path(backend.addr, "/api/internal").await.status,
        StatusCode::OK
    );
}

/// Writes `bytes`, closes the writing side, and reads the answer until the gateway closes.
async fn send_and_close(addr: SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::AsyncWriteExt;
    let mut stream = connect(addr).await;
    stream.write_all(bytes).await.unwrap();
    let _ = stream.shutdown().await;
    let answer = support::read_until_closed(&mut stream, PATIENCE)
        .await
        .expect("the gateway closes the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_clients_broken_body_is_its_fault_not_the_upstreams() {
    let edge = edge(client_config()).await;
    let cases: [(&str, &[u8]); 4] = [
        (
            "a truncated body",
            b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello",
        ),
        (
            "a chunk size that is not hex",
            b"POST /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "a chunk size that overflows",
            b"POST /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "a truncated chunked body",
            b"POST /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        ),
    ];
    for (what, bytes) in cases {
        let answer = send_and_close(edge.gateway.addr, bytes).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{what}: {answer}");
    }
    // Past the limit without a Content-Length: 413, whether small or streamed.
    let mut big =
        b"POST /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..20 {
        big.extend_from_slice(b"10000\r\n");
        big.extend_from_slice(&[b'a'; 0x10000]);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b"0\r\n\r\n");
    let answer = send_and_close(edge.gateway.addr, &big).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn a_declared_length_past_the_limit_is_refused_before_any_byte_of_the_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let edge = edge(client_config()).await;
    let mut stream = connect(edge.gateway.addr).await;
    // The head alone: an answer that waited for the body, or for the upstream to read it,
    // would not come.
    stream
        .write_all(b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut chunk = [0; 4096];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before an answer");
            answer.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to the head alone");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn connect_is_never_forwarded() {
    let edge = edge(client_config()).await;
    // On a forwarding route: 405, from the gateway (a problem, no upstream answer), with the
    // methods it does forward.
    let answer = send_and_close(
        edge.gateway.addr,
        b"CONNECT /api/tunnel HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("allow: get,head,post,put,patch,delete\r\n"),
        "{answer}"
    );
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("does not open tunnels"), "{answer}");
    // To an authority: no route has it, and it is not a path to redirect to.
    let answer = send_and_close(
        edge.gateway.addr,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("location:"),
        "{answer}"
    );
}

#[tokio::test]
async fn slow_bodies_are_408_at_the_gateway_even_while_streaming_to_a_service() {
    use tokio::io::AsyncWriteExt;
    let hooks = Arc::new(StreamHooks::default());
    let backend = spawn(backend(hooks), server_config()).await;
    let registry = MemoryRegistry::new();
    let _registration = register(&registry, "backend", backend.addr).await;
    let client = ServiceClient::with_config(registry.clone(), client_config());
    let router = Gateway::new(client)
        .route("/api/{*rest}", "backend")
        .into_router();
    let paced = server_config()
        .body_read_timeout(Duration::from_millis(400))
        .min_body_rate(240, Duration::from_millis(600));
    let gateway = spawn(router, paced).await;
    // Silent after the headers; and streamed (past the client's replay buffer), then stalled.
    let mut streamed =
        b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n".to_vec();
    streamed.extend_from_slice(&[b'a'; 200_000]);
    for bytes in [
        b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n".to_vec(),
        streamed,
    ] {
        let started = Instant::now();
        let mut stream = connect(gateway.addr).await;
        stream.write_all(&bytes).await.unwrap();
        let answer = support::read_until_closed(&mut stream, PATIENCE)
            .await
            .expect("the gateway closes the connection");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains(PROBLEM_JSON), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}

#[tokio::test]
async fn made_up_methods_and_paths_add_at_most_two_series_at_the_gateway_and_behind_it() {
    use microkit::metrics::{Metrics, MetricsLayer};
    let series = |metrics: &Metrics| -> std::collections::BTreeSet<String> {
        metrics
            .encode()
            .lines()
            .filter(|line| line.starts_with("http_requests_total{"))
            .map(|line| line.rsplit_once(' ').unwrap().0.to_owned())
            .collect()
    };
    let behind = Arc::new(Metrics::new());
    let backend = spawn(
        backend(Arc::default()).layer(MetricsLayer::new(behind.clone())),
        server_config(),
    )
    .await;
    let registry = MemoryRegistry::new();
    let _registration = register(&registry, "backend", backend.addr).await;
    let edge_metrics = Arc::new(Metrics::new());
    let client = ServiceClient::with_config(registry.clone(), client_config());
    let router = Gateway::new(client)
        .route("/api/{*rest}", "backend")
        .into_router()
        .layer(MetricsLayer::new(edge_metrics.clone()));
    let gateway = spawn(router, server_config()).await;
    let mut conn = support::Http1Conn::open(gateway.addr).await;
    conn.send(request(Method::GET, "/api/inspect/x", Bytes::new()))
        .await
        .unwrap();
    let (edge_before, behind_before) = (series(&edge_metrics), series(&behind));
    for n in 0..1_000 {
        let method = Method::from_bytes(format!("XMK{n:04}").as_bytes()).unwrap();
        conn.send(request(method, "/api/inspect/x", Bytes::new()))
            .await
            .unwrap();
        conn.send(request(
            Method::GET,
            &format!("/api/made-up/{n}"),
            Bytes::new(),
        ))
        .await
        .unwrap();
    }
    for (what, before, after) in [
        ("gateway", edge_before, series(&edge_metrics)),
        ("service", behind_before, series(&behind)),
    ] {
        let added: Vec<_> = after.difference(&before).collect();
        assert!(added.len() <= 2, "{what}: {added:#?}");
    }
}

#[tokio::test]
async fn a_stalled_upload_is_the_clients_fault_even_when_the_upstream_attempt_times_out_first() {
    use tokio::io::AsyncWriteExt;
    let edge = edge(client_config().attempt_timeout(Duration::from_millis(1_500))).await;
    let mut stream = connect(edge.gateway.addr).await;
    // Past the client's replay buffer, so streamed to the service; then nothing more.
    let mut upload =
        b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n".to_vec();
    upload.extend_from_slice(&[b'a'; 100_000]);
    stream.write_all(&upload).await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let started = Instant::now();
    // The answer's head is enough: the connection closes once the unread rest of the body is
    // given up, as any abandoned body is (bounded by the lingering close).
    while started.elapsed() < PATIENCE && !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        use tokio::io::AsyncReadExt;
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&chunk[..n]),
            Err(_) => {}
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "{answer} after {:?}",
        started.elapsed()
    );
}
