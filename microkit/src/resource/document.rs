//! Between typed resources, their JSON form and store records.

use serde::Serialize;
use serde_json::{Map, Value};

use super::ids;
use super::spec::{Resource, ResourceSpec};
use super::store::Id;
use super::store::{Collection, Record, StoreError};

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

/// A record's JSON form as a document: its data with the id put back.
pub(crate) fn record_document(spec: &ResourceSpec, record: &Record) -> Value {
    let mut json = Map::clone(&record.data);
    json.insert(spec.id_field.to_owned(), ids::to_value(&record.id));
    Value::Object(json)
}

/// A record's public JSON form, serialized straight from the record without copying it: the
/// fields in the struct's order (as serializing the struct would write them, so that an item
/// reads the same in every answer), without the soft-delete flag, which no client ever sees
/// set.
pub(crate) struct RecordBody<'a> {
    pub(crate) spec: &'a ResourceSpec,
    pub(crate) record: &'a Record,
}

impl Serialize for RecordBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let spec = self.spec;
        let data = &self.record.data;
        let mut map = serializer.serialize_map(None)?;
        let mut id = || match &self.record.id {
            Id::Int(id) => map.serialize_entry(spec.id_field, id),
            Id::Text(id) => map.serialize_entry(spec.id_field, id),
        };
        if spec.fields.is_empty() {
            // A specification written by hand may not list its fields: the id, then the data.
            id()?;
            for (key, value) in data.iter() {
                if key != spec.id_field && spec.soft_delete != Some(key.as_str()) {
                    map.serialize_entry(key, value)?;
                }
            }
            return map.end();
        }
        for field in spec.fields {
            if *field == spec.id_field {
                match &self.record.id {
                    Id::Int(id) => map.serialize_entry(field, id)?,
                    Id::Text(id) => map.serialize_entry(field, id)?,
                }
            } else if spec.soft_delete != Some(*field) {
                if let Some(value) = data.get(*field) {
                    map.serialize_entry(field, value)?;
                }
            }
        }
        map.end()
    }
}

/// The typed item of a record, read without copying the record's data.
///
/// A record that no longer fits the type (a required field added since it was written, a
/// field's type changed) is the server's data at fault, never the request's: it is
/// [`StoreError::Incompatible`], a 500. Evolve a resource with `#[serde(default)]` on added
/// fields (see the `resource` module's documentation).
pub(crate) fn decode<R: Resource>(record: &Record) -> Result<R, StoreError> {
    let spec = &R::SPEC;
    let id = ids::to_value(&record.id);
    let members = std::iter::once((spec.id_field, &id)).chain(
        record
            .data
            .iter()
            .filter(|(key, _)| key.as_str() != spec.id_field)
            .map(|(key, value)| (key.as_str(), value)),
    );
    let deserializer = serde::de::value::MapDeserializer::<_, serde_json::Error>::new(members);
    R::deserialize(deserializer).map_err(|err| {
        StoreError::Incompatible(format!(
            "stored item {} of `{}` does not fit the type `{}`: {err}",
            record.id, spec.collection, spec.name
        ))
    })
}

/// A record ready to answer as `R`: checked against the type, so that a record that no longer
/// fits is [`StoreError::Incompatible`] on a read as on a write; and, when it was written before
/// fields with defaults were added (it lacks members), re-encoded from the typed item so that
/// it is answered with them, as a write would answer it. A record with every member is
/// answered as stored, without a copy.
pub(crate) fn readable<R: Resource>(record: Record) -> Result<Record, StoreError> {
    let item: R = decode(&record)?;
    let fields = R::SPEC.fields;
    if fields.is_empty() || record.data.len() + 1 == fields.len() {
        return Ok(record);
    }
    let (_, data) = to_data(&item)?;
    Ok(Record {
        data: std::sync::Arc::new(data),
        ..record
    })
}

/// The record data of a resource (its JSON form without the id) and the id it carries.
pub(crate) fn to_data<R: Resource>(item: &R) -> Result<(Id, Map<String, Value>), StoreError> {
    let spec = &R::SPEC;
    match serde_json::to_value(item) {
        Ok(Value::Object(mut data)) => {
            let id = ids::from_value(data.remove(spec.id_field));
            Ok((id, data))
        }
        Ok(_) => Err(StoreError::Incompatible(format!(
            "`{}` does not serialize to a JSON object",
            spec.name
        ))),
        Err(err) => Err(StoreError::Incompatible(format!(
            "`{}` could not be serialized: {err}",
            spec.name
        ))),
    }
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
