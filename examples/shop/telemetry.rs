//! Log lines, spans and metrics: `RUST_LOG` set prints log lines (each inside its request's
//! span, so with its trace id); built with `--features otel`, `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set sends every span to that OTLP/HTTP collector,
//! named by `OTEL_SERVICE_NAME` (default `shop`), and `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) every service's metrics, each service under its own
//! `service.name` and its address as `service.instance.id`.

use std::net::SocketAddr;
use std::sync::Arc;

use microkit::metrics::Metrics;
use microkit::BoxError;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// What has to be flushed before the process exits.
pub(crate) struct Telemetry {
    #[cfg(feature = "otel")]
    exporter: Option<microkit::trace::otel::Exporter>,
    #[cfg(feature = "otel")]
    metrics: Option<microkit::metrics::otel::MetricsExporter>,
}

/// Installs the log and span output the environment asks for.
pub(crate) fn init() -> Result<Telemetry, BoxError> {
    #[cfg(feature = "otel")]
    {
        let wanted = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
        if wanted {
            if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
                std::env::set_var("OTEL_SERVICE_NAME", "shop");
            }
            let (spans, exporter) = microkit::trace::otel::layer()?;
            tracing_subscriber::registry()
                .with(spans.with_filter(LevelFilter::INFO))
                .with(logs())
                .try_init()?;
            return Ok(Telemetry {
                exporter: Some(exporter),
                metrics: None,
            });
        }
    }
    if let Some(logs) = logs() {
        tracing_subscriber::registry().with(logs).try_init()?;
    }
    Ok(Telemetry {
        #[cfg(feature = "otel")]
        exporter: None,
        #[cfg(feature = "otel")]
        metrics: None,
    })
}

/// The exporter of every service's metrics (`(name, address, metrics)`), each under its own
/// `service.name` and its address as `service.instance.id`, when a collector is named.
#[cfg(feature = "otel")]
pub(crate) fn metrics_exporter(
    services: &[(String, SocketAddr, Arc<Metrics>)],
) -> Result<Option<microkit::metrics::otel::MetricsExporter>, BoxError> {
    use microkit::metrics::otel::Source;
    let wanted = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some());
    if !wanted {
        return Ok(None);
    }
    let sources = services.iter().map(|(name, addr, metrics)| {
        Source::new(metrics.clone())
            .attribute("service.name", name.as_str())
            .attribute("service.instance.id", addr.to_string())
    });
    Ok(Some(microkit::metrics::otel::export_each(sources)?))
}

/// Log lines at `INFO` and above when `RUST_LOG` is set.
fn logs<S>() -> Option<impl Layer<S>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    std::env::var_os("RUST_LOG")
        .is_some()
        .then(|| tracing_subscriber::fmt::layer().with_filter(LevelFilter::INFO))
}

impl Telemetry {
    /// Exports the metrics of every service listening (`(name, address, metrics)`), when
    /// built with `otel` and a collector is named.
    #[cfg_attr(not(feature = "otel"), allow(unused_variables))]
    pub(crate) fn export_metrics(
        &mut self,
        services: &[(String, SocketAddr, Arc<Metrics>)],
    ) -> Result<(), BoxError> {
        #[cfg(feature = "otel")]
        {
            self.metrics = metrics_exporter(services)?;
        }
        Ok(())
    }

    /// Sends the spans still buffered and the last metrics.
    pub(crate) async fn flush(self) {
        #[cfg(feature = "otel")]
        if let Some(exporter) = &self.exporter {
            exporter.flush().await;
        }
        #[cfg(feature = "otel")]
        if let Some(metrics) = self.metrics {
            metrics.shutdown().await;
        }
    }
}
