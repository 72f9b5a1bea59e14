use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::HeaderMap;

use super::{FromRequest, Rejection, RejectionKind};
use crate::body::{BodyError, CollectLimited};
use crate::request_context::RequestContext;
use crate::Request;

/// The largest request body a body extractor reads, unless the route or server says otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The request body limit in bytes, kept in a request's extensions.
///
/// The server inserts it when its limit differs from [`DEFAULT_BODY_LIMIT`]; a route's own
/// limit ([`MethodRouter::body_limit`](crate::router::MethodRouter::body_limit)) takes
/// precedence over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    /// The limit that applies to a request: the route's, else the server's, else the default.
    pub(crate) fn of(parts: &Parts) -> usize {
        RequestContext::route(&parts.extensions)
            .and_then(|matched| matched.body_limit)
            .or_else(|| parts.extensions.get::<BodyLimit>().map(|limit| limit.0))
            .unwrap_or(DEFAULT_BODY_LIMIT)
    }
}

/// What a request's fields say about its body, read in one walk over them: a JSON body
/// asks three questions, and three hashed lookups cost more than one walk over the few
/// fields a request carries.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BodyFields<'h> {
    /// The first `Content-Type`.
    pub(crate) content_type: Option<&'h HeaderValue>,
    /// A content coding other than `identity` applies.
    pub(crate) encoded: bool,
    /// The declared length, when the first `Content-Length` is a number.
    pub(crate) length: Option<u64>,
}

impl<'h> BodyFields<'h> {
    pub(crate) fn of(headers: &'h HeaderMap) -> Self {
        let mut fields = Self::default();
        let mut length = None;
        for (name, value) in headers {
            if *name == CONTENT_TYPE {
                fields.content_type.get_or_insert(value);
            } else if *name == CONTENT_LENGTH {
                length.get_or_insert(value);
            } else if *name == CONTENT_ENCODING {
                fields.encoded |= !value.as_bytes().eq_ignore_ascii_case(b"identity");
            }
        }
        fields.length = length
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        fields
    }
}

/// Reads the whole body, refusing it as soon as it is known to exceed the limit: at once when
/// the `declared` length (see [`BodyFields`]) says so, else when the bytes arrive. The parts
/// are let go of at once: what reads only the body (the `Json`, `Bytes` and `String`
/// extractors) would otherwise carry 224 bytes through the read and out of it, moved at each
/// step, in every such handler's future.
pub(crate) fn read_body(request: Request, declared: Option<u64>) -> ReadBody {
    let (parts, body) = request.into_parts();
    ReadBody::new(&parts, body, declared)
}

/// [`read_body`], keeping the parts for the caller.
pub(crate) fn read_limited(request: Request, declared: Option<u64>) -> ReadLimited {
    let (parts, body) = request.into_parts();
    let read = ReadBody::new(&parts, body, declared);
    ReadLimited {
        parts: Some(parts),
        read,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`read_body`], written out rather than an `async fn`, which would keep
    /// the request it was given beside the collection (see
    /// [`CollectLimited`](crate::body::CollectLimited)).
    pub(crate) struct ReadBody {
        #[pin]
        collect: CollectLimited,
    }
}

impl ReadBody {
    fn new(parts: &Parts, body: crate::Body, declared: Option<u64>) -> Self {
        let limit = BodyLimit::of(parts);
        let collect = if declared.is_some_and(|length| length > limit as u64) {
            // Refused without reading a byte.
            CollectLimited::too_large(limit)
        } else {
            body.collect_limited(limit)
        };
        Self { collect }
    }
}

impl Future for ReadBody {
    type Output = Result<Bytes, Rejection>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(self.project().collect.poll(cx)) {
            Ok(bytes) => Ok(bytes),
            Err(BodyError::TooLarge { limit }) => Err(too_large(limit)),
            Err(BodyError::TimedOut(timeout)) => Err(Rejection::new(
                RejectionKind::BodyTimeout,
                format!("{timeout}; the connection is closed"),
            )),
            Err(BodyError::Read(err)) => Err(Rejection::new(
                RejectionKind::BodyRead,
                format!("the request body could not be read: {err}"),
            )),
        })
    }
}

pin_project_lite::pin_project! {
    /// The future of [`read_limited`]: the body's read, and the parts it hands back.
    pub(crate) struct ReadLimited {
        parts: Option<Parts>,
        #[pin]
        read: ReadBody,
    }
}

impl Future for ReadLimited {
    type Output = Result<(Parts, Bytes), Rejection>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let bytes = ready!(this.read.poll(cx))?;
        Poll::Ready(Ok((
            this.parts.take().expect("polled after completion"),
            bytes,
        )))
    }
}

fn too_large(limit: usize) -> Rejection {
    Rejection::new(
        RejectionKind::PayloadTooLarge,
        format!("the request body is larger than the limit of {limit} bytes"),
    )
    .with_problem(|problem| problem.with_extension("limit", limit))
}

impl<S: Send + Sync> FromRequest<S> for Bytes {
    type Rejection = Rejection;

    // The read's future as it is, not awaited in an `async fn` that would also keep the
    // request (see `ReadLimited`).
    fn from_request(
        request: Request,
        _: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        let declared = BodyFields::of(request.headers()).length;
        read_body(request, declared)
    }
}

impl<S: Send + Sync> FromRequest<S> for String {
    type Rejection = Rejection;

    fn from_request(
        request: Request,
        _: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        let declared = BodyFields::of(request.headers()).length;
        read_body(request, declared).map(|read| {
            String::from_utf8(read?.into()).map_err(|_| {
                Rejection::new(
                    RejectionKind::MalformedBody,
                    "the request body is not valid UTF-8",
                )
            })
        })
    }
}
