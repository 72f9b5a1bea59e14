//! Resources scoped to their owner over real sockets: the verified caller reaches resource
//! hooks (`HookContext::identity`), and a `scope` hook makes another user's items 404 on
//! every item route, leaves them out of lists (totals and filters included), and refuses a
//! nested collection that is not the caller's.

use microkit_test_support as support;

use std::sync::Arc;

use jsonwebtoken::{encode, get_current_timestamp, EncodingKey, Header};
use microkit::auth::{Authenticate, JwtKeys, JwtVerifier};
use microkit::http::{header, Method, StatusCode};
use microkit::resource::store::{MemoryStore, Store};
use microkit::resource::{HookContext, Hooks, ResourceRoutes, Scope};
use microkit::{Problem, Resource, Router, ServerConfig};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use support::{request, send, spawn, Reply, TestServer};

const SECRET: &[u8] = b"an HS256 secret of 32 bytes or more";

/// A note belongs to whoever wrote it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Resource)]
#[resource(path = "/note")]
struct Note {
    #[resource(id)]
    id: u64,
    text: String,
    #[resource(read_only, filter)]
    #[serde(default)]
    owner: String,
    #[resource(filter)]
    #[serde(default)]
    topic: String,
}

struct OwnNotes;

fn subject(ctx: &HookContext) -> String {
    ctx.identity()
        .map(|who| who.subject().to_owned())
        .unwrap_or_default()
}

impl Hooks<Note> for OwnNotes {
    async fn scope(&self, ctx: &HookContext, scope: &mut Scope) -> Result<(), Problem> {
        scope.require("owner", subject(ctx));
        Ok(())
    }

    async fn before_create(&self, ctx: &HookContext, note: &mut Note) -> Result<(), Problem> {
        note.owner = subject(ctx);
        Ok(())
    }
}

/// A user's bookmarks live under the user: only that user reaches the collection.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Resource)]
#[resource(path = "/user/{uid}/bookmark", parent = "uid: String")]
struct Bookmark {
    #[resource(id)]
    id: u64,
    url: String,
}

struct OwnBookmarks;

impl Hooks<Bookmark> for OwnBookmarks {
    async fn scope(&self, ctx: &HookContext, _scope: &mut Scope) -> Result<(), Problem> {
        if ctx.param("uid") == Some(subject(ctx).as_str()) {
            Ok(())
        } else {
            Err(ctx.not_found())
        }
    }
}

async fn app() -> TestServer {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let verifier = JwtVerifier::new(JwtKeys::hmac(SECRET));
    let router: Router = ResourceRoutes::<Note>::new(store.clone())
        .hooks(OwnNotes)
        .router()
        .merge(
            ResourceRoutes::<Bookmark>::new(store)
                .hooks(OwnBookmarks)
                .router(),
        )
        .layer(Authenticate::new().jwt(verifier));
    spawn(router, ServerConfig::default()).await
}

fn token(user: &str) -> String {
    let claims = json!({ "sub": user, "exp": get_current_timestamp() + 300 });
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

async fn call(app: &TestServer, user: &str, method: Method, path: &str, body: Value) -> Reply {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let mut request = request(method, path, body);
    let bearer = format!("Bearer {}", token(user));
    request
        .headers_mut()
        .insert(header::AUTHORIZATION, bearer.parse().unwrap());
    request
        .headers_mut()
        .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    send(app.addr, request).await
}

#[tokio::test]
async fn another_users_items_are_404_and_left_out_of_lists() {
    let app = app().await;
    let created = call(
        &app,
        "alice",
        Method::POST,
        "/note/",
        json!({"text": "mine", "topic": "a"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(
        created.json()["owner"],
        "alice",
        "the owner comes from the token"
    );
    let id = created.json()["id"].as_u64().unwrap();
    // A client cannot claim someone else's ownership: the field is read-only.
    let claimed = call(
        &app,
        "bob",
        Method::POST,
        "/note/",
        json!({"text": "bob's", "owner": "alice", "topic": "a"}),
    )
    .await;
    assert_eq!(claimed.status, StatusCode::CREATED, "{}", claimed.text());
    assert_eq!(claimed.json()["owner"], "bob");

    let path = format!("/note/{id}");
    assert_eq!(
        call(&app, "alice", Method::GET, &path, Value::Null)
            .await
            .status,
        200
    );
    for (method, body) in [
        (Method::GET, Value::Null),
        (Method::PUT, json!({"text": "taken"})),
        (Method::PATCH, json!({"text": "taken"})),
        (Method::DELETE, Value::Null),
    ] {
        let reply = call(&app, "bob", method.clone(), &path, body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method}: {}",
            reply.text()
        );
        assert_eq!(
            reply.json()["detail"],
            format!("there is no item {id}"),
            "as if absent"
        );
    }
    // Unchanged by bob's attempts; alice's own patch cannot hand the note over either.
    let patched = call(
        &app,
        "alice",
        Method::PATCH,
        &path,
        json!({"owner": "bob", "text": "still mine"}),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()["owner"], "alice");
    assert_eq!(patched.json()["text"], "still mine");

    // Lists: only the caller's items, counted in the total, whatever the client filters on.
    let bobs = call(&app, "bob", Method::GET, "/note/", Value::Null)
        .await
        .json();
    assert_eq!(bobs["total"], 1);
    assert_eq!(bobs["items"][0]["owner"], "bob");
    let sneaky = call(&app, "bob", Method::GET, "/note/?owner=alice", Value::Null)
        .await
        .json();
    assert_eq!(sneaky["total"], 0);
    assert_eq!(sneaky["items"], json!([]));
    let topic = call(&app, "alice", Method::GET, "/note/?topic=a", Value::Null)
        .await
        .json();
    assert_eq!(topic["total"], 1);
    assert_eq!(topic["items"][0]["id"], id);

    assert_eq!(
        call(&app, "alice", Method::DELETE, &path, Value::Null)
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn a_nested_collection_is_reached_only_by_its_user() {
    let app = app().await;
    let mine = call(
        &app,
        "alice",
        Method::POST,
        "/user/alice/bookmark/",
        json!({"url": "https://a.test"}),
    )
    .await;
    assert_eq!(mine.status, StatusCode::CREATED, "{}", mine.text());
    let id = mine.json()["id"].as_u64().unwrap();

    let item = format!("/user/alice/bookmark/{id}");
    for (method, path, body) in [
        (Method::GET, item.as_str(), Value::Null),
        (Method::DELETE, item.as_str(), Value::Null),
        (Method::GET, "/user/alice/bookmark/", Value::Null),
        (
            Method::POST,
            "/user/alice/bookmark/",
            json!({"url": "https://b.test"}),
        ),
    ] {
        let reply = call(&app, "bob", method.clone(), path, body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            reply.text()
        );
    }
    let list = call(
        &app,
        "alice",
        Method::GET,
        "/user/alice/bookmark/",
        Value::Null,
    )
    .await
    .json();
    assert_eq!(list["total"], 1, "bob's POST stored nothing");
}

#[tokio::test]
async fn without_a_token_nothing_is_reached() {
    let app = app().await;
    let reply = send(app.addr, request(Method::GET, "/note/", "")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}
