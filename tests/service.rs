//! The microservice builder's contract: it registers once listening, answers `/health` and
//! Prometheus `/metrics` (requests served and calls made), and shuts down in order:
//! deregister, then close the listener and drain, so that a rolling restart loses nothing.

use microkit_test_support as support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use microkit::client::{ClientConfig, ServiceClient};
use microkit::discovery::{MemoryRegistry, Registry};
use microkit::http::{Method, StatusCode};
use microkit::metrics::Metrics;
use microkit::middleware::RequestId;
use microkit::router::get;
use microkit::service::Microservice;
use microkit::{Body, Request, Router, ServerConfig};
use support::cluster::{eventually, start_load, Hits};
use support::{get as get_path, PATIENCE};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

/// A running service and the means to stop it.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Sends the shutdown signal.
    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for `run` to return, which it must do without error.
    async fn finished(self) {
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the service returned in time")
            .expect("the service task")
            .expect("the service ran without error");
    }
}

async fn run(service: Microservice) -> Running {
    let bound = service.bind().await.expect("binding");
    let addr = bound.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(bound.run(async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

/// The addresses registered for `service` now.
async fn registered(registry: &MemoryRegistry, service: &str) -> Vec<SocketAddr> {
    registry
        .resolve(service)
        .await
        .expect("a memory registry resolves")
        .iter()
        .map(|instance| instance.addr)
        .collect()
}

async fn wait_registered(registry: &MemoryRegistry, service: &str, addr: SocketAddr) {
    let mut watch = registry.watch(service).await.expect("a watch");
    let waiting = async {
        while !watch.borrow_and_update().iter().any(|i| i.addr == addr) {
            watch.changed().await.expect("the registry lives");
        }
    };
    tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("the service registered in time");
}

#[tokio::test]
async fn once_register_returns_peers_find_the_instance_without_waiting() {
    let registry = Arc::new(MemoryRegistry::new());
    let router = Router::new().route("/x", get(|| async { "x" }));
    let registered_service = Microservice::new("catalog", router)
        .registry(registry.clone())
        .bind()
        .await
        .expect("binding")
        .register()
        .await
        .expect("registering");
    let addr = registered_service.local_addr();
    assert_eq!(registered(&registry, "catalog").await, vec![addr]);
    let (stop, stopped) = oneshot::channel::<()>();
    let service = Running {
        addr,
        stop: Some(stop),
        task: tokio::spawn(registered_service.run(async move {
            let _ = stopped.await;
        })),
    };
    let client = ServiceClient::new(registry.clone());
    let answer = client
        .send(
            "catalog",
            Request::get("/x").body(Body::empty()).expect("a request"),
        )
        .await
        .expect("the first call finds the instance");
    assert_eq!(answer.status(), StatusCode::OK);
    let mut service = service;
    service.shut_down();
    service.finished().await;
    assert!(
        registered(&registry, "catalog").await.is_empty(),
        "deregistered on shutdown"
    );
}

/// A service names every request (keeping the caller's name), its handler sees that name, and
/// its metrics count the request under its route.
#[tokio::test]
async fn every_request_is_named_for_its_handler_and_counted() {
    let router = Router::new().route(
        "/id",
        get(|id: RequestId| async move { id.as_str().to_owned() }),
    );
    let mut service = run(Microservice::new("catalog", router)).await;
    let unnamed = get_path(service.addr, "/id").await;
    assert_eq!(unnamed.status, StatusCode::OK);
    let id = unnamed.header("x-request-id");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "a generated id: {id}");
    assert_eq!(
        unnamed.text(),
        id,
        "the handler saw the id it was answered with"
    );
    let mut named = support::request(Method::GET, "/id", Bytes::new());
    named
        .headers_mut()
        .insert("x-request-id", "order-7".parse().unwrap());
    let named = support::send(service.addr, named).await;
    assert_eq!(
        (named.header("x-request-id"), named.text().as_str()),
        ("order-7", "order-7")
    );
    let text = get_path(service.addr, "/metrics").await.text();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/id",status="200"} 2"#),
        "{text}"
    );
    service.shut_down();
    service.finished().await;
}

#[tokio::test]
async fn it_registers_once_listening_and_reports_health_and_metrics() {
    let registry = Arc::new(MemoryRegistry::new());
    let metrics = Arc::new(Metrics::new());
    let router = Router::new().route("/x", get(|| async { "x" }));
    let bound = Microservice::new("catalog", router)
        .registry(registry.clone())
        .metrics(metrics.clone())
        .bind()
        .await
        .expect("binding");
    let addr = bound.local_addr();
    assert!(
        registered(&registry, "catalog").await.is_empty(),
        "not before it runs"
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let mut service = Running {
        addr,
        stop: Some(stop),
        task: tokio::spawn(bound.run(async move {
            let _ = stopped.await;
        })),
    };
    wait_registered(&registry, "catalog", addr).await;
    assert_eq!(registered(&registry, "catalog").await, [addr]);

    let health = get_path(service.addr, "/health").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.header("content-type"), "application/json");
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(health.json()["service"], "catalog");

    assert_eq!(get_path(service.addr, "/x").await.status, StatusCode::OK);
    let text = get_path(service.addr, "/metrics").await.text();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/x",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("http_server_request_duration_seconds_bucket"),
        "{text}"
    );

    // The service's own client, reporting to the same metrics.
    let client =
        ServiceClient::with_observer(registry.clone(), ClientConfig::default(), metrics.clone());
    client
        .call::<()>(Method::GET, "catalog", "/x", None)
        .await
        .expect("a call");
    client
        .call::<()>(Method::GET, "catalog", "/missing", None)
        .await
        .unwrap_err();
    client
        .call::<()>(Method::GET, "ghost", "/x", None)
        .await
        .unwrap_err();
    let text = get_path(service.addr, "/metrics").await.text();
    for line in [
        r#"client_calls_total{service="catalog",outcome="success"} 1"#,
        r#"client_calls_total{service="catalog",outcome="client_error"} 1"#,
        r#"client_calls_total{service="ghost",outcome="no_instances"} 1"#,
        r#"http_requests_total{method="GET",route="/x",status="200"} 2"#,
        r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(
        text.contains(r#"client_call_duration_seconds_count{service="catalog"} 2"#),
        "{text}"
    );

    service.shut_down();
    service.finished().await;
    assert!(
        registered(&registry, "catalog").await.is_empty(),
        "deregistered on shutdown"
    );
}

#[tokio::test]
async fn shutdown_deregisters_first_then_closes_the_listener_then_drains() {
    let registry = Arc::new(MemoryRegistry::new());
    let slow_started = Arc::new(Notify::new());
    let started = slow_started.clone();
    let router = Router::new().route(
        "/slow",
        get(move || {
            let started = started.clone();
            async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_millis(1200)).await;
                "done"
            }
        }),
    );
    let mut service = run(Microservice::new("orders", router)
        .registry(registry.clone())
        .deregistration_grace(Duration::from_millis(300))
        .config(ServerConfig::default().shutdown_timeout(Duration::from_secs(3))))
    .await;
    let addr = service.addr;
    wait_registered(&registry, "orders", addr).await;

    let slow = tokio::spawn(async move { get_path(addr, "/slow").await });
    tokio::time::timeout(PATIENCE, slow_started.notified())
        .await
        .expect("the slow request started");
    service.shut_down();

    let mut watch = registry.watch("orders").await.expect("a watch");
    tokio::time::timeout(PATIENCE, async {
        while !watch.borrow_and_update().is_empty() {
            watch.changed().await.expect("the registry lives");
        }
    })
    .await
    .expect("deregistered in time");
    // Deregistered, and still listening: peers that have not heard yet are still served.
    assert!(
        !slow.is_finished(),
        "deregistered while the slow request runs"
    );
    assert_eq!(get_path(addr, "/health").await.status, StatusCode::OK);

    // Then the listener closes, while the slow request still drains.
    let closed = async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, closed)
        .await
        .expect("the listener closed");
    assert!(
        !slow.is_finished(),
        "the listener closed before draining ended"
    );

    let reply = tokio::time::timeout(PATIENCE, slow)
        .await
        .expect("the slow request finished")
        .expect("its task");
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "done");
    service.finished().await;
}

fn counting_router(hits: Hits) -> Router {
    Router::new().route(
        "/x",
        get(move || {
            let hits = hits.clone();
            async move {
                hits.hit();
                "x"
            }
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_fails_no_request() {
    const TOTAL: usize = 6000;
    let registry = Arc::new(MemoryRegistry::new());
    let instance = |hits: Hits| {
        Microservice::new("svc", counting_router(hits))
            .registry(registry.clone())
            .deregistration_grace(Duration::from_millis(200))
    };
    let (old_hits, steady_hits, new_hits) = (Hits::default(), Hits::default(), Hits::default());
    let mut old = run(instance(old_hits.clone())).await;
    let steady = run(instance(steady_hits.clone())).await;
    wait_registered(&registry, "svc", old.addr).await;
    wait_registered(&registry, "svc", steady.addr).await;

    let client = ServiceClient::with_config(registry.clone(), ClientConfig::default());
    let load = start_load(TOTAL, 8, move |_| {
        let client = client.clone();
        async move {
            // Paced, so that the load outlasts the restart by a wide margin.
            tokio::time::sleep(Duration::from_millis(1)).await;
            let request = Request::get("/x").body(Body::empty()).expect("a request");
            let response = client
                .send("svc", request)
                .await
                .map_err(|e| e.to_string())?;
            (response.status() == StatusCode::OK)
                .then_some(())
                .ok_or_else(|| response.status().to_string())
        }
    });
    load.reached(500).await;

    old.shut_down();
    old.finished().await;
    let replacement = run(instance(new_hits.clone())).await;
    wait_registered(&registry, "svc", replacement.addr).await;
    let restarted_at = load.completed();
    assert!(
        restarted_at < TOTAL - 500,
        "the restart happened under load ({restarted_at})"
    );
    eventually("the new instance takes traffic", || new_hits.get() > 0).await;

    let report = load.finish().await;
    assert_eq!(
        report.failed, 0,
        "failures during the restart: {:?}",
        report.errors
    );
    assert!(old_hits.get() > 0 && steady_hits.get() > 0);
    let mut remaining = registered(&registry, "svc").await;
    remaining.sort();
    let mut expected = vec![steady.addr, replacement.addr];
    expected.sort();
    assert_eq!(
        remaining, expected,
        "the old instance is gone, the new one registered"
    );
}
