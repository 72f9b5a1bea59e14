//! Stores: where resources keep their records.
//!
//! A [`Store`] keeps JSON documents ([`Record`]s) in named [`Collection`]s. It is generic over
//! every resource: the generated CRUD handlers turn typed structs into documents and back, and
//! hold the store as an `Arc<dyn Store>`.
//!
//! | backend | feature | for |
//! |---|---|---|
//! | [`MemoryStore`] | always | tests, demos, caches: fast, gone on exit |
//! | [`SqliteStore`](sqlite::SqliteStore) | `sqlite` | one machine, durable, nothing to install |
//! | [`PostgresStore`](postgres::PostgresStore) | `postgres` | deployments that outgrow one machine |
//!
//! All three have the same semantics, checked by one conformance suite
//! (`tests/store_conformance.rs`):
//!
//! - **Atomic operations.** Each call succeeds entirely or changes nothing.
//! - **Ids** are unique per collection (see [`IdKind`]). Integer ids are allocated by the
//!   store, strictly increasing and never reused, even after deletes; UUIDs are generated
//!   unless given; text ids are given by the caller.
//! - **Versions.** A record is created at version 1 and every replace adds one. `replace` and
//!   `delete` take an optional `if_version` and fail with
//!   [`VersionMismatch`](StoreError::VersionMismatch) (412) when it differs.
//! - **Parents.** A parent key (such as `uid=7`) scopes nested resources: a record is only
//!   seen by calls that pass its own parent (`None` sees only records without parent).
//! - **Unique fields** are unique among the live records of a collection; a violating create
//!   or replace fails with [`Duplicate`](StoreError::Duplicate) (409). JSON `null` and missing
//!   values never conflict.
//! - **Soft delete.** In a soft-delete collection a deleted record is kept (marked deleted)
//!   but behaves as gone everywhere: `get` and `list` miss it, its unique values are free, and
//!   its id (for UUID and text ids) can be created again; the new record then starts one
//!   version above the deleted one, so an `ETag` of the old record never matches the new one.
//! - **Comparisons** (unique fields and list filters) are exact between values of the same
//!   JSON type, which is all a typed resource ever stores in one field. Comparisons across
//!   types (the string `"1"` and the number `1`) are unspecified.
//! - **Commits.** [`Store::commit`] applies several writes, across collections, and an
//!   idempotency key record (see [`idempotency`](crate::idempotency)) in one transaction: all
//!   of it is durable, or none of it. A key is kept once per scope until it expires; a commit
//!   whose key another commit holds changes nothing and fails with
//!   [`KeyTaken`](StoreError::KeyTaken).

mod collection;
mod error;
mod id;
mod key_record;
mod memory;
mod metered;
#[cfg(feature = "postgres")]
pub mod postgres;
mod record;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod write;

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value};

pub use self::collection::{Collection, InvalidName};
pub use self::error::StoreError;
pub use self::id::{Id, IdKind, MAX_TEXT_ID_LEN};
pub use self::key_record::{epoch_millis, now_millis, KeyRecord};
pub use self::memory::MemoryStore;
pub use self::metered::{MeteredStore, PoolStatus, PoolWaits};
pub use self::record::{ListQuery, Page, Record};
pub use self::write::{Committed, KeyCommit, Respond, Write, Written};

/// The future a [`Store`] method returns: boxed so that the trait stays dyn-compatible.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A place to keep the records of collections. See the [module docs](self) for the semantics
/// every implementation shares.
pub trait Store: Send + Sync + 'static {
    /// Creates what the collection needs (tables, indexes), idempotently and safely when
    /// several processes do it at once. Other methods prepare lazily, so calling this at
    /// startup only moves the work (and its failures) earlier.
    fn prepare<'a>(&'a self, collection: &'a Collection) -> StoreFuture<'a, ()>;

    /// Creates a record at version 1 (see the module docs for a soft-deleted id).
    ///
    /// `id` must be `None` for integer collections, may be given for UUID collections and must
    /// be given for text collections. Fails with [`StoreError::Duplicate`] (`field` is `"id"`
    /// for a taken id) or [`StoreError::InvalidId`].
    fn create<'a>(
        &'a self,
        collection: &'a Collection,
        parent: Option<&'a str>,
        id: Option<Id>,
        data: Map<String, Value>,
    ) -> StoreFuture<'a, Record>;

    /// The live record with this id under this parent, or [`StoreError::NotFound`].
    fn get<'a>(
        &'a self,
        collection: &'a Collection,
        parent: Option<&'a str>,
        id: &'a Id,
    ) -> StoreFuture<'a, Record>;

    /// Replaces the data of a record entirely, adding one to its version.
    fn replace<'a>(
        &'a self,
        collection: &'a Collection,
        parent: Option<&'a str>,
        id: &'a Id,
        data: Map<String, Value>,
        if_version: Option<u64>,
    ) -> StoreFuture<'a, Record>;

    /// Deletes a record: softly when the collection says so, for good otherwise.
    fn delete<'a>(
        &'a self,
        collection: &'a Collection,
        parent: Option<&'a str>,
        id: &'a Id,
        if_version: Option<u64>,
    ) -> StoreFuture<'a, ()>;

    /// One page of the live records of a parent that match the filters, ascending by id, and
    /// how many match in all.
    fn list<'a>(
        &'a self,
        collection: &'a Collection,
        query: &'a ListQuery,
    ) -> StoreFuture<'a, Page>;

    /// Deletes every live record of a parent (softly when the collection says so) and returns
    /// how many there were.
    fn delete_all<'a>(
        &'a self,
        collection: &'a Collection,
        parent: Option<&'a str>,
    ) -> StoreFuture<'a, u64>;

    /// Applies `writes` in order and records `key` with them, in one transaction: either all
    /// of it is stored (durably, for a durable store) or nothing is. A failing write fails the
    /// commit with its error. A key whose scope already holds an unexpired record fails it with
    /// [`StoreError::KeyTaken`]; an expired one is replaced.
    ///
    /// The default implementation refuses: a store that keeps no key records cannot honour
    /// `Idempotency-Key`.
    fn commit<'a>(
        &'a self,
        writes: Vec<Write>,
        key: Option<KeyCommit>,
    ) -> StoreFuture<'a, Committed> {
        let _ = (writes, key);
        Box::pin(async {
            Err(StoreError::backend(
                "this store does not support atomic commits and idempotency keys",
            ))
        })
    }

    /// The unexpired record kept under `key` in `scope`, if any.
    fn key_record<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<KeyRecord>> {
        let _ = (scope, key);
        Box::pin(async { Ok(None) })
    }

    /// The database system, as OpenTelemetry's `db.system.name` names it, for metrics:
    /// `sqlite`, `postgresql` or `memory` for microkit's stores, `other_sql` for others unless
    /// they say.
    fn system_name(&self) -> &'static str {
        metered::system_name_of(std::any::TypeId::of::<Self>())
    }

    /// The store's connection pool now, for metrics ([`MeteredStore`] reads it at every
    /// scrape); `None`, the default, for a store without one.
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }

    /// How long operations waited for a connection of the store's pool, for metrics; `None`,
    /// the default, for a store without one.
    fn pool_waits(&self) -> Option<&PoolWaits> {
        None
    }
}

/// The id a create stores: checked, generated for UUIDs, `None` when the backend allocates it.
pub(crate) fn id_for_create(
    collection: &Collection,
    id: Option<Id>,
) -> Result<Option<Id>, StoreError> {
    match (collection.kind(), id) {
        (IdKind::Integer, None) => Ok(None),
        (IdKind::Integer, Some(_)) => Err(StoreError::InvalidId(
            "integer ids are allocated by the store".into(),
        )),
        (IdKind::Uuid, None) => Ok(Some(Id::Text(
            uuid::Uuid::new_v4().hyphenated().to_string(),
        ))),
        (IdKind::Text, None) => Err(StoreError::InvalidId("a text id is required".into())),
        (kind, Some(id)) => id.checked(kind).map(Some).ok_or_else(|| invalid_id(kind)),
    }
}

/// Checks a write of a commit before anything is written: its id as the single operation
/// would check it, a create's id generated or left for the backend to allocate.
pub(crate) fn check_write(write: &mut Write) -> Result<(), StoreError> {
    match write {
        Write::Create { collection, id, .. } => *id = id_for_create(collection, id.take())?,
        Write::Replace { collection, id, .. } | Write::Delete { collection, id, .. } => {
            check_id(collection, id)?;
        }
    }
    Ok(())
}

/// Fails with [`StoreError::InvalidId`] unless `id` has the collection's shape.
pub(crate) fn check_id(collection: &Collection, id: &Id) -> Result<(), StoreError> {
    if id.is_valid(collection.kind()) {
        Ok(())
    } else {
        Err(invalid_id(collection.kind()))
    }
}

fn invalid_id(kind: IdKind) -> StoreError {
    StoreError::InvalidId(match kind {
        IdKind::Integer => "expected a positive integer".into(),
        IdKind::Uuid => "expected a UUID".into(),
        IdKind::Text => format!("expected 1 to {MAX_TEXT_ID_LEN} bytes of text"),
    })
}

/// Fails with [`StoreError::InvalidFilter`] unless every filter is on a filterable field and
/// has a scalar value.
pub(crate) fn check_filters(
    collection: &Collection,
    filters: &[(String, Value)],
) -> Result<(), StoreError> {
    for (field, value) in filters {
        if !collection.filterable_fields().contains(field) {
            return Err(StoreError::InvalidFilter(format!(
                "`{field}` is not filterable"
            )));
        }
        if value.is_array() || value.is_object() {
            return Err(StoreError::InvalidFilter(format!(
                "`{field}` can only be compared with a string, number, boolean or null"
            )));
        }
    }
    Ok(())
}
