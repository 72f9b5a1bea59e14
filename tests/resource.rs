//! The generic CRUD endpoints behind `#[derive(Resource)]`, called in process
//! (`router.into_service()`): status codes, headers and bodies of every action, what each
//! attribute changes, hooks, and bad input of every kind answered with a problem that changes
//! nothing. The core CRUD checks also run once over SQLite.

use std::sync::Arc;

use http::header::{ALLOW, CONTENT_TYPE, ETAG, IF_MATCH, LINK, LOCATION};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use microkit::resource::store::sqlite::SqliteStore;
use microkit::resource::store::{MemoryStore, Store};
use microkit::resource::{HookContext, Hooks, ResourceRoutes};
use microkit::router::RouterService;
use microkit::{Body, Problem, Request, Resource, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Resources

/// A product: created at `/product/`, listed at `/products/` in pages of 2 (at most 3).
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(
    path = "/product",
    list_path = "/products/",
    default_limit = 2,
    max_limit = 3
)]
struct Product {
    #[resource(id)]
    id: u64,
    #[resource(validate(length(min = 1, max = 40)))]
    name: String,
    #[resource(filter)]
    category: String,
    #[resource(validate(range(min = 0)))]
    price_cents: i64,
    #[serde(default)]
    tags: Vec<String>,
    #[resource(read_only)]
    created_at: Option<String>,
}

/// Stamps `created_at`, a field clients cannot write.
struct StampCreation;

impl Hooks<Product> for StampCreation {
    async fn before_create(&self, _: &HookContext, item: &mut Product) -> Result<(), Problem> {
        item.created_at = Some("2024-01-01T00:00:00Z".to_owned());
        Ok(())
    }
}

fn no_admin(nickname: &Option<String>) -> Result<(), String> {
    match nickname.as_deref() {
        Some("admin") => Err("is reserved".to_owned()),
        _ => Ok(()),
    }
}

/// A user: a unique, filterable email, every kind of rule, and a soft delete.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/user")]
struct User {
    #[resource(id)]
    id: u64,
    #[resource(unique, filter, validate(email))]
    email: String,
    #[resource(validate(length(min = 1, max = 20)))]
    name: String,
    #[resource(validate(range(min = 0, max = 150)))]
    age: u32,
    #[resource(validate(pattern = "^[a-z]+$"))]
    handle: String,
    #[resource(validate(custom = "no_admin"))]
    nickname: Option<String>,
    #[resource(soft_delete)]
    #[serde(default)]
    deleted: bool,
}

/// An item of a user's cart: nested under its user.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/user/{uid}/cart", parent = "uid")]
struct CartItem {
    #[resource(id)]
    id: u64,
    product_id: u64,
    #[resource(validate(range(min = 1, max = 99)))]
    quantity: u32,
    #[resource(read_only)]
    owner: Option<String>,
}

/// Refuses product 666, writes the parent's `uid` into `owner`, and keeps items of 50 or more.
struct CartRules;

impl Hooks<CartItem> for CartRules {
    async fn before_create(&self, ctx: &HookContext, item: &mut CartItem) -> Result<(), Problem> {
        if item.product_id == 666 {
            return Err(Problem::conflict("product 666 is sold out"));
        }
        let uid = ctx.param("uid").unwrap_or("none");
        item.owner = Some(format!("user {uid}"));
        Ok(())
    }

    async fn before_delete(&self, _: &HookContext, item: &CartItem) -> Result<(), Problem> {
        if item.quantity >= 50 {
            return Err(Problem::new(StatusCode::FORBIDDEN).with_detail("bulk items stay"));
        }
        Ok(())
    }
}

/// A note: the default paging, and no DELETE.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/note", actions(create, read, update, patch, list))]
struct Note {
    #[resource(id)]
    id: u64,
    text: String,
}

/// A session: UUID ids.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/session")]
struct Session {
    #[resource(id)]
    id: uuid::Uuid,
    label: String,
}

/// A page: text ids chosen by the client.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/page")]
struct Page {
    #[resource(id)]
    slug: String,
    title: String,
}

// ---------------------------------------------------------------------------------------------
// In-process calls

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::default())
}

fn serve(router: Router) -> RouterService {
    router.into_service()
}

fn products(store: Arc<dyn Store>) -> RouterService {
    serve(
        ResourceRoutes::<Product>::new(store)
            .hooks(StampCreation)
            .router(),
    )
}

fn users() -> RouterService {
    serve(ResourceRoutes::<User>::new(memory()).router())
}

fn carts() -> RouterService {
    serve(
        ResourceRoutes::<CartItem>::new(memory())
            .hooks(CartRules)
            .router(),
    )
}

/// A response read to its end, the body as JSON (`null` when empty).
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: impl http::header::AsHeaderName) -> &str {
        self.headers
            .get(name)
            .map_or("", |value| value.to_str().expect("a textual header"))
    }

    /// Checks that this is a problem+json answer with `status`, and returns it.
    #[track_caller]
    fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        assert_eq!(self.header(CONTENT_TYPE), "application/problem+json");
        assert_eq!(self.body["status"], status, "{:#}", self.body);
        assert!(self.body["title"].is_string(), "{:#}", self.body);
        &self.body
    }

    /// Checks that this is the 500 of stored data that no longer fits its type, and returns
    /// the problem.
    #[track_caller]
    fn data_at_fault(&self) -> &Value {
        let problem = self.problem(500);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("no longer fits"),
            "{problem:#}"
        );
        problem
    }

    /// The fields named in the problem's `errors`, in order.
    fn failing_fields(&self) -> Vec<&str> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|error| error["field"].as_str().expect("a field name"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

async fn call(
    service: &RouterService,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = service
        .call(request.body(body.into()).expect("a valid request"))
        .await;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!("a JSON body: {:?}", String::from_utf8_lossy(&bytes));
        })
    };
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(service: &RouterService, uri: &str) -> Reply {
    call(service, Method::GET, uri, &[], Body::empty()).await
}

async fn send_json(service: &RouterService, method: Method, uri: &str, body: &Value) -> Reply {
    call(
        service,
        method,
        uri,
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await
}

async fn post(service: &RouterService, uri: &str, body: Value) -> Reply {
    send_json(service, Method::POST, uri, &body).await
}

async fn put(service: &RouterService, uri: &str, body: Value) -> Reply {
    send_json(service, Method::PUT, uri, &body).await
}

async fn patch(service: &RouterService, uri: &str, body: Value) -> Reply {
    send_json(service, Method::PATCH, uri, &body).await
}

async fn delete(service: &RouterService, uri: &str) -> Reply {
    call(service, Method::DELETE, uri, &[], Body::empty()).await
}

/// Creates an item and returns its JSON form.
async fn created(service: &RouterService, uri: &str, body: Value) -> Value {
    let reply = post(service, uri, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
    reply.body
}

fn mug() -> Value {
    json!({ "name": "Mug", "category": "kitchen", "price_cents": 1200, "tags": ["blue"] })
}

fn alice() -> Value {
    json!({ "email": "alice@shop.example", "name": "Alice", "age": 30, "handle": "alice" })
}

/// Everything a client can observe of a collection: the full list, and each item with its ETag.
async fn observe(service: &RouterService, list: &str, item: &str) -> (Value, Vec<(Value, String)>) {
    let list = get(service, &format!("{list}?limit=100")).await;
    assert_eq!(list.status, StatusCode::OK);
    let mut items = Vec::new();
    for entry in list.body["items"].as_array().expect("items") {
        let reply = get(service, &format!("{item}/{}", entry["id"])).await;
        let etag = reply.header(ETAG).to_owned();
        items.push((reply.body, etag));
    }
    (list.body, items)
}

// ---------------------------------------------------------------------------------------------
// Core CRUD, over memory and over SQLite

async fn crud_follows_the_contract(store: Arc<dyn Store>) {
    let api = products(store);

    // POST: 201, Location, ETag, the stored item with its allocated id.
    let reply = post(&api, "/product/", mug()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
    assert_eq!(reply.header(LOCATION), "/product/1");
    assert_eq!(reply.header(ETAG), "\"1\"");
    assert_eq!(reply.body["id"], 1);
    assert_eq!(reply.body["name"], "Mug");
    assert_eq!(reply.body["created_at"], "2024-01-01T00:00:00Z");
    let second = created(
        &api,
        "/product/",
        json!({ "name": "Pan", "category": "kitchen", "price_cents": 3000 }),
    )
    .await;
    assert_eq!(second["id"], 2, "ids are allocated in order");

    // GET: 200 with the ETag, or 404.
    let reply = get(&api, "/product/1").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(ETAG), "\"1\"");
    assert_eq!(reply.body["tags"], json!(["blue"]));
    get(&api, "/product/99").await.problem(404);

    // PUT: a full replacement; fields left out take their defaults.
    let reply = put(
        &api,
        "/product/1",
        json!({ "name": "Big mug", "category": "kitchen", "price_cents": 1500 }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.header(ETAG), "\"2\"");
    assert_eq!(reply.body["name"], "Big mug");
    assert_eq!(
        reply.body["tags"],
        json!([]),
        "PUT replaces, it does not merge"
    );
    assert_eq!(
        reply.body["created_at"], "2024-01-01T00:00:00Z",
        "server-set fields stay"
    );
    put(&api, "/product/99", mug()).await.problem(404);
    let reply = put(
        &api,
        "/product/1",
        json!({ "name": "", "category": "kitchen", "price_cents": 1 }),
    )
    .await;
    assert_eq!(reply.problem(422)["errors"][0]["field"], "name");

    // PATCH: JSON Merge Patch.
    let reply = call(
        &api,
        Method::PATCH,
        "/product/1",
        &[("content-type", "application/merge-patch+json")],
        json!({ "price_cents": 1700, "tags": ["red", "tall"] }).to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.header(ETAG), "\"3\"");
    assert_eq!(
        reply.body["name"], "Big mug",
        "fields not in the patch stay"
    );
    assert_eq!(reply.body["price_cents"], 1700);
    assert_eq!(
        reply.body["tags"],
        json!(["red", "tall"]),
        "arrays are replaced"
    );
    let reply = patch(&api, "/product/1", json!({ "tags": null })).await;
    assert_eq!(
        reply.body["tags"],
        json!([]),
        "null removes the member (its default)"
    );
    patch(&api, "/product/99", json!({ "name": "x" }))
        .await
        .problem(404);

    // DELETE: 204, then gone.
    let reply = delete(&api, "/product/1").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.body, Value::Null);
    get(&api, "/product/1").await.problem(404);
    delete(&api, "/product/1").await.problem(404);

    // LIST: the one left; ids are never reused.
    let reply = get(&api, "/products/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["total"], 1);
    assert_eq!(reply.body["items"][0]["id"], 2);
    let third = created(&api, "/product/", mug()).await;
    assert_eq!(third["id"], 3);
}

#[tokio::test]
async fn crud_follows_the_contract_over_memory() {
    crud_follows_the_contract(memory()).await;
}

#[tokio::test]
async fn crud_follows_the_contract_over_sqlite() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(dir.path().join("resources.db")).expect("a SQLite store");
    crud_follows_the_contract(Arc::new(store)).await;
}

// ---------------------------------------------------------------------------------------------
// Lists

#[tokio::test]
async fn lists_page_by_ascending_id_with_a_next_link() {
    let api = serve(ResourceRoutes::<Note>::new(memory()).router());
    for n in 1..=25 {
        created(&api, "/note/", json!({ "text": format!("note {n}") })).await;
    }
    let reply = get(&api, "/note/").await;
    assert_eq!(reply.body["total"], 25);
    let ids: Vec<u64> = reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        (1..=20).collect::<Vec<_>>(),
        "20 by default, ascending"
    );
    assert_eq!(
        reply.header(LINK),
        "</note/?offset=20&limit=20>; rel=\"next\""
    );

    let reply = get(&api, "/note/?offset=20&limit=20").await;
    assert_eq!(reply.body["items"].as_array().unwrap().len(), 5);
    assert_eq!(reply.body["items"][0]["id"], 21);
    assert_eq!(reply.header(LINK), "", "no next link on the last page");

    let reply = get(&api, "/note/?limit=1000").await;
    assert_eq!(
        reply.body["items"].as_array().unwrap().len(),
        25,
        "at most 100"
    );
    let reply = get(&api, "/note/?offset=3&limit=2").await;
    assert_eq!(reply.body["items"][0]["id"], 4);
    assert_eq!(
        reply.header(LINK),
        "</note/?offset=5&limit=2>; rel=\"next\""
    );
    let reply = get(&api, "/note/?offset=100").await;
    assert_eq!(reply.body, json!({ "items": [], "total": 25 }));
}

#[tokio::test]
async fn limits_are_configurable_and_the_list_path_can_differ() {
    let api = products(memory());
    for name in ["a", "b", "c", "d", "e"] {
        created(
            &api,
            "/product/",
            json!({ "name": name, "category": "x", "price_cents": 1 }),
        )
        .await;
    }
    let reply = get(&api, "/products/").await;
    assert_eq!(
        reply.body["items"].as_array().unwrap().len(),
        2,
        "default_limit = 2"
    );
    assert_eq!(
        reply.header(LINK),
        "</products/?offset=2&limit=2>; rel=\"next\""
    );
    let reply = get(&api, "/products/?limit=50").await;
    assert_eq!(
        reply.body["items"].as_array().unwrap().len(),
        3,
        "max_limit = 3"
    );
    assert_eq!(
        reply.header(LINK),
        "</products/?offset=3&limit=3>; rel=\"next\""
    );
    // The list is not served where items are created.
    let reply = get(&api, "/product/").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(reply.header(ALLOW).contains("POST"));
}

#[tokio::test]
async fn filters_narrow_the_list_and_the_next_link_keeps_them() {
    let api = products(memory());
    for (name, category) in [("a", "mugs"), ("b", "pans"), ("c", "mugs"), ("d", "mugs")] {
        created(
            &api,
            "/product/",
            json!({ "name": name, "category": category, "price_cents": 1 }),
        )
        .await;
    }
    let reply = get(&api, "/products/?category=mugs").await;
    assert_eq!(reply.body["total"], 3);
    assert_eq!(reply.body["items"][1]["name"], "c");
    assert_eq!(
        reply.header(LINK),
        "</products/?offset=2&limit=2&category=mugs>; rel=\"next\""
    );

    let users = users();
    created(&users, "/user/", alice()).await;
    created(
        &users,
        "/user/",
        json!({ "email": "bob@shop.example", "name": "Bob", "age": 40, "handle": "bob" }),
    )
    .await;
    let reply = get(&users, "/user/?email=bob%40shop.example").await;
    assert_eq!(reply.body["total"], 1);
    assert_eq!(reply.body["items"][0]["name"], "Bob");
    let reply = get(&users, "/user/?email=nobody@shop.example").await;
    assert_eq!(reply.body, json!({ "items": [], "total": 0 }));
}

#[tokio::test]
async fn bad_list_queries_are_400_problems() {
    let api = products(memory());
    created(&api, "/product/", mug()).await;
    for query in [
        "offset=-1",
        "offset=99999999999999999999999",
        "offset=1.5",
        "limit=ten",
        "limit=-5",
        "colour=red",
        "name=Mug",
    ] {
        let reply = get(&api, &format!("/products/?{query}")).await;
        let key = query.split('=').next().unwrap();
        assert_eq!(reply.problem(400)["errors"][0]["field"], key, "{query}");
    }
    // Every bad parameter is listed at once.
    let reply = get(&api, "/products/?offset=x&limit=y&colour=red").await;
    reply.problem(400);
    assert_eq!(reply.failing_fields(), ["offset", "limit", "colour"]);
    // The largest offset is valid: past the end. One more is past what the stores count.
    let reply = get(&api, &format!("/products/?offset={}", i64::MAX)).await;
    assert_eq!(reply.body, json!({ "items": [], "total": 1 }));
    let reply = get(&api, &format!("/products/?offset={}", i64::MAX as u64 + 1)).await;
    reply.problem(400);
}

// ---------------------------------------------------------------------------------------------
// Conditional requests

#[tokio::test]
async fn if_match_guards_put_patch_and_delete() {
    let api = products(memory());
    created(&api, "/product/", mug()).await;
    let json = [("content-type", "application/json")];
    let body = || mug().to_string();
    for (method, version) in [(Method::PUT, "\"1\""), (Method::PATCH, "\"2\"")] {
        // Not a list of entity tags: a bad request, whatever the version.
        for malformed in ["garbage", "\"7", "\"7\" \"8\""] {
            let headers = [json[0], ("if-match", malformed)];
            let reply = call(&api, method.clone(), "/product/1", &headers, body()).await;
            reply.problem(400);
        }
        for stale in ["\"7\"", "\"0\"", "", "W/\"x\"", "\"x\", \"9\""] {
            let headers = [json[0], ("if-match", stale)];
            let reply = call(&api, method.clone(), "/product/1", &headers, body()).await;
            reply.problem(412);
            if stale == "\"7\"" {
                assert_eq!(
                    reply.header(ETAG),
                    version,
                    "a 412 names the current version"
                );
            }
        }
        let headers = [json[0], ("if-match", version)];
        let reply = call(&api, method.clone(), "/product/1", &headers, body()).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{method} with the current ETag"
        );
    }
    let reply = get(&api, "/product/1").await;
    assert_eq!(
        reply.header(ETAG),
        "\"3\"",
        "only the matching writes counted"
    );

    for (stale, status) in [("\"2\"", 412), ("nonsense", 400)] {
        let reply = call(
            &api,
            Method::DELETE,
            "/product/1",
            &[("if-match", stale)],
            Body::empty(),
        )
        .await;
        reply.problem(status);
    }
    // The id is checked before the preconditions: a bad id is a 400 whatever If-Match says.
    let reply = call(
        &api,
        Method::DELETE,
        "/product/null",
        &[("if-match", "\"2\"")],
        Body::empty(),
    )
    .await;
    reply.problem(400);
    assert_eq!(get(&api, "/product/1").await.status, StatusCode::OK);
    let reply = call(
        &api,
        Method::DELETE,
        "/product/1",
        &[("if-match", "\"3\"")],
        Body::empty(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = call(
        &api,
        Method::PUT,
        "/product/1",
        &[json[0], ("if-match", "*")],
        body(),
    )
    .await;
    reply.problem(404);
}

#[tokio::test]
async fn if_match_star_and_weak_etags_match_any_or_the_current_version() {
    let api = products(memory());
    created(&api, "/product/", mug()).await;
    let json = ("content-type", "application/json");
    let reply = call(
        &api,
        Method::PATCH,
        "/product/1",
        &[json, (IF_MATCH.as_str(), "*")],
        "{}",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = call(
        &api,
        Method::PATCH,
        "/product/1",
        &[json, ("if-match", "W/\"2\"")],
        "{}",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Nested resources and hooks

#[tokio::test]
async fn nested_items_are_seen_only_under_their_parent() {
    let api = carts();
    let item = created(
        &api,
        "/user/7/cart/",
        json!({ "product_id": 1, "quantity": 2 }),
    )
    .await;
    assert_eq!(item["id"], 1);
    created(
        &api,
        "/user/8/cart/",
        json!({ "product_id": 2, "quantity": 1 }),
    )
    .await;

    let reply = get(&api, "/user/7/cart/1").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        get(&api, "/user/007/cart/1").await.status,
        StatusCode::OK,
        "canonical parent ids"
    );
    get(&api, "/user/8/cart/1").await.problem(404);
    patch(&api, "/user/8/cart/1", json!({ "quantity": 9 }))
        .await
        .problem(404);
    put(
        &api,
        "/user/8/cart/1",
        json!({ "product_id": 1, "quantity": 9 }),
    )
    .await
    .problem(404);
    delete(&api, "/user/8/cart/1").await.problem(404);

    let reply = get(&api, "/user/7/cart/").await;
    assert_eq!(reply.body["total"], 1);
    assert_eq!(reply.body["items"][0]["product_id"], 1);
    assert_eq!(
        get(&api, "/user/9/cart/").await.body,
        json!({ "items": [], "total": 0 })
    );
    assert_eq!(
        get(&api, "/user/7/cart/1").await.body["quantity"],
        2,
        "untouched by user 8"
    );
}

/// Two parents: `&` and `=` inside a parent value must not make two parents one.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/shop/{shop}/aisle/{aisle}/shelf", parent = "shop,aisle")]
struct Shelf {
    #[resource(id)]
    id: u64,
    label: String,
}

#[tokio::test]
async fn parent_values_with_separators_do_not_collide() {
    let api = serve(ResourceRoutes::<Shelf>::new(memory()).router());
    created(
        &api,
        "/shop/x%26aisle%3Dy/aisle/z/shelf/",
        json!({ "label": "secret" }),
    )
    .await;
    get(&api, "/shop/x/aisle/y%26aisle%3Dz/shelf/1")
        .await
        .problem(404);
    let reply = get(&api, "/shop/x/aisle/y%26aisle%3Dz/shelf/").await;
    assert_eq!(
        reply.body["total"], 0,
        "another parent's items: {:#}",
        reply.body
    );
    assert_eq!(
        get(&api, "/shop/x%26aisle%3Dy/aisle/z/shelf/1")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn hooks_fill_fields_from_the_parent_param() {
    let api = carts();
    let item = created(
        &api,
        "/user/7/cart/",
        json!({ "product_id": 1, "quantity": 2, "owner": "mallory" }),
    )
    .await;
    assert_eq!(
        item["owner"], "user 7",
        "filled by the hook, not the client"
    );
    let reply = put(
        &api,
        "/user/7/cart/1",
        json!({ "product_id": 1, "quantity": 3, "owner": "mallory" }),
    )
    .await;
    assert_eq!(reply.body["owner"], "user 7", "server-set on update too");
    let reply = patch(&api, "/user/7/cart/1", json!({ "owner": "mallory" })).await;
    assert_eq!(reply.body["owner"], "user 7");
}

#[tokio::test]
async fn hooks_refuse_with_their_problem_and_nothing_changes() {
    let api = carts();
    let reply = post(
        &api,
        "/user/7/cart/",
        json!({ "product_id": 666, "quantity": 1 }),
    )
    .await;
    assert_eq!(reply.problem(409)["detail"], "product 666 is sold out");
    assert_eq!(get(&api, "/user/7/cart/").await.body["total"], 0);

    created(
        &api,
        "/user/7/cart/",
        json!({ "product_id": 1, "quantity": 50 }),
    )
    .await;
    let before = observe(&api, "/user/7/cart/", "/user/7/cart").await;
    let reply = delete(&api, "/user/7/cart/1").await;
    assert_eq!(reply.problem(403)["detail"], "bulk items stay");
    assert_eq!(observe(&api, "/user/7/cart/", "/user/7/cart").await, before);
}

// ---------------------------------------------------------------------------------------------
// Attributes

#[tokio::test]
async fn actions_left_out_are_405_with_allow() {
    let api = serve(ResourceRoutes::<Note>::new(memory()).router());
    created(&api, "/note/", json!({ "text": "keep me" })).await;
    let reply = delete(&api, "/note/1").await;
    reply.problem(405);
    let allow = reply.header(ALLOW);
    for method in ["GET", "PUT", "PATCH"] {
        assert!(allow.contains(method), "{allow}");
    }
    assert!(!allow.contains("DELETE"), "{allow}");
    assert_eq!(get(&api, "/note/1").await.status, StatusCode::OK);
}

#[tokio::test]
async fn server_set_fields_cannot_be_written() {
    let api = products(memory());
    let sneaky =
        json!({ "id": 42, "name": "Mug", "category": "x", "price_cents": 1, "created_at": "1999" });
    let item = created(&api, "/product/", sneaky.clone()).await;
    assert_eq!(item["id"], 1);
    assert_eq!(item["created_at"], "2024-01-01T00:00:00Z");
    let reply = put(&api, "/product/1", sneaky.clone()).await;
    assert_eq!(
        (reply.body["id"].clone(), reply.body["created_at"].clone()),
        (json!(1), json!("2024-01-01T00:00:00Z"))
    );
    let reply = patch(&api, "/product/1", json!({ "id": 42, "created_at": null })).await;
    assert_eq!(
        (reply.body["id"].clone(), reply.body["created_at"].clone()),
        (json!(1), json!("2024-01-01T00:00:00Z"))
    );
    get(&api, "/product/42").await.problem(404);

    // The soft-delete flag is server-set too.
    let users = users();
    let mut body = alice();
    body["deleted"] = json!(true);
    created(&users, "/user/", body).await;
    // Not even shown: the flag stays out of the public representation.
    assert_eq!(get(&users, "/user/1").await.body.get("deleted"), None);
    patch(&users, "/user/1", json!({ "deleted": true })).await;
    assert_eq!(get(&users, "/user/1").await.status, StatusCode::OK);
}

#[tokio::test]
async fn uuid_ids_are_allocated_by_the_store() {
    let api = serve(ResourceRoutes::<Session>::new(memory()).router());
    let chosen = "6f1c2a3e-0000-4000-8000-000000000000";
    let reply = post(&api, "/session/", json!({ "id": chosen, "label": "a" })).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    assert_ne!(id, chosen, "the client's id is ignored");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert_eq!(reply.header(LOCATION), format!("/session/{id}"));
    assert_eq!(
        get(&api, &format!("/session/{id}")).await.body["label"],
        "a"
    );
    get(&api, &format!("/session/{}", id.to_uppercase())).await;
    get(&api, "/session/not-a-uuid").await.problem(400);
    get(&api, &format!("/session/{chosen}")).await.problem(404);
}

#[tokio::test]
async fn text_ids_are_chosen_by_the_client() {
    let api = serve(ResourceRoutes::<Page>::new(memory()).router());
    let reply = post(&api, "/page/", json!({ "slug": "home", "title": "Home" })).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.header(LOCATION), "/page/home");
    let reply = post(&api, "/page/", json!({ "slug": "home", "title": "Again" })).await;
    assert_eq!(reply.problem(409)["errors"][0]["field"], "id");
    let reply = post(&api, "/page/", json!({ "title": "No slug" })).await;
    assert_eq!(reply.problem(422)["errors"][0]["field"], "slug");
    post(
        &api,
        "/page/",
        json!({ "slug": "x".repeat(300), "title": "Long" }),
    )
    .await
    .problem(400);
    // The path names the item: a different slug in the body changes nothing.
    let reply = put(
        &api,
        "/page/home",
        json!({ "slug": "away", "title": "Home!" }),
    )
    .await;
    assert_eq!(reply.body["slug"], "home");
    assert_eq!(get(&api, "/page/").await.body["total"], 1);
}

#[tokio::test]
async fn text_ids_are_percent_encoded_in_the_location() {
    let api = serve(ResourceRoutes::<Page>::new(memory()).router());
    let reply = post(
        &api,
        "/page/",
        json!({ "slug": "a/b c?d#é", "title": "Odd" }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
    let location = reply.header(LOCATION).to_owned();
    assert_eq!(location, "/page/a%2Fb%20c%3Fd%23%C3%A9");
    let reply = get(&api, &location).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the Location leads to the item"
    );
    assert_eq!(reply.body["slug"], "a/b c?d#é");
}

#[tokio::test]
async fn unique_fields_refuse_duplicates_with_409() {
    let api = users();
    created(&api, "/user/", alice()).await;
    let before = observe(&api, "/user/", "/user").await;
    let mut twin = alice();
    twin["name"] = json!("Twin");
    let reply = post(&api, "/user/", twin).await;
    assert_eq!(reply.problem(409)["errors"][0]["field"], "email");
    assert_eq!(observe(&api, "/user/", "/user").await, before);

    created(
        &api,
        "/user/",
        json!({ "email": "bob@shop.example", "name": "Bob", "age": 1, "handle": "bob" }),
    )
    .await;
    let before = observe(&api, "/user/", "/user").await;
    patch(&api, "/user/2", json!({ "email": "alice@shop.example" }))
        .await
        .problem(409);
    let mut taken = alice();
    taken["name"] = json!("Bob");
    put(&api, "/user/2", taken).await.problem(409);
    assert_eq!(observe(&api, "/user/", "/user").await, before);
}

#[tokio::test]
async fn soft_deleted_items_are_gone_but_free_their_unique_values() {
    let api = users();
    created(&api, "/user/", alice()).await;
    assert_eq!(delete(&api, "/user/1").await.status, StatusCode::NO_CONTENT);
    get(&api, "/user/1").await.problem(404);
    patch(&api, "/user/1", json!({ "name": "Zombie" }))
        .await
        .problem(404);
    delete(&api, "/user/1").await.problem(404);
    assert_eq!(
        get(&api, "/user/").await.body,
        json!({ "items": [], "total": 0 })
    );
    assert_eq!(
        get(&api, "/user/?email=alice%40shop.example").await.body["total"],
        0
    );
    let again = created(&api, "/user/", alice()).await;
    assert_eq!(again["id"], 2);
}

#[tokio::test]
async fn validation_lists_every_failing_field() {
    let api = users();
    let bad = json!({
        "email": "not-an-email",
        "name": "",
        "age": 200,
        "handle": "Not Lower",
        "nickname": "admin",
    });
    let reply = post(&api, "/user/", bad.clone()).await;
    reply.problem(422);
    assert_eq!(
        reply.failing_fields(),
        ["email", "name", "age", "handle", "nickname"]
    );
    assert_eq!(reply.body["errors"][4]["message"], "is reserved");

    created(&api, "/user/", alice()).await;
    let before = observe(&api, "/user/", "/user").await;
    let reply = put(&api, "/user/1", bad).await;
    assert_eq!(
        reply.failing_fields(),
        ["email", "name", "age", "handle", "nickname"]
    );
    let reply = patch(
        &api,
        "/user/1",
        json!({ "name": "x".repeat(21), "age": 151 }),
    )
    .await;
    reply.problem(422);
    assert_eq!(reply.failing_fields(), ["name", "age"]);
    assert_eq!(observe(&api, "/user/", "/user").await, before);
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[tokio::test]
async fn bad_bodies_are_problems_that_change_nothing() {
    let api = products(memory());
    created(&api, "/product/", mug()).await;
    let before = observe(&api, "/products/", "/product").await;
    let json = ("content-type", "application/json");
    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(1024 * 1024));
    // What is wrong, the headers, the body, and the status it gets.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, u16);
    let cases: Vec<Case<'_>> = vec![
        (
            "wrong type",
            vec![json],
            r#"{"name":"Mug","category":"x","price_cents":"cheap"}"#.into(),
            422,
        ),
        (
            "null for a required field",
            vec![json],
            r#"{"name":null,"category":"x","price_cents":1}"#.into(),
            422,
        ),
        (
            "missing field",
            vec![json],
            r#"{"name":"Mug","category":"x"}"#.into(),
            422,
        ),
        (
            "unknown field",
            vec![json],
            r#"{"name":"Mug","category":"x","price_cents":1,"colour":"red"}"#.into(),
            422,
        ),
        ("an array", vec![json], "[1,2]".into(), 422),
        ("a string", vec![json], "\"mug\"".into(), 422),
        ("null", vec![json], "null".into(), 422),
        ("malformed", vec![json], r#"{"name":"#.into(), 400),
        (
            "trailing garbage",
            vec![json],
            r#"{"name":"Mug"} x"#.into(),
            400,
        ),
        ("empty", vec![json], String::new(), 400),
        (
            "text/plain",
            vec![("content-type", "text/plain")],
            mug().to_string(),
            415,
        ),
        ("no content type", vec![], mug().to_string(), 415),
        ("over 1 MiB", vec![json], huge, 413),
    ];
    for (what, headers, body, status) in cases {
        for (method, uri) in [
            (Method::POST, "/product/"),
            (Method::PUT, "/product/1"),
            (Method::PATCH, "/product/1"),
        ] {
            if method == Method::PATCH
                && ["missing field", "null for a required field"].contains(&what)
            {
                continue; // a valid merge patch when it leaves the item valid
            }
            let reply = call(&api, method.clone(), uri, &headers, body.clone()).await;
            assert_eq!(
                reply.status.as_u16(),
                status,
                "{what} to {method} {uri}: {:#}",
                reply.body
            );
            reply.problem(status);
        }
    }
    // A patch that removes a required field leaves an invalid item.
    let reply = patch(&api, "/product/1", json!({ "name": null })).await;
    assert_eq!(reply.problem(422)["errors"][0]["field"], "name");
    assert_eq!(observe(&api, "/products/", "/product").await, before);
}

#[tokio::test]
async fn bad_ids_are_400_problems() {
    let api = products(memory());
    created(&api, "/product/", mug()).await;
    let before = observe(&api, "/products/", "/product").await;
    for id in [
        "abc",
        "-1",
        "0",
        "01",
        "1.0",
        "99999999999999999999",
        "18446744073709551616",
        "%20",
    ] {
        let uri = format!("/product/{id}");
        get(&api, &uri).await.problem(400);
        put(&api, &uri, mug()).await.problem(400);
        patch(&api, &uri, json!({ "name": "x" })).await.problem(400);
        delete(&api, &uri).await.problem(400);
    }
    get(&api, &format!("/product/{}", i64::MAX))
        .await
        .problem(404);
    let carts = carts();
    get(&carts, "/user/7/cart/x").await.problem(400);
    assert_eq!(observe(&api, "/products/", "/product").await, before);
}

// ---------------------------------------------------------------------------------------------
// One representation; problems that name every field; stored data that no longer fits

/// The member names of a JSON object, in the order they were written.
struct MemberOrder(Vec<String>);

impl<'de> Deserialize<'de> for MemberOrder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> serde::de::Visitor<'de> for Names {
            type Value = MemberOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<MemberOrder, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    names.push(name);
                }
                Ok(MemberOrder(names))
            }
        }
        deserializer.deserialize_map(Names)
    }
}

/// The raw body of a call.
async fn raw(service: &RouterService, method: Method, uri: &str, body: Option<Value>) -> Vec<u8> {
    let request = Request::builder().method(method).uri(uri);
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    };
    let response = service.call(request.expect("a valid request")).await;
    assert!(response.status().is_success(), "{}", response.status());
    response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes()
        .to_vec()
}

#[tokio::test]
async fn an_item_reads_the_same_in_every_answer() {
    let api = products(memory());
    let order = |bytes: Vec<u8>| serde_json::from_slice::<MemberOrder>(&bytes).unwrap().0;
    let struct_order = [
        "id",
        "name",
        "category",
        "price_cents",
        "tags",
        "created_at",
    ];
    let created = raw(&api, Method::POST, "/product/", Some(mug())).await;
    assert_eq!(order(created), struct_order, "POST");
    let read = raw(&api, Method::GET, "/product/1", None).await;
    assert_eq!(order(read), struct_order, "GET");
    let replaced = raw(&api, Method::PUT, "/product/1", Some(mug())).await;
    assert_eq!(order(replaced), struct_order, "PUT");
    let patched = raw(
        &api,
        Method::PATCH,
        "/product/1",
        Some(json!({ "name": "Cup" })),
    )
    .await;
    assert_eq!(order(patched), struct_order, "PATCH");
    #[derive(Deserialize)]
    struct List {
        items: Vec<MemberOrder>,
    }
    let list = raw(&api, Method::GET, "/products/", None).await;
    let list: List = serde_json::from_slice(&list).unwrap();
    assert_eq!(list.items[0].0, struct_order, "the list");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_whatever_else_is_wrong() {
    let api = products(memory());
    created(&api, "/product/", mug()).await;
    let before = observe(&api, "/products/", "/product").await;
    // Invalid UTF-8 inside a string, in a member the resource does not even have.
    for (method, uri) in [
        (Method::POST, "/product/"),
        (Method::PUT, "/product/1"),
        (Method::PATCH, "/product/1"),
    ] {
        let json = [("content-type", "application/json")];
        let body = b"{\"a\": \"\xff\xfe\"}".to_vec();
        let reply = call(&api, method.clone(), uri, &json, body).await;
        reply.problem(400);
        let body =
            b"{\"name\":\"Mug\",\"category\":\"x\",\"price_cents\":1,\"tags\":[\"\xff\"]}".to_vec();
        call(&api, method.clone(), uri, &json, body)
            .await
            .problem(400);
    }
    assert_eq!(observe(&api, "/products/", "/product").await, before);
}

#[tokio::test]
async fn a_wrong_shape_names_every_unknown_missing_and_mistyped_field() {
    let api = products(memory());
    created(&api, "/product/", mug()).await;
    let body = json!({ "colour": "red", "price_cents": "cheap", "tags": [1] });
    for (method, uri) in [(Method::POST, "/product/"), (Method::PUT, "/product/1")] {
        let reply = send_json(&api, method.clone(), uri, &body).await;
        reply.problem(422);
        let mut fields = reply.failing_fields();
        fields.sort_unstable();
        // `colour` unknown, `name` and `category` missing, `price_cents` and `tags[0]` mistyped.
        assert_eq!(
            fields,
            ["category", "colour", "name", "price_cents", "tags[0]"],
            "{method}: {:#}",
            reply.body
        );
    }
    // A merge patch is checked as the item it makes.
    let reply = patch(
        &api,
        "/product/1",
        json!({ "note": "x", "price_cents": "cheap" }),
    )
    .await;
    reply.problem(422);
    let mut fields = reply.failing_fields();
    fields.sort_unstable();
    assert_eq!(fields, ["note", "price_cents"]);
}

#[tokio::test]
async fn stored_data_that_no_longer_fits_is_a_500_never_a_422() {
    let store = memory();
    let api = products(store.clone());
    // An item written before `category` became a required field.
    let collection = microkit::resource::store::Collection::new("product").filterable("category");
    let Value::Object(old) = json!({ "name": "Mug", "price_cents": 1, "tags": [] }) else {
        unreachable!()
    };
    store
        .create(&collection, None, None, old)
        .await
        .expect("stored");
    for reply in [
        put(&api, "/product/1", mug()).await,
        patch(&api, "/product/1", json!({ "name": "Cup" })).await,
        delete(&api, "/product/1").await,
    ] {
        reply.data_at_fault();
    }
}

/// What a test's requests log, captured from the `tracing` events of the current thread.
#[derive(Clone, Default)]
struct CapturedLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    /// How many lines logged so far contain `needle`.
    fn lines_with(&self, needle: &str) -> usize {
        let log = self.0.lock().unwrap();
        String::from_utf8_lossy(&log)
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }
}

/// How a resource evolves (see the derive's reference): a field added with `#[serde(default)]`
/// (or as an `Option`) reads old items back with its default; old items that lack a required
/// field are the server's data at fault on every endpoint, GET and list included: a 500 with a
/// clear detail whose cause is logged once per request, never a 422, and nothing changes.
#[tokio::test]
async fn old_items_read_back_with_defaults_and_unreadable_ones_are_a_500_logged_once() {
    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let store = memory();
    let api = products(store.clone());
    let collection = microkit::resource::store::Collection::new("product").filterable("category");
    // Item 1 was written before `tags` and `created_at` existed: both have defaults.
    // Item 2 was written before `category`, which has none.
    for old in [
        json!({ "name": "Mug", "category": "kitchen", "price_cents": 1 }),
        json!({ "name": "Cup", "price_cents": 2 }),
    ] {
        let Value::Object(old) = old else {
            unreachable!()
        };
        store
            .create(&collection, None, None, old)
            .await
            .expect("stored");
    }

    let reply = get(&api, "/product/1").await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(
        reply.body,
        json!({ "id": 1, "name": "Mug", "category": "kitchen", "price_cents": 1, "tags": [], "created_at": null })
    );
    let reply = patch(&api, "/product/1", json!({ "tags": ["blue"] })).await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.body["tags"], json!(["blue"]));

    let fingerprint = "does not fit the type `Product`";
    for (answered, method) in ["GET", "GET list", "PUT", "PATCH", "DELETE"]
        .into_iter()
        .enumerate()
    {
        let reply = match method {
            "GET" => get(&api, "/product/2").await,
            "GET list" => get(&api, "/products/?limit=3").await,
            "PUT" => put(&api, "/product/2", mug()).await,
            "PATCH" => patch(&api, "/product/2", json!({ "category": "cups" })).await,
            _ => delete(&api, "/product/2").await,
        };
        let problem = reply.data_at_fault();
        assert!(
            !problem.to_string().contains(fingerprint),
            "{method}: the cause is logged, not sent: {problem:#}"
        );
        assert_eq!(
            log.lines_with(fingerprint),
            answered + 1,
            "{method}: one log line per failed request:\n{}",
            String::from_utf8_lossy(&log.0.lock().unwrap())
        );
    }
    let stored = store
        .get(&collection, None, &microkit::resource::store::Id::Int(2))
        .await
        .expect("item 2 is still there");
    assert_eq!(
        Value::Object((*stored.data).clone()),
        json!({ "name": "Cup", "price_cents": 2 })
    );
}
