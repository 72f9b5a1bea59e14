//! The metrics as OTLP protobuf messages: a [`Sink`] that the same walk as `/metrics` writes
//! to, building one `ResourceMetrics` per [`Metrics`].

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, AggregationTemporality, Exemplar, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::metrics::histogram::HistogramSnapshot;
use crate::metrics::sink::{Family, Kind, Labels, OtelName, Sink};
use crate::metrics::Metrics;

/// Attributes whose values OpenTelemetry's conventions type as integers; the rest are strings.
const INT_ATTRIBUTES: [&str; 1] = ["http.response.status_code"];

/// `metrics` as they are now, under `resource`: counters as monotonic cumulative sums,
/// up-down counters as non-monotonic ones, gauges as gauges, histograms as cumulative
/// explicit-bucket histograms with their exemplars, every cumulative point starting when
/// `metrics` was made.
pub(crate) fn resource_metrics(metrics: &Metrics, resource: Resource) -> ResourceMetrics {
    let mut builder = OtlpBuilder::new(nanos(metrics.created()), nanos(SystemTime::now()));
    metrics.write_to(&mut builder);
    ResourceMetrics {
        resource: Some(resource),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: "microkit".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..Default::default()
            }),
            metrics: builder.finish(),
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

/// Nanoseconds since the Unix epoch.
fn nanos(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

/// The metrics being built, family by family.
struct OtlpBuilder {
    start: u64,
    now: u64,
    metrics: Vec<Metric>,
    /// The family being written is left out over OTLP: its samples are skipped.
    skipping: bool,
}

impl OtlpBuilder {
    fn new(start: u64, now: u64) -> Self {
        Self {
            start,
            now,
            metrics: Vec::new(),
            skipping: true,
        }
    }

    /// The metrics with at least one point: a family nothing was recorded in stays out.
    fn finish(self) -> Vec<Metric> {
        self.metrics
            .into_iter()
            .filter(|metric| match &metric.data {
                Some(metric::Data::Sum(sum)) => !sum.data_points.is_empty(),
                Some(metric::Data::Gauge(gauge)) => !gauge.data_points.is_empty(),
                Some(metric::Data::Histogram(histogram)) => !histogram.data_points.is_empty(),
                _ => false,
            })
            .collect()
    }

    fn current(&mut self) -> Option<&mut metric::Data> {
        if self.skipping {
            return None;
        }
        self.metrics.last_mut()?.data.as_mut()
    }

    fn number(&self, labels: &Labels<'_>, value: number_data_point::Value) -> NumberDataPoint {
        NumberDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano: self.start,
            time_unix_nano: self.now,
            value: Some(value),
            ..Default::default()
        }
    }
}

impl Sink for OtlpBuilder {
    fn family(&mut self, family: &Family) {
        let name = match family.otel {
            OtelName::Omitted => {
                self.skipping = true;
                return;
            }
            OtelName::Convention(name) => name,
            OtelName::Text => family.name,
        };
        self.skipping = false;
        let cumulative = AggregationTemporality::Cumulative as i32;
        let data = match family.kind {
            Kind::Counter | Kind::UpDown => metric::Data::Sum(Sum {
                data_points: Vec::new(),
                aggregation_temporality: cumulative,
                is_monotonic: family.kind == Kind::Counter,
            }),
            Kind::Gauge => metric::Data::Gauge(Gauge {
                data_points: Vec::new(),
            }),
            Kind::Histogram => metric::Data::Histogram(Histogram {
                data_points: Vec::new(),
                aggregation_temporality: cumulative,
            }),
        };
        self.metrics.push(Metric {
            name: name.to_owned(),
            description: family.help.to_owned(),
            unit: family.unit.to_owned(),
            data: Some(data),
            ..Default::default()
        });
    }

    fn counter(&mut self, labels: &Labels<'_>, value: u64) {
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        let point = self.number(labels, number_data_point::Value::AsInt(value));
        if let Some(metric::Data::Sum(sum)) = self.current() {
            sum.data_points.push(point);
        }
    }

    fn gauge(&mut self, labels: &Labels<'_>, value: f64) {
        let mut point = self.number(labels, number_data_point::Value::AsDouble(value));
        match self.current() {
            // An up-down counter counts things: whole numbers, sent as such.
            Some(metric::Data::Sum(sum)) => {
                point.value = Some(number_data_point::Value::AsInt(value as i64));
                sum.data_points.push(point);
            }
            Some(metric::Data::Gauge(gauge)) => {
                // A gauge is a reading at one time, not a total since a start.
                point.start_time_unix_nano = 0;
                gauge.data_points.push(point);
            }
            _ => {}
        }
    }

    fn histogram(&mut self, labels: &Labels<'_>, snapshot: &HistogramSnapshot) {
        let (start, now) = (self.start, self.now);
        if let Some(metric::Data::Histogram(histogram)) = self.current() {
            histogram
                .data_points
                .push(histogram_point(labels, snapshot, start, now));
        }
    }
}

/// One histogram series: OTLP counts each bucket on its own (`bounds.len() + 1` of them, the
/// last above every bound) where the snapshot, as Prometheus, counts cumulatively.
fn histogram_point(
    labels: &Labels<'_>,
    snapshot: &HistogramSnapshot,
    start: u64,
    now: u64,
) -> HistogramDataPoint {
    let explicit_bounds = snapshot
        .buckets
        .iter()
        .map(|&(bound, _)| bound)
        .filter(|bound| bound.is_finite())
        .collect();
    let mut below = 0;
    let bucket_counts = snapshot
        .buckets
        .iter()
        .map(|&(_, cumulative)| {
            // Buckets are read one by one while requests go on: never count below zero.
            let count = cumulative.saturating_sub(below);
            below = below.max(cumulative);
            count
        })
        .collect();
    let exemplars = snapshot
        .exemplars
        .iter()
        .flatten()
        .map(|exemplar| Exemplar {
            time_unix_nano: (exemplar.timestamp * 1e9) as u64,
            trace_id: exemplar.trace_id.to_bytes().to_vec(),
            span_id: exemplar.span_id.to_bytes().to_vec(),
            value: Some(exemplar::Value::AsDouble(exemplar.value)),
            ..Default::default()
        })
        .collect();
    HistogramDataPoint {
        attributes: attributes(labels),
        start_time_unix_nano: start,
        time_unix_nano: now,
        count: snapshot.count,
        sum: Some(snapshot.sum),
        bucket_counts,
        explicit_bounds,
        exemplars,
        ..Default::default()
    }
}

fn attributes(labels: &Labels<'_>) -> Vec<KeyValue> {
    labels
        .iter()
        .map(|&(key, value)| {
            let number = INT_ATTRIBUTES
                .contains(&key)
                .then(|| value.parse::<i64>().ok())
                .flatten();
            let value = match number {
                Some(number) => any_value::Value::IntValue(number),
                None => any_value::Value::StringValue(value.to_owned()),
            };
            KeyValue {
                key: key.to_owned(),
                value: Some(AnyValue { value: Some(value) }),
                ..Default::default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::metrics::histogram::{Histogram as Recorded, OTEL_DURATION_BOUNDS};
    use crate::metrics::{MetricsLayer, SpanId, TraceId};
    use crate::router::get;
    use crate::{Body, Request, Router};

    fn text(attributes: &[KeyValue], key: &str) -> Option<any_value::Value> {
        attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone()?.value)
    }

    #[test]
    fn cumulative_buckets_become_counts_per_bucket() {
        let histogram = Recorded::new(&OTEL_DURATION_BOUNDS);
        let trace = (
            TraceId::from_bytes([7; 16]).unwrap(),
            SpanId::from_bytes([8; 8]).unwrap(),
        );
        for millis in [1, 3, 8, 8, 60, 20_000] {
            histogram.observe(Duration::from_millis(millis), Some(trace));
        }
        let point = histogram_point(&[], &histogram.snapshot(), 10, 20);
        assert_eq!(point.explicit_bounds, OTEL_DURATION_BOUNDS.to_vec());
        assert_eq!(point.bucket_counts.len(), OTEL_DURATION_BOUNDS.len() + 1);
        // (0, 5 ms]: 2; (5, 10 ms]: 2; (50, 75 ms]: 1; above 10 s: 1.
        let mut expected = vec![0; OTEL_DURATION_BOUNDS.len() + 1];
        expected[0] = 2;
        expected[1] = 2;
        expected[4] = 1;
        expected[OTEL_DURATION_BOUNDS.len()] = 1;
        assert_eq!(point.bucket_counts, expected);
        assert_eq!(point.count, 6);
        assert_eq!(point.bucket_counts.iter().sum::<u64>(), point.count);
        assert!((point.sum.unwrap() - 20.08).abs() < 1e-9);
        assert_eq!((point.start_time_unix_nano, point.time_unix_nano), (10, 20));
        assert_eq!(point.exemplars.len(), 4, "one per bucket that saw a trace");
        assert!(point
            .exemplars
            .iter()
            .all(|e| e.trace_id == vec![7; 16] && e.span_id == vec![8; 8]));
    }

    #[tokio::test]
    async fn families_carry_the_conventions_names_units_and_attribute_types() {
        let metrics = Arc::new(Metrics::new());
        let service = Router::new()
            .route("/user/{id}", get(|| async { "user" }))
            .layer(MetricsLayer::new(metrics.clone()))
            .into_service();
        for path in ["/user/1", "/user/2"] {
            service
                .call(Request::get(path).body(Body::empty()).unwrap())
                .await;
        }
        let exported = resource_metrics(&metrics, Resource::default());
        let scope = &exported.scope_metrics[0];
        assert_eq!(scope.scope.as_ref().unwrap().name, "microkit");
        let named = |name: &str| scope.metrics.iter().find(|metric| metric.name == name);
        let duration = named("http.server.request.duration").expect("the server histogram");
        assert_eq!(duration.unit, "s");
        let Some(metric::Data::Histogram(histogram)) = &duration.data else {
            panic!("{duration:?}")
        };
        assert_eq!(
            histogram.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let point = &histogram.data_points[0];
        assert_eq!(point.count, 2);
        let attributes = &point.attributes;
        assert_eq!(
            text(attributes, "http.route"),
            Some(any_value::Value::StringValue("/user/{id}".into()))
        );
        assert_eq!(
            text(attributes, "http.request.method"),
            Some(any_value::Value::StringValue("GET".into()))
        );
        assert_eq!(
            text(attributes, "http.response.status_code"),
            Some(any_value::Value::IntValue(200))
        );
        assert!(point.start_time_unix_nano <= point.time_unix_nano);
        assert!(point.start_time_unix_nano > 0);

        let active = named("http.server.active_requests").expect("active requests");
        assert_eq!(active.unit, "{request}");
        let Some(metric::Data::Sum(sum)) = &active.data else {
            panic!("{active:?}")
        };
        assert!(!sum.is_monotonic, "an up-down counter");
        assert_eq!(
            sum.data_points[0].value,
            Some(number_data_point::Value::AsInt(0))
        );

        let rejections = named("http_server_rejections").expect("a family of microkit's own");
        let Some(metric::Data::Sum(sum)) = &rejections.data else {
            panic!("{rejections:?}")
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            text(&sum.data_points[0].attributes, "reason"),
            Some(any_value::Value::StringValue("body_limit".into()))
        );
        // The histogram's count under its older name is not sent twice; families with no
        // series (no client, no store here) are not sent at all.
        assert!(named("http_requests").is_none());
        assert!(named("client_call_duration_seconds").is_none());
        assert!(named("db.client.operation.duration").is_none());
    }

    #[test]
    fn store_operations_use_the_database_conventions() {
        let metrics = Metrics::new();
        metrics.store().system("sqlite").record(
            "users",
            crate::metrics::StoreOperation::Get,
            Some(crate::metrics::StoreErrorType::CANCELLED),
            Duration::from_millis(3),
        );
        let exported = resource_metrics(&metrics, Resource::default());
        let metric = exported.scope_metrics[0]
            .metrics
            .iter()
            .find(|metric| metric.name == "db.client.operation.duration")
            .expect("the store histogram");
        let Some(metric::Data::Histogram(histogram)) = &metric.data else {
            panic!("{metric:?}")
        };
        let attributes = &histogram.data_points[0].attributes;
        let string = |value: &str| Some(any_value::Value::StringValue(value.into()));
        assert_eq!(text(attributes, "db.system.name"), string("sqlite"));
        assert_eq!(text(attributes, "db.collection.name"), string("users"));
        assert_eq!(text(attributes, "db.operation.name"), string("get"));
        assert_eq!(text(attributes, "error.type"), string("cancelled"));
    }
}
