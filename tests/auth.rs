//! Verified callers over real sockets: bearer JWTs (HS256, RS256, ES256, EdDSA; fixed keys, a
//! JWKS file and a JWKS URL with rotation) and API keys. Every refusal is 401 (or 403 for a
//! missing scope) with a `WWW-Authenticate` challenge, and the handler never runs.

use microkit_test_support as support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, get_current_timestamp, Algorithm, EncodingKey, Header};
use microkit::auth::{ApiKeys, Authenticate, Identity, JwtKeys, JwtVerifier};
use microkit::http::{header, Method, StatusCode};
use microkit::router::{get, post};
use microkit::{Router, ServerConfig};
use serde_json::{json, Value};

use support::{request, send, spawn, Reply, TestServer};

const SECRET: &[u8] = b"an HS256 secret of 32 bytes or more";
const ISSUER: &str = "https://login.test";
const AUDIENCE: &str = "shop";

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/auth")
        .join(name)
}

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).expect("a test key")
}

fn claims() -> Value {
    let now = get_current_timestamp();
    json!({"sub": "ada", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "nbf": now - 5,
           "scope": "cart:write orders:read"})
}

fn sign(algorithm: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).expect("signing a test token")
}

fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        None,
        claims,
        &EncodingKey::from_secret(SECRET),
    )
}

fn rs256(key: &str, kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(&pem(key)).unwrap();
    sign(Algorithm::RS256, kid, claims, &key)
}

/// A server whose `POST /write` counts the calls that got through, and whose `GET /me`
/// answers the caller's identity, or `anonymous`.
struct App {
    server: TestServer,
    writes: Arc<AtomicUsize>,
}

async fn app(layer: Authenticate) -> App {
    let writes = Arc::new(AtomicUsize::new(0));
    let counter = writes.clone();
    let router = Router::new()
        .route(
            "/me",
            get(|identity: Option<Identity>| async move {
                match identity {
                    Some(identity) => format!("{} {:?}", identity.subject(), identity.scopes()),
                    None => "anonymous".to_owned(),
                }
            }),
        )
        .route(
            "/write",
            post(move |identity: Identity| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    identity.subject().to_owned()
                }
            }),
        )
        .layer(layer);
    App {
        server: spawn(router, ServerConfig::default()).await,
        writes,
    }
}

impl App {
    async fn call(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = request(method, path, "");
        for (name, value) in headers {
            request.headers_mut().append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        send(self.server.addr, request).await
    }

    async fn write_with_bearer(&self, token: &str) -> Reply {
        let value = format!("Bearer {token}");
        self.call(Method::POST, "/write", &[("authorization", &value)])
            .await
    }

    fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
}

fn verifier(keys: JwtKeys) -> JwtVerifier {
    JwtVerifier::new(keys).issuer(ISSUER).audience(AUDIENCE)
}

/// A refusal: the status, a problem body, and a challenge carrying `error`.
fn assert_refused(reply: &Reply, status: StatusCode, error: Option<&str>) {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(reply.header("content-type"), "application/problem+json");
    assert_eq!(reply.json()["status"], status.as_u16());
    let challenge = reply.header("www-authenticate");
    assert!(challenge.starts_with("Bearer realm=\""), "{challenge}");
    match error {
        Some(error) => assert!(
            challenge.contains(&format!("error=\"{error}\"")),
            "{challenge}"
        ),
        None => assert!(!challenge.contains("error="), "{challenge}"),
    }
}

#[tokio::test]
async fn each_signature_algorithm_verifies_with_its_key() {
    let keys = JwtKeys::hmac(SECRET)
        .and(JwtKeys::rsa_pem(pem("rsa1.pub")).unwrap())
        .and(JwtKeys::ec_pem(pem("ec.pub")).unwrap())
        .and(JwtKeys::ed_pem(pem("ed.pub")).unwrap());
    let app = app(Authenticate::new().jwt(verifier(keys))).await;
    let claims = claims();
    let tokens = [
        hs256(&claims),
        rs256("rsa1.key", None, &claims),
        sign(
            Algorithm::ES256,
            None,
            &claims,
            &EncodingKey::from_ec_pem(&pem("ec.key")).unwrap(),
        ),
        sign(
            Algorithm::EdDSA,
            None,
            &claims,
            &EncodingKey::from_ed_pem(&pem("ed.key")).unwrap(),
        ),
    ];
    for token in &tokens {
        let reply = app.write_with_bearer(token).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.text(), "ada");
    }
    assert_eq!(app.writes(), 4);
    let me = app
        .call(
            Method::GET,
            "/me",
            &[("authorization", &format!("bearer {}", tokens[0]))],
        )
        .await;
    assert_eq!(me.text(), r#"ada ["cart:write", "orders:read"]"#);
}

#[tokio::test]
async fn every_verification_failure_is_401_and_changes_nothing() {
    let keys = JwtKeys::rsa_pem(pem("rsa1.pub")).unwrap().kid("rsa-1");
    let app = app(Authenticate::new().jwt(verifier(keys).max_token_bytes(4096))).await;
    let now = get_current_timestamp();
    let with = |change: Value| {
        let mut claims = claims();
        for (name, value) in change.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    };
    let good = rs256("rsa1.key", Some("rsa-1"), &claims());
    let (head, rest) = good.split_once('.').unwrap();
    let signature = rest.rsplit_once('.').unwrap().1;
    let forged_payload = URL_SAFE_NO_PAD.encode(with(json!({"sub": "mallory"})).to_string());
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    // Algorithm confusion: HS256 "signed" with the RSA public key as the shared secret.
    let confused = sign(
        Algorithm::HS256,
        Some("rsa-1"),
        &claims(),
        &EncodingKey::from_secret(&pem("rsa1.pub")),
    );
    let cases = [
        (
            "expired",
            rs256("rsa1.key", Some("rsa-1"), &with(json!({"exp": now - 3600}))),
        ),
        (
            "not yet valid",
            rs256("rsa1.key", Some("rsa-1"), &with(json!({"nbf": now + 3600}))),
        ),
        (
            "wrong audience",
            rs256("rsa1.key", Some("rsa-1"), &with(json!({"aud": "billing"}))),
        ),
        (
            "wrong issuer",
            rs256(
                "rsa1.key",
                Some("rsa-1"),
                &with(json!({"iss": "https://evil.test"})),
            ),
        ),
        ("no exp", {
            let mut claims = claims();
            claims.as_object_mut().unwrap().remove("exp");
            rs256("rsa1.key", Some("rsa-1"), &claims)
        }),
        (
            "another key's signature",
            rs256("rsa2.key", Some("rsa-1"), &claims()),
        ),
        (
            "a forged payload",
            format!("{head}.{forged_payload}.{signature}"),
        ),
        ("alg none", format!("{none_header}.{payload}.")),
        ("HS256 with the RSA public key", confused),
        (
            "an unknown kid",
            rs256("rsa1.key", Some("rsa-9"), &claims()),
        ),
        (
            "oversized",
            rs256(
                "rsa1.key",
                Some("rsa-1"),
                &with(json!({"pad": "x".repeat(5000)})),
            ),
        ),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    for (what, token) in &cases {
        let reply = app.write_with_bearer(token).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            reply.text()
        );
        assert_refused(&reply, StatusCode::UNAUTHORIZED, Some("invalid_token"));
    }
    assert_eq!(app.writes(), 0, "no refused request reached the handler");
    let accepted = app.write_with_bearer(&good).await;
    assert_eq!(accepted.status, StatusCode::OK);
}

#[tokio::test]
async fn missing_credentials_and_missing_scopes() {
    let layer = Authenticate::new()
        .jwt(verifier(JwtKeys::hmac(SECRET)))
        .require_scope("cart:write")
        .realm("shop \"edge\"");
    let app = app(layer).await;
    let missing = app.call(Method::POST, "/write", &[]).await;
    assert_refused(&missing, StatusCode::UNAUTHORIZED, None);
    assert_eq!(
        missing.header("www-authenticate"),
        "Bearer realm=\"shop edge\""
    );
    let mut read_only = claims();
    read_only["scope"] = json!("orders:read");
    let forbidden = app.write_with_bearer(&hs256(&read_only)).await;
    assert_refused(
        &forbidden,
        StatusCode::FORBIDDEN,
        Some("insufficient_scope"),
    );
    assert!(forbidden
        .header("www-authenticate")
        .contains("scope=\"cart:write\""));
    for odd in ["Basic YWRhOnB3", "Bearer", "Bearer    "] {
        let reply = app
            .call(Method::POST, "/write", &[("authorization", odd)])
            .await;
        assert_refused(&reply, StatusCode::UNAUTHORIZED, Some("invalid_token"));
    }
    assert_eq!(app.writes(), 0);
    assert_eq!(
        app.write_with_bearer(&hs256(&claims())).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn optional_lets_the_anonymous_through_but_not_bad_tokens() {
    let app = app(Authenticate::new()
        .jwt(verifier(JwtKeys::hmac(SECRET)))
        .optional())
    .await;
    assert_eq!(app.call(Method::GET, "/me", &[]).await.text(), "anonymous");
    let bad = app
        .call(Method::GET, "/me", &[("authorization", "Bearer a.b.c")])
        .await;
    assert_refused(&bad, StatusCode::UNAUTHORIZED, Some("invalid_token"));
    // A handler that needs an identity still refuses the anonymous.
    let anonymous_write = app.call(Method::POST, "/write", &[]).await;
    assert_eq!(anonymous_write.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.writes(), 0);
}

#[tokio::test]
async fn api_keys_are_a_second_scheme() {
    let keys = ApiKeys::new().key(
        &ApiKeys::hash("mk_key_for_the_report_job_0001"),
        "report",
        ["stats:read"],
    );
    let app = app(Authenticate::new()
        .jwt(verifier(JwtKeys::hmac(SECRET)))
        .api_keys(keys))
    .await;
    let by_header = app
        .call(
            Method::GET,
            "/me",
            &[("x-api-key", "mk_key_for_the_report_job_0001")],
        )
        .await;
    assert_eq!(by_header.text(), r#"report ["stats:read"]"#);
    let by_scheme = app
        .call(
            Method::GET,
            "/me",
            &[("authorization", "ApiKey mk_key_for_the_report_job_0001")],
        )
        .await;
    assert_eq!(by_scheme.text(), r#"report ["stats:read"]"#);
    let unknown = app
        .call(
            Method::POST,
            "/write",
            &[("x-api-key", "mk_key_for_the_report_job_0002")],
        )
        .await;
    assert_refused(&unknown, StatusCode::UNAUTHORIZED, Some("invalid_token"));
    let token = format!("Bearer {}", hs256(&claims()));
    let both = app
        .call(
            Method::POST,
            "/write",
            &[
                ("x-api-key", "mk_key_for_the_report_job_0001"),
                ("authorization", &token),
            ],
        )
        .await;
    assert_refused(&both, StatusCode::UNAUTHORIZED, Some("invalid_token"));
    assert_eq!(app.writes(), 0);
}

/// The identity provider's JWKS endpoint: serves whatever document the test puts in place,
/// and counts fetches.
struct Provider {
    server: TestServer,
    document: Arc<Mutex<Vec<u8>>>,
    fetches: Arc<AtomicUsize>,
}

async fn provider(document: &str) -> Provider {
    let shared = Arc::new(Mutex::new(std::fs::read(data(document)).unwrap()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (served, counted) = (shared.clone(), fetches.clone());
    let router = Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = served.lock().unwrap().clone();
            async move { body }
        }),
    );
    Provider {
        server: spawn(router, ServerConfig::default()).await,
        document: shared,
        fetches,
    }
}

#[tokio::test]
async fn a_jwks_url_rotates_keys_without_downtime() {
    let idp = provider("jwks1.json").await;
    let url = format!("http://{}/.well-known/jwks.json", idp.server.addr);
    let keys = JwtKeys::jwks_url(&url)
        .unwrap()
        .refetch_interval(Duration::ZERO);
    let app = app(Authenticate::new().jwt(verifier(keys))).await;

    let old = rs256("rsa1.key", Some("rsa-1"), &claims());
    let new = rs256("rsa2.key", Some("rsa-2"), &claims());
    let ec = sign(
        Algorithm::ES256,
        Some("ec-1"),
        &claims(),
        &EncodingKey::from_ec_pem(&pem("ec.key")).unwrap(),
    );
    let ed = sign(
        Algorithm::EdDSA,
        Some("ed-1"),
        &claims(),
        &EncodingKey::from_ed_pem(&pem("ed.key")).unwrap(),
    );
    for token in [&old, &ec, &ed] {
        assert_eq!(app.write_with_bearer(token).await.status, StatusCode::OK);
    }
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "keys are cached");
    // Signed with a key not published yet: refused after one more fetch.
    assert_eq!(
        app.write_with_bearer(&new).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2);
    // The provider publishes the new key: the unknown kid triggers a fetch that finds it.
    *idp.document.lock().unwrap() = std::fs::read(data("jwks2.json")).unwrap();
    assert_eq!(app.write_with_bearer(&new).await.status, StatusCode::OK);
    assert_eq!(app.write_with_bearer(&old).await.status, StatusCode::OK);
    // The provider goes away: the keys held keep working.
    drop(idp);
    assert_eq!(app.write_with_bearer(&new).await.status, StatusCode::OK);
    assert_eq!(app.writes(), 6);
}

#[tokio::test]
async fn unknown_kids_do_not_make_the_server_fetch_per_request() {
    let idp = provider("jwks1.json").await;
    let url = format!("http://{}/.well-known/jwks.json", idp.server.addr);
    let app = app(Authenticate::new().jwt(verifier(JwtKeys::jwks_url(&url).unwrap()))).await;
    for n in 0..20 {
        let token = rs256("rsa1.key", Some(&format!("made-up-{n}")), &claims());
        assert_eq!(
            app.write_with_bearer(&token).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // The first use fetches, one unknown kid may fetch again; then the interval holds.
    assert!(
        idp.fetches.load(Ordering::SeqCst) <= 2,
        "{}",
        idp.fetches.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn a_jwks_file_is_read_again_for_a_new_kid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::copy(data("jwks1.json"), &path).unwrap();
    let keys = JwtKeys::jwks_file(&path)
        .unwrap()
        .refetch_interval(Duration::ZERO);
    let app = app(Authenticate::new().jwt(verifier(keys))).await;
    let new = rs256("rsa2.key", Some("rsa-2"), &claims());
    assert_eq!(
        app.write_with_bearer(&new).await.status,
        StatusCode::UNAUTHORIZED
    );
    std::fs::copy(data("jwks2.json"), &path).unwrap();
    assert_eq!(app.write_with_bearer(&new).await.status, StatusCode::OK);
    assert!(JwtKeys::jwks_file(dir.path().join("missing.json")).is_err());
}

/// The gateway verifies at the edge (reads open, writes need a token) and relays the caller to
/// a service that trusts only what the gateway signed.
#[tokio::test]
async fn the_gateway_relays_the_verified_caller_to_services() {
    use microkit::auth::{IdentityRelay, X_MICROKIT_IDENTITY};
    use microkit::client::ServiceClient;
    use microkit::discovery::MemoryRegistry;
    use microkit::gateway::Gateway;

    let relay = IdentityRelay::new(b"the secret the gateway and the services share");
    let service = app(Authenticate::new().trust_relay(relay.clone()).optional()).await;
    let registry = MemoryRegistry::new();
    let _registration = support::cluster::register(&registry, "svc", service.server.addr).await;
    let edge_router = Gateway::new(ServiceClient::new(registry))
        .route("/me", "svc")
        .route("/write", "svc")
        .on_forward(relay.forward_hook())
        .into_router()
        .layer(
            Authenticate::new()
                .jwt(verifier(JwtKeys::hmac(SECRET)))
                .optional_for_reads(),
        );
    let edge = App {
        server: spawn(edge_router, ServerConfig::default()).await,
        writes: Arc::new(AtomicUsize::new(0)),
    };

    let token = hs256(&claims());
    let write = edge.write_with_bearer(&token).await;
    assert_eq!(write.status, StatusCode::OK, "{}", write.text());
    assert_eq!(
        write.text(),
        "ada",
        "the service saw the caller the gateway verified"
    );
    let me = edge
        .call(
            Method::GET,
            "/me",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(me.text(), r#"ada ["cart:write", "orders:read"]"#);
    assert_eq!(edge.call(Method::GET, "/me", &[]).await.text(), "anonymous");
    let anonymous_write = edge.call(Method::POST, "/write", &[]).await;
    assert_refused(&anonymous_write, StatusCode::UNAUTHORIZED, None);

    // A forged relay header: refused at the gateway, and straight at the service.
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJl";
    let at_edge = edge
        .call(
            Method::GET,
            "/me",
            &[(X_MICROKIT_IDENTITY.as_str(), forged)],
        )
        .await;
    assert_eq!(at_edge.status, StatusCode::UNAUTHORIZED);
    let direct = service
        .call(
            Method::POST,
            "/write",
            &[(X_MICROKIT_IDENTITY.as_str(), forged)],
        )
        .await;
    assert_refused(&direct, StatusCode::UNAUTHORIZED, Some("invalid_token"));
    // One signed with another secret is no better.
    let mut headers = microkit::http::HeaderMap::new();
    let other = IdentityRelay::new(b"a secret that is not the shared one");
    let someone = Identity::new(
        microkit::auth::Scheme::Bearer,
        "mallory",
        ["cart:write"],
        Default::default(),
    );
    other.relay(&mut headers, Some(&someone));
    let value = headers[X_MICROKIT_IDENTITY].to_str().unwrap().to_owned();
    let signed_elsewhere = service
        .call(
            Method::POST,
            "/write",
            &[(X_MICROKIT_IDENTITY.as_str(), &value)],
        )
        .await;
    assert_eq!(signed_elsewhere.status, StatusCode::UNAUTHORIZED);
    // The right secret: the service takes it (what the gateway does).
    relay.relay(&mut headers, Some(&someone));
    let value = headers[X_MICROKIT_IDENTITY].to_str().unwrap().to_owned();
    let relayed = service
        .call(
            Method::POST,
            "/write",
            &[(X_MICROKIT_IDENTITY.as_str(), &value)],
        )
        .await;
    assert_eq!(relayed.text(), "mallory");
    assert_eq!(service.writes(), 2);
}
