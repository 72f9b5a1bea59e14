//! TLS for the server, on rustls (no OpenSSL): certificates from PEM files, reloaded without a
//! restart when the files change, ALPN for h2 and http/1.1, a handshake timeout, and optional
//! mutual TLS whose verified client certificate becomes the caller's [`PeerIdentity`].
//!
//! ```no_run
//! use microkit::router::{get, Router};
//! use microkit::server::TlsConfig;
//!
//! # async fn run() -> std::io::Result<()> {
//! let app: Router = Router::new().route("/", get(|| async { "over TLS" }));
//! let tls = TlsConfig::from_pem_files("cert.pem", "key.pem")?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! microkit::serve(listener, app).tls(tls).await
//! # }
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::connection::Connection;
use super::PeerIdentity;

/// How long a client may take to complete the handshake (default 10 s, as for headers): a
/// client that opens a connection and stalls must not hold it.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often, at most, the certificate files are checked for a change (default 1 s): a stat
/// of two files, only when a handshake happens.
const DEFAULT_RELOAD_CHECK: Duration = Duration::from_secs(1);

/// How the server speaks TLS. Give it to [`Serve::tls`](super::Serve::tls).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    resolver: Arc<ReloadingCert>,
    client_ca: Option<Arc<RootCertStore>>,
    handshake_timeout: Duration,
}

impl TlsConfig {
    /// Serves the certificate chain in `cert` (PEM, leaf first) with the private key in `key`
    /// (PEM: PKCS#8, PKCS#1 or SEC1). Both are read now, so a mistake fails at start-up, and
    /// read again whenever either file changes: renew a certificate by replacing the files.
    pub fn from_pem_files(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> io::Result<Self> {
        Ok(Self {
            resolver: Arc::new(ReloadingCert::load(cert.into(), key.into())?),
            client_ca: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// Mutual TLS: accepts only clients presenting a certificate that a CA in `ca_pem` (a PEM
    /// file of one or more certificates) signed; handlers see who they are as
    /// [`PeerIdentity`]. Other clients fail the handshake.
    pub fn client_ca(mut self, ca_pem: impl AsRef<Path>) -> io::Result<Self> {
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca_pem.as_ref())? {
            roots.add(cert).map_err(invalid)?;
        }
        self.client_ca = Some(Arc::new(roots));
        Ok(self)
    }

    /// How long a client may take to complete the handshake (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The acceptor: TLS 1.2 and 1.3 with rustls's safe defaults, ALPN h2 then http/1.1.
    pub(crate) fn acceptor(&self) -> io::Result<TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(invalid)?;
        let builder = match &self.client_ca {
            Some(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(roots.clone(), provider)
                    .build()
                    .map_err(invalid)?,
            ),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(self.resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// A configuration mistake, reported at start-up.
pub(crate) fn invalid(err: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, err.to_string())
}

/// The certificates in a PEM file; an error names the file, and a file with none is one.
pub(crate) fn read_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| {
            invalid(format!(
                "reading certificates from {}: {err}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(invalid(format!("{} holds no certificate", path.display())));
    }
    Ok(certs)
}

/// The served certificate, read again when its files change.
#[derive(Debug)]
struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    provider: CryptoProvider,
    current: RwLock<Loaded>,
    last_check: Mutex<Instant>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    modified: (Option<SystemTime>, Option<SystemTime>),
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
}

impl ReloadingCert {
    fn load(cert: PathBuf, key: PathBuf) -> io::Result<Self> {
        let provider = rustls::crypto::ring::default_provider();
        let loaded = Self::read(&provider, &cert, &key)?;
        Ok(Self {
            cert,
            key,
            provider,
            current: RwLock::new(loaded),
            last_check: Mutex::new(Instant::now()),
        })
    }

    fn read(provider: &CryptoProvider, cert: &Path, key: &Path) -> io::Result<Loaded> {
        let modified = (modified(cert), modified(key));
        let chain = read_certs(cert)?;
        let private = PrivateKeyDer::from_pem_file(key)
            .map_err(|err| invalid(format!("reading the key in {}: {err}", key.display())))?;
        let signing = provider
            .key_provider
            .load_private_key(private)
            .map_err(invalid)?;
        let certified = CertifiedKey::new(chain, signing);
        certified.keys_match().map_err(invalid)?;
        Ok(Loaded {
            key: Arc::new(certified),
            modified,
        })
    }

    /// Reads the files again if they changed since the last load, at most once per check
    /// interval. A change that does not load (a half-written file, a key that does not match)
    /// keeps the certificate in use.
    fn refresh(&self) {
        {
            let mut last = self.last_check.lock().expect("tls lock poisoned");
            if last.elapsed() < DEFAULT_RELOAD_CHECK {
                return;
            }
            *last = Instant::now();
        }
        let now = (modified(&self.cert), modified(&self.key));
        if self.current.read().expect("tls lock poisoned").modified == now {
            return;
        }
        match Self::read(&self.provider, &self.cert, &self.key) {
            Ok(loaded) => {
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                *self.current.write().expect("tls lock poisoned") = loaded;
            }
            Err(err) => {
                tracing::warn!(error = %err, "the changed TLS files do not load; keeping the certificate in use");
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh();
        Some(self.current.read().expect("tls lock poisoned").key.clone())
    }
}

/// The identity of a verified client certificate in DER; `None` if it does not parse (rustls
/// verified it, so that does not happen in practice).
pub(crate) fn peer_identity(der: &[u8]) -> Option<PeerIdentity> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let mut alt_names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => alt_names.push((*dns).to_owned()),
                GeneralName::URI(uri) => alt_names.push((*uri).to_owned()),
                GeneralName::RFC822Name(email) => alt_names.push((*email).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(octets) = <[u8; 4]>::try_from(*bytes) {
                        alt_names.push(std::net::Ipv4Addr::from(octets).to_string());
                    } else if let Ok(octets) = <[u8; 16]>::try_from(*bytes) {
                        alt_names.push(std::net::Ipv6Addr::from(octets).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Some(PeerIdentity::new(
        cert.subject().to_string(),
        common_name,
        alt_names,
    ))
}

/// What each connection's handshake needs.
pub(super) struct Handshake {
    acceptor: TlsAcceptor,
    timeout: Duration,
}

impl Handshake {
    pub(super) fn new(config: &TlsConfig) -> io::Result<Self> {
        Ok(Self {
            acceptor: config.acceptor()?,
            timeout: config.handshake_timeout,
        })
    }

    /// Completes the handshake within the timeout, then serves the connection over the
    /// session; a client that fails or stalls the handshake is dropped.
    pub(super) async fn serve(self: Arc<Self>, connection: Connection<TcpStream>) {
        let remote = connection.remote;
        let handshake = |tcp: TcpStream| async move {
            match tokio::time::timeout(self.timeout, self.acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let peer = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(|leaf| peer_identity(leaf));
                    Some((tls, peer))
                }
                Ok(Err(err)) => {
                    tracing::debug!(%remote, error = %err, "TLS handshake failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    None
                }
            }
        };
        if let Some(connection) = connection.upgrade(handshake).await {
            connection.serve().await;
        }
    }
}
