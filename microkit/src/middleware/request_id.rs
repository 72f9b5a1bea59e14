use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{Entry, HeaderName, HeaderValue};
use http::request::Parts;
use tower_layer::Layer;
use tower_service::Service;

use crate::extract::{FromRequestParts, Rejection};
use crate::request_context::RequestContext;
use crate::trace::random_u64;

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the request being handled, when a [`RequestIdLayer`] gave it one: what a
/// [`ServiceClient`](crate::client::ServiceClient) sends on as `x-request-id`.
pub fn current_request_id() -> Option<RequestId> {
    CURRENT.try_with(RequestId::clone).ok()
}

/// Runs `future` with `id` as the current request id.
pub(crate) async fn with_request_id<F: Future>(id: RequestId, future: F) -> F::Output {
    CURRENT.scope(id, future).await
}

/// The header that carries a request's id.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static(X_REQUEST_ID_NAME);

/// [`X_REQUEST_ID`]'s name, for walks over a request's names.
pub(crate) const X_REQUEST_ID_NAME: &str = "x-request-id";

/// The longest incoming id kept; a longer one is replaced, so ids stay fit for logs.
const MAX_INCOMING_LEN: usize = 128;

/// The id of a request: the caller's `x-request-id` when it sent a sane one, a fresh UUID v4
/// otherwise. Handlers extract it; [`RequestIdLayer`] puts it in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }

    /// The id as a header value, to pass on to other services.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    fn from_incoming(value: &HeaderValue) -> Option<Self> {
        let text = value.to_str().ok()?;
        let sane = !text.is_empty()
            && text.len() <= MAX_INCOMING_LEN
            && text.bytes().all(|b| b.is_ascii_graphic());
        sane.then(|| Self(value.clone()))
    }

    /// A random (version 4) UUID. Drawn from the trace ids' per-thread generator rather than
    /// `Uuid::new_v4`, which asks the kernel for randomness (a system call) on every request:
    /// an id must be unique, not unpredictable.
    fn generate() -> Self {
        let bits = (u128::from(random_u64()) << 64) | u128::from(random_u64());
        let id = uuid::Builder::from_random_bytes(bits.to_le_bytes()).into_uuid();
        let text = hyphenated(id.as_bytes());
        // Shared from the start: the id is cloned for the request's header, its extension and
        // the task-local, and a buffer copied into a `HeaderValue` would be moved to a shared
        // one (a second allocation) on its first clone.
        let shared = bytes::Bytes::from_owner(text);
        Self(HeaderValue::from_maybe_shared(shared).expect("a UUID is a valid header value"))
    }
}

/// A UUID's text, `8-4-4-4-12` lowercase hex digits, written a byte (two digits) at a time
/// from a table: what `Uuid::hyphenated` writes, at two fifths of its cost (it works a digit at
/// a time, with a branch each), on the path of every request given an id.
fn hyphenated(bytes: &[u8; 16]) -> [u8; uuid::fmt::Hyphenated::LENGTH] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    const PAIRS: [[u8; 2]; 256] = {
        let mut pairs = [[0; 2]; 256];
        let mut byte = 0;
        while byte < 256 {
            pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0xf]];
            byte += 1;
        }
        pairs
    };
    let mut text = [b'-'; uuid::fmt::Hyphenated::LENGTH];
    let mut at = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        // The groups end after bytes 4, 6, 8 and 10: a hyphen stays at each of those places.
        if matches!(index, 4 | 6 | 8 | 10) {
            at += 1;
        }
        text[at..at + 2].copy_from_slice(&PAIRS[usize::from(byte)]);
        at += 2;
    }
    text
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        crate::extract::Extension::<RequestId>::from_request_parts(parts, state)
            .await
            .map(|ext| ext.0)
    }
}

/// `None` when the [`RequestIdLayer`] is not installed.
impl<S: Send + Sync> crate::extract::OptionalFromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<RequestId>().cloned())
    }
}

/// Keeps an incoming `x-request-id` or makes one, exposes it to handlers as [`RequestId`]
/// (and to calls they make, which pass it on: [`current_request_id`]), records it on the
/// request's span, and echoes it on the response.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl RequestIdLayer {
    /// The layer.
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

/// The service of [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, B, ResB> Service<http::Request<B>> for RequestIdService<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // One lookup for the caller's id and the place of ours: the request goes on with the
        // id the handler sees, the caller's if sane, a fresh one otherwise.
        let id = match request.headers_mut().entry(X_REQUEST_ID) {
            Entry::Occupied(mut incoming) => match RequestId::from_incoming(incoming.get()) {
                // Kept as it came, when it is the only one.
                Some(id) if incoming.iter().nth(1).is_none() => id,
                kept => {
                    let id = kept.unwrap_or_else(RequestId::generate);
                    incoming.insert(id.0.clone());
                    id
                }
            },
            Entry::Vacant(place) => {
                let id = RequestId::generate();
                place.insert(id.0.clone());
                id
            }
        };
        if let Some(span) = RequestContext::span(request.extensions()) {
            span.request_id(id.as_str());
        }
        request.extensions_mut().insert(id.clone());
        let inner = CURRENT.sync_scope(id.clone(), || self.inner.call(request));
        RequestIdFuture {
            inner: CURRENT.scope(id, inner),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RequestIdService`].
    pub struct RequestIdFuture<F> {
        // The id stays in the scope until the response takes it for its header.
        #[pin]
        inner: tokio::task::futures::TaskLocalFuture<RequestId, F>,
    }
}

impl<F, ResB, E> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<http::Response<ResB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut inner = self.project().inner;
        let mut response = std::task::ready!(inner.as_mut().poll(cx))?;
        if let Some(RequestId(header)) = inner.take_value() {
            response.headers_mut().entry(X_REQUEST_ID).or_insert(header);
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_incoming_ids_are_kept() {
        assert!(RequestId::from_incoming(&HeaderValue::from_static("abc-123")).is_some());
        assert!(RequestId::from_incoming(&HeaderValue::from_static("")).is_none());
        assert!(RequestId::from_incoming(&HeaderValue::from_static("has space")).is_none());
        let long = HeaderValue::from_str(&"x".repeat(MAX_INCOMING_LEN + 1)).unwrap();
        assert!(RequestId::from_incoming(&long).is_none());
    }

    /// The `x-request-id` values a handler behind the layer sees for a request sending
    /// `sent`, and the id it was given.
    async fn seen_behind_the_layer(sent: &[&'static str]) -> (Vec<String>, String) {
        use tower::{service_fn, ServiceExt};
        let handler = service_fn(|request: http::Request<()>| async move {
            let values: Vec<String> = request
                .headers()
                .get_all(&X_REQUEST_ID)
                .iter()
                .map(|value| value.to_str().unwrap().to_owned())
                .collect();
            let id = request.extensions().get::<RequestId>().unwrap().clone();
            let body = (values, id.as_str().to_owned());
            Ok::<_, std::convert::Infallible>(http::Response::new(body))
        });
        let mut request = http::Request::new(());
        for value in sent {
            let value = HeaderValue::from_static(value);
            request.headers_mut().append(X_REQUEST_ID, value);
        }
        let response = RequestIdLayer::new().layer(handler).oneshot(request);
        response.await.unwrap().into_body()
    }

    #[tokio::test]
    async fn the_request_goes_on_with_exactly_the_id_it_was_given() {
        let (values, id) = seen_behind_the_layer(&[]).await;
        assert_eq!(values, std::slice::from_ref(&id));
        assert!(uuid::Uuid::parse_str(&id).is_ok());

        let (values, id) = seen_behind_the_layer(&["order-7"]).await;
        assert_eq!((values, id.as_str()), (vec![id.clone()], "order-7"));

        let (values, id) = seen_behind_the_layer(&["has space"]).await;
        assert_eq!(values, std::slice::from_ref(&id));
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");

        let (values, id) = seen_behind_the_layer(&["first", "second"]).await;
        assert_eq!((values, id.as_str()), (vec![id.clone()], "first"));
    }

    #[test]
    fn ids_are_written_as_uuid_writes_them() {
        let mut bytes = [0u8; 16];
        for round in 0..1000u64 {
            bytes[..8].copy_from_slice(&random_u64().to_le_bytes());
            bytes[8..].copy_from_slice(&(random_u64() ^ round).to_le_bytes());
            let expected = uuid::Uuid::from_bytes(bytes).hyphenated().to_string();
            assert_eq!(hyphenated(&bytes), expected.as_bytes());
        }
        for edge in [[0; 16], [0xff; 16]] {
            let expected = uuid::Uuid::from_bytes(edge).hyphenated().to_string();
            assert_eq!(hyphenated(&edge), expected.as_bytes());
        }
    }

    #[test]
    fn generated_ids_are_uuids() {
        let id = RequestId::generate();
        let parsed = uuid::Uuid::parse_str(id.as_str()).expect("a UUID");
        assert_eq!(parsed.get_version(), Some(uuid::Version::Random));
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(id.as_str(), parsed.hyphenated().to_string());
    }
}
