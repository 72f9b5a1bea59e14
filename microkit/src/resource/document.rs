//! Between typed resources, their JSON form and store records.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use super::spec::{Resource, ResourceSpec};
use super::store::{Collection, Id, IdKind, Record};
use crate::{FieldError, Problem};

/// The store collection of a resource.
pub(crate) fn collection(spec: &ResourceSpec) -> Collection {
    let mut collection = Collection::new(spec.collection)
        .id_kind(spec.id_kind)
        .soft_delete(spec.soft_delete.is_some());
    for field in spec.unique {
        collection = collection.unique(*field);
    }
    for field in spec.filterable {
        collection = collection.filterable(*field);
    }
    collection
}

/// A record's JSON form: its data with the id put back.
pub(crate) fn record_json(spec: &ResourceSpec, record: Record) -> Map<String, Value> {
    let mut json = Arc::unwrap_or_clone(record.data);
    let id = match record.id {
        Id::Int(id) => Value::from(id),
        Id::Text(id) => Value::String(id),
    };
    json.insert(spec.id_field.to_owned(), id);
    json
}

/// A record's JSON form, serialized straight from the record: the id first, then the data,
/// without copying the data to put the id in.
pub(crate) struct RecordBody<'a> {
    pub(crate) spec: &'a ResourceSpec,
    pub(crate) record: &'a Record,
}

impl Serialize for RecordBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let id_field = self.spec.id_field;
        let data = &self.record.data;
        let mut map = serializer.serialize_map(Some(data.len() + 1))?;
        match &self.record.id {
            Id::Int(id) => map.serialize_entry(id_field, id)?,
            Id::Text(id) => map.serialize_entry(id_field, id)?,
        }
        for (key, value) in data.iter().filter(|(key, _)| key.as_str() != id_field) {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Parses a resource from its JSON form, refusing a wrong shape with 422.
pub(crate) fn from_json<R: Resource>(json: Map<String, Value>) -> Result<R, Problem> {
    crate::extract::from_value(Value::Object(json)).map_err(Problem::from)
}

/// Parses a resource from a stored record's JSON form, without copying it.
pub(crate) fn from_json_ref<R: Resource>(json: &Map<String, Value>) -> Result<R, Problem> {
    R::deserialize(json).map_err(|err| {
        tracing::error!(error = %err, "a stored record does not parse as its resource");
        Problem::internal("a stored item could not be read")
    })
}

/// The record data of a resource (its JSON form without the id) and the id it carries.
pub(crate) fn to_data<R: Resource>(item: &R) -> Result<(Id, Map<String, Value>), Problem> {
    let spec = &R::SPEC;
    let Value::Object(mut data) = serde_json::to_value(item).map_err(|err| {
        tracing::error!(error = %err, "a resource could not be serialized");
        Problem::internal("the item could not be stored")
    })?
    else {
        return Err(Problem::internal(
            "a resource must serialize to a JSON object",
        ));
    };
    let id = match data.remove(spec.id_field) {
        Some(Value::Number(number)) => Id::Int(number.as_i64().unwrap_or_default()),
        Some(Value::String(text)) => Id::Text(text),
        _ => Id::Int(0),
    };
    Ok((id, data))
}

/// The placeholder a request body's id is set to before the store allocates one.
pub(crate) fn placeholder_id(kind: IdKind) -> Value {
    match kind {
        IdKind::Integer => Value::from(0),
        IdKind::Uuid => Value::from("00000000-0000-0000-0000-000000000000"),
        IdKind::Text => Value::from(""),
    }
}

/// Prepares a request body for parsing: refuses fields the resource does not have (422),
/// drops the server-set ones, and puts in the id and the server-set values that the typed
/// struct needs.
pub(crate) fn request_json(
    spec: &ResourceSpec,
    known_fields: &[String],
    body: Value,
    id: Option<&Id>,
    server_values: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, Problem> {
    let Value::Object(mut json) = body else {
        return Err(Problem::unprocessable(
            "the request body must be a JSON object",
        ));
    };
    let unknown: Vec<FieldError> = json
        .keys()
        .filter(|key| !known_fields.iter().any(|known| known == *key))
        .map(|key| FieldError::new(key.clone(), "is not a field of this resource"))
        .collect();
    if !unknown.is_empty() {
        return Err(
            Problem::unprocessable("the request body has unknown fields")
                .with_field_errors(unknown),
        );
    }
    let client_sets_id = spec.id_kind == IdKind::Text && id.is_none();
    json.retain(|key, _| !spec.is_server_set(key) || (client_sets_id && key == spec.id_field));
    if let Some(server_values) = server_values {
        for (key, value) in server_values {
            if spec.is_server_set(key) && key != spec.id_field {
                json.insert(key.clone(), value.clone());
            }
        }
    }
    if let Some(soft_delete) = spec.soft_delete {
        json.insert(soft_delete.to_owned(), Value::Bool(false));
    }
    let id_value = match id {
        Some(Id::Int(id)) => Value::from(*id),
        Some(Id::Text(id)) => Value::from(id.clone()),
        None if client_sets_id => json.get(spec.id_field).cloned().ok_or_else(|| {
            Problem::unprocessable("the request body has no id")
                .with_field_errors([FieldError::new(spec.id_field, "is required")])
        })?,
        None => placeholder_id(spec.id_kind),
    };
    json.insert(spec.id_field.to_owned(), id_value);
    Ok(json)
}

/// RFC 7396 JSON Merge Patch: objects merge recursively, `null` removes, anything else
/// replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(patch) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let target = target.as_object_mut().expect("made an object above");
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(&key);
                } else {
                    merge_patch(target.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (mut target, patch, expected) in cases {
            merge_patch(&mut target, patch.clone());
            assert_eq!(target, expected, "patch {patch}");
        }
    }
}
