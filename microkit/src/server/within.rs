//! A request's answer, cut off when its caller's deadline passes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

use crate::deadline;
use crate::response::IntoResponse;
use crate::router::RouterFuture;
use crate::{Problem, Response};

/// The routed request's answer, unless the caller's deadline (from
/// [`DEADLINE_HEADER`](crate::deadline::DEADLINE_HEADER)) passes first: then a 504, and the
/// work on the answer stops as it is dropped. The deadline is [`deadline::current`] while the
/// answer is polled.
///
/// Why not `tokio::time::timeout_at` in a boxed future: behind a gateway every request carries
/// a deadline, and most answer at their first poll. Here such a request costs a deadline in
/// the thread's slot and nothing else; the timer is made, on the heap, only when the answer
/// has to wait.
pub(super) struct Within {
    answer: RouterFuture,
    deadline: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Within {
    /// `answer`, cut off at `deadline` if there is one.
    pub(super) fn new(answer: RouterFuture, deadline: Option<Instant>) -> Self {
        Self {
            answer,
            deadline,
            timer: None,
        }
    }
}

impl Future for Within {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let this = &mut *self;
        let answer = Pin::new(&mut this.answer);
        let Some(deadline) = this.deadline else {
            return answer.poll(cx);
        };
        if let Poll::Ready(response) = deadline::in_scope(deadline, || answer.poll(cx)) {
            return Poll::Ready(response);
        }
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(deadline_passed()),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The answer to a request whose caller's deadline passed before it was answered.
pub(super) fn deadline_passed() -> Response {
    Problem::new(http::StatusCode::GATEWAY_TIMEOUT)
        .with_detail("the caller's deadline passed before the request was answered")
        .into_response()
}
