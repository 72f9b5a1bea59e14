//! OTLP over TLS: spans (`microkit::trace::otel`) and metrics (`microkit::metrics::otel`) sent
//! to a real OTLP/HTTP receiver on `https://127.0.0.1` with a certificate made here (rcgen),
//! configured only by the standard `OTEL_EXPORTER_OTLP_*` variables: the CA bundle to trust,
//! the client certificate and key a receiver requiring one gets, and an untrusted certificate
//! that delivers nothing, is logged, and leaves the service serving.
//!
//! `cargo test --features otel --test otel_https`
#![cfg(feature = "otel")]

use microkit_test_support as support;
use support::certs;

#[path = "common/otlp_receiver.rs"]
mod otlp_receiver;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use microkit::http::{Method, StatusCode};
use microkit::metrics::Metrics;
use microkit::router::get;
use microkit::service::Microservice;
use microkit::Router;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::sync::oneshot;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The environment is the process': one test at a time sets it and sets its exporters up
/// (they read it only then).
static ENVIRONMENT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every variable a test here sets, cleared before the next one sets its own.
const VARIABLES: [&str; 6] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
];

fn set_environment(vars: &[(&str, String)]) {
    otlp_receiver::set_environment(&VARIABLES, vars);
}

/// The names of the spans and the number of metric exports the receiver took.
#[derive(Default)]
struct Received {
    spans: Mutex<Vec<String>>,
    metric_exports: Mutex<usize>,
}

/// An OTLP/HTTP receiver on `https://127.0.0.1` presenting a certificate for `127.0.0.1`
/// signed by `ca`; with `client_ca`, it requires a client certificate signed by that one.
async fn receiver(
    ca: &certs::Authority,
    client_ca: Option<&certs::Authority>,
) -> (SocketAddr, Arc<Received>) {
    let (cert, key) = certs::leaf(ca, "collector", &["127.0.0.1"]);
    let tls = otlp_receiver::server_tls(&cert, &key, client_ca.map(|ca| ca.pem.as_str()));
    let received = Arc::new(Received::default());
    let store = received.clone();
    let addr = otlp_receiver::start_tls(
        move |head, body| {
            if otlp_receiver::is_export(&head, "/v1/traces") {
                let Ok(export) = ExportTraceServiceRequest::decode(body) else {
                    return (400, Vec::new());
                };
                let mut spans = store.spans.lock().unwrap();
                for resource in export.resource_spans {
                    for scope in resource.scope_spans {
                        spans.extend(scope.spans.into_iter().map(|span| span.name));
                    }
                }
                (200, ExportTraceServiceResponse::default().encode_to_vec())
            } else if otlp_receiver::is_export(&head, "/v1/metrics") {
                if ExportMetricsServiceRequest::decode(body).is_err() {
                    return (400, Vec::new());
                }
                *store.metric_exports.lock().unwrap() += 1;
                (200, ExportMetricsServiceResponse::default().encode_to_vec())
            } else {
                (404, Vec::new())
            }
        },
        tls,
    )
    .await;
    (addr, received)
}

/// A service answering `GET /ping`, with metrics, stopped when dropped.
struct Service {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    _stop: oneshot::Sender<()>,
}

impl Service {
    async fn start() -> Self {
        let metrics = Arc::new(Metrics::new());
        let router = Router::new().route("/ping", get(|| async { "pong" }));
        let service = Microservice::new("pinger", router).metrics(metrics.clone());
        let (addr, stop) = support::run_service(service).await;
        Self {
            addr,
            metrics,
            _stop: stop,
        }
    }

    async fn ping(&self) -> StatusCode {
        let request = support::request(Method::GET, "/ping", "");
        support::send(self.addr, request).await.status
    }
}

/// Log lines, as the `fmt` layer writes them.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Sets both exporters up from the environment `vars`, serves three pings and a span of the
/// test's own (all on this thread: the runtime is current-thread, so the subscriber set here
/// sees the service's spans and the exporters' warnings), and flushes both exporters.
async fn serve_and_export(vars: &[(&str, String)]) -> Log {
    set_environment(vars);
    let (otel, spans) = microkit::trace::otel::layer().expect("the span exporter is set up");
    let log = Log::default();
    let writer = log.clone();
    let _subscriber = tracing_subscriber::registry()
        .with(otel)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone()),
        )
        .set_default();
    let service = Service::start().await;
    let metrics = microkit::metrics::otel::export(service.metrics.clone())
        .expect("the metrics exporter is set up");
    tracing::info_span!("probe").in_scope(|| {});
    for _ in 0..3 {
        assert_eq!(service.ping().await, StatusCode::OK);
    }
    spans.flush().await;
    metrics.flush().await;
    // The service still answers once the exports are done, whatever became of them.
    assert_eq!(service.ping().await, StatusCode::OK);
    metrics.shutdown().await;
    log
}

#[tokio::test]
async fn spans_and_metrics_arrive_over_https_trusting_the_named_ca() {
    let _environment = ENVIRONMENT.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::authority("otlp test CA");
    let (collector, received) = receiver(&ca, None).await;
    let ca_file = certs::write(dir.path(), "ca.pem", &ca.pem);
    let log = serve_and_export(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("https://{collector}"),
        ),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ca_file.display().to_string(),
        ),
    ])
    .await;
    let spans = received.spans.lock().unwrap().clone();
    assert!(spans.iter().any(|name| name == "probe"), "{spans:?}");
    assert!(spans.iter().any(|name| name == "GET /ping"), "{spans:?}");
    assert!(*received.metric_exports.lock().unwrap() >= 1);
    assert!(!log.text().contains("WARN"), "{}", log.text());
}

#[tokio::test]
async fn a_receiver_requiring_client_certificates_gets_the_named_ones() {
    let _environment = ENVIRONMENT.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::authority("otlp test CA");
    let clients = certs::authority("otlp clients CA");
    let (collector, received) = receiver(&ca, Some(&clients)).await;
    let ca_file = certs::write(dir.path(), "ca.pem", &ca.pem);
    let (cert, key) = certs::leaf_files(dir.path(), &clients, "exporter", &["pinger"]);

    // Without a client certificate, the receiver takes nothing.
    let endpoint = format!("https://{collector}");
    let log = serve_and_export(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ca_file.display().to_string(),
        ),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000".into()),
    ])
    .await;
    assert!(received.spans.lock().unwrap().is_empty());
    assert_eq!(*received.metric_exports.lock().unwrap(), 0);
    assert!(
        log.text().contains("exporting metrics failed"),
        "{}",
        log.text()
    );

    serve_and_export(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ca_file.display().to_string(),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            cert.display().to_string(),
        ),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", key.display().to_string()),
    ])
    .await;
    let spans = received.spans.lock().unwrap().clone();
    assert!(spans.iter().any(|name| name == "GET /ping"), "{spans:?}");
    assert!(*received.metric_exports.lock().unwrap() >= 1);
}

#[tokio::test]
async fn an_untrusted_certificate_delivers_nothing_is_logged_and_the_service_serves_on() {
    let _environment = ENVIRONMENT.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let collector_ca = certs::authority("the collector's CA");
    let other = certs::authority("another CA");
    let (collector, received) = receiver(&collector_ca, None).await;
    let other_file = certs::write(dir.path(), "other.pem", &other.pem);
    let log = serve_and_export(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("https://{collector}"),
        ),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            other_file.display().to_string(),
        ),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000".into()),
    ])
    .await;
    assert!(received.spans.lock().unwrap().is_empty());
    assert_eq!(*received.metric_exports.lock().unwrap(), 0);
    let log = log.text();
    assert!(log.contains("exporting metrics failed"), "{log}");
    assert!(log.contains("exporting spans failed"), "{log}");
    assert!(log.to_lowercase().contains("certificate"), "{log}");
}

#[tokio::test]
async fn a_missing_ca_bundle_is_refused_at_start() {
    let _environment = ENVIRONMENT.lock().await;
    set_environment(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:1".into()),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "/nonexistent/ca.pem".into(),
        ),
    ]);
    let err = microkit::trace::otel::layer().expect_err("refused");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    let metrics = Arc::new(Metrics::new());
    let err = microkit::metrics::otel::export(metrics).expect_err("refused");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
