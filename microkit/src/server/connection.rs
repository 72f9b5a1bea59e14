//! One connection: HTTP/1.1 or h2c, its per-request bookkeeping, and closing it when told.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::EXPECT;
use hyper::body::Incoming;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::protocol::{Protocols, Serving, Transport};
use super::tracker::{InFlight, Told, Tracker};
use super::within::{deadline_passed, Within};
use super::PeerIdentity;
use crate::body::BodyPace;
use crate::deadline;
use crate::extract::{BodyLimit, DEFAULT_BODY_LIMIT};
use crate::request_context::RequestContext;
use crate::response::IntoResponse;
use crate::router::{RouterFuture, RouterService};
use crate::trace::{ServerTrace, TraceContext, TraceFields, Traced};
use crate::Body;
use crate::{Problem, Response};

pub(super) struct Connection<IO = TcpStream> {
    pub(super) stream: IO,
    /// The verified client certificate's identity, under mutual TLS.
    pub(super) peer: Option<PeerIdentity>,
    pub(super) remote: SocketAddr,
    pub(super) router: RouterService,
    pub(super) protocols: Arc<Protocols>,
    pub(super) body_limit: usize,
    pub(super) body_pace: Option<BodyPace>,
    pub(super) header_limits: HeaderLimits,
    /// Where the connection registers once it serves: the idle sweeper and the shutdown.
    pub(super) tracker: Arc<Tracker>,
    pub(super) permit: OwnedSemaphorePermit,
}

pin_project_lite::pin_project! {
    /// One request's answer, as hyper polls it: the routed (or refused) request in its trace,
    /// counted in flight until hyper drops it once answered. One small future, since hyper
    /// moves it into place for every request.
    struct Answering {
        #[pin]
        answer: Traced<Within>,
        _in_flight: InFlight,
    }
}

impl Future for Answering {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().answer.poll(cx).map(Ok)
    }
}

/// The request-line-and-headers limits a connection enforces itself.
#[derive(Debug, Clone, Copy)]
pub(super) struct HeaderLimits {
    pub(super) bytes: usize,
    pub(super) count: usize,
}

/// What the server reads of every request's fields before routing it, in one walk over them.
struct FieldCheck {
    /// The request line and fields are past the connection's limits.
    too_large: bool,
    /// The first `Expect` asks for something other than `100-continue` (which hyper answers
    /// itself): 417, rather than acting as if the client had not asked (RFC 9110 §10.1.1).
    unmet_expectation: bool,
    /// The caller's deadline, from the first [`DEADLINE_HEADER`](crate::deadline::DEADLINE_HEADER).
    deadline: Option<Instant>,
    /// The request's trace context, from its `traceparent` and `tracestate`.
    context: TraceContext,
}

impl HeaderLimits {
    fn read_fields<B>(&self, request: &http::Request<B>) -> FieldCheck {
        let headers = request.headers();
        // The request line and each `name: value\r\n`, as they came on the wire.
        let mut bytes = request.method().as_str().len() + request_target_len(request.uri()) + 12;
        let (mut expect, mut deadline) = (None, None);
        let mut trace = TraceFields::default();
        for (name, value) in headers {
            // Once per field: for a standard name it is a lookup in a table of names.
            let name_text = name.as_str();
            bytes += name_text.len() + value.len() + 4;
            if *name == EXPECT {
                expect.get_or_insert(value);
            } else if deadline.is_none() && deadline::is_deadline_field(name_text) {
                deadline = Some(value);
            } else {
                trace.see(name_text, value);
            }
        }
        FieldCheck {
            too_large: headers.len() > self.count || bytes > self.bytes,
            unmet_expectation: expect
                .is_some_and(|expect| !expect.as_bytes().eq_ignore_ascii_case(b"100-continue")),
            deadline: deadline.and_then(deadline::from_value),
            context: TraceContext::from_fields(trace, headers),
        }
    }
}

/// The request target's length as it came on the wire, without writing it out again.
fn request_target_len(uri: &http::Uri) -> usize {
    let path = uri.path_and_query().map_or(0, |path| path.as_str().len());
    match (uri.scheme_str(), uri.authority()) {
        // Absolute form: `scheme://authority/path?query`.
        (Some(scheme), Some(authority)) => scheme.len() + 3 + authority.as_str().len() + path,
        // Authority form (CONNECT): `host:port`.
        (None, Some(authority)) => authority.as_str().len(),
        _ => path.max(1),
    }
}

fn expectation_failed() -> Response {
    Problem::new(http::StatusCode::EXPECTATION_FAILED)
        .with_detail("the server meets no expectation but `100-continue`")
        .into_response()
}

fn headers_too_large() -> Response {
    Problem::new(http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        .with_detail("the request's header fields are too large or too many")
        .into_response()
}

impl<IO> Connection<IO> {
    /// The same connection over the stream `upgrade` makes of this one (the TLS session on
    /// top of the TCP stream), with the peer identity it found; `None` when it fails.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(super) async fn upgrade<T, F, Fut>(self, upgrade: F) -> Option<Connection<T>>
    where
        F: FnOnce(IO) -> Fut,
        Fut: std::future::Future<Output = Option<(T, Option<PeerIdentity>)>>,
    {
        let Connection {
            stream,
            peer: _,
            remote,
            router,
            protocols,
            body_limit,
            body_pace,
            header_limits,
            tracker,
            permit,
        } = self;
        let (stream, peer) = upgrade(stream).await?;
        Some(Connection {
            stream,
            peer,
            remote,
            router,
            protocols,
            body_limit,
            body_pace,
            header_limits,
            tracker,
            permit,
        })
    }
}

impl<IO: Transport> Connection<IO> {
    pub(super) async fn serve(self) {
        let Connection {
            stream,
            peer,
            remote,
            router,
            protocols,
            body_limit,
            body_pace,
            header_limits,
            tracker,
            permit: _permit,
        } = self;
        // Tracked from here, after any TLS handshake: the header read timeout starts now.
        let tracked = tracker.open();
        let activity = tracked.activity();
        let requests = activity.clone();
        let custom_limit = (body_limit != DEFAULT_BODY_LIMIT).then_some(BodyLimit(body_limit));
        let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let in_flight = InFlight::start(&requests, request.version());
            let mut request = request.map(|body| Body::from_connection(body, body_pace));
            RequestContext::arrived(request.extensions_mut(), remote);
            if let Some(peer) = &peer {
                request.extensions_mut().insert(peer.clone());
            }
            if let Some(limit) = custom_limit {
                request.extensions_mut().insert(limit);
            }
            let checked = header_limits.read_fields(&request);
            // Everything answered from here on, refusals included, is in the request's trace.
            let mut trace = ServerTrace::start_in(&mut request, checked.context);
            let answer = {
                // Entered rather than a closure that the request would be moved into.
                let _scope = trace.enter();
                if checked.too_large {
                    RouterFuture::ready(headers_too_large())
                } else if checked.unmet_expectation {
                    RouterFuture::ready(expectation_failed())
                } else {
                    match checked.deadline {
                        None => router.call(request),
                        // No time left: refused before routing, so that no work starts.
                        Some(deadline) if deadline <= Instant::now() => {
                            RouterFuture::ready(deadline_passed())
                        }
                        Some(deadline) => deadline::in_scope(deadline, || router.call(request)),
                    }
                }
            };
            Answering {
                answer: trace.run(Within::new(answer, checked.deadline)),
                _in_flight: in_flight,
            }
        });

        // Which HTTP: peeked at as the first bytes arrive (or the connection is told to close
        // before any did, which leaves nothing to finish).
        let sniffed = std::future::poll_fn(|cx| {
            if let Poll::Ready(sniffed) = stream.poll_http1_only(cx) {
                return Poll::Ready(Some(sniffed));
            }
            match activity.told(cx) {
                Told::Nothing => Poll::Pending,
                Told::Idle | Told::ShutDown => Poll::Ready(None),
            }
        });
        let http1_only = match sniffed.await {
            Some(Ok(Some(http1_only))) => http1_only,
            Some(Ok(None)) | None => return,
            Some(Err(err)) => {
                tracing::debug!(%remote, error = %err, "connection failed before a request");
                return;
            }
        };
        let mut connection = pin!(Serving::new(&protocols, stream, service, http1_only));
        let mut closing = false;
        let ended = std::future::poll_fn(|cx| loop {
            if let Poll::Ready(result) = connection.as_mut().poll(cx) {
                return Poll::Ready(result);
            }
            if closing {
                return Poll::Pending;
            }
            match activity.told(cx) {
                Told::Nothing => return Poll::Pending,
                // A request started since the sweeper passed: not idle after all.
                Told::Idle if !activity.still_idle() => return Poll::Pending,
                // No request ever started: nothing to finish, and a partial head would keep
                // a graceful shutdown waiting.
                Told::Idle if !activity.served() => return Poll::Ready(Ok(())),
                Told::Idle | Told::ShutDown => {
                    closing = true;
                    // Polled again at once: hyper acts on it when polled.
                    connection.as_mut().graceful_shutdown();
                }
            }
        });
        if let Err(err) = ended.await {
            tracing::debug!(%remote, error = %err, "connection ended with an error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{request_target_len, HeaderLimits};
    use crate::deadline::DEADLINE_HEADER;

    #[test]
    fn request_target_length_matches_the_written_form() {
        for target in [
            "/",
            "/user/7?fields=name",
            "*",
            "http://example.com:8080/a?b=c",
            "example.com:443",
        ] {
            let uri: http::Uri = target.parse().unwrap();
            assert_eq!(request_target_len(&uri), uri.to_string().len(), "{target}");
        }
    }

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn one_walk_finds_the_expectation_the_deadline_and_the_trace() {
        let limits = HeaderLimits {
            bytes: 8 * 1024,
            count: 100,
        };
        let request = http::Request::get("/user/7")
            .header("expect", "something-else")
            .header(DEADLINE_HEADER, "250")
            .header("traceparent", PARENT)
            .header("accept", "*/*")
            .body(())
            .unwrap();
        let checked = limits.read_fields(&request);
        assert!(checked.unmet_expectation);
        assert!(checked.deadline.is_some());
        assert!(!checked.too_large);
        assert_eq!(
            checked.context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            checked
                .context
                .parent_id()
                .map(|id| id.to_string())
                .as_deref(),
            Some("00f067aa0ba902b7")
        );

        let tight = HeaderLimits {
            bytes: 64,
            count: 3,
        };
        assert!(tight.read_fields(&request).too_large);
        let plain = http::Request::get("/").body(()).unwrap();
        let checked = limits.read_fields(&plain);
        assert!(!checked.unmet_expectation && checked.deadline.is_none());
        assert_eq!(checked.context.parent_id(), None);
    }
}
