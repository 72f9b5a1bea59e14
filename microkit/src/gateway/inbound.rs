//! The client's body on its way through the gateway, and whose fault it is when it breaks.
//!
//! Why: the gateway streams a client's body to a service through the
//! [`ServiceClient`](crate::client::ServiceClient). When the client's body breaks (a
//! truncated body, a chunk size that is not hex, a body past the limit, a stall), the client
//! only sees a failed upstream exchange, which would be answered 502. The client's fault is a
//! 4xx: this wrapper records what went wrong with the inbound body before the error travels
//! on, so the gateway answers for what really failed.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

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

/// Where the gateway finds out whether the client's body failed.
#[derive(Debug, Clone, Default)]
pub(crate) struct FaultSlot(Arc<OnceLock<Fault>>);

impl FaultSlot {
    pub(crate) fn get(&self) -> Option<&Fault> {
        self.0.get()
    }
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
    let fault = FaultSlot::default();
    if body.is_end_stream() {
        return (body, fault);
    }
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
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                this.received += frame.data_ref().map_or(0, Bytes::len);
                if this.received > this.limit {
                    let fault = Fault::TooLarge { limit: this.limit };
                    let _ = this.fault.0.set(fault.clone());
                    return Poll::Ready(Some(Err(fault.problem().to_string().into())));
                }
            }
            Poll::Ready(Some(Err(err))) => {
                let _ = this.fault.0.set(Fault::of(err));
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
