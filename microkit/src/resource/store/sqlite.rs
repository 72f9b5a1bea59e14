//! [`SqliteStore`]: records in a SQLite database file (feature `sqlite`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::types::Value as SqlValue;
use rusqlite::{ffi, params, params_from_iter, Connection, OptionalExtension};
use serde_json::{Map, Value};

use self::failure::failure;
use self::writer::Writer;
use super::{
    check_filters, check_id, check_write, id_for_create, now_millis, Collection, Committed, Id,
    IdKind, KeyCommit, KeyRecord, ListQuery, Page, Record, Store, StoreError, StoreFuture, Write,
};

mod failure;
mod readers;
mod writer;

/// How long a connection waits for another connection (maybe in another process) to release
/// the database before it gives up with a backend error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The table of idempotency key records. Its leading underscore keeps it apart from every
/// collection (collection names start with a letter). The index on the expiry lets the
/// periodic sweep of expired records read only those, not the whole table.
const KEYS_DDL: &str = "CREATE TABLE IF NOT EXISTS \"_microkit_idempotency\" (\
    scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, status INTEGER NOT NULL, \
    headers TEXT NOT NULL, body BLOB NOT NULL, expires_at INTEGER NOT NULL, \
    PRIMARY KEY (scope, key)) WITHOUT ROWID;\
    CREATE INDEX IF NOT EXISTS \"_microkit_idempotency__expires_at\" \
    ON \"_microkit_idempotency\" (expires_at);";

/// How many commits run between two sweeps of expired key records.
const PURGE_EVERY: u32 = 256;

/// A store in a SQLite database file: embedded, durable, shareable by the processes of one
/// machine. SQLite is compiled in (`rusqlite`'s `bundled` feature): users install nothing.
///
/// # Durability and sharing
///
/// The database runs in WAL mode with `synchronous=FULL`: every acknowledged write has been
/// fsynced. Every connection waits up to 10 s (`busy_timeout`) for a lock held by another
/// one, so several stores, in one process or in several (replicas of one service on one
/// machine), can share a file. WAL needs shared memory, so the file must not be on a network
/// file system.
///
/// # Connections
///
/// One writer connection, owned by a thread of its own, plus a small pool of read-only
/// connections. SQLite runs one write transaction at a time per database anyway; queueing
/// writes for one thread is fair and immediate, where several write connections would
/// contend for the file lock through `busy_timeout`'s sleep-and-retry. The writer commits the
/// writes queued while it was busy together (group commit): one `BEGIN IMMEDIATE`
/// transaction and one fsync for all of them, each write in a savepoint of its own (one that
/// fails is undone alone), every write answered only once its transaction's fate is known.
/// With sixteen clients creating products in the shop's catalog on one CPU, 2.4-2.6k writes a
/// second -> 9-11.6k, and 290 -> 70-80 us of CPU each. WAL lets readers run alongside the
/// writer, each on a consistent snapshot. Anything else that may wait for a lock or open a
/// file happens in `tokio::task::spawn_blocking`, never on the async workers. A read
/// ([`get`](Store::get), [`list`](Store::list), an idempotency key's record) runs on the task
/// that asks for it when a read connection is idle, without waiting for any lock and
/// within a budget of SQLite's work (about 80 us: a page and count of a few hundred records);
/// a busy database, or a read that outgrows the budget (stopped, and its snapshot let go),
/// sends it to the blocking pool. The pool's two thread hand-offs cost more than such a read
/// of cached pages; only a page that is not cached makes the worker wait for the disk.
///
/// Statements are prepared once per connection and cached, with SQLite's query planner
/// stability guarantee on: a list's `LIMIT` and `OFFSET` are bound, not planned for.
///
/// # Schema
///
/// One table per collection, named after it: `id` (`INTEGER PRIMARY KEY AUTOINCREMENT`, so
/// integer ids are never reused, or `TEXT PRIMARY KEY`), `parent`, `version`, `deleted` and
/// `data` (the JSON text). Unique fields are enforced by the database with partial unique
/// indexes on `json_extract(data, '$.<field>') WHERE deleted = 0`; filterable fields get
/// plain indexes on the same expression. Read-modify-write operations run in `BEGIN
/// IMMEDIATE` transactions, which take the write lock up front and so cannot deadlock.
///
/// Idempotency key records live in the table `_microkit_idempotency` (created on first use),
/// written in the same transaction as the writes of their [`commit`](Store::commit).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    /// The collections prepared so far, with their statements.
    tables: Mutex<HashMap<String, Arc<Sql>>>,
    /// Whether the key records' table exists.
    keys_ready: AtomicBool,
    /// Commits since expired key records were last swept.
    commits_since_purge: AtomicU32,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it if needed) the database file at `path` and switches it to WAL mode.
    ///
    /// This does blocking file I/O: call it at startup, or from `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let writer = connect(&path, false).map_err(failure)?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(failure)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::backend(format!(
                "SQLite refused WAL mode for {} (journal mode is {mode})",
                path.display()
            )));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Writer::start(writer).map_err(StoreError::backend)?,
                readers: Mutex::new(Vec::new()),
                tables: Mutex::new(HashMap::new()),
                keys_ready: AtomicBool::new(false),
                commits_since_purge: AtomicU32::new(0),
            }),
        })
    }

    /// The path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The prepared statements of a collection, preparing it first if needed.
    async fn sql(&self, c: &Collection) -> Result<Arc<Sql>, StoreError> {
        if let Some(sql) = lock(&self.inner.tables).get(c.name()) {
            if sql.collection == *c {
                return Ok(sql.clone());
            }
        }
        self.prepare_tables(c.clone()).await
    }

    /// Creates a collection's table and indexes (what does not exist yet) and keeps its
    /// statements. Not under the tables' lock, which reads take on the async workers: the
    /// writer may be busy for a while. Two tasks preparing one collection at once both run its
    /// DDL, which creates only what does not exist yet.
    async fn prepare_tables(&self, c: Collection) -> Result<Arc<Sql>, StoreError> {
        let sql = Arc::new(Sql::new(c));
        let ddl = sql.ddl();
        self.write(move |conn| conn.execute_batch(&ddl).map_err(failure))
            .await?;
        lock(&self.inner.tables).insert(sql.collection.name().to_owned(), sql.clone());
        Ok(sql)
    }

    /// Creates the key records' table, once.
    async fn keys_table(&self) -> Result<(), StoreError> {
        if self.inner.keys_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        self.write(|conn| conn.execute_batch(KEYS_DDL).map_err(failure))
            .await?;
        self.inner.keys_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Runs `f` in the writer's next transaction, answering once it is committed.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.inner.writer.write(f).await
    }
}

fn connect(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    if read_only {
        conn.pragma_update(None, "query_only", true)?;
    }
    // List statements vary with their filters: keep more than the default 16.
    conn.set_prepared_statement_cache_capacity(64);
    // A cached statement stays prepared: without the planner's stability guarantee, SQLite
    // plans a page's `LIMIT ?` and `OFFSET ?` for their bound values and prepares the
    // statement again (parsing and planning it, as uncached) every time they are bound.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(conn)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Transactions roll back when dropped, so a panic leaves nothing half-done behind.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(StoreError::backend)?
}

/// A collection and the SQL of its operations.
struct Sql {
    collection: Collection,
    insert: String,
    select: String,
    update: String,
    delete: String,
    delete_all: String,
}

/// `name` as a quoted SQL identifier. Names are validated by [`Collection`]; quoting keeps
/// keywords (`order`, `group`) usable as names.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The JSON path of a top-level field, as a SQL string literal. Field names are validated by
/// [`Collection`] (`[A-Za-z_][A-Za-z0-9_]*`), so they need no escaping inside it.
fn field_path(field: &str) -> String {
    format!("'$.{field}'")
}

impl Sql {
    fn new(collection: Collection) -> Self {
        let t = ident(collection.name());
        let insert = match collection.kind() {
            IdKind::Integer => format!(
                "INSERT INTO {t} (parent, version, deleted, data) VALUES (?1, 1, 0, ?2) RETURNING id, version"
            ),
            // A soft-deleted row with this id is taken over, one version above; a live one
            // makes the upsert a no-op that returns no row.
            IdKind::Uuid | IdKind::Text => format!(
                "INSERT INTO {t} (id, parent, version, deleted, data) VALUES (?3, ?1, 1, 0, ?2) \
                 ON CONFLICT (id) DO UPDATE SET parent = excluded.parent, version = {t}.version + 1, \
                 deleted = 0, data = excluded.data WHERE {t}.deleted <> 0 RETURNING id, version"
            ),
        };
        let select =
            format!("SELECT version, data FROM {t} WHERE id = ?1 AND parent IS ?2 AND deleted = 0");
        let update = format!(
            "UPDATE {t} SET version = version + 1, data = ?2 WHERE id = ?1 RETURNING version"
        );
        let (delete, delete_all) = if collection.is_soft_delete() {
            (
                format!("UPDATE {t} SET deleted = 1, version = version + 1 WHERE id = ?1"),
                format!(
                    "UPDATE {t} SET deleted = 1, version = version + 1 WHERE parent IS ?1 AND deleted = 0"
                ),
            )
        } else {
            (
                format!("DELETE FROM {t} WHERE id = ?1"),
                format!("DELETE FROM {t} WHERE parent IS ?1 AND deleted = 0"),
            )
        };
        Self {
            collection,
            insert,
            select,
            update,
            delete,
            delete_all,
        }
    }

    fn ddl(&self) -> String {
        let name = self.collection.name();
        let t = ident(name);
        let mut ddl = match self.collection.kind() {
            IdKind::Integer => format!(
                "CREATE TABLE IF NOT EXISTS {t} (id INTEGER PRIMARY KEY AUTOINCREMENT, parent TEXT, \
                 version INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL);\n"
            ),
            IdKind::Uuid | IdKind::Text => format!(
                "CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY NOT NULL, parent TEXT, \
                 version INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL) \
                 WITHOUT ROWID;\n"
            ),
        };
        let _ = writeln!(
            ddl,
            "CREATE INDEX IF NOT EXISTS {} ON {t} (parent, id) WHERE deleted = 0;",
            ident(&format!("{name}__parent"))
        );
        for field in self.collection.unique_fields() {
            let _ = writeln!(
                ddl,
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {t} (json_extract(data, {})) WHERE deleted = 0;",
                ident(&format!("{name}__u_{field}")),
                field_path(field)
            );
        }
        for field in self.collection.filterable_fields() {
            let _ = writeln!(
                ddl,
                "CREATE INDEX IF NOT EXISTS {} ON {t} (json_extract(data, {})) WHERE deleted = 0;",
                ident(&format!("{name}__f_{field}")),
                field_path(field)
            );
        }
        ddl
    }

    /// The `WHERE` clause of a list and its parameters (the parent first).
    fn list_filter(&self, query: &ListQuery) -> (String, Vec<SqlValue>) {
        let mut clause = String::from("parent IS ?1 AND deleted = 0");
        let mut values = vec![query.parent.clone().map_or(SqlValue::Null, SqlValue::Text)];
        for (field, value) in &query.filters {
            let extract = format!("json_extract(data, {})", field_path(field));
            let bound = match value {
                Value::Null => {
                    let _ = write!(clause, " AND {extract} IS NULL");
                    continue;
                }
                Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => SqlValue::Integer(i),
                    None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
                },
                Value::String(s) => SqlValue::Text(s.clone()),
                // Rejected by `check_filters`.
                Value::Array(_) | Value::Object(_) => SqlValue::Null,
            };
            values.push(bound);
            let _ = write!(clause, " AND {extract} = ?{}", values.len());
        }
        (clause, values)
    }

    fn id_from_row(&self, row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<Id> {
        Ok(match self.collection.kind() {
            IdKind::Integer => Id::Int(row.get(column)?),
            IdKind::Uuid | IdKind::Text => Id::Text(row.get(column)?),
        })
    }

    /// Maps a failed write: a unique index violation is a [`StoreError::Duplicate`].
    fn write_error(&self, error: rusqlite::Error) -> StoreError {
        if let rusqlite::Error::SqliteFailure(failure, message) = &error {
            if failure.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY {
                return StoreError::Duplicate { field: "id".into() };
            }
            if failure.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE {
                // "UNIQUE constraint failed: index '<collection>__u_<field>'"
                let prefix = format!("index '{}__u_", self.collection.name());
                if let Some(field) = message
                    .as_deref()
                    .and_then(|m| m.split_once(prefix.as_str()))
                    .and_then(|(_, rest)| rest.split_once('\''))
                    .map(|(field, _)| field)
                {
                    return StoreError::Duplicate {
                        field: field.to_owned(),
                    };
                }
            }
        }
        failure(error)
    }
}

fn id_param(id: &Id) -> SqlValue {
    match id {
        Id::Int(n) => SqlValue::Integer(*n),
        Id::Text(s) => SqlValue::Text(s.clone()),
    }
}

fn to_json(data: &Map<String, Value>) -> Result<String, StoreError> {
    serde_json::to_string(data).map_err(StoreError::backend)
}

fn from_json(text: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(text).map_err(StoreError::backend)
}

fn version(v: i64) -> u64 {
    // Versions start at 1 and only grow.
    u64::try_from(v).unwrap_or_default()
}

/// The version of the live record `id` of `parent`, or `NotFound`, checked against
/// `if_version`.
fn current_version(
    conn: &Connection,
    sql: &Sql,
    id: &SqlValue,
    parent: Option<&str>,
    if_version: Option<u64>,
) -> Result<u64, StoreError> {
    let current = conn
        .prepare_cached(&sql.select)
        .and_then(|mut stmt| {
            stmt.query_row(params![id, parent], |row| row.get::<_, i64>(0))
                .optional()
        })
        .map_err(failure)?
        .map(version)
        .ok_or(StoreError::NotFound)?;
    match if_version {
        Some(expected) if expected != current => Err(StoreError::VersionMismatch { current }),
        _ => Ok(current),
    }
}

/// Inserts a record (see [`Store::create`]); `id` is already checked.
fn insert(
    conn: &Connection,
    sql: &Sql,
    parent: Option<&str>,
    id: Option<&Id>,
    json: &str,
) -> Result<(Id, u64), StoreError> {
    let mut stmt = conn.prepare_cached(&sql.insert).map_err(failure)?;
    let row = |row: &rusqlite::Row<'_>| Ok((sql.id_from_row(row, 0)?, row.get::<_, i64>(1)?));
    let result = match id {
        None => stmt.query_row(params![parent, json], row),
        Some(id) => stmt.query_row(params![parent, json, id_param(id)], row),
    };
    let (id, version) = result
        .optional()
        .map_err(|e| sql.write_error(e))?
        .ok_or(StoreError::Duplicate { field: "id".into() })?;
    Ok((id, self::version(version)))
}

/// Replaces a record's data (see [`Store::replace`]), returning its new version.
fn update(
    conn: &Connection,
    sql: &Sql,
    id: &Id,
    parent: Option<&str>,
    json: &str,
    if_version: Option<u64>,
) -> Result<u64, StoreError> {
    let key = id_param(id);
    current_version(conn, sql, &key, parent, if_version)?;
    conn.prepare_cached(&sql.update)
        .and_then(|mut stmt| stmt.query_row(params![key, json], |row| row.get::<_, i64>(0)))
        .map(version)
        .map_err(|e| sql.write_error(e))
}

/// Deletes a record (see [`Store::delete`]).
fn remove(
    conn: &Connection,
    sql: &Sql,
    id: &Id,
    parent: Option<&str>,
    if_version: Option<u64>,
) -> Result<(), StoreError> {
    let key = id_param(id);
    current_version(conn, sql, &key, parent, if_version)?;
    conn.prepare_cached(&sql.delete)
        .and_then(|mut stmt| stmt.execute(params![key]))
        .map(drop)
        .map_err(failure)
}

/// Applies one write of a commit.
fn apply(conn: &Connection, sql: &Sql, write: Write) -> Result<Option<Record>, StoreError> {
    match write {
        Write::Create {
            parent, id, data, ..
        } => {
            let (id, version) =
                insert(conn, sql, parent.as_deref(), id.as_ref(), &to_json(&data)?)?;
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
            let version = update(
                conn,
                sql,
                &id,
                parent.as_deref(),
                &to_json(&data)?,
                if_version,
            )?;
            Ok(Some(Record {
                id,
                version,
                parent,
                data: Arc::new(data),
            }))
        }
        Write::Delete {
            parent,
            id,
            if_version,
            ..
        } => remove(conn, sql, &id, parent.as_deref(), if_version).map(|()| None),
    }
}

/// Whether `scope` holds an unexpired record of `key`.
fn key_held(conn: &Connection, scope: &str, key: &str, now: i64) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "SELECT 1 FROM \"_microkit_idempotency\" WHERE scope = ?1 AND key = ?2 AND expires_at > ?3",
    )
    .and_then(|mut stmt| stmt.exists(params![scope, key, now]))
    .map_err(failure)
}

/// Keeps `record` under `key`, unless `scope` holds an unexpired record of it (then `false`);
/// an expired one is replaced. One statement both checks and writes.
fn insert_key(
    conn: &Connection,
    scope: &str,
    key: &str,
    record: &KeyRecord,
    now: i64,
) -> Result<bool, StoreError> {
    let headers = serde_json::to_string(&record.headers).map_err(StoreError::backend)?;
    conn.prepare_cached(
        "INSERT INTO \"_microkit_idempotency\" AS k \
         (scope, key, fingerprint, status, headers, body, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
         status = excluded.status, headers = excluded.headers, body = excluded.body, \
         expires_at = excluded.expires_at WHERE k.expires_at <= ?8",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            scope,
            key,
            record.fingerprint,
            record.status,
            headers,
            &record.body[..],
            record.expires_at,
            now
        ])
    })
    .map(|changed| changed == 1)
    .map_err(failure)
}

impl Store for SqliteStore {
    fn prepare<'a>(&'a self, c: &'a Collection) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.prepare_tables(c.clone()).await.map(drop) })
    }

    fn create<'a>(
        &'a self,
        c: &'a Collection,
        parent: Option<&'a str>,
        id: Option<Id>,
        data: Map<String, Value>,
    ) -> StoreFuture<'a, Record> {
        Box::pin(async move {
            let id = id_for_create(c, id)?;
            let sql = self.sql(c).await?;
            let parent = parent.map(str::to_owned);
            self.write(move |conn| {
                let json = to_json(&data)?;
                // Inside the writer's transaction, committed before the answer: in autocommit
                // mode `INSERT ... RETURNING` commits when the statement is reset, after its
                // row was read, and a failed commit there (a full disk) would go unreported.
                let (id, version) = insert(conn, &sql, parent.as_deref(), id.as_ref(), &json)?;
                Ok(Record {
                    id,
                    version,
                    parent,
                    data: Arc::new(data),
                })
            })
            .await
        })
    }

    fn get<'a>(
        &'a self,
        c: &'a Collection,
        parent: Option<&'a str>,
        id: &'a Id,
    ) -> StoreFuture<'a, Record> {
        Box::pin(async move {
            check_id(c, id)?;
            let sql = self.sql(c).await?;
            let (id, parent) = (id.clone(), parent.map(str::to_owned));
            self.read_here(move |conn| {
                let row = conn
                    .prepare_cached(&sql.select)
                    .and_then(|mut stmt| {
                        stmt.query_row(params![id_param(&id), parent], |row| {
                            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                        })
                        .optional()
                    })
                    .map_err(failure)?;
                let (version, data) = row.ok_or(StoreError::NotFound)?;
                Ok(Record {
                    id: id.clone(),
                    version: self::version(version),
                    parent: parent.clone(),
                    data: Arc::new(from_json(&data)?),
                })
            })
            .await
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
        Box::pin(async move {
            check_id(c, id)?;
            let sql = self.sql(c).await?;
            let (id, parent) = (id.clone(), parent.map(str::to_owned));
            self.write(move |conn| {
                let json = to_json(&data)?;
                let version = update(conn, &sql, &id, parent.as_deref(), &json, if_version)?;
                Ok(Record {
                    id,
                    version,
                    parent,
                    data: Arc::new(data),
                })
            })
            .await
        })
    }

    fn delete<'a>(
        &'a self,
        c: &'a Collection,
        parent: Option<&'a str>,
        id: &'a Id,
        if_version: Option<u64>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            check_id(c, id)?;
            let sql = self.sql(c).await?;
            let (id, parent) = (id.clone(), parent.map(str::to_owned));
            self.write(move |conn| remove(conn, &sql, &id, parent.as_deref(), if_version))
                .await
        })
    }

    fn list<'a>(&'a self, c: &'a Collection, query: &'a ListQuery) -> StoreFuture<'a, Page> {
        Box::pin(async move {
            check_filters(c, &query.filters)?;
            let sql = self.sql(c).await?;
            let (clause, mut values) = sql.list_filter(query);
            let t = ident(sql.collection.name());
            let count_sql = format!("SELECT count(*) FROM {t} WHERE {clause}");
            let filters = values.len();
            values.push(SqlValue::Integer(
                i64::try_from(query.limit).unwrap_or(i64::MAX),
            ));
            values.push(SqlValue::Integer(
                i64::try_from(query.offset).unwrap_or(i64::MAX),
            ));
            let page_sql = format!(
                "SELECT id, parent, version, data FROM {t} WHERE {clause} ORDER BY id LIMIT ?{} OFFSET ?{}",
                filters + 1,
                filters + 2
            );
            self.read_here(move |conn| {
                // One read transaction: the count and the page see the same snapshot.
                let tx = conn.transaction().map_err(failure)?;
                let total = tx
                    .prepare_cached(&count_sql)
                    .and_then(|mut stmt| {
                        stmt.query_row(params_from_iter(&values[..filters]), |row| {
                            row.get::<_, i64>(0)
                        })
                    })
                    .map_err(failure)?;
                let mut stmt = tx.prepare_cached(&page_sql).map_err(failure)?;
                let rows = stmt
                    .query_map(params_from_iter(&values), |row| {
                        Ok((
                            sql.id_from_row(row, 0)?,
                            row.get::<_, Option<String>>(1)?,
                            row.get::<_, i64>(2)?,
                            row.get::<_, String>(3)?,
                        ))
                    })
                    .map_err(failure)?;
                let mut items = Vec::new();
                for row in rows {
                    let (id, parent, version, data) = row.map_err(failure)?;
                    items.push(Record {
                        id,
                        version: self::version(version),
                        parent,
                        data: Arc::new(from_json(&data)?),
                    });
                }
                Ok(Page {
                    items,
                    total: self::version(total),
                })
            })
            .await
        })
    }

    fn delete_all<'a>(
        &'a self,
        c: &'a Collection,
        parent: Option<&'a str>,
    ) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let sql = self.sql(c).await?;
            let parent = parent.map(str::to_owned);
            self.write(move |conn| {
                let n = conn
                    .prepare_cached(&sql.delete_all)
                    .and_then(|mut stmt| stmt.execute(params![parent]))
                    .map_err(failure)?;
                Ok(n as u64)
            })
            .await
        })
    }

    fn commit<'a>(
        &'a self,
        writes: Vec<Write>,
        key: Option<KeyCommit>,
    ) -> StoreFuture<'a, Committed> {
        Box::pin(async move {
            let mut planned = Vec::with_capacity(writes.len());
            for mut write in writes {
                check_write(&mut write)?;
                let sql = self.sql(write.collection()).await?;
                planned.push((sql, write));
            }
            if key.is_some() {
                self.keys_table().await?;
            }
            let inner = self.inner.clone();
            self.write(move |conn| {
                let now = now_millis();
                // The writer's `BEGIN IMMEDIATE` holds the database's write lock from before
                // this to the commit, across processes: no other commit can record the key in
                // between. The key is checked as it is written, after the writes: a taken key
                // rolls them back. A write that fails where the key is taken (the first
                // request's record makes this one a duplicate, say) is that key's replay all
                // the same.
                let mut written = Vec::with_capacity(planned.len());
                for (sql, write) in planned {
                    match apply(conn, &sql, write) {
                        Ok(record) => written.push(record),
                        Err(error) => {
                            return Err(match &key {
                                Some(key) if key_held(conn, &key.scope, &key.key, now)? => {
                                    StoreError::KeyTaken
                                }
                                _ => error,
                            })
                        }
                    }
                }
                let key_record = match key {
                    None => None,
                    Some(key) => {
                        let record = (key.respond)(&written)?;
                        if !insert_key(conn, &key.scope, &key.key, &record, now)? {
                            return Err(StoreError::KeyTaken);
                        }
                        if inner.commits_since_purge.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY
                            == 0
                        {
                            conn.execute(
                                "DELETE FROM \"_microkit_idempotency\" WHERE expires_at <= ?1",
                                params![now],
                            )
                            .map_err(failure)?;
                        }
                        Some(record)
                    }
                };
                Ok(Committed {
                    written,
                    key_record,
                })
            })
            .await
        })
    }

    fn key_record<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<KeyRecord>> {
        Box::pin(async move {
            self.keys_table().await?;
            let (scope, key) = (scope.to_owned(), key.to_owned());
            self.read_here(move |conn| {
                let row = conn
                    .prepare_cached(
                        "SELECT fingerprint, status, headers, body, expires_at \
                         FROM \"_microkit_idempotency\" \
                         WHERE scope = ?1 AND key = ?2 AND expires_at > ?3",
                    )
                    .and_then(|mut stmt| {
                        stmt.query_row(params![scope, key, now_millis()], |row| {
                            Ok((
                                row.get::<_, String>(0)?,
                                row.get::<_, u16>(1)?,
                                row.get::<_, String>(2)?,
                                row.get::<_, Vec<u8>>(3)?,
                                row.get::<_, i64>(4)?,
                            ))
                        })
                        .optional()
                    })
                    .map_err(failure)?;
                let Some((fingerprint, status, headers, body, expires_at)) = row else {
                    return Ok(None);
                };
                Ok(Some(KeyRecord {
                    fingerprint,
                    status,
                    headers: serde_json::from_str(&headers).map_err(StoreError::backend)?,
                    body: body.into(),
                    expires_at,
                }))
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers_and_binds_values() {
        let c = Collection::new("order").unique("sku").filterable("color");
        let sql = Sql::new(c);
        assert!(sql.ddl().contains(
            "CREATE UNIQUE INDEX IF NOT EXISTS \"order__u_sku\" ON \"order\" (json_extract(data, '$.sku')) WHERE deleted = 0;"
        ));
        let query = ListQuery {
            filters: vec![("color".into(), "red' OR 1=1 --".into())],
            ..ListQuery::default()
        };
        let (clause, values) = sql.list_filter(&query);
        assert_eq!(
            clause,
            "parent IS ?1 AND deleted = 0 AND json_extract(data, '$.color') = ?2"
        );
        assert_eq!(values[1], SqlValue::Text("red' OR 1=1 --".into()));
    }
}
