//! What a [`MeteredStore`](crate::resource::store::MeteredStore) measures: the duration of
//! every store operation by collection, operation and error type, and, read when metrics are
//! scraped, the connection pool of every store that has one.
//!
//! Named after OpenTelemetry's database client conventions: `db.client.operation.duration`
//! (with its advised buckets, 1 ms to 10 s), `db.client.connection.count`,
//! `db.client.connection.max`, `db.client.connection.pending_requests` and
//! `db.client.connection.wait_time`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::time::Duration;

use super::histogram::Histogram;
use super::sink::{Family, Kind, OtelName, Sink};
use crate::resource::store::{PoolStatus, Store, StoreError};

/// OpenTelemetry's advised bucket boundaries for `db.client.operation.duration`, in seconds.
pub(crate) const DB_DURATION_BOUNDS: [f64; 9] =
    [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// A [`Store`] method, as the `db_operation_name` label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Prepare,
    Create,
    Get,
    Replace,
    Delete,
    List,
    DeleteAll,
    Commit,
    KeyRecord,
}

impl Operation {
    const ALL: [Operation; 9] = [
        Operation::Prepare,
        Operation::Create,
        Operation::Get,
        Operation::Replace,
        Operation::Delete,
        Operation::List,
        Operation::DeleteAll,
        Operation::Commit,
        Operation::KeyRecord,
    ];

    fn name(self) -> &'static str {
        match self {
            Operation::Prepare => "prepare",
            Operation::Create => "create",
            Operation::Get => "get",
            Operation::Replace => "replace",
            Operation::Delete => "delete",
            Operation::List => "list",
            Operation::DeleteAll => "delete_all",
            Operation::Commit => "commit",
            Operation::KeyRecord => "key_record",
        }
    }
}

/// The `error_type` label of each failure, in the order of [`ErrorType`]'s indexes.
const ERROR_TYPES: [&str; 10] = [
    "not_found",
    "duplicate",
    "version_mismatch",
    "invalid_id",
    "invalid_filter",
    "backend",
    "unavailable",
    "incompatible",
    "key_taken",
    "cancelled",
];

/// How an operation failed: its series' place in [`ERROR_TYPES`], one per kind of failure,
/// never its text, so that the label stays a bounded set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ErrorType(usize);

impl ErrorType {
    /// The operation's future was dropped before it completed: its caller went away, or a
    /// deadline cut it off. Counted, so that the histogram does not hide the slowest
    /// operations, the ones nobody waited for.
    pub(crate) const CANCELLED: Self = Self(9);

    pub(crate) fn of(error: &StoreError) -> Self {
        Self(match error {
            StoreError::NotFound => 0,
            StoreError::Duplicate { .. } => 1,
            StoreError::VersionMismatch { .. } => 2,
            StoreError::InvalidId(_) => 3,
            StoreError::InvalidFilter(_) => 4,
            StoreError::Backend(_) => 5,
            StoreError::Unavailable(_) => 6,
            StoreError::Incompatible(_) => 7,
            StoreError::KeyTaken => 8,
        })
    }
}

/// The store operations and pools reported to one [`Metrics`](super::Metrics).
#[derive(Debug, Default)]
pub(crate) struct StoreMetrics {
    /// One entry per database system (`sqlite`, `postgresql`...), in the order first seen.
    systems: Mutex<Vec<Arc<SystemSeries>>>,
    /// The stores with a connection pool, read when scraped; gone stores are forgotten then.
    pools: Mutex<Vec<Weak<dyn Store>>>,
}

/// The operations on the stores of one database system.
#[derive(Debug)]
pub(crate) struct SystemSeries {
    system: &'static str,
    /// By collection name; `""` for operations on no single collection (a commit across
    /// collections, a key record), which OpenTelemetry leaves without `db.collection.name`.
    /// Looked up on every operation: hashed with foldhash rather than SipHash, as the names
    /// come from code, not from clients (SipHash was a third of the cost of recording).
    collections: RwLock<HashMap<Box<str>, Box<CollectionSeries>, foldhash::fast::RandomState>>,
}

/// Every operation on one collection, made together the first time the collection is seen.
#[derive(Debug)]
struct CollectionSeries {
    operations: [OperationSeries; Operation::ALL.len()],
}

#[derive(Debug)]
struct OperationSeries {
    succeeded: Histogram,
    /// Made on the first failure of each type: most never fail most ways.
    failed: [OnceLock<Histogram>; ERROR_TYPES.len()],
}

impl CollectionSeries {
    fn new() -> Self {
        Self {
            operations: std::array::from_fn(|_| OperationSeries {
                succeeded: Histogram::new(&DB_DURATION_BOUNDS),
                failed: Default::default(),
            }),
        }
    }
}

impl StoreMetrics {
    /// The series of `system`'s operations, made the first time.
    pub(crate) fn system(&self, system: &'static str) -> Arc<SystemSeries> {
        let mut systems = self.systems.lock().expect("store systems lock poisoned");
        if let Some(known) = systems.iter().find(|known| known.system == system) {
            return known.clone();
        }
        let series = Arc::new(SystemSeries {
            system,
            collections: RwLock::default(),
        });
        systems.push(series.clone());
        series
    }

    /// Reads `store`'s pool whenever metrics are scraped, until the store is dropped. Watching
    /// a store twice reads it once.
    pub(crate) fn watch_pool(&self, store: &Arc<dyn Store>) {
        let mut pools = self.pools.lock().expect("store pools lock poisoned");
        let store = Arc::downgrade(store);
        if !pools.iter().any(|known| known.ptr_eq(&store)) {
            pools.push(store);
        }
    }

    pub(crate) fn write_to(&self, out: &mut dyn Sink) {
        self.write_operations(out);
        self.write_pools(out);
    }

    fn write_operations(&self, out: &mut dyn Sink) {
        let systems = self
            .systems
            .lock()
            .expect("store systems lock poisoned")
            .clone();
        out.family(&OPERATION_DURATION);
        for system in &systems {
            let collections = system
                .collections
                .read()
                .expect("store series lock poisoned");
            let mut names: Vec<&str> = collections.keys().map(|name| &**name).collect();
            names.sort_unstable();
            for collection in names {
                let series = &collections[collection];
                for (operation, one) in Operation::ALL.iter().zip(&series.operations) {
                    let mut labels = vec![
                        ("db.system.name", system.system),
                        ("db.collection.name", collection),
                        ("db.operation.name", operation.name()),
                    ];
                    // A series with no operation yet stays out, so that a collection does not
                    // add nine empty histograms the moment it is seen.
                    let succeeded = one.succeeded.snapshot();
                    if succeeded.count > 0 {
                        out.histogram(&labels, &succeeded);
                    }
                    labels.push(("error.type", ""));
                    for (error_type, failed) in ERROR_TYPES.iter().zip(&one.failed) {
                        if let Some(failed) = failed.get() {
                            labels[3].1 = *error_type;
                            out.histogram(&labels, &failed.snapshot());
                        }
                    }
                }
            }
        }
    }

    fn write_pools(&self, out: &mut dyn Sink) {
        let stores: Vec<Arc<dyn Store>> = {
            let mut pools = self.pools.lock().expect("store pools lock poisoned");
            pools.retain(|store| store.strong_count() > 0);
            pools.iter().filter_map(Weak::upgrade).collect()
        };
        // Pools are named by their system, numbered from the second one of a system on, so
        // that two pools never share a series.
        let mut named: Vec<(&str, String, PoolStatus, &Arc<dyn Store>)> =
            Vec::with_capacity(stores.len());
        for store in &stores {
            let Some(status) = store.pool_status() else {
                continue;
            };
            let system = store.system_name();
            let same = named.iter().filter(|(s, ..)| *s == system).count();
            let pool = match same {
                0 => system.to_owned(),
                n => format!("{system}_{}", n + 1),
            };
            named.push((system, pool, status, store));
        }
        type PoolValue = fn(&PoolStatus) -> usize;
        out.family(&CONNECTION_COUNT);
        for (_, pool, status, _) in &named {
            let states: [(&str, PoolValue); 2] = [
                ("idle", |s| s.idle),
                ("used", |s| s.size.saturating_sub(s.idle)),
            ];
            for (state, value) in states {
                let labels = [
                    ("db.client.connection.pool.name", pool.as_str()),
                    ("db.client.connection.state", state),
                ];
                out.gauge(&labels, value(status) as f64);
            }
        }
        let gauges: [(&Family, PoolValue); 2] = [
            (&CONNECTION_MAX, |s| s.max_size),
            (&PENDING_REQUESTS, |s| s.waiting),
        ];
        for (family, value) in gauges {
            out.family(family);
            for (_, pool, status, _) in &named {
                let labels = [("db.client.connection.pool.name", pool.as_str())];
                out.gauge(&labels, value(status) as f64);
            }
        }
        out.family(&WAIT_TIME);
        for (_, pool, _, store) in &named {
            if let Some(waits) = store.pool_waits() {
                let labels = [("db.client.connection.pool.name", pool.as_str())];
                out.histogram(&labels, &waits.histogram().snapshot());
            }
        }
    }
}

const OPERATION_DURATION: Family = Family::new(
    "db_client_operation_duration_seconds",
    Kind::Histogram,
    "s",
    "Duration of store operations",
)
.otel(OtelName::Convention("db.client.operation.duration"));
const CONNECTION_COUNT: Family = Family::new(
    "db_client_connection_count",
    Kind::UpDown,
    "{connection}",
    "Connections open in the pool, by state: idle or used",
)
.otel(OtelName::Convention("db.client.connection.count"));
const CONNECTION_MAX: Family = Family::new(
    "db_client_connection_max",
    Kind::UpDown,
    "{connection}",
    "The most connections the pool may open",
)
.otel(OtelName::Convention("db.client.connection.max"));
const PENDING_REQUESTS: Family = Family::new(
    "db_client_connection_pending_requests",
    Kind::UpDown,
    "{request}",
    "Operations waiting for a connection of the pool",
)
.otel(OtelName::Convention(
    "db.client.connection.pending_requests",
));
const WAIT_TIME: Family = Family::new(
    "db_client_connection_wait_time_seconds",
    Kind::Histogram,
    "s",
    "Time operations waited for a connection of the pool, connecting included",
)
.otel(OtelName::Convention("db.client.connection.wait_time"));

impl SystemSeries {
    /// Makes the series of `collection` now, so that its first operation finds them.
    pub(crate) fn register(&self, collection: &str) {
        let known = self
            .collections
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(collection);
        if !known {
            self.collections
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(collection.into())
                .or_insert_with(|| Box::new(CollectionSeries::new()));
        }
    }

    /// Records one operation: a read lock and a few relaxed atomic adds once the collection's
    /// series exist, which its first operation makes.
    pub(crate) fn record(
        &self,
        collection: &str,
        operation: Operation,
        failure: Option<ErrorType>,
        elapsed: Duration,
    ) {
        let trace = crate::trace::current_ids();
        loop {
            {
                // A panic elsewhere cannot leave the series half-made: recording goes on.
                let collections = self
                    .collections
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                if let Some(series) = collections.get(collection) {
                    // `ALL` lists the operations in declaration order.
                    let one = &series.operations[operation as usize];
                    let histogram = match failure {
                        None => &one.succeeded,
                        Some(ErrorType(index)) => {
                            one.failed[index].get_or_init(|| Histogram::new(&DB_DURATION_BOUNDS))
                        }
                    };
                    histogram.observe(elapsed, trace);
                    return;
                }
            }
            self.register(collection);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::Exposition;

    #[test]
    fn the_cancelled_index_names_cancelled() {
        assert_eq!(ERROR_TYPES[ErrorType::CANCELLED.0], "cancelled");
        // and no store error takes its place.
        assert!(ERROR_TYPES[..ErrorType::CANCELLED.0]
            .iter()
            .all(|name| *name != "cancelled"));
    }

    fn encoded(metrics: &StoreMetrics) -> String {
        let mut out = Exposition::new(super::super::Format::Prometheus);
        metrics.write_to(&mut out);
        out.finish()
    }

    #[test]
    fn operations_are_counted_by_collection_operation_and_error_type() {
        let metrics = StoreMetrics::default();
        let sqlite = metrics.system("sqlite");
        let millis = Duration::from_millis(2);
        sqlite.record("users", Operation::Create, None, millis);
        sqlite.record("users", Operation::Create, None, millis);
        let not_found = Some(ErrorType::of(&StoreError::NotFound));
        sqlite.record("users", Operation::Get, not_found, millis);
        sqlite.record("", Operation::KeyRecord, None, millis);
        let text = encoded(&metrics);
        assert!(
            text.contains(
                "db_client_operation_duration_seconds_count{db_system_name=\"sqlite\",\
                 db_collection_name=\"users\",db_operation_name=\"create\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "db_client_operation_duration_seconds_count{db_system_name=\"sqlite\",\
                 db_collection_name=\"users\",db_operation_name=\"get\",error_type=\"not_found\"} 1\n"
            ),
            "{text}"
        );
        // 2 ms falls in the 5 ms bucket, not the 1 ms one.
        assert!(
            text.contains("db_operation_name=\"create\",le=\"0.001\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("db_operation_name=\"create\",le=\"0.005\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("db_collection_name=\"\",db_operation_name=\"key_record\"} 1\n"),
            "{text}"
        );
        // Operations that never happened add no series.
        assert!(!text.contains("db_operation_name=\"list\""), "{text}");
        assert!(!text.contains("db_operation_name=\"get\"}"), "{text}");
    }

    #[test]
    fn a_system_is_made_once() {
        let metrics = StoreMetrics::default();
        let first = metrics.system("sqlite");
        let second = metrics.system("sqlite");
        assert!(Arc::ptr_eq(&first, &second));
        assert!(!Arc::ptr_eq(&first, &metrics.system("postgresql")));
    }
}
