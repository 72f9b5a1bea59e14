//! `EtcdRegistry` against a real etcd that speaks TLS only, requires client certificates
//! (`--client-cert-auth`) and has auth enabled, with certificates made here by a test CA
//! (rcgen) and users made through etcd's own API: registering, resolving and watching work
//! with the right CA, client certificate and password, and each missing or wrong piece is
//! refused with an error that says which.
//!
//! Without `etcd` on `PATH` the tests are skipped, unless `CI=true` or
//! `MICROKIT_REQUIRE_SERVICES=1`, when they fail.

use microkit_test_support as support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use microkit::client::ClientTls;
use microkit::discovery::{EtcdRegistry, Instance, Registry};
use serde_json::{json, Value};
use support::certs;
use support::etcd::{base64, Etcd};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

const PATIENCE: Duration = Duration::from_secs(15);
const PREFIX: &str = "/microkit-tls/";
const USER: &str = "catalog";
const PASSWORD: &str = "catalog-secret";
const ROOT_PASSWORD: &str = "root-secret";
/// The shop's user, whose password needs percent-encoding in a URL.
const SHOP_USER: &str = "shop";
const SHOP_PASSWORD: &str = "p@ss:w/rd?#,%é";
const SHOP_PASSWORD_ENCODED: &str = "p%40ss%3Aw%2Frd%3F%23%2C%25%C3%A9";
/// Where the shop registers (`EtcdRegistry::DEFAULT_PREFIX`).
const SHOP_PREFIX: &str = "/microkit/services/";

/// An etcd with TLS, client certificates and auth on, and the files a client needs.
struct SecureEtcd {
    etcd: Etcd,
    admin: Admin,
    ca: PathBuf,
    other_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// A client certificate with a common name, which etcd's gateway refuses.
    named_client: (PathBuf, PathBuf),
    _files: tempfile::TempDir,
}

impl SecureEtcd {
    async fn start(test: &str) -> Option<Self> {
        let files = tempfile::tempdir().unwrap();
        let dir = files.path();
        let authority = certs::authority("microkit etcd test CA");
        let ca = certs::write(dir, "ca.pem", &authority.pem);
        let other_ca = certs::write(dir, "other-ca.pem", &certs::authority("another CA").pem);
        let (server_cert, server_key) =
            certs::leaf_files(dir, &authority, "server", &["localhost", "127.0.0.1"]);
        let (client_cert, client_key) = client_files(dir, &authority, "client", None);
        let named_client = client_files(dir, &authority, "named", Some(USER));
        let etcd = Etcd::start_tls(test, &server_cert, &server_key, Some(&ca)).await?;
        let admin = Admin::new(
            etcd.client_port(),
            &authority.pem,
            &client_cert,
            &client_key,
        );
        let server = Self {
            etcd,
            admin,
            ca,
            other_ca,
            client_cert,
            client_key,
            named_client,
            _files: files,
        };
        server.enable_auth().await;
        Some(server)
    }

    /// A root user (etcd needs one to enable auth) and `USER`, allowed to read and write
    /// under `PREFIX` only; then auth on.
    async fn enable_auth(&self) {
        let admin = &self.admin;
        // etcd may still be starting: the first call waits for it.
        let deadline = Instant::now() + PATIENCE;
        while let Err(error) = admin
            .post(
                "/v3/auth/user/add",
                json!({"name": "root", "password": ROOT_PASSWORD}),
                None,
            )
            .await
        {
            assert!(Instant::now() < deadline, "etcd did not answer: {error}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let prefix_end = |prefix: &str| {
            let mut end = prefix.as_bytes().to_vec();
            *end.last_mut().unwrap() += 1;
            end
        };
        for (path, body) in [
            ("/v3/auth/role/add", json!({"name": "root"})),
            (
                "/v3/auth/user/grant",
                json!({"user": "root", "role": "root"}),
            ),
            ("/v3/auth/role/add", json!({"name": "services"})),
            (
                "/v3/auth/role/grant",
                json!({"name": "services", "perm": {
                    "permType": "READWRITE", "key": base64(PREFIX), "range_end": base64(prefix_end(PREFIX))
                }}),
            ),
            ("/v3/auth/role/add", json!({"name": "shop"})),
            (
                "/v3/auth/role/grant",
                json!({"name": "shop", "perm": {
                    "permType": "READWRITE", "key": base64(SHOP_PREFIX),
                    "range_end": base64(prefix_end(SHOP_PREFIX))
                }}),
            ),
            (
                "/v3/auth/user/add",
                json!({"name": SHOP_USER, "password": SHOP_PASSWORD}),
            ),
            (
                "/v3/auth/user/grant",
                json!({"user": SHOP_USER, "role": "shop"}),
            ),
            (
                "/v3/auth/user/add",
                json!({"name": USER, "password": PASSWORD}),
            ),
            (
                "/v3/auth/user/grant",
                json!({"user": USER, "role": "services"}),
            ),
            ("/v3/auth/enable", json!({})),
        ] {
            admin.post(path, body, None).await.unwrap();
        }
    }

    fn client_tls(&self) -> ClientTls {
        ClientTls::trusting(&self.ca)
            .unwrap()
            .client_cert(&self.client_cert, &self.client_key)
            .unwrap()
    }

    fn registry(&self, tls: ClientTls) -> EtcdRegistry {
        EtcdRegistry::connect(&[self.etcd.endpoint()])
            .unwrap()
            .with_tls(tls)
            .with_prefix(PREFIX)
            .with_ttl(Duration::from_secs(2))
    }

    /// The registry URL of this etcd: `etcds://` with `userinfo` and the query.
    fn url(&self, userinfo: &str, query: &str) -> String {
        format!(
            "etcds://{userinfo}127.0.0.1:{}?{query}",
            self.etcd.client_port()
        )
    }

    /// The query naming the CA and the client certificate.
    fn tls_query(&self) -> String {
        format!(
            "cacert={}&cert={}&key={}",
            self.ca.display(),
            self.client_cert.display(),
            self.client_key.display()
        )
    }

    /// A root token, for the administrator's calls once auth is on.
    async fn root_token(&self) -> String {
        let answer = self
            .admin
            .post(
                "/v3/auth/authenticate",
                json!({"name": "root", "password": ROOT_PASSWORD}),
                None,
            )
            .await
            .unwrap();
        answer["token"].as_str().unwrap().to_owned()
    }
}

/// etcd's JSON API over TLS with the client certificate, for the test's own setup calls.
struct Admin {
    port: u16,
    tls: TlsConnector,
}

impl Admin {
    fn new(port: u16, ca_pem: &str, cert: &PathBuf, key: &PathBuf) -> Self {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let chain = vec![CertificateDer::from_pem_file(cert).unwrap()];
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let config = ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
        Self {
            port,
            tls: TlsConnector::from(Arc::new(config)),
        }
    }

    /// POSTs `body` to `path`: the JSON answer, or the status and answer as the error.
    async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Result<Value, String> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|err| err.to_string())?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|err| err.to_string())?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|err| err.to_string())?;
        tokio::spawn(connection);
        let mut request = http::Request::post(path)
            .header("host", format!("127.0.0.1:{}", self.port))
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let response = sender
            .send_request(request)
            .await
            .map_err(|err| err.to_string())?;
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(answer)
        } else {
            Err(format!("{status}: {answer}"))
        }
    }
}

/// A client certificate for `USER`: named by its SAN, with `common_name` in its subject if
/// given (etcd's gateway refuses a certificate with one once auth is on: the name would be
/// taken for a user over gRPC and is ignored over the gateway).
fn client_files(
    dir: &std::path::Path,
    authority: &certs::Authority,
    stem: &str,
    common_name: Option<&str>,
) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![USER.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(name) = common_name {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
    }
    let cert = params.signed_by(&key, &authority.issuer).unwrap();
    (
        certs::write(dir, &format!("{stem}.pem"), &cert.pem()),
        certs::write(dir, &format!("{stem}.key"), &key.serialize_pem()),
    )
}

fn instance(port: u16) -> Instance {
    Instance::new("catalog", SocketAddr::from(([127, 0, 0, 1], port)))
        .with_id(format!("catalog-{port}"))
}

fn ports(list: &[Instance]) -> Vec<u16> {
    let mut ports: Vec<u16> = list.iter().map(|i| i.addr.port()).collect();
    ports.sort_unstable();
    ports
}

/// The error of registering through `registry`, as text.
async fn register_error(registry: &EtcdRegistry) -> String {
    match registry.register(instance(1)).await {
        Ok(_) => panic!("registered"),
        Err(error) => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                text.push_str(&format!(" / {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_resolves_and_watches_over_mutual_tls_with_a_password() {
    let Some(server) = SecureEtcd::start("tls-auth").await else {
        return;
    };
    let registry = server
        .registry(server.client_tls())
        .with_credentials(USER, PASSWORD);
    let registration = registry.register(instance(7001)).await.unwrap();
    assert_eq!(ports(&registry.resolve("catalog").await.unwrap()), [7001]);
    let mut watch = registry.watch("catalog").await.unwrap();
    assert_eq!(ports(&watch.borrow_and_update()), [7001]);

    // Outlives its leases' keepalives (TTL 2 s, every 0.67 s) with the same token.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ports(&registry.resolve("catalog").await.unwrap()), [7001]);

    // Tokens are invalidated (auth turned off and on again drops them all): the registry
    // authenticates again on its own.
    let root = server.root_token().await;
    server
        .admin
        .post("/v3/auth/disable", json!({}), Some(&root))
        .await
        .unwrap();
    server
        .admin
        .post("/v3/auth/enable", json!({}), None)
        .await
        .unwrap();
    let second = registry.register(instance(7002)).await.unwrap();
    assert_eq!(
        ports(&registry.resolve("catalog").await.unwrap()),
        [7001, 7002]
    );

    registration.deregister().await;
    second.deregister().await;
    assert!(registry.resolve("catalog").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_or_none_is_refused() {
    let Some(server) = SecureEtcd::start("tls-auth-refused").await else {
        return;
    };
    let error = register_error(
        &server
            .registry(server.client_tls())
            .with_credentials(USER, "not the password"),
    )
    .await;
    assert!(error.contains("authentication failed"), "{error}");
    // Without credentials the caller is nobody, with no rights.
    let error = register_error(&server.registry(server.client_tls())).await;
    assert!(error.contains("permission denied"), "{error}");
    // A user without rights outside its prefix.
    let elsewhere = server
        .registry(server.client_tls())
        .with_credentials(USER, PASSWORD)
        .with_prefix("/other/");
    let error = register_error(&elsewhere).await;
    assert!(error.contains("permission denied"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_without_the_right_ca_or_client_certificate_is_refused() {
    let Some(server) = SecureEtcd::start("tls-refused").await else {
        return;
    };
    let wrong_ca = ClientTls::trusting(&server.other_ca)
        .unwrap()
        .client_cert(&server.client_cert, &server.client_key)
        .unwrap();
    let error = register_error(&server.registry(wrong_ca).with_credentials(USER, PASSWORD)).await;
    assert!(error.contains("UnknownIssuer"), "{error}");

    let no_client_cert = ClientTls::trusting(&server.ca).unwrap();
    let error = register_error(
        &server
            .registry(no_client_cert)
            .with_credentials(USER, PASSWORD),
    )
    .await;
    assert!(error.contains("etcd is unreachable"), "{error}");

    let no_tls = EtcdRegistry::connect(&[server.etcd.endpoint()])
        .unwrap()
        .with_credentials(USER, PASSWORD);
    let error = register_error(&no_tls).await;
    assert!(error.contains("needs EtcdRegistry::with_tls"), "{error}");

    let (cert, key) = &server.named_client;
    let named = ClientTls::trusting(&server.ca)
        .unwrap()
        .client_cert(cert, key)
        .unwrap();
    let error = register_error(&server.registry(named).with_credentials(USER, PASSWORD)).await;
    assert!(error.contains("CommonName of client"), "{error}");

    // Plain HTTP to the TLS port is no way in either.
    let plain = EtcdRegistry::connect(&[format!("127.0.0.1:{}", server.etcd.client_port())])
        .unwrap()
        .with_credentials(USER, PASSWORD);
    let error = register_error(&plain).await;
    assert!(error.contains("etcd"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_url_carries_tls_and_credentials() {
    let Some(server) = SecureEtcd::start("tls-url").await else {
        return;
    };
    let credentials = format!("{SHOP_USER}:{SHOP_PASSWORD_ENCODED}@");
    let url = server.url(&credentials, &server.tls_query());
    let registry = EtcdRegistry::from_url(&url).unwrap();
    let shown = format!("{registry:?}");
    assert!(
        shown.contains("shop") && !shown.contains("p@ss") && !shown.contains("%40"),
        "{shown}"
    );
    let registration = registry.register(instance(7101)).await.unwrap();
    assert_eq!(ports(&registry.resolve("catalog").await.unwrap()), [7101]);
    let watch = registry.watch("catalog").await.unwrap();
    assert_eq!(ports(&watch.borrow()), [7101]);
    registration.deregister().await;
    assert!(registry.resolve("catalog").await.unwrap().is_empty());

    // The password in a file instead (as a secret is mounted, with a trailing newline).
    let secrets = support::shop::temp_data_dir();
    let password_file = secrets.path().join("etcd-password");
    std::fs::write(&password_file, format!("{SHOP_PASSWORD}\n")).unwrap();
    let from_file = server.url(
        &format!("{SHOP_USER}@"),
        &format!(
            "{}&password_file={}",
            server.tls_query(),
            password_file.display()
        ),
    );
    let registration = EtcdRegistry::from_url(&from_file)
        .unwrap()
        .register(instance(7102))
        .await
        .unwrap();
    assert_eq!(ports(&registry.resolve("catalog").await.unwrap()), [7102]);
    registration.deregister().await;
    std::fs::write(&password_file, "not the password\n").unwrap();
    let error = register_error(&EtcdRegistry::from_url(&from_file).unwrap()).await;
    assert!(error.contains("authentication failed"), "{error}");

    // Each piece the URL leaves out or gets wrong is refused, saying why.
    let wrong_password = server.url(&format!("{SHOP_USER}:p%40ss@"), &server.tls_query());
    let error = register_error(&EtcdRegistry::from_url(&wrong_password).unwrap()).await;
    assert!(error.contains("authentication failed"), "{error}");
    // Not percent-encoded, the password makes no sense as a URL: refused, and not shown.
    let unencoded = server.url(
        &format!("{SHOP_USER}:{SHOP_PASSWORD}@"),
        &server.tls_query(),
    );
    let error = EtcdRegistry::from_url(&unencoded).unwrap_err().to_string();
    assert!(
        !error.contains("ss:w") && !error.contains("rd?") && !error.contains(",%"),
        "{error}"
    );
    let anonymous = server.url("", &server.tls_query());
    let error = register_error(&EtcdRegistry::from_url(&anonymous).unwrap()).await;
    assert!(error.contains("permission denied"), "{error}");
    let no_client_cert = server.url(&credentials, &format!("cacert={}", server.ca.display()));
    let error = register_error(&EtcdRegistry::from_url(&no_client_cert).unwrap()).await;
    assert!(error.contains("etcd is unreachable"), "{error}");
    let other_ca = format!(
        "cacert={}&cert={}&key={}",
        server.other_ca.display(),
        server.client_cert.display(),
        server.client_key.display()
    );
    let error =
        register_error(&EtcdRegistry::from_url(&server.url(&credentials, &other_ca)).unwrap())
            .await;
    assert!(error.contains("UnknownIssuer"), "{error}");
    // Without cacert the system's CAs are used, and they do not know the test CA.
    let system_cas = format!(
        "cert={}&key={}",
        server.client_cert.display(),
        server.client_key.display()
    );
    match EtcdRegistry::from_url(&server.url(&credentials, &system_cas)) {
        Ok(registry) => {
            let error = register_error(&registry).await;
            assert!(error.contains("UnknownIssuer"), "{error}");
        }
        Err(error) => assert!(
            error.to_string().contains("no platform root certificates"),
            "{error}"
        ),
    }
    // A file that is not there fails at once, naming it; the password is never shown.
    let missing = server.url(&credentials, "cacert=/nonexistent/ca.pem");
    let error = EtcdRegistry::from_url(&missing).unwrap_err().to_string();
    assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    let error = EtcdRegistry::from_url(&format!("{url}&colour=blue"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("colour") && !error.contains(SHOP_PASSWORD_ENCODED),
        "{error}"
    );
    // Plain etcd:// to the TLS port gets nowhere.
    let plain = format!(
        "etcd://{credentials}127.0.0.1:{}",
        server.etcd.client_port()
    );
    let error = register_error(&EtcdRegistry::from_url(&plain).unwrap()).await;
    assert!(error.contains("etcd"), "{error}");
}

/// The shop, all services and the gateway in one process, registered in an etcd with TLS,
/// client certificates and auth, reached through `--registry etcds://...`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_registers_through_an_etcds_url() {
    use support::shop::{id_of, temp_data_dir, wait_healthy, ShopProcess};

    let Some(server) = SecureEtcd::start("tls-shop").await else {
        return;
    };
    // The password in the environment, so that it is not in the process list.
    let url = server.url(&format!("{SHOP_USER}@"), &server.tls_query());
    let data = temp_data_dir();
    let dir = data.path().display().to_string();
    let args = [
        "--registry",
        &url,
        "--data-dir",
        &dir,
        "--listen",
        "127.0.0.1:0",
    ];
    let password = [(EtcdRegistry::PASSWORD_VARIABLE, SHOP_PASSWORD)];
    let shop = ShopProcess::start_with_env(&args, &password, 7).await;
    let api = shop.api("gateway");
    wait_healthy(api, PATIENCE).await;
    let product = api
        .create("/product/", json!({"name": "Lamp", "price_cents": 1999}))
        .await;
    let fetched = api.fetch(&format!("/product/{}", id_of(&product))).await;
    assert_eq!(fetched["name"], "Lamp");

    // The instances are in etcd, under the shop's prefix, as the shop's user.
    let url = server.url(
        &format!("{SHOP_USER}:{SHOP_PASSWORD_ENCODED}@"),
        &server.tls_query(),
    );
    let registry = EtcdRegistry::from_url(&url).unwrap();
    let catalog = registry.resolve("catalog").await.unwrap();
    assert_eq!(
        ports(&catalog),
        [shop.addr("catalog").port()],
        "the catalog the shop registered"
    );
}
