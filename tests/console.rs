//! `/metrics` and the console over real sockets: what a service and a gateway expose after
//! real traffic, in both text formats, and who may read it.

use microkit_test_support as support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use microkit::client::{Balance, ClientConfig, ServiceClient};
use microkit::discovery::{MemoryRegistry, Registry};
use microkit::gateway::{Gateway, Network, GATEWAY_MARK};
use microkit::http::{header, Method, StatusCode};
use microkit::metrics::Metrics;
use microkit::router::{get, post};
use microkit::service::Microservice;
use microkit::{Problem, Router};
use serde_json::Value;
use support::{get as get_path, request, send, PATIENCE};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A caller's trace context, and its trace id.
const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A service run for a test, stopped when dropped.
struct Running {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn app() -> Router {
    Router::new()
        .route("/item/{id}", get(|| async { "an item" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                "slow"
            }),
        )
        .route(
            "/broken",
            get(|| async { Problem::new(StatusCode::SERVICE_UNAVAILABLE).with_detail("down") }),
        )
        .route(
            "/upload",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
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
        _stop: stop,
        task,
    }
}

/// Waits until `service` lists `count` instances in `registry`.
async fn registered(registry: &Arc<MemoryRegistry>, service: &str, count: usize) {
    let mut watch = registry.watch(service).await.expect("a watch");
    tokio::time::timeout(PATIENCE, watch.wait_for(|list| list.len() == count))
        .await
        .expect("registered in time")
        .expect("the watch");
}

/// The value of the sample line starting with `prefix` (name and labels, exactly).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(prefix)?.strip_prefix(' '))
        .map(|value| {
            let value = value.split(" # ").next().unwrap_or(value);
            value.trim().parse().expect("a number")
        })
}

#[tokio::test]
async fn a_service_exposes_otel_histograms_gauges_and_rejections() {
    let registry = Arc::new(MemoryRegistry::new());
    let metrics = Arc::new(Metrics::new());
    let service = run(Microservice::new("catalog", app())
        .registry(registry.clone())
        .metrics(metrics.clone())
        .config(microkit::ServerConfig::default().body_limit(16)))
    .await;
    for path in ["/item/1", "/item/2", "/slow", "/broken", "/nowhere/at/all"] {
        get_path(service.addr, path).await;
    }
    let too_large = send(
        service.addr,
        request(Method::POST, "/upload", vec![b'x'; 64]),
    )
    .await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A made-up method counts as `_OTHER`.
    send(
        service.addr,
        request(
            Method::from_bytes(b"BREW").unwrap(),
            "/item/1",
            Bytes::new(),
        ),
    )
    .await;

    // One connection stays open while the metrics are read.
    let mut open = support::Http1Conn::open(service.addr).await;
    let reply = open
        .send(request(Method::GET, "/metrics", Bytes::new()))
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = reply.text();
    let histogram = "http_server_request_duration_seconds";
    let item =
        r#"http_request_method="GET",http_route="/item/{id}",http_response_status_code="200""#;
    assert_eq!(
        sample(&text, &format!("{histogram}_count{{{item}}}")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("{histogram}_bucket{{{item},le=\"+Inf\"}}")),
        Some(2.0)
    );
    // OpenTelemetry's advised bounds, all of them.
    for le in [
        "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5",
        "5.0", "7.5", "10.0",
    ] {
        assert!(
            sample(&text, &format!("{histogram}_bucket{{{item},le=\"{le}\"}}")).is_some(),
            "no bucket le={le}:\n{text}"
        );
    }
    // The slow route took at least 30 ms: nothing in the buckets below.
    let slow = r#"http_request_method="GET",http_route="/slow",http_response_status_code="200""#;
    assert_eq!(
        sample(&text, &format!("{histogram}_bucket{{{slow},le=\"0.025\"}}")),
        Some(0.0)
    );
    assert!(sample(&text, &format!("{histogram}_sum{{{slow}}}")).unwrap() >= 0.03);
    for series in [
        r#"http_request_method="GET",http_route="/broken",http_response_status_code="503""#,
        r#"http_request_method="GET",http_route="unmatched",http_response_status_code="404""#,
        r#"http_request_method="POST",http_route="/upload",http_response_status_code="413""#,
        r#"http_request_method="_OTHER",http_route="unmatched",http_response_status_code="405""#,
    ] {
        assert_eq!(
            sample(&text, &format!("{histogram}_count{{{series}}}")),
            Some(1.0),
            "{series}\n{text}"
        );
    }
    assert!(!text.contains("BREW"), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"http_server_rejections_total{reason="body_limit"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"http_server_rejections_total{reason="timeout"}"#),
        Some(0.0)
    );
    // The scrape itself is in flight, on the connection held open.
    assert_eq!(
        sample(&text, "http_server_active_requests"),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "http_server_open_connections").unwrap() >= 1.0,
        "{text}"
    );
    assert!(text.contains("# TYPE http_server_request_duration_seconds histogram"));
    assert!(!text.contains("# EOF"));
    drop(open);

    // OpenMetrics when the scraper asks for it, as Prometheus does, with the trace of a
    // request in its bucket.
    let mut traced = request(Method::GET, "/slow", Bytes::new());
    traced
        .headers_mut()
        .insert("traceparent", TRACE.parse().unwrap());
    send(service.addr, traced).await;
    let mut scrape = request(Method::GET, "/metrics", Bytes::new());
    scrape.headers_mut().insert(
        header::ACCEPT,
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1".parse().unwrap(),
    );
    let reply = send(service.addr, scrape).await;
    assert_eq!(
        reply.header("content-type"),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = reply.text();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let exemplar = text
        .lines()
        .find(|line| {
            line.starts_with(&format!("{histogram}_bucket{{{slow},"))
                && line.contains(&format!(" # {{trace_id=\"{TRACE_ID}\",span_id=\""))
        })
        .unwrap_or_else(|| panic!("no exemplar of the traced request:\n{text}"));
    // The span is the request's server span: a new one, whose parent is the caller's.
    let span_id = exemplar.split("span_id=\"").nth(1).unwrap();
    let span_id = &span_id[..span_id.find('"').unwrap()];
    assert!(
        span_id.len() == 16 && span_id != "00f067aa0ba902b7",
        "{exemplar}"
    );
    // `… le="0.05"} 2 # {trace_id="…",span_id="…"} 0.031 1764374400.123`: its value is the
    // duration.
    let value: f64 = exemplar.split(' ').nth_back(1).unwrap().parse().unwrap();
    assert!(value >= 0.03, "{exemplar}");
    // Prometheus' own format has no exemplars.
    assert!(!get_path(service.addr, "/metrics")
        .await
        .text()
        .contains("trace_id"));
    assert!(text.contains("# TYPE http_requests counter\n"), "{text}");
    assert!(
        text.contains("# TYPE http_server_rejections counter\n"),
        "{text}"
    );
    drop(registry);
}

#[tokio::test]
async fn the_console_data_of_a_service_shows_itself_its_routes_and_problems() {
    let registry = Arc::new(MemoryRegistry::new());
    let service = run(Microservice::new("catalog", app()).registry(registry.clone())).await;
    registered(&registry, "catalog", 1).await;
    for _ in 0..5 {
        get_path(service.addr, "/item/1").await;
    }
    let mut broken = request(Method::GET, "/broken", Bytes::new());
    broken
        .headers_mut()
        .insert("x-request-id", "req-broken-1".parse().unwrap());
    broken
        .headers_mut()
        .insert("traceparent", TRACE.parse().unwrap());
    assert_eq!(
        send(service.addr, broken).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let reply = get_path(service.addr, "/console/data").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.header("cache-control"), "no-store");
    let data = reply.json();
    assert_eq!(data["name"], "catalog");
    assert_eq!(data["slot_seconds"], 10);
    let own = &data["server"]["instance"];
    assert_eq!(own["address"], service.addr.to_string());
    assert_eq!(own["health"], "up");
    let since = own["registered_since_ms"]
        .as_u64()
        .expect("a registration time");
    let now = data["now_ms"].as_u64().unwrap();
    assert!(since <= now && now - since < 60_000, "{since} {now}");
    assert!(data["server"]["open_connections"].as_i64().unwrap() >= 1);

    let route = find(&data["routes"], "route", "/item/{id}");
    assert_eq!(route["method"], "GET");
    assert_eq!(route["requests"], 5);
    assert_eq!(route["errors"], 0);
    assert!(route["p50_ms"].as_f64().unwrap() > 0.0);
    assert!(route["p99_ms"].as_f64().unwrap() >= route["p50_ms"].as_f64().unwrap());
    let points = route["points"].as_array().unwrap();
    assert_eq!(points.len(), 30, "five minutes of 10 s points");
    assert_eq!(
        points
            .iter()
            .map(|p| p["requests"].as_u64().unwrap())
            .sum::<u64>(),
        5
    );
    let broken = find(&data["routes"], "route", "/broken");
    assert_eq!(
        (broken["requests"].as_u64(), broken["errors"].as_u64()),
        (Some(1), Some(1))
    );

    let problem = &data["problems"][0];
    assert_eq!(problem["status"], 503);
    assert_eq!(problem["route"], "/broken");
    assert_eq!(problem["path"], "/broken");
    assert_eq!(problem["request_id"], "req-broken-1");
    assert_eq!(problem["trace_id"], TRACE_ID);

    // The page and its script ship in the crate.
    let page = get_path(service.addr, "/console").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page
        .header("content-security-policy")
        .contains("script-src 'self'"));
    assert!(page
        .text()
        .contains("<script src=\"console/console.js\"></script>"));
    let script = get_path(service.addr, "/console/console.js").await;
    assert!(script.header("content-type").starts_with("text/javascript"));
    assert!(script.text().contains("console/data"));
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|item| item[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value} in {list:#}"))
}

#[tokio::test]
async fn operators_only_others_get_403_problems() {
    let registry = Arc::new(MemoryRegistry::new());
    // Loopback is not among the operator's networks here.
    let service = run(Microservice::new("catalog", app())
        .registry(registry)
        .operator_networks(["10.0.0.0/8".parse::<Network>().unwrap()]))
    .await;
    for path in [
        "/metrics",
        "/console",
        "/console/data",
        "/console/console.js",
    ] {
        let reply = get_path(service.addr, path).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(reply.header("content-type"), "application/problem+json");
        assert_eq!(reply.json()["status"], 403);
    }
    // The application's routes are not affected.
    assert_eq!(
        get_path(service.addr, "/item/1").await.status,
        StatusCode::OK
    );

    // By default loopback may read them, but not through the gateway.
    let open = run(Microservice::new("catalog", app())).await;
    assert_eq!(
        get_path(open.addr, "/console/data").await.status,
        StatusCode::OK
    );
    let mut forwarded = request(Method::GET, "/console/data", Bytes::new());
    forwarded
        .headers_mut()
        .insert(GATEWAY_MARK, "1".parse().unwrap());
    assert_eq!(
        send(open.addr, forwarded).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_gateway_console_lists_every_instance_with_health_and_counts() {
    let registry = Arc::new(MemoryRegistry::new());
    let catalogs = [
        run(Microservice::new("catalog", app()).registry(registry.clone())).await,
        run(Microservice::new("catalog", app()).registry(registry.clone())).await,
    ];
    let users = run(Microservice::new("users", app()).registry(registry.clone())).await;
    registered(&registry, "catalog", 2).await;
    registered(&registry, "users", 1).await;
    let metrics = Arc::new(Metrics::new());
    let client = ServiceClient::with_observer(
        registry.clone(),
        // Round robin, so that both instances see traffic (peak EWMA favours the faster).
        ClientConfig::default().balance(Balance::RoundRobin),
        metrics.clone(),
    );
    let edge = Gateway::new(client)
        .metrics(metrics.clone())
        .route("/item/{id}", "catalog")
        .route("/broken", "catalog")
        .route("/users/{id}", "users")
        .into_router();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = listener.local_addr().unwrap();
    let server = tokio::spawn(std::future::IntoFuture::into_future(
        microkit::serve(listener, edge).metrics(metrics),
    ));

    // Before any call, the routed services and their instances show, healthy.
    let data = get_path(gateway, "/console/data").await.json();
    assert_eq!(data["name"], "gateway");
    let catalog = find(&data["services"], "name", "catalog");
    assert_eq!(catalog["instances"].as_array().unwrap().len(), 2);
    for instance in catalog["instances"].as_array().unwrap() {
        assert_eq!(instance["health"], "up", "{instance}");
        assert_eq!(instance["ejected"], false);
        assert_eq!(instance["attempts"], 0);
    }
    find(&data["services"], "name", "users");

    for n in 0..40 {
        assert_eq!(
            get_path(gateway, &format!("/item/{n}")).await.status,
            StatusCode::OK
        );
    }
    get_path(gateway, "/broken").await;
    let data = get_path(gateway, "/console/data").await.json();
    let catalog = find(&data["services"], "name", "catalog");
    let mut attempts = 0;
    for instance in catalog["instances"].as_array().unwrap() {
        let count = instance["attempts"].as_u64().unwrap();
        assert!(count > 0, "every instance got traffic: {instance}");
        assert!(instance["ewma_ms"].as_f64().unwrap() > 0.0, "{instance}");
        assert!(instance["registered_since_ms"].as_u64().is_some());
        attempts += count;
    }
    // The 503 was retried on the other instance: idempotent, and the budget allows it.
    assert_eq!(attempts, catalog["attempts"].as_u64().unwrap());
    assert!(catalog["retries"].as_u64().unwrap() >= 1, "{catalog}");
    assert_eq!(attempts, 41 + catalog["retries"].as_u64().unwrap());
    let route = find(&data["routes"], "route", "/item/{id}");
    assert_eq!(route["requests"], 40);
    let problem = find(&data["problems"], "route", "/broken");
    assert_eq!(problem["status"], 503);
    assert!(
        problem["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "the gateway's id"
    );

    let text = get_path(gateway, "/metrics").await.text();
    assert_eq!(
        sample(&text, r#"client_attempts_total{service="catalog"}"#),
        Some(attempts as f64),
        "{text}"
    );
    assert!(sample(&text, r#"client_retries_total{service="catalog"}"#).unwrap() >= 1.0);
    assert_eq!(
        sample(
            &text,
            r#"client_calls_total{service="catalog",outcome="success"}"#
        ),
        Some(40.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"client_call_duration_seconds_count{service="catalog"}"#
        ),
        Some(41.0)
    );
    for running in &catalogs {
        let address = running.addr;
        assert!(
            sample(&text, &format!("client_instance_latency_ewma_seconds{{service=\"catalog\",address=\"{address}\"}}")).unwrap() > 0.0,
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                &format!("client_instance_ejected{{service=\"catalog\",address=\"{address}\"}}")
            ),
            Some(0.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!("client_instance_in_flight{{service=\"catalog\",address=\"{address}\"}}")
            ),
            Some(0.0)
        );
    }
    assert!(sample(&text, "client_retry_budget_exhausted_total").is_some());

    // An instance that stops answering reads as down while it is still registered.
    let [first, second] = catalogs;
    let gone = first.addr;
    first.task.abort();
    drop(first);
    let data = get_path(gateway, "/console/data").await.json();
    let catalog = find(&data["services"], "name", "catalog");
    let health: Vec<(String, String)> = catalog["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["address"].as_str().unwrap().to_owned(),
                i["health"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (address, state) in &health {
        let expected = if *address == gone.to_string() {
            "down"
        } else {
            "up"
        };
        assert_eq!(state, expected, "{health:?}");
    }
    drop((second, users));
    server.abort();
}
