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
//! with the caller's `tracestate` and the request id. The gateway is one such hop. A trace is
//! passed on when a caller started it or it is recorded here (a subscriber records its spans,
//! or a [`MetricsLayer`](crate::metrics::MetricsLayer) its ids in exemplars): with none of
//! these and no `traceparent` in, a call sends none (as a proxy without tracing does), and the
//! next hop starts the trace.
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
mod current;
#[cfg(feature = "otel")]
pub mod otel;
mod server;
mod traceparent;

use std::future::Future;

use tracing::Instrument;

pub(crate) use self::client::{in_span, CallTrace};
pub(crate) use self::context::{random_u64, TraceFields};
pub use self::context::{InvalidId, SpanId, TraceContext, TraceId};
pub use self::current::InTrace;
pub(crate) use self::server::ServerSpan;
pub use self::server::{ServerTrace, Traced};
pub use self::traceparent::{TRACEPARENT, TRACESTATE};

/// The trace context of the request being handled (the server span's), if any.
pub fn current() -> Option<TraceContext> {
    current::with_current(|context| context.cloned())
}

/// The trace id of the request being handled, if any: the key to its log lines and spans.
pub fn current_trace_id() -> Option<TraceId> {
    current::with_current(|context| context.map(TraceContext::trace_id))
}

/// Marks the current trace as recorded (by metrics' exemplars, say): calls made from here on
/// pass it on, as they do when a subscriber records its spans.
pub(crate) fn record_current() {
    current::with_current_mut(|context| {
        if let Some(context) = context {
            context.recorded();
        }
    });
}

/// The trace and span ids of the current trace context, if any: what an exemplar links to
/// (two copies out of the context, no allocation).
pub(crate) fn current_ids() -> Option<(TraceId, SpanId)> {
    current::with_current(|context| context.map(|context| (context.trace_id(), context.span_id())))
}

/// `future` with `context` as the current trace context while it runs.
pub fn scope<F: Future>(context: TraceContext, future: F) -> InTrace<F> {
    InTrace::new(Some(context), future)
}

/// `future` carrying the current trace context, span and request id, for `tokio::spawn`:
/// calls it makes join the request's trace instead of starting their own.
///
/// ```no_run
/// # async fn record() {}
/// tokio::spawn(microkit::trace::in_current_trace(record()));
/// ```
pub fn in_current_trace<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let request_id = crate::middleware::current_request_id();
    let future = future.in_current_span();
    InTrace::new(current(), async move {
        match request_id {
            Some(id) => crate::middleware::with_request_id(id, future).await,
            None => future.await,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spawned_work_carried_along_stays_in_the_trace() {
        let context = TraceContext::root();
        let trace_id = context.trace_id();
        let (carried, left_behind) = scope(context, async {
            let carried = tokio::spawn(in_current_trace(async { current_trace_id() }));
            let left_behind = tokio::spawn(async { current_trace_id() });
            (carried.await.unwrap(), left_behind.await.unwrap())
        })
        .await;
        assert_eq!(carried, Some(trace_id));
        assert_eq!(left_behind, None);
    }
}
