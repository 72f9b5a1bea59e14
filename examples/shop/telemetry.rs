//! Log lines and spans: `RUST_LOG` set prints log lines (each inside its request's span, so
//! with its trace id); built with `--features otel`, `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set sends every span to that OTLP/HTTP collector,
//! named by `OTEL_SERVICE_NAME` (default `shop`).

use microkit::BoxError;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// What has to be flushed before the process exits.
pub(crate) struct Telemetry {
    #[cfg(feature = "otel")]
    exporter: Option<microkit::trace::otel::Exporter>,
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
            });
        }
    }
    if let Some(logs) = logs() {
        tracing_subscriber::registry().with(logs).try_init()?;
    }
    Ok(Telemetry {
        #[cfg(feature = "otel")]
        exporter: None,
    })
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
    /// Sends the spans still buffered.
    pub(crate) async fn flush(&self) {
        #[cfg(feature = "otel")]
        if let Some(exporter) = &self.exporter {
            exporter.flush().await;
        }
    }
}
