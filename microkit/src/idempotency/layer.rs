//! [`IdempotencyLayer`]: `Idempotency-Key` for routes written by hand.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tower_layer::Layer;
use tower_service::Service;

use super::reply::KEPT_HEADERS;
use super::request::honours;
use super::{Begin, Idempotency, Reply};
use crate::extract::{read_limited, BodyFields};
use crate::response::IntoResponse;
use crate::{Body, BoxError, Request, Response};

/// The largest answer the layer keeps: a larger one is answered but not kept, so a retry runs
/// the request again.
const MAX_KEPT_ANSWER: usize = 1024 * 1024;

/// Honours `Idempotency-Key` on the `POST` and `PATCH` requests of the routes it wraps, with
/// the semantics of the [module](super) (replay, 422, 409, 400, scope, expiry).
///
/// The handler runs as usual; when it answers with a success (2xx), the answer is kept under
/// the key, in the [`Idempotency`]'s store, after the handler returned. A crash between the
/// handler's own writes and that record would let a retry run the request again: a handler
/// whose writes must commit with the key uses [`Idempotency::begin`] and
/// [`Claim::commit`](super::Claim::commit) itself instead. An error answer keeps nothing and
/// frees the key.
///
/// ```
/// use std::sync::Arc;
/// use microkit::idempotency::{Idempotency, IdempotencyLayer};
/// use microkit::resource::store::MemoryStore;
/// use microkit::router::post;
///
/// async fn notify() -> &'static str {
///     "sent"
/// }
///
/// let keys = Idempotency::new(Arc::new(MemoryStore::new()));
/// let app: microkit::Router = microkit::Router::new()
///     .route("/notify", post(notify))
///     .route_layer(IdempotencyLayer::new(keys));
/// ```
#[derive(Debug, Clone)]
pub struct IdempotencyLayer {
    keys: Idempotency,
}

impl IdempotencyLayer {
    /// A layer keeping its keys (and the answers) in `keys`' store.
    pub fn new(keys: Idempotency) -> Self {
        Self { keys }
    }
}

impl<S> Layer<S> for IdempotencyLayer {
    type Service = IdempotencyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IdempotencyService {
            inner,
            keys: self.keys.clone(),
        }
    }
}

/// The service of [`IdempotencyLayer`].
#[derive(Debug, Clone)]
pub struct IdempotencyService<S> {
    inner: S,
    keys: Idempotency,
}

impl<S, B> Service<Request> for IdempotencyService<S>
where
    S: Service<Request, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was made ready serves this request; the fresh one waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !honours(request.method()) {
            let future = inner.call(request);
            return Box::pin(async move { Ok(future.await?.map(Body::new)) });
        }
        let keys = self.keys.clone();
        Box::pin(async move {
            let declared = BodyFields::of(request.headers()).length;
            let (parts, bytes) = match read_limited(request, declared).await {
                Ok(read) => read,
                Err(rejection) => return Ok(rejection.into_response()),
            };
            let claim = match keys.begin(&parts, &bytes).await {
                Ok(Begin::Replay(response)) => return Ok(response),
                Ok(Begin::Run(claim)) => claim,
                Err(problem) => return Ok(problem.into_response()),
            };
            let request = Request::from_parts(parts, Body::from(bytes));
            let response = inner.call(request).await?.map(Body::new);
            if claim.key().is_none() || !response.status().is_success() {
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let Ok(body) = body.collect_limited(MAX_KEPT_ANSWER).await else {
                // Too large to keep, or broken: what arrived cannot be answered whole either.
                return Ok(crate::Problem::internal("the answer could not be read").into_response());
            };
            let mut reply = Reply::new(parts.status, body);
            for name in KEPT_HEADERS {
                if let Some(value) = parts.headers.get(&name) {
                    reply = reply.with_header(name, value.clone());
                }
            }
            Ok(match claim.keep(reply).await {
                Ok(response) => response,
                Err(problem) => problem.into_response(),
            })
        })
    }
}
