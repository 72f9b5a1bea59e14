//! The inter-service client's contract, over real loopback servers: typed JSON helpers and
//! errors, which failures are retried (and which never are), body replay, balancing,
//! failover when an instance dies (a server task, then a whole process), outlier ejection,
//! the retry budget, deadlines and the pool's idle timeout.

use microkit_test_support as support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use microkit::client::{Balance, ClientConfig, ClientError, ServiceClient};
use microkit::deadline::DEADLINE_HEADER;
use microkit::discovery::MemoryRegistry;
use microkit::http::{Method, StatusCode};
use microkit::router::{any, get};
use microkit::{Body, Json, Problem, Request, Response, Router, ServerConfig};
use serde::{Deserialize, Serialize};
use support::cluster::{
    eventually, refusing_addr, register, spawn_silent, start_load, CountingProxy, Hits,
};
use support::{raw_exchange, spawn, TestServer, PATIENCE};

/// Backoff short enough for the suite, and ejection out of the way unless a test wants it.
fn config() -> ClientConfig {
    ClientConfig::default()
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .ejection(1_000, Duration::from_secs(30), Duration::from_secs(300))
}

fn round_robin() -> ClientConfig {
    config().balance(Balance::RoundRobin)
}

fn server_config() -> ServerConfig {
    ServerConfig::default().shutdown_timeout(Duration::from_secs(2))
}

/// A backend that counts every request and answers each with `status`, its name as the body.
async fn backend(name: &'static str, status: StatusCode) -> (TestServer, Hits) {
    let hits = Hits::default();
    let counted = hits.clone();
    let router = Router::new().route(
        "/{*path}",
        any(move |request: Request| {
            let counted = counted.clone();
            async move {
                // Read the whole body, as a real handler would, before answering.
                let _ = request.into_body().collect_limited(1 << 20).await;
                counted.hit();
                (status, name)
            }
        }),
    );
    (spawn(router, server_config()).await, hits)
}

async fn get_status(client: &ServiceClient, service: &str, path: &str) -> StatusCode {
    let request = Request::get(path).body(Body::empty()).expect("a request");
    client
        .send(service, request)
        .await
        .unwrap_or_else(|err| panic!("GET {path}: {err}"))
        .status()
}

async fn body_text(response: Response) -> String {
    let bytes = response
        .into_body()
        .collect_limited(1 << 20)
        .await
        .expect("a body");
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

#[derive(Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
struct Item {
    id: u64,
    name: String,
}

fn item_router() -> Router {
    Router::new()
        .route(
            "/items/{id}",
            get(
                |microkit::extract::Path(id): microkit::extract::Path<u64>| async move {
                    match id {
                        404 => Err(Problem::not_found("no item 404")),
                        409 => Err(Problem::conflict("item 409 is locked")),
                        422 => Err(Problem::unprocessable("item 422 is malformed")),
                        _ => Ok(Json(Item {
                            id,
                            name: format!("item-{id}"),
                        })),
                    }
                },
            )
            .put(|Json(item): Json<Item>| async move { Json(item) })
            .patch(|Json(item): Json<Item>| async move { Json(item) })
            .delete(|| async { StatusCode::NO_CONTENT }),
        )
        .route(
            "/items",
            microkit::router::post(|Json(item): Json<Item>| async move {
                (StatusCode::CREATED, Json(item))
            }),
        )
        .route("/not-json", get(|| async { "plain text" }))
}

#[tokio::test]
async fn json_helpers_round_trip_typed_values() {
    let server = spawn(item_router(), server_config()).await;
    let registry = MemoryRegistry::new();
    let _registered = register(&registry, "items", server.addr).await;
    let client = ServiceClient::with_config(registry, config());

    let item: Item = client.get_json("items", "/items/7").await.expect("GET");
    assert_eq!(
        item,
        Item {
            id: 7,
            name: "item-7".into()
        }
    );
    let sent = Item {
        id: 8,
        name: "eight".into(),
    };
    let created: Item = client
        .post_json("items", "/items", &sent)
        .await
        .expect("POST");
    assert_eq!(created, sent);
    let put: Item = client
        .put_json("items", "/items/8", &sent)
        .await
        .expect("PUT");
    assert_eq!(put, sent);
    let patched: Item = client
        .patch_json("items", "/items/8", &sent)
        .await
        .expect("PATCH");
    assert_eq!(patched, sent);
    client.delete("items", "/items/8").await.expect("DELETE");
}

#[tokio::test]
async fn failures_are_typed_errors() {
    let server = spawn(item_router(), server_config()).await;
    let registry = MemoryRegistry::new();
    let _items = register(&registry, "items", server.addr).await;
    let dead = refusing_addr();
    let _dead = register(&registry, "dead", dead.addr).await;
    let client = ServiceClient::with_config(registry, config());

    let err = client
        .get_json::<Item>("nobody", "/items/1")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::NoInstances { ref service } if service == "nobody"),
        "{err:?}"
    );

    let err = client
        .get_json::<Item>("dead", "/items/1")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");

    for (id, status, detail) in [
        (404, StatusCode::NOT_FOUND, "no item 404"),
        (409, StatusCode::CONFLICT, "item 409 is locked"),
        (
            422,
            StatusCode::UNPROCESSABLE_ENTITY,
            "item 422 is malformed",
        ),
    ] {
        let err = client
            .get_json::<Item>("items", &format!("/items/{id}"))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Status { .. }), "{err:?}");
        assert_eq!(err.status(), Some(status));
        let problem = err.problem().expect("the service's problem");
        assert_eq!(
            problem.detail(),
            Some(detail),
            "the service's own detail is kept"
        );
    }

    let err = client
        .get_json::<Item>("items", "/not-json")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn a_503_is_retried_on_the_other_instance_for_get_but_not_for_post() {
    let (failing, failing_hits) = backend("failing", StatusCode::SERVICE_UNAVAILABLE).await;
    let (healthy, healthy_hits) = backend("healthy", StatusCode::OK).await;
    let registry = MemoryRegistry::new();
    let _a = register(&registry, "svc", failing.addr).await;
    let _b = register(&registry, "svc", healthy.addr).await;
    let client = ServiceClient::with_config(registry, round_robin());

    for _ in 0..10 {
        assert_eq!(get_status(&client, "svc", "/thing").await, StatusCode::OK);
    }
    assert_eq!(
        healthy_hits.get(),
        10,
        "every GET ended on the healthy instance"
    );
    assert_eq!(
        failing_hits.get(),
        5,
        "round robin sent every other first attempt there"
    );

    let mut unavailable = 0;
    for _ in 0..10 {
        let request = Request::post("/thing")
            .body(Body::from("order"))
            .expect("a request");
        let response = client.send("svc", request).await.expect("an answer");
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            unavailable += 1;
        }
    }
    assert_eq!(
        failing_hits.get() + healthy_hits.get(),
        15 + 10,
        "one attempt per POST"
    );
    assert_eq!(
        unavailable,
        failing_hits.get() - 5,
        "each 503 reached the caller, unretried"
    );
}

#[tokio::test]
async fn a_500_or_a_4xx_is_never_retried() {
    for status in [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::BAD_REQUEST,
        StatusCode::NOT_FOUND,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        let (failing, failing_hits) = backend("failing", status).await;
        let (healthy, healthy_hits) = backend("healthy", StatusCode::OK).await;
        let registry = MemoryRegistry::new();
        let _a = register(&registry, "svc", failing.addr).await;
        let _b = register(&registry, "svc", healthy.addr).await;
        let client = ServiceClient::with_config(registry, round_robin());
        let mut failed = 0;
        for _ in 0..10 {
            if get_status(&client, "svc", "/thing").await == status {
                failed += 1;
            }
        }
        assert_eq!(
            failing_hits.get() + healthy_hits.get(),
            10,
            "{status}: one attempt each"
        );
        assert_eq!(failed, failing_hits.get(), "{status} reached the caller");
        assert!(failed > 0);
    }
}

#[tokio::test]
async fn a_request_that_cannot_be_framed_fails_without_blaming_an_instance() {
    let (first, first_hits) = backend("first", StatusCode::OK).await;
    let (second, second_hits) = backend("second", StatusCode::OK).await;
    let registry = MemoryRegistry::new();
    let _a = register(&registry, "svc", first.addr).await;
    let _b = register(&registry, "svc", second.addr).await;
    // Ejection after one failure: blaming an instance for the caller's request would show.
    let config = round_robin().ejection(1, Duration::from_secs(30), Duration::from_secs(300));
    let client = ServiceClient::with_config(registry, config);
    let request = Request::get("/thing")
        .header("content-length", "12")
        .body(Body::empty())
        .expect("a request");
    let err = client
        .send("svc", request)
        .await
        .expect_err("a GET announcing a body it does not have cannot be sent");
    assert!(
        matches!(err, ClientError::Transport { .. }),
        "not retried on the other instance: {err}"
    );
    assert_eq!(first_hits.get() + second_hits.get(), 0, "nothing was sent");
    for _ in 0..4 {
        assert_eq!(get_status(&client, "svc", "/thing").await, StatusCode::OK);
    }
    assert_eq!(
        (first_hits.get(), second_hits.get()),
        (2, 2),
        "neither was ejected"
    );
}

#[tokio::test]
async fn a_post_that_never_reached_a_server_is_retried_elsewhere() {
    let (healthy, healthy_hits) = backend("healthy", StatusCode::OK).await;
    let registry = MemoryRegistry::new();
    let dead = refusing_addr();
    let _dead = register(&registry, "svc", dead.addr).await;
    let _b = register(&registry, "svc", healthy.addr).await;
    let client = ServiceClient::with_config(registry, round_robin());
    for _ in 0..10 {
        let request = Request::post("/orders")
            .body(Body::from("order"))
            .expect("a request");
        let response = client
            .send("svc", request)
            .await
            .expect("retried on the live instance");
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(healthy_hits.get(), 10);
}

#[tokio::test]
async fn a_body_up_to_64_kib_is_replayed_intact_on_retry() {
    let received = Arc::new(Mutex::new(Vec::<(&'static str, Bytes)>::new()));
    let backend = |name: &'static str, status: StatusCode| {
        let received = received.clone();
        Router::new().route(
            "/{*path}",
            any(move |request: Request| {
                let received = received.clone();
                async move {
                    let body = request
                        .into_body()
                        .collect_limited(1 << 20)
                        .await
                        .expect("a body");
                    received.lock().expect("lock").push((name, body.clone()));
                    (status, body)
                }
            }),
        )
    };
    let failing = spawn(backend("failing", StatusCode::BAD_GATEWAY), server_config()).await;
    let healthy = spawn(backend("healthy", StatusCode::OK), server_config()).await;
    let registry = MemoryRegistry::new();
    let _a = register(&registry, "svc", failing.addr).await;
    let _b = register(&registry, "svc", healthy.addr).await;
    let client = ServiceClient::with_config(registry, round_robin());

    let payload: Bytes = (0..64 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    for _ in 0..4 {
        let request = Request::put("/blob")
            .body(Body::from(payload.clone()))
            .expect("a request");
        let response = client.send("svc", request).await.expect("an answer");
        assert_eq!(response.status(), StatusCode::OK);
        let echoed = response
            .into_body()
            .collect_limited(1 << 20)
            .await
            .expect("a body");
        assert!(echoed == payload, "the body came back changed");
    }
    let received = received.lock().expect("lock");
    assert_eq!(
        received
            .iter()
            .filter(|(name, _)| *name == "failing")
            .count(),
        2
    );
    assert!(
        received.iter().all(|(_, body)| *body == payload),
        "every attempt got the whole body"
    );
}

#[tokio::test]
async fn round_robin_spreads_evenly() {
    let mut servers = Vec::new();
    let registry = MemoryRegistry::new();
    let mut registrations = Vec::new();
    for name in ["a", "b", "c"] {
        let (server, hits) = backend(name, StatusCode::OK).await;
        registrations.push(register(&registry, "svc", server.addr).await);
        servers.push((server, hits));
    }
    let client = ServiceClient::with_config(registry, round_robin());
    for _ in 0..90 {
        assert_eq!(get_status(&client, "svc", "/x").await, StatusCode::OK);
    }
    let counts: Vec<usize> = servers.iter().map(|(_, hits)| hits.get()).collect();
    assert_eq!(counts, [30, 30, 30]);
}

#[tokio::test]
async fn power_of_two_choices_favours_the_fast_instance() {
    let slow_hits = Hits::default();
    let counted = slow_hits.clone();
    let slow_router = Router::new().route(
        "/x",
        get(move || {
            let counted = counted.clone();
            async move {
                counted.hit();
                tokio::time::sleep(Duration::from_millis(20)).await;
                "slow"
            }
        }),
    );
    let slow = spawn(slow_router, server_config()).await;
    let (fast, fast_hits) = backend("fast", StatusCode::OK).await;
    let registry = MemoryRegistry::new();
    let _a = register(&registry, "svc", slow.addr).await;
    let _b = register(&registry, "svc", fast.addr).await;
    let client = ServiceClient::with_config(registry, config());

    let load = start_load(200, 4, move |_| {
        let client = client.clone();
        async move {
            match get_status(&client, "svc", "/x").await {
                StatusCode::OK => Ok(()),
                other => Err(other.to_string()),
            }
        }
    });
    let report = load.finish().await;
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    let (slow, fast) = (slow_hits.get(), fast_hits.get());
    assert!(
        slow * 10 < slow + fast,
        "the slow instance got {slow} of {}",
        slow + fast
    );
}

/// Runs 2000 GETs through `client`, 8 at a time, calling `kill` a quarter of the way in;
/// asserts at least 99.9% succeeded.
async fn survives_losing_an_instance(
    client: ServiceClient,
    path: &'static str,
    kill: impl FnOnce(),
) {
    let load = start_load(2000, 8, move |_| {
        let client = client.clone();
        async move {
            let request = Request::get(path).body(Body::empty()).expect("a request");
            match client.send("svc", request).await {
                Ok(response) if response.status() == StatusCode::OK => {
                    body_text(response).await;
                    Ok(())
                }
                Ok(response) => Err(response.status().to_string()),
                Err(err) => Err(err.to_string()),
            }
        }
    });
    load.reached(500).await;
    kill();
    let report = load.finish().await;
    assert!(
        report.success_ratio() >= 0.999,
        "{} of 2000 failed in {:?}: {:?}",
        report.failed,
        report.elapsed,
        report.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_when_an_instance_stops_mid_load() {
    let (doomed, doomed_hits) = backend("doomed", StatusCode::OK).await;
    let (survivor, _) = backend("survivor", StatusCode::OK).await;
    let registry = MemoryRegistry::new();
    // Both stay registered: the client has to notice the dead instance by itself.
    let _a = register(&registry, "svc", doomed.addr).await;
    let _b = register(&registry, "svc", survivor.addr).await;
    let client = ServiceClient::with_config(registry, ClientConfig::default());
    // Dropping the server aborts its task: the listener and every connection close at once.
    survives_losing_an_instance(client, "/x", move || drop(doomed)).await;
    assert!(
        doomed_hits.get() > 100,
        "the doomed instance served before it died"
    );
}

/// The `bench_server` example's binary, built if `cargo test` did not build it already.
fn bench_server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/client-<hash> → target/<profile>/examples/bench_server
    let profile_dir = exe
        .ancestors()
        .find(|dir| dir.join("examples").is_dir())
        .expect("a target directory with examples/")
        .to_path_buf();
    let binary = profile_dir
        .join("examples")
        .join(format!("bench_server{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--example", "bench_server"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building the bench_server example failed");
    }
    binary
}

/// Starts `bench_server` on a free loopback port; returns the child and its address.
async fn spawn_bench_server(binary: &PathBuf) -> (tokio::process::Child, std::net::SocketAddr) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(binary)
        .args(["--listen", "127.0.0.1:0", "--threads", "1"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting bench_server");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("bench_server announced its address in time")
        .expect("reading its stdout")
        .expect("a line on its stdout");
    let addr = line
        .strip_prefix("bench_server http://")
        .and_then(|addr| addr.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected announcement: {line:?}"));
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_when_an_instance_process_is_killed() {
    let binary = bench_server_binary();
    let (mut doomed, doomed_addr) = spawn_bench_server(&binary).await;
    let (_survivor, survivor_addr) = spawn_bench_server(&binary).await;
    let registry = MemoryRegistry::new();
    let _a = register(&registry, "svc", doomed_addr).await;
    let _b = register(&registry, "svc", survivor_addr).await;
    let client = ServiceClient::with_config(registry, ClientConfig::default());
    // SIGKILL: no graceful anything, the kernel resets the process' connections.
    survives_losing_an_instance(client, "/plaintext", || {
        doomed.start_kill().expect("killing the child")
    })
    .await;
    let status = tokio::time::timeout(PATIENCE, doomed.wait())
        .await
        .expect("the child exited")
        .expect("its status");
    assert!(!status.success(), "killed, not exited: {status}");
}

#[tokio::test]
async fn an_instance_failing_five_times_in_a_row_is_ejected_then_readmitted_by_a_probe() {
    let failing = Arc::new(AtomicBool::new(true));
    let flaky_hits = Hits::default();
    let (state, counted) = (failing.clone(), flaky_hits.clone());
    let flaky_router = Router::new().route(
        "/x",
        get(move || {
            let (state, counted) = (state.clone(), counted.clone());
            async move {
                counted.hit();
                if state.load(Ordering::SeqCst) {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let flaky = spawn(flaky_router, server_config()).await;
    let (steady, _) = backend("steady", StatusCode::OK).await;
    let registry = MemoryRegistry::new();
    let _a = register(&registry, "svc", flaky.addr).await;
    let _b = register(&registry, "svc", steady.addr).await;
    let ejection = Duration::from_millis(300);
    let client = ServiceClient::with_config(
        registry,
        round_robin().ejection(5, ejection, Duration::from_secs(3)),
    );

    for _ in 0..40 {
        if flaky_hits.get() >= 5 {
            break;
        }
        assert_eq!(
            get_status(&client, "svc", "/x").await,
            StatusCode::OK,
            "retried elsewhere"
        );
    }
    assert_eq!(flaky_hits.get(), 5);
    for _ in 0..20 {
        assert_eq!(get_status(&client, "svc", "/x").await, StatusCode::OK);
    }
    assert_eq!(
        flaky_hits.get(),
        5,
        "ejected after five failures in a row: no more traffic"
    );

    failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(ejection + Duration::from_millis(100)).await;
    for _ in 0..20 {
        assert_eq!(get_status(&client, "svc", "/x").await, StatusCode::OK);
    }
    assert!(
        flaky_hits.get() >= 5 + 9,
        "after the ejection a successful probe readmits it to its share: {} hits",
        flaky_hits.get()
    );
}

#[tokio::test]
async fn the_retry_budget_stops_a_retry_storm() {
    const REQUESTS: usize = 200;
    let (down, attempts) = backend("down", StatusCode::SERVICE_UNAVAILABLE).await;
    let registry = MemoryRegistry::new();
    let _a = register(&registry, "svc", down.addr).await;
    let client = ServiceClient::with_config(registry.clone(), config().max_attempts(3));
    let started = Instant::now();
    for _ in 0..REQUESTS {
        assert_eq!(
            get_status(&client, "svc", "/x").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    // 20% of the requests, the 10-token reserve, and the reserve's refill at 10/s while running.
    let refill = (started.elapsed().as_secs_f64() * 10.0).ceil() as usize;
    let allowed = REQUESTS + REQUESTS / 5 + 10 + refill + 2;
    assert!(
        attempts.get() <= allowed,
        "{} attempts for {REQUESTS} requests (at most {allowed})",
        attempts.get()
    );
    assert!(
        attempts.get() > REQUESTS + 10,
        "the budget still allows some retries"
    );

    // Without a budget (every request deposits plenty), each request makes all its attempts.
    let (down, attempts) = backend("down", StatusCode::SERVICE_UNAVAILABLE).await;
    let registry = MemoryRegistry::new();
    let _b = register(&registry, "svc", down.addr).await;
    let unbudgeted = config().max_attempts(3).retry_budget(100.0, 0.0);
    let client = ServiceClient::with_config(registry, unbudgeted);
    for _ in 0..50 {
        assert_eq!(
            get_status(&client, "svc", "/x").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(attempts.get(), 50 * 3);
}

#[tokio::test]
async fn a_peer_that_never_answers_gives_a_deadline_error_in_time() {
    let silent = spawn_silent().await;
    let registry = MemoryRegistry::new();
    let _a = register(&registry, "svc", silent.addr).await;

    let client = ServiceClient::with_config(
        registry.clone(),
        config().deadline(Duration::from_millis(300)),
    );
    let started = Instant::now();
    let err = client.get_json::<Item>("svc", "/x").await.unwrap_err();
    assert!(
        matches!(err, ClientError::DeadlineExceeded { .. }),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );

    let per_attempt = config()
        .attempt_timeout(Duration::from_millis(100))
        .max_attempts(2);
    let client = ServiceClient::with_config(registry, per_attempt);
    let started = Instant::now();
    let err = client.get_json::<Item>("svc", "/x").await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(800),
        "{elapsed:?}"
    );
}

fn sleepy_router() -> Router {
    Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "too late"
        }),
    )
}

#[tokio::test]
async fn a_slow_microkit_upstream_ends_at_the_deadline() {
    let server = spawn(sleepy_router(), server_config()).await;
    let registry = MemoryRegistry::new();
    let _a = register(&registry, "svc", server.addr).await;
    let client =
        ServiceClient::with_config(registry, config().deadline(Duration::from_millis(300)));
    let started = Instant::now();
    let err = client.get_json::<Item>("svc", "/slow").await.unwrap_err();
    // The upstream honours the deadline header too: whichever side gives up first, the caller
    // learns that time ran out, not some other failure.
    assert!(
        err.is_timeout() || err.status() == Some(StatusCode::GATEWAY_TIMEOUT),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
}

/// Sends `GET /slow` (a handler that takes 3 s) with `millis` left to a microkit server;
/// checks that the answer is a 504 problem and says how long it took.
async fn deadline_problem_after(millis: u64) -> Duration {
    let server = spawn(sleepy_router(), server_config()).await;
    let started = Instant::now();
    let request =
        format!("GET /slow HTTP/1.1\r\nHost: x\r\nx-microkit-deadline-ms: {millis}\r\n\r\n");
    let response = raw_exchange(server.addr, request.into_bytes()).await;
    let elapsed = started.elapsed();
    assert_eq!(response.status, 504);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    elapsed
}

#[tokio::test]
async fn a_microkit_server_answers_504_at_once_when_no_time_is_left() {
    let elapsed = deadline_problem_after(0).await;
    assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
}

#[tokio::test]
async fn a_microkit_server_cuts_a_slow_handler_off_with_504_at_the_deadline() {
    let elapsed = deadline_problem_after(250).await;
    assert!(
        elapsed >= Duration::from_millis(240) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
}

fn deadline_echo() -> Router {
    Router::new().route(
        "/deadline",
        get(|request: Request| async move {
            request
                .headers()
                .get(DEADLINE_HEADER)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("none")
                .to_owned()
        }),
    )
}

#[tokio::test]
async fn the_deadline_travels_downstream_and_shrinks_on_each_hop() {
    let back = spawn(deadline_echo(), server_config()).await;
    let registry = MemoryRegistry::new();
    let _back = register(&registry, "back", back.addr).await;
    let client =
        ServiceClient::with_config(registry.clone(), config().deadline(Duration::from_secs(5)));

    let response = client
        .call::<()>(Method::GET, "back", "/deadline", None)
        .await
        .expect("an answer");
    let millis: u64 = body_text(response)
        .await
        .parse()
        .expect("a deadline header downstream");
    assert!(
        (4_000..=5_000).contains(&millis),
        "{millis} ms left of a 5 s deadline"
    );

    // A service called with 800 ms left passes on no more than that, whatever its own client's
    // deadline.
    let relay = client.clone();
    let front_router = Router::new().route(
        "/relay",
        get(move || {
            let relay = relay.clone();
            async move {
                let response = relay
                    .call::<()>(Method::GET, "back", "/deadline", None)
                    .await
                    .map_err(Problem::from)?;
                Ok::<_, Problem>(body_text(response).await)
            }
        }),
    );
    let front = spawn(front_router, server_config()).await;
    let response = raw_exchange(
        front.addr,
        b"GET /relay HTTP/1.1\r\nHost: x\r\nx-microkit-deadline-ms: 800\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(response.status, 200);
    let millis: u64 = String::from_utf8_lossy(&response.body)
        .parse()
        .expect("a number");
    assert!(
        (500..=800).contains(&millis),
        "{millis} ms passed on from 800"
    );
}

#[tokio::test]
async fn idle_pooled_connections_are_closed_after_the_idle_timeout() {
    let server = spawn(deadline_echo(), server_config()).await;
    for (idle_timeout, connections_expected) in [
        (Duration::from_millis(200), 2),
        (Duration::from_secs(30), 1),
    ] {
        let proxy = CountingProxy::start(server.addr).await;
        let registry = MemoryRegistry::new();
        let _a = register(&registry, "svc", proxy.addr).await;
        let client = ServiceClient::with_config(registry, config().pool_idle_timeout(idle_timeout));
        assert_eq!(
            get_status(&client, "svc", "/deadline").await,
            StatusCode::OK
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        if connections_expected == 2 {
            // The pool's timer closed the idle connection by itself, before any new request.
            eventually("the idle connection closed", || proxy.closed() == 1).await;
        } else {
            assert_eq!(
                proxy.closed(),
                0,
                "a connection within its idle timeout stays open"
            );
        }
        assert_eq!(
            get_status(&client, "svc", "/deadline").await,
            StatusCode::OK
        );
        assert_eq!(
            proxy.accepted(),
            connections_expected,
            "idle timeout {idle_timeout:?}"
        );
    }
}

/// Reads one request (head and `Content-Length` body) from a blocking socket; false at EOF.
fn read_request(stream: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |value| value.trim().parse().expect("a length"));
            if received.len() >= end + 4 + length {
                return true;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(read) => received.extend_from_slice(&chunk[..read]),
        }
    }
}

/// A server on its own thread that answers one request per connection as if keeping the
/// connection alive, then closes it when told to (or when the sender is gone): a keep-alive
/// timeout firing while the client holds the connection idle. Counts the connections closed.
fn spawn_closing_on_demand() -> (
    std::net::SocketAddr,
    std::sync::mpsc::Sender<()>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let addr = listener.local_addr().expect("the listener's address");
    let (close, close_requests) = std::sync::mpsc::channel::<()>();
    let closed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = closed.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            if read_request(&mut stream) {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                let _ = close_requests.recv();
            }
            drop(stream);
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, close, closed)
}

#[tokio::test]
async fn a_post_on_a_pooled_connection_the_server_just_closed_goes_out_on_a_new_one() {
    let (addr, close, closed) = spawn_closing_on_demand();
    let registry = MemoryRegistry::new();
    let _a = register(&registry, "svc", addr).await;
    let client = ServiceClient::with_config(registry, config());
    let post = || {
        Request::post("/orders")
            .body(Body::from("order"))
            .expect("a request")
    };

    let first = client.send("svc", post()).await.expect("the first answer");
    assert_eq!(body_text(first).await, "ok");
    // The connection is idle in the pool. The server closes it and its FIN arrives, but this
    // (single) thread is kept busy, so the runtime has not seen the close when the next
    // request picks the pooled connection: what happens under load when a keep-alive timeout
    // and a reuse cross.
    close.send(()).expect("the server is running");
    while closed.load(Ordering::SeqCst) < 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(50));

    let second = client
        .send("svc", post())
        .await
        .expect("sent on a new connection, not lost on the closed one");
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(body_text(second).await, "ok");
    drop(close);
}

/// A server that answers with a head and the first bytes of a body, then sends nothing more
/// for five seconds. It stops when dropped.
struct StallingServer {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StallingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn spawn_stalling_body() -> StallingServer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let addr = listener.local_addr().expect("the listener's address");
    let task = tokio::spawn(async move {
        let mut held = tokio::task::JoinSet::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            held.spawn(async move {
                let mut received = Vec::new();
                let mut chunk = [0u8; 4096];
                while !received.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => received.extend_from_slice(&chunk[..read]),
                    }
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            content-length: 64\r\n\r\n{\"id\":1,";
                let _ = stream.write_all(head.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            });
        }
    });
    StallingServer { addr, task }
}

#[tokio::test]
async fn the_deadline_covers_the_answers_body() {
    let server = spawn_stalling_body().await;
    let registry = MemoryRegistry::new();
    let _a = register(&registry, "svc", server.addr).await;
    let client =
        ServiceClient::with_config(registry, config().deadline(Duration::from_millis(300)));

    let started = Instant::now();
    let err = client.get_json::<Item>("svc", "/stall").await.unwrap_err();
    assert!(
        matches!(err, ClientError::DeadlineExceeded { .. }),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    // A caller reading the body itself gets the head, then an error at the deadline.
    let started = Instant::now();
    let request = Request::get("/stall")
        .body(Body::empty())
        .expect("a request");
    let response = client.send("svc", request).await.expect("the head arrives");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.into_body().collect_limited(1 << 20).await.is_err());
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

/// The value of the sample `name{labels}` in `text`, the `/metrics` exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn a_dropped_clients_counters_stay_in_the_metrics() {
    let (healthy, _hits) = backend("healthy", StatusCode::OK).await;
    let registry = MemoryRegistry::new();
    let dead = refusing_addr();
    let _dead = register(&registry, "svc", dead.addr).await;
    let _b = register(&registry, "svc", healthy.addr).await;
    let metrics = Arc::new(microkit::metrics::Metrics::new());
    let client = ServiceClient::with_observer(Arc::new(registry), round_robin(), metrics.clone());
    for _ in 0..10 {
        assert_eq!(get_status(&client, "svc", "/x").await, StatusCode::OK);
    }
    let series = [
        r#"client_attempts_total{service="svc"}"#,
        r#"client_retries_total{service="svc"}"#,
        r#"client_calls_total{service="svc",outcome="success"}"#,
    ];
    let before = metrics.encode();
    let counted: Vec<f64> = series
        .iter()
        .map(|s| sample(&before, s).unwrap_or_else(|| panic!("{s} in {before}")))
        .collect();
    assert!(counted[1] >= 1.0, "a retry off the dead instance: {before}");
    drop(client);
    let after = metrics.encode();
    for (s, value) in series.iter().zip(&counted) {
        assert_eq!(
            sample(&after, s),
            Some(*value),
            "{s} after the drop: {after}"
        );
    }
}
