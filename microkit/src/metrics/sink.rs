//! What the walks over the metrics write to: a family, then its samples. The text formats
//! ([`Exposition`](super::exposition::Exposition)) and, with the `otel` feature, the OTLP export
//! read the same walk, so a metric is described once for both.

use super::histogram::HistogramSnapshot;

/// The kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only ever grows (a monotonic sum on OTLP).
    Counter,
    /// A value read now (a gauge everywhere).
    Gauge,
    /// A count of things that come and go, as OpenTelemetry's UpDownCounter: a gauge in the
    /// text formats, a non-monotonic sum on OTLP.
    UpDown,
    /// Durations over fixed buckets.
    Histogram,
}

/// How a family is named over OTLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OtelName {
    /// OpenTelemetry's semantic conventions name it (`http.server.request.duration`); its
    /// labels are named by the conventions too.
    Convention(&'static str),
    /// No convention names it: it keeps its text name.
    Text,
    /// Another family already says it (a histogram's count under an older name): left out.
    Omitted,
}

/// A metric family: what every sample after it belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Family {
    /// The name in the text formats; a counter's omits `_total`, which its samples carry.
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) help: &'static str,
    /// UCUM, as OpenTelemetry writes units: `s`, `{request}`, `{connection}`.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) unit: &'static str,
    pub(crate) otel: OtelName,
}

impl Family {
    /// A family named only by its text name.
    pub(crate) const fn new(
        name: &'static str,
        kind: Kind,
        unit: &'static str,
        help: &'static str,
    ) -> Self {
        Self {
            name,
            kind,
            help,
            unit,
            otel: OtelName::Text,
        }
    }

    /// The family's name over OTLP.
    pub(crate) const fn otel(mut self, otel: OtelName) -> Self {
        self.otel = otel;
        self
    }
}

/// Labels as `(name, value)`. Names are written as OpenTelemetry spells them
/// (`http.response.status_code`); the text formats make the dots underscores, as
/// OpenTelemetry's Prometheus exporter does.
pub(crate) type Labels<'a> = [(&'a str, &'a str)];

/// Where a walk over the metrics writes: a family, then its samples, family after family.
pub(crate) trait Sink {
    /// Starts a family: the samples that follow belong to it.
    fn family(&mut self, family: &Family);
    /// A counter's value.
    fn counter(&mut self, labels: &Labels<'_>, value: u64);
    /// A gauge's (or an up-down counter's) value.
    fn gauge(&mut self, labels: &Labels<'_>, value: f64);
    /// One histogram series.
    fn histogram(&mut self, labels: &Labels<'_>, snapshot: &HistogramSnapshot);
}
