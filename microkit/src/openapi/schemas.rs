//! JSON Schemas of the types an API takes and returns, kept under `components/schemas`.
//!
//! Types are described twice over by schemars: as serde *deserializes* them (what a request
//! may send: a `#[serde(default)]` field is optional) and as serde *serializes* them (what a
//! response holds: that field is always there). The two usually agree; where they do not,
//! the response's schema gets its own component, `<Name>Response`.

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::JsonSchema;
use serde_json::{Map, Value};

/// Where response schemas are kept until [`Schemas::into_components`] merges them.
const OUTPUT_DEFINITIONS: &str = "/components/x-microkit-output";
const COMPONENTS: &str = "#/components/schemas/";

/// The schema generators of one document.
pub struct Schemas {
    input: SchemaGenerator,
    output: SchemaGenerator,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas")
            .field(
                "input",
                &self.input.definitions().keys().collect::<Vec<_>>(),
            )
            .field(
                "output",
                &self.output.definitions().keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for Schemas {
    fn default() -> Self {
        Self::new()
    }
}

impl Schemas {
    /// Generators for JSON Schema 2020-12, the dialect of OpenAPI 3.1.
    pub fn new() -> Self {
        let settings = |path: &'static str| {
            SchemaSettings::draft2020_12().with(|settings| {
                settings.definitions_path = path.into();
                settings.meta_schema = None;
            })
        };
        Self {
            input: settings("/components/schemas")
                .for_deserialize()
                .into_generator(),
            output: settings(OUTPUT_DEFINITIONS)
                .for_serialize()
                .into_generator(),
        }
    }

    /// The schema of `T` as requests send it: a `$ref` for named types.
    pub fn input<T: JsonSchema + ?Sized>(&mut self) -> Value {
        self.input.subschema_for::<T>().to_value()
    }

    /// The schema of `T` as responses hold it: a `$ref` for named types.
    pub fn output<T: JsonSchema + ?Sized>(&mut self) -> Value {
        self.output.subschema_for::<T>().to_value()
    }

    /// Adds a component schema written by hand (a resource's, say), kept as given.
    pub fn insert_component(&mut self, name: &str, schema: Value) {
        self.input.definitions_mut().insert(name.to_owned(), schema);
    }

    /// `schema` with a `$ref` to a request-side component replaced by that component: what
    /// parameters need, as each property of a struct becomes a parameter of its own.
    pub fn resolve_input(&self, schema: &Value) -> Value {
        let target = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|reference| reference.strip_prefix(COMPONENTS));
        match target.and_then(|name| self.input.definitions().get(name)) {
            Some(definition) => definition.clone(),
            None => schema.clone(),
        }
    }

    /// Every component, request and response sides merged, and the renames to apply to
    /// response-side references elsewhere in the document.
    pub(crate) fn into_components(mut self) -> (Map<String, Value>, Vec<(String, String)>) {
        let mut components = self.input.take_definitions(true);
        let outputs = self.output.take_definitions(true);
        let output_prefix = format!("#{OUTPUT_DEFINITIONS}/");
        let renames_for = |differing: &[String]| -> Vec<(String, String)> {
            outputs
                .keys()
                .map(|name| {
                    let merged = match differing.contains(name) {
                        true => format!("{name}Response"),
                        false => name.clone(),
                    };
                    (
                        format!("{output_prefix}{name}"),
                        format!("{COMPONENTS}{merged}"),
                    )
                })
                .collect()
        };
        // A response schema differs when its own text differs, or when it refers to one that
        // does: grow the set of differing names until it holds still.
        let mut differing: Vec<String> = Vec::new();
        loop {
            let renames = renames_for(&differing);
            let before = differing.len();
            for (name, schema) in &outputs {
                let mut schema = schema.clone();
                rewrite_refs(&mut schema, &renames);
                let differs = components.get(name).is_some_and(|input| *input != schema);
                if differs && !differing.contains(name) {
                    differing.push(name.clone());
                }
            }
            if differing.len() == before {
                break;
            }
        }
        let renames = renames_for(&differing);
        for (name, mut schema) in outputs {
            rewrite_refs(&mut schema, &renames);
            let merged = match differing.contains(&name) {
                true => format!("{name}Response"),
                false => name,
            };
            components.entry(merged).or_insert(schema);
        }
        (components, renames)
    }
}

/// Replaces every `$ref` equal to a `from` with its `to`.
pub(crate) fn rewrite_refs(value: &mut Value, renames: &[(String, String)]) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("$ref") {
                if let Some((_, to)) = renames.iter().find(|(from, _)| from == reference) {
                    *reference = to.clone();
                }
            }
            for child in map.values_mut() {
                rewrite_refs(child, renames);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_refs(item, renames)),
        _ => {}
    }
}

/// Adds the bounds that an integer's width implies (`format: uint64` says nothing to a
/// validator): a client generating values from the schema then stays within what the server
/// parses, and one probing outside it knows the server refuses.
pub(crate) fn bound_integers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let bounds = map
                .get("format")
                .and_then(Value::as_str)
                .and_then(integer_bounds);
            let integer = match map.get("type") {
                Some(Value::String(kind)) => kind == "integer",
                Some(Value::Array(kinds)) => kinds.iter().any(|kind| kind == "integer"),
                _ => false,
            };
            if let (Some((min, max)), true) = (bounds, integer) {
                map.entry("minimum").or_insert(min);
                map.entry("maximum").or_insert(max);
            }
            map.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// Drops `"default": null` where the schema does not allow `null`: serde's `default` on an
/// `Option` whose schema is written by hand says that much, and validators check defaults
/// against their schema.
pub(crate) fn drop_impossible_null_defaults(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let allows_null = match map.get("type") {
                Some(Value::String(kind)) => kind == "null",
                Some(Value::Array(kinds)) => kinds.iter().any(|kind| kind == "null"),
                _ => true,
            };
            if !allows_null && map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            map.values_mut().for_each(drop_impossible_null_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_impossible_null_defaults),
        _ => {}
    }
}

fn integer_bounds(format: &str) -> Option<(Value, Value)> {
    Some(match format {
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "int64" | "int" => (i64::MIN.into(), i64::MAX.into()),
        "uint8" => (0.into(), u8::MAX.into()),
        "uint16" => (0.into(), u16::MAX.into()),
        "uint32" => (0.into(), u32::MAX.into()),
        "uint64" | "uint" => (0.into(), u64::MAX.into()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;

    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Item {
        id: u32,
        #[serde(default)]
        note: String,
        #[serde(rename = "label")]
        name: Option<String>,
    }

    #[test]
    fn request_and_response_sides_differ_where_serde_does() {
        let mut schemas = Schemas::new();
        assert_eq!(
            schemas.input::<Item>(),
            json!({"$ref": "#/components/schemas/Item"})
        );
        let output = schemas.output::<Item>();
        let (components, renames) = schemas.into_components();
        let input = &components["Item"];
        assert_eq!(input["additionalProperties"], false);
        assert_eq!(input["required"], json!(["id"]));
        assert!(input["properties"]["label"].is_object());
        let mut output = output;
        rewrite_refs(&mut output, &renames);
        assert_eq!(output, json!({"$ref": "#/components/schemas/ItemResponse"}));
        let required = &components["ItemResponse"]["required"];
        assert!(required.as_array().unwrap().contains(&json!("note")));
    }

    #[test]
    fn integers_get_the_bounds_of_their_width() {
        let mut schema = json!({"type": "integer", "format": "uint64", "minimum": 0});
        bound_integers(&mut schema);
        assert_eq!(schema["maximum"], json!(u64::MAX));
        let mut nullable = json!({"type": ["integer", "null"], "format": "int32"});
        bound_integers(&mut nullable);
        assert_eq!(nullable["minimum"], json!(i32::MIN));
        let mut text = json!({"type": "string", "format": "int32"});
        bound_integers(&mut text);
        assert!(text.get("minimum").is_none());
    }

    #[test]
    fn null_defaults_go_where_null_is_not_allowed() {
        let mut schema = json!({"properties": {
            "a": {"type": "string", "default": null},
            "b": {"type": ["string", "null"], "default": null},
        }});
        drop_impossible_null_defaults(&mut schema);
        assert!(schema["properties"]["a"].get("default").is_none());
        assert!(schema["properties"]["b"].get("default").is_some());
    }
}
