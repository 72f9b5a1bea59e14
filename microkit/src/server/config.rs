use std::time::Duration;

use crate::extract::DEFAULT_BODY_LIMIT;

/// The limits and timeouts of a server. Every default is safe to face the internet with;
/// each can be changed.
///
/// ```
/// use std::time::Duration;
/// use microkit::ServerConfig;
///
/// let config = ServerConfig::default()
///     .body_limit(4 * 1024 * 1024)
///     .header_read_timeout(Duration::from_secs(5))
///     .max_connections(2_000);
/// assert_eq!(config.get_body_limit(), 4 * 1024 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub(crate) body_limit: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_headers: usize,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            keep_alive_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// hyper refuses read buffers smaller than this.
const MIN_HEADER_BYTES: usize = 8192;

impl ServerConfig {
    /// The largest request body the body extractors read (default 1 MiB); larger is a 413
    /// problem. A route can set its own with
    /// [`MethodRouter::body_limit`](crate::router::MethodRouter::body_limit).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long a client may take to send a request's headers (default 10 s); a slower
    /// client is disconnected, so a trickle of bytes cannot hold a connection forever.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// The most bytes of request line and headers (default 64 KiB, at least 8 KiB); more is
    /// answered with 431.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes.max(MIN_HEADER_BYTES);
        self
    }

    /// The most header fields in a request (default 100); more is answered with 431.
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// How long a connection may sit idle, with no request in flight, before it is closed
    /// (default 60 s).
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.keep_alive_timeout = timeout;
        self
    }

    /// The most connections served at once (default 10 000); further clients wait in the
    /// listen backlog until one closes.
    pub fn max_connections(mut self, count: usize) -> Self {
        self.max_connections = count.max(1);
        self
    }

    /// How long a graceful shutdown waits for in-flight requests before closing their
    /// connections (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The request body limit in bytes.
    pub fn get_body_limit(&self) -> usize {
        self.body_limit
    }
}
