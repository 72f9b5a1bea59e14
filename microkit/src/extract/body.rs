use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::request::Parts;

use super::path::RouteMatch;
use super::{FromRequest, Rejection, RejectionKind};
use crate::body::BodyError;
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
        parts
            .extensions
            .get::<RouteMatch>()
            .and_then(|matched| matched.body_limit)
            .or_else(|| parts.extensions.get::<BodyLimit>().map(|limit| limit.0))
            .unwrap_or(DEFAULT_BODY_LIMIT)
    }
}

/// Reads the whole body, refusing it as soon as it is known to exceed the limit: at once when
/// `Content-Length` says so, else when the bytes arrive.
pub(crate) async fn read_limited(request: Request) -> Result<(Parts, Bytes), Rejection> {
    let (parts, body) = request.into_parts();
    let limit = BodyLimit::of(&parts);
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large(limit));
    }
    match body.collect_limited(limit).await {
        Ok(bytes) => Ok((parts, bytes)),
        Err(BodyError::TooLarge { limit }) => Err(too_large(limit)),
        Err(BodyError::TimedOut(timeout)) => Err(Rejection::new(
            RejectionKind::BodyTimeout,
            format!("{timeout}; the connection is closed"),
        )),
        Err(BodyError::Read(err)) => Err(Rejection::new(
            RejectionKind::BodyRead,
            format!("the request body could not be read: {err}"),
        )),
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

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        read_limited(request).await.map(|(_, bytes)| bytes)
    }
}

impl<S: Send + Sync> FromRequest<S> for String {
    type Rejection = Rejection;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let (_, bytes) = read_limited(request).await?;
        String::from_utf8(bytes.into()).map_err(|_| {
            Rejection::new(
                RejectionKind::MalformedBody,
                "the request body is not valid UTF-8",
            )
        })
    }
}
