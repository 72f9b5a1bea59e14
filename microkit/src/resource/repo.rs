use std::marker::PhantomData;
use std::sync::Arc;

use serde_json::Value;

use super::document::{collection, from_json, record_json, to_data};
use super::spec::Resource;
use super::store::{Collection, Id, ListQuery, Store, StoreError};
use crate::Problem;

/// Typed access to a resource's store, for endpoints written by hand next to the generated
/// ones (a checkout that reads and empties a cart, say).
pub struct Repo<R> {
    store: Arc<dyn Store>,
    collection: Arc<Collection>,
    _resource: PhantomData<fn() -> R>,
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

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The store collection.
    pub fn collection(&self) -> &Collection {
        &self.collection
    }

    /// Creates the collection's tables and indexes now rather than on first use.
    pub async fn prepare(&self) -> Result<(), StoreError> {
        self.store.prepare(&self.collection).await
    }

    /// An item and its version.
    pub async fn get(&self, parent: Option<&str>, id: &Id) -> Result<(R, u64), Problem> {
        let record = self
            .store
            .get(&self.collection, parent, id)
            .await
            .map_err(|err| err.to_problem())?;
        let version = record.version;
        Ok((from_json(record_json(&R::SPEC, record))?, version))
    }

    /// Stores a new item; the id it carries is used for text and UUID ids.
    pub async fn create(&self, parent: Option<&str>, item: &R) -> Result<(R, u64), Problem> {
        let (id, data) = to_data(item)?;
        let id = match id {
            Id::Text(text)
                if !text.is_empty() && text != "00000000-0000-0000-0000-000000000000" =>
            {
                Some(Id::Text(text))
            }
            _ => None,
        };
        let record = self
            .store
            .create(&self.collection, parent, id, data)
            .await
            .map_err(|err| err.to_problem())?;
        let version = record.version;
        Ok((from_json(record_json(&R::SPEC, record))?, version))
    }

    /// Replaces an item, if it is still at `if_version` when given.
    pub async fn replace(
        &self,
        parent: Option<&str>,
        id: &Id,
        item: &R,
        if_version: Option<u64>,
    ) -> Result<(R, u64), Problem> {
        let (_, data) = to_data(item)?;
        let record = self
            .store
            .replace(&self.collection, parent, id, data, if_version)
            .await
            .map_err(|err| err.to_problem())?;
        let version = record.version;
        Ok((from_json(record_json(&R::SPEC, record))?, version))
    }

    /// Deletes an item.
    pub async fn delete(
        &self,
        parent: Option<&str>,
        id: &Id,
        if_version: Option<u64>,
    ) -> Result<(), Problem> {
        self.store
            .delete(&self.collection, parent, id, if_version)
            .await
            .map_err(|err| err.to_problem())
    }

    /// One page of items and the number of all that match.
    pub async fn list(
        &self,
        parent: Option<&str>,
        filters: Vec<(String, Value)>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<R>, u64), Problem> {
        let query = ListQuery {
            parent: parent.map(str::to_owned),
            filters,
            offset,
            limit,
        };
        let page = self
            .store
            .list(&self.collection, &query)
            .await
            .map_err(|err| err.to_problem())?;
        let items = page
            .items
            .into_iter()
            .map(|record| from_json(record_json(&R::SPEC, record)))
            .collect::<Result<Vec<R>, Problem>>()?;
        Ok((items, page.total))
    }

    /// Deletes every item of a parent, returning how many there were.
    pub async fn delete_all(&self, parent: Option<&str>) -> Result<u64, Problem> {
        self.store
            .delete_all(&self.collection, parent)
            .await
            .map_err(|err| err.to_problem())
    }
}
