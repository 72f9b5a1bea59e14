//! Helpers for the client, gateway and service tests: backends that count what reaches them,
//! addresses that refuse or never answer, a TCP proxy that counts connections, a bounded load
//! runner and a request body the test feeds chunk by chunk.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Frame, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use microkit::discovery::{Instance, MemoryRegistry, Registration, Registry};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::PATIENCE;

/// Registers `addr` as an instance of `service`, with an id naming the address so failures
/// say which instance they concern. Keep the registration alive as long as it should count.
pub async fn register(registry: &MemoryRegistry, service: &str, addr: SocketAddr) -> Registration {
    registry
        .register(Instance::new(service, addr).with_id(format!("{service}@{addr}")))
        .await
        .expect("a memory registry always registers")
}

/// A loopback address where nothing listens: connecting to it is refused at once, for as
/// long as this lives.
///
/// The port stays bound, without listening: a port bound and let go can be handed out again
/// at once, to another test's server in the same process (or as a connection's own source
/// port, which then connects to itself), and a call meant to be refused would hang instead.
pub struct RefusingAddr {
    /// The address that refuses.
    pub addr: SocketAddr,
    _bound: tokio::net::TcpSocket,
}

/// Binds a [`RefusingAddr`] on loopback.
pub fn refusing_addr() -> RefusingAddr {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("binding a loopback port");
    RefusingAddr {
        addr: socket.local_addr().expect("the socket's address"),
        _bound: socket,
    }
}

/// A server that accepts connections, reads whatever arrives and never answers: a peer that
/// hangs. The connections stay open until the returned task is aborted (or dropped with it).
pub struct SilentServer {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a [`SilentServer`].
pub async fn spawn_silent() -> SilentServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let addr = listener.local_addr().expect("the listener's address");
    let task = tokio::spawn(async move {
        let mut held = tokio::task::JoinSet::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            held.spawn(async move {
                let mut sink = [0u8; 4096];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    SilentServer { addr, task }
}

/// A TCP proxy in front of a server that counts the connections it accepts and those that
/// have since closed: how a test sees a client's connection pool from the outside.
pub struct CountingProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl CountingProxy {
    /// Starts a proxy to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let addr = listener.local_addr().expect("the listener's address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (accepted_in_task, closed_in_task) = (accepted.clone(), closed.clone());
        let task = tokio::spawn(async move {
            let mut pipes = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                accepted_in_task.fetch_add(1, Ordering::SeqCst);
                let closed = closed_in_task.clone();
                pipes.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            accepted,
            closed,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections that have ended so far (either side closed them).
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts requests that reached a backend, shared between a handler and the test.
#[derive(Debug, Clone, Default)]
pub struct Hits(Arc<AtomicUsize>);

impl Hits {
    /// Counts one more.
    pub fn hit(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The count so far.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// How a bounded load run went.
#[derive(Debug)]
pub struct LoadReport {
    /// Calls that returned `Ok` in time.
    pub succeeded: usize,
    /// Calls that returned an error or ran out of time.
    pub failed: usize,
    /// The first few failures, for the assertion message.
    pub errors: Vec<String>,
    /// How long the whole run took.
    pub elapsed: Duration,
}

impl LoadReport {
    /// The share of requests that succeeded.
    pub fn success_ratio(&self) -> f64 {
        self.succeeded as f64 / (self.succeeded + self.failed).max(1) as f64
    }
}

/// A load run in progress: `total` calls, `concurrency` at a time.
pub struct Load {
    completed: Arc<AtomicUsize>,
    task: JoinHandle<LoadReport>,
}

/// Starts `total` calls of `call(index)`, `concurrency` at a time; each call is bounded by
/// [`PATIENCE`], and counts as failed when it errs or runs out of time.
pub fn start_load<F, Fut>(total: usize, concurrency: usize, call: F) -> Load
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let completed = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new((0usize, Vec::new())));
    let call = Arc::new(call);
    let counter = completed.clone();
    let task = tokio::spawn(async move {
        let started = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (next, completed, errors, call) =
                (next.clone(), counter.clone(), errors.clone(), call.clone());
            workers.spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    if index >= total {
                        return;
                    }
                    let outcome = match tokio::time::timeout(PATIENCE, call(index)).await {
                        Ok(outcome) => outcome,
                        Err(_) => Err("no answer in time".to_owned()),
                    };
                    if let Err(err) = outcome {
                        let mut errors = errors.lock().expect("errors lock");
                        errors.0 += 1;
                        if errors.1.len() < 10 {
                            errors.1.push(format!("request {index}: {err}"));
                        }
                    }
                    completed.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        while let Some(joined) = workers.join_next().await {
            joined.expect("a load worker panicked");
        }
        let (failed, errors) = std::mem::take(&mut *errors.lock().expect("errors lock"));
        LoadReport {
            succeeded: total - failed,
            failed,
            errors,
            elapsed: started.elapsed(),
        }
    });
    Load { completed, task }
}

impl Load {
    /// Calls completed so far.
    pub fn completed(&self) -> usize {
        self.completed.load(Ordering::SeqCst)
    }

    /// Waits (at most [`PATIENCE`]) until `count` calls have completed.
    pub async fn reached(&self, count: usize) {
        let waiting = async {
            while self.completed.load(Ordering::SeqCst) < count {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        tokio::time::timeout(PATIENCE, waiting)
            .await
            .unwrap_or_else(|_| panic!("the load did not reach {count} calls in time"));
    }

    /// Waits for every call to complete (bounded: each call is).
    pub async fn finish(self) -> LoadReport {
        self.task.await.expect("the load runner panicked")
    }
}

/// A pooled HTTP/1.1 client for driving load from a test, as a real caller would.
pub fn pooled_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Waits (at most [`PATIENCE`]) until `check` holds, polling every few milliseconds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let waiting = async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(PATIENCE, waiting)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {PATIENCE:?}"));
}

/// A request body the test feeds chunk by chunk, with no length announced: it can only be
/// streamed.
pub struct ChunkedBody {
    chunks: mpsc::Receiver<Bytes>,
}

/// A [`ChunkedBody`] and the sender that feeds it; dropping the sender ends the body.
pub fn chunked_body() -> (mpsc::Sender<Bytes>, ChunkedBody) {
    let (sender, chunks) = mpsc::channel(4);
    (sender, ChunkedBody { chunks })
}

impl hyper::body::Body for ChunkedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
