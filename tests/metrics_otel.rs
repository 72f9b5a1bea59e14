//! Metrics over OTLP end to end: a `Microservice` on 127.0.0.1 keeps its widgets in a metered
//! SQLite store and exports its [`Metrics`] with `microkit::metrics::otel`, configured only by
//! `OTEL_*` variables, to a real OTLP/HTTP receiver on 127.0.0.1 (a hyper server decoding the
//! protobuf export, as a collector takes it). What real requests did arrives there under the
//! OpenTelemetry conventions' names; switched off, nothing is sent.
//!
//! `cargo test --features otel --test metrics_otel`
#![cfg(feature = "otel")]

use microkit_test_support as support;

#[path = "common/otlp_receiver.rs"]
mod otlp_receiver;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use microkit::http::{Method, StatusCode};
use microkit::metrics::Metrics;
use microkit::resource::store::sqlite::SqliteStore;
use microkit::resource::store::MeteredStore;
use microkit::resource::ResourceRoutes;
use microkit::service::Microservice;
use microkit::{Resource, Router};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, AggregationTemporality, HistogramDataPoint, Metric,
};
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/widget", list_path = "/widgets/", collection = "widgets")]
struct Widget {
    #[resource(id)]
    id: u64,
    name: String,
}

/// The environment is the process': one test at a time sets it and exports.
static ENVIRONMENT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every `OTEL_*` variable a test here sets, cleared before the next one sets its own.
const VARIABLES: [&str; 7] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_METRICS_EXPORTER",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
];

fn set_environment(vars: &[(&str, String)]) {
    otlp_receiver::set_environment(&VARIABLES, vars);
}

/// What the receiver got: every export it took, how many requests of any kind came, and how
/// many of them were gzip-compressed.
#[derive(Default)]
struct Received {
    exports: Mutex<Vec<ExportMetricsServiceRequest>>,
    requests: AtomicUsize,
    gzipped: AtomicUsize,
}

/// An OTLP/HTTP receiver: `POST /v1/metrics` with `application/x-protobuf` (gzip-compressed
/// when it says so) and the header `x-api-key: secret`. With `refuse_first`, it refuses the
/// first export with a 503, as a collector starting up would; anything else is a 400.
async fn receiver(refuse_first: bool) -> (SocketAddr, Arc<Received>) {
    let received = Arc::new(Received::default());
    let store = received.clone();
    let addr = otlp_receiver::start(move |head, body| {
        let first = store.requests.fetch_add(1, Ordering::SeqCst) == 0;
        let keyed = head
            .headers
            .get("x-api-key")
            .is_some_and(|value| value == "secret");
        let wanted = keyed && otlp_receiver::is_export(&head, "/v1/metrics");
        let gzipped = head
            .headers
            .get("content-encoding")
            .is_some_and(|value| value == "gzip");
        let body = if gzipped {
            store.gzipped.fetch_add(1, Ordering::SeqCst);
            let mut plain = Vec::new();
            let mut decoder = flate2::read::GzDecoder::new(&body[..]);
            match std::io::Read::read_to_end(&mut decoder, &mut plain) {
                Ok(_) => Bytes::from(plain),
                Err(_) => return (400, Vec::new()),
            }
        } else {
            body
        };
        match ExportMetricsServiceRequest::decode(body) {
            Ok(_) if first && refuse_first => (503, Vec::new()),
            Ok(export) if wanted => {
                store.exports.lock().unwrap().push(export);
                (200, ExportMetricsServiceResponse::default().encode_to_vec())
            }
            _ => (400, Vec::new()),
        }
    })
    .await;
    (addr, received)
}

/// The widgets service over a metered SQLite store, stopped when dropped.
struct Service {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    _stop: oneshot::Sender<()>,
    _data: tempfile::TempDir,
}

impl Service {
    async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(data.path().join("widgets.db")).unwrap();
        let metrics = Arc::new(Metrics::new());
        let store = MeteredStore::wrap(Arc::new(sqlite), &metrics);
        let router = Router::new().merge(ResourceRoutes::<Widget>::new(store).router());
        let service = Microservice::new("widgets", router).metrics(metrics.clone());
        let (addr, stop) = support::run_service(service).await;
        Self {
            addr,
            metrics,
            _stop: stop,
            _data: data,
        }
    }

    async fn call(&self, method: Method, path: &str, body: &str) -> StatusCode {
        let mut request = support::request(method, path, body.to_owned());
        if !body.is_empty() {
            request.headers_mut().insert(
                microkit::http::header::CONTENT_TYPE,
                support::value("application/json"),
            );
        }
        support::send(self.addr, request).await.status
    }

    /// Three creates, two reads, a miss.
    async fn traffic(&self) {
        for name in ["a", "b", "c"] {
            let body = format!(r#"{{"name":"{name}"}}"#);
            let status = self.call(Method::POST, "/widget/", &body).await;
            assert_eq!(status, StatusCode::CREATED);
        }
        for _ in 0..2 {
            assert_eq!(
                self.call(Method::GET, "/widget/1", "").await,
                StatusCode::OK
            );
        }
        let status = self.call(Method::GET, "/widget/999999", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

/// A string or integer attribute as text, or `""`.
fn attribute(attributes: &[KeyValue], key: &str) -> String {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(text) => Some(text.clone()),
            any_value::Value::IntValue(number) => Some(format!("int:{number}")),
            _ => None,
        })
        .unwrap_or_default()
}

/// Every metric named `name` in `export`.
fn metric<'a>(export: &'a ExportMetricsServiceRequest, name: &str) -> Option<&'a Metric> {
    export
        .resource_metrics
        .iter()
        .flat_map(|resource| &resource.scope_metrics)
        .flat_map(|scope| &scope.metrics)
        .find(|metric| metric.name == name)
}

/// The histogram points of `metric`, checked to be cumulative.
fn histogram_points(metric: &Metric) -> &[HistogramDataPoint] {
    let Some(metric::Data::Histogram(histogram)) = &metric.data else {
        panic!("not a histogram: {metric:?}")
    };
    assert_eq!(
        histogram.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    &histogram.data_points
}

/// The point of `points` whose attributes include every `(key, value)` of `wanted`.
fn point<'a>(points: &'a [HistogramDataPoint], wanted: &[(&str, &str)]) -> &'a HistogramDataPoint {
    let found: Vec<_> = points
        .iter()
        .filter(|point| {
            wanted
                .iter()
                .all(|(key, value)| attribute(&point.attributes, key) == *value)
        })
        .collect();
    assert_eq!(found.len(), 1, "one point with {wanted:?} in {points:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_requests_reach_an_otlp_receiver_under_the_conventions_names() {
    let _environment = ENVIRONMENT.lock().await;
    let (collector, received) = receiver(true).await;
    set_environment(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}")),
        (
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
            "x-api-key=secret".into(),
        ),
        ("OTEL_SERVICE_NAME", "widgets-under-test".into()),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test".into(),
        ),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200".into()),
    ]);
    let service = Service::start().await;
    let exporter = microkit::metrics::otel::export(service.metrics.clone()).expect("set up");
    assert!(exporter.is_enabled());
    service.traffic().await;

    // The periodic export brings them, the first one refused (503) and the next taken: no
    // flush here, the interval alone.
    let started = Instant::now();
    let export = loop {
        let latest = received.exports.lock().unwrap().last().cloned();
        let complete = latest.as_ref().and_then(|export| {
            let duration = metric(export, "http.server.request.duration")?;
            let served: u64 = histogram_points(duration).iter().map(|p| p.count).sum();
            (served >= 6).then_some(())
        });
        if let (Some(export), Some(())) = (latest, complete) {
            break export;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no complete export after {} requests to the receiver",
            received.requests.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        received.requests.load(Ordering::SeqCst) >= 2,
        "retried after the 503"
    );

    let resource = export.resource_metrics[0].resource.as_ref().unwrap();
    assert_eq!(
        attribute(&resource.attributes, "service.name"),
        "widgets-under-test"
    );
    assert_eq!(
        attribute(&resource.attributes, "deployment.environment.name"),
        "test"
    );

    let duration = metric(&export, "http.server.request.duration").unwrap();
    assert_eq!(duration.unit, "s");
    let points = histogram_points(duration);
    let created = point(
        points,
        &[
            ("http.request.method", "POST"),
            ("http.route", "/widget/"),
            ("http.response.status_code", "int:201"),
        ],
    );
    assert_eq!(created.count, 3);
    let missed = point(points, &[("http.response.status_code", "int:404")]);
    assert_eq!(missed.count, 1);
    assert_eq!(attribute(&missed.attributes, "http.route"), "/widget/{id}");
    for one in points {
        assert_eq!(one.bucket_counts.iter().sum::<u64>(), one.count, "{one:?}");
        assert_eq!(one.bucket_counts.len(), one.explicit_bounds.len() + 1);
        assert!(one.start_time_unix_nano > 0 && one.start_time_unix_nano <= one.time_unix_nano);
        // Each request ran in a trace: its bucket links to it.
        assert!(!one.exemplars.is_empty(), "{one:?}");
        assert!(one
            .exemplars
            .iter()
            .all(|e| e.trace_id.len() == 16 && e.span_id.len() == 8));
    }

    let operations = metric(&export, "db.client.operation.duration").expect("store metrics");
    assert_eq!(operations.unit, "s");
    let points = histogram_points(operations);
    let widgets = [
        ("db.system.name", "sqlite"),
        ("db.collection.name", "widgets"),
    ];
    let creates = point(
        points,
        &[widgets[0], widgets[1], ("db.operation.name", "create")],
    );
    assert_eq!(creates.count, 3);
    assert_eq!(creates.bucket_counts.iter().sum::<u64>(), 3);
    let misses = point(
        points,
        &[("db.operation.name", "get"), ("error.type", "not_found")],
    );
    assert_eq!(misses.count, 1);

    let active = metric(&export, "http.server.active_requests").expect("active requests");
    let Some(metric::Data::Sum(active)) = &active.data else {
        panic!("{active:?}")
    };
    assert!(!active.is_monotonic);
    assert!(metric(&export, "http_requests").is_none(), "not sent twice");

    // Shutting down sends the last counts.
    let before = received.exports.lock().unwrap().len();
    assert_eq!(
        service.call(Method::GET, "/widget/2", "").await,
        StatusCode::OK
    );
    exporter.shutdown().await;
    let exports = received.exports.lock().unwrap();
    assert!(exports.len() > before);
    let last = exports.last().unwrap();
    let duration = metric(last, "http.server.request.duration").unwrap();
    let served: u64 = histogram_points(duration).iter().map(|p| p.count).sum();
    assert_eq!(served, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_nothing_is_sent() {
    let _environment = ENVIRONMENT.lock().await;
    let (collector, received) = receiver(false).await;
    set_environment(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}")),
        ("OTEL_METRIC_EXPORT_INTERVAL", "50".into()),
        ("OTEL_METRICS_EXPORTER", "none".into()),
    ]);
    let service = Service::start().await;
    let exporter = microkit::metrics::otel::export(service.metrics.clone()).expect("set up");
    assert!(!exporter.is_enabled());
    service.traffic().await;
    exporter.flush().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    exporter.shutdown().await;
    assert_eq!(received.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_costs_the_service_nothing() {
    let _environment = ENVIRONMENT.lock().await;
    // A port nothing listens on any more.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    set_environment(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{closed}")),
        ("OTEL_METRIC_EXPORT_INTERVAL", "20".into()),
    ]);
    let service = Service::start().await;
    let exporter = microkit::metrics::otel::export(service.metrics.clone()).expect("set up");
    service.traffic().await;
    let flushed = tokio::time::timeout(Duration::from_secs(5), exporter.flush()).await;
    assert!(
        flushed.is_ok(),
        "a refused connection ends the export at once"
    );
    service.traffic().await;
    exporter.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_exports_arrive_whole() {
    let _environment = ENVIRONMENT.lock().await;
    let (collector, received) = receiver(false).await;
    set_environment(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}")),
        (
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
            "x-api-key=secret".into(),
        ),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".into()),
    ]);
    let service = Service::start().await;
    let exporter = microkit::metrics::otel::export(service.metrics.clone()).expect("set up");
    service.traffic().await;
    exporter.flush().await;
    assert_eq!(received.gzipped.load(Ordering::SeqCst), 1);
    let export = received
        .exports
        .lock()
        .unwrap()
        .pop()
        .expect("the export taken");
    let duration = metric(&export, "http.server.request.duration").unwrap();
    let served: u64 = histogram_points(duration).iter().map(|p| p.count).sum();
    assert_eq!(served, 6);
    exporter.shutdown().await;
}
