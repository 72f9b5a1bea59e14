//! The `otel` feature end to end: the shop runs in this process with the OTLP layer
//! installed, configured only by `OTEL_*` variables, and exports to a real OTLP/HTTP receiver
//! on 127.0.0.1 (a hyper server decoding the protobuf export). A registration traced at the
//! gateway arrives there as one trace, every span with the ids that went over the wire; the
//! shop's metrics exporter then sends every service's metrics there, each under its own name.
//!
//! `cargo test --features otel --test trace_otel`
#![cfg(feature = "otel")]

use microkit_test_support as support;

#[path = "common/otlp_receiver.rs"]
mod otlp_receiver;
#[path = "../examples/shop/main.rs"]
#[allow(dead_code)]
mod shop;
#[path = "common/traced_shop.rs"]
mod traced_shop;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use microkit::http::StatusCode;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{metric, Metric};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What the receiver got: each export's service name and spans.
type Received = Arc<Mutex<Vec<(String, Span)>>>;
/// The metrics exports the receiver got.
type MetricExports = Arc<Mutex<Vec<ExportMetricsServiceRequest>>>;

/// An OTLP/HTTP receiver: `POST /v1/traces` and `/v1/metrics` with `application/x-protobuf`,
/// as a collector takes them. Anything else is a 400 (and fails the test through the
/// exporter's log).
async fn receiver() -> (SocketAddr, Received, MetricExports) {
    let received = Received::default();
    let metric_exports = MetricExports::default();
    let (spans, metrics) = (received.clone(), metric_exports.clone());
    let addr = otlp_receiver::start(move |head, body| {
        if otlp_receiver::is_export(&head, "/v1/metrics") {
            return match ExportMetricsServiceRequest::decode(body) {
                Ok(export) => {
                    metrics.lock().unwrap().push(export);
                    (200, ExportMetricsServiceResponse::default().encode_to_vec())
                }
                Err(_) => (400, Vec::new()),
            };
        }
        match ExportTraceServiceRequest::decode(body) {
            Ok(export) if otlp_receiver::is_export(&head, "/v1/traces") => {
                let mut store = spans.lock().unwrap();
                for resource in export.resource_spans {
                    let service = resource
                        .resource
                        .map(|resource| text(&resource.attributes, "service.name"))
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            store.push((service.clone(), span));
                        }
                    }
                }
                (200, ExportTraceServiceResponse::default().encode_to_vec())
            }
            _ => (400, Vec::new()),
        }
    })
    .await;
    (addr, received, metric_exports)
}

/// A string attribute, or `""`.
fn text(attributes: &[KeyValue], key: &str) -> String {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(text) => Some(text.clone()),
            any_value::Value::IntValue(number) => Some(number.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The one span of `kind` whose parent is `parent` (and that passes `also`).
fn child<'a>(
    spans: &'a [Span],
    kind: SpanKind,
    parent: &str,
    also: impl Fn(&Span) -> bool,
) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|span| {
            span.kind == kind as i32 && hex(&span.parent_span_id) == parent && also(span)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {kind:?} span under {parent} in {spans:#?}"
    );
    found[0]
}

use traced_shop::{registration, InProcessShop, CALLER_SPAN, TRACE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_reaches_an_otlp_receiver_as_one_trace_with_the_wire_ids() {
    let (collector, received, metric_exports) = receiver().await;
    // Before any other thread of this test binary reads the environment.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"));
    std::env::set_var("OTEL_SERVICE_NAME", "shop-under-test");
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "200");
    let (otel, exporter) = microkit::trace::otel::layer().expect("the exporter is set up");
    tracing_subscriber::registry().with(otel).init();

    let shop = InProcessShop::start().await;
    let gateway = shop.gateway;
    let port_of = |name: &str| shop.port_of(name);

    let request = registration("Grace", "grace@example.com");
    let reply = support::send(gateway, request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());

    // The spans close as their answers go out; the scheduled export (200 ms) or a flush
    // brings them to the receiver.
    let started = Instant::now();
    let spans: Vec<Span> = loop {
        exporter.flush().await;
        let spans: Vec<Span> = received
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, span)| hex(&span.trace_id) == TRACE)
            .map(|(_, span)| span.clone())
            .collect();
        let servers = spans
            .iter()
            .filter(|span| span.kind == SpanKind::Server as i32)
            .count();
        // Every attempt's request arrived (users also calls stats, on a task of its own).
        let answered = spans
            .iter()
            .filter(|span| span.kind == SpanKind::Client as i32)
            .all(|attempt| {
                spans.iter().any(|span| {
                    span.kind == SpanKind::Server as i32 && span.parent_span_id == attempt.span_id
                })
            });
        if servers >= 4 && answered && spans.iter().any(|span| span.name == "POST /send_email/") {
            break spans;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the receiver never got the whole trace: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(received
        .lock()
        .unwrap()
        .iter()
        .all(|(service, _)| service == "shop-under-test"));

    let at_gateway = child(&spans, SpanKind::Server, CALLER_SPAN, |_| true);
    assert_eq!(text(&at_gateway.attributes, "http.request.method"), "POST");
    assert_eq!(
        text(&at_gateway.attributes, "http.response.status_code"),
        "201"
    );
    let call = child(
        &spans,
        SpanKind::Internal,
        &hex(&at_gateway.span_id),
        |_| true,
    );
    assert_eq!(call.name, "POST users");
    let attempt = child(&spans, SpanKind::Client, &hex(&call.span_id), |_| true);
    assert_eq!(text(&attempt.attributes, "server.port"), port_of("users"));
    let at_users = child(&spans, SpanKind::Server, &hex(&attempt.span_id), |_| true);
    assert_eq!(at_users.name, "POST /user/");
    assert_eq!(text(&at_users.attributes, "http.route"), "/user/");
    let call = child(
        &spans,
        SpanKind::Internal,
        &hex(&at_users.span_id),
        |span| span.name == "POST emails",
    );
    let attempt = child(&spans, SpanKind::Client, &hex(&call.span_id), |_| true);
    let at_emails = child(&spans, SpanKind::Server, &hex(&attempt.span_id), |_| true);
    assert_eq!(at_emails.name, "POST /send_email/");
    assert_eq!(
        text(&at_emails.attributes, "server.port"),
        port_of("emails")
    );
    assert!(at_emails.start_time_unix_nano >= attempt.start_time_unix_nano);
    assert!(at_emails.end_time_unix_nano >= at_emails.start_time_unix_nano);

    // The shop's metrics exporter: every service's metrics, each under its own name.
    let metrics = shop::telemetry::metrics_exporter(&shop.shop.metrics)
        .expect("the metrics exporter is set up")
        .expect("a collector is named");
    metrics.flush().await;
    let export = metric_exports
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("a metrics export");
    let of = |service: &str| {
        let found = export.resource_metrics.iter().find(|resource| {
            let attributes = &resource.resource.as_ref().unwrap().attributes;
            text(attributes, "service.name") == service
        });
        let resource = found.unwrap_or_else(|| panic!("no metrics of {service}"));
        let attributes = &resource.resource.as_ref().unwrap().attributes;
        let instance = text(attributes, "service.instance.id");
        let metrics: Vec<Metric> = resource
            .scope_metrics
            .iter()
            .flat_map(|scope| scope.metrics.clone())
            .collect();
        (instance, metrics)
    };
    let points = |metrics: &[Metric], name: &str| -> Vec<Vec<KeyValue>> {
        let metric = metrics.iter().find(|metric| metric.name == name);
        match metric.and_then(|metric| metric.data.as_ref()) {
            Some(metric::Data::Histogram(histogram)) => histogram
                .data_points
                .iter()
                .map(|point| point.attributes.clone())
                .collect(),
            Some(metric::Data::Sum(sum)) => sum
                .data_points
                .iter()
                .map(|point| point.attributes.clone())
                .collect(),
            _ => Vec::new(),
        }
    };
    for service in ["gateway", "users", "emails"] {
        let (instance, metrics) = of(service);
        assert!(
            instance.ends_with(&format!(":{}", port_of(service))),
            "{instance}"
        );
        let served = points(&metrics, "http.server.request.duration");
        let posted = served
            .iter()
            .any(|attributes| text(attributes, "http.request.method") == "POST");
        assert!(posted, "{service}: {served:?}");
    }
    let (_, users) = of("users");
    let created = points(&users, "db.client.operation.duration")
        .iter()
        .any(|attributes| text(attributes, "db.operation.name") == "create");
    assert!(created, "users' store: {users:?}");
    let (_, gateway) = of("gateway");
    let called = points(&gateway, "client_calls").iter().any(|attributes| {
        text(attributes, "service") == "users" && text(attributes, "outcome") == "success"
    });
    assert!(called, "the gateway's calls: {gateway:?}");

    shop.shop.stop().await.expect("the shop stops cleanly");
    metrics.shutdown().await;
    exporter.shutdown().await;
}
