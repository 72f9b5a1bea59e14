//! Who may reach what, beyond a verified caller, over real sockets: gateway routes that
//! require a scope or a scheme per path prefix, and internal routes that only known
//! services may call, proven by a signed service token or by a mutual-TLS peer certificate.

use microkit_test_support as support;

use std::sync::Arc;

use jsonwebtoken::{encode, get_current_timestamp, EncodingKey, Header};
use microkit::auth::{
    ApiKeys, Authenticate, JwtKeys, JwtVerifier, RequireService, Requirement, Scheme,
    ServiceTokens, X_MICROKIT_SERVICE,
};
use microkit::client::{ClientConfig, ClientTls, ServiceClient};
use microkit::discovery::MemoryRegistry;
use microkit::gateway::{Gateway, GATEWAY_MARK};
use microkit::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use microkit::router::get;
use microkit::server::TlsConfig;
use microkit::service::Microservice;
use microkit::{Router, ServerConfig};
use serde_json::json;

use support::certs::{authority, leaf_files, write};
use support::{request, send, spawn, Reply};

const SECRET: &[u8] = b"an HS256 secret of 32 bytes or more";
const API_KEY: &str = "mk_key_for_the_report_job_0001";

fn bearer(scopes: &str) -> String {
    let claims = json!({ "sub": "ada", "scope": scopes, "exp": get_current_timestamp() + 300 });
    let token = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    format!("Bearer {token}")
}

async fn call(addr: std::net::SocketAddr, path: &str, headers: &[(HeaderName, String)]) -> Reply {
    let mut request = request(Method::GET, path, "");
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    send(addr, request).await
}

#[tokio::test]
async fn gateway_routes_require_a_scope_or_a_scheme_by_prefix() {
    let backend: Router = Router::new()
        .route("/invoices/{id}", get(|| async { "an invoice" }))
        .route("/reports/", get(|| async { "a report" }))
        .route("/products/", get(|| async { "products" }));
    let backend = spawn(backend, ServerConfig::default()).await;
    let registry = MemoryRegistry::new();
    let _registration = support::cluster::register(&registry, "svc", backend.addr).await;
    let keys = ApiKeys::new().key(&ApiKeys::hash(API_KEY), "report-job", ["reports"]);
    let edge = Gateway::new(ServiceClient::new(registry))
        .route("/invoices/{id}", "svc")
        .route("/reports/", "svc")
        .route("/products/", "svc")
        .require("/invoices", Requirement::scope("billing"))
        .require("/reports", Requirement::scheme(Scheme::ApiKey))
        .into_router()
        .layer(
            Authenticate::new()
                .jwt(JwtVerifier::new(JwtKeys::hmac(SECRET)))
                .api_keys(keys)
                .optional(),
        );
    let edge = spawn(edge, ServerConfig::default()).await;
    let auth = header::AUTHORIZATION;

    let open = call(edge.addr, "/products/", &[]).await;
    assert_eq!(open.status, 200, "an open route stays open");

    let anonymous = call(edge.addr, "/invoices/7", &[]).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous.header("www-authenticate").starts_with("Bearer"));
    let unscoped = call(edge.addr, "/invoices/7", &[(auth.clone(), bearer("cart"))]).await;
    assert_eq!(unscoped.status, StatusCode::FORBIDDEN);
    assert!(unscoped
        .header("www-authenticate")
        .contains("insufficient_scope"));
    let scoped = call(
        edge.addr,
        "/invoices/7",
        &[(auth.clone(), bearer("cart billing"))],
    )
    .await;
    assert_eq!(scoped.status, 200, "{}", scoped.text());
    assert_eq!(scoped.text(), "an invoice");

    let by_token = call(edge.addr, "/reports/", &[(auth.clone(), bearer("reports"))]).await;
    assert_eq!(by_token.status, StatusCode::UNAUTHORIZED, "only API keys");
    let x_api_key = HeaderName::from_static("x-api-key");
    let by_key = call(edge.addr, "/reports/", &[(x_api_key, API_KEY.to_owned())]).await;
    assert_eq!(by_key.status, 200, "{}", by_key.text());
}

async fn internal_service(layer: RequireService) -> support::TestServer {
    let router: Router = Router::new()
        .route("/emails/", get(|| async { "the outbox" }))
        .layer(layer);
    spawn(router, ServerConfig::default()).await
}

#[tokio::test]
async fn an_internal_route_admits_only_services_with_a_signed_token() {
    let tokens = ServiceTokens::new(b"a secret the services share, 32+ bytes");
    let server = internal_service(RequireService::new(["cart"]).tokens(tokens.clone())).await;
    let token = |tokens: &ServiceTokens, service: &str| {
        let (name, value) = tokens.header(service).unwrap();
        (name, value.to_str().unwrap().to_owned())
    };

    let cart = call(server.addr, "/emails/", &[token(&tokens, "cart")]).await;
    assert_eq!(cart.status, 200, "{}", cart.text());
    assert_eq!(cart.text(), "the outbox");
    for (what, headers) in [
        ("no token", vec![]),
        ("another service", vec![token(&tokens, "stats")]),
        (
            "another secret",
            vec![token(
                &ServiceTokens::new(b"someone else's secret, 32+ bytes!"),
                "cart",
            )],
        ),
        (
            "garbage",
            vec![(X_MICROKIT_SERVICE, "not.a.token".to_owned())],
        ),
        (
            "through the gateway",
            vec![token(&tokens, "cart"), (GATEWAY_MARK, "1".to_owned())],
        ),
    ] {
        let reply = call(server.addr, "/emails/", &headers).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{what}: {}",
            reply.text()
        );
        assert_eq!(reply.header("content-type"), "application/problem+json");
    }
}

/// The emails service, its `GET /emails/` behind `layer`, served (over `tls` if given) and
/// registered in `registry`.
async fn emails_service(
    registry: &Arc<MemoryRegistry>,
    layer: RequireService,
    tls: Option<TlsConfig>,
) {
    let router: Router = Router::new()
        .route("/emails/", get(|| async { "the outbox" }))
        .layer(layer);
    let mut service = Microservice::new("emails", router).registry(registry.clone());
    if let Some(tls) = tls {
        service = service.tls(tls);
    }
    let service = service.bind().await.unwrap().register().await.unwrap();
    tokio::spawn(service.run(std::future::pending()));
}

#[tokio::test]
async fn an_internal_route_admits_a_services_mutual_tls_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority("services CA");
    let ca_pem = write(dir.path(), "ca.pem", &ca.pem);
    let (cert, key) = leaf_files(dir.path(), &ca, "emails", &["emails"]);
    let tls = TlsConfig::from_pem_files(cert, key)
        .unwrap()
        .client_ca(&ca_pem)
        .unwrap();
    let registry = Arc::new(MemoryRegistry::new());
    emails_service(&registry, RequireService::new(["cart"]), Some(tls)).await;

    for (caller, status) in [("cart", StatusCode::OK), ("stats", StatusCode::FORBIDDEN)] {
        let (cert, key) = leaf_files(dir.path(), &ca, caller, &[caller]);
        let tls = ClientTls::trusting(&ca_pem)
            .unwrap()
            .client_cert(cert, key)
            .unwrap();
        let client = ServiceClient::with_config(registry.clone(), ClientConfig::default().tls(tls));
        let request = microkit::http::Request::get("/emails/")
            .body(microkit::Body::empty())
            .unwrap();
        let response = client.send("emails", request).await.unwrap();
        assert_eq!(response.status(), status, "called by {caller}");
    }
}

/// A client configured once with its service's name and tokens signs every call: the
/// internal route admits it with nothing added by hand, and refuses the same call from a
/// client that does not sign, signs as another service or with another secret.
#[tokio::test]
async fn a_client_with_service_tokens_signs_every_call() {
    let tokens = ServiceTokens::new(b"a secret the services share, 32+ bytes");
    let registry = Arc::new(MemoryRegistry::new());
    let layer = RequireService::new(["cart"])
        .tokens(tokens.clone())
        .addressed_to("emails");
    emails_service(&registry, layer, None).await;

    let get_emails = |client: ServiceClient, forged: Option<String>| async move {
        let mut request = microkit::http::Request::get("/emails/");
        if let Some(token) = forged {
            request = request.header(X_MICROKIT_SERVICE, token);
        }
        let request = request.body(microkit::Body::empty()).unwrap();
        let response = client.send("emails", request).await.unwrap();
        response.status()
    };
    let client = |config: ClientConfig| ServiceClient::with_config(registry.clone(), config);

    let cart = client(ClientConfig::default().service_tokens("cart", tokens.clone()));
    for _ in 0..3 {
        assert_eq!(get_emails(cart.clone(), None).await, StatusCode::OK);
    }
    // A token the caller put on the request is replaced by the client's own.
    let garbage = Some("not.a.token".to_owned());
    assert_eq!(get_emails(cart.clone(), garbage).await, StatusCode::OK);

    let (_, for_payments) = tokens.header_for("cart", "payments").unwrap();
    let replayed = Some(for_payments.to_str().unwrap().to_owned());
    let (_, unaddressed) = tokens.header("cart").unwrap();
    let unaddressed = Some(unaddressed.to_str().unwrap().to_owned());
    let other_secret = ServiceTokens::new(b"someone else's secret, 32+ bytes!");
    for (what, caller, forged) in [
        ("no tokens", client(ClientConfig::default()), None),
        (
            "a token addressed to another service",
            client(ClientConfig::default()),
            replayed,
        ),
        (
            "a token addressed to no service",
            client(ClientConfig::default()),
            unaddressed,
        ),
        (
            "signed as a service not admitted",
            client(ClientConfig::default().service_tokens("stats", tokens.clone())),
            None,
        ),
        (
            "signed with another secret",
            client(ClientConfig::default().service_tokens("cart", other_secret)),
            None,
        ),
    ] {
        assert_eq!(
            get_emails(caller, forged).await,
            StatusCode::FORBIDDEN,
            "{what}"
        );
    }
}
