use std::fmt::Display;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::spec::Resource;
use crate::client::{new_idempotency_key, ClientError, ServiceClient};

/// A typed client for a resource served by another service: the same paths the generated
/// endpoints serve, through the inter-service client (balancing, retries, deadlines).
/// `#[derive(Resource)]` adds `T::client(&service_client, "catalog")`.
pub struct ResourceClient<R> {
    client: ServiceClient,
    service: String,
    parents: Vec<String>,
    _resource: PhantomData<fn() -> R>,
}

impl<R> Clone for ResourceClient<R> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            service: self.service.clone(),
            parents: self.parents.clone(),
            _resource: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for ResourceClient<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceClient")
            .field("service", &self.service)
            .field("parents", &self.parents)
            .finish()
    }
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListPage<R> {
    /// The items, by ascending id.
    pub items: Vec<R>,
    /// How many items match in all.
    pub total: u64,
}

impl<R: Resource> ResourceClient<R> {
    /// A client for `R` as served by `service`.
    pub fn new(client: ServiceClient, service: &str) -> Self {
        Self {
            client,
            service: service.to_owned(),
            parents: Vec::new(),
            _resource: PhantomData,
        }
    }

    /// The same client for the items of one parent: the values of the path's parent
    /// parameters, in order (`[7]` for `/user/{uid}/cart`).
    pub fn under<V: Display>(mut self, parents: impl IntoIterator<Item = V>) -> Self {
        self.parents = parents.into_iter().map(|value| value.to_string()).collect();
        self
    }

    /// The resource path with the parent values put in.
    fn base(&self) -> String {
        self.with_parents(R::SPEC.path)
    }

    /// `path` (the resource path or its list path) with the parent values put in.
    fn with_parents(&self, path: &str) -> String {
        let mut path = path.to_owned();
        for (param, value) in R::SPEC.parent_params().into_iter().zip(&self.parents) {
            let encoded =
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC);
            path = path.replace(&format!("{{{param}}}"), &encoded.to_string());
        }
        path
    }

    fn item(&self, id: impl Display) -> String {
        let id = id.to_string();
        let encoded =
            percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC);
        format!("{}/{encoded}", self.base())
    }

    /// Creates an item from `body` (the resource's fields; server-set ones are ignored).
    ///
    /// The request carries a fresh `Idempotency-Key`, so that it is retried (after a
    /// 502/503/504, a timeout or a broken connection) without creating the item twice.
    pub async fn create<B: Serialize + ?Sized>(&self, body: &B) -> Result<R, ClientError> {
        self.create_with_key(body, &new_idempotency_key()).await
    }

    /// Creates an item with a key of the caller's choice: sending the same body with the same
    /// key again (after a crash, say) answers with the item created the first time.
    pub async fn create_with_key<B: Serialize + ?Sized>(
        &self,
        body: &B,
        key: &str,
    ) -> Result<R, ClientError> {
        self.client
            .post_json_with_key(&self.service, &format!("{}/", self.base()), body, key)
            .await
    }

    /// Reads an item.
    pub async fn get(&self, id: impl Display) -> Result<R, ClientError> {
        self.client.get_json(&self.service, &self.item(id)).await
    }

    /// Replaces an item.
    pub async fn update<B: Serialize + ?Sized>(
        &self,
        id: impl Display,
        body: &B,
    ) -> Result<R, ClientError> {
        self.client
            .put_json(&self.service, &self.item(id), body)
            .await
    }

    /// Changes an item with a JSON Merge Patch.
    pub async fn patch(&self, id: impl Display, patch: &Value) -> Result<R, ClientError> {
        self.client
            .patch_json(&self.service, &self.item(id), patch)
            .await
    }

    /// Deletes an item.
    pub async fn delete(&self, id: impl Display) -> Result<(), ClientError> {
        self.client.delete(&self.service, &self.item(id)).await
    }

    /// One page of items matching `filters`.
    pub async fn list(
        &self,
        filters: &[(&str, &str)],
        offset: u64,
        limit: u64,
    ) -> Result<ListPage<R>, ClientError> {
        let mut query: Vec<(String, String)> = vec![
            ("offset".to_owned(), offset.to_string()),
            ("limit".to_owned(), limit.to_string()),
        ];
        query.extend(
            filters
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned())),
        );
        let query = serde_urlencoded::to_string(&query).unwrap_or_default();
        let path = self.with_parents(&R::SPEC.list_path());
        self.client
            .get_json(&self.service, &format!("{path}?{query}"))
            .await
    }
}
