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
//! The connections speak HTTP/1.1 through microkit's own codec ([`h1`](super::h1)): the
//! request head is written from the caller's parts, which the caller keeps (a retry needs
//! no copy of the headers), and the answer's head and body come straight out of the
//! connection's read buffer.
//!
//! A pooled connection is checked before reuse: a server that closed it while it sat idle
//! (its keep-alive timeout, a restart) is noticed before any byte of the next request is
//! written (see [`Stream::closed_by_peer`] and [`h1::Connection::poll_idle`]), and the
//! request goes out on another connection.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Poll;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant, Sleep};

use super::config::ClientConfig;
use super::h1;
use super::probed_io::Stream;
use crate::discovery::{Instance, Scheme};
use crate::{Body, BoxError};

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
    connection: Box<Connection>,
    since: Instant,
}

/// One HTTP/1.1 connection and where it goes. Boxed wherever it is kept: it moves in and
/// out of the pool and into answers' bodies, and a pointer moves cheaper than the codec's
/// buffers and state.
pub(super) struct Connection {
    pub(super) h1: h1::Connection<Stream>,
    target: Target,
    /// Bounds each exchange on the connection by its attempt's deadline. One timer for the
    /// connection's life, moved forward for every exchange: a timer made and dropped per
    /// request is two trips into the runtime's timer wheel (about 650 instructions, 2% of a
    /// forwarded request), while moving one to a later deadline is a store until it fires.
    timer: Pin<Box<Sleep>>,
}

/// Why a request got no answer.
pub(crate) enum SendError {
    /// Nothing of the request was written (no connection, or every connection tried had been
    /// closed by the server): its body comes back, to be sent elsewhere.
    NotSent { source: BoxError, body: Body },
    /// The request was written, at least in part, and the exchange failed.
    Failed(BoxError),
    /// The request itself cannot be sent as it is (its framing fields contradict each other
    /// or its body): nothing was written, and no instance is to blame.
    Invalid(BoxError),
    /// The deadline passed before the answer's head arrived (or before a connection opened):
    /// the exchange is abandoned, and its connection closed.
    TimedOut,
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

    /// Sends a request (`head`: its URI in origin form; `lines`: fields written after the
    /// head's own, `Host` among them) to `target` on a pooled connection or a new one, and
    /// waits for the answer's head until `deadline`. A request that a pooled connection could
    /// not carry because the server had closed it is sent again on another connection. The
    /// head is only read, so the caller keeps it for a retry.
    ///
    /// A function returning a future, not an `async fn`: an `async fn` keeps a copy of each
    /// argument beside the one it was given for as long as it runs, and this future is part
    /// of every call's.
    #[allow(clippy::manual_async_fn)] // not `async fn`: see above
    pub(crate) fn send<'a>(
        &'a self,
        target: &'a Target,
        head: &'a http::request::Parts,
        lines: &'a [u8],
        body: Body,
        deadline: Instant,
    ) -> impl Future<Output = Result<http::Response<PooledBody>, SendError>> + Send + 'a {
        async move {
            // A pooled connection the server closed is found out before anything is written on
            // it, and the next one is tried.
            let reused = loop {
                let Some((mut connection, probe)) = self.checkout(target) else {
                    break None;
                };
                if probe && connection.h1.io().closed_by_peer() {
                    continue;
                }
                if poll_fn(|cx| Poll::Ready(connection.h1.poll_idle(cx))).await {
                    break Some(connection);
                }
            };
            let mut connection = match reused {
                Some(connection) => connection,
                // Boxed: connecting is rare, and its state would otherwise enlarge (and make
                // slower to move) the future of every request.
                None => {
                    match Box::pin(timeout_at(deadline, self.connect(target, deadline))).await {
                        Err(_) => return Err(SendError::TimedOut),
                        Ok(Ok(mut connection)) => {
                            if !poll_fn(|cx| Poll::Ready(connection.h1.poll_idle(cx))).await {
                                return Err(SendError::NotSent {
                                    source: h1::Error::ClosedBeforeRequest.into(),
                                    body,
                                });
                            }
                            connection
                        }
                        Ok(Err(source)) => return Err(SendError::NotSent { source, body }),
                    }
                }
            };
            if let Err(err) = connection.h1.start(head, lines, body) {
                return Err(SendError::Invalid(err.into()));
            }
            connection.timer.as_mut().reset(deadline);
            let answered = poll_fn(|cx| {
                if let Poll::Ready(answered) = connection.h1.poll_head(cx) {
                    return Poll::Ready(Some(answered));
                }
                connection.timer.as_mut().poll(cx).map(|()| None)
            });
            match answered.await {
                None => Err(SendError::TimedOut),
                Some(Ok(parts)) => {
                    let pool = Arc::downgrade(&self.shared);
                    Ok(http::Response::from_parts(
                        parts,
                        PooledBody::new(connection, pool),
                    ))
                }
                Some(Err(err)) => Err(SendError::Failed(err.into())),
            }
        }
    }

    /// A new connection; for `https`, the TLS handshake is bounded by the connect timeout too.
    /// Its timer starts at `deadline`, the first exchange's.
    async fn connect(
        &self,
        target: &Target,
        deadline: Instant,
    ) -> Result<Box<Connection>, BoxError> {
        let stream = tokio::time::timeout(self.shared.connect_timeout, self.open(target))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "the connection timed out")
            })??;
        Ok(Box::new(Connection {
            h1: h1::Connection::new(stream),
            target: target.clone(),
            timer: Box::pin(tokio::time::sleep_until(deadline)),
        }))
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

    /// The most recently used idle connection to `target` (its socket still warm), and
    /// whether it sat idle long enough for a server to have closed it (then it is probed
    /// before use).
    fn checkout(&self, target: &Target) -> Option<(Box<Connection>, bool)> {
        let mut idle = self.shared.idle.lock().expect("pool lock poisoned");
        let list = idle.get_mut(target)?;
        let now = Instant::now();
        while let Some(entry) = list.pop() {
            let idle_for = now.duration_since(entry.since);
            if idle_for < self.shared.idle_timeout {
                return Some((entry.connection, idle_for >= PROBE_AFTER_IDLE));
            }
        }
        None
    }
}

impl Shared {
    /// Takes back a connection whose exchange ended cleanly.
    pub(super) fn put(self: &Arc<Self>, mut connection: Box<Connection>) {
        if !connection.h1.is_reusable() {
            return;
        }
        connection.h1.shrink_idle();
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
        let now = Instant::now();
        let mut closed = Vec::new();
        let mut idle = self.idle.lock().expect("pool lock poisoned");
        idle.retain(|_, list| {
            let (keep, gone): (Vec<Idle>, Vec<Idle>) =
                std::mem::take(list).into_iter().partition(|entry| {
                    now.duration_since(entry.since) < self.idle_timeout
                        && !entry.connection.h1.io().closed_by_peer()
                });
            closed.extend(gone);
            *list = keep;
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback server that answers the first request of its one connection and never the
    /// next, holding the connection open.
    async fn answers_once() -> Target {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut received = [0u8; 4096];
            let mut answered = false;
            while let Ok(1..) = stream.read(&mut received).await {
                if !answered {
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    stream.write_all(answer).await.unwrap();
                    answered = true;
                }
            }
        });
        Target {
            addr,
            tls_name: None,
        }
    }

    /// Sends `GET /` with `deadline` and reads the answer whole (which pools the connection).
    async fn exchange(pool: &Pool, target: &Target, deadline: Instant) -> Result<(), SendError> {
        let (mut head, ()) = http::Request::new(()).into_parts();
        head.uri = http::Uri::from_static("/");
        let lines = b"host: test\r\n";
        let response = pool
            .send(target, &head, lines, Body::empty(), deadline)
            .await?;
        response.into_body().collect().await.expect("the body");
        Ok(())
    }

    /// The second exchange on a connection, which the server never answers, ends at its own
    /// deadline: not at the first exchange's, whether that was earlier or later.
    async fn second_exchange_ends_at(first: Duration, second: Duration) {
        let target = answers_once().await;
        let pool = Pool::new(&ClientConfig::default());
        exchange(&pool, &target, Instant::now() + first)
            .await
            .unwrap_or_else(|_| panic!("the first exchange is answered"));
        let started = Instant::now();
        let second_exchange = exchange(&pool, &target, started + second);
        let ended = tokio::time::timeout(Duration::from_secs(10), second_exchange)
            .await
            .expect("ended by its deadline");
        assert!(matches!(ended, Err(SendError::TimedOut)));
        let waited = started.elapsed();
        assert!(
            waited >= second && waited < second + Duration::from_secs(2),
            "waited {waited:?} for a deadline {second:?} away"
        );
    }

    #[tokio::test]
    async fn a_reused_connection_times_an_exchange_by_a_later_deadline() {
        second_exchange_ends_at(Duration::from_millis(100), Duration::from_millis(400)).await;
    }

    #[tokio::test]
    async fn a_reused_connection_times_an_exchange_by_an_earlier_deadline() {
        second_exchange_ends_at(Duration::from_secs(60), Duration::from_millis(100)).await;
    }
}
