//! Serving a router: HTTP/1.1 and HTTP/2 (h2c), limits, graceful shutdown.
//!
//! ```no_run
//! use microkit::router::{get, Router};
//!
//! # async fn run() -> std::io::Result<()> {
//! let app: Router = Router::new().route("/", get(|| async { "Hello, World!" }));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! microkit::serve(listener, app)
//!     .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
//!     .await
//! # }
//! ```
//!
//! Each accepted connection gets `TCP_NODELAY` and a task of its own; its first bytes tell
//! HTTP/1.1 from an HTTP/2 preface. On shutdown the listener is closed first (new
//! connections are refused), every connection is asked to finish (HTTP/1.1 stops keep-alive,
//! HTTP/2 sends GOAWAY), and connections still busy at the deadline are closed.

mod config;
mod connection;
mod peer;
mod protocol;
#[cfg(feature = "tls")]
pub(crate) mod tls;
mod tracker;
mod within;

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use self::config::ServerConfig;
use self::connection::{Connection, HeaderLimits};
pub use self::peer::PeerIdentity;
use self::protocol::Protocols;
#[cfg(feature = "tls")]
pub use self::tls::TlsConfig;
use self::tracker::{IdleTimeouts, Tracker};
use crate::metrics::Metrics;
use crate::router::{Router, RouterService};

/// Serves `router` on `listener` until the shutdown signal, if any, fires.
///
/// The returned [`Serve`] is a future; configure it first with [`Serve::config`] and
/// [`Serve::with_graceful_shutdown`].
pub fn serve(listener: TcpListener, router: Router) -> Serve {
    Serve {
        listener,
        router: router.into_service(),
        config: ServerConfig::default(),
        signal: None,
        metrics: None,
        #[cfg(feature = "tls")]
        tls: None,
    }
}

/// A server being configured; `.await` it to serve.
#[must_use = "a server does nothing until awaited"]
pub struct Serve {
    listener: TcpListener,
    router: RouterService,
    config: ServerConfig,
    signal: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    metrics: Option<Arc<Metrics>>,
    #[cfg(feature = "tls")]
    tls: Option<TlsConfig>,
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("config", &self.config)
            .finish()
    }
}

impl Serve {
    /// Sets the limits and timeouts.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Shuts down gracefully once `signal` completes: stop accepting, let in-flight requests
    /// finish up to the shutdown timeout, then close.
    pub fn with_graceful_shutdown<F>(mut self, signal: F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.signal = Some(Box::pin(signal));
        self
    }

    /// Counts the open connections into `metrics` (`http_server_open_connections`).
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Serves over TLS (feature `tls`): every connection starts with a handshake, bounded by
    /// the config's handshake timeout; limits and graceful shutdown are the same as over TCP.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    async fn run(self) -> io::Result<()> {
        let Serve {
            listener,
            router,
            config,
            signal,
            metrics,
            #[cfg(feature = "tls")]
            tls,
        } = self;
        #[cfg(feature = "tls")]
        let tls = match tls {
            Some(tls) => Some(Arc::new(tls::Handshake::new(&tls)?)),
            None => None,
        };
        let mut signal = signal.unwrap_or_else(|| Box::pin(std::future::pending()));
        let protocols = Arc::new(protocols(&config));
        let permits = Arc::new(Semaphore::new(config.max_connections));
        let tracker = Tracker::new(IdleTimeouts {
            keep_alive: config.keep_alive_timeout,
            header_read: config.header_read_timeout,
        });
        let sweeper = tokio::spawn(Tracker::sweep(
            Arc::downgrade(&tracker),
            tracker.sweep_period(),
        ));
        let mut connections = JoinSet::new();

        loop {
            let permit = tokio::select! {
                biased;
                () = &mut signal => break,
                permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            };
            let (stream, remote) = tokio::select! {
                biased;
                () = &mut signal => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        handle_accept_error(err).await;
                        continue;
                    }
                },
            };
            while connections.try_join_next().is_some() {}
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(%remote, error = %err, "TCP_NODELAY could not be set");
            }
            let connection = Connection {
                stream,
                peer: None,
                remote,
                router: router.clone(),
                protocols: protocols.clone(),
                body_limit: config.body_limit,
                body_pace: config.body_pace,
                header_limits: HeaderLimits {
                    bytes: config.max_header_bytes,
                    count: config.max_headers,
                },
                tracker: tracker.clone(),
                permit,
            };
            // Counted from accept to close, TLS handshake included.
            let open = metrics.as_ref().map(Metrics::connection_opened);
            #[cfg(feature = "tls")]
            if let Some(tls) = &tls {
                let serving = tls.clone().serve(connection);
                connections.spawn(async move {
                    let _open = open;
                    serving.await
                });
                continue;
            }
            connections.spawn(async move {
                let _open = open;
                connection.serve().await
            });
        }

        drop(listener);
        sweeper.abort();
        tracker.shut_down();
        let drained = tokio::time::timeout(config.shutdown_timeout, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                remaining = connections.len(),
                "shutdown timeout reached; closing the connections still busy"
            );
            connections.shutdown().await;
        }
        Ok(())
    }
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// How many header fields hyper accepts in a request unless told otherwise.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// hyper's builders: HTTP/1.1 set up alike in both, since a plain connection may be served
/// by either (see [`protocol`]).
fn protocols(config: &ServerConfig) -> Protocols {
    // The two builders' HTTP/1.1 options are different types with the same methods.
    macro_rules! configure_http1 {
        ($builder:expr) => {
            $builder
                // No timer for HTTP/1: the server times header reads itself (see
                // `IdleTimeouts`); hyper would arm its own header read timer per request.
                .header_read_timeout(None)
                // hyper's "half close": it stops reading, so stops noticing a client leave,
                // while a request runs.
                .half_close(config.ignore_client_abort)
                // Each answer's head and body copied into one buffer and written with one
                // `write`, rather than queued as separate buffers for `writev` (hyper's
                // choice for a TCP stream): answers are mostly small, and the queue's
                // bookkeeping cost more than the copy (about 450 instructions of a
                // 10.8k-instruction plaintext request). Large bodies are copied too, as nginx
                // copies into its buffers; hyper asks the body for more only while its buffer
                // holds less than `max_buf_size`.
                .writev(false)
                // hyper answers past its own limits with a bare 431; give it twice ours, so
                // that the connection (see `HeaderLimits`) answers the usual overflow with a
                // problem body.
                .max_buf_size(config.max_header_bytes.saturating_mul(2));
            // Up to its default count hyper parses headers into an array on the stack; any
            // explicit count, even a smaller one, costs two heap vectors filled per request (a
            // tenth of a plaintext request's instructions). So only a count above the default
            // is handed over.
            if config.max_headers > HYPER_DEFAULT_MAX_HEADERS {
                $builder.max_headers(config.max_headers.saturating_mul(2));
            }
        };
    }
    let mut http1 = hyper::server::conn::http1::Builder::new();
    configure_http1!(http1);
    let mut auto = auto::Builder::new(TokioExecutor::new());
    configure_http1!(auto.http1());
    auto.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX));
    Protocols { http1, auto }
}

/// Accept errors that concern one connection are skipped; others (out of file descriptors,
/// say) pause accepting briefly rather than spinning or stopping the server.
async fn handle_accept_error(err: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accepting a connection failed; retrying shortly");
    tokio::time::sleep(Duration::from_millis(50)).await;
}
