//! The metrics of [`Metrics`] pushed over OTLP/HTTP (protobuf) to an OpenTelemetry collector,
//! configured by the standard `OTEL_*` environment variables (feature `otel`): the same
//! metrics `GET /metrics` shows, read by the same walk.
//!
//! ```no_run
//! use std::sync::Arc;
//! use microkit::metrics::Metrics;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 OTEL_SERVICE_NAME=catalog
//! let metrics = Arc::new(Metrics::new());
//! let exporter = microkit::metrics::otel::export(metrics.clone())?;
//! // ... serve with `metrics` ...
//! exporter.shutdown().await; // a last export, so the final counts arrive
//! # Ok(()) }
//! ```
//!
//! What is sent: counters as monotonic cumulative sums, counts of things that come and go
//! (active requests, pool connections) as non-monotonic sums, readings (a latency average) as
//! gauges, durations as cumulative explicit-bucket histograms with their exemplars (the trace
//! and span ids of a recent request in each bucket). Cumulative points start when the [`Metrics`] was made.
//! The families OpenTelemetry's semantic conventions name carry its names and attributes:
//! `http.server.request.duration` (`http.request.method`, `http.route`,
//! `http.response.status_code`), `http.server.active_requests`,
//! `db.client.operation.duration` (`db.system.name`, `db.collection.name`,
//! `db.operation.name`, `error.type`), `db.client.connection.count`
//! (`db.client.connection.pool.name`, `db.client.connection.state`),
//! `db.client.connection.max`, `db.client.connection.pending_requests` and
//! `db.client.connection.wait_time`; the others keep their `/metrics` names without the
//! counters' `_total` suffix (`client_calls` for `/metrics`' `client_calls_total`,
//! `client_call_duration_seconds`, ...) and their labels. `http_requests_total`, the request
//! histogram's count under an older name, is the one family not sent (it would count the
//! requests twice).
//!
//! What is read from the environment: `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used as it is),
//! or `OTEL_EXPORTER_OTLP_ENDPOINT` (default `http://localhost:4318`, metrics go to its
//! `/v1/metrics`); `OTEL_EXPORTER_OTLP[_METRICS]_HEADERS` (`key=value,...`, values
//! percent-encoded), `_TIMEOUT` (milliseconds, default 10 000) and `_COMPRESSION` (`gzip` or
//! `none`, the default);
//! `OTEL_METRIC_EXPORT_INTERVAL` (milliseconds, default 60 000) and
//! `OTEL_METRIC_EXPORT_TIMEOUT` (default 30 000);
//! `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` (points are always cumulative: a
//! preference for delta is logged, not met); `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES` for the resource, as the span exporter reads them.
//! An `https` endpoint is reached over TLS (with the `tls` feature as well as `otel`):
//! `OTEL_EXPORTER_OTLP[_METRICS]_CERTIFICATE` names the PEM CA bundle to trust (the platform's
//! roots without it), `_CLIENT_CERTIFICATE` and `_CLIENT_KEY` the client's own for mutual TLS;
//! the collector's name is checked against its certificate.
//! `OTEL_SDK_DISABLED=true` or `OTEL_METRICS_EXPORTER=none` switch it off. A setting that
//! cannot be met (an `https` endpoint without the `tls` feature, an unreadable CA bundle, the `grpc` protocol, a malformed header or number) is
//! an [`OtelError`] at start rather than a silent default.
//!
//! Exporting never slows a request: a task on the tokio runtime reads the metrics (as a
//! scrape does) and posts them. An export that fails is logged through `tracing` (target
//! `microkit::otel`) and not retried: the next one, an interval later, carries the totals
//! again.

mod config;
mod exporter;
mod otlp;

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;

pub use self::exporter::MetricsExporter;
use super::Metrics;
use crate::trace::otel::http::OtlpClient;
pub use crate::trace::otel::OtelError;

/// One service's metrics, with the resource attributes that tell it apart from the others
/// exported by the same process (see [`export_each`]).
#[derive(Debug, Clone)]
pub struct Source {
    metrics: Arc<Metrics>,
    attributes: Vec<(String, String)>,
}

impl Source {
    /// `metrics`, under the resource the environment describes.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            attributes: Vec::new(),
        }
    }

    /// Sets the resource attribute `key` (`service.name`, `service.instance.id`...) for these
    /// metrics, over what the environment says.
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }
}

/// Exports `metrics` periodically, configured from the environment, from a task on the
/// current tokio runtime (so call this from within one). When the environment switches
/// export off, the exporter returned does nothing.
pub fn export(metrics: Arc<Metrics>) -> Result<MetricsExporter, OtelError> {
    export_each([Source::new(metrics)])
}

/// Exports the metrics of several services that share a process, each as a resource of its
/// own (the environment's, with the source's attributes set), together in every export.
pub fn export_each(
    sources: impl IntoIterator<Item = Source>,
) -> Result<MetricsExporter, OtelError> {
    let Some(config) = config::Config::from_env()? else {
        return Ok(MetricsExporter::disabled());
    };
    tokio::runtime::Handle::try_current()
        .map_err(|_| OtelError::new("it needs a tokio runtime to send from"))?;
    let client = OtlpClient::new(&config.endpoint, config.timeout, &config.tls)?;
    if config.delta_preferred {
        tracing::warn!(
            target: "microkit::otel",
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE asks for delta: metrics are sent cumulative"
        );
    }
    // The SDK's detectors: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, the SDK's own.
    let detected = opentelemetry_sdk::Resource::builder().build();
    let detected = ResourceAttributesWithSchema::from(&detected).attributes.0;
    let sources = sources
        .into_iter()
        .map(|source| {
            let resource = resource(detected.clone(), &source.attributes);
            (source.metrics, resource)
        })
        .collect();
    Ok(exporter::start(config, client, sources))
}

/// `attributes` over `detected`: a key set twice keeps the later value.
fn resource(mut detected: Vec<KeyValue>, attributes: &[(String, String)]) -> Resource {
    for (key, value) in attributes {
        let value = Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.clone())),
        });
        match detected.iter_mut().find(|known| &known.key == key) {
            Some(known) => known.value = value,
            None => detected.push(KeyValue {
                key: key.clone(),
                value,
                ..Default::default()
            }),
        }
    }
    Resource {
        attributes: detected,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_s_attributes_override_the_detected_ones() {
        let detected = ResourceAttributesWithSchema::from(
            &opentelemetry_sdk::Resource::builder_empty()
                .with_attributes([
                    opentelemetry::KeyValue::new("service.name", "shop"),
                    opentelemetry::KeyValue::new("deployment.environment.name", "test"),
                ])
                .build(),
        )
        .attributes
        .0;
        let attributes = [
            ("service.name".to_owned(), "users".to_owned()),
            (
                "service.instance.id".to_owned(),
                "127.0.0.1:8001".to_owned(),
            ),
        ];
        let resource = resource(detected, &attributes);
        let value = |key: &str| {
            let found = resource.attributes.iter().find(|kv| kv.key == key);
            match found.and_then(|kv| kv.value.clone()?.value) {
                Some(any_value::Value::StringValue(text)) => text,
                other => panic!("{key}: {other:?}"),
            }
        };
        assert_eq!(value("service.name"), "users");
        assert_eq!(value("service.instance.id"), "127.0.0.1:8001");
        assert_eq!(value("deployment.environment.name"), "test");
        assert_eq!(resource.attributes.len(), 3);
    }
}
