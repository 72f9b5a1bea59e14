//! Picking an instance of one service, and learning from each answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::config::{Balance, ClientConfig};
use super::ServiceClient;
use crate::discovery::{Instance, Watch};

/// One instance and what the client has learned about it.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) instance: Instance,
    /// The `Host` header of requests to it, made once.
    pub(crate) host: http::HeaderValue,
    /// Where its connections go, made once (for `https`, the name is an allocation).
    pub(crate) target: super::pool::Target,
    in_flight: AtomicUsize,
    /// Attempts sent to it, and how many failed: for metrics and the console.
    attempts: AtomicU64,
    failures: AtomicU64,
    /// When this client first saw the instance in the registry.
    first_seen: SystemTime,
    state: Mutex<EndpointState>,
}

#[derive(Debug)]
struct EndpointState {
    /// Peak-EWMA latency in seconds: jumps up to a slow answer at once, decays slowly.
    ewma: f64,
    updated: Instant,
    consecutive_failures: u32,
    ejections: u32,
    ejected_until: Option<Instant>,
    /// Ejected before and back for a trial: its next answer readmits it or ejects it again.
    probing: bool,
}

/// How long a latency observation takes to fade (Linkerd's decay).
const EWMA_DECAY: Duration = Duration::from_secs(10);
/// The latency assumed of an instance not yet measured: optimistic, so new instances get tried.
const INITIAL_EWMA: f64 = 0.001;

impl Endpoint {
    fn new(instance: Instance) -> Self {
        let host = http::HeaderValue::try_from(instance.addr.to_string())
            .expect("a socket address is a valid header value");
        Self {
            target: super::pool::Target::of(&instance),
            instance,
            host,
            in_flight: AtomicUsize::new(0),
            attempts: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            first_seen: SystemTime::now(),
            state: Mutex::new(EndpointState {
                ewma: INITIAL_EWMA,
                updated: Instant::now(),
                consecutive_failures: 0,
                ejections: 0,
                ejected_until: None,
                probing: false,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, EndpointState> {
        self.state.lock().expect("endpoint lock poisoned")
    }

    fn is_ejected(&self, now: Instant) -> bool {
        self.state().ejected_until.is_some_and(|until| until > now)
    }

    fn cost(&self) -> f64 {
        let in_flight = self.in_flight.load(Ordering::Relaxed) as f64;
        let weight = f64::from(self.instance.weight.max(1));
        self.state().ewma * (in_flight + 1.0) / weight
    }

    /// Counts a request in flight until the guard drops.
    pub(crate) fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.attempts.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

pub(crate) struct InFlight(Arc<Endpoint>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The instances of one service, refreshed from the registry's watch.
pub(crate) struct ServiceBalancer {
    watch: Mutex<Watch>,
    endpoints: Mutex<Arc<[Arc<Endpoint>]>>,
    next: AtomicUsize,
    balance: Balance,
    /// Attempts picked, those of them that were retries, and ejections: for metrics.
    attempts: AtomicU64,
    retries: AtomicU64,
    ejections: AtomicU64,
}

impl ServiceBalancer {
    pub(crate) fn new(watch: Watch, balance: Balance) -> Self {
        let balancer = Self {
            watch: Mutex::new(watch),
            endpoints: Mutex::new(Arc::from(Vec::new())),
            next: AtomicUsize::new(0),
            balance,
            attempts: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
        };
        balancer.refresh(true);
        balancer
    }

    /// Takes in the registry's latest list, keeping what was learned of known instances.
    fn refresh(&self, force: bool) {
        let mut watch = self.watch.lock().expect("watch lock poisoned");
        if !force && !watch.has_changed().unwrap_or(false) {
            return;
        }
        let instances = watch.borrow_and_update().clone();
        let mut endpoints = self.endpoints.lock().expect("endpoints lock poisoned");
        let known: HashMap<&str, &Arc<Endpoint>> = endpoints
            .iter()
            .map(|endpoint| (endpoint.instance.id.as_str(), endpoint))
            .collect();
        let next: Vec<Arc<Endpoint>> = instances
            .iter()
            .map(|instance| match known.get(instance.id.as_str()) {
                Some(endpoint) if endpoint.instance == *instance => Arc::clone(endpoint),
                _ => Arc::new(Endpoint::new(instance.clone())),
            })
            .collect();
        *endpoints = Arc::from(next);
    }

    pub(crate) fn endpoints(&self) -> Arc<[Arc<Endpoint>]> {
        self.refresh(false);
        self.endpoints
            .lock()
            .expect("endpoints lock poisoned")
            .clone()
    }

    /// Picks an instance at `now`, avoiding those already tried for this call while others
    /// remain.
    pub(crate) fn pick(&self, tried: &[Arc<Endpoint>], now: Instant) -> Option<Arc<Endpoint>> {
        let picked = self.pick_among(tried, now);
        if picked.is_some() {
            self.attempts.fetch_add(1, Ordering::Relaxed);
            // A call's first attempt has tried nothing yet.
            if !tried.is_empty() {
                self.retries.fetch_add(1, Ordering::Relaxed);
            }
        }
        picked
    }

    fn pick_among(&self, tried: &[Arc<Endpoint>], now: Instant) -> Option<Arc<Endpoint>> {
        let all = self.endpoints();
        // The usual case, a first attempt with no instance ejected: choose among all without
        // building the lists below.
        if tried.is_empty() && !all.iter().any(|endpoint| endpoint.is_ejected(now)) {
            if all.is_empty() {
                return None;
            }
            return Some(Arc::clone(&all[self.choose(all.len(), |i| all[i].cost())]));
        }
        let untried: Vec<&Arc<Endpoint>> = all
            .iter()
            .filter(|endpoint| !tried.iter().any(|t| Arc::ptr_eq(t, endpoint)))
            .collect();
        let candidates: Vec<&Arc<Endpoint>> = if untried.is_empty() {
            all.iter().collect()
        } else {
            untried
        };
        if candidates.is_empty() {
            return None;
        }
        let healthy: Vec<&Arc<Endpoint>> = candidates
            .iter()
            .copied()
            .filter(|endpoint| !endpoint.is_ejected(now))
            .collect();
        let ejected_share = 1.0 - healthy.len() as f64 / all.len().max(1) as f64;
        // Panic mode: with more than half ejected, the few left would be overloaded; spread
        // over all rather than trust the ejections.
        let pool = if healthy.is_empty() || ejected_share > 0.5 {
            candidates
        } else {
            healthy
        };
        Some(Arc::clone(
            pool[self.choose(pool.len(), |i| pool[i].cost())],
        ))
    }

    /// The index of the instance to use among `len` (at least one), given each one's cost.
    fn choose(&self, len: usize, cost: impl Fn(usize) -> f64) -> usize {
        match (self.balance, len) {
            (_, 1) => 0,
            (Balance::RoundRobin, len) => self.next.fetch_add(1, Ordering::Relaxed) % len,
            (_, len) => {
                let first = fastrand::usize(..len);
                let second = (first + 1 + fastrand::usize(..len - 1)) % len;
                if cost(second) < cost(first) {
                    second
                } else {
                    first
                }
            }
        }
    }

    /// Learns from an answer that came at `now`, `latency` after the attempt started.
    pub(crate) fn record_success(&self, endpoint: &Endpoint, now: Instant, latency: Duration) {
        let mut state = endpoint.state();
        let elapsed = now.duration_since(state.updated).as_secs_f64();
        let sample = latency.as_secs_f64();
        state.ewma = if sample > state.ewma {
            sample
        } else {
            let weight = (-elapsed / EWMA_DECAY.as_secs_f64()).exp();
            state.ewma * weight + sample * (1.0 - weight)
        };
        state.updated = now;
        state.consecutive_failures = 0;
        state.probing = false;
        state.ejected_until = None;
    }

    /// Learns from a failure (no connection, a timeout, a 502/503/504), ejecting the instance
    /// once it failed too often in a row, unless it is the last one standing.
    pub(crate) fn record_failure(&self, endpoint: &Endpoint, config: &ClientConfig) {
        let now = Instant::now();
        endpoint.failures.fetch_add(1, Ordering::Relaxed);
        let should_eject = {
            let mut state = endpoint.state();
            state.consecutive_failures += 1;
            let already_ejected = state.ejected_until.is_some_and(|until| until > now);
            !already_ejected
                && (state.probing || state.consecutive_failures >= config.ejection_failures)
        };
        if !should_eject {
            return;
        }
        let others_available = self
            .endpoints()
            .iter()
            .any(|other| !std::ptr::eq(other.as_ref(), endpoint) && !other.is_ejected(now));
        if !others_available {
            return;
        }
        self.ejections.fetch_add(1, Ordering::Relaxed);
        let mut state = endpoint.state();
        state.ejections += 1;
        let duration = config
            .ejection_base
            .saturating_mul(state.ejections)
            .min(config.ejection_max);
        state.ejected_until = Some(now + duration);
        state.probing = true;
        state.consecutive_failures = 0;
        tracing::warn!(
            service = %endpoint.instance.service,
            addr = %endpoint.instance.addr,
            seconds = duration.as_secs(),
            "instance ejected after consecutive failures"
        );
    }
}

/// What a client has learned about one instance, read for metrics and the console.
#[derive(Debug, Clone)]
pub(crate) struct InstanceStats {
    pub(crate) instance: Instance,
    pub(crate) in_flight: usize,
    pub(crate) attempts: u64,
    pub(crate) failures: u64,
    /// The peak-EWMA latency; the optimistic initial guess until measured.
    pub(crate) ewma: Duration,
    pub(crate) ejected: bool,
    pub(crate) first_seen: SystemTime,
}

/// What a client has learned about one service.
#[derive(Debug, Clone)]
pub(crate) struct ServiceStats {
    pub(crate) service: String,
    pub(crate) attempts: u64,
    pub(crate) retries: u64,
    pub(crate) ejections: u64,
    pub(crate) instances: Vec<InstanceStats>,
}

impl ServiceBalancer {
    /// A reading of the service's counters and of each instance the registry lists now.
    pub(crate) fn stats(&self, service: &str) -> ServiceStats {
        let now = Instant::now();
        let instances = self
            .endpoints()
            .iter()
            .map(|endpoint| {
                let state = endpoint.state();
                InstanceStats {
                    instance: endpoint.instance.clone(),
                    in_flight: endpoint.in_flight.load(Ordering::Relaxed),
                    attempts: endpoint.attempts.load(Ordering::Relaxed),
                    failures: endpoint.failures.load(Ordering::Relaxed),
                    ewma: Duration::from_secs_f64(state.ewma),
                    ejected: state.ejected_until.is_some_and(|until| until > now),
                    first_seen: endpoint.first_seen,
                }
            })
            .collect();
        ServiceStats {
            service: service.to_owned(),
            attempts: self.attempts.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            ejections: self.ejections.load(Ordering::Relaxed),
            instances,
        }
    }
}

/// A read-only handle on a client's state that does not keep the client alive: metrics and
/// the console hold it, while the client holds them as its observer.
#[derive(Clone)]
pub(crate) struct ClientView(Weak<super::Inner>);

impl std::fmt::Debug for ClientView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientView")
    }
}

/// What a client has learned, every service it called (or watches) included.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientStats {
    pub(crate) services: Vec<ServiceStats>,
    /// Retries refused because the budget was spent.
    pub(crate) budget_exhausted: u64,
}

impl ServiceClient {
    /// A handle on the client's state for metrics and the console.
    pub(crate) fn view(&self) -> ClientView {
        ClientView(Arc::downgrade(&self.inner))
    }
}

impl ClientView {
    /// The client, while it lives.
    pub(crate) fn client(&self) -> Option<ServiceClient> {
        self.0.upgrade().map(|inner| ServiceClient { inner })
    }

    /// What the client knows now, sorted by service; `None` once the client is gone.
    pub(crate) fn stats(&self) -> Option<ClientStats> {
        Some(self.0.upgrade()?.stats())
    }
}

impl super::Inner {
    /// What the client knows now, sorted by service.
    pub(super) fn stats(&self) -> ClientStats {
        let balancers: Vec<(String, Arc<ServiceBalancer>)> = self
            .balancers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(name, balancer)| (name.clone(), balancer.clone()))
            .collect();
        let mut services: Vec<ServiceStats> = balancers
            .iter()
            .map(|(name, balancer)| balancer.stats(name))
            .collect();
        services.sort_by(|a, b| a.service.cmp(&b.service));
        ClientStats {
            services,
            budget_exhausted: self.budget.exhausted(),
        }
    }
}

impl ServiceClient {
    /// Adds the client's counters to `sink` when the client is dropped.
    pub(crate) fn retire_to(&self, sink: Arc<Retired>) {
        self.inner
            .retire_to
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sink);
    }
}

/// The counters of clients that are gone (attempts, retries, ejections, budget refusals by
/// service; no instances), kept so that sums over clients never go down.
#[derive(Debug, Default)]
pub(crate) struct Retired(Mutex<ClientStats>);

impl Retired {
    /// Adds a dropped client's counters.
    pub(super) fn add(&self, stats: &ClientStats) {
        let mut retired = self.0.lock().unwrap_or_else(|e| e.into_inner());
        retired.budget_exhausted += stats.budget_exhausted;
        for service in &stats.services {
            match retired
                .services
                .iter_mut()
                .find(|r| r.service == service.service)
            {
                Some(known) => {
                    known.attempts += service.attempts;
                    known.retries += service.retries;
                    known.ejections += service.ejections;
                }
                None => retired.services.push(ServiceStats {
                    instances: Vec::new(),
                    ..service.clone()
                }),
            }
        }
    }

    /// The totals so far.
    pub(crate) fn totals(&self) -> ClientStats {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl ServiceClient {
    /// Starts watching `service`'s instances, as a first call would, so that they show
    /// before any call was made.
    pub(crate) async fn watch_service(&self, service: &str) -> Result<(), super::ClientError> {
        self.balancer(service).await.map(drop)
    }

    /// Whether `instance` answers `GET /health` with a success within `within`: asked of that
    /// very instance (over TLS when it registered `https`), not of whichever the balancer
    /// would pick.
    pub(crate) async fn probe_health(&self, instance: &Instance, within: Duration) -> bool {
        let addr = instance.addr;
        use http_body_util::BodyExt;
        let (mut head, ()) = http::Request::new(()).into_parts();
        head.uri = http::Uri::from_static("/health");
        let mut lines = super::HeaderLines::new();
        lines.push(&http::header::HOST, addr.to_string().as_bytes());
        let deadline = tokio::time::Instant::now() + within;
        let answered = tokio::time::timeout_at(deadline, async {
            let target = super::pool::Target::of(instance);
            let body = crate::Body::empty();
            let sent = self
                .inner
                .pool
                .send(&target, &head, lines.as_bytes(), body, deadline);
            let response = sent.await.ok()?;
            let healthy = response.status().is_success();
            // Read to the end, so that the connection goes back to the pool.
            response.into_body().collect().await.ok()?;
            Some(healthy)
        })
        .await;
        matches!(answered, Ok(Some(true)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::Instance;

    fn balancer(ports: &[u16]) -> (ServiceBalancer, tokio::sync::watch::Sender<Arc<[Instance]>>) {
        let instances: Vec<Instance> = ports
            .iter()
            .map(|&port| {
                Instance::new("svc", ([127, 0, 0, 1], port).into()).with_id(port.to_string())
            })
            .collect();
        let (sender, receiver) = tokio::sync::watch::channel(Arc::from(instances));
        (ServiceBalancer::new(receiver, Balance::PeakEwma), sender)
    }

    fn config() -> ClientConfig {
        ClientConfig::default().ejection(5, Duration::from_secs(30), Duration::from_secs(300))
    }

    #[tokio::test]
    async fn five_consecutive_failures_eject_but_never_the_last_instance() {
        let (balancer, _sender) = balancer(&[1, 2]);
        let endpoints = balancer.endpoints();
        for _ in 0..4 {
            balancer.record_failure(&endpoints[0], &config());
        }
        assert!(!endpoints[0].is_ejected(Instant::now()));
        balancer.record_failure(&endpoints[0], &config());
        assert!(endpoints[0].is_ejected(Instant::now()));
        for _ in 0..20 {
            assert_eq!(balancer.pick(&[], Instant::now()).unwrap().instance.id, "2");
        }
        for _ in 0..10 {
            balancer.record_failure(&endpoints[1], &config());
        }
        assert!(
            !endpoints[1].is_ejected(Instant::now()),
            "the last instance stays"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ejection_grows_with_each_ejection_and_a_probe_readmits() {
        let (balancer, _sender) = balancer(&[1, 2, 3]);
        let endpoints = balancer.endpoints();
        for _ in 0..5 {
            balancer.record_failure(&endpoints[0], &config());
        }
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(
            !endpoints[0].is_ejected(Instant::now()),
            "back for a probe after 30 s"
        );
        balancer.record_failure(&endpoints[0], &config());
        assert!(
            endpoints[0].is_ejected(Instant::now()),
            "a failed probe ejects again"
        );
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(
            endpoints[0].is_ejected(Instant::now()),
            "the second ejection lasts 60 s"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        balancer.record_success(&endpoints[0], Instant::now(), Duration::from_millis(1));
        balancer.record_failure(&endpoints[0], &config());
        assert!(
            !endpoints[0].is_ejected(Instant::now()),
            "a successful probe readmits"
        );
    }

    #[tokio::test]
    async fn panic_mode_uses_every_instance_past_half_ejected() {
        let (balancer, _sender) = balancer(&[1, 2, 3]);
        let endpoints = balancer.endpoints();
        for endpoint in &endpoints[..2] {
            for _ in 0..5 {
                balancer.record_failure(endpoint, &config());
            }
        }
        assert!(endpoints[..2].iter().all(|e| e.is_ejected(Instant::now())));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(
                balancer
                    .pick(&[], Instant::now())
                    .unwrap()
                    .instance
                    .id
                    .clone(),
            );
        }
        assert_eq!(seen.len(), 3);
    }

    #[tokio::test]
    async fn p2c_prefers_the_faster_instance() {
        let (balancer, _sender) = balancer(&[1, 2]);
        let endpoints = balancer.endpoints();
        balancer.record_success(&endpoints[0], Instant::now(), Duration::from_millis(200));
        balancer.record_success(&endpoints[1], Instant::now(), Duration::from_millis(1));
        let fast = (0..100)
            .filter(|_| balancer.pick(&[], Instant::now()).unwrap().instance.id == "2")
            .count();
        assert_eq!(fast, 100, "with two instances, P2C always compares both");
    }

    #[tokio::test]
    async fn new_lists_keep_what_was_learned() {
        let (balancer, sender) = balancer(&[1, 2]);
        let before = balancer.endpoints();
        let mut instances = sender.borrow().to_vec();
        instances.push(Instance::new("svc", ([127, 0, 0, 1], 3).into()).with_id("3"));
        sender.send(Arc::from(instances)).unwrap();
        let after = balancer.endpoints();
        assert_eq!(after.len(), 3);
        assert!(Arc::ptr_eq(&before[0], &after[0]));
        assert!(balancer.pick(&before, Instant::now()).unwrap().instance.id == "3");
    }
}
