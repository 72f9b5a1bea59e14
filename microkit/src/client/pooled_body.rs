//! The body of an answer on a pooled connection: reading it drives the connection, and its
//! end gives the connection back to the pool.

use std::pin::Pin;
use std::sync::Weak;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use super::h1;
use super::pool::{Connection, Shared};

/// An answer's body that owns the connection it arrives on.
///
/// Polling it reads the connection (the same task reads the socket and the body; see
/// [`Pool`](super::pool::Pool)), and keeps writing the request body if the server answered
/// before it was all sent. At the end of the answer the connection goes back to the pool at
/// once, if it can carry another exchange. Dropped before its end, the body gives the
/// connection back only if the rest of the answer is already in the read buffer; otherwise
/// the connection is closed, so that the rest of an abandoned answer is never taken for the
/// next one, and a long one is not read for nothing. A body that failed closes its connection.
pub(crate) struct PooledBody {
    connection: Option<Box<Connection>>,
    pool: Weak<Shared>,
}

impl PooledBody {
    pub(super) fn new(connection: Box<Connection>, pool: Weak<Shared>) -> Self {
        Self {
            connection: Some(connection),
            pool,
        }
    }

    /// Hands the connection back to the pool, which keeps it if it can be reused.
    fn release(&mut self) {
        if let (Some(connection), Some(pool)) = (self.connection.take(), self.pool.upgrade()) {
            Shared::put(&pool, connection);
        }
    }
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = h1::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h1::Error>>> {
        let this = self.get_mut();
        let Some(connection) = &mut this.connection else {
            return Poll::Ready(None);
        };
        let polled = connection.h1.poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Err(_))) => this.connection = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.connection
            .as_ref()
            .is_none_or(|connection| connection.h1.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.connection.as_ref().map_or_else(
            || SizeHint::with_exact(0),
            |connection| connection.h1.size_hint(),
        )
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if let Some(connection) = &mut self.connection {
            if connection.h1.finish_buffered() {
                self.release();
            }
        }
    }
}
