//! The shop with authentication and HTTPS at the edge, end to end on the real binary:
//! `--auth-secret` and `--tls-cert/--tls-key` (certificates made here with rcgen). Reads may
//! be anonymous and writes need a token (401); each user reaches only their own cart and
//! invoices (404 for another's, lists filtered); a forged relayed identity is stripped; plain
//! HTTP on the TLS port gets nothing.

use microkit_test_support as support;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{encode, get_current_timestamp, EncodingKey, Header};
use microkit::http::{header, Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use support::certs::{authority, leaf_files};
use support::shop::{temp_data_dir, ShopProcess};

const SECRET: &str = "a shop secret of at least 32 characters";

/// An HTTPS client for the shop's gateway, trusting the test's CA.
struct Edge {
    addr: SocketAddr,
    tls: TlsConnector,
}

/// An answer: status, `WWW-Authenticate`, body as JSON (`null` when empty).
struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    body: Value,
}

impl Edge {
    async fn call(&self, user: Option<&str>, method: Method, path: &str, body: Value) -> Answer {
        self.call_with(user, method, path, body, &[]).await
    }

    async fn call_with(
        &self,
        user: Option<&str>,
        method: Method,
        path: &str,
        body: Value,
        extra: &[(&str, &str)],
    ) -> Answer {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let tls = self
            .tls
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("the TLS handshake with the gateway");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(connection);
        let body = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(user) = user {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", token(user)));
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = sender
            .send_request(request.body(Full::new(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|value| value.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            challenge,
            body,
        }
    }

    /// A write that must succeed; returns the new item.
    async fn create(&self, user: &str, path: &str, body: Value) -> Value {
        let answer = self.call(Some(user), Method::POST, path, body).await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "POST {path}: {}",
            answer.body
        );
        answer.body
    }
}

fn token(user: &str) -> String {
    let claims = json!({ "sub": user, "exp": get_current_timestamp() + 600 });
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn id(item: &Value) -> String {
    item["id"].as_u64().expect("an id").to_string()
}

#[tokio::test]
async fn each_user_reaches_only_their_own_cart_and_invoices_over_https() {
    let data = temp_data_dir();
    let ca = authority("shop CA");
    let (cert, key) = leaf_files(data.path(), &ca, "edge", &["localhost"]);
    let shop = ShopProcess::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--auth-secret",
            SECRET,
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        7,
    )
    .await;
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let mut config = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let edge = Edge {
        addr: shop.addr("gateway"),
        tls: TlsConnector::from(Arc::new(config)),
    };

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = support::try_send(edge.addr, support::request(Method::GET, "/products/", "")).await;
    assert!(plain.is_err(), "plain HTTP answered over the TLS port");

    // Reads are open, writes need a token.
    let products = edge
        .call(None, Method::GET, "/products/", Value::Null)
        .await;
    assert_eq!(products.status, 200);
    let refused = edge
        .call(
            None,
            Method::POST,
            "/product/",
            json!({"name": "Lamp", "price_cents": 1999}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.challenge.unwrap().starts_with("Bearer"));
    let bad = edge
        .call_with(
            None,
            Method::POST,
            "/product/",
            json!({"name": "Lamp", "price_cents": 1999}),
            &[("authorization", "Bearer not-a-token")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        edge.call(None, Method::GET, "/products/", Value::Null)
            .await
            .body["total"],
        0
    );

    let lamp = edge
        .create(
            "staff",
            "/product/",
            json!({"name": "Lamp", "price_cents": 1999}),
        )
        .await;
    let ada = id(&edge
        .create(
            "signup",
            "/user/",
            json!({"name": "Ada", "email": "ada@example.com"}),
        )
        .await);
    let bob = id(&edge
        .create(
            "signup",
            "/user/",
            json!({"name": "Bob", "email": "bob@example.com"}),
        )
        .await);

    // Ada's cart is Ada's.
    let cart = format!("/user/{ada}/cart/");
    let line = edge
        .create(
            &ada,
            &cart,
            json!({"product_id": lamp["id"], "quantity": 2}),
        )
        .await;
    let line_path = format!("{cart}{}", id(&line));
    assert_eq!(
        edge.call(Some(&ada), Method::GET, &cart, Value::Null)
            .await
            .body["total"],
        1
    );
    let anonymous = edge.call(None, Method::GET, &cart, Value::Null).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    for (method, path, body) in [
        (Method::GET, cart.as_str(), Value::Null),
        (Method::GET, line_path.as_str(), Value::Null),
        (Method::PUT, line_path.as_str(), json!({"quantity": 9})),
        (Method::DELETE, line_path.as_str(), Value::Null),
        (
            Method::POST,
            cart.as_str(),
            json!({"product_id": lamp["id"], "quantity": 1}),
        ),
        (Method::POST, &format!("{cart}checkout"), Value::Null),
        (Method::DELETE, &format!("/user/{ada}"), Value::Null),
    ] {
        let answer = edge.call(Some(&bob), method.clone(), path, body).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "bob {method} {path}: {}",
            answer.body
        );
    }
    let unchanged = edge
        .call(Some(&ada), Method::GET, &line_path, Value::Null)
        .await;
    assert_eq!(unchanged.body["quantity"], 2, "bob changed nothing");

    // Ada checks out; the invoice is hers alone.
    let checkout = edge
        .call_with(
            Some(&ada),
            Method::POST,
            &format!("{cart}checkout"),
            Value::Null,
            &[("idempotency-key", "ada-1")],
        )
        .await;
    assert_eq!(checkout.status, StatusCode::CREATED, "{}", checkout.body);
    let invoice = format!("/invoices/{}", id(&checkout.body));
    assert_eq!(
        edge.call(Some(&ada), Method::GET, "/invoices/", Value::Null)
            .await
            .body["total"],
        1
    );
    let bobs = edge
        .call(Some(&bob), Method::GET, "/invoices/", Value::Null)
        .await;
    assert_eq!(bobs.body["total"], 0, "{}", bobs.body);
    let filtered = edge
        .call(
            Some(&bob),
            Method::GET,
            &format!("/invoices/?user_id={ada}"),
            Value::Null,
        )
        .await;
    assert_eq!(filtered.body["total"], 0);
    assert_eq!(
        edge.call(None, Method::GET, "/invoices/", Value::Null)
            .await
            .status,
        401
    );
    for (method, path) in [
        (Method::GET, invoice.clone()),
        (Method::POST, format!("{invoice}/pay")),
    ] {
        let answer = edge
            .call(Some(&bob), method.clone(), &path, Value::Null)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "bob {method} {path}: {}",
            answer.body
        );
    }
    // A forged relayed identity is stripped at the gateway: the caller stays anonymous.
    let forged = edge
        .call_with(
            None,
            Method::GET,
            &invoice,
            Value::Null,
            &[(
                "x-microkit-identity",
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
            )],
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    // Bob cannot bill Ada; his own invoice is his.
    let for_ada = edge
        .call(
            Some(&bob),
            Method::POST,
            "/invoices",
            json!({"amount_cents": 100, "user_id": ada.parse::<u64>().unwrap()}),
        )
        .await;
    assert_eq!(for_ada.status, StatusCode::FORBIDDEN, "{}", for_ada.body);
    edge.create(
        &bob,
        "/invoices",
        json!({"amount_cents": 100, "user_id": bob.parse::<u64>().unwrap()}),
    )
    .await;
    assert_eq!(
        edge.call(Some(&bob), Method::GET, "/invoices/", Value::Null)
            .await
            .body["total"],
        1
    );

    let paid = edge
        .call(
            Some(&ada),
            Method::POST,
            &format!("{invoice}/pay"),
            Value::Null,
        )
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(paid.body["status"], "paid");
    assert_eq!(
        edge.call(Some(&ada), Method::GET, &cart, Value::Null)
            .await
            .body["total"],
        0
    );
}
