//! The `tracing` layer that turns closed spans into OpenTelemetry span data.

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use opentelemetry::trace::{
    Event as OtelEvent, SpanContext, SpanId as OtelSpanId, SpanKind, Status, TraceFlags,
    TraceId as OtelTraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::batch::SpanSender;
use crate::trace::{SpanId, TraceId};

/// The most events kept on one span; later ones are counted as dropped.
const MAX_EVENTS: usize = 128;

/// A `tracing_subscriber` layer exporting every span it sees over OTLP: see
/// [`layer`](super::layer).
#[derive(Debug, Clone)]
pub struct OtelLayer {
    sender: Option<SpanSender>,
    scope: InstrumentationScope,
}

impl OtelLayer {
    pub(super) fn new(sender: SpanSender) -> Self {
        Self {
            sender: Some(sender),
            scope: InstrumentationScope::builder("microkit")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        }
    }

    pub(super) fn disabled() -> Self {
        Self {
            sender: None,
            scope: InstrumentationScope::builder("microkit").build(),
        }
    }
}

/// A span being recorded.
struct Building {
    name: Cow<'static, str>,
    kind: SpanKind,
    status: Status,
    trace_id: Option<TraceId>,
    span_id: Option<SpanId>,
    parent_id: Option<SpanId>,
    start: SystemTime,
    attributes: Vec<KeyValue>,
    events: SpanEvents,
}

impl Building {
    fn set(&mut self, key: &'static str, value: Value) {
        match self.attributes.iter_mut().find(|kv| kv.key.as_str() == key) {
            Some(existing) => existing.value = value,
            None => self.attributes.push(KeyValue::new(key, value)),
        }
    }
}

/// Reads a span's fields: microkit's ids and `otel.*` fields steer the span, the rest are
/// attributes.
struct Fields<'a>(&'a mut Building);

impl Fields<'_> {
    fn text(&mut self, field: &Field, text: Cow<'_, str>) {
        let building = &mut *self.0;
        match field.name() {
            "otel.name" => building.name = Cow::Owned(text.into_owned()),
            "otel.kind" => building.kind = kind(&text),
            "otel.status_code" if text.eq_ignore_ascii_case("error") => {
                building.status = Status::error("");
            }
            "otel.status_code" => {}
            "trace_id" => building.trace_id = text.parse().ok(),
            "span_id" => building.span_id = text.parse().ok(),
            "parent_span_id" => building.parent_id = text.parse().ok(),
            name => building.set(name, Value::from(text.into_owned())),
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, Cow::Borrowed(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, Cow::Owned(format!("{value:?}")));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.set(field.name(), Value::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.set(field.name(), Value::I64(value as i64));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.set(field.name(), Value::Bool(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.set(field.name(), Value::F64(value));
    }
}

/// An event's fields: its message names it, the rest are attributes.
#[derive(Default)]
struct EventFields {
    message: Option<String>,
    attributes: Vec<KeyValue>,
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_owned()),
            name => self.attributes.push(KeyValue::new(name, value.to_owned())),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.attributes
            .push(KeyValue::new(field.name(), value as i64));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }
}

fn kind(text: &str) -> SpanKind {
    match text {
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        _ => SpanKind::Internal,
    }
}

/// Spans of the exporter's own HTTP client must not become spans to export.
fn is_exporters_own(target: &str) -> bool {
    ["hyper", "h2", "opentelemetry", "tower"]
        .iter()
        .any(|prefix| target.starts_with(prefix))
}

impl<S> Layer<S> for OtelLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if self.sender.is_none() || is_exporters_own(attrs.metadata().target()) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut building = Building {
            name: Cow::Borrowed(attrs.metadata().name()),
            kind: SpanKind::Internal,
            status: Status::Unset,
            trace_id: None,
            span_id: None,
            parent_id: None,
            start: SystemTime::now(),
            attributes: Vec::new(),
            events: SpanEvents::default(),
        };
        attrs.record(&mut Fields(&mut building));
        if building.trace_id.is_none() {
            // Not one of microkit's spans: it belongs to the trace of the span it is in.
            let parent = span.parent().and_then(|parent| {
                let extensions = parent.extensions();
                let parent = extensions.get::<Building>()?;
                Some((parent.trace_id?, parent.span_id?))
            });
            match parent {
                Some((trace_id, parent_id)) => {
                    building.trace_id = Some(trace_id);
                    building.parent_id = Some(parent_id);
                }
                None => building.trace_id = Some(TraceId::random()),
            }
            building.span_id = Some(SpanId::random());
        }
        span.extensions_mut().insert(building);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(building) = extensions.get_mut::<Building>() {
            values.record(&mut Fields(building));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(building) = extensions.get_mut::<Building>() else {
            return;
        };
        if building.events.len() >= MAX_EVENTS {
            building.events.dropped_count += 1;
            return;
        }
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let mut attributes = fields.attributes;
        attributes.push(KeyValue::new(
            "level",
            event.metadata().level().as_str().to_owned(),
        ));
        let name = fields
            .message
            .unwrap_or_else(|| event.metadata().name().to_owned());
        building
            .events
            .events
            .push(OtelEvent::new(name, SystemTime::now(), attributes, 0));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(sender) = &self.sender else { return };
        let Some(span) = ctx.span(&id) else { return };
        let Some(building) = span.extensions_mut().remove::<Building>() else {
            return;
        };
        let (Some(trace_id), Some(span_id)) = (building.trace_id, building.span_id) else {
            return;
        };
        let parent_span_id = building.parent_id.map_or(OtelSpanId::INVALID, |id| {
            OtelSpanId::from_bytes(id.to_bytes())
        });
        sender.send(SpanData {
            span_context: SpanContext::new(
                OtelTraceId::from_bytes(trace_id.to_bytes()),
                OtelSpanId::from_bytes(span_id.to_bytes()),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id,
            // A server's parent is the caller's span, in another process.
            parent_span_is_remote: building.kind == SpanKind::Server
                && building.parent_id.is_some(),
            span_kind: building.kind,
            name: building.name,
            start_time: building.start,
            end_time: SystemTime::now(),
            attributes: building.attributes,
            dropped_attributes_count: 0,
            events: building.events,
            links: SpanLinks::default(),
            status: building.status,
            instrumentation_scope: self.scope.clone(),
        });
    }
}
