//! What a client measures: calls by service and outcome with their durations; the rest
//! (attempts, retries, ejections, each instance's latency and load) is read from the clients
//! themselves when metrics are scraped, plus what the clients dropped since had counted (so
//! that the counters never go down).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::histogram::{Histogram, HistogramSnapshot, OTEL_DURATION_BOUNDS};
use crate::client::{CallOutcome, ClientStats, ClientView, Retired};

/// Every outcome, in the order of [`outcome_index`].
pub(crate) const OUTCOMES: [CallOutcome; 6] = [
    CallOutcome::Success,
    CallOutcome::ClientError,
    CallOutcome::ServerError,
    CallOutcome::NoInstances,
    CallOutcome::Timeout,
    CallOutcome::Transport,
];

fn outcome_index(outcome: CallOutcome) -> usize {
    OUTCOMES
        .iter()
        .position(|known| *known == outcome)
        .unwrap_or(OUTCOMES.len() - 1)
}

/// The calls of the clients reporting to one [`Metrics`](super::Metrics).
#[derive(Debug, Default)]
pub(crate) struct ClientMetrics {
    services: RwLock<HashMap<Box<str>, Arc<ServiceSeries>>>,
    clients: Mutex<Vec<ClientView>>,
    /// What clients that are gone counted, so that the sums never go down.
    retired: Arc<Retired>,
}

#[derive(Debug)]
struct ServiceSeries {
    outcomes: [AtomicU64; OUTCOMES.len()],
    duration: Histogram,
}

/// One service's calls as exported.
pub(crate) struct CallSeries {
    pub(crate) service: String,
    pub(crate) outcomes: [u64; OUTCOMES.len()],
    pub(crate) duration: HistogramSnapshot,
}

impl ClientMetrics {
    /// Counts a call; finding the service's series allocates only the first time.
    pub(crate) fn record(&self, service: &str, outcome: CallOutcome, elapsed: Duration) {
        let existing = self
            .services
            .read()
            .expect("services lock poisoned")
            .get(service)
            .cloned();
        let series = existing.unwrap_or_else(|| {
            self.services
                .write()
                .expect("services lock poisoned")
                .entry(service.into())
                .or_insert_with(|| {
                    Arc::new(ServiceSeries {
                        outcomes: Default::default(),
                        duration: Histogram::new(&OTEL_DURATION_BOUNDS),
                    })
                })
                .clone()
        });
        series.outcomes[outcome_index(outcome)].fetch_add(1, Ordering::Relaxed);
        // Calls are made within a request's trace, when there is one.
        series
            .duration
            .observe(elapsed, crate::trace::current_ids());
    }

    /// Every service's calls, by name.
    pub(crate) fn calls(&self) -> Vec<CallSeries> {
        let mut all: Vec<CallSeries> = self
            .services
            .read()
            .expect("services lock poisoned")
            .iter()
            .map(|(service, series)| CallSeries {
                service: service.to_string(),
                outcomes: std::array::from_fn(|i| series.outcomes[i].load(Ordering::Relaxed)),
                duration: series.duration.snapshot(),
            })
            .collect();
        all.sort_by(|a, b| a.service.cmp(&b.service));
        all
    }

    /// Reads `client` too from now on, and keeps its counters once it is dropped.
    pub(crate) fn attach(&self, client: &crate::client::ServiceClient) {
        client.retire_to(self.retired.clone());
        let client = client.view();
        let mut clients = self.clients.lock().expect("clients lock poisoned");
        // Forget clients that are gone, so that building clients in a loop does not grow this.
        clients.retain(|view| view.client().is_some());
        clients.push(client);
    }

    /// The clients attached and alive.
    pub(crate) fn clients(&self) -> Vec<ClientView> {
        self.clients.lock().expect("clients lock poisoned").clone()
    }

    /// What every attached client knows now, with (last, no instances) what the clients
    /// that are gone counted.
    pub(crate) fn stats(&self) -> Vec<ClientStats> {
        let mut stats: Vec<ClientStats> = self
            .clients()
            .iter()
            .filter_map(ClientView::stats)
            .collect();
        // Read after the live clients: a client dropped meanwhile is counted here.
        stats.push(self.retired.totals());
        stats
    }
}
