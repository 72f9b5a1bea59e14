//! TLS to PostgreSQL with rustls: the connector `tokio-postgres` runs its handshakes with, the
//! certificate checks each `sslmode` asks for, and SCRAM channel binding.
//!
//! The modes' meanings are in [`PostgresStore`](super::PostgresStore)'s documentation.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Socket;
use x509_parser::oid_registry as oid;

use super::sslmode::{split_ssl_settings, SslMode, SslSettings};
use crate::resource::store::StoreError;

/// Parses a connection string (URL or `key=value` form) with its `sslmode` and
/// `sslrootcert`: the configuration to connect with, and the TLS connector for it. A bad
/// setting, or a root certificate that cannot be read, is an error here, before any
/// connection.
pub(super) fn parse_connection_string(
    url: &str,
) -> Result<(tokio_postgres::Config, PostgresTls), StoreError> {
    let (rest, settings) = split_ssl_settings(url).map_err(StoreError::backend)?;
    let mut config: tokio_postgres::Config = rest.parse().map_err(StoreError::backend)?;
    let (tls, mut negotiate) = PostgresTls::new(&settings).map_err(StoreError::backend)?;
    // PostgreSQL never speaks TLS over a Unix socket, and libpq does not ask there.
    if only_unix_sockets(&config) {
        negotiate = tokio_postgres::config::SslMode::Disable;
    }
    config.ssl_mode(negotiate);
    Ok((config, tls))
}

/// Makes the TLS connector of every connection of a pool: one rustls configuration, the
/// certificate checks of the connection string's `sslmode`.
#[derive(Clone)]
pub(super) struct PostgresTls {
    config: Arc<rustls::ClientConfig>,
}

impl PostgresTls {
    /// The connector for `settings`, and the `sslmode` `tokio-postgres` negotiates with.
    /// Fails when the mode needs a root certificate and none is given, or when the file
    /// cannot be read.
    pub(super) fn new(
        settings: &SslSettings,
    ) -> Result<(Self, tokio_postgres::config::SslMode), String> {
        use tokio_postgres::config::SslMode as Negotiate;
        let (negotiate, check_name) = match settings.mode {
            SslMode::Disable => (Negotiate::Disable, false),
            SslMode::Prefer => (Negotiate::Prefer, false),
            SslMode::Require | SslMode::VerifyCa => (Negotiate::Require, false),
            SslMode::VerifyFull => (Negotiate::Require, true),
        };
        let roots = match &settings.root_cert {
            Some(path) => Some(Arc::new(read_roots(path)?)),
            None if matches!(settings.mode, SslMode::VerifyCa | SslMode::VerifyFull) => {
                return Err(format!(
                    "sslmode={} needs sslrootcert=PATH: the PEM file of the certificate \
                     authority that signed the server's certificate",
                    if check_name {
                        "verify-full"
                    } else {
                        "verify-ca"
                    }
                ))
            }
            None => None,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(CertificateCheck {
            roots,
            check_name,
            provider: provider.clone(),
        });
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| err.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&settings.client_cert, &settings.client_key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = read_certs("sslcert", cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|err| format!("sslkey: reading {}: {err}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|err| format!("sslcert and sslkey: {err}"))?
            }
            _ => {
                return Err(
                    "sslcert and sslkey go together: the client certificate and its key".to_owned(),
                )
            }
        };
        let tls = Self {
            config: Arc::new(config),
        };
        Ok((tls, negotiate))
    }
}

/// The certificate authorities in a PEM file.
fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs("sslrootcert", path)? {
        roots
            .add(cert)
            .map_err(|err| format!("sslrootcert: {}: {err}", path.display()))?;
    }
    Ok(roots)
}

/// The certificates in the PEM file the setting `key` names; a file with none is an error.
fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| format!("{key}: reading certificates from {}: {err}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{key}: {} holds no certificate", path.display()));
    }
    Ok(certs)
}

/// Checks a server's certificate as far as the `sslmode` asks: not at all (encryption
/// only), up to a trusted root, or up to a trusted root and for the host's name. The
/// handshake's signatures are always checked, so the server holds the certificate's key.
#[derive(Debug)]
struct CertificateCheck {
    /// The authorities the chain must end at; `None`: the certificate is not checked.
    roots: Option<Arc<RootCertStore>>,
    /// Whether the certificate must name the host (`verify-full`).
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for CertificateCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            let algorithms = self.provider.signature_verification_algorithms.all;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                algorithms,
            )?;
            if self.check_name {
                verify_server_name(&cert, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl MakeTlsConnect<Socket> for PostgresTls {
    type Stream = PostgresTlsStream;
    type TlsConnect = PostgresTlsConnect;
    type Error = io::Error;

    /// `domain` is the host as the connection string names it (empty for a Unix socket, over
    /// which PostgreSQL never speaks TLS): what the certificate must name, and the SNI.
    fn make_tls_connect(&mut self, domain: &str) -> io::Result<PostgresTlsConnect> {
        Ok(PostgresTlsConnect {
            config: self.config.clone(),
            domain: domain.to_owned(),
        })
    }
}

/// Whether every host of `config` is a Unix socket's directory.
fn only_unix_sockets(config: &tokio_postgres::Config) -> bool {
    let hosts = config.get_hosts();
    #[cfg(unix)]
    let unix =
        |host: &tokio_postgres::config::Host| matches!(host, tokio_postgres::config::Host::Unix(_));
    #[cfg(not(unix))]
    let unix = |_: &tokio_postgres::config::Host| false;
    !hosts.is_empty() && hosts.iter().all(unix)
}

/// One connection's handshake.
pub(super) struct PostgresTlsConnect {
    config: Arc<rustls::ClientConfig>,
    domain: String,
}

type Handshake = Pin<Box<dyn Future<Output = io::Result<PostgresTlsStream>> + Send>>;

impl TlsConnect<Socket> for PostgresTlsConnect {
    type Stream = PostgresTlsStream;
    type Error = io::Error;
    type Future = Handshake;

    fn connect(self, stream: Socket) -> Handshake {
        Box::pin(async move {
            let name = ServerName::try_from(self.domain.clone()).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{:?} is not a host name or IP address for TLS", self.domain),
                )
            })?;
            let stream = tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await?;
            Ok(PostgresTlsStream(stream))
        })
    }
}

/// A connection to PostgreSQL over TLS.
pub(super) struct PostgresTlsStream(tokio_rustls::client::TlsStream<Socket>);

impl TlsStream for PostgresTlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| server_end_point(cert))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

/// RFC 5929's `tls-server-end-point`: the server certificate's hash, by the hash of its
/// signature algorithm (MD5 and SHA-1 become SHA-256). `None` for an algorithm with no
/// single hash (RSA-PSS, EdDSA), for which PostgreSQL offers no channel binding either.
fn server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let algorithm = &parsed.signature_algorithm.algorithm;
    let sha256 = [
        oid::OID_PKCS1_MD5WITHRSAENC,
        oid::OID_PKCS1_SHA1WITHRSA,
        oid::OID_PKCS1_SHA256WITHRSA,
        oid::OID_SIG_ECDSA_WITH_SHA256,
    ];
    if sha256.contains(algorithm) {
        Some(sha2::Sha256::digest(cert).to_vec())
    } else if [oid::OID_PKCS1_SHA224WITHRSA, oid::OID_SIG_ECDSA_WITH_SHA224].contains(algorithm) {
        Some(sha2::Sha224::digest(cert).to_vec())
    } else if [oid::OID_PKCS1_SHA384WITHRSA, oid::OID_SIG_ECDSA_WITH_SHA384].contains(algorithm) {
        Some(sha2::Sha384::digest(cert).to_vec())
    } else if [oid::OID_PKCS1_SHA512WITHRSA, oid::OID_SIG_ECDSA_WITH_SHA512].contains(algorithm) {
        Some(sha2::Sha512::digest(cert).to_vec())
    } else {
        None
    }
}

impl AsyncRead for PostgresTlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PostgresTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: SslMode) -> SslSettings {
        SslSettings {
            mode,
            root_cert: None,
            client_cert: None,
            client_key: None,
        }
    }

    #[test]
    fn verifying_modes_need_a_root_certificate() {
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let error = PostgresTls::new(&settings(mode)).err().unwrap();
            assert!(error.contains("needs sslrootcert"), "{error}");
        }
        let missing = SslSettings {
            root_cert: Some("/nonexistent/ca.pem".into()),
            ..settings(SslMode::Require)
        };
        let error = PostgresTls::new(&missing).err().unwrap();
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
        let half = SslSettings {
            client_cert: Some("client.pem".into()),
            ..settings(SslMode::Require)
        };
        let error = PostgresTls::new(&half).err().unwrap();
        assert!(error.contains("go together"), "{error}");
    }

    #[test]
    fn modes_negotiate_as_libpq() {
        use tokio_postgres::config::SslMode as Negotiate;
        for (mode, negotiate) in [
            (SslMode::Disable, Negotiate::Disable),
            (SslMode::Prefer, Negotiate::Prefer),
            (SslMode::Require, Negotiate::Require),
        ] {
            assert_eq!(PostgresTls::new(&settings(mode)).unwrap().1, negotiate);
        }
    }
}
