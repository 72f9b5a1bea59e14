//! JSON written into a body's buffer.
//!
//! Why through a buffer kept by each thread: a response serialized into a buffer of its own
//! grows that buffer as it goes and leaves it part-filled, and a part-filled buffer turned into
//! [`Bytes`] gets a second allocation, a shared header that remembers the capacity. Written
//! into a buffer that stays with the thread and then copied out at its exact length, a body
//! costs one allocation and a copy of its bytes, which for the usual response (tens to
//! hundreds of bytes) is the cheaper of the two.

use std::cell::RefCell;

use bytes::Bytes;
use serde::Serialize;

/// The most capacity a thread's buffer keeps between bodies: a rare large body does not hold
/// its memory for the thread's lifetime.
const KEPT_CAPACITY: usize = 64 * 1024;

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `value` as JSON, in a buffer of its exact length.
pub(crate) fn to_bytes<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Bytes> {
    BUFFER.with(|buffer| {
        // Taken already when a value serializes another from inside its own serialization.
        let Ok(mut buffer) = buffer.try_borrow_mut() else {
            return serde_json::to_vec(value).map(Bytes::from);
        };
        buffer.clear();
        let written =
            serde_json::to_writer(&mut *buffer, value).map(|()| Bytes::copy_from_slice(&buffer));
        if buffer.capacity() > KEPT_CAPACITY {
            *buffer = Vec::new();
        }
        written
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_their_json_whatever_came_before() {
        assert_eq!(
            to_bytes(&serde_json::json!({"a": [1, 2]})).unwrap(),
            "{\"a\":[1,2]}"
        );
        let large = "x".repeat(KEPT_CAPACITY * 2);
        assert_eq!(to_bytes(&large).unwrap().len(), large.len() + 2);
        assert!(BUFFER.with(|buffer| buffer.borrow().capacity()) <= KEPT_CAPACITY);
        assert_eq!(to_bytes("short").unwrap(), "\"short\"");
    }

    #[test]
    fn a_value_that_serializes_json_inside_its_own_serialization_gets_both() {
        struct Nested;
        impl Serialize for Nested {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let inner = to_bytes(&[1, 2]).map_err(serde::ser::Error::custom)?;
                serializer.serialize_str(std::str::from_utf8(&inner).unwrap())
            }
        }
        assert_eq!(to_bytes(&Nested).unwrap(), "\"[1,2]\"");
    }

    #[test]
    fn a_failed_serialization_is_an_error_and_leaves_the_buffer_usable() {
        let mut map = std::collections::BTreeMap::new();
        map.insert((1, 2), "tuple keys are not JSON object keys");
        assert!(to_bytes(&map).is_err());
        assert_eq!(to_bytes(&7).unwrap(), "7");
    }
}
