//! JSON Schemas (2020-12, the dialect of OpenAPI 3.1) of field types.
//!
//! [`FieldSchema`] gives the schema of a Rust type as serde serializes it. It is implemented for
//! the standard types a resource holds: strings, `bool`, integers (with their OpenAPI `format`
//! and bounds), floats, `char`, `Option<T>` (nullable), sequences and sets (arrays), maps with
//! `String` keys (objects), `uuid::Uuid` and `serde_json::Value`.
//!
//! `#[derive(Resource)]` builds [`Resource::json_schema`](super::Resource::json_schema) from
//! the `FieldSchema` of each field. A field whose type has no `FieldSchema` (a nested struct of
//! yours, say) still compiles: its schema is `{}`, which accepts any value. Implement
//! `FieldSchema` for the type to describe it precisely:
//!
//! ```
//! use microkit::resource::schema::FieldSchema;
//! use serde_json::{json, Value};
//!
//! struct Money { cents: i64, currency: String }
//!
//! impl FieldSchema for Money {
//!     fn field_schema() -> Value {
//!         json!({
//!             "type": "object",
//!             "properties": {
//!                 "cents": i64::field_schema(),
//!                 "currency": String::field_schema(),
//!             },
//!             "required": ["cents", "currency"],
//!         })
//!     }
//! }
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, LinkedList, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use serde_json::{json, Map, Value};

/// A type whose JSON form has a known JSON Schema.
pub trait FieldSchema {
    /// The JSON Schema (2020-12) of the type's serialized form.
    fn field_schema() -> Value;
}

impl FieldSchema for str {
    fn field_schema() -> Value {
        json!({ "type": "string" })
    }
}

impl FieldSchema for String {
    fn field_schema() -> Value {
        str::field_schema()
    }
}

impl FieldSchema for Cow<'_, str> {
    fn field_schema() -> Value {
        str::field_schema()
    }
}

impl FieldSchema for char {
    fn field_schema() -> Value {
        json!({ "type": "string", "minLength": 1, "maxLength": 1 })
    }
}

impl FieldSchema for bool {
    fn field_schema() -> Value {
        json!({ "type": "boolean" })
    }
}

macro_rules! small_int_schema {
    ($($ty:ty),+) => {$(
        impl FieldSchema for $ty {
            fn field_schema() -> Value {
                json!({
                    "type": "integer",
                    "format": "int32",
                    "minimum": <$ty>::MIN,
                    "maximum": <$ty>::MAX,
                })
            }
        }
    )+};
}

small_int_schema!(i8, i16, u8, u16);

impl FieldSchema for i32 {
    fn field_schema() -> Value {
        json!({ "type": "integer", "format": "int32" })
    }
}

impl FieldSchema for u32 {
    fn field_schema() -> Value {
        json!({ "type": "integer", "format": "int64", "minimum": 0, "maximum": u32::MAX })
    }
}

impl FieldSchema for i64 {
    fn field_schema() -> Value {
        json!({ "type": "integer", "format": "int64" })
    }
}

impl FieldSchema for isize {
    fn field_schema() -> Value {
        i64::field_schema()
    }
}

/// `uint64`, as schemars names it for `Json<T>` routes: every value up to `u64::MAX` parses
/// (and the stores keep it), which `int64` would deny.
impl FieldSchema for u64 {
    fn field_schema() -> Value {
        json!({ "type": "integer", "format": "uint64", "minimum": 0, "maximum": u64::MAX })
    }
}

impl FieldSchema for usize {
    fn field_schema() -> Value {
        u64::field_schema()
    }
}

impl FieldSchema for i128 {
    fn field_schema() -> Value {
        json!({ "type": "integer" })
    }
}

impl FieldSchema for u128 {
    fn field_schema() -> Value {
        json!({ "type": "integer", "minimum": 0 })
    }
}

impl FieldSchema for f32 {
    fn field_schema() -> Value {
        json!({ "type": "number", "format": "float" })
    }
}

impl FieldSchema for f64 {
    fn field_schema() -> Value {
        json!({ "type": "number", "format": "double" })
    }
}

impl FieldSchema for uuid::Uuid {
    fn field_schema() -> Value {
        json!({ "type": "string", "format": "uuid" })
    }
}

impl FieldSchema for Value {
    fn field_schema() -> Value {
        json!({})
    }
}

impl FieldSchema for Map<String, Value> {
    fn field_schema() -> Value {
        json!({ "type": "object" })
    }
}

/// `null` or `T`: `"null"` joins the `type` of `T` when it has one, otherwise the schema is
/// `anyOf: [T, {"type": "null"}]`.
impl<T: FieldSchema> FieldSchema for Option<T> {
    fn field_schema() -> Value {
        nullable(T::field_schema())
    }
}

/// The schema of `schema` or `null`.
pub fn nullable(schema: Value) -> Value {
    let Value::Object(mut map) = schema else {
        // `true` accepts null already; `false` accepts only null now.
        return match schema {
            Value::Bool(false) => json!({ "type": "null" }),
            other => other,
        };
    };
    if map.is_empty() {
        // `{}` accepts anything, null included.
        return Value::Object(map);
    }
    match map.get_mut("type") {
        Some(Value::String(ty)) if ty != "null" => {
            let ty = std::mem::take(ty);
            map.insert("type".into(), json!([ty, "null"]));
            Value::Object(map)
        }
        Some(Value::Array(types)) => {
            if !types.iter().any(|t| t == "null") {
                types.push(json!("null"));
            }
            Value::Object(map)
        }
        Some(Value::String(_)) => Value::Object(map),
        _ => json!({ "anyOf": [Value::Object(map), { "type": "null" }] }),
    }
}

fn array_of<T: FieldSchema + ?Sized>() -> Value {
    json!({ "type": "array", "items": T::field_schema() })
}

fn set_of<T: FieldSchema + ?Sized>() -> Value {
    json!({ "type": "array", "items": T::field_schema(), "uniqueItems": true })
}

fn map_of<T: FieldSchema + ?Sized>() -> Value {
    json!({ "type": "object", "additionalProperties": T::field_schema() })
}

impl<T: FieldSchema> FieldSchema for [T] {
    fn field_schema() -> Value {
        array_of::<T>()
    }
}

impl<T: FieldSchema, const N: usize> FieldSchema for [T; N] {
    fn field_schema() -> Value {
        json!({ "type": "array", "items": T::field_schema(), "minItems": N, "maxItems": N })
    }
}

impl<T: FieldSchema> FieldSchema for Vec<T> {
    fn field_schema() -> Value {
        array_of::<T>()
    }
}

impl<T: FieldSchema> FieldSchema for VecDeque<T> {
    fn field_schema() -> Value {
        array_of::<T>()
    }
}

impl<T: FieldSchema> FieldSchema for LinkedList<T> {
    fn field_schema() -> Value {
        array_of::<T>()
    }
}

impl<T: FieldSchema, S> FieldSchema for HashSet<T, S> {
    fn field_schema() -> Value {
        set_of::<T>()
    }
}

impl<T: FieldSchema> FieldSchema for BTreeSet<T> {
    fn field_schema() -> Value {
        set_of::<T>()
    }
}

impl<V: FieldSchema, S> FieldSchema for HashMap<String, V, S> {
    fn field_schema() -> Value {
        map_of::<V>()
    }
}

impl<V: FieldSchema> FieldSchema for BTreeMap<String, V> {
    fn field_schema() -> Value {
        map_of::<V>()
    }
}

macro_rules! forward_schema {
    ($($ty:ident),+) => {$(
        impl<T: FieldSchema + ?Sized> FieldSchema for $ty<T> {
            fn field_schema() -> Value {
                T::field_schema()
            }
        }
    )+};
}

forward_schema!(Box, Rc, Arc);

impl<T: FieldSchema + ?Sized> FieldSchema for &T {
    fn field_schema() -> Value {
        T::field_schema()
    }
}

/// What `#[derive(Resource)]`'s `json_schema()` calls, re-exported as
/// `microkit::__private::schema`. Not a public API.
pub(crate) mod generated {
    use std::marker::PhantomData;

    use serde_json::{json, Map, Value};

    use super::FieldSchema;
    use crate::resource::validate::Bound;

    /// Stands for the type `T` in the method-resolution trick below.
    pub struct SchemaOf<T: ?Sized>(PhantomData<T>);

    impl<T: ?Sized> SchemaOf<T> {
        /// The marker.
        pub const NEW: Self = SchemaOf(PhantomData);
    }

    /// Found first by `(&SchemaOf::<T>::NEW).field_schema()` when `T: FieldSchema`.
    pub trait ViaFieldSchema {
        /// `T::field_schema()`.
        fn field_schema(&self) -> Value;
    }

    impl<T: FieldSchema + ?Sized> ViaFieldSchema for SchemaOf<T> {
        fn field_schema(&self) -> Value {
            T::field_schema()
        }
    }

    /// Found by `(&SchemaOf::<T>::NEW).field_schema()` only after an auto-ref, that is when
    /// `T` has no `FieldSchema`.
    pub trait ViaFallback {
        /// `{}`: any value.
        fn field_schema(&self) -> Value;
    }

    impl<T: ?Sized> ViaFallback for &SchemaOf<T> {
        fn field_schema(&self) -> Value {
            json!({})
        }
    }

    /// One property's schema, with the keywords of the field's attributes added.
    #[derive(Debug)]
    pub struct Property(Map<String, Value>);

    impl Property {
        /// Starts from the schema of the field's type.
        pub fn new(schema: Value) -> Self {
            match schema {
                Value::Object(map) => Property(map),
                Value::Bool(false) => Property(Map::from_iter([("not".into(), json!({}))])),
                _ => Property(Map::new()),
            }
        }

        /// `description`, from the field's doc comment.
        pub fn description(mut self, text: &str) -> Self {
            self.0.insert("description".into(), text.into());
            self
        }

        /// `readOnly: true`: set by the server, ignored in requests.
        pub fn read_only(mut self) -> Self {
            self.0.insert("readOnly".into(), true.into());
            self
        }

        /// `writeOnly: true`: accepted in requests, never sent back.
        pub fn write_only(mut self) -> Self {
            self.0.insert("writeOnly".into(), true.into());
            self
        }

        fn is_array(&self) -> bool {
            match self.0.get("type") {
                Some(Value::String(ty)) => ty == "array",
                Some(Value::Array(types)) => types.iter().any(|t| t == "array"),
                _ => false,
            }
        }

        /// `minLength`/`maxLength`, or `minItems`/`maxItems` for an array.
        pub fn length(mut self, min: Option<usize>, max: Option<usize>) -> Self {
            let (min_key, max_key) = if self.is_array() {
                ("minItems", "maxItems")
            } else {
                ("minLength", "maxLength")
            };
            if let Some(min) = min {
                self.0.insert(min_key.into(), min.into());
            }
            if let Some(max) = max {
                self.0.insert(max_key.into(), max.into());
            }
            self
        }

        /// `minimum`/`maximum`, keeping the type's own bound where it is tighter.
        pub fn range(mut self, min: Option<Bound>, max: Option<Bound>) -> Self {
            let tighter = |key: &str, bound: Bound, map: &Map<String, Value>| {
                let new = bound.to_json().as_f64();
                match (map.get(key).and_then(Value::as_f64), new) {
                    (Some(old), Some(new)) if key == "minimum" => new > old,
                    (Some(old), Some(new)) => new < old,
                    _ => true,
                }
            };
            if let Some(min) = min.filter(|&b| tighter("minimum", b, &self.0)) {
                self.0.insert("minimum".into(), min.to_json());
            }
            if let Some(max) = max.filter(|&b| tighter("maximum", b, &self.0)) {
                self.0.insert("maximum".into(), max.to_json());
            }
            self
        }

        /// `format: email`.
        pub fn email(mut self) -> Self {
            self.0.insert("format".into(), "email".into());
            self
        }

        /// `pattern`.
        pub fn pattern(mut self, pattern: &str) -> Self {
            self.0.insert("pattern".into(), pattern.into());
            self
        }

        /// The finished schema.
        pub fn finish(self) -> Value {
            Value::Object(self.0)
        }
    }

    /// The resource's schema: `type: object` with its properties and required fields.
    pub fn object<'a>(
        description: Option<&str>,
        properties: impl IntoIterator<Item = (&'a str, Value)>,
        required: &[&str],
        deny_unknown_fields: bool,
    ) -> Value {
        let mut schema = Map::new();
        schema.insert("type".into(), "object".into());
        if let Some(description) = description {
            schema.insert("description".into(), description.into());
        }
        let properties: Map<String, Value> = properties
            .into_iter()
            .map(|(name, schema)| (name.to_owned(), schema))
            .collect();
        schema.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            schema.insert("required".into(), json!(required));
        }
        if deny_unknown_fields {
            schema.insert("additionalProperties".into(), false.into());
        }
        Value::Object(schema)
    }
}

#[cfg(test)]
mod tests {
    use super::generated::*;
    use super::*;
    use crate::resource::validate::Bound;

    struct Unknown;

    #[test]
    fn integers_have_formats_and_bounds() {
        assert_eq!(u64::field_schema()["minimum"], 0);
        assert_eq!(u64::field_schema()["maximum"], u64::MAX);
        assert_eq!(i32::field_schema()["format"], "int32");
        assert_eq!(u8::field_schema()["maximum"], 255);
    }

    #[test]
    fn options_are_nullable() {
        assert_eq!(
            Option::<String>::field_schema(),
            json!({ "type": ["string", "null"] })
        );
        assert_eq!(Option::<Value>::field_schema(), json!({}));
        assert_eq!(
            nullable(json!({ "enum": ["a"] })),
            json!({ "anyOf": [{ "enum": ["a"] }, { "type": "null" }] })
        );
    }

    #[test]
    fn collections_nest() {
        assert_eq!(
            HashMap::<String, Vec<bool>>::field_schema(),
            json!({
                "type": "object",
                "additionalProperties": { "type": "array", "items": { "type": "boolean" } },
            })
        );
    }

    #[test]
    #[allow(clippy::needless_borrow)] // The borrow picks the impl, as in generated code.
    fn unknown_types_fall_back_to_any() {
        #[allow(unused_imports)]
        use super::generated::{ViaFallback as _, ViaFieldSchema as _};
        assert_eq!((&SchemaOf::<Unknown>::NEW).field_schema(), json!({}));
        assert_eq!(
            (&SchemaOf::<bool>::NEW).field_schema(),
            json!({ "type": "boolean" })
        );
    }

    #[test]
    fn properties_take_rule_keywords() {
        let p = Property::new(Vec::<String>::field_schema())
            .length(Some(1), None)
            .finish();
        assert_eq!(p["minItems"], 1);
        let p = Property::new(u32::field_schema())
            .range(Some(Bound::Int(-5)), Some(Bound::Int(10)))
            .finish();
        assert_eq!(p["minimum"], 0);
        assert_eq!(p["maximum"], 10);
    }
}
