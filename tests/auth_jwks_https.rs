//! JWKS over https, as real identity providers serve it: a provider on 127.0.0.1 serving TLS
//! with a certificate made here (rcgen), trusted through custom roots. A token signed by a
//! key only that document holds is accepted, a key the provider publishes later is picked up
//! (rotation), and a provider whose certificate is not trusted, names another host, stalls
//! or serves too much is never used: its tokens are 401, and the server keeps serving.

use microkit_test_support as support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::{encode, get_current_timestamp, Algorithm, EncodingKey, Header};
use microkit::auth::{Authenticate, Identity, JwtKeys, JwtVerifier};
use microkit::client::ClientTls;
use microkit::http::{Method, StatusCode};
use microkit::router::{get, post};
use microkit::server::TlsConfig;
use microkit::{Router, ServerConfig};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use support::certs::{authority, leaf_files, write, Authority};
use support::{request, send, spawn, TestServer};

const ISSUER: &str = "https://login.test";
const AUDIENCE: &str = "shop";
const JWKS_PATH: &str = "/.well-known/jwks.json";

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/auth")
        .join(name)
}

fn claims() -> Value {
    let now = get_current_timestamp();
    json!({"sub": "ada", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "nbf": now - 5})
}

/// An RS256 token signed with the test key `key`, naming `kid`.
fn rs256(key: &str, kid: &str) -> String {
    let key = EncodingKey::from_rsa_pem(&std::fs::read(data(key)).unwrap()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    encode(&header, &claims(), &key).unwrap()
}

/// Certificates for one test: the provider's CA, and a CA nobody should trust.
struct Pki {
    dir: tempfile::TempDir,
    ca: Authority,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = authority("identity provider CA");
        write(dir.path(), "ca.pem", &ca.pem);
        write(dir.path(), "other-ca.pem", &authority("another CA").pem);
        Self { dir, ca }
    }

    fn trusting(&self, file: &str) -> ClientTls {
        ClientTls::trusting(self.dir.path().join(file)).unwrap()
    }

    /// TLS for a server whose certificate names `names`.
    fn server_tls(&self, names: &[&str]) -> TlsConfig {
        let (cert, key) = leaf_files(self.dir.path(), &self.ca, "idp", names);
        TlsConfig::from_pem_files(cert, key).unwrap()
    }
}

/// The identity provider: serves, over TLS, whatever document the test puts in place, and
/// counts the fetches that reached it.
struct Provider {
    url: String,
    document: Arc<Mutex<Vec<u8>>>,
    fetches: Arc<AtomicUsize>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn provider(tls: TlsConfig, document: Vec<u8>) -> Provider {
    let shared = Arc::new(Mutex::new(document));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (served, counted) = (shared.clone(), fetches.clone());
    let router: Router = Router::new().route(
        JWKS_PATH,
        get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = served.lock().unwrap().clone();
            async move { body }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
    let server = microkit::serve(listener, router)
        .tls(tls)
        .with_graceful_shutdown(async move {
            let _ = signal.await;
        });
    tokio::spawn(async move { server.await });
    Provider {
        url: format!("https://127.0.0.1:{port}{JWKS_PATH}"),
        document: shared,
        fetches,
        _shutdown: shutdown,
    }
}

fn jwks(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap()
}

/// A server whose `POST /write` needs a token verified with `keys`.
async fn protected(keys: JwtKeys) -> TestServer {
    let verifier = JwtVerifier::new(keys).issuer(ISSUER).audience(AUDIENCE);
    let router = Router::new()
        .route(
            "/write",
            post(|identity: Identity| async move { identity.subject().to_owned() }),
        )
        .route("/health", get(|| async { "up" }))
        .layer(Authenticate::new().jwt(verifier).optional());
    spawn(router, ServerConfig::default()).await
}

async fn write_with(app: &TestServer, token: &str) -> StatusCode {
    let mut request = request(Method::POST, "/write", "");
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    send(app.addr, request).await.status
}

/// As [`write_with`], waiting up to `patience` for the answer (longer than the test
/// support's own limit, for a fetch that has to time out first).
async fn write_waiting(app: &TestServer, token: &str, patience: Duration) -> StatusCode {
    let stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut request = request(Method::POST, "/write", "");
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio::time::timeout(patience, sender.send_request(request))
        .await
        .expect("an answer in time")
        .unwrap()
        .status()
}

async fn still_serving(app: &TestServer) {
    let reply = send(app.addr, request(Method::GET, "/health", "")).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn keys_come_from_an_https_jwks_and_rotate() {
    let pki = Pki::new();
    let idp = provider(pki.server_tls(&["127.0.0.1"]), jwks("jwks1.json")).await;
    let keys = JwtKeys::jwks_url_with_tls(&idp.url, pki.trusting("ca.pem"))
        .unwrap()
        .refetch_interval(Duration::ZERO);
    let app = protected(keys).await;

    // rsa-1 is known only from the document served over https.
    let old = rs256("rsa1.key", "rsa-1");
    assert_eq!(write_with(&app, &old).await, StatusCode::OK);
    assert_eq!(write_with(&app, &old).await, StatusCode::OK);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "keys are cached");

    // A key not published yet: refused, after one more fetch.
    let new = rs256("rsa2.key", "rsa-2");
    assert_eq!(write_with(&app, &new).await, StatusCode::UNAUTHORIZED);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2);

    // The provider publishes it: the unknown kid fetches again and finds it, and tokens of
    // the key still published keep working throughout.
    *idp.document.lock().unwrap() = jwks("jwks2.json");
    assert_eq!(write_with(&app, &new).await, StatusCode::OK);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 3);
    assert_eq!(write_with(&app, &old).await, StatusCode::OK);
}

#[tokio::test]
async fn an_untrusted_provider_certificate_is_refused() {
    let pki = Pki::new();
    let idp = provider(pki.server_tls(&["127.0.0.1"]), jwks("jwks1.json")).await;
    let token = rs256("rsa1.key", "rsa-1");

    // Signed by a CA the client does not trust.
    let app =
        protected(JwtKeys::jwks_url_with_tls(&idp.url, pki.trusting("other-ca.pem")).unwrap())
            .await;
    assert_eq!(write_with(&app, &token).await, StatusCode::UNAUTHORIZED);
    still_serving(&app).await;

    // The operating system's authorities do not know the test CA either (a system without
    // any refuses the https URL up front, saying so).
    match JwtKeys::jwks_url(&idp.url) {
        Ok(keys) => {
            let app = protected(keys).await;
            assert_eq!(write_with(&app, &token).await, StatusCode::UNAUTHORIZED);
            still_serving(&app).await;
        }
        Err(error) => assert!(
            error.to_string().contains("no platform root certificates"),
            "{error}"
        ),
    }
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        0,
        "no document was fetched"
    );
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused() {
    let pki = Pki::new();
    let idp = provider(pki.server_tls(&["login.example"]), jwks("jwks1.json")).await;
    let app =
        protected(JwtKeys::jwks_url_with_tls(&idp.url, pki.trusting("ca.pem")).unwrap()).await;
    assert_eq!(
        write_with(&app, &rs256("rsa1.key", "rsa-1")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn fetches_are_bounded_in_size_and_time() {
    let pki = Pki::new();
    let token = rs256("rsa1.key", "rsa-1");

    // A document over the size limit (1 MiB) is not used.
    let mut huge = jwks("jwks1.json");
    huge.splice(
        1..1,
        format!("\"pad\": \"{}\",", "x".repeat(1 << 20)).into_bytes(),
    );
    let idp = provider(pki.server_tls(&["127.0.0.1"]), huge).await;
    let app =
        protected(JwtKeys::jwks_url_with_tls(&idp.url, pki.trusting("ca.pem")).unwrap()).await;
    assert_eq!(write_with(&app, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);

    // A provider that accepts connections and never answers: the fetch gives up, the
    // request is answered.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}{JWKS_PATH}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let app = protected(JwtKeys::jwks_url_with_tls(&url, pki.trusting("ca.pem")).unwrap()).await;
    let started = Instant::now();
    assert_eq!(
        write_waiting(&app, &token, Duration::from_secs(10)).await,
        StatusCode::UNAUTHORIZED
    );
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(9), "waited {waited:?}");
    still_serving(&app).await;
    held.abort();
}

#[test]
fn https_settings_are_refused_for_a_plain_url() {
    let pki = Pki::new();
    let error = JwtKeys::jwks_url_with_tls("http://127.0.0.1:1/jwks", pki.trusting("ca.pem"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("not https"), "{error}");
    assert!(JwtKeys::jwks_url("ftp://127.0.0.1/jwks").is_err());
}
