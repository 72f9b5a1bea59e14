//! The future of [`Body::collect_limited`], written out by hand.
//!
//! Why not an `async fn`: a body is collected under every body extractor, whose futures nest
//! (handler, extractor, collection), and an `async fn` keeps its arguments for its whole life
//! beside the futures it awaits. Nested, that put a request's body future past a kilobyte,
//! which the system allocator no longer serves from its per-thread cache. This one holds
//! only the collection in progress.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::Collect;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::{Body, BodyError, BodyTimeout, Kind};

pin_project_lite::pin_project! {
    /// The future of [`Body::collect_limited`]: the whole body, or why it could not be read.
    pub struct CollectLimited {
        #[pin]
        state: State,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State {
        // Known without reading: a body already in memory.
        Done { result: Option<Result<Bytes, BodyError>> },
        Collecting { #[pin] collect: Collect<Limited<Body>>, limit: usize },
    }
}

impl CollectLimited {
    pub(super) fn new(body: Body, limit: usize) -> Self {
        let state = match body.kind {
            Kind::Full(bytes) => {
                let bytes = bytes.unwrap_or_default();
                State::Done {
                    result: Some(if bytes.len() > limit {
                        Err(BodyError::TooLarge { limit })
                    } else {
                        Ok(bytes)
                    }),
                }
            }
            kind => State::Collecting {
                collect: Limited::new(Body { kind }, limit).collect(),
                limit,
            },
        };
        Self { state }
    }

    /// A collection refused before it starts: the body is known to be past `limit`.
    pub(crate) fn too_large(limit: usize) -> Self {
        Self {
            state: State::Done {
                result: Some(Err(BodyError::TooLarge { limit })),
            },
        }
    }
}

impl Future for CollectLimited {
    type Output = Result<Bytes, BodyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProjection::Done { result } => Poll::Ready(
                result
                    .take()
                    .expect("CollectLimited polled after completion"),
            ),
            StateProjection::Collecting { collect, limit } => {
                Poll::Ready(match ready!(collect.poll(cx)) {
                    Ok(collected) => Ok(collected.to_bytes()),
                    Err(err) if err.is::<LengthLimitError>() => {
                        Err(BodyError::TooLarge { limit: *limit })
                    }
                    Err(err) => match err.downcast::<BodyTimeout>() {
                        Ok(timeout) => Err(BodyError::TimedOut(*timeout)),
                        Err(err) => Err(BodyError::Read(err)),
                    },
                })
            }
        }
    }
}

impl fmt::Debug for CollectLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CollectLimited")
    }
}
