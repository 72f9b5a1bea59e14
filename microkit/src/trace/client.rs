//! The spans of one call through a `ServiceClient`: a `call` span, and an `attempt` span per
//! attempt whose ids travel to the next hop.

use std::future::{poll_fn, Future};
use std::pin::Pin;

use http::{HeaderMap, Method, StatusCode};
use tracing::field::{display, Empty};
use tracing::Span;

use super::TraceContext;
use crate::client::ClientError;
use crate::client::HeaderLines;
use crate::discovery::Instance;
use crate::middleware::current_request_id;
use crate::middleware::{X_REQUEST_ID, X_REQUEST_ID_NAME};

/// Polls `future` where it lies, inside `span`: what `instrument` does, without moving the
/// future into a wrapper. A call's futures are the largest of a request's, and each move is a
/// copy of all of it (over a kilobyte for the attempts).
pub(crate) fn in_span<'a, F: Future>(
    span: &'a Span,
    mut future: Pin<&'a mut F>,
) -> impl Future<Output = F::Output> + 'a {
    poll_fn(move |cx| span.in_scope(|| future.as_mut().poll(cx)))
}

/// A call's trace: its context (a child of the request being handled, or a new trace) and
/// its span.
pub(crate) struct CallTrace {
    context: TraceContext,
    span: Span,
}

/// One attempt's trace: its span. (Its context, the next hop's parent, is written as the
/// attempt's lines when the span opens, and not kept: this waits for the answer in every
/// call's future.)
pub(crate) struct AttemptTrace {
    span: Span,
}

impl CallTrace {
    pub(crate) fn start(service: &str, method: &Method, path: &str) -> Self {
        let mut context = super::current::with_current(|current| match current {
            Some(parent) => parent.child(),
            None => TraceContext::root(),
        });
        if !tracing::level_enabled!(tracing::Level::INFO) {
            return Self {
                context,
                span: Span::none(),
            };
        }
        let span = tracing::info_span!(
            target: "microkit::client",
            "call",
            otel.name = Empty,
            otel.kind = "internal",
            otel.status_code = Empty,
            peer.service = service,
            http.request.method = method.as_str(),
            url.path = path,
            attempts = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
            trace_id = %context.trace_id(),
            span_id = %context.span_id(),
            parent_span_id = Empty,
        );
        if !span.is_disabled() {
            context.recorded();
            span.record("otel.name", format!("{method} {service}").as_str());
            if let Some(parent) = context.parent_id() {
                span.record("parent_span_id", display(parent));
            }
        }
        Self { context, span }
    }

    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Opens the span of attempt `number` (from 1) of the request `head` at `instance`, a
    /// child of the call's, and writes its context and, when the head has none, the request
    /// id as the attempt's header lines: this attempt's span is the parent of the next hop's.
    pub(crate) fn attempt(
        &self,
        number: u32,
        head: &http::request::Parts,
        instance: &Instance,
        lines: &mut HeaderLines,
    ) -> AttemptTrace {
        // A child of the call's context, passed on when the call's is (the attempt's span is
        // recorded when the call's is: same target, same level).
        let context = self.context.child();
        write_lines(&context, &head.headers, lines);
        if self.span.is_disabled() {
            return AttemptTrace { span: Span::none() };
        }
        let (method, addr) = (&head.method, instance.addr);
        let span = tracing::info_span!(
            target: "microkit::client",
            parent: &self.span,
            "attempt",
            otel.name = method.as_str(),
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = method.as_str(),
            http.request.resend_count = Empty,
            server.address = Empty,
            server.port = addr.port(),
            service.instance.id = instance.id.as_str(),
            http.response.status_code = Empty,
            error.type = Empty,
            trace_id = %context.trace_id(),
            span_id = %context.span_id(),
            parent_span_id = %self.context.span_id(),
        );
        if !span.is_disabled() {
            span.record("server.address", display(addr.ip()));
            if number > 1 {
                span.record("http.request.resend_count", number - 1);
            }
        }
        self.span.record("attempts", number);
        AttemptTrace { span }
    }

    /// Records how the call ended.
    pub(crate) fn finish<T>(&self, result: &Result<http::Response<T>, ClientError>) {
        if self.span.is_disabled() {
            return;
        }
        match result {
            Ok(response) => record_status(&self.span, response.status()),
            Err(err) => record_error(&self.span, err),
        }
    }
}

impl AttemptTrace {
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Records the answer's status.
    pub(crate) fn answered(&self, status: StatusCode) {
        if !self.span.is_disabled() {
            record_status(&self.span, status);
        }
    }

    /// Records what kept an answer from arriving.
    pub(crate) fn failed(&self, err: &ClientError) {
        if !self.span.is_disabled() {
            record_error(&self.span, err);
        }
    }
}

/// Writes an attempt's trace `context` and, when `headers` have none, the request id as its
/// header lines.
fn write_lines(context: &TraceContext, headers: &HeaderMap, lines: &mut HeaderLines) {
    context.write_lines(lines);
    // A walk over the request's few names costs less than hashing this custom one.
    if !headers
        .keys()
        .any(|name| name.as_str() == X_REQUEST_ID_NAME)
    {
        if let Some(id) = current_request_id() {
            lines.push(&X_REQUEST_ID, id.header_value().as_bytes());
        }
    }
}

fn record_status(span: &Span, status: StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    // A client span's error is any 4xx or 5xx, per the conventions.
    if status.is_client_error() || status.is_server_error() {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", status.as_str());
    }
}

fn record_error(span: &Span, err: &ClientError) {
    if let Some(status) = err.status() {
        return record_status(span, status);
    }
    span.record("otel.status_code", "ERROR");
    span.record("error.type", error_type(err));
}

/// A low-cardinality name for what went wrong, as `error.type` wants.
fn error_type(err: &ClientError) -> &'static str {
    match err {
        ClientError::NoInstances { .. } => "no_instances",
        ClientError::Timeout { .. } => "timeout",
        ClientError::DeadlineExceeded { .. } => "deadline_exceeded",
        ClientError::Connect { .. } => "connect",
        ClientError::Transport { .. } => "transport",
        ClientError::Status { .. } => "status",
        ClientError::Decode { .. } => "decode",
        ClientError::Discovery(_) => "discovery",
    }
}
