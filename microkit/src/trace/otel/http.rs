//! The HTTP client both OTLP exporters (spans and metrics) post with: plain HTTP/1.1 to an
//! `http://` collector, and over TLS (microkit's rustls [`ClientTls`](crate::client::ClientTls),
//! feature `tls`) to an `https://` one, the collector's name checked against its certificate.
//!
//! The TLS settings are the standard variables, the signal's own winning over the general one:
//! `OTEL_EXPORTER_OTLP[_TRACES|_METRICS]_CERTIFICATE` (the PEM CA bundle to trust; without it,
//! the platform's roots), `_CLIENT_CERTIFICATE` and `_CLIENT_KEY` (mutual TLS).
//! `OTEL_EXPORTER_OTLP_INSECURE` is for gRPC and is not read.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use opentelemetry_http::{HttpClient, HttpError};

use super::OtelError;
use crate::client::one_shot;

/// The most of a collector's answer that is read (as opentelemetry-http's own clients do).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// The TLS files the environment names for one signal.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TlsFiles {
    /// The PEM CA bundle to trust instead of the platform's roots.
    ca: Option<String>,
    /// The client's certificate chain and key, for mutual TLS.
    identity: Option<(String, String)>,
}

impl TlsFiles {
    /// Reads `OTEL_EXPORTER_OTLP_{signal}_…` or else `OTEL_EXPORTER_OTLP_…` through `var`
    /// (`signal` is `TRACES` or `METRICS`).
    pub(crate) fn read(
        signal: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, OtelError> {
        let either = |name: &str| {
            var(&format!("OTEL_EXPORTER_OTLP_{signal}_{name}"))
                .or_else(|| var(&format!("OTEL_EXPORTER_OTLP_{name}")))
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let identity = match (either("CLIENT_CERTIFICATE"), either("CLIENT_KEY")) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(OtelError::new(
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY \
                     go together: one was set without the other",
                ))
            }
        };
        Ok(Self {
            ca: either("CERTIFICATE"),
            identity,
        })
    }
}

/// Posts one export and reads the whole answer, on a connection of its own (exports are
/// seconds apart), within a timeout.
#[derive(Debug, Clone)]
pub(crate) struct OtlpClient {
    timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<crate::client::ClientTls>,
}

impl OtlpClient {
    /// A client for `endpoint`: for an `https` one, TLS as `files` say, which must be readable
    /// now (an unreadable bundle is refused at start rather than at every export). Without the
    /// `tls` feature, an `https` endpoint is refused with the reason.
    pub(crate) fn new(
        endpoint: &Uri,
        timeout: Duration,
        files: &TlsFiles,
    ) -> Result<Self, OtelError> {
        if endpoint.scheme_str() != Some("https") {
            return Ok(Self {
                timeout,
                #[cfg(feature = "tls")]
                tls: None,
            });
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = files;
            Err(OtelError::new(format!(
                "the OTLP endpoint `{endpoint}` is https: build microkit with its `tls` feature \
                 (as well as `otel`) to send over TLS"
            )))
        }
        #[cfg(feature = "tls")]
        {
            use crate::client::ClientTls;
            let tls = match &files.ca {
                Some(ca) => ClientTls::trusting(ca).map_err(|err| {
                    OtelError::new(format!("the OTLP CA bundle (…_CERTIFICATE) {ca}: {err}"))
                })?,
                None => ClientTls::platform_roots().map_err(|err| {
                    OtelError::new(format!(
                        "the OTLP endpoint `{endpoint}` is https and no CA bundle is named \
                         (OTEL_EXPORTER_OTLP_CERTIFICATE): {err}"
                    ))
                })?,
            };
            let tls = match &files.identity {
                Some((cert, key)) => tls.client_cert(cert, key).map_err(|err| {
                    OtelError::new(format!(
                        "the OTLP client certificate {cert} and key {key}: {err}"
                    ))
                })?,
                None => tls,
            };
            Ok(Self {
                timeout,
                tls: Some(tls),
            })
        }
    }

    /// Connects to the request's host (over TLS for `https`), and exchanges the request.
    async fn exchange(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        #[cfg(feature = "tls")]
        let tls = self.tls.as_ref();
        #[cfg(not(feature = "tls"))]
        let tls = None;
        let (head, body) = request.into_parts();
        let request = Request::from_parts(head, Full::new(body));
        one_shot::exchange(tls, request, MAX_ANSWER, self.timeout).await
    }
}

impl HttpClient for OtlpClient {
    // What `#[async_trait]` would write (the trait is declared with it).
    fn send_bytes<'client, 'future>(
        &'client self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'future>>
    where
        'client: 'future,
        Self: 'future,
    {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, self.exchange(request)).await {
                Ok(answer) => answer,
                Err(_) => Err(format!("no answer within {:?}", self.timeout).into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(vars: &[(&str, &str)]) -> Result<TlsFiles, OtelError> {
        TlsFiles::read("METRICS", |name| {
            vars.iter()
                .find(|(known, _)| *known == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn the_signal_variable_wins_over_the_general_one() {
        let read = files(&[
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "general.pem"),
            ("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "metrics.pem"),
            ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "traces.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "client.pem"),
            ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY", "client.key"),
        ])
        .unwrap();
        assert_eq!(read.ca.as_deref(), Some("metrics.pem"));
        assert_eq!(
            read.identity,
            Some(("client.pem".to_owned(), "client.key".to_owned()))
        );
        let half = files(&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", "client.key")]);
        assert!(half.unwrap_err().to_string().contains("go together"));
    }

    #[test]
    fn plain_http_reads_no_tls_file() {
        let files = files(&[("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent.pem")]).unwrap();
        let endpoint: Uri = "http://collector:4318/v1/metrics".parse().unwrap();
        assert!(OtlpClient::new(&endpoint, Duration::from_secs(1), &files).is_ok());
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn https_without_the_tls_feature_is_refused_with_the_reason() {
        let endpoint: Uri = "https://collector:4318/v1/metrics".parse().unwrap();
        let refused = OtlpClient::new(&endpoint, Duration::from_secs(1), &TlsFiles::default());
        assert!(refused.unwrap_err().to_string().contains("`tls` feature"));
    }
}
