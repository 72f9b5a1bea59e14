//! Trace context end to end, seen through an in-test `tracing` subscriber: a trace started at
//! the gateway reaches users and then emails with the same trace id and the right parents; a
//! retried call shows its attempts under one call span; malformed `traceparent` values start
//! a new trace and are answered all the same; problems and log lines carry the trace id.

use microkit_test_support as support;

#[path = "../examples/shop/main.rs"]
#[allow(dead_code)]
mod shop;
#[path = "common/traced_shop.rs"]
mod traced_shop;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use microkit::client::ServiceClient;
use microkit::discovery::{Instance, MemoryRegistry, Registry};
use microkit::http::{Method, StatusCode};
use microkit::middleware::RequestIdLayer;
use microkit::router::get;
use microkit::trace::{TraceContext, TRACEPARENT, TRACESTATE};
use microkit::{Problem, Router, ServerConfig};
use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

// The in-test subscriber: every closed span and every event, with their fields as text.

/// A closed span.
#[derive(Debug, Clone)]
struct SpanRecord {
    name: &'static str,
    fields: HashMap<String, String>,
}

impl SpanRecord {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

/// An event, with the trace id of the innermost span around it that has one.
#[derive(Debug, Clone)]
struct EventRecord {
    message: String,
    trace_id: String,
}

#[derive(Default)]
struct Recorded {
    spans: Vec<SpanRecord>,
    events: Vec<EventRecord>,
}

#[derive(Default)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

struct Collect(Arc<Mutex<Recorded>>);

impl<S> Layer<S> for Collect
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let trace_id = ctx
            .event_scope(event)
            .into_iter()
            .flatten()
            .find_map(|span| {
                span.extensions()
                    .get::<Fields>()?
                    .0
                    .get("trace_id")
                    .cloned()
            })
            .unwrap_or_default();
        let message = fields.0.remove("message").unwrap_or_default();
        self.0
            .lock()
            .unwrap()
            .events
            .push(EventRecord { message, trace_id });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let fields = span
            .extensions_mut()
            .remove::<Fields>()
            .unwrap_or_default()
            .0;
        self.0.lock().unwrap().spans.push(SpanRecord {
            name: span.name(),
            fields,
        });
    }
}

/// The spans and events recorded since the test binary started (one global subscriber: the
/// services' tasks run on every worker thread). Tests tell theirs apart by trace id.
fn recorded() -> &'static Arc<Mutex<Recorded>> {
    static RECORDED: OnceLock<Arc<Mutex<Recorded>>> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let subscriber = tracing_subscriber::registry().with(Collect(recorded.clone()));
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        recorded
    })
}

/// The closed spans of `trace_id`, once `ready` holds for them (spans close a moment after
/// their answers are sent), within five seconds.
async fn spans_of(trace_id: &str, ready: impl Fn(&[SpanRecord]) -> bool) -> Vec<SpanRecord> {
    let started = Instant::now();
    loop {
        let spans: Vec<SpanRecord> = recorded()
            .lock()
            .unwrap()
            .spans
            .iter()
            .filter(|span| span.field("trace_id") == trace_id)
            .cloned()
            .collect();
        if ready(&spans) {
            return spans;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the spans of {trace_id} never completed: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The one span named `name` whose parent is `parent` (and that passes `also`).
fn child<'a>(
    spans: &'a [SpanRecord],
    name: &str,
    parent: &str,
    also: impl Fn(&SpanRecord) -> bool,
) -> &'a SpanRecord {
    let found: Vec<&SpanRecord> = spans
        .iter()
        .filter(|span| span.name == name && span.field("parent_span_id") == parent && also(span))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {name} span under {parent} in {spans:#?}"
    );
    found[0]
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

use traced_shop::{registration, InProcessShop, CALLER_SPAN, TRACE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_traced_at_the_gateway_reaches_users_then_emails_in_one_trace() {
    recorded();
    let shop = InProcessShop::start().await;
    let gateway = shop.gateway;
    let port_of = |name: &str| shop.port_of(name);

    let mut request = registration("Ada", "ada@example.com");
    let headers = request.headers_mut();
    headers.insert(TRACESTATE, support::value("congo=t61rcWkgMzE"));
    headers.insert("x-request-id", support::value("registration-7"));
    let reply = support::send(gateway, request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());

    // gateway request -> call users -> attempt -> users request -> call emails -> attempt
    // -> emails request (and users -> stats), every span in the caller's trace.
    let spans = spans_of(TRACE, |spans| {
        spans
            .iter()
            .any(|span| span.name == "request" && span.field("http.route") == "/send_email/")
            && spans.iter().filter(|span| span.name == "request").count() >= 4
    })
    .await;
    let at_gateway = child(&spans, "request", CALLER_SPAN, |_| true);
    assert_eq!(at_gateway.field("http.request.method"), "POST");
    assert_eq!(at_gateway.field("url.path"), "/user/");
    assert_eq!(at_gateway.field("http.response.status_code"), "201");
    // From the `Host` the client sent.
    assert_eq!(at_gateway.field("server.address"), "localhost");
    assert_eq!(at_gateway.field("client.address"), "127.0.0.1");
    assert_eq!(at_gateway.field("request_id"), "registration-7");
    assert!(is_hex(at_gateway.field("span_id"), 16));

    let call_users = child(&spans, "call", at_gateway.field("span_id"), |_| true);
    assert_eq!(call_users.field("peer.service"), "users");
    assert_eq!(call_users.field("otel.name"), "POST users");
    let attempt = child(&spans, "attempt", call_users.field("span_id"), |_| true);
    assert_eq!(attempt.field("server.port"), port_of("users"));
    assert_eq!(attempt.field("http.response.status_code"), "201");

    let at_users = child(&spans, "request", attempt.field("span_id"), |_| true);
    assert_eq!(at_users.field("server.port"), port_of("users"));
    assert_eq!(at_users.field("http.route"), "/user/");
    assert_eq!(at_users.field("otel.name"), "POST /user/");
    assert_eq!(at_users.field("otel.kind"), "server");
    assert_eq!(at_users.field("http.response.status_code"), "201");
    assert_eq!(at_users.field("request_id"), "registration-7");

    let call_emails = child(&spans, "call", at_users.field("span_id"), |span| {
        span.field("peer.service") == "emails"
    });
    let attempt = child(&spans, "attempt", call_emails.field("span_id"), |_| true);
    let at_emails = child(&spans, "request", attempt.field("span_id"), |_| true);
    assert_eq!(at_emails.field("server.port"), port_of("emails"));
    assert_eq!(at_emails.field("otel.name"), "POST /send_email/");
    assert_eq!(at_emails.field("request_id"), "registration-7");

    // The action users records on a task of its own stays in the trace too.
    let call_stats = child(&spans, "call", at_users.field("span_id"), |span| {
        span.field("peer.service") == "stats"
    });
    let attempt = child(&spans, "attempt", call_stats.field("span_id"), |_| true);
    let at_stats = child(&spans, "request", attempt.field("span_id"), |_| true);
    assert_eq!(at_stats.field("server.port"), port_of("stats"));
    assert_eq!(at_stats.field("request_id"), "registration-7");

    // A problem answered in the trace names it.
    let mut request = support::request(Method::GET, "/user/424242", Bytes::new());
    request.headers_mut().insert(
        TRACEPARENT,
        support::value("00-0af7651916cd43dd8448eb211c80319d-b7ad6b7169203331-01"),
    );
    let reply = support::send(gateway, request).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["trace_id"], "0af7651916cd43dd8448eb211c80319d");

    shop.shop.stop().await.expect("the shop stops cleanly");
}

/// Serves `router` behind a request id; its spans are found by the id a test sends.
async fn serve(router: Router) -> support::TestServer {
    support::spawn(router.layer(RequestIdLayer::new()), ServerConfig::default()).await
}

async fn trace_id_text() -> String {
    microkit::trace::current_trace_id()
        .map(|id| id.to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn malformed_traceparents_start_a_new_trace_and_the_request_still_succeeds() {
    recorded();
    let server = serve(Router::new().route("/trace", get(trace_id_text))).await;
    let given = "4bf92f3577b34da6a3ce929d0e0e4736";
    let malformed = [
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7 01",
        "garbage",
        "",
    ];
    for (n, value) in malformed.into_iter().enumerate() {
        let request_id = format!("malformed-{n}");
        let mut request = support::request(Method::GET, "/trace", Bytes::new());
        request.headers_mut().insert(
            TRACEPARENT,
            microkit::http::HeaderValue::from_str(value).unwrap(),
        );
        request.headers_mut().insert(
            "x-request-id",
            microkit::http::HeaderValue::from_str(&request_id).unwrap(),
        );
        let reply = support::send(server.addr, request).await;
        assert_eq!(reply.status, StatusCode::OK, "{value:?}");
        let trace_id = reply.text();
        assert!(is_hex(&trace_id, 32), "{value:?} gave {trace_id:?}");
        assert!(!trace_id.eq_ignore_ascii_case(given), "{value:?} was kept");
        let spans = spans_of(&trace_id, |spans| !spans.is_empty()).await;
        let span = &spans[0];
        assert_eq!(span.field("request_id"), request_id);
        assert_eq!(span.field("parent_span_id"), "", "{value:?} named a parent");
    }

    let mut request = support::request(Method::GET, "/trace", Bytes::new());
    request.headers_mut().insert(
        TRACEPARENT,
        support::value("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    let reply = support::send(server.addr, request).await;
    assert_eq!(reply.text(), given);
    server.stop().await;
}

#[tokio::test]
async fn problems_and_log_lines_carry_the_trace_id() {
    recorded();
    async fn failing() -> Problem {
        tracing::warn!("the inventory is unreachable");
        Problem::internal("the inventory failed").with_cause("inventory timed out")
    }
    let server = serve(Router::new().route("/fail", get(failing))).await;
    let reply = support::get(server.addr, "/fail").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let trace_id = reply.json()["trace_id"].as_str().unwrap().to_owned();
    assert!(is_hex(&trace_id, 32));
    // Also the answers the router and the server give themselves.
    let reply = support::get(server.addr, "/nowhere").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(is_hex(reply.json()["trace_id"].as_str().unwrap(), 32));
    let reply = support::send(server.addr, support::request(Method::DELETE, "/fail", "")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(is_hex(reply.json()["trace_id"].as_str().unwrap(), 32));

    let events = recorded().lock().unwrap().events.clone();
    for message in [
        "the inventory is unreachable",
        "answered with a server error",
    ] {
        assert!(
            events
                .iter()
                .any(|event| event.message.contains(message) && event.trace_id == trace_id),
            "no {message:?} line in trace {trace_id}: {events:#?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_retried_call_shows_two_attempt_spans_under_one_call_span() {
    recorded();
    // Whichever instance is asked first fails with 503; every later request succeeds.
    let asked = Arc::new(AtomicUsize::new(0));
    let flaky = {
        let asked = asked.clone();
        move || {
            let asked = asked.clone();
            async move {
                if asked.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE))
                } else {
                    Ok(microkit::Json(json!({ "ok": true })))
                }
            }
        }
    };
    let first = serve(Router::new().route("/thing", get(flaky.clone()))).await;
    let second = serve(Router::new().route("/thing", get(flaky))).await;
    let registry = MemoryRegistry::new();
    let _one = registry
        .register(Instance::new("flaky", first.addr))
        .await
        .unwrap();
    let _two = registry
        .register(Instance::new("flaky", second.addr))
        .await
        .unwrap();
    let client = ServiceClient::new(registry);

    let mut headers = microkit::http::HeaderMap::new();
    headers.insert(
        TRACEPARENT,
        support::value("00-11111111111111111111111111111111-2222222222222222-01"),
    );
    let context = TraceContext::from_headers(&headers);
    let parent = context.span_id().to_string();
    let answer: Value = microkit::trace::scope(context, client.get_json("flaky", "/thing"))
        .await
        .expect("the retry succeeds");
    assert_eq!(answer["ok"], true);
    assert_eq!(asked.load(Ordering::SeqCst), 2);

    let spans = spans_of("11111111111111111111111111111111", |spans| {
        spans.iter().filter(|span| span.name == "request").count() == 2
            && spans.iter().any(|span| span.name == "call")
    })
    .await;
    let call = child(&spans, "call", &parent, |_| true);
    assert_eq!(call.field("attempts"), "2");
    assert_eq!(call.field("http.response.status_code"), "200");
    let failed = child(&spans, "attempt", call.field("span_id"), |span| {
        span.field("http.request.resend_count").is_empty()
    });
    assert_eq!(failed.field("http.response.status_code"), "503");
    assert_eq!(failed.field("error.type"), "503");
    let retried = child(&spans, "attempt", call.field("span_id"), |span| {
        span.field("http.request.resend_count") == "1"
    });
    assert_eq!(retried.field("http.response.status_code"), "200");
    assert_ne!(failed.field("server.port"), retried.field("server.port"));
    // Each attempt is the parent of the request it made.
    for attempt in [failed, retried] {
        let served = child(&spans, "request", attempt.field("span_id"), |_| true);
        assert_eq!(served.field("server.port"), attempt.field("server.port"));
    }
    first.stop().await;
    second.stop().await;
}
