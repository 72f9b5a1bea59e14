//! [`Repo`]: the one typed way to a resource's store, for the generated endpoints and for
//! handlers written next to them.

use std::marker::PhantomData;
use std::sync::Arc;

use serde_json::Value;

use super::document::{collection, decode, to_data};
use super::ids;
use super::spec::Resource;
use super::store::{Collection, Id, ListQuery, Page, Record, Store, StoreError, Write};

/// Typed access to a resource's store. The generated endpoints go through it, and so can
/// endpoints written by hand next to them (a checkout that reads and empties a cart, say).
///
/// It speaks [`StoreError`]; `?` turns that into a [`Problem`](crate::Problem) in a handler
/// (404, 409, 412, 400, or a 500 whose cause is logged once, when it is answered). A stored
/// record that no longer fits `R` is [`StoreError::Incompatible`]: a 500, never the client's
/// fault.
pub struct Repo<R> {
    store: Arc<dyn Store>,
    collection: Arc<Collection>,
    _resource: PhantomData<fn() -> R>,
}

/// An item as stored: the typed value and its record (id, version, the data as stored).
#[derive(Debug, Clone)]
pub struct Stored<R> {
    /// The typed item, its id set.
    pub item: R,
    /// The record the store keeps.
    pub record: Record,
}

impl<R> Stored<R> {
    /// The record's version, its `ETag`.
    pub fn version(&self) -> u64 {
        self.record.version
    }
}

impl<R> Clone for Repo<R> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            collection: self.collection.clone(),
            _resource: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for Repo<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("collection", &self.collection.name())
            .finish()
    }
}

impl<R: Resource> Repo<R> {
    /// The resource's records in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            collection: Arc::new(collection(&R::SPEC)),
            _resource: PhantomData,
        }
    }

    /// The store the items are kept in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The write that creates `item`, for [`Store::commit`] (with other writes, or with an
    /// idempotency key through [`Claim::commit`](crate::idempotency::Claim::commit)). Ids as
    /// [`create`](Self::create).
    pub fn create_write(&self, parent: Option<&str>, item: &R) -> Result<Write, StoreError> {
        let (id, data) = to_data(item)?;
        Ok(Write::Create {
            collection: self.collection.clone(),
            parent: parent.map(str::to_owned),
            id: ids::chosen(id),
            data,
        })
    }

    /// The write that replaces item `id` with `item`, if it is still at `if_version` when
    /// given, for [`Store::commit`].
    pub fn replace_write(
        &self,
        parent: Option<&str>,
        id: &Id,
        item: &R,
        if_version: Option<u64>,
    ) -> Result<Write, StoreError> {
        let (_, data) = to_data(item)?;
        Ok(Write::Replace {
            collection: self.collection.clone(),
            parent: parent.map(str::to_owned),
            id: id.clone(),
            data,
            if_version,
        })
    }

    /// The write that deletes item `id`, if it is still at `if_version` when given, for
    /// [`Store::commit`].
    pub fn delete_write(&self, parent: Option<&str>, id: &Id, if_version: Option<u64>) -> Write {
        Write::Delete {
            collection: self.collection.clone(),
            parent: parent.map(str::to_owned),
            id: id.clone(),
            if_version,
        }
    }

    /// `item` as `record` stored it (a create or replace of a commit): the item with the
    /// record's id, set in place when the type allows it, read back from the record otherwise.
    pub fn with_record(&self, item: R, record: Record) -> Result<Stored<R>, StoreError> {
        with_id(item, record)
    }

    /// A record of this resource (one a commit stored) as a typed item.
    pub fn stored(&self, record: Record) -> Result<Stored<R>, StoreError> {
        Ok(Stored {
            item: decode(&record)?,
            record,
        })
    }

    /// Creates the collection's tables and indexes now rather than on first use.
    pub async fn prepare(&self) -> Result<(), StoreError> {
        self.store.prepare(&self.collection).await
    }

    /// An item as stored.
    pub async fn get(&self, parent: Option<&str>, id: &Id) -> Result<Stored<R>, StoreError> {
        let record = self.record(parent, id).await?;
        Ok(Stored {
            item: decode(&record)?,
            record,
        })
    }

    /// An item's record as stored, not parsed into `R` (to answer it as it is).
    pub async fn record(&self, parent: Option<&str>, id: &Id) -> Result<Record, StoreError> {
        self.store.get(&self.collection, parent, id).await
    }

    /// Stores a new item. The store allocates integer ids; a text id or a UUID the item
    /// carries is kept (the empty text and the nil UUID mean "allocate one").
    pub async fn create(&self, parent: Option<&str>, item: R) -> Result<Stored<R>, StoreError> {
        let (id, data) = to_data(&item)?;
        let record = self
            .store
            .create(&self.collection, parent, ids::chosen(id), data)
            .await?;
        with_id(item, record)
    }

    /// Replaces an item (whose id is `id`, whatever `item` carries), if it is still at
    /// `if_version` when given.
    pub async fn replace(
        &self,
        parent: Option<&str>,
        id: &Id,
        item: R,
        if_version: Option<u64>,
    ) -> Result<Stored<R>, StoreError> {
        let (_, data) = to_data(&item)?;
        let record = self
            .store
            .replace(&self.collection, parent, id, data, if_version)
            .await?;
        with_id(item, record)
    }

    /// Deletes an item, if it is still at `if_version` when given.
    pub async fn delete(
        &self,
        parent: Option<&str>,
        id: &Id,
        if_version: Option<u64>,
    ) -> Result<(), StoreError> {
        self.store
            .delete(&self.collection, parent, id, if_version)
            .await
    }

    /// One page of items and the number of all that match.
    pub async fn list(
        &self,
        parent: Option<&str>,
        filters: Vec<(String, Value)>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<R>, u64), StoreError> {
        let query = ListQuery {
            parent: parent.map(str::to_owned),
            filters,
            offset,
            limit,
        };
        let page = self.records(&query).await?;
        let items = page.items.iter().map(decode).collect::<Result<_, _>>()?;
        Ok((items, page.total))
    }

    /// One page of records as stored, not parsed into `R` (to answer them as they are).
    pub async fn records(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.store.list(&self.collection, query).await
    }

    /// Deletes every item of a parent, returning how many there were.
    pub async fn delete_all(&self, parent: Option<&str>) -> Result<u64, StoreError> {
        self.store.delete_all(&self.collection, parent).await
    }
}

/// The stored record is the item with its id: set it rather than parse the record.
fn with_id<R: Resource>(mut item: R, record: Record) -> Result<Stored<R>, StoreError> {
    if !item.set_id(&record.id) {
        item = decode(&record)?;
    }
    Ok(Stored { item, record })
}
