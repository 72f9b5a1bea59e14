//! Connections to etcd members: plain TCP for `http://` endpoints, TLS over TCP for
//! `https://` ones (feature `tls`: the certificate authorities and client certificate of a
//! [`ClientTls`](crate::client::ClientTls), the member's certificate checked against its host).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tower_service::Service;

pub(super) use crate::client::probed_io::Stream as EtcdStream;
use crate::BoxError;

/// Opens a connection for hyper-util's pool, with TLS when the endpoint is `https://`.
#[derive(Clone)]
pub(super) struct Connector {
    tcp: HttpConnector,
    #[cfg(feature = "tls")]
    tls: Option<crate::client::ClientTls>,
}

impl Connector {
    /// Connects within `timeout`; `tls` says how to speak to `https://` endpoints.
    pub(super) fn new(
        timeout: std::time::Duration,
        #[cfg(feature = "tls")] tls: Option<crate::client::ClientTls>,
    ) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.set_connect_timeout(Some(timeout));
        tcp.set_nodelay(true);
        // The scheme is ours to act on: `https://` gets its TLS here.
        tcp.enforce_http(false);
        Self {
            tcp,
            #[cfg(feature = "tls")]
            tls,
        }
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<TokioIo<EtcdStream>, BoxError>> + Send>>;

impl Service<Uri> for Connector {
    type Response = TokioIo<EtcdStream>;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Connecting {
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let connecting = self.tcp.call(uri);
        #[cfg(feature = "tls")]
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = connecting.await?.into_inner();
            if !https {
                return Ok(TokioIo::new(EtcdStream::Plain(tcp)));
            }
            #[cfg(feature = "tls")]
            {
                let tls = tls.ok_or(
                    "an https:// etcd endpoint needs EtcdRegistry::with_tls (the CA that signed \
                     etcd's certificate)",
                )?;
                let stream = tls.connect(&host, tcp).await?;
                Ok(TokioIo::new(EtcdStream::Tls(Box::new(stream))))
            }
            #[cfg(not(feature = "tls"))]
            {
                Err(format!("https://{host}: TLS to etcd needs microkit's feature `tls`").into())
            }
        })
    }
}

/// A connection to an etcd member: the client's own connection type (plain or TLS over TCP),
/// which hyper-util's pool needs to know nothing about.
impl Connection for EtcdStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}
