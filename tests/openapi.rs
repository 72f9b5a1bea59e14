//! The OpenAPI 3.1 document of a flat, a nested and a UUID-id resource, served at
//! `GET /openapi.json` by `OpenApi::router()`: valid by a real validator
//! (`python3 -m openapi_spec_validator`, from PyPI's `openapi-spec-validator`), with paths for
//! exactly the actions each resource has and a schema per type.
//!
//! Without the validator the validity check is skipped with a message, unless `CI=true` or
//! `MICROKIT_REQUIRE_SERVICES=1` says it must run.

use microkit_test_support as support;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;

use microkit::idempotency::IdempotencyConfig;
use microkit::resource::store::MemoryStore;
use microkit::resource::{OpenApi, ResourceRoutes};
use microkit::{Resource, ServerConfig};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::etcd::services_required;
use support::{get, spawn};

/// A product of the catalog.
#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/product", list_path = "/products/", max_limit = 50)]
struct Product {
    #[resource(id)]
    id: u64,
    #[resource(unique, validate(length(min = 1, max = 40)))]
    name: String,
    #[resource(filter, validate(pattern = "^[a-z-]+$"))]
    category: String,
    #[resource(validate(range(min = 0, max = 100000)))]
    price_cents: i64,
    #[resource(filter, validate(email))]
    contact: Option<String>,
    #[resource(read_only)]
    created_at: Option<String>,
}

/// An item of a user's cart, which cannot be replaced or patched.
#[derive(Serialize, Deserialize, Resource)]
#[resource(
    path = "/user/{uid}/cart",
    parent = "uid",
    actions(create, read, delete, list)
)]
struct CartItem {
    #[resource(id)]
    id: u64,
    product_id: u64,
    #[resource(validate(range(min = 1, max = 99)))]
    quantity: u32,
}

/// A login session.
#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/session")]
struct Session {
    #[resource(id)]
    id: uuid::Uuid,
    #[resource(validate(length(max = 64)))]
    label: String,
}

fn api() -> OpenApi {
    OpenApi::new("shop", "1.2.3")
        .resource::<Product>()
        .resource::<CartItem>()
        .resource::<Session>()
}

/// The document as a client fetches it from a real server.
async fn fetched() -> Value {
    let server = spawn(api().router(), ServerConfig::default()).await;
    let reply = get(server.addr, "/openapi.json").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), "application/json");
    let document = reply.json();
    server.stop().await;
    document
}

fn validator_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|output| output.status.success())
}

#[tokio::test]
async fn the_served_document_passes_a_real_openapi_validator() {
    let document = fetched().await;
    assert_eq!(document, api().document(), "served as built");
    if !validator_installed() {
        assert!(
            !services_required(),
            "python3 -m openapi_spec_validator is required (pip install openapi-spec-validator)"
        );
        eprintln!(
            "skipped: python3 -m openapi_spec_validator is not installed \
             (pip install openapi-spec-validator)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&document).unwrap()).expect("written");
    let output = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the validator refused the document:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn methods(document: &Value, path: &str) -> BTreeSet<String> {
    document["paths"][path]
        .as_object()
        .unwrap_or_else(|| panic!("no path {path}"))
        .keys()
        .cloned()
        .collect()
}

fn set(methods: &[&str]) -> BTreeSet<String> {
    methods.iter().map(|method| (*method).to_owned()).collect()
}

#[tokio::test]
async fn paths_hold_exactly_the_actions_each_resource_has() {
    let document = fetched().await;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document["info"],
        json!({ "title": "shop", "version": "1.2.3" })
    );
    let paths: BTreeSet<String> = document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        paths,
        set(&[
            "/product/",
            "/products/",
            "/product/{id}",
            "/user/{uid}/cart/",
            "/user/{uid}/cart/{id}",
            "/session/",
            "/session/{id}",
        ])
    );
    assert_eq!(methods(&document, "/product/"), set(&["post"]));
    assert_eq!(methods(&document, "/products/"), set(&["get"]));
    assert_eq!(
        methods(&document, "/product/{id}"),
        set(&["get", "put", "patch", "delete"])
    );
    assert_eq!(
        methods(&document, "/user/{uid}/cart/"),
        set(&["post", "get"])
    );
    assert_eq!(
        methods(&document, "/user/{uid}/cart/{id}"),
        set(&["get", "delete"])
    );
    assert_eq!(
        methods(&document, "/session/{id}"),
        set(&["get", "put", "patch", "delete"])
    );
}

#[tokio::test]
async fn operations_declare_their_parameters_and_answers() {
    let document = fetched().await;
    let names = |operation: &Value| -> Vec<String> {
        operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|parameter| {
                format!(
                    "{}:{}",
                    parameter["in"].as_str().unwrap(),
                    parameter["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let list = &document["paths"]["/products/"]["get"];
    assert_eq!(
        names(list),
        [
            "query:offset",
            "query:limit",
            "query:category",
            "query:contact"
        ]
    );
    // A limit over the largest page reads as the largest page: the description says so, and
    // the schema's bounds are what parses (the stores count in i64).
    let limit = &list["parameters"][1];
    assert_eq!(limit["schema"]["maximum"], i64::MAX);
    assert_eq!(limit["schema"]["default"], 20);
    assert!(limit["description"]
        .as_str()
        .unwrap()
        .contains("at most 50"));
    assert_eq!(list["parameters"][0]["schema"]["maximum"], i64::MAX);
    // Filters take any value of the field's type: a filter asks, it does not write.
    assert_eq!(list["parameters"][2]["schema"], json!({"type": "string"}));
    assert!(list["responses"]["200"]["headers"]["Link"].is_object());
    let delete = &document["paths"]["/user/{uid}/cart/{id}"]["delete"];
    assert_eq!(names(delete), ["path:uid", "path:id", "header:If-Match"]);
    assert!(delete["responses"]["412"]["headers"]["ETag"].is_object());
    let id = &delete["parameters"][1]["schema"];
    assert_eq!(
        (&id["minimum"], &id["maximum"]),
        (&json!(1), &json!(i64::MAX))
    );
    assert!(delete["responses"]["503"]["headers"]["Retry-After"].is_object());
    let read = &document["paths"]["/session/{id}"]["get"];
    assert_eq!(read["parameters"][0]["schema"]["format"], "uuid");
    assert_eq!(names(read), ["path:id", "header:If-None-Match"]);
    assert!(read["responses"]["304"]["headers"]["ETag"].is_object());
    let create = &document["paths"]["/product/"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Product"
    );
    let created = &create["responses"]["201"];
    assert_eq!(
        created["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ProductResponse"
    );
    assert!(created["headers"]["Location"].is_object() && created["headers"]["ETag"].is_object());
    let patch = &document["paths"]["/product/{id}"]["patch"]["requestBody"]["content"];
    assert_eq!(
        patch["application/merge-patch+json"]["schema"]["$ref"],
        "#/components/schemas/ProductPatch"
    );
    assert_eq!(
        create["responses"]["422"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
}

#[tokio::test]
async fn each_type_has_a_schema_with_read_only_ids_required_fields_and_rules() {
    let document = fetched().await;
    let schemas = &document["components"]["schemas"];
    let names: BTreeSet<String> = schemas.as_object().unwrap().keys().cloned().collect();
    let mut expected = vec!["Problem".to_owned()];
    for name in ["CartItem", "Product", "Session"] {
        expected
            .extend([name, &format!("{name}Patch"), &format!("{name}Response")].map(String::from));
    }
    assert_eq!(names, expected.into_iter().collect());
    for name in ["Product", "CartItem", "Session"] {
        // Unknown members are refused (422), so the schemas say none may be sent.
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
        let response = &schemas[format!("{name}Response")];
        assert_eq!(response["required"][0], "id", "{name}: answers hold the id");
        // A patch may leave out anything, and `null` removes an optional member.
        let patch = &schemas[format!("{name}Patch")];
        assert!(patch.get("required").is_none(), "{name}");
        assert_eq!(
            schemas[name]["properties"]["id"]["readOnly"], true,
            "{name}"
        );
        let required = schemas[name]["required"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            !required.contains(&json!("id")),
            "{name}: the id is not required"
        );
    }

    let product = &schemas["Product"];
    assert_eq!(
        product["required"],
        json!(["name", "category", "price_cents"])
    );
    let properties = &product["properties"];
    assert_eq!(properties["name"]["minLength"], 1);
    assert_eq!(properties["name"]["maxLength"], 40);
    assert_eq!(properties["category"]["pattern"], "^[a-z-]+$");
    assert_eq!(properties["price_cents"]["minimum"], 0);
    assert_eq!(properties["price_cents"]["maximum"], 100000);
    assert_eq!(properties["contact"]["format"], "email");
    assert_eq!(properties["created_at"]["readOnly"], true);

    assert_eq!(
        schemas["CartItem"]["required"],
        json!(["product_id", "quantity"])
    );
    assert_eq!(schemas["CartItem"]["properties"]["quantity"]["maximum"], 99);
    let response_id = &schemas["SessionResponse"]["properties"]["id"];
    assert_eq!(response_id["format"], "uuid");
    // The server sets the id whatever a request says: any value is ignored.
    assert!(schemas["Session"]["properties"]["id"]
        .get("format")
        .is_none());
    let contact = &schemas["ProductPatch"]["properties"]["contact"]["type"];
    assert_eq!(contact, &json!(["string", "null"]));
    let name = &schemas["ProductPatch"]["properties"]["name"]["type"];
    assert_eq!(
        name,
        &json!("string"),
        "a required member cannot be removed"
    );
    assert_eq!(schemas["Session"]["properties"]["label"]["maxLength"], 64);
}

/// The generated create and PATCH honour `Idempotency-Key` unless keys are off, and say so: the
/// header with the keys the server accepts, its 409 with `Retry-After` and its 422.
#[test]
fn generated_writes_document_the_idempotency_key_they_honour() {
    let keyed = ResourceRoutes::<Product>::new(Arc::new(MemoryStore::new()))
        .idempotency(IdempotencyConfig::default().max_key_len(64))
        .router()
        .openapi("keys", "1.0.0");
    let header = |operation: &Value| {
        operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|parameter| parameter["name"] == "Idempotency-Key")
            .cloned()
    };
    for (path, method) in [("/product/", "post"), ("/product/{id}", "patch")] {
        let operation = &keyed["paths"][path][method];
        let key = header(operation).unwrap_or_else(|| panic!("{method} {path}: {operation}"));
        assert_eq!(
            (&key["in"], &key["required"]),
            (&json!("header"), &json!(false))
        );
        assert!(key["schema"].to_string().contains("{1,64}"), "{key}");
        assert!(operation["responses"]["409"]["headers"]["Retry-After"].is_object());
        assert!(operation["responses"]["422"].is_object());
    }
    for (path, method) in [("/product/{id}", "put"), ("/product/{id}", "delete")] {
        assert_eq!(
            header(&keyed["paths"][path][method]),
            None,
            "{method} {path}"
        );
    }
    let unkeyed = ResourceRoutes::<Product>::new(Arc::new(MemoryStore::new()))
        .without_idempotency()
        .router()
        .openapi("keys", "1.0.0");
    assert_eq!(header(&unkeyed["paths"]["/product/"]["post"]), None);

    // The standalone document says the same as the routes' own, keys on by default as theirs.
    let standalone = OpenApi::new("keys", "1.0.0")
        .idempotency(Some(IdempotencyConfig::default().max_key_len(64)))
        .resource::<Product>()
        .document();
    for (path, method) in [("/product/", "post"), ("/product/{id}", "patch")] {
        let (alone, routed) = (
            &standalone["paths"][path][method],
            &keyed["paths"][path][method],
        );
        assert!(header(alone).is_some(), "{method} {path}: {alone}");
        assert_eq!(header(alone), header(routed), "{method} {path}");
        for status in ["409", "422"] {
            assert_eq!(alone["responses"][status], routed["responses"][status]);
        }
    }
    let default = api().document();
    let create = &default["paths"]["/product/"]["post"];
    assert!(header(create).is_some(), "{create}");
    assert!(create["responses"]["201"]["headers"]["Idempotent-Replayed"].is_object());
    let unkeyed = OpenApi::new("keys", "1.0.0")
        .idempotency(None)
        .resource::<Product>()
        .document();
    assert_eq!(header(&unkeyed["paths"]["/product/"]["post"]), None);
}
