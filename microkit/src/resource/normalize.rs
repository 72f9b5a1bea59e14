//! One request normalizer for `POST`, `PUT` and `PATCH`: what a client may send in a write,
//! and what the server puts in whatever the client sent.
//!
//! The rules, in one place: a member the resource does not have is refused (422); a
//! server-set member (the id, the soft-delete flag, `read_only` fields) is dropped, except a
//! text id on create, which the client chooses; the server then supplies the id (the store's
//! placeholder on create, the path's id on replace), `false` for the soft-delete flag and, on
//! replace, the stored item's `read_only` values. The result is parsed into the resource and
//! validated; a merge patch is merged into the stored item first and normalized the same way.
//!
//! Why not through a `serde_json::Value` for a create: building the value and then the
//! resource from it allocates every key and string twice; on the create path that was a
//! quarter of the time. The adapter below sits between serde_json and the resource's own
//! `Deserialize` instead, and supplies the server's values as the object ends.
//!
//! A refused body is examined again, off the happy path, to list every unknown, missing and
//! mistyped field in one problem.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

use super::ids;
use super::spec::{Resource, ResourceSpec};
use crate::extract::{field_errors, parse_json, wrong_shape, Refused};
use crate::{FieldError, Problem};

/// The request normalizer of one resource, made once when its routes are built.
pub(crate) struct Normalizer {
    spec: &'static ResourceSpec,
    /// The members a request may send: the schema's properties.
    known: Vec<String>,
    /// The members a request must send: the schema's `required`.
    required: Vec<String>,
}

/// A request body: bytes to parse straight into the resource, or a document already parsed
/// (a merged patch).
pub(crate) enum Source<'a> {
    Bytes(&'a [u8]),
    Document(&'a Value),
}

/// What the server sets in a write, whatever the client sent.
pub(crate) struct ServerSet<'a> {
    /// The id put into the item; `None` when the client chooses it (a text id on create).
    pub(crate) id: Option<Value>,
    /// The stored item's data, whose `read_only` values a replace keeps.
    pub(crate) current: Option<&'a Map<String, Value>>,
}

impl ServerSet<'static> {
    /// A create: the store allocates the id (unless the client chooses it).
    pub(crate) fn create(spec: &ResourceSpec) -> Self {
        Self {
            id: ids::placeholder(spec.id_kind),
            current: None,
        }
    }
}

impl Normalizer {
    /// The normalizer of `R`, whose JSON Schema lists the members a request may and must send.
    pub(crate) fn new<R: Resource>(schema: &Value) -> Self {
        let names = |value: &Value| -> Vec<String> {
            match value {
                Value::Object(properties) => properties.keys().cloned().collect(),
                Value::Array(names) => names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            }
        };
        Self {
            spec: &R::SPEC,
            known: names(&schema["properties"]),
            required: names(&schema["required"]),
        }
    }

    /// The item a write asks for: parsed, normalized and validated, or the problem that
    /// refuses it (400 not JSON, 422 wrong shape or failing rules, every failing field named).
    pub(crate) fn parse<R: Resource>(
        &self,
        source: Source<'_>,
        server: &ServerSet<'_>,
    ) -> Result<R, Problem> {
        let fields = self.fields(server);
        let parsed = match source {
            Source::Bytes(bytes) => parse_json(bytes, |deserializer| {
                R::deserialize(Incoming::new(deserializer, fields, self.supplied(server)))
            }),
            // Whole numbers written as floats are integers already (`parse_document`).
            Source::Document(document) => {
                R::deserialize(Incoming::new(document, fields, self.supplied(server))).map_err(
                    |first| Refused::WrongShape {
                        document: document.clone(),
                        first,
                    },
                )
            }
        };
        let item: R = match parsed {
            Ok(item) => item,
            Err(Refused::Malformed(rejection)) => return Err(rejection.into()),
            Err(Refused::WrongShape { document, first }) => {
                return Err(self.wrong_shape::<R>(document, &first, server));
            }
        };
        let errors = item.validate();
        if errors.is_empty() {
            Ok(item)
        } else {
            Err(Problem::unprocessable("the item is not valid").with_field_errors(errors))
        }
    }

    fn fields(&self, server: &ServerSet<'_>) -> Fields<'_> {
        Fields {
            spec: self.spec,
            known: &self.known,
            client_sets_id: server.id.is_none(),
        }
    }

    /// The values the server supplies as the object ends.
    fn supplied(&self, server: &ServerSet<'_>) -> Vec<(&'static str, Value)> {
        let spec = self.spec;
        let mut supplied = Vec::with_capacity(2);
        if let Some(id) = &server.id {
            supplied.push((spec.id_field, id.clone()));
        }
        if let Some(flag) = spec.soft_delete {
            supplied.push((flag, Value::Bool(false)));
        }
        if let Some(current) = server.current {
            for field in spec.read_only {
                if let Some(value) = current.get(*field) {
                    supplied.push((*field, value.clone()));
                }
            }
        }
        supplied
    }

    /// Every unknown, missing and mistyped member of a refused document, in one problem.
    fn wrong_shape<R: Resource>(
        &self,
        document: Value,
        first: &serde_json::Error,
        server: &ServerSet<'_>,
    ) -> Problem {
        let fields = self.fields(server);
        let Value::Object(members) = &document else {
            return wrong_shape(first, Vec::new()).into();
        };
        let unknown: Vec<FieldError> = members
            .keys()
            .filter(|key| !fields.is_dropped(key) && !fields.is_known(key))
            .map(|key| FieldError::new(key.clone(), "is not a field of this resource"))
            .collect();
        let mut errors = unknown;
        errors.extend(
            self.required
                .iter()
                .filter(|field| !members.contains_key(*field) && !fields.is_dropped(field))
                .map(|field| FieldError::new(field.clone(), "is required")),
        );
        let errors = field_errors(document, errors, |document| {
            serde_path_to_error::deserialize::<_, R>(Incoming::new(
                &document,
                fields,
                self.supplied(server),
            ))
            .map(drop)
        });
        wrong_shape(first, errors).into()
    }
}

/// Wraps a deserializer of a JSON object; hand it to the resource's `Deserialize`.
struct Incoming<'s, D> {
    inner: D,
    fields: Fields<'s>,
    supplied: Supplied,
}

/// Which members of a request the resource reads.
#[derive(Clone, Copy)]
struct Fields<'s> {
    spec: &'static ResourceSpec,
    known: &'s [String],
    /// Whether the client sets the id itself (text ids).
    client_sets_id: bool,
}

/// The values supplied once the client's fields ran out.
type Supplied = std::vec::IntoIter<(&'static str, Value)>;

impl<'s, D> Incoming<'s, D> {
    fn new(inner: D, fields: Fields<'s>, supplied: Vec<(&'static str, Value)>) -> Self {
        Self {
            inner,
            fields,
            supplied: supplied.into_iter(),
        }
    }
}

impl Fields<'_> {
    /// A server-set member, which the client's value does not reach.
    fn is_dropped(&self, key: &str) -> bool {
        self.spec.is_server_set(key) && !(self.client_sets_id && key == self.spec.id_field)
    }

    fn is_known(&self, key: &str) -> bool {
        self.known.iter().any(|known| known == key)
    }
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Incoming<'_, D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_map(Object {
            visitor,
            fields: self.fields,
            supplied: self.supplied,
        })
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

struct Object<'s, V> {
    visitor: V,
    fields: Fields<'s>,
    supplied: Supplied,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Object<'_, V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(Filtered {
            map,
            fields: self.fields,
            supplied: self.supplied,
            pending: None,
        })
    }
}

/// A key, borrowed from the input unless it had escapes: most keys cost no allocation.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a field name")
            }

            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }

            fn visit_string<E: de::Error>(self, key: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key)))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

struct Filtered<'s, A> {
    map: A,
    fields: Fields<'s>,
    supplied: Supplied,
    /// The value of the supplied key just handed out.
    pending: Option<Value>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Filtered<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(Key(key)) = self.map.next_key::<Key<'de>>()? else {
                let Some((key, value)) = self.supplied.next() else {
                    return Ok(None);
                };
                self.pending = Some(value);
                return seed.deserialize(key.into_deserializer()).map(Some);
            };
            if self.fields.is_dropped(&key) {
                self.map.next_value::<IgnoredAny>()?;
                continue;
            }
            if !self.fields.is_known(&key) {
                return Err(de::Error::custom(format_args!("unknown field `{key}`")));
            }
            self.pending = None;
            return match key {
                Cow::Borrowed(key) => seed
                    .deserialize(BorrowedStrDeserializer::new(key))
                    .map(Some),
                Cow::Owned(key) => seed.deserialize(key.into_deserializer()).map(Some),
            };
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        match self.pending.take() {
            Some(value) => seed.deserialize(value).map_err(de::Error::custom),
            None => self.map.next_value_seed(seed),
        }
    }
}
