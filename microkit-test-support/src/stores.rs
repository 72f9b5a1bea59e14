//! One check run against every store backend: memory, SQLite in a temporary file, and a fresh
//! PostgreSQL database (skipped, or failed in CI, without a server: see
//! [`with_postgres_database`]).
//!
//! ```ignore
//! async fn reads_what_it_wrote(store: Arc<dyn Store>) { /* ... */ }
//!
//! support::on_every_store!("conformance"; reads_what_it_wrote);
//! ```
//! makes the tests `memory::reads_what_it_wrote`, `sqlite::…` and `postgres::…`.

use std::future::Future;
use std::sync::Arc;

use microkit::resource::store::postgres::PostgresStore;
use microkit::resource::store::sqlite::SqliteStore;
use microkit::resource::store::{MemoryStore, Store};

use crate::database::with_postgres_database;

/// Runs `check` on a new memory store.
pub async fn with_memory<F, Fut>(check: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    check(Arc::new(MemoryStore::new())).await;
}

/// Runs `check` on a SQLite store in a temporary directory, removed afterwards.
pub async fn with_sqlite<F, Fut>(check: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(dir.path().join("store.db")).expect("opening SQLite");
    check(Arc::new(store)).await;
}

/// Runs `check` on a PostgreSQL store in a fresh database named after `test`.
pub async fn with_postgres<F, Fut>(test: &str, check: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_postgres_database(test, |url| async move {
        let store = PostgresStore::connect(&url)
            .await
            .expect("connecting to PostgreSQL");
        check(Arc::new(store)).await;
    })
    .await;
}

/// Declares, for each named check (an `async fn(Arc<dyn Store>)` of the calling file), one
/// test per backend in the modules `memory`, `sqlite` and `postgres`. The label names the
/// PostgreSQL databases the checks get.
#[macro_export]
macro_rules! on_every_store {
    ($label:literal; $($check:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    $crate::stores::with_memory(super::$check).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    $crate::stores::with_sqlite(super::$check).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    $crate::stores::with_postgres($label, super::$check).await;
                }
            )*
        }
    };
}
