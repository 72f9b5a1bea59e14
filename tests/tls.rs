//! TLS over real sockets, with certificates made in the test (rcgen): the handshake, ALPN h2
//! and http/1.1, mutual TLS (a client certificate from another CA refused, the right one seen
//! by the handler as a `PeerIdentity`), a renewed certificate picked up by the next connection
//! without a restart, and a stalled handshake cut off.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use microkit::router::get;
use microkit::server::{PeerIdentity, TlsConfig};
use microkit::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use microkit_test_support::certs::{authority, leaf, write};

async fn serve(tls: TlsConfig) -> SocketAddr {
    let app: Router = Router::new()
        .route("/", get(|| async { "hello over TLS" }))
        .route(
            "/whoami",
            get(|peer: Option<PeerIdentity>| async move {
                match peer {
                    Some(peer) => format!(
                        "{} {:?}",
                        peer.common_name().unwrap_or("-"),
                        peer.alt_names()
                    ),
                    None => "anonymous".to_owned(),
                }
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = microkit::serve(listener, app).tls(tls);
    tokio::spawn(async move { server.await });
    addr
}

fn client_config(ca_pem: &str, alpn: &[&[u8]], identity: Option<(&str, &str)>) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(addr: SocketAddr, config: ClientConfig) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// Sends `GET path` over the session, with HTTP/2 when ALPN chose it, and returns the body.
async fn get_over(tls: Tls, path: &str) -> Result<String, hyper::Error> {
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let request = http::Request::get(format!("https://localhost{path}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        sender.send_request(request).await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        let mut request = request;
        *request.uri_mut() = path.parse().unwrap();
        request
            .headers_mut()
            .insert("host", "localhost".parse().unwrap());
        sender.send_request(request).await?
    };
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn alpn_offers_h2_and_http1_over_the_same_port() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority("test CA");
    let (cert, key) = leaf(&ca, "localhost", &["localhost", "127.0.0.1"]);
    let tls = TlsConfig::from_pem_files(
        write(dir.path(), "c.pem", &cert),
        write(dir.path(), "k.pem", &key),
    )
    .unwrap();
    let addr = serve(tls).await;

    let h2 = connect(addr, client_config(&ca.pem, &[b"h2", b"http/1.1"], None))
        .await
        .unwrap();
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(get_over(h2, "/").await.unwrap(), "hello over TLS");
    let h1 = connect(addr, client_config(&ca.pem, &[b"http/1.1"], None))
        .await
        .unwrap();
    assert_eq!(h1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(get_over(h1, "/whoami").await.unwrap(), "anonymous");
    // A client that trusts another CA refuses the server: the name and the chain are checked.
    let stranger = authority("another CA");
    assert!(connect(addr, client_config(&stranger.pem, &[b"h2"], None))
        .await
        .is_err());
}

#[tokio::test]
async fn mutual_tls_admits_only_clients_the_ca_signed() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority("services CA");
    let (cert, key) = leaf(&ca, "localhost", &["localhost"]);
    let tls = TlsConfig::from_pem_files(
        write(dir.path(), "c.pem", &cert),
        write(dir.path(), "k.pem", &key),
    )
    .unwrap()
    .client_ca(write(dir.path(), "ca.pem", &ca.pem))
    .unwrap();
    let addr = serve(tls).await;

    let (client_cert, client_key) = leaf(
        &ca,
        "payments",
        &["payments.shop.internal", "spiffe://shop/payments"],
    );
    let admitted = connect(
        addr,
        client_config(&ca.pem, &[b"h2"], Some((&client_cert, &client_key))),
    )
    .await
    .unwrap();
    assert_eq!(
        get_over(admitted, "/whoami").await.unwrap(),
        r#"payments ["payments.shop.internal", "spiffe://shop/payments"]"#
    );

    // No certificate, or one from another CA: TLS 1.3 reports the refusal after the client's
    // handshake finished, so the first request fails instead of the connect.
    let rogue_ca = authority("rogue CA");
    let (rogue_cert, rogue_key) = leaf(&rogue_ca, "payments", &["payments.shop.internal"]);
    for identity in [None, Some((rogue_cert.as_str(), rogue_key.as_str()))] {
        let refused = match connect(addr, client_config(&ca.pem, &[b"http/1.1"], identity)).await {
            Ok(tls) => get_over(tls, "/whoami").await.is_err(),
            Err(_) => true,
        };
        assert!(
            refused,
            "a client without a certificate from the CA was served"
        );
    }
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority("test CA");
    let (first, first_key) = leaf(&ca, "first", &["localhost"]);
    let cert_path = write(dir.path(), "c.pem", &first);
    let key_path = write(dir.path(), "k.pem", &first_key);
    let addr = serve(TlsConfig::from_pem_files(&cert_path, &key_path).unwrap()).await;
    // The common name is in the DER as plain text.
    let served_cn = |tls: &Tls| {
        let der = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        String::from_utf8_lossy(&der).into_owned()
    };
    let before = connect(addr, client_config(&ca.pem, &[b"h2"], None))
        .await
        .unwrap();
    assert!(served_cn(&before).contains("first"));

    // The files are replaced (key first, then certificate), as a renewal job would.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (second, second_key) = leaf(&ca, "second", &["localhost"]);
    write(dir.path(), "k.pem", &second_key);
    write(dir.path(), "c.pem", &second);
    let after = connect(addr, client_config(&ca.pem, &[b"h2"], None))
        .await
        .unwrap();
    assert!(served_cn(&after).contains("second"));
    assert_eq!(get_over(after, "/").await.unwrap(), "hello over TLS");
}

#[tokio::test]
async fn a_stalled_handshake_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority("test CA");
    let (cert, key) = leaf(&ca, "localhost", &["localhost"]);
    let tls = TlsConfig::from_pem_files(
        write(dir.path(), "c.pem", &cert),
        write(dir.path(), "k.pem", &key),
    )
    .unwrap()
    .handshake_timeout(Duration::from_millis(300));
    let addr = serve(tls).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(3), silent.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the silent client was not cut off"
    );
    // Plain HTTP on the TLS port is not a handshake: closed, and the server keeps serving.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), plain.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "plain HTTP was served on the TLS port"
    );
    let ok = connect(addr, client_config(&ca.pem, &[b"h2"], None))
        .await
        .unwrap();
    assert_eq!(get_over(ok, "/").await.unwrap(), "hello over TLS");
}

#[test]
fn a_mismatched_or_missing_key_fails_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority("test CA");
    let (cert, _) = leaf(&ca, "localhost", &["localhost"]);
    let (_, other_key) = leaf(&ca, "other", &["localhost"]);
    let cert_path = write(dir.path(), "c.pem", &cert);
    assert!(TlsConfig::from_pem_files(&cert_path, write(dir.path(), "k.pem", &other_key)).is_err());
    assert!(TlsConfig::from_pem_files(&cert_path, dir.path().join("missing.pem")).is_err());
    assert!(TlsConfig::from_pem_files(write(dir.path(), "empty.pem", ""), &cert_path).is_err());
}
