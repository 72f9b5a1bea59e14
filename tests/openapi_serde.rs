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
    /// Optional in a request: serde fills the default.
    #[serde(default)]
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
    let mut request = support::request(http::Method::POST, path, body.to_string());
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
