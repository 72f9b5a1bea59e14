//! Writing metrics as text: Prometheus' format (0.0.4), or OpenMetrics 1.0 when the scraper
//! asks for it, which alone carries exemplars.

use std::fmt::Write as _;

use http::header::ACCEPT;
use http::HeaderMap;

use super::histogram::HistogramSnapshot;
use super::sink::{Family, Kind, Labels, Sink};

/// `Content-Type` of Prometheus' text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// `Content-Type` of OpenMetrics' text format.
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A text format for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus' text format, version 0.0.4: what every scraper reads.
    Prometheus,
    /// OpenMetrics 1.0 text: with exemplars (the trace of a request in each histogram
    /// bucket).
    OpenMetrics,
}

impl Format {
    /// The format a scraper asks for in its `Accept` header: OpenMetrics when it lists
    /// `application/openmetrics-text` with a higher (or equal, and earlier) preference than
    /// `text/plain`, Prometheus' text otherwise.
    pub fn negotiate(headers: &HeaderMap) -> Self {
        let mut best: Option<(f32, Self)> = None;
        for value in headers.get_all(ACCEPT) {
            let Ok(value) = value.to_str() else { continue };
            for range in value.split(',') {
                let mut params = range.split(';');
                let media = params.next().unwrap_or_default().trim();
                let format = if media.eq_ignore_ascii_case("application/openmetrics-text") {
                    Self::OpenMetrics
                } else if media.eq_ignore_ascii_case("text/plain")
                    || media == "*/*"
                    || media.eq_ignore_ascii_case("text/*")
                {
                    Self::Prometheus
                } else {
                    continue;
                };
                let quality = params
                    .filter_map(|param| param.trim().split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                    .and_then(|(_, q)| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
                    best = Some((quality, format));
                }
            }
        }
        best.map_or(Self::Prometheus, |(_, format)| format)
    }

    /// The `Content-Type` of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => PROMETHEUS_TEXT,
            Self::OpenMetrics => OPENMETRICS_TEXT,
        }
    }
}

/// Text being written in one format.
pub(crate) struct Exposition {
    format: Format,
    text: String,
    /// The family the samples being written belong to.
    family: &'static str,
}

impl Exposition {
    pub(crate) fn new(format: Format) -> Self {
        Self {
            format,
            text: String::with_capacity(16 * 1024),
            family: "",
        }
    }
}

impl Sink for Exposition {
    fn family(&mut self, family: &Family) {
        let (kind_name, suffix) = match family.kind {
            Kind::Counter => ("counter", "_total"),
            Kind::Gauge | Kind::UpDown => ("gauge", ""),
            Kind::Histogram => ("histogram", ""),
        };
        // OpenMetrics names the family; Prometheus' format names the sample.
        let suffix = match self.format {
            Format::OpenMetrics => "",
            Format::Prometheus => suffix,
        };
        let (name, help) = (family.name, family.help);
        let _ = writeln!(self.text, "# HELP {name}{suffix} {help}");
        let _ = writeln!(self.text, "# TYPE {name}{suffix} {kind_name}");
        self.family = name;
    }

    fn counter(&mut self, labels: &Labels<'_>, value: u64) {
        self.sample("_total", labels, None, Value::Int(value));
    }

    fn gauge(&mut self, labels: &Labels<'_>, value: f64) {
        self.sample("", labels, None, Value::Float(value));
    }

    /// Buckets (with exemplars in OpenMetrics), count and sum.
    fn histogram(&mut self, labels: &Labels<'_>, snapshot: &HistogramSnapshot) {
        for (index, &(bound, count)) in snapshot.buckets.iter().enumerate() {
            let le = format_bound(bound);
            let exemplar = match self.format {
                Format::OpenMetrics => snapshot.exemplars.get(index).copied().flatten(),
                Format::Prometheus => None,
            };
            let exemplar = exemplar.map(|exemplar| {
                format!(
                    " # {{trace_id=\"{}\",span_id=\"{}\"}} {} {:.3}",
                    exemplar.trace_id, exemplar.span_id, exemplar.value, exemplar.timestamp
                )
            });
            self.sample("_bucket", labels, Some(("le", &le)), Value::Int(count));
            if let Some(exemplar) = exemplar {
                // Replace the newline the sample ended with.
                self.text.pop();
                self.text.push_str(&exemplar);
                self.text.push('\n');
            }
        }
        self.sample("_count", labels, None, Value::Int(snapshot.count));
        self.sample("_sum", labels, None, Value::Float(snapshot.sum));
    }
}

impl Exposition {
    fn sample(
        &mut self,
        suffix: &str,
        labels: &Labels<'_>,
        extra: Option<(&str, &str)>,
        value: Value,
    ) {
        self.text.push_str(self.family);
        self.text.push_str(suffix);
        let mut all = labels.iter().copied().chain(extra).peekable();
        if all.peek().is_some() {
            self.text.push('{');
            for (index, (label, value)) in all.enumerate() {
                if index > 0 {
                    self.text.push(',');
                }
                // OpenTelemetry's attribute names, as its Prometheus exporter writes them.
                self.text
                    .extend(label.chars().map(|c| if c == '.' { '_' } else { c }));
                self.text.push_str("=\"");
                escape_into(&mut self.text, value);
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = match value {
            Value::Int(value) => writeln!(self.text, " {value}"),
            Value::Float(value) => writeln!(self.text, " {}", format_float(value)),
        };
    }

    /// The finished text.
    pub(crate) fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.text.push_str("# EOF\n");
        }
        self.text
    }
}

enum Value {
    Int(u64),
    Float(f64),
}

/// A label value with `\`, `"` and newlines escaped, as both formats want.
fn escape_into(text: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => text.push_str("\\\\"),
            '"' => text.push_str("\\\""),
            '\n' => text.push_str("\\n"),
            c => text.push(c),
        }
    }
}

/// A bucket bound as OpenMetrics' canonical numbers write it: `1.0`, `0.005`, `+Inf`.
fn format_bound(bound: f64) -> String {
    if bound.is_infinite() {
        "+Inf".to_owned()
    } else if bound.fract() == 0.0 {
        format!("{bound:.1}")
    } else {
        format!("{bound}")
    }
}

fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::histogram::{Histogram, OTEL_DURATION_BOUNDS};
    use crate::metrics::{SpanId, TraceId};
    use http::HeaderValue;

    fn accept(value: &str) -> Format {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_str(value).unwrap());
        Format::negotiate(&headers)
    }

    #[test]
    fn the_scraper_chooses_the_format() {
        assert_eq!(Format::negotiate(&HeaderMap::new()), Format::Prometheus);
        // What Prometheus 2.x and 3.x send.
        assert_eq!(
            accept("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
            Format::OpenMetrics
        );
        assert_eq!(accept("text/plain;version=0.0.4"), Format::Prometheus);
        assert_eq!(
            accept("text/plain, application/openmetrics-text;q=0.5"),
            Format::Prometheus
        );
        assert_eq!(
            accept("application/openmetrics-text;q=0"),
            Format::Prometheus
        );
        assert_eq!(accept("application/json"), Format::Prometheus);
    }

    fn sample_text(format: Format) -> String {
        let histogram = Histogram::new(&OTEL_DURATION_BOUNDS);
        histogram.observe(
            std::time::Duration::from_millis(3),
            Some((
                TraceId::from_bytes([0xab; 16]).unwrap(),
                SpanId::from_bytes([0xcd; 8]).unwrap(),
            )),
        );
        let mut out = Exposition::new(format);
        out.family(&Family::new(
            "requests",
            Kind::Counter,
            "{request}",
            "Requests",
        ));
        out.counter(&[("url.route", "/a\"b\\c\nd")], 3);
        out.family(&Family::new(
            "duration_seconds",
            Kind::Histogram,
            "s",
            "Durations",
        ));
        out.histogram(&[("route", "/x")], &histogram.snapshot());
        out.finish()
    }

    #[test]
    fn prometheus_text_names_counters_by_sample_and_has_no_exemplars() {
        let text = sample_text(Format::Prometheus);
        assert!(text.contains("# TYPE requests_total counter\n"), "{text}");
        assert!(
            text.contains("requests_total{url_route=\"/a\\\"b\\\\c\\nd\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("duration_seconds_bucket{route=\"/x\",le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("duration_seconds_bucket{route=\"/x\",le=\"1.0\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("duration_seconds_bucket{route=\"/x\",le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("duration_seconds_count{route=\"/x\"} 1\n"),
            "{text}"
        );
        assert!(
            !text.contains("trace_id") && !text.contains("# EOF"),
            "{text}"
        );
    }

    #[test]
    fn openmetrics_text_names_families_carries_exemplars_and_ends_with_eof() {
        let text = sample_text(Format::OpenMetrics);
        assert!(text.contains("# TYPE requests counter\n"), "{text}");
        assert!(text.contains("requests_total{"), "{text}");
        let bucket = text
            .lines()
            .find(|line| line.starts_with("duration_seconds_bucket{route=\"/x\",le=\"0.005\"}"))
            .unwrap();
        let (sample, exemplar) = bucket.split_once(" # ").expect("an exemplar");
        assert!(sample.ends_with(" 1"), "{bucket}");
        assert!(
            exemplar.starts_with(&format!(
                "{{trace_id=\"{}\",span_id=\"{}\"}} 0.003 ",
                "ab".repeat(16),
                "cd".repeat(8)
            )),
            "{bucket}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
