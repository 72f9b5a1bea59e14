//! The exporting task: every interval (and on demand) the metrics of every source are read,
//! encoded, and posted to the collector; a failure is logged and the next export carries the
//! totals again, as cumulative metrics do.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, Request};
use opentelemetry_http::HttpClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tokio::sync::{mpsc, oneshot};

use super::config::Config;
use super::otlp::resource_metrics;
use crate::metrics::Metrics;
use crate::trace::otel::http::OtlpClient;

/// What the handle asks of the task.
enum Command {
    /// Export now, and answer once done.
    Flush(oneshot::Sender<()>),
    /// Export a last time, answer, and end.
    Shutdown(oneshot::Sender<()>),
}

/// The handle of the task exporting metrics: flush it, or shut it down (which exports a last
/// time). Dropping it ends the task without a last export.
#[derive(Debug)]
pub struct MetricsExporter {
    commands: Option<mpsc::Sender<Command>>,
}

impl MetricsExporter {
    pub(super) fn disabled() -> Self {
        Self { commands: None }
    }

    /// Whether metrics are being exported (the environment did not switch it off).
    pub fn is_enabled(&self) -> bool {
        self.commands.is_some()
    }

    /// Exports the metrics as they are now, and returns once the collector answered (or the
    /// export failed, which is logged).
    pub async fn flush(&self) {
        self.ask(Command::Flush).await;
    }

    /// Exports a last time and stops the task.
    pub async fn shutdown(self) {
        self.ask(Command::Shutdown).await;
    }

    async fn ask(&self, command: fn(oneshot::Sender<()>) -> Command) {
        let Some(commands) = &self.commands else {
            return;
        };
        let (done, answered) = oneshot::channel();
        if commands.send(command(done)).await.is_ok() {
            let _ = answered.await;
        }
    }
}

/// Starts exporting `sources` (each with the resource it is sent under) as `config` says, on
/// the current tokio runtime.
pub(super) fn start(
    config: Config,
    client: OtlpClient,
    sources: Vec<(Arc<Metrics>, Resource)>,
) -> MetricsExporter {
    let (commands, received) = mpsc::channel(4);
    let task = Task {
        config,
        sources,
        client,
    };
    tokio::spawn(task.run(received));
    MetricsExporter {
        commands: Some(commands),
    }
}

struct Task {
    config: Config,
    sources: Vec<(Arc<Metrics>, Resource)>,
    client: OtlpClient,
}

impl Task {
    async fn run(self, mut commands: mpsc::Receiver<Command>) {
        let interval = self.config.interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        // After a slow export, wait a whole interval again rather than send a burst.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.export().await,
                command = commands.recv() => match command {
                    Some(Command::Flush(done)) => {
                        self.export().await;
                        let _ = done.send(());
                    }
                    Some(Command::Shutdown(done)) => {
                        self.export().await;
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
            }
        }
    }

    /// One export; what fails is logged (never inside a span: this line must not feed the
    /// span exporter a span of its own).
    async fn export(&self) {
        let request = ExportMetricsServiceRequest {
            resource_metrics: self
                .sources
                .iter()
                .map(|(metrics, resource)| resource_metrics(metrics, resource.clone()))
                .collect(),
        };
        let mut body = request.encode_to_vec();
        if self.config.gzip {
            body = gzip(&body);
        }
        let mut post = Request::new(Bytes::from(body));
        *post.method_mut() = Method::POST;
        *post.uri_mut() = self.config.endpoint.clone();
        let headers = post.headers_mut();
        headers.extend(self.config.headers.clone());
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        if self.config.gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("microkit/", env!("CARGO_PKG_VERSION"))),
        );
        let endpoint = &self.config.endpoint;
        let response = match self.client.send_bytes(post).await {
            Ok(response) => response,
            Err(err) => {
                tracing::warn!(target: "microkit::otel", %endpoint, error = %err, "exporting metrics failed");
                return;
            }
        };
        let status = response.status();
        if !status.is_success() {
            let answer = String::from_utf8_lossy(response.body());
            let answer: String = answer.chars().take(200).collect();
            tracing::warn!(target: "microkit::otel", %endpoint, %status, %answer, "the collector refused the metrics");
            return;
        }
        // A collector may take part of an export and say why it refused the rest.
        let partial = ExportMetricsServiceResponse::decode(response.body().clone())
            .ok()
            .and_then(|answer| answer.partial_success)
            .filter(|partial| partial.rejected_data_points > 0);
        if let Some(partial) = partial {
            tracing::warn!(
                target: "microkit::otel",
                %endpoint,
                rejected = partial.rejected_data_points,
                reason = %partial.error_message,
                "the collector refused some metric points"
            );
        }
    }
}

/// `bytes` gzip-compressed (writing to memory cannot fail).
fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}
