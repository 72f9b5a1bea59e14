//! [`KeyRecord`]: what a store keeps under an idempotency key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// The response kept under an idempotency key, with the fingerprint of the request that
/// produced it and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The digest of the first request's method, path and body (hex SHA-256).
    pub fingerprint: String,
    /// The status of the kept response.
    pub status: u16,
    /// The headers of the kept response that matter to a replay (`Content-Type`, `Location`,
    /// `ETag`...), as `(name, value)` text pairs.
    pub headers: Vec<(String, String)>,
    /// The body of the kept response.
    pub body: Bytes,
    /// When the key expires, in milliseconds since the Unix epoch: from then on the key is
    /// free again.
    pub expires_at: i64,
}

impl KeyRecord {
    /// Whether the key has expired at `now` (milliseconds since the Unix epoch).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at <= now
    }
}

/// Milliseconds since the Unix epoch: the clock key records expire by.
pub fn epoch_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .try_into()
        .unwrap_or(i64::MAX)
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    epoch_millis(SystemTime::now())
}
