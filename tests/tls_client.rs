//! The client side of TLS, over real sockets with certificates made in the test (rcgen): a
//! service served over TLS registers as `https`, and a `ServiceClient` that trusts its CA and
//! presents a client certificate calls it through discovery (mutual TLS, the handler seeing
//! the caller). Without the client certificate, with another CA, with no TLS configuration,
//! or when the certificate names another service, the call is refused.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use microkit::client::{ClientConfig, ClientError, ClientTls, ServiceClient};
use microkit::discovery::{Instance, MemoryRegistry, Registry, Scheme};
use microkit::router::get;
use microkit::server::{PeerIdentity, TlsConfig};
use microkit::service::Microservice;
use microkit::Router;

use microkit_test_support::certs::{authority, leaf_files, write, Authority};

/// A CA, a directory for PEM files and a registry, for one test.
struct Fixture {
    dir: tempfile::TempDir,
    ca: Authority,
    registry: Arc<MemoryRegistry>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority("services CA");
    write(dir.path(), "ca.pem", &ca.pem);
    Fixture {
        dir,
        ca,
        registry: Arc::new(MemoryRegistry::new()),
    }
}

impl Fixture {
    fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Serves `name` over TLS with a certificate for `cert_name` (admitting only clients the
    /// CA signed when `mutual`), registered.
    async fn serve(
        &self,
        name: &str,
        cert_name: &str,
        mutual: bool,
        edit: impl FnOnce(Instance) -> Instance,
    ) -> SocketAddr {
        let (cert, key) = leaf_files(self.dir.path(), &self.ca, name, &[cert_name]);
        let mut tls = TlsConfig::from_pem_files(cert, key).unwrap();
        if mutual {
            tls = tls.client_ca(self.ca_pem()).unwrap();
        }
        let router: Router = Router::new().route(
            "/whoami",
            get(|peer: Option<PeerIdentity>| async move {
                match peer {
                    Some(peer) => peer.common_name().unwrap_or("-").to_owned(),
                    None => "anonymous".to_owned(),
                }
            }),
        );
        // Registered when `register` returns: callers find it at once.
        let service = Microservice::new(name, router)
            .registry(self.registry.clone())
            .tls(tls)
            .instance(edit)
            .bind()
            .await
            .unwrap()
            .register()
            .await
            .unwrap();
        let addr = service.local_addr();
        tokio::spawn(service.run(std::future::pending()));
        addr
    }

    /// A client (one attempt, so that a refusal is reported as it happened) with `tls`.
    fn client(&self, tls: Option<ClientTls>) -> ServiceClient {
        let config = ClientConfig::default().max_attempts(1);
        let config = match tls {
            Some(tls) => config.tls(tls),
            None => config,
        };
        ServiceClient::with_config(self.registry.clone(), config)
    }
}

async fn whoami(client: &ServiceClient, service: &str) -> Result<String, ClientError> {
    let request = http::Request::get("/whoami")
        .body(microkit::Body::empty())
        .unwrap();
    let response = client.send(service, request).await?;
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect_limited(1024).await.unwrap();
    Ok(String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_service_over_mutual_tls_is_called_through_discovery() {
    let fx = fixture();
    fx.serve("catalog", "catalog", true, |instance| instance)
        .await;
    let registered = fx.registry.resolve("catalog").await.unwrap();
    assert_eq!(registered[0].scheme, Scheme::Https);

    let (cert, key) = leaf_files(fx.dir.path(), &fx.ca, "orders", &["orders"]);
    let tls = ClientTls::trusting(fx.ca_pem())
        .unwrap()
        .client_cert(cert, key)
        .unwrap();
    assert!(tls.has_client_cert());
    let client = fx.client(Some(tls));
    // The service sees who called; later calls go out on the pooled TLS connection.
    for _ in 0..3 {
        assert_eq!(whoami(&client, "catalog").await.unwrap(), "orders");
    }
}

#[tokio::test]
async fn without_a_client_certificate_the_service_refuses_the_call() {
    let fx = fixture();
    fx.serve("catalog", "catalog", true, |instance| instance)
        .await;
    let tls = ClientTls::trusting(fx.ca_pem()).unwrap();
    let err = whoami(&fx.client(Some(tls)), "catalog").await.unwrap_err();
    assert!(err.status().is_none(), "refused at the handshake: {err}");
}

#[tokio::test]
async fn a_certificate_naming_another_service_is_refused() {
    let fx = fixture();
    // The impostor holds a certificate the CA really signed, but for `catalog`.
    fx.serve("impostor", "catalog", false, |instance| instance)
        .await;
    let client = fx.client(Some(ClientTls::trusting(fx.ca_pem()).unwrap()));
    let err = whoami(&client, "impostor").await.unwrap_err();
    assert!(
        err.to_string().contains("certificate"),
        "the certificate check refused it: {err}"
    );

    // Registered under the name its certificate carries, such a server is accepted.
    fx.serve("stats", "stats.internal", false, |instance| {
        instance.with_https(Some("stats.internal".into()))
    })
    .await;
    assert_eq!(whoami(&client, "stats").await.unwrap(), "anonymous");
}

#[tokio::test]
async fn a_server_from_another_ca_or_a_client_without_tls_is_refused() {
    let fx = fixture();
    fx.serve("catalog", "catalog", false, |instance| instance)
        .await;
    let stranger = authority("another CA");
    let other = ClientTls::trusting(write(fx.dir.path(), "other.pem", &stranger.pem)).unwrap();
    let err = whoami(&fx.client(Some(other)), "catalog")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");

    let err = whoami(&fx.client(None), "catalog").await.unwrap_err();
    assert!(err.to_string().contains("no TLS configuration"), "{err}");
}
