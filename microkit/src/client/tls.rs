//! TLS for the client (feature `tls`, rustls): the certificate authorities an `https`
//! instance's certificate must chain to, and the client's own certificate for mutual TLS.
//!
//! ```no_run
//! use microkit::client::{ClientConfig, ClientTls, ServiceClient};
//! use microkit::discovery::MemoryRegistry;
//!
//! # fn run() -> std::io::Result<()> {
//! let tls = ClientTls::trusting("ca.pem")?.client_cert("orders.pem", "orders.key")?;
//! let client = ServiceClient::with_config(MemoryRegistry::new(), ClientConfig::default().tls(tls));
//! # Ok(())
//! # }
//! ```

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::RootCertStore;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::server::tls::{invalid, read_certs};

/// How the client speaks to `https` instances: which certificate authorities it trusts and,
/// for mutual TLS, the certificate it presents. The instance's certificate must name the
/// instance ([`Instance::certificate_name`](crate::discovery::Instance::certificate_name)).
#[derive(Debug, Clone)]
pub struct ClientTls {
    roots: Arc<RootCertStore>,
    config: Arc<rustls::ClientConfig>,
    has_identity: bool,
}

impl ClientTls {
    /// Trusts the certificate authorities in `ca_pem` (a PEM file of one or more
    /// certificates), and only them: services inside a system usually have their own CA.
    pub fn trusting(ca_pem: impl AsRef<Path>) -> io::Result<Self> {
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca_pem.as_ref())? {
            roots.add(cert).map_err(invalid)?;
        }
        Self::with_roots(roots)
    }

    /// Trusts the operating system's certificate authorities (on Linux the distribution's
    /// bundle; `SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured), as a browser does: for
    /// servers outside the system, such as an identity provider. A system without any is an
    /// error, rather than a client that trusts nothing and fails later.
    pub fn platform_roots() -> io::Result<Self> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _unparsable) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found
                .errors
                .first()
                .map(|err| format!(": {err}"))
                .unwrap_or_default();
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no platform root certificates found{why}"),
            ));
        }
        Self::with_roots(roots)
    }

    fn with_roots(roots: RootCertStore) -> io::Result<Self> {
        let roots = Arc::new(roots);
        let config = builder()?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        Ok(Self {
            roots,
            config: with_alpn(config),
            has_identity: false,
        })
    }

    /// Presents the certificate chain in `cert` (PEM, leaf first) with the private key in
    /// `key` (PEM: PKCS#8, PKCS#1 or SEC1) to servers that ask for one (mutual TLS).
    pub fn client_cert(self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> io::Result<Self> {
        let chain = read_certs(cert.as_ref())?;
        let key = PrivateKeyDer::from_pem_file(key.as_ref()).map_err(|err| {
            invalid(format!(
                "reading the private key in {}: {err}",
                key.as_ref().display()
            ))
        })?;
        let config = builder()?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(chain, key)
            .map_err(invalid)?;
        Ok(Self {
            roots: self.roots,
            config: with_alpn(config),
            has_identity: true,
        })
    }

    /// Whether the client presents a certificate of its own.
    pub fn has_client_cert(&self) -> bool {
        self.has_identity
    }

    /// Runs the handshake on `stream`, checking the server's certificate against `name`.
    pub(crate) async fn connect(
        &self,
        name: &str,
        stream: TcpStream,
    ) -> io::Result<TlsStream<TcpStream>> {
        let name = ServerName::try_from(name.to_owned()).map_err(|_| {
            invalid(format!(
                "{name:?} is not a DNS name or IP address to check a certificate against"
            ))
        })?;
        TlsConnector::from(self.config.clone())
            .connect(name, stream)
            .await
    }
}

/// TLS 1.2 and 1.3 with rustls's safe defaults, on ring.
fn builder() -> io::Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(invalid)
}

/// The pool speaks HTTP/1.1, so that is the only protocol offered.
fn with_alpn(mut config: rustls::ClientConfig) -> Arc<rustls::ClientConfig> {
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}
