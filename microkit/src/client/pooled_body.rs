//! The body of an answer on a pooled connection: reading it drives the connection, and its
//! end gives the connection back to the pool.

use std::pin::Pin;
use std::sync::Weak;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;

use super::pool::{Connection, Shared};

/// An answer's body that owns the connection it arrives on.
///
/// Polling it polls the connection too (the same task reads the socket and the body; see
/// [`Pool`](super::pool::Pool)). Dropped, it returns the connection to the pool, whether the
/// body was read or not: if hyper had already read the whole answer the connection is as good
/// as new, and if not hyper closes it when it is next polled, at checkout, so that the rest
/// of an abandoned answer is never taken for the next one. A body that failed closes its
/// connection at once.
pub(crate) struct PooledBody {
    incoming: Incoming,
    connection: Option<Connection>,
    pool: Weak<Shared>,
}

impl PooledBody {
    pub(super) fn new(incoming: Incoming, connection: Connection, pool: Weak<Shared>) -> Self {
        Self {
            incoming,
            connection: Some(connection),
            pool,
        }
    }

    fn poll_incoming(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.incoming).poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &polled {
            self.connection = None;
        }
        polled
    }
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = this.poll_incoming(cx) {
            return Poll::Ready(frame);
        }
        // Nothing buffered yet: let the connection read more, then look again.
        if let Some(connection) = &mut this.connection {
            connection.drive(cx);
        }
        this.poll_incoming(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if let (Some(connection), Some(pool)) = (self.connection.take(), self.pool.upgrade()) {
            Shared::put(&pool, connection);
        }
    }
}
