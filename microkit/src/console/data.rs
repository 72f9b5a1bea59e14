//! What the console shows, gathered from the metrics, the clients and the instances.

use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use tokio::task::JoinSet;

use super::Console;
use crate::client::{InstanceStats, ServiceStats};
use crate::discovery::Instance;
use crate::metrics::{merge_services, unix_seconds, Point, SLOT_SECONDS};

/// The instance metadata entry holding when a [`Microservice`](crate::service::Microservice)
/// started serving, in milliseconds since the Unix epoch.
pub const REGISTERED_SINCE: &str = "microkit.since_ms";

/// How long the console waits for an instance's `/health` or a registry's first answer.
const PROBE_LIMIT: Duration = Duration::from_secs(1);

/// Everything the console page shows; see the [module docs](super) for an example.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ConsoleData {
    /// The service (or `gateway`) serving the console.
    pub name: String,
    /// When the data was gathered, in milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// The length of each point of the charts.
    pub slot_seconds: u64,
    /// The server itself.
    pub server: ServerData,
    /// Each route and method answered in the window.
    pub routes: Vec<RouteData>,
    /// Every service the clients know, with their instances.
    pub services: Vec<ServiceData>,
    /// The latest problems answered, newest first.
    pub problems: Vec<ProblemData>,
}

/// The server serving the console.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ServerData {
    /// Requests being answered.
    pub in_flight: i64,
    /// Client connections open.
    pub open_connections: i64,
    /// The instance, when a [`Microservice`](crate::service::Microservice) serves the console.
    pub instance: Option<InstanceData>,
}

/// One route and method over the window, and slot by slot.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RouteData {
    /// `GET`, or `_OTHER` for methods not routed by name.
    pub method: String,
    /// The pattern, or `unmatched`.
    pub route: String,
    /// Requests answered in the window.
    pub requests: u64,
    /// Of which answered with a 5xx.
    pub errors: u64,
    /// The median latency in the window, in milliseconds.
    pub p50_ms: Option<f64>,
    /// The 99th percentile latency in the window, in milliseconds.
    pub p99_ms: Option<f64>,
    /// Slot by slot, oldest first.
    pub points: Vec<PointData>,
}

/// One slot of a route's window.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PointData {
    /// When the slot began, in seconds since the Unix epoch.
    pub start: u64,
    /// Requests answered in the slot.
    pub requests: u64,
    /// Of which answered with a 5xx.
    pub errors: u64,
    /// Median latency in milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: Option<f64>,
}

/// A service as the clients know it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ServiceData {
    /// The service's name.
    pub name: String,
    /// Attempts sent to it, retries included.
    pub attempts: u64,
    /// Attempts that were retries.
    pub retries: u64,
    /// Ejections of its instances.
    pub ejections: u64,
    /// Its instances, as the registry lists them now.
    pub instances: Vec<InstanceData>,
}

/// One instance.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct InstanceData {
    /// Its registered id.
    pub id: String,
    /// Where it listens.
    pub address: String,
    /// Its version, if it told one.
    pub version: String,
    /// `up` when it answered `GET /health` with a success within a second just now, `down`
    /// otherwise.
    pub health: &'static str,
    /// When it registered (or, when it did not say, when this process first saw it), in
    /// milliseconds since the Unix epoch.
    pub registered_since_ms: Option<u64>,
    /// Whether the balancer keeps it out after consecutive failures.
    pub ejected: bool,
    /// Requests in flight to it (for the serving instance itself: being answered).
    pub in_flight: u64,
    /// Its peak-EWMA latency in milliseconds, as the balancer sees it.
    pub ewma_ms: Option<f64>,
    /// Attempts sent to it.
    pub attempts: u64,
    /// Of which failed.
    pub failures: u64,
}

/// A problem answered.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ProblemData {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The status.
    pub status: u16,
    /// The method label.
    pub method: String,
    /// The route pattern, or `unmatched`.
    pub route: String,
    /// The path asked for (cut short past 160 bytes).
    pub path: String,
    /// The request's id, to search the logs with.
    pub request_id: Option<String>,
    /// The request's trace id, to find its trace.
    pub trace_id: Option<String>,
}

fn millis(seconds: Option<f64>) -> Option<f64> {
    seconds.map(|s| (s * 1e6).round() / 1e3)
}

fn point(point: &Point) -> PointData {
    PointData {
        start: point.start,
        requests: u64::from(point.requests),
        errors: u64::from(point.errors),
        p50_ms: millis(point.p50),
        p99_ms: millis(point.p99),
    }
}

fn registered_since(instance: &Instance) -> Option<u64> {
    instance.metadata.get(REGISTERED_SINCE)?.parse().ok()
}

pub(super) async fn collect(console: &Console) -> ConsoleData {
    let metrics = &console.metrics;
    let clients = metrics.clients();
    if let Some(client) = clients.first() {
        // The gateway's services show before a request reached them.
        let mut watches = JoinSet::new();
        for service in &console.services {
            let (client, service) = (client.clone(), service.clone());
            watches.spawn(async move {
                let _ = tokio::time::timeout(PROBE_LIMIT, client.watch_service(&service)).await;
            });
        }
        while watches.join_next().await.is_some() {}
    }
    let services = merge_services(&metrics.client_stats());
    let health = probe_all(clients.first(), &services).await;
    let now = unix_seconds();
    let server = metrics.server();
    let in_flight = server.in_flight.load(std::sync::atomic::Ordering::Relaxed);
    let own = console.own.as_ref().map(|instance| InstanceData {
        id: instance.id.clone(),
        address: instance.addr.to_string(),
        version: instance.version.clone(),
        // It is answering this very request.
        health: "up",
        registered_since_ms: registered_since(instance),
        ejected: false,
        in_flight: u64::try_from(in_flight).unwrap_or(0),
        ewma_ms: None,
        attempts: 0,
        failures: 0,
    });
    ConsoleData {
        name: console.name.clone(),
        now_ms: (now * 1000.0) as u64,
        slot_seconds: SLOT_SECONDS,
        server: ServerData {
            in_flight,
            open_connections: server
                .open_connections
                .load(std::sync::atomic::Ordering::Relaxed),
            instance: own,
        },
        routes: server
            .activity(now as u64)
            .into_iter()
            .map(|activity| RouteData {
                method: activity.method,
                route: activity.route,
                requests: u64::from(activity.summary.requests),
                errors: u64::from(activity.summary.errors),
                p50_ms: millis(activity.summary.p50),
                p99_ms: millis(activity.summary.p99),
                points: activity.points.iter().map(point).collect(),
            })
            .collect(),
        services: services
            .iter()
            .map(|service| ServiceData {
                name: service.service.clone(),
                attempts: service.attempts,
                retries: service.retries,
                ejections: service.ejections,
                instances: service
                    .instances
                    .iter()
                    .map(|stats| instance(stats, &health))
                    .collect(),
            })
            .collect(),
        problems: server
            .recent_problems()
            .into_iter()
            .map(|problem| ProblemData {
                at_ms: problem.at_ms,
                status: problem.status,
                method: problem.method,
                route: problem.route,
                path: problem.path,
                request_id: problem.request_id,
                trace_id: problem.trace_id.map(|id| id.to_string()),
            })
            .collect(),
    }
}

fn instance(stats: &InstanceStats, health: &[(std::net::SocketAddr, bool)]) -> InstanceData {
    let up = health
        .iter()
        .any(|(addr, up)| *addr == stats.instance.addr && *up);
    let first_seen = stats
        .first_seen
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .ok();
    InstanceData {
        id: stats.instance.id.clone(),
        address: stats.instance.addr.to_string(),
        version: stats.instance.version.clone(),
        health: if up { "up" } else { "down" },
        registered_since_ms: registered_since(&stats.instance).or(first_seen),
        ejected: stats.ejected,
        in_flight: stats.in_flight as u64,
        // Until an answer is timed, the balancer's figure is a guess: show none.
        ewma_ms: (stats.attempts > stats.failures)
            .then(|| millis(Some(stats.ewma.as_secs_f64())))
            .flatten(),
        attempts: stats.attempts,
        failures: stats.failures,
    }
}

/// Asks every instance for its health at once, each within [`PROBE_LIMIT`].
async fn probe_all(
    client: Option<&crate::client::ServiceClient>,
    services: &[ServiceStats],
) -> Vec<(std::net::SocketAddr, bool)> {
    let Some(client) = client else {
        return Vec::new();
    };
    let mut probes = JoinSet::new();
    for stats in services.iter().flat_map(|service| &service.instances) {
        let (client, instance) = (client.clone(), stats.instance.clone());
        probes.spawn(async move {
            let up = client.probe_health(&instance, PROBE_LIMIT).await;
            (instance.addr, up)
        });
    }
    let mut health = Vec::new();
    while let Some(probed) = probes.join_next().await {
        if let Ok(probed) = probed {
            health.push(probed);
        }
    }
    health
}
