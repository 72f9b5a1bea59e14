//! [`PostgresStore`]: records in PostgreSQL (feature `postgres`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde_json::{Map, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{Json, ToSql};

pub use self::config::PostgresConfig;
use self::failure::{failure, pool_failure};
use super::{
    check_filters, check_id, check_write, id_for_create, now_millis, Collection, Committed, Id,
    IdKind, KeyCommit, KeyRecord, ListQuery, Page, Record, Store, StoreError, StoreFuture, Write,
};

mod config;
mod failure;
mod sslmode;
mod tls;

/// The advisory lock that serializes `prepare` across processes (an arbitrary constant:
/// "microkit" in ASCII).
const PREPARE_LOCK: i64 = 0x6d69_6372_6f6b_6974;

type Param<'a> = &'a (dyn ToSql + Sync);

/// The table of idempotency key records. Its leading underscore keeps it apart from every
/// collection (collection names start with a letter). The index on the expiry lets the
/// periodic sweep of expired records read only those, not the whole table.
const KEYS_DDL: &str = "CREATE TABLE IF NOT EXISTS \"_microkit_idempotency\" (\
    scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, status INTEGER NOT NULL, \
    headers JSONB NOT NULL, body BYTEA NOT NULL, expires_at BIGINT NOT NULL, \
    PRIMARY KEY (scope, key));\
    CREATE INDEX IF NOT EXISTS \"_microkit_idempotency__expires_at\" \
    ON \"_microkit_idempotency\" (expires_at);";

/// Claims a key for the transaction: a new row, or an expired one taken over. No row returned:
/// an unexpired record holds the key (a concurrent claim waits here for the first to end).
const CLAIM_KEY: &str = "INSERT INTO \"_microkit_idempotency\" AS k \
    (scope, key, fingerprint, status, headers, body, expires_at) \
    VALUES ($1, $2, '', 0, '[]', '', 0) \
    ON CONFLICT (scope, key) DO UPDATE SET status = 0 WHERE k.expires_at <= $3 RETURNING 1";

const FILL_KEY: &str = "UPDATE \"_microkit_idempotency\" SET fingerprint = $3, status = $4, \
    headers = $5, body = $6, expires_at = $7 WHERE scope = $1 AND key = $2";

/// How many commits run between two sweeps of expired key records.
const PURGE_EVERY: u32 = 256;

/// A store in PostgreSQL, for deployments that outgrow one machine.
///
/// # Connections
///
/// A [`deadpool_postgres`] pool of `tokio-postgres` connections (16 unless
/// [`connect_with`](Self::connect_with) says otherwise), each caching its prepared
/// statements. Over TCP they use TLS as the URL's `sslmode` says (below); over a Unix
/// socket, never.
///
/// # TLS
///
/// rustls, with libpq's meanings of `sslmode` and its default, `prefer`; `sslrootcert=PATH`
/// names a PEM file of the certificate authorities to trust, and `sslcert=PATH&sslkey=PATH`
/// a client certificate and its key for servers that authenticate clients by certificate
/// (libpq's default files under `~/.postgresql/` are not read):
///
/// | `sslmode` | TLS | the server's certificate |
/// |---|---|---|
/// | `disable` | never | - |
/// | `prefer` (default) | if the server offers it | not checked, unless `sslrootcert` is given: then as `verify-ca` |
/// | `require` | always | as `prefer` |
/// | `verify-ca` | always | chains to `sslrootcert` |
/// | `verify-full` | always | chains to `sslrootcert` and names the host |
///
/// A mode that cannot be met fails [`connect`](Self::connect) (only `prefer` falls back to
/// plain text, when the server offers no TLS); an unknown mode, `allow`, or a verifying mode
/// without `sslrootcert` is refused before connecting. An encrypted connection whose
/// certificate is not checked still resists a man in the middle once the password is
/// checked with SCRAM: the client binds the exchange to the certificate it saw
/// (`SCRAM-SHA-256-PLUS`, which PostgreSQL offers over TLS).
///
/// # Outages
///
/// Every wait has a limit ([`PostgresConfig`]: pool wait, connect, recycle check, statement,
/// and the whole operation), so while the database is down, restarting or hung, operations
/// fail within seconds with [`StoreError::Unavailable`], answered 503; connections found
/// broken are dropped, and new ones are opened once the server answers again.
///
/// # Schema
///
/// One table per collection, named after it: `id` (`BIGINT GENERATED ALWAYS AS IDENTITY`,
/// so integer ids come from a sequence and are never reused, or `TEXT COLLATE "C"` so text
/// ids sort by bytes as in the other stores), `parent`, `version`, `deleted` and `data`
/// (`JSONB`). Unique fields are enforced by the database with partial unique indexes on
/// `(data -> '<field>') WHERE NOT deleted` (JSON `null` excluded); a violation (SQLSTATE 23505)
/// is mapped back to its field through the index name, `<collection>__u_<field>`.
///
/// # Atomicity
///
/// Every operation is one statement: conditional replaces and deletes lock the row, check its
/// parent and version, and write it in a single `WITH ... FOR UPDATE` statement, and a list
/// counts and pages on one snapshot. `prepare` runs its `CREATE ... IF NOT EXISTS` under a
/// transaction-scoped advisory lock, so processes starting together do not race on the
/// catalog (and it retries once if something else did).
///
/// A [`commit`](Store::commit) is one transaction: it claims its idempotency key first (in
/// the table `_microkit_idempotency`, created on first use; a concurrent claim of the same
/// key waits for it and then finds the key taken), applies its writes, fills in the key's
/// response and commits.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    tables: Arc<Mutex<HashMap<String, Arc<Sql>>>>,
    /// Whether the key records' table exists.
    keys_ready: Arc<AtomicBool>,
    /// Commits since expired key records were last swept.
    commits_since_purge: Arc<AtomicU32>,
    /// The client-side bound of one operation (see [`PostgresConfig::operation_timeout`]).
    operation_timeout: Duration,
    /// How long operations waited for a connection, for metrics.
    waits: Arc<super::PoolWaits>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, with
    /// `?sslmode=verify-full&sslrootcert=ca.pem` for checked TLS, or the `key=value` form), with a pool of up to 16 connections and the default time
    /// limits of [`PostgresConfig`]. Fails if the server cannot be reached now.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_config(url, PostgresConfig::default()).await
    }

    /// Like [`connect`](Self::connect), with a pool of up to `pool_size` connections.
    pub async fn connect_with(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        Self::connect_config(url, PostgresConfig::default().pool_size(pool_size)).await
    }

    /// Like [`connect`](Self::connect), with the pool size and time limits of `config`.
    ///
    /// Once connected, the store outlives outages: while the server is down or silent each
    /// operation fails within [`PostgresConfig::operation_timeout`] with
    /// [`StoreError::Unavailable`] (a 503), and when the server is back the pool opens new
    /// connections, with no restart.
    pub async fn connect_config(url: &str, config: PostgresConfig) -> Result<Self, StoreError> {
        let (mut pg, tls) = tls::parse_connection_string(url)?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(config.create_timeout);
        }
        // Keepalives find a peer that vanished without closing (a host that crashed, a
        // network that dropped us) on connections that sit idle in the pool.
        pg.keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        // The server cancels a statement that runs too long (and frees its locks); a URL that
        // sets its own options keeps them, ours come after and win for this one setting.
        let timeout_ms = config.statement_timeout.as_millis().max(1);
        let options = match pg.get_options() {
            Some(own) => format!("{own} -c statement_timeout={timeout_ms}"),
            None => format!("-c statement_timeout={timeout_ms}"),
        };
        pg.options(&options);
        let manager = Manager::from_config(
            pg,
            tls,
            ManagerConfig {
                // Verified: an empty query before reuse, bounded by the recycle timeout,
                // so a connection left stuck by a timed-out operation (or by a server
                // that went silent) is replaced instead of handed to the next request.
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.wait_timeout))
            .create_timeout(Some(config.create_timeout))
            .recycle_timeout(Some(config.recycle_timeout))
            .build()
            .map_err(StoreError::backend)?;
        // Fail now, not on the first request, when the server is unreachable.
        drop(pool.get().await.map_err(pool_failure)?);
        Ok(Self {
            pool,
            tables: Arc::default(),
            keys_ready: Arc::default(),
            commits_since_purge: Arc::default(),
            operation_timeout: config.operation_timeout(),
            waits: Arc::default(),
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        let started = std::time::Instant::now();
        let client = self.pool.get().await;
        self.waits.record(started.elapsed());
        client.map_err(pool_failure)
    }

    /// Bounds a whole operation by the operation timeout: the server's `statement_timeout`
    /// cannot fire when the server is stopped or the connection silent.
    fn guarded<'a, T: Send + 'a>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>> + Send + 'a,
    ) -> StoreFuture<'a, T> {
        let limit = self.operation_timeout;
        Box::pin(async move {
            tokio::time::timeout(limit, operation)
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::unavailable(format!(
                        "the database did not answer within {limit:?}"
                    )))
                })
        })
    }

    /// Creates the key records' table, once.
    async fn keys_table(&self) -> Result<(), StoreError> {
        if self.keys_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(failure)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PREPARE_LOCK])
            .await
            .map_err(failure)?;
        tx.batch_execute(KEYS_DDL).await.map_err(failure)?;
        tx.commit().await.map_err(failure)?;
        self.keys_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// The SQL of a collection, preparing it first if needed.
    async fn sql(&self, c: &Collection) -> Result<Arc<Sql>, StoreError> {
        if let Some(sql) = lock(&self.tables).get(c.name()) {
            if sql.collection == *c {
                return Ok(sql.clone());
            }
        }
        let sql = Arc::new(Sql::new(c.clone()));
        let mut client = self.client().await?;
        let mut retried = false;
        loop {
            match run_ddl(&mut client, &sql).await {
                Ok(()) => break,
                // Another process created the same object at the same moment (possible only if
                // it does not take our advisory lock): the second attempt sees it exists.
                Err(e) if !retried && is_concurrent_ddl(&e) => retried = true,
                Err(e) => return Err(failure(e)),
            }
        }
        lock(&self.tables).insert(c.name().to_owned(), sql.clone());
        Ok(sql)
    }
}

async fn run_ddl(
    client: &mut deadpool_postgres::Client,
    sql: &Sql,
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PREPARE_LOCK])
        .await?;
    tx.batch_execute(&sql.ddl()).await?;
    tx.commit().await
}

fn is_concurrent_ddl(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(|code| {
        *code == SqlState::UNIQUE_VIOLATION
            || *code == SqlState::DUPLICATE_TABLE
            || *code == SqlState::DUPLICATE_OBJECT
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The map only ever holds complete entries: a poisoned lock is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `name` as a quoted SQL identifier. Names are validated by [`Collection`]; quoting keeps
/// keywords usable as names and the case of field names.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `data -> '<field>'`. Field names are validated by [`Collection`]
/// (`[A-Za-z_][A-Za-z0-9_]*`), so they need no escaping inside the literal.
fn field(field: &str) -> String {
    format!("(data -> '{field}')")
}

/// A collection and the SQL of its operations.
struct Sql {
    collection: Collection,
    table: String,
    insert: String,
    select: String,
    replace: String,
    delete: String,
}

impl Sql {
    fn new(collection: Collection) -> Self {
        let t = ident(collection.name());
        let insert = match collection.kind() {
            IdKind::Integer => format!(
                "INSERT INTO {t} (parent, version, deleted, data) VALUES ($1, 1, false, $2) \
                 RETURNING id, version"
            ),
            // A soft-deleted row with this id is taken over, one version above; a live one
            // makes the upsert a no-op that returns no row.
            IdKind::Uuid | IdKind::Text => format!(
                "INSERT INTO {t} AS r (id, parent, version, deleted, data) VALUES ($3, $1, 1, false, $2) \
                 ON CONFLICT (id) DO UPDATE SET parent = EXCLUDED.parent, version = r.version + 1, \
                 deleted = false, data = EXCLUDED.data WHERE r.deleted RETURNING id, version"
            ),
        };
        let current = format!(
            "cur AS (SELECT id, version FROM {t} \
             WHERE id = $1 AND parent IS NOT DISTINCT FROM $2 AND NOT deleted FOR UPDATE)"
        );
        let select = format!(
            "SELECT version, data FROM {t} WHERE id = $1 AND parent IS NOT DISTINCT FROM $2 AND NOT deleted"
        );
        // No row: not found. A row with a NULL second column: version mismatch.
        let replace = format!(
            "WITH {current}, \
             upd AS (UPDATE {t} AS r SET version = r.version + 1, data = $4 FROM cur \
                     WHERE r.id = cur.id AND ($3::bigint IS NULL OR cur.version = $3) RETURNING r.version) \
             SELECT cur.version, (SELECT version FROM upd) FROM cur"
        );
        let remove = if collection.is_soft_delete() {
            format!("UPDATE {t} AS r SET deleted = true, version = r.version + 1 FROM cur")
        } else {
            format!("DELETE FROM {t} AS r USING cur")
        };
        let delete = format!(
            "WITH {current}, \
             del AS ({remove} WHERE r.id = cur.id AND ($3::bigint IS NULL OR cur.version = $3) RETURNING r.id) \
             SELECT cur.version, EXISTS (SELECT 1 FROM del) FROM cur"
        );
        Self {
            collection,
            table: t,
            insert,
            select,
            replace,
            delete,
        }
    }

    fn ddl(&self) -> String {
        let name = self.collection.name();
        let t = &self.table;
        let id = match self.collection.kind() {
            IdKind::Integer => "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            IdKind::Uuid | IdKind::Text => "id TEXT COLLATE \"C\" PRIMARY KEY",
        };
        let mut ddl = format!(
            "CREATE TABLE IF NOT EXISTS {t} ({id}, parent TEXT, version BIGINT NOT NULL, \
             deleted BOOLEAN NOT NULL DEFAULT false, data JSONB NOT NULL);\n\
             CREATE INDEX IF NOT EXISTS {} ON {t} (parent, id) WHERE NOT deleted;\n",
            ident(&format!("{name}__parent"))
        );
        for f in self.collection.unique_fields() {
            let _ = writeln!(
                ddl,
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {t} ((NULLIF({}, 'null'::jsonb))) WHERE NOT deleted;",
                ident(&format!("{name}__u_{f}")),
                field(f)
            );
        }
        for f in self.collection.filterable_fields() {
            let _ = writeln!(
                ddl,
                "CREATE INDEX IF NOT EXISTS {} ON {t} ({}) WHERE NOT deleted;",
                ident(&format!("{name}__f_{f}")),
                field(f)
            );
        }
        ddl
    }

    /// The `WHERE` clause selecting the live records of a parent that match `filters`, whose
    /// parameters are the parent (when there is one) and then the non-null filter values.
    fn matching(&self, parent: Option<&str>, filters: &[(String, Value)]) -> String {
        let mut clause = String::from("NOT deleted");
        let mut n = 0;
        if parent.is_some() {
            n += 1;
            let _ = write!(clause, " AND parent = ${n}");
        } else {
            clause.push_str(" AND parent IS NULL");
        }
        for (name, value) in filters {
            let f = field(name);
            if value.is_null() {
                let _ = write!(clause, " AND ({f} IS NULL OR {f} = 'null'::jsonb)");
            } else {
                n += 1;
                let _ = write!(clause, " AND {f} = ${n}");
            }
        }
        clause
    }

    fn id(
        &self,
        row: &tokio_postgres::Row,
        column: usize,
    ) -> Result<Option<Id>, tokio_postgres::Error> {
        Ok(match self.collection.kind() {
            IdKind::Integer => row.try_get::<_, Option<i64>>(column)?.map(Id::Int),
            IdKind::Uuid | IdKind::Text => row.try_get::<_, Option<String>>(column)?.map(Id::Text),
        })
    }

    /// Maps a failed write: a unique violation is a [`StoreError::Duplicate`].
    fn write_error(&self, error: tokio_postgres::Error) -> StoreError {
        if error.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            let constraint = error
                .as_db_error()
                .and_then(|e| e.constraint())
                .unwrap_or_default();
            let name = self.collection.name();
            if let Some(field) = constraint
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix("__u_"))
            {
                return StoreError::Duplicate {
                    field: field.to_owned(),
                };
            }
            if constraint == format!("{name}_pkey") {
                return StoreError::Duplicate { field: "id".into() };
            }
        }
        failure(error)
    }
}

fn id_param(id: &Id) -> Param<'_> {
    match id {
        Id::Int(n) => n,
        Id::Text(s) => s,
    }
}

fn version(v: i64) -> u64 {
    // Versions start at 1 and only grow.
    u64::try_from(v).unwrap_or_default()
}

fn backend(error: tokio_postgres::Error) -> StoreError {
    StoreError::backend(error)
}

/// The id and version an insert returned; no row means a live record has the id.
fn inserted(sql: &Sql, row: Option<tokio_postgres::Row>) -> Result<(Id, u64), StoreError> {
    let row = row.ok_or(StoreError::Duplicate { field: "id".into() })?;
    let id = sql
        .id(&row, 0)
        .map_err(backend)?
        .ok_or(StoreError::NotFound)?;
    Ok((id, version(row.try_get(1).map_err(backend)?)))
}

/// The new version a replace returned: no row, no record; no new version, a stale one.
fn replaced(row: Option<tokio_postgres::Row>) -> Result<u64, StoreError> {
    let row = row.ok_or(StoreError::NotFound)?;
    let current = version(row.try_get(0).map_err(backend)?);
    let new: Option<i64> = row.try_get(1).map_err(backend)?;
    new.map(version)
        .ok_or(StoreError::VersionMismatch { current })
}

/// Whether a delete deleted: no row, no record; not deleted, a stale version.
fn deleted(row: Option<tokio_postgres::Row>) -> Result<(), StoreError> {
    let row = row.ok_or(StoreError::NotFound)?;
    let current = version(row.try_get(0).map_err(backend)?);
    let deleted: bool = row.try_get(1).map_err(backend)?;
    if deleted {
        Ok(())
    } else {
        Err(StoreError::VersionMismatch { current })
    }
}

/// An `if_version` as a parameter; `Err` for one no record ever reaches.
fn expected_version(if_version: Option<u64>) -> Result<Option<i64>, StoreError> {
    if_version
        .map(i64::try_from)
        .transpose()
        .map_err(|_| StoreError::NotFound)
}

/// Applies one write of a commit inside its transaction.
async fn apply(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &Sql,
    write: Write,
) -> Result<Option<Record>, StoreError> {
    match write {
        Write::Create {
            parent, id, data, ..
        } => {
            let stmt = tx.prepare_cached(&sql.insert).await.map_err(failure)?;
            let json = Json(&data);
            let row = match &id {
                None => tx.query_opt(&stmt, &[&parent, &json]).await,
                Some(id) => tx.query_opt(&stmt, &[&parent, &json, id_param(id)]).await,
            }
            .map_err(|e| sql.write_error(e))?;
            let (id, version) = inserted(sql, row)?;
            Ok(Some(Record {
                id,
                version,
                parent,
                data: Arc::new(data),
            }))
        }
        Write::Replace {
            parent,
            id,
            data,
            if_version,
            ..
        } => {
            let expected = expected_version(if_version)?;
            let stmt = tx.prepare_cached(&sql.replace).await.map_err(failure)?;
            let row = tx
                .query_opt(&stmt, &[id_param(&id), &parent, &expected, &Json(&data)])
                .await
                .map_err(|e| sql.write_error(e))?;
            Ok(Some(Record {
                version: replaced(row)?,
                id,
                parent,
                data: Arc::new(data),
            }))
        }
        Write::Delete {
            parent,
            id,
            if_version,
            ..
        } => {
            let expected = expected_version(if_version)?;
            let stmt = tx.prepare_cached(&sql.delete).await.map_err(failure)?;
            let row = tx
                .query_opt(&stmt, &[id_param(&id), &parent, &expected])
                .await
                .map_err(failure)?;
            deleted(row).map(|()| None)
        }
    }
}

impl Store for PostgresStore {
    fn pool_status(&self) -> Option<super::PoolStatus> {
        let status = self.pool.status();
        Some(super::PoolStatus {
            max_size: status.max_size,
            size: status.size,
            idle: status.available,
            waiting: status.waiting,
        })
    }

    fn pool_waits(&self) -> Option<&super::PoolWaits> {
        Some(&self.waits)
    }

    fn prepare<'a>(&'a self, c: &'a Collection) -> StoreFuture<'a, ()> {
        self.guarded(async move {
            // Always run the DDL: an explicit prepare also repairs a dropped index.
            lock(&self.tables).remove(c.name());
            self.sql(c).await.map(drop)
        })
    }

    fn create<'a>(
        &'a self,
        c: &'a Collection,
        parent: Option<&'a str>,
        id: Option<Id>,
        data: Map<String, Value>,
    ) -> StoreFuture<'a, Record> {
        self.guarded(async move {
            let id = id_for_create(c, id)?;
            let sql = self.sql(c).await?;
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql.insert).await.map_err(failure)?;
            let json = Json(&data);
            let row = match &id {
                None => client.query_opt(&stmt, &[&parent, &json]).await,
                Some(id) => {
                    client
                        .query_opt(&stmt, &[&parent, &json, id_param(id)])
                        .await
                }
            }
            .map_err(|e| sql.write_error(e))?;
            let (id, version) = inserted(&sql, row)?;
            Ok(Record {
                id,
                version,
                parent: parent.map(str::to_owned),
                data: Arc::new(data),
            })
        })
    }

    fn get<'a>(
        &'a self,
        c: &'a Collection,
        parent: Option<&'a str>,
        id: &'a Id,
    ) -> StoreFuture<'a, Record> {
        self.guarded(async move {
            check_id(c, id)?;
            let sql = self.sql(c).await?;
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql.select).await.map_err(failure)?;
            let row = client
                .query_opt(&stmt, &[id_param(id), &parent])
                .await
                .map_err(failure)?
                .ok_or(StoreError::NotFound)?;
            let Json(data) = row
                .try_get::<_, Json<Map<String, Value>>>(1)
                .map_err(backend)?;
            Ok(Record {
                id: id.clone(),
                version: version(row.try_get(0).map_err(backend)?),
                parent: parent.map(str::to_owned),
                data: Arc::new(data),
            })
        })
    }

    fn replace<'a>(
        &'a self,
        c: &'a Collection,
        parent: Option<&'a str>,
        id: &'a Id,
        data: Map<String, Value>,
        if_version: Option<u64>,
    ) -> StoreFuture<'a, Record> {
        self.guarded(async move {
            check_id(c, id)?;
            // No record ever gets past `i64::MAX`.
            let expected = expected_version(if_version)?;
            let sql = self.sql(c).await?;
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql.replace).await.map_err(failure)?;
            let row = client
                .query_opt(&stmt, &[id_param(id), &parent, &expected, &Json(&data)])
                .await
                .map_err(|e| sql.write_error(e))?;
            Ok(Record {
                id: id.clone(),
                version: replaced(row)?,
                parent: parent.map(str::to_owned),
                data: Arc::new(data),
            })
        })
    }

    fn delete<'a>(
        &'a self,
        c: &'a Collection,
        parent: Option<&'a str>,
        id: &'a Id,
        if_version: Option<u64>,
    ) -> StoreFuture<'a, ()> {
        self.guarded(async move {
            check_id(c, id)?;
            let expected = expected_version(if_version)?;
            let sql = self.sql(c).await?;
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql.delete).await.map_err(failure)?;
            let row = client
                .query_opt(&stmt, &[id_param(id), &parent, &expected])
                .await
                .map_err(failure)?;
            deleted(row)
        })
    }

    fn list<'a>(&'a self, c: &'a Collection, query: &'a ListQuery) -> StoreFuture<'a, Page> {
        self.guarded(async move {
            check_filters(c, &query.filters)?;
            let sql = self.sql(c).await?;
            let clause = sql.matching(query.parent.as_deref(), &query.filters);
            let values: Vec<Json<&Value>> = query
                .filters
                .iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(_, value)| Json(value))
                .collect();
            let mut params: Vec<Param<'_>> = Vec::with_capacity(values.len() + 3);
            if let Some(parent) = &query.parent {
                params.push(parent);
            }
            params.extend(values.iter().map(|v| v as Param<'_>));
            let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
            let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
            let n = params.len();
            params.push(&limit);
            params.push(&offset);
            // The count and the page come from one statement, so from one snapshot; the
            // left join yields the count even when the page is empty.
            let t = &sql.table;
            let text = format!(
                "WITH m AS (SELECT id, parent, version, data FROM {t} WHERE {clause}) \
                 SELECT c.total, p.id, p.parent, p.version, p.data \
                 FROM (SELECT count(*) AS total FROM m) c \
                 LEFT JOIN (SELECT * FROM m ORDER BY id LIMIT ${} OFFSET ${}) p ON true \
                 ORDER BY p.id",
                n + 1,
                n + 2
            );
            let client = self.client().await?;
            let stmt = client.prepare_cached(&text).await.map_err(failure)?;
            let rows = client.query(&stmt, &params).await.map_err(failure)?;
            let mut total = 0;
            let mut items = Vec::with_capacity(rows.len());
            for row in rows {
                total = version(row.try_get(0).map_err(backend)?);
                let Some(id) = sql.id(&row, 1).map_err(backend)? else {
                    continue;
                };
                let data: Json<Map<String, Value>> = row.try_get(4).map_err(backend)?;
                items.push(Record {
                    id,
                    parent: row.try_get(2).map_err(backend)?,
                    version: version(row.try_get(3).map_err(backend)?),
                    data: Arc::new(data.0),
                });
            }
            Ok(Page { items, total })
        })
    }

    fn delete_all<'a>(
        &'a self,
        c: &'a Collection,
        parent: Option<&'a str>,
    ) -> StoreFuture<'a, u64> {
        self.guarded(async move {
            let sql = self.sql(c).await?;
            let clause = sql.matching(parent, &[]);
            let t = &sql.table;
            let text = if c.is_soft_delete() {
                format!("UPDATE {t} SET deleted = true, version = version + 1 WHERE {clause}")
            } else {
                format!("DELETE FROM {t} WHERE {clause}")
            };
            let client = self.client().await?;
            let stmt = client.prepare_cached(&text).await.map_err(failure)?;
            let params: Vec<Param<'_>> = parent.iter().map(|p| p as Param<'_>).collect();
            client.execute(&stmt, &params).await.map_err(failure)
        })
    }

    fn commit<'a>(
        &'a self,
        writes: Vec<Write>,
        key: Option<KeyCommit>,
    ) -> StoreFuture<'a, Committed> {
        self.guarded(async move {
            let mut planned = Vec::with_capacity(writes.len());
            for mut write in writes {
                check_write(&mut write)?;
                let sql = self.sql(write.collection()).await?;
                planned.push((sql, write));
            }
            if key.is_some() {
                self.keys_table().await?;
            }
            let now = now_millis();
            let mut client = self.client().await?;
            // Dropped without a commit on any error below: everything rolls back.
            let tx = client.transaction().await.map_err(failure)?;
            // The key's names alone: the key holds its (unshared) response maker.
            if let Some((scope, name)) = key.as_ref().map(|key| (&key.scope, &key.key)) {
                let claim = tx.prepare_cached(CLAIM_KEY).await.map_err(failure)?;
                let claimed = tx
                    .query_opt(&claim, &[scope, name, &now])
                    .await
                    .map_err(failure)?;
                if claimed.is_none() {
                    return Err(StoreError::KeyTaken);
                }
            }
            let mut written = Vec::with_capacity(planned.len());
            for (sql, write) in planned {
                written.push(apply(&tx, &sql, write).await?);
            }
            let key_record = match key {
                None => None,
                Some(key) => {
                    let record = (key.respond)(&written)?;
                    let status = i32::from(record.status);
                    let headers = Json(&record.headers);
                    let fill = tx.prepare_cached(FILL_KEY).await.map_err(failure)?;
                    tx.execute(
                        &fill,
                        &[
                            &key.scope,
                            &key.key,
                            &record.fingerprint,
                            &status,
                            &headers,
                            &&record.body[..],
                            &record.expires_at,
                        ],
                    )
                    .await
                    .map_err(failure)?;
                    if self.commits_since_purge.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == 0 {
                        tx.execute(
                            "DELETE FROM \"_microkit_idempotency\" WHERE expires_at <= $1 AND status <> 0",
                            &[&now],
                        )
                        .await
                        .map_err(failure)?;
                    }
                    Some(record)
                }
            };
            tx.commit().await.map_err(failure)?;
            Ok(Committed { written, key_record })
        })
    }

    fn key_record<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<KeyRecord>> {
        self.guarded(async move {
            self.keys_table().await?;
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT fingerprint, status, headers, body, expires_at \
                     FROM \"_microkit_idempotency\" \
                     WHERE scope = $1 AND key = $2 AND expires_at > $3",
                )
                .await
                .map_err(failure)?;
            let Some(row) = client
                .query_opt(&stmt, &[&scope, &key, &now_millis()])
                .await
                .map_err(failure)?
            else {
                return Ok(None);
            };
            let status: i32 = row.try_get(1).map_err(backend)?;
            let Json(headers) = row
                .try_get::<_, Json<Vec<(String, String)>>>(2)
                .map_err(backend)?;
            let body: Vec<u8> = row.try_get(3).map_err(backend)?;
            Ok(Some(KeyRecord {
                fingerprint: row.try_get(0).map_err(backend)?,
                status: u16::try_from(status).map_err(StoreError::backend)?,
                headers,
                body: body.into(),
                expires_at: row.try_get(4).map_err(backend)?,
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_quoted_ddl_and_bound_filters() {
        let sql = Sql::new(Collection::new("user").unique("eMail").filterable("role"));
        let ddl = sql.ddl();
        assert!(ddl.contains(
            "CREATE UNIQUE INDEX IF NOT EXISTS \"user__u_eMail\" ON \"user\" ((NULLIF((data -> 'eMail'), 'null'::jsonb))) WHERE NOT deleted;"
        ));
        let filters = [
            ("role".to_owned(), Value::from("admin")),
            ("role".to_owned(), Value::Null),
        ];
        assert_eq!(
            sql.matching(Some("uid=7"), &filters),
            "NOT deleted AND parent = $1 AND (data -> 'role') = $2 \
             AND ((data -> 'role') IS NULL OR (data -> 'role') = 'null'::jsonb)"
        );
    }
}
