//! Every service of the shop serves its OpenAPI document at `GET /openapi.json`, and the
//! gateway serves them merged: each is valid OpenAPI 3.1 by a real validator
//! (`python3 -m openapi_spec_validator`, PyPI's `openapi-spec-validator`), the hand-written
//! routes (checkout, pay, send_email, the stats log) are documented, and what is internal to
//! the services stays out of the gateway's.
//!
//! Without the validator the validity check is skipped with a message, unless `CI=true` or
//! `MICROKIT_REQUIRE_SERVICES=1` says it must run.

use microkit_test_support as support;

use std::process::Command;

use microkit::http::StatusCode;
use serde_json::Value;
use support::etcd::services_required;
use support::shop::{temp_data_dir, wait_healthy, Api, ShopProcess};

const SERVICES: [&str; 6] = ["users", "emails", "catalog", "cart", "payments", "stats"];

fn validator_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Runs the validator on `document`; panics with its report when it refuses.
fn assert_valid(name: &str, document: &Value) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(document).unwrap()).expect("written");
    let output = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the validator refused {name}'s document:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn document(api: Api) -> Value {
    let reply = api.get("/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("content-type"), "application/json");
    reply.json()
}

fn operation<'a>(document: &'a Value, path: &str, method: &str) -> &'a Value {
    let operation = &document["paths"][path][method];
    assert!(operation.is_object(), "no {method} {path} in {document:#}");
    operation
}

#[tokio::test]
async fn every_service_and_the_gateway_serve_a_valid_document() {
    let data = temp_data_dir();
    let dir = data.path().display().to_string();
    let shop = ShopProcess::start(&["--listen", "127.0.0.1:0", "--data-dir", &dir], 7).await;
    wait_healthy(shop.api("gateway"), support::PATIENCE).await;
    let validate = validator_installed();
    if !validate {
        assert!(
            !services_required(),
            "python3 -m openapi_spec_validator is required (pip install openapi-spec-validator)"
        );
        eprintln!("skipped validity: pip install openapi-spec-validator");
    }
    for service in SERVICES {
        let document = document(shop.api(service)).await;
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["info"]["title"], service);
        assert!(
            document["paths"].get("/openapi.json").is_none()
                && document["paths"].get("/health").is_none(),
            "{service} documents its own plumbing"
        );
        if validate {
            assert_valid(service, &document);
        }
    }
    let edge = document(shop.api("gateway")).await;
    if validate {
        assert_valid("gateway", &edge);
    }
}

#[tokio::test]
async fn hand_written_routes_document_themselves_and_internal_ones_stay_inside() {
    let data = temp_data_dir();
    let dir = data.path().display().to_string();
    let shop = ShopProcess::start(&["--listen", "127.0.0.1:0", "--data-dir", &dir], 7).await;
    wait_healthy(shop.api("gateway"), support::PATIENCE).await;

    let cart = document(shop.api("cart")).await;
    let checkout = operation(&cart, "/user/{uid}/cart/checkout", "post");
    assert_eq!(checkout["operationId"], "checkoutCart");
    assert_eq!(checkout["parameters"][0]["name"], "uid");
    assert_eq!(checkout["parameters"][0]["schema"]["maximum"], u64::MAX);
    assert!(checkout["responses"]["201"]["content"]["application/json"].is_object());
    assert!(checkout["responses"]["422"]["content"]["application/problem+json"].is_object());

    let payments = document(shop.api("payments")).await;
    let pay = operation(&payments, "/invoices/{id}/pay", "post");
    for status in ["200", "400", "404", "409"] {
        assert!(pay["responses"][status].is_object(), "pay: {status}");
    }

    let emails = document(shop.api("emails")).await;
    let send = operation(&emails, "/send_email/", "post");
    let body = &send["requestBody"]["content"]["application/json"]["schema"]["$ref"];
    let name = body.as_str().unwrap().rsplit('/').next().unwrap();
    let schema = &emails["components"]["schemas"][name];
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown fields are refused"
    );
    assert!(send["responses"]["429"]["headers"]["Retry-After"].is_object());
    assert!(send["responses"]["415"].is_object());

    let stats = document(shop.api("stats")).await;
    let log = operation(&stats, "/log", "get");
    let names: Vec<&str> = log["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["from", "to"]);
    assert!(log["responses"]["403"].is_object());
    operation(&stats, "/log", "post");

    let edge = document(shop.api("gateway")).await;
    operation(&edge, "/user/{uid}/cart/checkout", "post");
    operation(&edge, "/invoices/{id}/pay", "post");
    operation(&edge, "/send_email/", "post");
    operation(&edge, "/log", "post");
    operation(&edge, "/products/", "get");
    assert!(
        edge["paths"]["/log"].get("get").is_none(),
        "GET /log is internal"
    );
    assert!(
        edge["paths"].get("/emails/").is_none(),
        "/emails/ is internal"
    );
    assert!(edge["paths"].get("/metrics").is_none());
}
