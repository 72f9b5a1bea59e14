//! The body type of microkit's requests and responses.
//!
//! Why an enum rather than one boxed body: most responses are a single buffer (JSON, text) and
//! most requests arrive as hyper's [`Incoming`]; keeping those two unboxed saves an allocation
//! and a virtual call per frame on the hot path, while any other [`http_body::Body`] still fits
//! through [`Body::new`].
//!
//! A body read from a server's connection also keeps a pace (see [`ServerConfig`]'s body
//! timeouts): one that stalls or trickles fails with [`BodyTimeout`], which the extractors
//! answer with 408.
//!
//! [`ServerConfig`]: crate::ServerConfig

mod collect;
mod json;
mod pace;

use std::any::Any;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;

pub use self::collect::CollectLimited;
pub(crate) use self::json::to_bytes as json_bytes;
pub(crate) use self::pace::BodyPace;
pub use self::pace::BodyTimeout;
use self::pace::Pacer;
use crate::client::DeadlineBody;
use crate::BoxError;

/// The body of a [`Request`](crate::Request) or a [`Response`](crate::Response).
#[must_use]
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Incoming(Lingering),
    /// The answer to a `ServiceClient` call: a kind of its own rather than a boxed body, as
    /// every call's answer is one (the gateway's for every request).
    Answer(DeadlineBody),
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

/// A request body from the connection that, if dropped before its end, is read to the end in
/// the background: a lingering close, as nginx does.
///
/// Why: a handler may answer without reading the body (a 405, a 413 past the limit). Closing
/// with unread bytes in the socket makes the kernel reset the connection, and a reset can
/// destroy the answer before the client reads it; a proxy then reports a 502 instead of the
/// service's answer. Draining is bounded in bytes and time, so an endless upload still ends.
/// A body cut for its pace is not drained: a client that stalls gets no more of the server.
struct Lingering {
    body: Option<Incoming>,
    pacer: Option<Pacer>,
}

impl Lingering {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(timeout) = self.pacer.as_ref().and_then(Pacer::timed_out) {
            return Poll::Ready(Some(Err(Box::new(timeout))));
        }
        let Some(incoming) = self.body.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = http_body::Body::poll_frame(Pin::new(incoming), cx);
        if let Some(pacer) = self.pacer.as_mut() {
            match &polled {
                Poll::Pending => {
                    if let Err(timeout) = pacer.wait(cx) {
                        // Dropped unread: HTTP/1.1 then closes the connection after the
                        // answer, HTTP/2 resets the stream.
                        self.body = None;
                        return Poll::Ready(Some(Err(Box::new(timeout))));
                    }
                }
                Poll::Ready(Some(Ok(frame))) => {
                    pacer.arrived(frame.data_ref().map_or(0, Bytes::len))
                }
                Poll::Ready(_) => pacer.arrived(0),
            }
        }
        polled.map_err(|err| Box::new(err) as BoxError)
    }
}

/// How much of an abandoned body is read before the connection is given up.
const LINGER_BYTES: usize = 8 * 1024 * 1024;
/// How long an abandoned body is read before the connection is given up.
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(10);

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(body) = self.body.take() else { return };
        if http_body::Body::is_end_stream(&body) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let drain = http_body_util::Limited::new(body, LINGER_BYTES).collect();
                let _ = tokio::time::timeout(LINGER_TIME, drain).await;
            });
        }
    }
}

impl Body {
    /// An empty body.
    pub const fn empty() -> Self {
        Self { kind: Kind::Empty }
    }

    /// Wraps any [`http_body::Body`] whose data is [`Bytes`].
    ///
    /// A `Body` passed here is returned as it is, without a second box.
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut slot = Some(body);
        if let Some(already) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Body>>() {
            if let Some(body) = already.take() {
                return body;
            }
        }
        match slot {
            Some(body) => Self {
                kind: Kind::Boxed(body.map_err(Into::into).boxed_unsync()),
            },
            None => Self::empty(),
        }
    }

    /// The answer's body of a `ServiceClient` call.
    pub(crate) fn from_answer(body: DeadlineBody) -> Self {
        Self {
            kind: Kind::Answer(body),
        }
    }

    /// A request body read from a server's connection, kept to `pace` when there is one.
    pub(crate) fn from_connection(incoming: Incoming, pace: Option<BodyPace>) -> Self {
        Self {
            kind: Kind::Incoming(Lingering {
                body: Some(incoming),
                pacer: pace.map(Pacer::new),
            }),
        }
    }

    /// Collects the whole body into one buffer, failing once more than `limit` bytes arrive.
    pub fn collect_limited(self, limit: usize) -> CollectLimited {
        CollectLimited::new(self, limit)
    }
}

/// Why a body could not be read in full.
#[derive(Debug)]
pub enum BodyError {
    /// More bytes arrived than the limit allows.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The connection failed or the peer sent a malformed body.
    Read(BoxError),
    /// The body stalled or arrived too slowly for the server's body timeouts.
    TimedOut(BodyTimeout),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge { limit } => write!(f, "the body is larger than {limit} bytes"),
            Self::Read(err) => write!(f, "the body could not be read: {err}"),
            Self::TimedOut(timeout) => timeout.fmt(f),
        }
    }
}

impl std::error::Error for BodyError {}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Empty => "empty",
            Kind::Full(_) => "full",
            Kind::Incoming(_) => "incoming",
            Kind::Answer(_) => "answer",
            Kind::Boxed(_) => "boxed",
        };
        f.debug_tuple("Body").field(&kind).finish()
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Full(Some(bytes)),
        }
    }
}

impl From<Incoming> for Body {
    fn from(incoming: Incoming) -> Self {
        Self::from_connection(incoming, None)
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Bytes::from(text).into()
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Bytes::from_static(text.as_bytes()).into()
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes::from(bytes).into()
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Bytes::from_static(bytes).into()
    }
}

impl From<()> for Body {
    fn from((): ()) -> Self {
        Self::empty()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|bytes| !bytes.is_empty())
                    .map(|bytes| Ok(Frame::data(bytes))),
            ),
            Kind::Incoming(lingering) => lingering.poll_frame(cx),
            Kind::Answer(body) => body.poll_frame(cx),
            Kind::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            Kind::Incoming(lingering) => {
                lingering
                    .pacer
                    .as_ref()
                    .and_then(Pacer::timed_out)
                    .is_none()
                    && lingering.body.as_ref().is_none_or(Incoming::is_end_stream)
            }
            Kind::Answer(body) => body.is_end_stream(),
            Kind::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Incoming(lingering) => lingering
                .body
                .as_ref()
                .map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint),
            Kind::Answer(body) => body.size_hint(),
            Kind::Boxed(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_body_collects_and_reports_its_size() {
        let body = Body::from("hello");
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5));
        assert_eq!(body.collect_limited(5).await.unwrap(), "hello");
    }

    #[tokio::test]
    async fn limit_is_enforced_on_buffered_and_streamed_bodies() {
        let full = Body::from("hello");
        assert!(matches!(
            full.collect_limited(4).await,
            Err(BodyError::TooLarge { limit: 4 })
        ));
        let streamed = Body::new(http_body_util::Full::new(Bytes::from_static(b"hello")));
        assert!(matches!(
            streamed.collect_limited(4).await,
            Err(BodyError::TooLarge { .. })
        ));
    }

    #[test]
    fn wrapping_a_body_does_not_box_it_again() {
        let body = Body::new(Body::from("x"));
        assert!(matches!(body.kind, Kind::Full(_)));
    }
}
