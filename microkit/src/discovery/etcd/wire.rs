//! The JSON of etcd's v3 gateway (grpc-gateway): the requests we send and the answers we read.
//!
//! Keys and values travel as base64; int64 fields arrive as JSON strings (and are sent as
//! strings, the canonical protobuf JSON form). Fields we do not read are not declared.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `/v3/lease/grant`.
#[derive(Debug, Serialize)]
pub(super) struct LeaseGrant {
    #[serde(rename = "TTL", serialize_with = "int64")]
    pub(super) ttl: i64,
}

/// `/v3/lease/keepalive` and `/v3/lease/revoke`.
#[derive(Debug, Serialize)]
pub(super) struct LeaseId {
    #[serde(rename = "ID", serialize_with = "int64")]
    pub(super) id: i64,
}

/// The answer to a grant or a keepalive. A keepalive of an unknown lease answers TTL 0, which
/// the gateway leaves out.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Lease {
    #[serde(rename = "ID", default, deserialize_with = "from_int64")]
    pub(super) id: i64,
    #[serde(rename = "TTL", default, deserialize_with = "from_int64")]
    pub(super) ttl: i64,
}

/// `/v3/kv/put`; `lease` 0 means none.
#[derive(Debug, Serialize)]
pub(super) struct Put<'a> {
    #[serde(serialize_with = "base64")]
    pub(super) key: &'a [u8],
    #[serde(serialize_with = "base64")]
    pub(super) value: &'a [u8],
    #[serde(serialize_with = "int64")]
    pub(super) lease: i64,
}

/// `/v3/kv/range` and `/v3/kv/deleterange`: `key` alone, or `[key, range_end)`.
#[derive(Debug, Serialize)]
pub(super) struct KeyRange<'a> {
    #[serde(serialize_with = "base64")]
    pub(super) key: &'a [u8],
    #[serde(serialize_with = "base64", skip_serializing_if = "<[u8]>::is_empty")]
    pub(super) range_end: &'a [u8],
}

/// `/v3/watch`: one create request per stream.
#[derive(Debug, Serialize)]
pub(super) struct WatchRequest<'a> {
    pub(super) create_request: WatchCreate<'a>,
}

/// What to watch, from which revision.
#[derive(Debug, Serialize)]
pub(super) struct WatchCreate<'a> {
    #[serde(serialize_with = "base64")]
    pub(super) key: &'a [u8],
    #[serde(serialize_with = "base64")]
    pub(super) range_end: &'a [u8],
    #[serde(serialize_with = "int64")]
    pub(super) start_revision: i64,
}

/// The header every answer carries.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Header {
    #[serde(default, deserialize_with = "from_int64")]
    pub(super) revision: i64,
}

/// The answer to a range.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Range {
    #[serde(default)]
    pub(super) header: Header,
    #[serde(default)]
    pub(super) kvs: Vec<KeyValue>,
}

/// One stored key. A deleted key's event carries no value.
#[derive(Debug, Default, Deserialize)]
pub(super) struct KeyValue {
    #[serde(default, deserialize_with = "from_base64")]
    pub(super) key: Vec<u8>,
    #[serde(default, deserialize_with = "from_base64")]
    pub(super) value: Vec<u8>,
}

/// One message of the watch stream.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WatchResponse {
    #[serde(default)]
    pub(super) created: bool,
    #[serde(default)]
    pub(super) canceled: bool,
    #[serde(default, deserialize_with = "from_int64")]
    pub(super) compact_revision: i64,
    #[serde(default)]
    pub(super) cancel_reason: String,
    #[serde(default)]
    pub(super) events: Vec<Event>,
}

/// A change of one key.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Event {
    /// `PUT` is protobuf's default, so the gateway leaves it out; only `DELETE` shows.
    #[serde(rename = "type", default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) kv: KeyValue,
}

impl Event {
    pub(super) fn is_delete(&self) -> bool {
        self.kind == "DELETE"
    }
}

/// How streaming endpoints wrap each message: `{"result": ...}` or `{"error": ...}`.
#[derive(Debug, Deserialize)]
pub(super) struct StreamItem<T> {
    pub(super) result: Option<T>,
    pub(super) error: Option<serde_json::Value>,
}

/// The body of a gateway error (a non-200 answer).
#[derive(Debug, Default, Deserialize)]
pub(super) struct GatewayError {
    #[serde(default)]
    pub(super) code: i32,
    #[serde(default)]
    pub(super) message: String,
    #[serde(default)]
    pub(super) error: String,
}

/// The end of the range of every key that starts with `prefix`: the prefix with its last byte
/// that can be incremented incremented, as etcd's clients compute it.
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    // All bytes 0xff (or empty): `\0` means "to the end of the keyspace" for etcd.
    vec![0]
}

fn int64<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn base64<S: Serializer>(bytes: &&[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&STANDARD.encode(bytes))
}

fn from_int64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    // Protobuf's JSON sends int64 as strings, but accepts (and some proxies produce) numbers.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int64 {
        Text(String),
        Number(i64),
    }
    match Int64::deserialize(deserializer)? {
        Int64::Number(n) => Ok(n),
        Int64::Text(text) => text.parse().map_err(serde::de::Error::custom),
    }
}

fn from_base64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(deserializer)?;
    STANDARD.decode(text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }

    #[test]
    fn encodes_int64_as_strings_and_bytes_as_base64() {
        let put = Put {
            key: b"foo",
            value: b"bar",
            lease: 7,
        };
        assert_eq!(
            serde_json::to_string(&put).unwrap(),
            r#"{"key":"Zm9v","value":"YmFy","lease":"7"}"#
        );
    }

    #[test]
    fn decodes_watch_messages() {
        let line = br#"{"result":{"header":{"revision":"4"},"events":[{"kv":{"key":"Zm9v","mod_revision":"3","value":"YmF6"}},{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"4"}}]}}"#;
        let item: StreamItem<WatchResponse> = serde_json::from_slice(line).unwrap();
        let response = item.result.unwrap();
        assert!(!response.events[0].is_delete());
        assert_eq!(response.events[0].kv.value, b"baz");
        assert!(response.events[1].is_delete());

        let compacted = br#"{"result":{"header":{},"canceled":true,"compact_revision":"3"}}"#;
        let item: StreamItem<WatchResponse> = serde_json::from_slice(compacted).unwrap();
        let response = item.result.unwrap();
        assert!(response.canceled);
        assert_eq!(response.compact_revision, 3);
    }

    #[test]
    fn a_lost_lease_has_no_ttl() {
        let item: StreamItem<Lease> =
            serde_json::from_slice(br#"{"result":{"header":{},"ID":"12345"}}"#).unwrap();
        let lease = item.result.unwrap();
        assert_eq!((lease.id, lease.ttl), (12345, 0));
    }
}
