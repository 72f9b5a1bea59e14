//! The client's body on its way through the gateway, and whose fault it is when it breaks.
//!
//! Why: the gateway streams a client's body to a service through the
//! [`ServiceClient`](crate::client::ServiceClient). When the client's body breaks (a
//! truncated body, a chunk size that is not hex, a body past the limit, a stall), the client
//! only sees a failed upstream exchange, which would be answered 502. The client's fault is a
//! 4xx: this wrapper records what went wrong with the inbound body before the error travels
//! on, so the gateway answers for what really failed.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http_body::{Body as _, Frame, SizeHint};

use crate::body::BodyTimeout;
use crate::{Body, BoxError, Problem};

/// What went wrong with a client's body.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    TooLarge { limit: usize },
    TimedOut(String),
    Malformed(String),
}

impl Fault {
    fn of(err: &BoxError) -> Self {
        match err.downcast_ref::<BodyTimeout>() {
            Some(timeout) => Self::TimedOut(timeout.to_string()),
            None => Self::Malformed(err.to_string()),
        }
    }

    /// The answer to the client: its fault, so a 4xx.
    pub(crate) fn problem(&self) -> Problem {
        match self {
            Self::TooLarge { limit } => Problem::new(StatusCode::PAYLOAD_TOO_LARGE)
                .with_detail(format!(
                    "the request body is larger than the limit of {limit} bytes"
                ))
                .with_extension("limit", *limit),
            Self::TimedOut(detail) => Problem::new(StatusCode::REQUEST_TIMEOUT)
                .with_detail(format!("{detail}; the connection is closed")),
            Self::Malformed(detail) => Problem::new(StatusCode::BAD_REQUEST)
                .with_detail(format!("the request body could not be read: {detail}")),
        }
    }
}

/// Where the gateway finds out whether the client's body failed; nothing (and no allocation)
/// for a request without a body.
#[derive(Debug, Clone, Default)]
pub(crate) struct FaultSlot(Option<Arc<Shared>>);

#[derive(Debug, Default)]
struct Shared {
    fault: OnceLock<Fault>,
    /// Milliseconds since `STARTED` when the body began waiting for the client; 0 when it is
    /// not waiting (the last read returned bytes, or the body has not been read yet).
    waiting_since_ms: AtomicU64,
}

/// How long the gateway must have been waiting for a client's body, when the exchange with
/// the service fails, to count the failure as the client's stall.
const STALLED: Duration = Duration::from_secs(1);

impl FaultSlot {
    /// What went wrong with the client's body: a recorded failure, or, when the upstream
    /// exchange failed while the gateway had been waiting on the client's body for a while
    /// (the service's attempt timed out waiting for a body that stalled), a stall.
    ///
    /// Why the wait counts only while a read is pending on the client: a service that reads
    /// slowly stops the gateway from reading (back-pressure), and no read is pending then.
    pub(crate) fn get(&self) -> Option<Fault> {
        let shared = self.0.as_ref()?;
        if let Some(fault) = shared.fault.get() {
            return Some(fault.clone());
        }
        let since = shared.waiting_since_ms.load(Ordering::Relaxed);
        let waited = elapsed_ms().saturating_sub(since);
        (since != 0 && Duration::from_millis(waited) >= STALLED).then(|| {
            Fault::TimedOut(format!(
                "the request body stalled for {waited} ms while the gateway forwarded it"
            ))
        })
    }

    fn record(&self, fault: Fault) {
        if let Some(shared) = &self.0 {
            let _ = shared.fault.set(fault);
        }
    }

    fn waiting(&self, pending: bool) {
        let Some(shared) = &self.0 else { return };
        let now = if pending { elapsed_ms().max(1) } else { 0 };
        if !pending || shared.waiting_since_ms.load(Ordering::Relaxed) == 0 {
            shared.waiting_since_ms.store(now, Ordering::Relaxed);
        }
    }
}

/// Milliseconds since the first use: a cheap clock that fits an atomic.
fn elapsed_ms() -> u64 {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    let started = *STARTED.get_or_init(Instant::now);
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The client's body, counted against `limit` and with its failures recorded.
struct Inbound {
    body: Body,
    limit: usize,
    received: usize,
    fault: FaultSlot,
}

/// Wraps a client's body; an empty one (a `GET`) passes as it is, at no cost.
pub(crate) fn watch(body: Body, limit: usize) -> (Body, FaultSlot) {
    if body.is_end_stream() {
        return (body, FaultSlot::default());
    }
    let fault = FaultSlot(Some(Arc::default()));
    let inbound = Inbound {
        body,
        limit,
        received: 0,
        fault: fault.clone(),
    };
    (Body::new(inbound), fault)
}

impl http_body::Body for Inbound {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        this.fault.waiting(polled.is_pending());
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                this.received += frame.data_ref().map_or(0, Bytes::len);
                if this.received > this.limit {
                    let fault = Fault::TooLarge { limit: this.limit };
                    this.fault.record(fault.clone());
                    return Poll::Ready(Some(Err(fault.problem().to_string().into())));
                }
            }
            Poll::Ready(Some(Err(err))) => {
                this.fault.record(Fault::of(err));
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_past_the_limit_is_the_clients_fault() {
        let body = Body::new(http_body_util::Full::new(Bytes::from_static(b"12345")));
        let (body, fault) = watch(body, 4);
        assert!(body.collect_limited(100).await.is_err());
        assert_eq!(
            fault.get().map(|f| f.problem().status()),
            Some(StatusCode::PAYLOAD_TOO_LARGE)
        );
    }

    #[tokio::test]
    async fn an_empty_body_is_not_wrapped() {
        let (body, fault) = watch(Body::empty(), 4);
        assert!(body.is_end_stream());
        assert!(fault.get().is_none());
    }
}
