//! Required and optional members as serde treats them, in the documents of a derived resource
//! and of a hand-written `Json<T>` route: `#[serde(default)]` and `Option` make a member
//! optional in a request, `rename` names it, `skip` leaves it out, and the server accepts
//! exactly that (checked over a real socket).

use microkit_test_support as support;

use microkit::extract::Json;
use microkit::openapi::{document_router, JsonSchema};
use microkit::resource::store::MemoryStore;
use microkit::resource::ResourceRoutes;
use microkit::router::post;
use microkit::{Resource, Router, ServerConfig};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

/// A resource with every kind of member serde treats apart.
#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/gadget")]
struct Gadget {
    #[resource(id)]
    id: u64,
    /// Required: no default, not an Option.
    name: String,
    /// Optional in a request: serde fills the default. A list filter, documented as an integer.
    #[serde(default)]
    #[resource(filter)]
    stock: u32,
    /// Optional in a request: `Option` is `None` when absent.
    note: Option<String>,
    /// Named `colour` on the wire.
    #[serde(rename = "colour")]
    color: String,
    /// Never on the wire.
    #[serde(skip)]
    #[allow(dead_code)]
    cache: u8,
}

/// The body of a hand-written route, with the same kinds of members.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Order {
    item: String,
    #[serde(default)]
    quantity: u16,
    gift: Option<bool>,
    #[serde(rename = "deliverTo")]
    deliver_to: String,
    #[serde(skip)]
    #[allow(dead_code)]
    internal: u8,
}

async fn order(Json(order): Json<Order>) -> Json<Order> {
    Json(order)
}

fn app() -> Router {
    let store = Arc::new(MemoryStore::new());
    let app = ResourceRoutes::<Gadget>::new(store)
        .router()
        .route("/order", post(order));
    let document = app.openapi("serde", "1.0.0");
    app.merge(document_router(&document))
}

/// `POST path` with a JSON body.
async fn post_json(addr: std::net::SocketAddr, path: &str, body: &Value) -> support::Reply {
    send_json(addr, http::Method::POST, path, body).await
}

/// A request with a JSON body.
async fn send_json(
    addr: std::net::SocketAddr,
    method: http::Method,
    path: &str,
    body: &Value,
) -> support::Reply {
    let mut request = support::request(method, path, body.to_string());
    request.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    support::send(addr, request).await
}

fn names(value: &Value) -> Vec<String> {
    let mut names: Vec<String> = match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Value::Object(map) => map.keys().cloned().collect(),
        _ => Vec::new(),
    };
    names.sort();
    names
}

#[tokio::test]
async fn documents_and_the_server_agree_on_required_optional_renamed_and_skipped_members() {
    let server = support::spawn(app(), ServerConfig::default()).await;
    let document = support::get(server.addr, "/openapi.json").await.json();
    let schemas = &document["components"]["schemas"];

    // The resource: only `name` and `colour` are required, `cache` is nowhere.
    let gadget = &schemas["Gadget"];
    assert_eq!(names(&gadget["required"]), ["colour", "name"]);
    assert_eq!(
        names(&gadget["properties"]),
        ["colour", "id", "name", "note", "stock"]
    );
    assert_eq!(gadget["additionalProperties"], false);
    // The hand-written body: the same, by schemars.
    let order_ref = &document["paths"]["/order"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"]["$ref"];
    let order = &schemas[order_ref.as_str().unwrap().rsplit('/').next().unwrap()];
    assert_eq!(names(&order["required"]), ["deliverTo", "item"]);
    assert_eq!(
        names(&order["properties"]),
        ["deliverTo", "gift", "item", "quantity"]
    );
    assert_eq!(order["additionalProperties"], false);

    // The server accepts what the documents call enough, and refuses what they leave out.
    let minimal = json!({ "name": "Lamp", "colour": "red" });
    let reply = post_json(server.addr, "/gadget/", &minimal).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.json()["stock"], 0);
    let reply = post_json(server.addr, "/gadget/", &json!({ "name": "Lamp" })).await;
    assert_eq!(reply.status, 422, "`colour` is required");
    let skipped = json!({ "name": "Lamp", "colour": "red", "cache": 1 });
    let reply = post_json(server.addr, "/gadget/", &skipped).await;
    assert_eq!(reply.status, 422, "`cache` is not a member");
    let renamed = json!({ "name": "Lamp", "color": "red" });
    let reply = post_json(server.addr, "/gadget/", &renamed).await;
    assert_eq!(reply.status, 422, "`color` is not the member's name");

    let minimal = json!({ "item": "Lamp", "deliverTo": "Oslo" });
    let reply = post_json(server.addr, "/order", &minimal).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["quantity"], 0);
    for (body, why) in [
        (json!({ "item": "Lamp" }), "`deliverTo` is required"),
        (
            json!({ "item": "Lamp", "deliver_to": "Oslo" }),
            "the Rust name is not the member",
        ),
        (
            json!({ "item": "Lamp", "deliverTo": "Oslo", "internal": 1 }),
            "skipped",
        ),
    ] {
        let reply = post_json(server.addr, "/order", &body).await;
        assert_eq!(reply.status, 422, "{why}");
    }
    // A whole number written as a float is the integer it is, as JSON Schema's `integer` says.
    let reply = post_json(
        server.addr,
        "/order",
        &json!({ "item": "Lamp", "deliverTo": "Oslo", "quantity": 3.0 }),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["quantity"], 3);
    server.stop().await;
}

/// JSON Schema's `integer` is any number without a fraction: `5.0` is the integer 5 in a list
/// filter and in a body, exactly by its digits (one past an end of `i64` or the field's type
/// is refused even where an `f64` would round it into range).
#[tokio::test]
async fn whole_numbers_written_as_floats_are_integers_in_filters_and_bodies() {
    let server = support::spawn(app(), ServerConfig::default()).await;
    let document = support::get(server.addr, "/openapi.json").await.json();
    let parameters = document["paths"]["/gadget/"]["get"]["parameters"]
        .as_array()
        .expect("list parameters");
    let stock = parameters
        .iter()
        .find(|parameter| parameter["name"] == "stock")
        .expect("a `stock` filter");
    assert_eq!(stock["schema"]["type"], "integer");

    for stock in [5, 7] {
        let gadget = json!({ "name": "Lamp", "colour": "red", "stock": stock });
        assert_eq!(
            post_json(server.addr, "/gadget/", &gadget).await.status,
            201
        );
    }
    for filter in ["5", "5.0", "5e0", "50e-1", "0.5E1", "5.000"] {
        let reply = support::get(server.addr, &format!("/gadget/?stock={filter}")).await;
        assert_eq!(reply.status, 200, "{filter}: {}", reply.text());
        let items = reply.json()["items"].clone();
        assert_eq!(items.as_array().map(Vec::len), Some(1), "{filter}: {items}");
        assert_eq!(items[0]["stock"], 5, "{filter}");
    }
    for filter in [
        "5.5",
        "5.0000000000000001",
        "-9223372036854775809.0",
        "18446744073709551616.0",
        "1e400",
        "1e-400",
        "5.",
    ] {
        let reply = support::get(server.addr, &format!("/gadget/?stock={filter}")).await;
        assert_eq!(reply.status, 400, "{filter}: {}", reply.text());
        assert_eq!(reply.header("content-type"), "application/problem+json");
        assert_eq!(reply.json()["errors"][0]["field"], "stock", "{filter}");
    }

    // Bodies: a create, a PUT and a merge patch read whole floats as integers, exactly.
    let created = post_json(
        server.addr,
        "/gadget/",
        &json!({ "name": "Desk", "colour": "oak", "stock": 3.0 }),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let path = created.header("location").to_owned();
    let put = json!({ "name": "Desk", "colour": "oak", "stock": 4e0 });
    let reply = send_json(server.addr, http::Method::PUT, &path, &put).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["stock"], 4);
    let patch = |stock: &str| format!(r#"{{"stock": {stock}}}"#);
    for (stock, status) in [
        ("6.0", 200),
        ("4294967295.0", 200),
        ("4294967296.0", 422),
        ("-9223372036854775809.0", 422),
        ("6.5", 422),
    ] {
        let mut request = support::request(http::Method::PATCH, &path, patch(stock));
        request.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/merge-patch+json"),
        );
        let reply = support::send(server.addr, request).await;
        assert_eq!(reply.status, status, "{stock}: {}", reply.text());
    }
    let stored = support::get(server.addr, &path).await.json();
    assert_eq!(stored["stock"], 4_294_967_295u64);
    server.stop().await;
}
