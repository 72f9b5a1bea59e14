//! The cost of verifying the caller, in process: `GET /me` through the router with no layer,
//! and with `Authenticate` checking an HS256, RS256, ES256 or EdDSA token or an API key.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, get_current_timestamp, Algorithm, EncodingKey, Header};
use microkit::auth::{ApiKeys, Authenticate, Identity, JwtKeys, JwtVerifier};
use microkit::router::get;
use microkit::Router;
use serde_json::json;

const SECRET: &[u8] = b"an HS256 secret of 32 bytes or more";

fn key(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/auth")
        .join(name);
    std::fs::read(path).expect("a test key")
}

async fn me(identity: Option<Identity>) -> String {
    identity.map_or_else(|| "anonymous".to_owned(), |id| id.subject().to_owned())
}

fn auth(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let claims = json!({"sub": "ada", "aud": "shop", "exp": get_current_timestamp() + 3600});
    let token =
        |algorithm, key: EncodingKey| encode(&Header::new(algorithm), &claims, &key).unwrap();
    let keys = JwtKeys::hmac(SECRET)
        .and(JwtKeys::rsa_pem(key("rsa1.pub")).unwrap())
        .and(JwtKeys::ec_pem(key("ec.pub")).unwrap())
        .and(JwtKeys::ed_pem(key("ed.pub")).unwrap());
    let api_keys = ApiKeys::new().key(
        &ApiKeys::hash("mk_bench_key_0123456789abcdef"),
        "job",
        ["x"],
    );
    let layer = Authenticate::new()
        .jwt(JwtVerifier::new(keys).audience("shop"))
        .api_keys(api_keys);
    let plain = Router::new().route("/me", get(me)).into_service();
    let guarded = Router::new()
        .route("/me", get(me))
        .layer(layer)
        .into_service();
    let cases = [
        ("none", None),
        (
            "hs256",
            Some(format!(
                "Bearer {}",
                token(Algorithm::HS256, EncodingKey::from_secret(SECRET))
            )),
        ),
        (
            "rs256",
            Some(format!(
                "Bearer {}",
                token(
                    Algorithm::RS256,
                    EncodingKey::from_rsa_pem(&key("rsa1.key")).unwrap()
                )
            )),
        ),
        (
            "es256",
            Some(format!(
                "Bearer {}",
                token(
                    Algorithm::ES256,
                    EncodingKey::from_ec_pem(&key("ec.key")).unwrap()
                )
            )),
        ),
        (
            "eddsa",
            Some(format!(
                "Bearer {}",
                token(
                    Algorithm::EdDSA,
                    EncodingKey::from_ed_pem(&key("ed.key")).unwrap()
                )
            )),
        ),
        (
            "api_key",
            Some("ApiKey mk_bench_key_0123456789abcdef".to_owned()),
        ),
    ];
    let mut group = c.benchmark_group("auth_get_me");
    for (name, authorization) in cases {
        let app = if authorization.is_some() {
            guarded.clone()
        } else {
            plain.clone()
        };
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let mut request = http::Request::get("/me");
                if let Some(value) = &authorization {
                    request = request.header("authorization", value);
                }
                let response = app
                    .call(request.body(microkit::Body::empty()).unwrap())
                    .await;
                assert_eq!(response.status(), 200);
                response
            });
        });
    }
    group.finish();
}

criterion_group!(benches, auth);
criterion_main!(benches);
