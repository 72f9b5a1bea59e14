//! The read connections: a few kept idle between reads, and point reads run where they are
//! asked for.

use std::time::Duration;

use rusqlite::Connection;

use super::{blocking, connect, failure, lock, Inner, SqliteStore, BUSY_TIMEOUT};
use crate::resource::store::StoreError;

/// How many idle read connections are kept open.
const MAX_IDLE_READERS: usize = 4;

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

    /// Runs `f`, a point read (one row found through its key: work that does not grow with
    /// the table), on an idle read connection right here, on the calling task; on the
    /// blocking pool, as [`read`](Self::read), when no connection is idle or the database is
    /// busy.
    ///
    /// Why here: such a read of a database the page cache holds takes microseconds, and a
    /// trip through the blocking pool costs more than the read, two thread hand-offs (the
    /// shop's catalog on one CPU answers 11-13k `GET /product/{id}` a second through the
    /// pool, two context switches each, and 31k here, with none). Here the read waits for no
    /// lock (a busy database sends it to the pool, to wait there as every other operation
    /// does); what it cannot avoid is a page neither SQLite nor the operating system has in
    /// memory, read from the disk while the task's worker thread waits: a few pages of one
    /// B-tree descent.
    pub(super) async fn read_point<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        // Opening a connection is file work: only an idle one is used here.
        let idle = lock(&self.inner.readers).pop();
        let Some(mut conn) = idle else {
            return self.read(f).await;
        };
        let answered = conn
            .busy_timeout(Duration::ZERO)
            .ok()
            .map(|()| f(&mut conn));
        // A connection that could not be given its patience back is not kept.
        if conn.busy_timeout(BUSY_TIMEOUT).is_ok() {
            self.inner.keep_idle(conn);
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

impl Inner {
    fn keep_idle(&self, conn: Connection) {
        let mut readers = lock(&self.readers);
        if readers.len() < MAX_IDLE_READERS {
            readers.push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use serde_json::json;

    use crate::resource::store::sqlite::SqliteStore;
    use crate::resource::store::{Collection, Id, Store, StoreError};

    /// The proof that a point read does not go through the blocking pool: with the pool's one
    /// thread busy for seconds, a read of a record still answers at once (the read before it,
    /// with no connection idle yet, made one on the pool).
    #[test]
    fn a_point_read_answers_while_the_blocking_pool_is_busy() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(SqliteStore::open(dir.path().join("shop.db")).unwrap());
            let products = Collection::new("product");
            store.prepare(&products).await.unwrap();
            let data = json!({"name": "Lamp"}).as_object().unwrap().clone();
            let created = store.create(&products, None, None, data).await.unwrap();
            store.get(&products, None, &created.id).await.unwrap();

            let (held, holding) = std::sync::mpsc::channel::<()>();
            let busy = tokio::task::spawn_blocking(move || holding.recv());
            let asked = Instant::now();
            let read = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                store.get(&products, None, &created.id),
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
}
