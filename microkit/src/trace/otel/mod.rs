//! Spans exported over OTLP/HTTP (protobuf), with no collector needed to get started and the
//! standard `OTEL_*` environment variables to point at one (feature `otel`).
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 OTEL_SERVICE_NAME=catalog
//! let (otel, exporter) = microkit::trace::otel::layer()?;
//! tracing_subscriber::registry().with(otel).init();
//! // ... serve ...
//! exporter.shutdown().await; // sends what is still buffered
//! # Ok(()) }
//! ```
//!
//! What is read from the environment: `OTEL_EXPORTER_OTLP_ENDPOINT` (default
//! `http://localhost:4318`, spans go to its `/v1/traces`), `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! (used as it is), `OTEL_EXPORTER_OTLP[_TRACES]_HEADERS`, `_TIMEOUT` and `_COMPRESSION`
//! (by opentelemetry-otlp); `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (by the SDK's
//! resource detectors); `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE` and
//! `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (here); `OTEL_SDK_DISABLED=true` or
//! `OTEL_TRACES_EXPORTER=none` make the layer a no-op. An `https` endpoint is reached over
//! TLS (with the `tls` feature as well as `otel`; without it, it is refused at start):
//! `OTEL_EXPORTER_OTLP[_TRACES]_CERTIFICATE` names the PEM CA bundle to trust (the platform's
//! roots without it), `_CLIENT_CERTIFICATE` and `_CLIENT_KEY` the client's own for mutual TLS;
//! the collector's name is checked against its certificate. `_TIMEOUT` bounds each export.
//!
//! Why a layer of microkit's own rather than tracing-opentelemetry's: the ids microkit sends in
//! `traceparent` and records on its spans are the ids exported, so the span a downstream
//! service names as its parent is the attempt span the collector received. tracing-opentelemetry
//! draws its own span ids. Spans that are not microkit's (a handler's own `info_span!`) are
//! exported too, in the trace of the span they are inside, with ids drawn here.
//!
//! The layer never blocks a request: a finished span is handed to a bounded queue
//! (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048 by default) and dropped when it is full; a task on the
//! tokio runtime sends batches.

mod batch;
pub(crate) mod http;
mod layer;

use std::fmt;
use std::time::Duration;

use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SpanExporter as _;
use opentelemetry_sdk::Resource;

pub use self::batch::Exporter;
pub use self::layer::OtelLayer;

/// Why the exporter could not be set up.
#[derive(Debug)]
pub struct OtelError(String);

impl fmt::Display for OtelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the OTLP exporter could not be set up: {}", self.0)
    }
}

impl std::error::Error for OtelError {}

impl OtelError {
    pub(crate) fn new(why: impl Into<String>) -> Self {
        Self(why.into())
    }
}

/// The layer exporting spans, configured from the environment, and the handle of its
/// exporting task (on the current tokio runtime, so call this from within one).
pub fn layer() -> Result<(OtelLayer, Exporter), OtelError> {
    if disabled() {
        return Ok((OtelLayer::disabled(), Exporter::disabled()));
    }
    tokio::runtime::Handle::try_current()
        .map_err(|_| OtelError("it needs a tokio runtime to send from".to_owned()))?;
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    let client = http::OtlpClient::new(
        &traces_endpoint(var)?,
        traces_timeout(var),
        &http::TlsFiles::read("TRACES", var)?,
    )?;
    let mut exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(client)
        .build()
        .map_err(|err| OtelError(err.to_string()))?;
    let resource = Resource::builder().build();
    exporter.set_resource(&resource);
    let (sender, exporter) = batch::start(exporter, batch::Limits::from_env());
    Ok((OtelLayer::new(sender), exporter))
}

fn disabled() -> bool {
    let set = |name: &str, value: &str| {
        std::env::var(name).is_ok_and(|set| set.trim().eq_ignore_ascii_case(value))
    };
    set("OTEL_SDK_DISABLED", "true") || set("OTEL_TRACES_EXPORTER", "none")
}

/// Where spans go, as opentelemetry-otlp resolves it (only its scheme matters here: whether
/// the client needs TLS).
fn traces_endpoint(var: impl Fn(&str) -> Option<String>) -> Result<::http::Uri, OtelError> {
    let endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .unwrap_or_else(|| "http://localhost:4318".to_owned());
    endpoint
        .trim()
        .parse()
        .map_err(|err| OtelError(format!("the OTLP endpoint `{endpoint}`: {err}")))
}

/// How long one export of spans may take: `OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT`
/// milliseconds, 10 s by default.
fn traces_timeout(var: impl Fn(&str) -> Option<String>) -> Duration {
    let millis = var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .or_else(|| var("OTEL_EXPORTER_OTLP_TIMEOUT"))
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(10_000);
    Duration::from_millis(millis)
}
