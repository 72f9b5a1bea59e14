//! A response body bounded by the call's deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::pooled_body::PooledBody;
use crate::BoxError;

/// The error a body gives when the call's deadline passes before its end.
#[derive(Debug)]
pub(crate) struct BodyDeadlinePassed;

impl std::fmt::Display for BodyDeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call's deadline passed before the answer's body arrived")
    }
}

impl std::error::Error for BodyDeadlinePassed {}

/// An answer's body from a pooled connection that fails with [`BodyDeadlinePassed`] once
/// `deadline` passes: the deadline covers the whole exchange, not only the answer's head. The
/// timer is armed (and boxed) only when the body has to wait, so a body that is already there
/// costs no timer, and the body is small enough (40 bytes) to be one of [`Body`]'s own kinds
/// rather than a boxed one: every call's answer is one.
///
/// [`Body`]: crate::Body
pub(crate) struct DeadlineBody {
    inner: PooledBody,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    pub(crate) fn new(inner: PooledBody, deadline: Instant) -> Self {
        Self {
            inner,
            deadline,
            timer: None,
        }
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyDeadlinePassed)))),
            Poll::Pending => Poll::Pending,
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
