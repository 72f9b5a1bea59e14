//! microkit's own HTTP/1.1 client codec (RFC 9112), for the pooled connections to upstreams.
//!
//! Why not hyper's `client::conn::http1`: it runs a dispatcher per connection and hands each
//! request to it through a channel and each answer back through a oneshot, with the body
//! behind one more channel. Driven by the task that sends the request (as the pool does),
//! all of that is still paid per request: about 16,000 instructions of a proxied request's
//! 59,000 at the gateway. This codec is the state of one exchange, moved forward by whoever
//! waits on it: it writes the head straight from the request's parts into a buffer the
//! connection keeps, parses the answer's head with `httparse` into header values that share
//! the read buffer, and hands body bytes out of that buffer without copies.
//!
//! - [`encode`]: the request head and the framing of its body.
//! - [`outgoing`]: the bytes waiting to be written.
//! - [`head`]: the answer's head, and what it says of the body and the connection.
//! - [`body`]: the answer's body: a length, chunks, or until the server closes.
//! - [`connection`]: one connection's exchange, reading and writing together.

mod body;
mod connection;
mod encode;
mod error;
mod fields;
mod head;
mod outgoing;

pub(crate) use self::connection::Connection;
pub(crate) use self::error::Error;
