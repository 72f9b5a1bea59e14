use std::time::Duration;

use crate::body::BodyPace;
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
    pub(crate) body_pace: Option<BodyPace>,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_headers: usize,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) ignore_client_abort: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
            header_read_timeout: Duration::from_secs(10),
            body_pace: Some(BodyPace::new(
                Duration::from_secs(10),
                240,
                Duration::from_secs(5),
            )),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            keep_alive_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            shutdown_timeout: Duration::from_secs(30),
            ignore_client_abort: false,
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
    /// client is disconnected, so a trickle of bytes cannot hold a connection forever. On an
    /// HTTP/1.1 connection the wait for the next request is a wait for its head, so this also
    /// caps the [keep-alive timeout](Self::keep_alive_timeout) there.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// The longest a request body may go without a byte arriving (default 10 s, as long as
    /// the headers get); a stalled body is answered with 408 and its connection closed.
    ///
    /// Why it exists next to [`min_body_rate`](Self::min_body_rate): a body that arrived
    /// quickly has earned minutes under the rate rule, and a stall that long is a client
    /// gone, not a slow one. Why 10 s: a phone's radio recovers within seconds, and
    /// [`ClientConfig`](crate::client::ClientConfig)'s 10 s attempt timeout means a gateway
    /// would give up on a stalled upload by then anyway.
    pub fn body_read_timeout(mut self, gap: Duration) -> Self {
        let pace = self
            .body_pace
            .unwrap_or_else(|| BodyPace::new(gap, 0, Duration::ZERO));
        self.body_pace = Some(pace.with_gap(gap));
        self
    }

    /// The least average rate, in bytes per second, at which a request body must arrive once
    /// `grace` has passed (default 240 B/s after 5 s, Kestrel's `MinRequestBodyDataRate`);
    /// a slower body is answered with 408 and its connection closed. `0` turns the rule off.
    ///
    /// Only time spent waiting for the client counts, never time the handler spends between
    /// reads. The grace period lets a connection's first bytes ramp up (TCP slow start, a
    /// phone waking its radio); after it, a trickle, or silence after the headers
    /// (`Content-Length: 10` and nothing), holds a connection for seconds rather than
    /// forever. 240 B/s is far below any real uplink, so it only ever cuts abuse.
    pub fn min_body_rate(mut self, bytes_per_second: u32, grace: Duration) -> Self {
        let pace = self
            .body_pace
            .unwrap_or_else(|| BodyPace::new(Duration::MAX, 0, Duration::ZERO));
        self.body_pace = Some(pace.with_rate(bytes_per_second, grace));
        self
    }

    /// Turns both body timeouts off, for a server whose clients are all trusted and whose
    /// handlers read bodies at their own pace (a test double, a replay tool).
    pub fn without_body_timeouts(mut self) -> Self {
        self.body_pace = None;
        self
    }

    /// The most bytes of request line and headers (default 64 KiB, at least 8 KiB); more is
    /// answered with 431.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes.max(MIN_HEADER_BYTES);
        self
    }

    /// The most header fields in a request (default 100); more is answered with 431, with a
    /// problem body up to 100 fields or twice this count, whichever is larger (beyond that
    /// hyper refuses the request before it is parsed, with an empty 431).
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// How long a connection may sit idle, with no request in flight, before it is closed
    /// (default 60 s; on HTTP/1.1 at most the [header read
    /// timeout](Self::header_read_timeout), 10 s by default). Idle connections are looked for
    /// eight times per the shorter of the two timeouts, so one closes up to a quarter late.
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

    /// Whether a request runs to its end after its HTTP/1.1 client closes the connection
    /// (default `false`), as nginx's `proxy_ignore_client_abort`.
    ///
    /// By default the server watches the connection while a request runs, and a client that
    /// closes it (or only its sending side) stops the request: its handler's future is
    /// dropped, and with it a gateway's call upstream. With `true` the request finishes and
    /// its answer is written, which a client that half-closes after sending its request
    /// (`shutdown(SHUT_WR)`) then reads; a client that left is found out only then. Work that
    /// must not stop halfway finishes, and each request spares the read that watches (a system
    /// call, and behind a gateway a reallocated read buffer: about 3% of a proxied request's
    /// instructions). HTTP/2 is unaffected: a stream is reset, not half-closed.
    pub fn ignore_client_abort(mut self, ignore: bool) -> Self {
        self.ignore_client_abort = ignore;
        self
    }

    /// The request body limit in bytes.
    pub fn get_body_limit(&self) -> usize {
        self.body_limit
    }
}
