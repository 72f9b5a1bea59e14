//! A create request parsed straight into the resource.
//!
//! Why not through a `serde_json::Value`: building the value and then the resource from it
//! allocates every key and string twice; on the create path that was a quarter of the time.
//! This adapter sits between serde_json and the resource's own `Deserialize`: it drops the
//! server-set fields a client sent, refuses fields the resource does not have, and supplies
//! the values the server sets (the placeholder id, `false` for the soft-delete flag) as the
//! object ends.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::Value;

use super::spec::ResourceSpec;

/// Wraps a deserializer of a JSON object; hand it to the resource's `Deserialize`.
pub(crate) struct Incoming<'s, D> {
    inner: D,
    fields: Fields<'s>,
    supplied: Supplied,
}

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
    /// Reads the fields in `known` from `inner`; `placeholder_id` stands in for an id the
    /// store allocates.
    pub(crate) fn new(
        inner: D,
        spec: &'static ResourceSpec,
        known: &'s [String],
        placeholder_id: Option<Value>,
    ) -> Self {
        let mut supplied = Vec::with_capacity(2);
        if let Some(id) = &placeholder_id {
            supplied.push((spec.id_field, id.clone()));
        }
        if let Some(flag) = spec.soft_delete {
            supplied.push((flag, Value::Bool(false)));
        }
        Self {
            inner,
            fields: Fields {
                spec,
                known,
                client_sets_id: placeholder_id.is_none(),
            },
            supplied: supplied.into_iter(),
        }
    }
}

impl Fields<'_> {
    fn is_dropped(&self, key: &str) -> bool {
        self.spec.is_server_set(key) && !(self.client_sets_id && key == self.spec.id_field)
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
            if !self.fields.known.iter().any(|known| *known == *key) {
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
