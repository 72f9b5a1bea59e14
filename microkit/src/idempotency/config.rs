//! [`IdempotencyConfig`]: how long keys live and how long they may be.

use std::time::Duration;

use http::HeaderMap;

use crate::Problem;

/// How keys are checked and kept.
///
/// ```
/// use std::time::Duration;
/// use microkit::idempotency::IdempotencyConfig;
///
/// let config = IdempotencyConfig::default()
///     .ttl(Duration::from_secs(3600))
///     .max_key_len(64);
/// assert_eq!(config.key_ttl(), Duration::from_secs(3600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyConfig {
    ttl: Duration,
    max_key_len: usize,
}

impl Default for IdempotencyConfig {
    /// Keys live 24 hours (Stripe's choice, and long enough for any retry schedule) and hold
    /// at most 255 bytes (enough for a UUID, a ULID or a derived digest, with room to spare).
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(24 * 60 * 60),
            max_key_len: 255,
        }
    }
}

impl IdempotencyConfig {
    /// How long a kept answer is replayed; after that the key is free again.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The longest key accepted, in bytes; a longer one is a 400.
    pub fn max_key_len(mut self, max: usize) -> Self {
        self.max_key_len = max.max(1);
        self
    }

    /// How long a kept answer is replayed.
    pub fn key_ttl(&self) -> Duration {
        self.ttl
    }

    /// The longest key accepted, in bytes.
    pub fn key_len_limit(&self) -> usize {
        self.max_key_len
    }

    /// The `Idempotency-Key` of a request with `headers`, read and checked as every keyed
    /// route reads it: `None` without one; a 400 for several, or one that is empty, not
    /// visible ASCII or longer than the limit; `"abc"` (a structured-field string) is `abc`.
    /// For a handler that keeps its own record of what a key did.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use microkit::idempotency::{IdempotencyConfig, IDEMPOTENCY_KEY};
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert(IDEMPOTENCY_KEY, "\"8e03978e\"".parse().unwrap());
    /// let config = IdempotencyConfig::default();
    /// assert_eq!(config.key_of(&headers).unwrap().as_deref(), Some("8e03978e"));
    /// headers.insert(IDEMPOTENCY_KEY, "".parse().unwrap());
    /// assert_eq!(config.key_of(&headers).unwrap_err().status(), 400);
    /// ```
    pub fn key_of(&self, headers: &HeaderMap) -> Result<Option<String>, Problem> {
        super::request::key(headers, self)
    }
}
