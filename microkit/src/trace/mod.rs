//! Following one request across services: W3C trace context in and out, and `tracing` spans
//! named and attributed by the OpenTelemetry HTTP semantic conventions.
//!
//! Every request a microkit server answers runs in a span named `request` (its `otel.name` is
//! `"{method} {route}"`, e.g. `GET /user/{id}`), attributed with `http.request.method`,
//! `http.route` (the matched pattern), `url.path`, `http.response.status_code`,
//! `server.address`, `client.address`, and its `trace_id`, `span_id` and `parent_span_id`.
//! The trace comes from the caller's `traceparent` header; when it is absent or malformed the
//! request starts a new trace, and is answered all the same.
//!
//! Every call through a [`ServiceClient`](crate::client::ServiceClient) runs in a `call`
//! span with one `attempt` span per attempt, retries, ejections and deadline cut-offs
//! recorded on them; each attempt sends its own span as the `traceparent` of the next hop,
//! with the caller's `tracestate` and the request id. The gateway is one such hop.
//!
//! A [`Problem`](crate::Problem) answered within a request carries the trace id as its
//! `trace_id` member, so the id a user reports finds every log line of the request, in every
//! service: log lines written through `tracing` within the request carry the span's fields.
//!
//! ```
//! use microkit::trace::{TraceContext, TRACEPARENT};
//! use microkit::http::{HeaderMap, HeaderValue};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(
//!     TRACEPARENT,
//!     HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
//! );
//! let context = TraceContext::from_headers(&headers);
//! assert_eq!(context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! assert_eq!(context.parent_id().unwrap().to_string(), "00f067aa0ba902b7");
//! ```
//!
//! ## The cost
//!
//! The context is read by hand (55 bytes), ids come from a fast thread-local generator, and a
//! span nobody listens to is never built: with no subscriber interested in
//! `microkit::server` at `INFO`, a request pays for parsing a header and two task-local
//! scopes, and allocates nothing. `benches/dispatch.rs` measures it.
//!
//! ## Work outside the request's task
//!
//! The current context is task-local, like the current deadline: work spawned onto another
//! task leaves it behind unless it is carried along with [`in_current_trace`].

mod client;
mod context;
mod server;
mod traceparent;

use std::future::Future;

use tracing::Instrument;

pub(crate) use self::client::CallTrace;
pub use self::context::{InvalidId, SpanId, TraceContext, TraceId};
pub(crate) use self::server::ServerSpan;
pub use self::server::ServerTrace;
pub use self::traceparent::{TRACEPARENT, TRACESTATE};

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The trace context of the request being handled (the server span's), if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(TraceContext::clone).ok()
}

/// The trace id of the request being handled, if any: the key to its log lines and spans.
pub fn current_trace_id() -> Option<TraceId> {
    CURRENT.try_with(TraceContext::trace_id).ok()
}

/// Runs `future` with `context` as the current trace context.
pub async fn scope<F: Future>(context: TraceContext, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}

/// `future` carrying the current trace context and span, for `tokio::spawn`: calls it makes
/// join the request's trace instead of starting their own.
///
/// ```no_run
/// # async fn record() {}
/// tokio::spawn(microkit::trace::in_current_trace(record()));
/// ```
pub fn in_current_trace<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let context = current();
    let future = future.in_current_span();
    async move {
        match context {
            Some(context) => CURRENT.scope(context, future).await,
            None => future.await,
        }
    }
}

pub(crate) fn sync_scope<R>(context: TraceContext, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(context, f)
}
