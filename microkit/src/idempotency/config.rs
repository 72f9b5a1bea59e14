//! [`IdempotencyConfig`]: how long keys live and how long they may be.

use std::time::Duration;

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
}
