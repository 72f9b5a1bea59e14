//! The documents a store keeps and the pages it lists.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::id::Id;

/// One stored record: its id, version, parent and the resource's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The id (not repeated inside `data`).
    pub id: Id,
    /// 1 when created, one more on every replace; the natural `ETag`.
    pub version: u64,
    /// The parent key (such as `uid=7`) for a nested resource.
    pub parent: Option<String>,
    /// The resource's fields, as a JSON object.
    ///
    /// Shared, so that a store keeping records in memory hands them out without copying them.
    pub data: std::sync::Arc<Map<String, Value>>,
}

/// What [`Store::list`](super::Store::list) returns: records of one parent that match the
/// filters, ascending by id, one page of them.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Only records of this parent (`None`: only records without a parent).
    pub parent: Option<String>,
    /// Equality filters on top-level fields of the data, all of which must hold.
    ///
    /// Each field must be one of the collection's filterable fields and each value a JSON
    /// scalar, or the list fails with [`StoreError::InvalidFilter`](super::StoreError). A
    /// `null` value matches records where the field is `null` or missing. Values compare
    /// exactly between values of the same JSON type (all a typed resource ever stores in one
    /// field); how `"1"` compares with `1` is unspecified and differs across backends.
    pub filters: Vec<(String, Value)>,
    /// How many matching records to skip.
    pub offset: u64,
    /// At most how many records to return.
    pub limit: u64,
}

impl Default for ListQuery {
    /// No parent, no filter, everything: offset 0, no limit.
    fn default() -> Self {
        Self {
            parent: None,
            filters: Vec::new(),
            offset: 0,
            limit: u64::MAX,
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The records of the page, ascending by id.
    pub items: Vec<Record>,
    /// How many records match the query, regardless of its offset and limit.
    pub total: u64,
}
