//! The id rules of resources, in one place: what stands in for an id the store allocates, and
//! which ids a create hands to the store.

use serde_json::Value;

use super::store::{Id, IdKind};

/// The nil UUID: a UUID id that is not set.
const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

/// What a new item's id holds until the store allocates one: `0`, or the nil UUID. `None` for
/// text ids, which the client chooses.
pub(crate) fn placeholder(kind: IdKind) -> Option<Value> {
    match kind {
        IdKind::Integer => Some(Value::from(0)),
        IdKind::Uuid => Some(Value::from(NIL_UUID)),
        IdKind::Text => None,
    }
}

/// The id a create asks the store for: a text id or a UUID the item carries, or `None` for the
/// store to allocate (integers always; the empty text and the nil UUID, which mean "unset").
pub(crate) fn chosen(id: Id) -> Option<Id> {
    match id {
        Id::Text(text) if !text.is_empty() && text != NIL_UUID => Some(Id::Text(text)),
        _ => None,
    }
}

/// An id as its JSON value.
pub(crate) fn to_value(id: &Id) -> Value {
    match id {
        Id::Int(id) => Value::from(*id),
        Id::Text(id) => Value::from(id.as_str()),
    }
}

/// The id in a resource's JSON form (`Id::Int(0)` when there is none).
pub(crate) fn from_value(value: Option<Value>) -> Id {
    match value {
        Some(Value::Number(number)) => Id::Int(number.as_i64().unwrap_or_default()),
        Some(Value::String(text)) => Id::Text(text),
        _ => Id::Int(0),
    }
}
