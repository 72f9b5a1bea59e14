//! The client's connections: HTTP/1.1 connections kept open per address, driven by the task
//! that uses them.
//!
//! Why not hyper-util's pooled client: it spawns a task per connection and hands each request
//! to it through a channel, so that every exchange wakes a second task (on a multi-threaded
//! runtime, often on another thread). Here, as in an nginx worker, the task that sends a
//! request also drives its connection: it writes the request, reads the answer, and through
//! the response body ([`PooledBody`]) reads the rest; at the end of the body the connection
//! goes back to the pool. No task per connection, nothing handed between tasks.
//!
//! A pooled connection is checked before reuse: a server that closed it while it sat idle
//! (its keep-alive timeout, a restart) is noticed before any byte of the next request is
//! written (see [`ProbedIo`]), and the request goes out on another connection.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use hyper::client::conn::http1;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::config::ClientConfig;
use super::probed_io::{ProbedIo, Stream};
use crate::discovery::{Instance, Scheme};
use crate::{Body, BoxError, Request};

pub(crate) use super::pooled_body::PooledBody;

/// A connection idle at least this long is probed (one `recv` with `MSG_PEEK`) before a request
/// is written on it. Servers close idle connections after a keep-alive timeout (seconds) or
/// when they shut down (microkit's services stop being chosen well before), so a connection
/// reused sooner is open as far as anyone can know, and a busy gateway, which reuses its
/// connections within microseconds, saves a system call per request. nginx and Envoy never
/// probe.
const PROBE_AFTER_IDLE: Duration = Duration::from_millis(10);

/// More idle connections than this to one address are closed rather than kept.
const MAX_IDLE_PER_ADDR: usize = 1024;

/// Where a connection goes: an address, and for `https` the name its certificate must carry.
/// Connections verified for one name are never reused for another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    addr: SocketAddr,
    tls_name: Option<Arc<str>>,
}

impl Target {
    pub(crate) fn of(instance: &Instance) -> Self {
        Self {
            addr: instance.addr,
            tls_name: match instance.scheme {
                Scheme::Https => Some(instance.certificate_name().into()),
                _ => None,
            },
        }
    }
}

/// Connections to every address the client talks to. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    /// Looked up twice per request (checkout and return): hashed with foldhash rather than
    /// SipHash, as the addresses come from the registry, not from callers.
    idle: Mutex<HashMap<Target, Vec<Idle>, foldhash::fast::RandomState>>,
    idle_timeout: Duration,
    connect_timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<super::ClientTls>,
    /// Whether a task is closing expired idle connections.
    reaper_running: AtomicBool,
}

struct Idle {
    connection: Connection,
    since: Instant,
}

/// One HTTP/1.1 connection: the handle requests are sent through and the state machine that
/// does the reading and writing, polled by whoever is waiting on the connection.
pub(super) struct Connection {
    sender: http1::SendRequest<Body>,
    /// Boxed: hyper's state machine is large, and connections move in and out of the pool.
    driver: Option<Pin<Box<http1::Connection<ProbedIo, Body>>>>,
    /// Set to have the socket checked for a close before the next request is written.
    probe: Arc<AtomicBool>,
    target: Target,
}

impl Connection {
    /// Lets the connection read and write what it can; false once it has ended.
    pub(super) fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(driver) = &mut self.driver else {
            return false;
        };
        match driver.as_mut().poll(cx) {
            Poll::Pending => true,
            Poll::Ready(result) => {
                if let Err(err) = result {
                    tracing::debug!(addr = %self.target.addr, error = %err, "upstream connection failed");
                }
                self.driver = None;
                false
            }
        }
    }

    /// Ready for the next request, or `Err` once closed.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.drive(cx);
        self.sender.poll_ready(cx)
    }

    fn is_open(&self) -> bool {
        self.driver.is_some() && !self.sender.is_closed()
    }
}

/// Why a request got no answer.
pub(crate) enum SendError {
    /// Nothing of the request was written (no connection, or every connection tried had been
    /// closed by the server): it comes back, body included, to be sent elsewhere.
    NotSent {
        source: BoxError,
        request: Box<Request>,
    },
    /// The request was written, at least in part, and the exchange failed.
    Failed(BoxError),
}

impl Pool {
    pub(crate) fn new(config: &ClientConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                idle: Mutex::new(HashMap::default()),
                idle_timeout: config.pool_idle_timeout,
                connect_timeout: config.connect_timeout,
                #[cfg(feature = "tls")]
                tls: config.tls.clone(),
                reaper_running: AtomicBool::new(false),
            }),
        }
    }

    /// Sends `request` (its URI in origin form, a `Host` header set) to `target` on a pooled
    /// connection or a new one. A request that a pooled connection could not carry because
    /// the server had closed it is sent again on another connection.
    pub(crate) async fn send(
        &self,
        target: &Target,
        mut request: Request,
    ) -> Result<http::Response<PooledBody>, SendError> {
        loop {
            let (mut connection, reused) = match self.checkout(target) {
                Some(connection) => (connection, true),
                // Boxed: connecting is rare, and its state would otherwise enlarge (and make
                // slower to move) the future of every request.
                None => match Box::pin(self.connect(target)).await {
                    Ok(connection) => (connection, false),
                    Err(source) => {
                        return Err(SendError::NotSent {
                            source,
                            request: Box::new(request),
                        })
                    }
                },
            };
            if let Err(err) = poll_fn(|cx| connection.poll_ready(cx)).await {
                if reused {
                    continue;
                }
                return Err(SendError::NotSent {
                    source: err.into(),
                    request: Box::new(request),
                });
            }
            let mut answer = pin!(connection.sender.try_send_request(request));
            let answered = poll_fn(|cx| {
                if let Poll::Ready(answered) = answer.as_mut().poll(cx) {
                    return Poll::Ready(answered);
                }
                connection.drive(cx);
                answer.as_mut().poll(cx)
            })
            .await;
            match answered {
                Ok(response) => {
                    let pool = Arc::downgrade(&self.shared);
                    return Ok(response.map(|incoming| PooledBody::new(incoming, connection, pool)));
                }
                Err(mut err) => match err.take_message() {
                    Some(unsent) if reused => request = unsent,
                    Some(unsent) => {
                        return Err(SendError::NotSent {
                            source: err.into_error().into(),
                            request: Box::new(unsent),
                        })
                    }
                    None => return Err(SendError::Failed(err.into_error().into())),
                },
            }
        }
    }

    /// A new connection; for `https`, the TLS handshake is bounded by the connect timeout too.
    async fn connect(&self, target: &Target) -> Result<Connection, BoxError> {
        let stream = tokio::time::timeout(self.shared.connect_timeout, self.open(target))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "the connection timed out")
            })??;
        let probe = Arc::new(AtomicBool::new(false));
        let io = ProbedIo::new(stream, probe.clone());
        let (sender, driver) = http1::Builder::new().handshake(io).await?;
        Ok(Connection {
            sender,
            driver: Some(Box::pin(driver)),
            probe,
            target: target.clone(),
        })
    }

    async fn open(&self, target: &Target) -> Result<Stream, BoxError> {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let Some(name) = &target.tls_name else {
            return Ok(Stream::Plain(stream));
        };
        #[cfg(feature = "tls")]
        {
            let Some(tls) = &self.shared.tls else {
                return Err(format!(
                    "{} is an https instance and the client has no TLS configuration \
                     (ClientConfig::tls)",
                    target.addr
                )
                .into());
            };
            let stream = tls.connect(name, stream).await?;
            Ok(Stream::Tls(Box::new(stream)))
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = (name, stream);
            Err(format!(
                "{} is an https instance; calling it needs microkit's `tls` feature",
                target.addr
            )
            .into())
        }
    }

    /// The most recently used idle connection to `target` (its socket still warm), marked to
    /// be probed before use if it sat idle long enough for a server to have closed it.
    fn checkout(&self, target: &Target) -> Option<Connection> {
        let mut idle = self.shared.idle.lock().expect("pool lock poisoned");
        let list = idle.get_mut(target)?;
        let now = Instant::now();
        while let Some(entry) = list.pop() {
            let idle_for = now.duration_since(entry.since);
            if idle_for < self.shared.idle_timeout {
                if idle_for >= PROBE_AFTER_IDLE {
                    entry.connection.probe.store(true, Ordering::Relaxed);
                }
                return Some(entry.connection);
            }
        }
        None
    }
}

impl Shared {
    /// Takes back a connection whose exchange ended cleanly.
    pub(super) fn put(self: &Arc<Self>, connection: Connection) {
        if !connection.is_open() {
            return;
        }
        {
            let mut idle = self.idle.lock().expect("pool lock poisoned");
            let list = idle.entry(connection.target.clone()).or_default();
            if list.len() >= MAX_IDLE_PER_ADDR {
                return;
            }
            list.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
        if !self.reaper_running.swap(true, Ordering::AcqRel) {
            self.start_reaper();
        }
    }

    /// A task that closes idle connections past the idle timeout, and those the server closed,
    /// so that idle sockets do not pile up; it ends when the pool is empty or gone.
    fn start_reaper(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.reaper_running.store(false, Ordering::Release);
            return;
        };
        let period = (self.idle_timeout / 2).max(Duration::from_millis(10));
        let pool: Weak<Shared> = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(pool) = pool.upgrade() else { return };
                if !pool.sweep() {
                    return;
                }
            }
        });
    }

    /// Drops expired and closed idle connections; false (the reaper stops) once none is left.
    fn sweep(&self) -> bool {
        let waker = Waker::from(Arc::new(NoWake));
        let mut cx = Context::from_waker(&waker);
        let now = Instant::now();
        let mut closed = Vec::new();
        let mut idle = self.idle.lock().expect("pool lock poisoned");
        idle.retain(|_, list| {
            let (keep, expired): (Vec<Idle>, Vec<Idle>) = std::mem::take(list)
                .into_iter()
                .partition(|entry| now.duration_since(entry.since) < self.idle_timeout);
            closed.extend(expired);
            for mut entry in keep {
                entry.connection.probe.store(true, Ordering::Relaxed);
                if entry.connection.drive(&mut cx) && entry.connection.is_open() {
                    list.push(entry);
                } else {
                    closed.push(entry);
                }
            }
            !list.is_empty()
        });
        let any_left = !idle.is_empty();
        if !any_left {
            // Under the lock: a `put` that follows sees the flag down and starts a new reaper.
            self.reaper_running.store(false, Ordering::Release);
        }
        drop(idle);
        drop(closed);
        any_left
    }
}

/// The sweep polls idle connections only to learn whether they closed; whoever checks one out
/// polls it again with its own waker.
struct NoWake;

impl Wake for NoWake {
    fn wake(self: Arc<Self>) {}
}
