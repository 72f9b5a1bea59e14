//! Store metrics over real sockets: a `Microservice` whose resources keep their records in a
//! [`MeteredStore`] answers creates, reads, lists and a miss, and its `GET /metrics` counts
//! each operation by collection, operation and error type; on PostgreSQL it shows the
//! connection pool too. Against `SqliteStore` (a file in a temp dir) and `PostgresStore` (a
//! fresh database on the server named by `MICROKIT_TEST_POSTGRES`, dropped afterwards;
//! skipped without one unless `CI=true` or `MICROKIT_REQUIRE_SERVICES=1`).

use microkit_test_support as support;

use std::net::SocketAddr;
use std::sync::Arc;

use microkit::http::{Method, StatusCode};
use microkit::metrics::Metrics;
use microkit::resource::store::postgres::PostgresStore;
use microkit::resource::store::sqlite::SqliteStore;
use microkit::resource::store::{MeteredStore, Store};
use microkit::resource::ResourceRoutes;
use microkit::service::Microservice;
use microkit::{Resource, Router};
use serde::{Deserialize, Serialize};
use support::{request, send};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/widget", list_path = "/widgets/", collection = "widgets")]
struct Widget {
    #[resource(id)]
    id: u64,
    name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/gadget", list_path = "/gadgets/", collection = "gadgets")]
struct Gadget {
    #[resource(id)]
    id: u64,
    name: String,
}

/// A running service over a metered `store`, stopped when dropped.
struct Service {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Service {
    async fn start(store: Arc<dyn Store>) -> Self {
        let metrics = Arc::new(Metrics::new());
        let store = MeteredStore::wrap(store, &metrics);
        let router = Router::new()
            .merge(ResourceRoutes::<Widget>::new(store.clone()).router())
            .merge(ResourceRoutes::<Gadget>::new(store).router());
        let service = Microservice::new("widgets", router).metrics(metrics);
        let (addr, stop) = support::run_service(service).await;
        Self { addr, _stop: stop }
    }

    async fn call(&self, method: Method, path: &str, body: &str) -> (StatusCode, String) {
        let mut request = request(method, path, body.to_owned());
        if !body.is_empty() {
            request.headers_mut().insert(
                microkit::http::header::CONTENT_TYPE,
                "application/json".parse().unwrap(),
            );
        }
        let reply = send(self.addr, request).await;
        (reply.status, reply.text())
    }

    async fn metrics(&self) -> String {
        let (status, text) = self.call(Method::GET, "/metrics", "").await;
        assert_eq!(status, StatusCode::OK, "{text}");
        text
    }
}

/// The count of the store histogram series with exactly `labels`, or `None` without one.
fn count(text: &str, labels: &str) -> Option<u64> {
    let prefix = format!("db_client_operation_duration_seconds_count{{{labels}}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|value| value.parse().expect("an integer count"))
}

/// The value of the gauge sample `name{labels}`.
fn gauge(text: &str, name: &str, labels: &str) -> f64 {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix}in\n{text}"))
        .parse()
        .expect("a number")
}

/// Three widget creates, two reads, a miss, two lists and a gadget create, then checks the
/// counts `/metrics` shows for `system`.
async fn operations_are_counted(store: Arc<dyn Store>, system: &str) -> Service {
    let service = Service::start(store).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let (status, body) = service
            .call(Method::POST, "/widget/", &format!(r#"{{"name":"{name}"}}"#))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let created: serde_json::Value = serde_json::from_str(&body).unwrap();
        ids.push(created["id"].as_u64().unwrap());
    }
    for id in &ids[..2] {
        let (status, body) = service
            .call(Method::GET, &format!("/widget/{id}"), "")
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = service.call(Method::GET, "/widget/999999", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    for _ in 0..2 {
        let (status, body) = service.call(Method::GET, "/widgets/", "").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = service
        .call(Method::POST, "/gadget/", r#"{"name":"g"}"#)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let text = service.metrics().await;
    let widgets = format!(r#"db_system_name="{system}",db_collection_name="widgets""#);
    let gadgets = format!(r#"db_system_name="{system}",db_collection_name="gadgets""#);
    let of = |collection: &str, rest: &str| count(&text, &format!("{collection},{rest}"));
    assert_eq!(
        of(&widgets, r#"db_operation_name="create""#),
        Some(3),
        "{text}"
    );
    assert_eq!(
        of(&widgets, r#"db_operation_name="get""#),
        Some(2),
        "{text}"
    );
    assert_eq!(
        of(
            &widgets,
            r#"db_operation_name="get",error_type="not_found""#
        ),
        Some(1),
        "{text}"
    );
    assert_eq!(
        of(&widgets, r#"db_operation_name="list""#),
        Some(2),
        "{text}"
    );
    assert_eq!(
        of(&gadgets, r#"db_operation_name="create""#),
        Some(1),
        "{text}"
    );
    // Nothing failed but the miss, and nothing was done that was not asked.
    let failed = text.lines().filter(|line| {
        line.starts_with("db_client_operation_duration_seconds_count{")
            && line.contains("error_type=")
    });
    assert_eq!(failed.count(), 1, "{text}");
    assert_eq!(of(&gadgets, r#"db_operation_name="get""#), None, "{text}");
    assert!(
        text.contains("# TYPE db_client_operation_duration_seconds histogram"),
        "{text}"
    );
    // Every bucket line of a series is cumulative and ends with its count at +Inf.
    let inf = format!(r#"{widgets},db_operation_name="create",le="+Inf"}} 3"#);
    assert!(text.contains(&inf), "{text}");

    // Scraped as OpenMetrics, the histogram links buckets to the traces of the requests
    // that caused the operations.
    let mut scrape = request(Method::GET, "/metrics", "");
    scrape.headers_mut().insert(
        microkit::http::header::ACCEPT,
        "application/openmetrics-text; version=1.0.0"
            .parse()
            .unwrap(),
    );
    let open = send(service.addr, scrape).await.text();
    let exemplar = open.lines().any(|line| {
        line.starts_with("db_client_operation_duration_seconds_bucket{")
            && line.contains(r#"db_operation_name="create""#)
            && line.contains("# {trace_id=\"")
    });
    assert!(exemplar, "{open}");
    service
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_operations_are_counted_by_collection_operation_and_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("widgets.db")).unwrap();
    let service = operations_are_counted(Arc::new(store), "sqlite").await;
    // SQLite has no connection pool to show.
    let text = service.metrics().await;
    assert!(!text.contains("db_client_connection_max{"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_operations_and_pool_are_shown() {
    support::database::with_postgres_database("store_metrics", |url| async move {
        let store = PostgresStore::connect_with(&url, 4).await.unwrap();
        let service = operations_are_counted(Arc::new(store), "postgresql").await;
        let text = service.metrics().await;
        let pool = r#"db_client_connection_pool_name="postgresql""#;
        assert_eq!(gauge(&text, "db_client_connection_max", pool), 4.0);
        // At rest every open connection is idle, and nothing waits.
        let idle = gauge(
            &text,
            "db_client_connection_count",
            &format!(r#"{pool},db_client_connection_state="idle""#),
        );
        let used = gauge(
            &text,
            "db_client_connection_count",
            &format!(r#"{pool},db_client_connection_state="used""#),
        );
        assert!((1.0..=4.0).contains(&idle), "{text}");
        assert_eq!(used, 0.0, "{text}");
        assert_eq!(
            gauge(&text, "db_client_connection_pending_requests", pool),
            0.0
        );
        // Every operation took a connection from the pool, and the wait was timed.
        let waits = gauge(&text, "db_client_connection_wait_time_seconds_count", pool);
        let operations: f64 = text
            .lines()
            .filter(|line| line.starts_with("db_client_operation_duration_seconds_count{"))
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum();
        assert!(operations >= 9.0 && waits >= operations, "{text}");
    })
    .await;
}
