//! [`Write`]: one change of a [`Store::commit`](super::Store::commit), applied with the others
//! and an idempotency key record, or not at all.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{Collection, Id, KeyRecord, Record, StoreError};

/// One change of an atomic [`Store::commit`](super::Store::commit). Each has the semantics of
/// the [`Store`](super::Store) method of the same name.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Write {
    /// As [`Store::create`](super::Store::create).
    Create {
        /// The collection.
        collection: Arc<Collection>,
        /// The parent key, for a nested resource.
        parent: Option<String>,
        /// The id, when the caller chooses it.
        id: Option<Id>,
        /// The record's data.
        data: Map<String, Value>,
    },
    /// As [`Store::replace`](super::Store::replace).
    Replace {
        /// The collection.
        collection: Arc<Collection>,
        /// The parent key, for a nested resource.
        parent: Option<String>,
        /// The record's id.
        id: Id,
        /// The new data.
        data: Map<String, Value>,
        /// The version the record must still be at.
        if_version: Option<u64>,
    },
    /// As [`Store::delete`](super::Store::delete).
    Delete {
        /// The collection.
        collection: Arc<Collection>,
        /// The parent key, for a nested resource.
        parent: Option<String>,
        /// The record's id.
        id: Id,
        /// The version the record must still be at.
        if_version: Option<u64>,
    },
}

impl Write {
    /// The collection written to.
    pub fn collection(&self) -> &Arc<Collection> {
        match self {
            Write::Create { collection, .. }
            | Write::Replace { collection, .. }
            | Write::Delete { collection, .. } => collection,
        }
    }
}

/// What each write of a commit left: the record a create or replace stored, `None` for a
/// delete. In the order of the writes.
pub type Written = Vec<Option<Record>>;

/// Builds the key record's response from what the writes stored (the new id goes into a
/// `Location`, the version into an `ETag`). It runs inside the transaction, before it commits,
/// so it must not block or wait: it only formats.
pub type Respond = Box<dyn FnOnce(&Written) -> Result<KeyRecord, StoreError> + Send>;

/// The idempotency key a commit records with its writes: committed with them, or not at all.
pub struct KeyCommit {
    /// Where the key is valid: method, route and caller (see the
    /// [`idempotency`](crate::idempotency) module).
    pub scope: String,
    /// The key the client sent.
    pub key: String,
    /// Builds the record kept under the key, from what the writes stored.
    pub respond: Respond,
}

impl std::fmt::Debug for KeyCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCommit")
            .field("scope", &self.scope)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// What [`Store::commit`](super::Store::commit) returns: what the writes stored and the key
/// record committed with them.
#[derive(Debug)]
pub struct Committed {
    /// One entry per write, in order.
    pub written: Written,
    /// The key record, when the commit carried a key.
    pub key_record: Option<KeyRecord>,
}
