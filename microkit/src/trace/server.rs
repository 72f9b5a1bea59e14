//! The span of one request a server answers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Method, StatusCode};
use tracing::field::Empty;
use tracing::Span;

use super::current::Entered;
use super::TraceContext;
use crate::extract::RemoteAddr;
use crate::request_context::RequestContext;
use crate::Response;

/// What a server does around each request: read its trace context, open its span, and make
/// both current while the request is routed and handled.
///
/// [`serve`](crate::serve) does this for every request; it is public so that an in-process
/// caller of a [`RouterService`](crate::router::RouterService) (a test, a bench, another
/// server) can do the same:
///
/// ```
/// use microkit::router::get;
/// use microkit::trace::ServerTrace;
/// use microkit::{Body, Router};
///
/// # async fn run() {
/// let app = Router::new().route("/", get(|| async { "hi" })).into_service();
/// let mut request = http::Request::get("/").body(Body::empty()).unwrap();
/// let mut trace = ServerTrace::start(&mut request);
/// let answer = trace.in_scope(|| app.call(request));
/// let response = trace.run(answer).await;
/// # }
/// ```
#[derive(Debug)]
pub struct ServerTrace {
    /// Always there but while [`ServerTrace::enter`]ed (moved in and out rather than cloned),
    /// when nothing else can reach it.
    context: Option<TraceContext>,
    span: Span,
}

/// The request's span, in its [`RequestContext`] while a subscriber listens, for the router to
/// record the matched route on.
#[derive(Debug, Clone)]
pub(crate) struct ServerSpan(Span);

impl ServerSpan {
    /// Names the span after the matched route, as the conventions ask.
    pub(crate) fn matched(&self, method: &Method, pattern: &str) {
        self.0.record("http.route", pattern);
        self.0
            .record("otel.name", format!("{method} {pattern}").as_str());
    }

    /// Records the request's id.
    pub(crate) fn request_id(&self, id: &str) {
        self.0.record("request_id", id);
    }
}

impl ServerTrace {
    /// Reads `request`'s trace context (a new trace when it carries none, or a malformed
    /// one) and opens its span, with the client's address from [`RemoteAddr`] when present.
    pub fn start<B>(request: &mut http::Request<B>) -> Self {
        let context = TraceContext::from_headers(request.headers());
        Self::start_in(request, context)
    }

    /// [`Self::start`] with the request's context already read from its fields (the server
    /// reads them in its one walk over them).
    pub(crate) fn start_in<B>(request: &mut http::Request<B>, mut context: TraceContext) -> Self {
        // Checked first so that, with nobody listening at this level, not even a disabled span
        // is made (with `tracing`'s `log` feature on, one costs a visit of every field).
        if !tracing::level_enabled!(tracing::Level::INFO) {
            return Self {
                context: Some(context),
                span: Span::none(),
            };
        }
        let span = tracing::info_span!(
            target: "microkit::server",
            "request",
            otel.name = request.method().as_str(),
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = request.method().as_str(),
            http.route = Empty,
            url.path = request.uri().path(),
            url.scheme = request.uri().scheme_str().unwrap_or("http"),
            server.address = Empty,
            server.port = Empty,
            client.address = Empty,
            client.port = Empty,
            network.protocol.version = version(request.version()),
            http.response.status_code = Empty,
            error.type = Empty,
            trace_id = %context.trace_id(),
            span_id = %context.span_id(),
            parent_span_id = Empty,
            request_id = Empty,
        );
        if !span.is_disabled() {
            context.recorded();
            describe(&span, &context, request);
            RequestContext::traced(request.extensions_mut(), ServerSpan(span.clone()));
        }
        Self {
            context: Some(context),
            span,
        }
    }

    /// The request's trace context.
    pub fn context(&self) -> &TraceContext {
        self.context
            .as_ref()
            .expect("a trace's context is away only while entered, borrowing the trace")
    }

    /// The request's span.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Runs `f` (routing the request, which may answer at once) in the request's context and
    /// span.
    pub fn in_scope<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let _scope = self.enter();
        f()
    }

    /// The request's context and span entered until the guard drops: [`Self::in_scope`]
    /// without a closure, so that the server does not move the request into one (a copy of
    /// some 300 bytes, twice, on every request). Not to be held across an `.await`. The
    /// context is moved in and back, not cloned: hence `&mut self`.
    pub(crate) fn enter(&mut self) -> TraceScope<'_> {
        // The context first and the span inside it, as they are left in the other order.
        TraceScope {
            _context: Entered::new(&mut self.context),
            _span: (!self.span.is_disabled()).then(|| self.span.enter()),
        }
    }

    /// `answer` awaited in the request's context and span, its status recorded on the span.
    pub fn run<F: Future<Output = Response>>(self, answer: F) -> Traced<F> {
        Traced {
            answer,
            context: self.context,
            span: self.span,
        }
    }
}

/// The guard of [`ServerTrace::enter`]: the span is left, then the context no longer current
/// (fields drop in the order they are declared).
pub(crate) struct TraceScope<'a> {
    _span: Option<tracing::span::Entered<'a>>,
    _context: Entered<'a>,
}

pin_project_lite::pin_project! {
    /// The future of [`ServerTrace::run`]: one future doing what a task-local scope, an
    /// instrumented future and a status recorder would do in three, for the hot path's sake.
    pub struct Traced<F> {
        #[pin]
        answer: F,
        context: Option<TraceContext>,
        span: Span,
    }
}

impl<F: Future<Output = Response>> Future for Traced<F> {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let this = self.project();
        let (answer, span) = (this.answer, &*this.span);
        if span.is_disabled() {
            return super::current::with_slot(this.context, || answer.poll(cx));
        }
        let polled = super::current::with_slot(this.context, || span.in_scope(|| answer.poll(cx)));
        if let Poll::Ready(response) = &polled {
            record_status(span, response.status());
        }
        polled
    }
}

impl<F> std::fmt::Debug for Traced<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traced")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// The attributes that take work to find, recorded only when someone listens.
fn describe<B>(span: &Span, context: &TraceContext, request: &http::Request<B>) {
    if let Some(parent) = context.parent_id() {
        span.record("parent_span_id", tracing::field::display(parent));
    }
    if let Some(RemoteAddr(remote)) = RemoteAddr::of(request.extensions()) {
        span.record("client.address", tracing::field::display(remote.ip()));
        span.record("client.port", remote.port());
    }
    let authority = request.uri().authority().cloned().or_else(|| {
        let host = request.headers().get(http::header::HOST)?;
        http::uri::Authority::try_from(host.as_bytes()).ok()
    });
    if let Some(authority) = authority {
        span.record("server.address", authority.host());
        if let Some(port) = authority.port_u16() {
            span.record("server.port", port);
        }
    }
}

fn record_status(span: &Span, status: StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    // Per the conventions, only a 5xx is a server span's error: a 4xx is the client's.
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", status.as_str());
    }
}

fn version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
