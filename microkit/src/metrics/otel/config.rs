//! The exporter's settings, read from the standard `OTEL_*` environment variables.

use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Uri};

use super::OtelError;
use crate::trace::otel::http::TlsFiles;

/// Where, how often and how patiently metrics are sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    /// The full URL the export is posted to.
    pub(crate) endpoint: Uri,
    /// Sent with every export (an API key, a tenant); marked sensitive, so `Debug` hides them.
    pub(crate) headers: HeaderMap,
    /// The longest one export may take before it is given up.
    pub(crate) timeout: Duration,
    /// Whether exports are sent gzip-compressed.
    pub(crate) gzip: bool,
    /// The environment prefers delta temporality, which is not sent: every point is
    /// cumulative (a preference, so it is said in the log rather than refused).
    pub(crate) delta_preferred: bool,
    /// The time between two exports.
    pub(crate) interval: Duration,
    /// The CA bundle and client certificate for an `https` endpoint.
    pub(crate) tls: TlsFiles,
}

impl Config {
    /// The settings in the process' environment, or `None` when metrics export is switched
    /// off (`OTEL_SDK_DISABLED=true` or `OTEL_METRICS_EXPORTER=none`).
    pub(crate) fn from_env() -> Result<Option<Self>, OtelError> {
        Self::read(|name| std::env::var(name).ok())
    }

    /// The settings `var` gives, as [`from_env`](Self::from_env) reads them.
    pub(crate) fn read(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, OtelError> {
        let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let is = |name: &str, wanted: &str| {
            var(name).is_some_and(|value| value.trim().eq_ignore_ascii_case(wanted))
        };
        if is("OTEL_SDK_DISABLED", "true") || is("OTEL_METRICS_EXPORTER", "none") {
            return Ok(None);
        }
        // The metrics-specific variable wins over the general one.
        let either = |specific: &str, general: &str| var(specific).or_else(|| var(general));
        if let Some(exporter) = var("OTEL_METRICS_EXPORTER") {
            if !exporter.trim().eq_ignore_ascii_case("otlp") {
                return Err(OtelError::new(format!(
                    "OTEL_METRICS_EXPORTER={exporter}: only `otlp` and `none` are known"
                )));
            }
        }
        let protocol = either(
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        );
        if let Some(protocol) = protocol {
            if protocol.trim() != "http/protobuf" {
                return Err(OtelError::new(format!(
                    "OTLP protocol `{protocol}`: metrics are sent as http/protobuf only"
                )));
            }
        }
        let endpoint = match var("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
            Some(endpoint) => endpoint.trim().to_owned(),
            None => {
                let base = var("OTEL_EXPORTER_OTLP_ENDPOINT");
                let base = base.as_deref().unwrap_or("http://localhost:4318");
                format!("{}/v1/metrics", base.trim().trim_end_matches('/'))
            }
        };
        let headers = either(
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        );
        let headers = headers.as_deref().map(parse_headers).transpose()?;
        let compression = either(
            "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        );
        let gzip = match compression.as_deref().map(str::trim) {
            None => false,
            Some(known) if known.eq_ignore_ascii_case("none") => false,
            Some(known) if known.eq_ignore_ascii_case("gzip") => true,
            Some(other) => {
                return Err(OtelError::new(format!(
                    "OTLP compression `{other}`: `gzip` and `none` are known"
                )))
            }
        };
        let temporality = var("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE");
        let delta_preferred = match temporality.as_deref().map(str::trim) {
            None => false,
            Some(known) if known.eq_ignore_ascii_case("cumulative") => false,
            Some(known)
                if known.eq_ignore_ascii_case("delta")
                    || known.eq_ignore_ascii_case("lowmemory") =>
            {
                true
            }
            Some(other) => {
                return Err(OtelError::new(format!(
                    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE={other}: \
                     `cumulative`, `delta` and `lowmemory` are known"
                )))
            }
        };
        let millis = |name: &str, default: u64| match var(name) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|millis| *millis > 0)
                .ok_or_else(|| {
                    OtelError::new(format!(
                        "{name}={value}: expected a number of milliseconds above 0"
                    ))
                }),
        };
        let request_timeout = match var("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT") {
            Some(_) => millis("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", 10_000)?,
            None => millis("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000)?,
        };
        let export_timeout = millis("OTEL_METRIC_EXPORT_TIMEOUT", 30_000)?;
        Ok(Some(Self {
            endpoint: parse_endpoint(&endpoint)?,
            headers: headers.unwrap_or_default(),
            timeout: Duration::from_millis(request_timeout.min(export_timeout)),
            gzip,
            delta_preferred,
            interval: Duration::from_millis(millis("OTEL_METRIC_EXPORT_INTERVAL", 60_000)?),
            tls: TlsFiles::read("METRICS", var)?,
        }))
    }
}

/// An `http://` or `https://` URL with a host (whether https can be sent is the client's
/// to say: it needs the `tls` feature).
fn parse_endpoint(endpoint: &str) -> Result<Uri, OtelError> {
    let uri: Uri = endpoint
        .parse()
        .map_err(|err| OtelError::new(format!("the OTLP endpoint `{endpoint}`: {err}")))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err(OtelError::new(format!(
            "the OTLP endpoint `{endpoint}` is not an http:// or https:// URL with a host"
        ))),
    }
}

/// `key=value` pairs separated by commas, values percent-encoded, as the OTLP exporter
/// specification writes headers.
fn parse_headers(text: &str) -> Result<HeaderMap, OtelError> {
    let mut headers = HeaderMap::new();
    for pair in text.split(',').filter(|pair| !pair.trim().is_empty()) {
        let bad = |why: &str| OtelError::new(format!("the OTLP header `{pair}`: {why}"));
        let (name, value) = pair.split_once('=').ok_or_else(|| bad("no `=`"))?;
        let name =
            HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad("not a header name"))?;
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8()
            .map_err(|_| bad("not UTF-8 once decoded"))?;
        let mut value = HeaderValue::from_str(&value).map_err(|_| bad("not a header value"))?;
        // API keys: kept out of `Debug` output and out of HPACK tables.
        value.set_sensitive(true);
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Option<Config>, OtelError> {
        Config::read(|name| {
            vars.iter()
                .find(|(known, _)| *known == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn defaults_follow_the_specification() {
        let config = read(&[]).unwrap().unwrap();
        assert_eq!(config.endpoint, "http://localhost:4318/v1/metrics");
        assert_eq!(config.interval, Duration::from_secs(60));
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert!(config.headers.is_empty());
        assert!(!config.gzip);
        assert!(!config.delta_preferred);
        assert_eq!(config.tls, TlsFiles::default());
        let delta = [("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta")];
        assert!(read(&delta).unwrap().unwrap().delta_preferred);
    }

    #[test]
    fn the_general_endpoint_gains_the_signal_path_and_the_metrics_one_is_used_as_is() {
        let config = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]);
        assert_eq!(
            config.unwrap().unwrap().endpoint,
            "http://collector:4318/v1/metrics"
        );
        let config = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://other:9000/m"),
        ]);
        assert_eq!(config.unwrap().unwrap().endpoint, "http://other:9000/m");
    }

    #[test]
    fn headers_intervals_and_timeouts_are_read() {
        let config = read(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-general=1"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
                "api-key=a%20b, x-tenant=7,",
            ),
            ("OTEL_METRIC_EXPORT_INTERVAL", "250"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000"),
            ("OTEL_METRIC_EXPORT_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "GZip"),
        ])
        .unwrap()
        .unwrap();
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("a b") && !debug.contains("a%20b"),
            "{debug}"
        );
        assert_eq!(config.headers["api-key"], "a b");
        assert_eq!(config.headers["x-tenant"], "7");
        assert!(!config.headers.contains_key("x-general"));
        assert_eq!(config.interval, Duration::from_millis(250));
        assert_eq!(config.timeout, Duration::from_millis(2000));
        assert!(config.gzip);
    }

    #[test]
    fn switched_off_by_either_variable() {
        assert_eq!(read(&[("OTEL_METRICS_EXPORTER", "none")]).unwrap(), None);
        assert_eq!(read(&[("OTEL_SDK_DISABLED", "TRUE")]).unwrap(), None);
        assert!(read(&[("OTEL_SDK_DISABLED", "false")]).unwrap().is_some());
        assert!(read(&[("OTEL_METRICS_EXPORTER", "otlp")])
            .unwrap()
            .is_some());
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        let refused = |vars: &[(&str, &str)], wanted: &str| {
            let err = read(vars).expect_err("refused").to_string();
            assert!(err.contains(wanted), "{err}");
        };
        refused(
            &[("OTEL_METRIC_EXPORT_INTERVAL", "soon")],
            "OTEL_METRIC_EXPORT_INTERVAL",
        );
        refused(&[("OTEL_METRIC_EXPORT_INTERVAL", "0")], "above 0");
        refused(&[("OTEL_EXPORTER_OTLP_HEADERS", "novalue")], "no `=`");
        refused(
            &[("OTEL_EXPORTER_OTLP_HEADERS", "bad name=1")],
            "header name",
        );
        refused(
            &[("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "client.pem")],
            "go together",
        );
        refused(
            &[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "collector")],
            "http://",
        );
        refused(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")], "http/protobuf");
        refused(&[("OTEL_METRICS_EXPORTER", "prometheus")], "otlp");
        refused(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")], "gzip");
        refused(
            &[(
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                "sometimes",
            )],
            "cumulative",
        );
    }
}
