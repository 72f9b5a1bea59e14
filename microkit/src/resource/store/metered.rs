//! [`MeteredStore`]: any [`Store`] with the duration of every operation recorded in
//! [`Metrics`], and its connection pool (when it has one) read at every scrape.

use std::any::TypeId;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::{
    Collection, Committed, Id, KeyCommit, KeyRecord, ListQuery, MemoryStore, Page, Record, Store,
    StoreFuture, Write,
};
use crate::metrics::{
    Histogram, Metrics, StoreErrorType as ErrorType, StoreOperation as Operation, SystemSeries,
    DB_DURATION_BOUNDS,
};

/// A store's connection pool at one moment, as [`Store::pool_status`] reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// The most connections the pool may open.
    pub max_size: usize,
    /// The connections open now, idle or in use.
    pub size: usize,
    /// The open connections idle now, ready for the next operation.
    pub idle: usize,
    /// The operations waiting for a connection now.
    pub waiting: usize,
}

/// How long operations waited for a connection of a store's pool (connecting included, when
/// the pool opened one for them), as [`Store::pool_waits`] reports it: a histogram, recorded
/// with a few relaxed atomic adds.
#[derive(Debug)]
pub struct PoolWaits(Histogram);

impl Default for PoolWaits {
    fn default() -> Self {
        Self(Histogram::new(&DB_DURATION_BOUNDS))
    }
}

impl PoolWaits {
    /// Counts one wait of `waited`.
    pub fn record(&self, waited: Duration) {
        self.0.observe(waited, None);
    }

    pub(crate) fn histogram(&self) -> &Histogram {
        &self.0
    }
}

/// A [`Store`] whose every operation is timed into [`Metrics`]: the histogram
/// `db_client_operation_duration_seconds`, labelled by `db_system_name`, `db_collection_name`,
/// `db_operation_name` (the [`Store`] method: `get`, `list`, `commit`...) and, for a failed
/// operation, `error_type` (the kind of [`StoreError`](super::StoreError): `not_found`,
/// `duplicate`, `unavailable`...; `cancelled` for an operation dropped before it completed,
/// because its caller went away or a deadline passed). A store with a connection pool (PostgreSQL) adds the gauges
/// `db_client_connection_count` (by `db_client_connection_state`: `idle` or `used`),
/// `db_client_connection_max`, `db_client_connection_pending_requests` and the histogram
/// `db_client_connection_wait_time_seconds`, read from the pool when metrics are scraped.
///
/// Pass the service's metrics, so that its `/metrics` shows its stores:
///
/// ```no_run
/// # async fn run() -> Result<(), microkit::BoxError> {
/// use std::sync::Arc;
/// use microkit::metrics::Metrics;
/// use microkit::resource::store::{MemoryStore, MeteredStore};
/// use microkit::service::Microservice;
/// use microkit::Router;
///
/// let metrics = Arc::new(Metrics::new());
/// let store = MeteredStore::wrap(Arc::new(MemoryStore::new()), &metrics);
/// // ... build the routes on `store` ...
/// # let _ = store;
/// Microservice::new("users", Router::new())
///     .metrics(metrics)
///     .bind()
///     .await?
///     .run(std::future::pending())
///     .await?;
/// # Ok(())
/// # }
/// ```
///
/// Labels take a bounded set of values: collections come from code, operations and error
/// types are fixed lists. An operation costs an extra boxed future, a read lock and a few
/// relaxed atomic adds; a collection's series are made on its first operation, never again.
/// A store not wrapped costs nothing.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    series: Arc<SystemSeries>,
}

impl std::fmt::Debug for MeteredStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredStore")
            .field("system", &self.inner.system_name())
            .finish_non_exhaustive()
    }
}

impl MeteredStore {
    /// `store`, recording into `metrics`.
    pub fn new(store: Arc<dyn Store>, metrics: &Metrics) -> Self {
        let series = metrics.store().system(store.system_name());
        if store.pool_status().is_some() {
            metrics.store().watch_pool(&store);
        }
        Self {
            inner: store,
            series,
        }
    }

    /// `store`, recording into `metrics`, ready to hand to resources.
    pub fn wrap(store: Arc<dyn Store>, metrics: &Metrics) -> Arc<dyn Store> {
        Arc::new(Self::new(store, metrics))
    }

    /// The store measured.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// `future`, recording its duration and outcome when it completes, or as `cancelled` when
    /// it is dropped once started and before it completes.
    fn timed<'a, T: Send + 'a>(
        &'a self,
        operation: Operation,
        collection: impl AsRef<str> + Send + 'a,
        future: StoreFuture<'a, T>,
    ) -> StoreFuture<'a, T> {
        Box::pin(async move {
            let timing = Timing {
                series: &self.series,
                operation,
                collection,
                started: Instant::now(),
                finished: false,
            };
            let result = future.await;
            timing.finish(result.as_ref().err().map(ErrorType::of));
            result
        })
    }
}

/// One operation being timed: recorded once, when it finishes or when it is dropped unfinished.
struct Timing<'a, C: AsRef<str>> {
    series: &'a SystemSeries,
    operation: Operation,
    collection: C,
    started: Instant,
    finished: bool,
}

impl<C: AsRef<str>> Timing<'_, C> {
    fn finish(mut self, failure: Option<ErrorType>) {
        self.finished = true;
        self.record(failure);
    }

    fn record(&self, failure: Option<ErrorType>) {
        let collection = self.collection.as_ref();
        let elapsed = self.started.elapsed();
        self.series
            .record(collection, self.operation, failure, elapsed);
    }
}

impl<C: AsRef<str>> Drop for Timing<'_, C> {
    fn drop(&mut self) {
        // Not while a panic unwinds through the operation: it is no cancellation, and nothing
        // that could panic again may run then (a second panic aborts the process).
        if !self.finished && !std::thread::panicking() {
            self.record(Some(ErrorType::CANCELLED));
        }
    }
}

/// The collection a commit writes to: OpenTelemetry names it only when there is one, so a
/// commit across collections (or of a key alone) is labelled with none.
struct Written(Option<Arc<Collection>>);

impl Written {
    fn of(writes: &[Write]) -> Self {
        let mut collections = writes.iter().map(Write::collection);
        let first = collections.next();
        let single = first.filter(|first| collections.all(|other| other.name() == first.name()));
        Self(single.cloned())
    }
}

impl AsRef<str> for Written {
    fn as_ref(&self) -> &str {
        self.0.as_deref().map_or("", Collection::name)
    }
}

impl Store for MeteredStore {
    fn prepare<'a>(&'a self, collection: &'a Collection) -> StoreFuture<'a, ()> {
        // Made now, the series cost the first operation nothing.
        self.series.register(collection.name());
        let future = self.inner.prepare(collection);
        self.timed(Operation::Prepare, collection.name(), future)
    }

    fn create<'a>(
        &'a self,
        collection: &'a Collection,
        parent: Option<&'a str>,
        id: Option<Id>,
        data: Map<String, Value>,
    ) -> StoreFuture<'a, Record> {
        let future = self.inner.create(collection, parent, id, data);
        self.timed(Operation::Create, collection.name(), future)
    }

    fn get<'a>(
        &'a self,
        collection: &'a Collection,
        parent: Option<&'a str>,
        id: &'a Id,
    ) -> StoreFuture<'a, Record> {
        let future = self.inner.get(collection, parent, id);
        self.timed(Operation::Get, collection.name(), future)
    }

    fn replace<'a>(
        &'a self,
        collection: &'a Collection,
        parent: Option<&'a str>,
        id: &'a Id,
        data: Map<String, Value>,
        if_version: Option<u64>,
    ) -> StoreFuture<'a, Record> {
        let future = self.inner.replace(collection, parent, id, data, if_version);
        self.timed(Operation::Replace, collection.name(), future)
    }

    fn delete<'a>(
        &'a self,
        collection: &'a Collection,
        parent: Option<&'a str>,
        id: &'a Id,
        if_version: Option<u64>,
    ) -> StoreFuture<'a, ()> {
        let future = self.inner.delete(collection, parent, id, if_version);
        self.timed(Operation::Delete, collection.name(), future)
    }

    fn list<'a>(
        &'a self,
        collection: &'a Collection,
        query: &'a ListQuery,
    ) -> StoreFuture<'a, Page> {
        let future = self.inner.list(collection, query);
        self.timed(Operation::List, collection.name(), future)
    }

    fn delete_all<'a>(
        &'a self,
        collection: &'a Collection,
        parent: Option<&'a str>,
    ) -> StoreFuture<'a, u64> {
        let future = self.inner.delete_all(collection, parent);
        self.timed(Operation::DeleteAll, collection.name(), future)
    }

    fn commit<'a>(
        &'a self,
        writes: Vec<Write>,
        key: Option<KeyCommit>,
    ) -> StoreFuture<'a, Committed> {
        let written = Written::of(&writes);
        let future = self.inner.commit(writes, key);
        self.timed(Operation::Commit, written, future)
    }

    fn key_record<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<KeyRecord>> {
        let future = self.inner.key_record(scope, key);
        // Key records live in a table of their own, no collection of the application's.
        self.timed(Operation::KeyRecord, "", future)
    }

    fn system_name(&self) -> &'static str {
        self.inner.system_name()
    }

    fn pool_status(&self) -> Option<PoolStatus> {
        self.inner.pool_status()
    }

    fn pool_waits(&self) -> Option<&PoolWaits> {
        self.inner.pool_waits()
    }
}

/// The `db.system.name` of microkit's own stores, known by type so that each backend need
/// not repeat it; `other_sql` (OpenTelemetry's catch-all) for any other.
pub(crate) fn system_name_of(store: TypeId) -> &'static str {
    #[cfg(feature = "sqlite")]
    if store == TypeId::of::<super::sqlite::SqliteStore>() {
        return "sqlite";
    }
    #[cfg(feature = "postgres")]
    if store == TypeId::of::<super::postgres::PostgresStore>() {
        return "postgresql";
    }
    if store == TypeId::of::<MemoryStore>() {
        return "memory";
    }
    "other_sql"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::store::StoreError;

    #[tokio::test]
    async fn operations_reach_the_metrics_and_results_pass_through() {
        let metrics = Metrics::new();
        let store = MeteredStore::new(Arc::new(MemoryStore::new()), &metrics);
        let users = Collection::new("users");
        store.prepare(&users).await.unwrap();
        let created = store.create(&users, None, None, Map::new()).await.unwrap();
        assert_eq!(store.get(&users, None, &created.id).await.unwrap(), created);
        let missing = store.get(&users, None, &Id::Int(999)).await;
        assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
        let text = metrics.encode();
        let count = |labels: &str| {
            let line = format!("db_client_operation_duration_seconds_count{{{labels}}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&line))
                .unwrap_or_else(|| panic!("no {line} in {text}"))
                .to_owned()
        };
        let base = "db_system_name=\"memory\",db_collection_name=\"users\"";
        assert_eq!(count(&format!("{base},db_operation_name=\"create\"")), "1");
        assert_eq!(count(&format!("{base},db_operation_name=\"get\"")), "1");
        assert_eq!(
            count(&format!(
                "{base},db_operation_name=\"get\",error_type=\"not_found\""
            )),
            "1"
        );
        // A memory store has no pool.
        assert!(store.pool_status().is_none());
        assert!(!text.contains("db_client_connection_count{"), "{text}");
    }

    #[tokio::test]
    async fn an_operation_dropped_midway_counts_as_cancelled() {
        let metrics = Metrics::new();
        let store = MeteredStore::new(Arc::new(MemoryStore::new()), &metrics);
        // An operation that never completes, cut off by a deadline, as a request's would be.
        let stuck: StoreFuture<'_, Record> = Box::pin(std::future::pending());
        let cut = tokio::time::timeout(
            Duration::from_millis(20),
            store.timed(Operation::Get, "users", stuck),
        )
        .await;
        assert!(cut.is_err());
        // One dropped before it was ever polled never started: nothing to count.
        let unstarted: StoreFuture<'_, Record> = Box::pin(std::future::pending());
        drop(store.timed(Operation::Get, "users", unstarted));
        let users = Collection::new("users");
        store.get(&users, None, &Id::Int(1)).await.unwrap_err();
        let text = metrics.encode();
        let base =
            "db_system_name=\"memory\",db_collection_name=\"users\",db_operation_name=\"get\"";
        let cancelled = format!(
            "db_client_operation_duration_seconds_count{{{base},error_type=\"cancelled\"}} 1\n"
        );
        assert!(text.contains(&cancelled), "{text}");
        // It waited at least the deadline: the 1 ms bucket does not hold it.
        let fast = format!(
            "db_client_operation_duration_seconds_bucket{{{base},error_type=\"cancelled\",le=\"0.001\"}} 0\n"
        );
        assert!(text.contains(&fast), "{text}");
        // A completed failure is still its own kind.
        assert!(text.contains("error_type=\"not_found\"} 1\n"), "{text}");
    }

    #[test]
    fn a_commit_names_its_collection_only_when_it_has_one() {
        let one = Arc::new(Collection::new("carts"));
        let other = Arc::new(Collection::new("intents"));
        let delete = |collection: &Arc<Collection>| Write::Delete {
            collection: collection.clone(),
            parent: None,
            id: Id::Int(1),
            if_version: None,
        };
        assert_eq!(Written::of(&[delete(&one), delete(&one)]).as_ref(), "carts");
        assert_eq!(Written::of(&[delete(&one), delete(&other)]).as_ref(), "");
        assert_eq!(Written::of(&[]).as_ref(), "");
    }

    #[test]
    fn microkit_stores_name_their_system() {
        assert_eq!(MemoryStore::new().system_name(), "memory");
        let metered = MeteredStore::new(Arc::new(MemoryStore::new()), &Metrics::new());
        assert_eq!(metered.system_name(), "memory");
    }
}
