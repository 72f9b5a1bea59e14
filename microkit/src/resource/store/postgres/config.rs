//! [`PostgresConfig`]: the pool's size and every time limit between a request and the
//! database, each with a default and the reason for it.

use std::time::Duration;

/// How a [`PostgresStore`](super::PostgresStore) connects: pool size and time limits.
///
/// Every limit exists so that a database that is down, unreachable or hung costs a request a
/// few seconds and a 503, never a hang: with all defaults a store operation gives up after at
/// most [`operation_timeout`](Self::operation_timeout) (6 s).
///
/// | limit | default | bounds |
/// |---|---|---|
/// | [`wait_timeout`](Self::wait_timeout) | 5 s | waiting for a free connection when all are busy |
/// | [`create_timeout`](Self::create_timeout) | 5 s | opening a connection (TCP connect and authentication) |
/// | [`recycle_timeout`](Self::recycle_timeout) | 1 s | checking an idle connection before reuse |
/// | [`statement_timeout`](Self::statement_timeout) | 5 s | one statement, enforced by the server |
///
/// ```
/// use std::time::Duration;
/// use microkit::resource::store::postgres::PostgresConfig;
///
/// let config = PostgresConfig::default()
///     .pool_size(32)
///     .statement_timeout(Duration::from_secs(2));
/// assert_eq!(config.operation_timeout(), Duration::from_secs(3));
/// ```
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    pub(super) pool_size: usize,
    pub(super) wait_timeout: Duration,
    pub(super) create_timeout: Duration,
    pub(super) recycle_timeout: Duration,
    pub(super) statement_timeout: Duration,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            // Enough to keep a few cores busy; PostgreSQL's own default is 100 connections,
            // shared by every process of every service.
            pool_size: 16,
            // A burst waits while the pool opens connections (each SCRAM exchange costs a few
            // milliseconds of CPU, far more in a debug build); a pool still exhausted after 5 s
            // is overloaded, and shedding the request beats queueing it behind a backlog.
            wait_timeout: Duration::from_secs(5),
            // A connect and a SCRAM password exchange take milliseconds on a LAN, but a burst
            // of them shares the CPU; 5 s leaves room for that while a blackholed host is
            // still found out within the operation timeout. (A stopped server refuses the
            // connect at once: no wait at all.)
            create_timeout: Duration::from_secs(5),
            // The check before reuse is one empty query, sub-millisecond when healthy: a
            // connection that takes a second to answer it is stuck, and is replaced.
            recycle_timeout: Duration::from_secs(1),
            // The store's statements touch one row or one page; 5 s is far beyond any of them
            // and still "a few seconds" for a client, who then gets a 503.
            statement_timeout: Duration::from_secs(5),
        }
    }
}

impl PostgresConfig {
    /// The most connections the pool opens (at least 1).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long an operation waits for a free connection when all are in use.
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }

    /// How long opening a new connection may take, connect and authentication included.
    pub fn create_timeout(mut self, timeout: Duration) -> Self {
        self.create_timeout = timeout;
        self
    }

    /// How long checking an idle connection before reusing it may take.
    pub fn recycle_timeout(mut self, timeout: Duration) -> Self {
        self.recycle_timeout = timeout;
        self
    }

    /// How long one statement may run: sent to the server as its `statement_timeout`, so
    /// that it cancels the statement and frees its locks.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// The limit on a whole store operation, enforced by the client: the statement timeout
    /// plus one second. It catches what the server cannot time itself: a server that is
    /// stopped or hung, or a connection that went silent. The connection it abandons fails
    /// its next recycle check and is replaced.
    pub fn operation_timeout(&self) -> Duration {
        self.statement_timeout + Duration::from_secs(1)
    }
}
