//! The exporting task: finished spans in through a bounded queue, batches out on a schedule or
//! when full, a flush on demand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tokio::sync::{mpsc, oneshot};

/// How the queue and the batches are bounded.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    delay: Duration,
    queue: usize,
    batch: usize,
}

impl Limits {
    /// The `OTEL_BSP_*` variables, with the specification's defaults (5 s, 2048, 512).
    pub(super) fn from_env() -> Self {
        let read = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|value| value.trim().parse::<u64>().ok())
                .filter(|value| *value > 0)
                .unwrap_or(default)
        };
        let queue = read("OTEL_BSP_MAX_QUEUE_SIZE", 2048) as usize;
        Self {
            delay: Duration::from_millis(read("OTEL_BSP_SCHEDULE_DELAY", 5000)),
            queue,
            batch: (read("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512) as usize).min(queue),
        }
    }
}

/// Where the layer hands finished spans.
#[derive(Debug, Clone)]
pub(super) struct SpanSender {
    queue: mpsc::Sender<SpanData>,
    dropped: Arc<AtomicU64>,
}

impl SpanSender {
    /// Queues `span`, or drops it when the queue is full: a request never waits on export.
    pub(super) fn send(&self, span: SpanData) {
        if self.queue.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The handle of the exporting task: flush it, or shut it down (which flushes).
#[derive(Debug, Clone)]
pub struct Exporter {
    flushes: Option<mpsc::Sender<oneshot::Sender<()>>>,
    dropped: Arc<AtomicU64>,
}

impl Exporter {
    pub(super) fn disabled() -> Self {
        Self {
            flushes: None,
            dropped: Arc::default(),
        }
    }

    /// Sends every span finished so far, and returns once the collector answered (or the
    /// export failed, which is logged).
    pub async fn flush(&self) {
        let Some(flushes) = &self.flushes else { return };
        let (done, answered) = oneshot::channel();
        if flushes.send(done).await.is_ok() {
            let _ = answered.await;
        }
    }

    /// Flushes: the task ends once every layer sending to it is dropped.
    pub async fn shutdown(self) {
        self.flush().await;
    }

    /// How many spans were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

pub(super) fn start<E>(exporter: E, limits: Limits) -> (SpanSender, Exporter)
where
    E: SpanExporter + 'static,
{
    let (queue, spans) = mpsc::channel(limits.queue);
    let (flushes, flush_requests) = mpsc::channel(8);
    let dropped = Arc::new(AtomicU64::new(0));
    tokio::spawn(run(exporter, limits, spans, flush_requests));
    let sender = SpanSender {
        queue,
        dropped: dropped.clone(),
    };
    let handle = Exporter {
        flushes: Some(flushes),
        dropped,
    };
    (sender, handle)
}

async fn run<E: SpanExporter>(
    exporter: E,
    limits: Limits,
    mut spans: mpsc::Receiver<SpanData>,
    mut flush_requests: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let mut batch = Vec::with_capacity(limits.batch);
    let mut tick = tokio::time::interval(limits.delay);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            span = spans.recv() => match span {
                Some(span) => {
                    batch.push(span);
                    if batch.len() >= limits.batch {
                        export(&exporter, &mut batch).await;
                    }
                }
                None => {
                    export(&exporter, &mut batch).await;
                    let _ = exporter.shutdown();
                    return;
                }
            },
            Some(done) = flush_requests.recv() => {
                while let Ok(span) = spans.try_recv() {
                    batch.push(span);
                    if batch.len() >= limits.batch {
                        export(&exporter, &mut batch).await;
                    }
                }
                export(&exporter, &mut batch).await;
                let _ = done.send(());
            }
            _ = tick.tick() => export(&exporter, &mut batch).await,
        }
    }
}

async fn export<E: SpanExporter>(exporter: &E, batch: &mut Vec<SpanData>) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::take(batch);
    let count = spans.len();
    if let Err(err) = exporter.export(spans).await {
        // Not inside any span: this line must not feed the exporter a span of its own.
        tracing::warn!(target: "microkit::otel", spans = count, error = %err, "exporting spans failed");
    }
}
