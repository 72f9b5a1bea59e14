//! The read connections: a few kept idle between reads, and reads that stay small run where they
//! are asked for.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use super::{blocking, connect, failure, lock, Inner, SqliteStore, BUSY_TIMEOUT};
use crate::resource::store::StoreError;

/// How many idle read connections are kept open.
const MAX_IDLE_READERS: usize = 4;

/// How many of SQLite's virtual machine instructions a read on the calling task may run
/// before it is stopped and sent to the blocking pool: some 80 us of a scan on a 2-CPU VM
/// (21 ns each), within the tens of microseconds a task may hold its worker thread, and a
/// count or page over a few hundred records (a page of ten costs ~130, a count ~6 a record).
const INLINE_BUDGET: u32 = 4_000;

/// Every how many instructions SQLite reports to the budget: a count of its own, per read,
/// since SQLite counts each statement's instructions over all its runs.
const BUDGET_STEP: u32 = 100;

impl SqliteStore {
    /// Runs `f` on a read connection, on the blocking pool.
    pub(super) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        blocking(move || {
            let idle = lock(&inner.readers).pop();
            let mut conn = match idle {
                Some(conn) => conn,
                None => connect(&inner.path, true).map_err(failure)?,
            };
            let result = f(&mut conn);
            inner.keep_idle(conn);
            result
        })
        .await
    }

    /// Runs `f`, a read, on an idle read connection right here, on the calling task, as long
    /// as it stays within [`INLINE_BUDGET`] of SQLite's work; on the blocking pool, as
    /// [`read`](Self::read), when no connection is idle, the database is busy, or the read
    /// outgrows the budget (stopped there, rolled back, and run again on the pool).
    ///
    /// Why here: a read of a database the page cache holds, a record found by its key or a
    /// page of a small collection, takes microseconds, and a trip through the blocking pool
    /// costs more than the read, two thread hand-offs (the shop's catalog on one CPU answers
    /// 11-13k `GET /product/{id}` a second through the pool, two context switches each, and
    /// 31k here, with none; a page of ten products with its count, 6.8-7.1k and 10-13k). Here the read waits for no lock (a busy database sends it to the
    /// pool, to wait there as every other operation does), and the budget keeps a read that
    /// turns out long (a count over a large collection, a far offset) from holding the
    /// task's worker thread. What it cannot avoid is a page neither SQLite nor the operating
    /// system has in memory, read from the disk while the worker waits.
    pub(super) async fn read_here<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        // Opening a connection is file work: only an idle one is used here.
        let idle = lock(&self.inner.readers).pop();
        let Some(mut conn) = idle else {
            return self.read(f).await;
        };
        let spent = Arc::new(AtomicU32::new(0));
        let answered = bound(&conn, &spent).ok().map(|()| f(&mut conn));
        if unbound(&conn) {
            self.inner.keep_idle(conn);
        }
        if spent.load(Ordering::Relaxed) >= INLINE_BUDGET / BUDGET_STEP {
            return self.read(f).await;
        }
        match answered {
            // Busy, locked, or another failure that may pass: tried again where waiting is
            // allowed.
            Some(Err(err)) if err.is_unavailable() => self.read(f).await,
            Some(answered) => answered,
            None => self.read(f).await,
        }
    }
}

/// Sets `conn` up for a read on the calling task: no waiting for a lock, and stopped once it
/// has run [`INLINE_BUDGET`] instructions (counted in `spent`, in steps of [`BUDGET_STEP`]).
fn bound(conn: &Connection, spent: &Arc<AtomicU32>) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::ZERO)?;
    let spent = spent.clone();
    conn.progress_handler(
        BUDGET_STEP as i32,
        Some(move || spent.fetch_add(1, Ordering::Relaxed) + 1 >= INLINE_BUDGET / BUDGET_STEP),
    )
}

/// Undoes [`bound`], and says whether `conn` is fit to keep: one that could not be given its
/// patience back, or freed of the budget, is closed instead.
fn unbound(conn: &Connection) -> bool {
    conn.progress_handler(0, None::<fn() -> bool>).is_ok()
        && conn.busy_timeout(BUSY_TIMEOUT).is_ok()
}

impl Inner {
    /// Keeps `conn` for the next read, unless a read left it inside a transaction (a stopped
    /// read whose rollback failed): it would hold on to an old snapshot of the database.
    fn keep_idle(&self, conn: Connection) {
        if !conn.is_autocommit() {
            return;
        }
        let mut readers = lock(&self.readers);
        if readers.len() < MAX_IDLE_READERS {
            readers.push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use rusqlite::StatementStatus;
    use serde_json::json;

    use super::lock;

    use crate::resource::store::sqlite::SqliteStore;
    use crate::resource::store::{Collection, Id, ListQuery, Store, StoreError};

    /// A runtime whose blocking pool has one thread, which the tests hold to tell a read made
    /// on the calling task from one sent to the pool.
    fn one_blocking_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(1)
            .build()
            .unwrap()
    }

    /// Holds the blocking pool's one thread until the returned sender is used.
    fn hold_the_pool() -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), std::sync::mpsc::RecvError>>,
    ) {
        let (held, holding) = std::sync::mpsc::channel::<()>();
        (held, tokio::task::spawn_blocking(move || holding.recv()))
    }

    async fn store_with(
        products: &Collection,
        names: &[&str],
    ) -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("shop.db")).unwrap());
        store.prepare(products).await.unwrap();
        for name in names {
            let data = json!({ "name": name }).as_object().unwrap().clone();
            store.create(products, None, None, data).await.unwrap();
        }
        (dir, store)
    }

    fn window(offset: u64, limit: u64) -> ListQuery {
        ListQuery {
            offset,
            limit,
            ..ListQuery::default()
        }
    }

    /// The proof that a point read does not go through the blocking pool: with the pool's one
    /// thread busy for seconds, a read of a record still answers at once (the read before it,
    /// with no connection idle yet, made one on the pool).
    #[test]
    fn a_point_read_answers_while_the_blocking_pool_is_busy() {
        one_blocking_thread().block_on(async {
            let products = Collection::new("product");
            let (_dir, store) = store_with(&products, &["Lamp"]).await;
            store.get(&products, None, &Id::Int(1)).await.unwrap();

            let (held, busy) = hold_the_pool();
            let asked = Instant::now();
            let read = tokio::time::timeout(
                Duration::from_secs(5),
                store.get(&products, None, &Id::Int(1)),
            )
            .await;
            let waited = asked.elapsed();
            held.send(()).unwrap();
            busy.await.unwrap().unwrap();
            let record = read.expect("the read did not wait for the pool").unwrap();
            assert_eq!(record.data["name"], "Lamp");
            assert!(waited.as_secs() < 1, "{waited:?}");
            let missing = store.get(&products, None, &Id::Int(999)).await;
            assert!(matches!(missing, Err(StoreError::NotFound)));
        });
    }

    /// A page of a small collection, its count included, is read on the calling task too.
    #[test]
    fn a_small_list_answers_while_the_blocking_pool_is_busy() {
        one_blocking_thread().block_on(async {
            let products = Collection::new("product");
            let (_dir, store) = store_with(&products, &["Lamp", "Desk", "Chair"]).await;
            store.list(&products, &window(0, 10)).await.unwrap();

            let (held, busy) = hold_the_pool();
            let read =
                tokio::time::timeout(Duration::from_secs(5), store.list(&products, &window(1, 1)))
                    .await;
            held.send(()).unwrap();
            busy.await.unwrap().unwrap();
            let page = read.expect("the list did not wait for the pool").unwrap();
            assert_eq!(page.total, 3);
            assert_eq!(page.items.len(), 1);
            assert_eq!(page.items[0].data["name"], "Desk");
        });
    }

    /// A list that outgrows the budget (counting a thousand records) is stopped and made again
    /// on the pool: it waits for the pool, answers in full once the pool is free, and leaves
    /// no stale snapshot behind on the connection it was stopped on.
    #[test]
    fn a_long_list_is_stopped_and_made_on_the_pool() {
        one_blocking_thread().block_on(async {
            let products = Collection::new("product");
            let (_dir, store) = store_with(&products, &["Lamp"]).await;
            // A thousand more in one statement, rather than a thousand commits.
            store
                .inner
                .writer
                .write(|conn| {
                    conn.execute_batch(
                        "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < 1001) \
                         INSERT INTO \"product\" (id, version, data) \
                         SELECT i, 1, json_object('name', 'P' || i) FROM n;",
                    )
                    .map_err(super::failure)
                })
                .await
                .unwrap();
            store.list(&products, &window(0, 1)).await.unwrap();

            let (held, busy) = hold_the_pool();
            let last = window(1000, 5);
            let mut read = Box::pin(store.list(&products, &last));
            let early = tokio::time::timeout(Duration::from_millis(300), &mut read).await;
            assert!(early.is_err(), "the long list was answered without the pool");
            held.send(()).unwrap();
            busy.await.unwrap().unwrap();
            let page = read.await.unwrap();
            assert_eq!(page.total, 1001);
            assert_eq!(page.items.len(), 1);
            assert_eq!(page.items[0].id, Id::Int(1001));

            let data = json!({ "name": "Lamp" }).as_object().unwrap().clone();
            store.create(&products, None, None, data).await.unwrap();
            for _ in 0..super::MAX_IDLE_READERS + 1 {
                let fresh = store.list(&products, &window(0, 1)).await.unwrap();
                assert_eq!(fresh.total, 1002, "a read saw an old snapshot");
            }
        });
    }

    /// A page's statement stays prepared when its `LIMIT` and `OFFSET` change (without the
    /// planner's stability guarantee, SQLite prepares it again at each new binding).
    #[test]
    fn a_page_statement_is_not_prepared_again() {
        one_blocking_thread().block_on(async {
            let products = Collection::new("product");
            let (_dir, store) = store_with(&products, &["Lamp", "Desk", "Chair"]).await;
            for offset in 0..4 {
                store
                    .list(&products, &window(offset, offset + 1))
                    .await
                    .unwrap();
            }
            let conn = lock(&store.inner.readers).pop().expect("an idle reader");
            let stmt = conn
                .prepare_cached(
                    "SELECT id, parent, version, data FROM \"product\" WHERE parent IS ?1 \
                     AND deleted = 0 ORDER BY id LIMIT ?2 OFFSET ?3",
                )
                .unwrap();
            assert!(
                stmt.get_status(StatementStatus::Run) >= 4,
                "not the cached one"
            );
            assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0);
        });
    }
}
