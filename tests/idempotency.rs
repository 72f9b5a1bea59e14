//! `Idempotency-Key` over real sockets (generated endpoints, a hand-written handler, the layer,
//! a create whose answer was lost) and `Store::commit`, against each store:
//! `MemoryStore`, `SqliteStore` (a file in a temp dir) and `PostgresStore` (a fresh database on
//! the server named by `MICROKIT_TEST_POSTGRES`, dropped afterwards; skipped without one unless
//! `CI=true` or `MICROKIT_REQUIRE_SERVICES=1`).

use microkit_test_support as support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use microkit::auth::{Identity, Scheme};
use microkit::http::{Method, StatusCode};
use microkit::idempotency::{Begin, Idempotency, IdempotencyConfig, IdempotencyLayer};
use microkit::resource::store::{
    now_millis, Collection, Id, KeyCommit, KeyRecord, ListQuery, MemoryStore, Store, StoreError,
    Write,
};
use microkit::resource::{HookContext, Hooks, Repo, ResourceRoutes};
use microkit::router::post;
use microkit::{Problem, Resource, Router, ServerConfig};
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::{request, spawn, Http1Conn, Reply, TestServer};

#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/widget", list_path = "/widgets/")]
struct Widget {
    #[resource(id)]
    id: u64,
    name: String,
    #[serde(default)]
    size: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/gadget", list_path = "/gadgets/")]
struct Gadget {
    #[resource(id)]
    id: u64,
    name: String,
}

/// Without hooks, a keyed create does not look its key up before it runs: the commit finds it.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/gizmo", list_path = "/gizmos/")]
struct Gizmo {
    #[resource(id)]
    id: u64,
    #[resource(unique)]
    sku: String,
    #[resource(validate(range(min = 1)))]
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

/// Makes creates slow, so that a second request can arrive while the first runs.
struct Slow;

impl Hooks<Widget> for Slow {
    async fn before_create(&self, _: &HookContext, item: &mut Widget) -> Result<(), Problem> {
        if item.name == "slow" {
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        Ok(())
    }
}

struct App {
    server: TestServer,
}

impl App {
    async fn start(store: Arc<dyn Store>, config: IdempotencyConfig) -> Self {
        let router = Router::new()
            .merge(
                ResourceRoutes::<Widget>::new(store.clone())
                    .hooks(Slow)
                    .idempotency(config)
                    .router(),
            )
            .merge(
                ResourceRoutes::<Gadget>::new(store.clone())
                    .idempotency(config)
                    .router(),
            )
            .merge(
                ResourceRoutes::<Gizmo>::new(store)
                    .idempotency(config)
                    .router(),
            );
        Self {
            server: spawn(router, ServerConfig::default()).await,
        }
    }

    async fn send(&self, method: Method, path: &str, key: Option<&str>, body: &str) -> Reply {
        let mut request = request(method, path, body.to_owned());
        request
            .headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        if let Some(key) = key {
            request
                .headers_mut()
                .insert("idempotency-key", key.parse().unwrap());
        }
        let mut conn = Http1Conn::open(self.server.addr).await;
        conn.send(request).await.expect("an answer")
    }

    async fn post(&self, key: Option<&str>, body: &str) -> Reply {
        self.send(Method::POST, "/widget/", key, body).await
    }

    async fn count(&self, list: &str) -> u64 {
        let reply = self.send(Method::GET, list, None, "").await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.json()["total"].as_u64().unwrap()
    }
}

async fn replays_a_create(store: Arc<dyn Store>) {
    let app = App::start(store, IdempotencyConfig::default()).await;
    let first = app.post(Some("k-1"), r#"{"name":"a"}"#).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert_eq!(first.header("idempotent-replayed"), "");
    let again = app.post(Some("k-1"), r#"{"name":"a"}"#).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.body, first.body);
    for header in ["location", "etag", "content-type"] {
        assert_ne!(first.header(header), "", "{header}");
        assert_eq!(again.header(header), first.header(header), "{header}");
    }
    assert_eq!(app.count("/widgets/").await, 1);
    // Without a key, each request runs.
    app.post(None, r#"{"name":"a"}"#).await;
    app.post(None, r#"{"name":"a"}"#).await;
    assert_eq!(app.count("/widgets/").await, 3);
    // A request refused before its commit keeps nothing: fixed, it runs under the same key.
    let refused = app.post(Some("k-2"), r#"{"name":7}"#).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fixed = app.post(Some("k-2"), r#"{"name":"b"}"#).await;
    assert_eq!(fixed.status, StatusCode::CREATED);
    assert_eq!(fixed.header("idempotent-replayed"), "");
    assert_eq!(app.count("/widgets/").await, 4);
}

/// The create without hooks, which finds a kept answer at its commit: the same answers.
async fn replays_a_create_without_hooks(store: Arc<dyn Store>) {
    let app = App::start(store, IdempotencyConfig::default()).await;
    let post = |key: &'static str, body: &'static str| {
        let app = &app;
        async move { app.send(Method::POST, "/gizmo/", Some(key), body).await }
    };
    let first = post("g-1", r#"{"sku":"a"}"#).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert_eq!(first.header("idempotent-replayed"), "");
    // The replay's write would be a duplicate `sku`: the kept answer, not a 409.
    let again = post("g-1", r#"{"sku":"a"}"#).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.body, first.body);
    for header in ["location", "etag", "content-type"] {
        assert_ne!(first.header(header), "", "{header}");
        assert_eq!(again.header(header), first.header(header), "{header}");
    }
    // The same key with another request, valid or not, is a 422 about the key.
    for other in [r#"{"sku":"b"}"#, r#"{"sku":"b","count":0}"#, r#"{"sku":7}"#] {
        let reused = post("g-1", other).await;
        assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY, "{other}");
        assert!(
            reused.json()["detail"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key"),
            "{other}: {}",
            reused.text()
        );
    }
    // A request refused before its commit keeps nothing; a duplicate is refused as ever.
    let refused = post("g-2", r#"{"sku":"c","count":0}"#).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        !refused.text().contains("Idempotency-Key"),
        "{}",
        refused.text()
    );
    let duplicate = post("g-2", r#"{"sku":"a"}"#).await;
    assert_eq!(
        duplicate.status,
        StatusCode::CONFLICT,
        "{}",
        duplicate.text()
    );
    let fixed = post("g-2", r#"{"sku":"c"}"#).await;
    assert_eq!(fixed.status, StatusCode::CREATED);
    assert_eq!(fixed.header("idempotent-replayed"), "");
    assert_eq!(app.count("/gizmos/").await, 2);
}

async fn refuses_a_key_reused_for_another_request(store: Arc<dyn Store>) {
    let app = App::start(store, IdempotencyConfig::default()).await;
    assert_eq!(
        app.post(Some("k"), r#"{"name":"a"}"#).await.status,
        StatusCode::CREATED
    );
    let other = app.post(Some("k"), r#"{"name":"b"}"#).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.header("content-type"), "application/problem+json");
    assert!(other.json()["detail"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
    // Another path under the same route is another request too.
    let elsewhere = app
        .send(Method::POST, "/widget/?x=1", Some("k"), r#"{"name":"a"}"#)
        .await;
    assert_eq!(elsewhere.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count("/widgets/").await, 1);
}

async fn answers_409_while_the_first_runs(store: Arc<dyn Store>) {
    let app = Arc::new(App::start(store, IdempotencyConfig::default()).await);
    let first = {
        let app = app.clone();
        tokio::spawn(async move { app.post(Some("slow-key"), r#"{"name":"slow"}"#).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = app.post(Some("slow-key"), r#"{"name":"slow"}"#).await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(second.header("retry-after"), "1");
    assert_eq!(second.header("content-type"), "application/problem+json");
    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::CREATED);
    let third = app.post(Some("slow-key"), r#"{"name":"slow"}"#).await;
    assert_eq!(third.header("idempotent-replayed"), "true");
    assert_eq!(third.body, first.body);
    assert_eq!(app.count("/widgets/").await, 1);
}

async fn refuses_bad_keys(store: Arc<dyn Store>) {
    let config = IdempotencyConfig::default();
    let app = App::start(store, config).await;
    let long = "k".repeat(256);
    let refused = app.post(Some(&long), r#"{"name":"a"}"#).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.header("content-type"), "application/problem+json");
    let refused = app.post(Some("\"\""), r#"{"name":"a"}"#).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.count("/widgets/").await, 0);
    let longest = "k".repeat(255);
    assert_eq!(
        app.post(Some(&longest), r#"{"name":"a"}"#).await.status,
        StatusCode::CREATED
    );
    // The structured-field form is the same key.
    let quoted = format!("\"{longest}\"");
    let again = app.post(Some(&quoted), r#"{"name":"a"}"#).await;
    assert_eq!(again.header("idempotent-replayed"), "true");

    let short = App::start(Arc::new(MemoryStore::new()), config.max_key_len(8)).await;
    assert_eq!(
        short
            .post(Some("123456789"), r#"{"name":"a"}"#)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        short.post(Some("12345678"), r#"{"name":"a"}"#).await.status,
        StatusCode::CREATED
    );
}

async fn keys_expire(store: Arc<dyn Store>) {
    let config = IdempotencyConfig::default().ttl(Duration::from_millis(400));
    let app = App::start(store, config).await;
    let first = app.post(Some("k"), r#"{"name":"a"}"#).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(
        app.post(Some("k"), r#"{"name":"a"}"#)
            .await
            .header("idempotent-replayed"),
        "true"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = app.post(Some("k"), r#"{"name":"a"}"#).await;
    assert_eq!(later.status, StatusCode::CREATED);
    assert_eq!(later.header("idempotent-replayed"), "");
    assert_ne!(later.header("location"), first.header("location"));
    // Expired, the key is free for another request too.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        app.post(Some("k"), r#"{"name":"other"}"#).await.status,
        StatusCode::CREATED
    );
    assert_eq!(app.count("/widgets/").await, 3);
}

async fn scopes_keys_per_route(store: Arc<dyn Store>) {
    let app = App::start(store, IdempotencyConfig::default()).await;
    let widget = app.post(Some("shared"), r#"{"name":"a"}"#).await;
    let gadget = app
        .send(Method::POST, "/gadget/", Some("shared"), r#"{"name":"a"}"#)
        .await;
    assert_eq!(widget.status, StatusCode::CREATED);
    assert_eq!(gadget.status, StatusCode::CREATED);
    assert_eq!(gadget.header("idempotent-replayed"), "");
    assert!(gadget.header("location").starts_with("/gadget/"));
    assert_eq!(app.count("/widgets/").await, 1);
    assert_eq!(app.count("/gadgets/").await, 1);
}

async fn replays_a_patch(store: Arc<dyn Store>) {
    let app = App::start(store, IdempotencyConfig::default()).await;
    let created = app.post(None, r#"{"name":"a"}"#).await;
    let path = created.header("location").to_owned();
    let patch = app
        .send(Method::PATCH, &path, Some("p"), r#"{"size":3}"#)
        .await;
    assert_eq!(patch.status, StatusCode::OK, "{}", patch.text());
    assert_eq!(patch.header("etag"), "\"2\"");
    let again = app
        .send(Method::PATCH, &path, Some("p"), r#"{"size":3}"#)
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.header("etag"), "\"2\"");
    let other = app
        .send(Method::PATCH, &path, Some("p"), r#"{"size":4}"#)
        .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A replay answers a retry of the same request: with a malformed If-Match it is not one.
    let mut malformed = request(Method::PATCH, &path, r#"{"size":3}"#.to_owned());
    for (name, value) in [
        ("content-type", "application/json"),
        ("idempotency-key", "p"),
        ("if-match", "garbage"),
    ] {
        malformed.headers_mut().insert(name, value.parse().unwrap());
    }
    let mut conn = Http1Conn::open(app.server.addr).await;
    let refused = conn.send(malformed).await.expect("an answer");
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    assert_eq!(refused.header("idempotent-replayed"), "");
    let now = app.send(Method::GET, &path, None, "").await;
    assert_eq!(now.header("etag"), "\"2\"");
    assert_eq!(now.json()["size"], 3);
    // PUT is idempotent by itself: a key changes nothing there.
    let put = app
        .send(Method::PUT, &path, Some("p"), r#"{"name":"b"}"#)
        .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.header("idempotent-replayed"), "");
}

async fn can_be_turned_off(store: Arc<dyn Store>) {
    let router = ResourceRoutes::<Gadget>::new(store)
        .without_idempotency()
        .router();
    let app = App {
        server: spawn(router, ServerConfig::default()).await,
    };
    for _ in 0..2 {
        let reply = app
            .send(Method::POST, "/gadget/", Some("k"), r#"{"name":"a"}"#)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        assert_eq!(reply.header("idempotent-replayed"), "");
    }
    assert_eq!(app.count("/gadgets/").await, 2);
}

/// `Store::commit`: writes across collections and the key record, all or nothing.
async fn commits_all_or_nothing(store: Arc<dyn Store>) {
    let things = Arc::new(Collection::new("things").unique("sku"));
    let others = Arc::new(Collection::new("others"));
    let create = |c: &Arc<Collection>, sku: &str| Write::Create {
        collection: c.clone(),
        parent: None,
        id: None,
        data: json!({ "sku": sku }).as_object().unwrap().clone(),
    };
    let count = |c: Arc<Collection>| {
        let store = store.clone();
        async move { store.list(&c, &ListQuery::default()).await.unwrap().total }
    };
    store
        .create(
            &things,
            None,
            None,
            json!({"sku": "a"}).as_object().unwrap().clone(),
        )
        .await
        .unwrap();
    let key = |key: &str| KeyCommit {
        scope: "POST /things/".into(),
        key: key.into(),
        respond: Box::new(|written| {
            Ok(KeyRecord {
                fingerprint: "f".into(),
                status: 201,
                headers: vec![("content-type".into(), "application/json".into())],
                body: format!("{}", written.len()).into(),
                expires_at: now_millis() + 60_000,
            })
        }),
    };
    // The second write fails: the first, in another collection, and the key are not kept.
    let failed = store
        .commit(
            vec![create(&others, "x"), create(&things, "a")],
            Some(key("k")),
        )
        .await;
    assert!(
        matches!(failed, Err(StoreError::Duplicate { ref field }) if field == "sku"),
        "{failed:?}"
    );
    assert_eq!(count(others.clone()).await, 0);
    assert_eq!(count(things.clone()).await, 1);
    assert_eq!(store.key_record("POST /things/", "k").await.unwrap(), None);
    // All succeed: every write and the key are kept.
    let done = store
        .commit(
            vec![
                create(&others, "x"),
                create(&things, "b"),
                Write::Delete {
                    collection: things.clone(),
                    parent: None,
                    id: Id::Int(1),
                    if_version: Some(1),
                },
            ],
            Some(key("k")),
        )
        .await
        .unwrap();
    assert_eq!(done.written.len(), 3);
    assert!(done.written[2].is_none());
    let kept = done.key_record.unwrap();
    assert_eq!(&kept.body[..], b"3");
    assert_eq!(
        store.key_record("POST /things/", "k").await.unwrap(),
        Some(kept)
    );
    assert_eq!(count(others.clone()).await, 1);
    assert_eq!(count(things.clone()).await, 1);
    // The key is taken: nothing of a second commit with it is written.
    let again = store
        .commit(vec![create(&things, "c")], Some(key("k")))
        .await;
    assert!(matches!(again, Err(StoreError::KeyTaken)), "{again:?}");
    assert_eq!(count(things.clone()).await, 1);
    // Another scope is another key; no key at all commits the writes alone.
    let mut other_scope = key("k");
    other_scope.scope = "POST /others/".into();
    store
        .commit(vec![create(&things, "c")], Some(other_scope))
        .await
        .unwrap();
    store
        .commit(vec![create(&things, "d")], None)
        .await
        .unwrap();
    assert_eq!(count(things).await, 3);
}

/// A hand-written handler commits its writes with the key through `Claim::commit`; the layer
/// keeps the answers of another route.
async fn hand_written_routes_honour_keys(store: Arc<dyn Store>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let keys = Idempotency::new(store.clone());
    let bill = {
        let keys = keys.clone();
        let widgets: Repo<Widget> = Repo::new(store.clone());
        move |request: microkit::Request| {
            let (keys, widgets) = (keys.clone(), widgets.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = body.collect_limited(1024).await.unwrap();
                let claim = match keys.begin(&parts, &body).await? {
                    Begin::Replay(response) => return Ok::<_, Problem>(response),
                    Begin::Run(claim) => claim,
                };
                let name = String::from_utf8_lossy(&body).into_owned();
                let writes = vec![
                    widgets.create_write(
                        None,
                        &Widget {
                            id: 0,
                            name: name.clone(),
                            size: 1,
                        },
                    )?,
                    widgets.create_write(
                        None,
                        &Widget {
                            id: 0,
                            name,
                            size: 2,
                        },
                    )?,
                ];
                let outcome = claim
                    .commit(writes, |written| {
                        let ids: Vec<_> =
                            written.iter().flatten().map(|r| r.id.to_string()).collect();
                        microkit::idempotency::Reply::json(StatusCode::CREATED, &ids)
                    })
                    .await?;
                Ok(outcome.response)
            }
        }
    };
    let notify = {
        let calls = calls.clone();
        move |body: String| {
            let calls = calls.clone();
            async move {
                if body == "bad" {
                    return Err(Problem::bad_request("bad"));
                }
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(format!("sent {n}"))
            }
        }
    };
    let router = Router::new()
        .merge(ResourceRoutes::<Widget>::new(store.clone()).router())
        .route("/bill", post(bill))
        .merge(
            Router::new()
                .route("/notify", post(notify))
                .route_layer(IdempotencyLayer::new(keys)),
        );
    let app = App {
        server: spawn(router, ServerConfig::default()).await,
    };
    let first = app.send(Method::POST, "/bill", Some("b"), "x").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let again = app.send(Method::POST, "/bill", Some("b"), "x").await;
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.body, first.body);
    assert_eq!(
        app.send(Method::POST, "/bill", Some("b"), "y").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(app.count("/widgets/").await, 2);

    let refused = app.send(Method::POST, "/notify", Some("n"), "bad").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let sent = app.send(Method::POST, "/notify", Some("n"), "hi").await;
    assert_eq!(sent.text(), "sent 1");
    let replay = app.send(Method::POST, "/notify", Some("n"), "hi").await;
    assert_eq!(
        (replay.text(), replay.header("idempotent-replayed")),
        ("sent 1".to_owned(), "true")
    );
    assert_eq!(
        app.send(Method::POST, "/notify", Some("n"), "other")
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.send(Method::POST, "/notify", None, "hi").await.text(),
        "sent 2"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// With callers known (`auth::Identity`), each caller has keys of its own.
async fn scopes_keys_per_caller(store: Arc<dyn Store>) {
    let who = tower::util::MapRequestLayer::new(|mut request: microkit::Request| {
        let user = request
            .headers()
            .get("x-test-user")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("anonymous")
            .to_owned();
        request.extensions_mut().insert(Identity::new(
            Scheme::ApiKey,
            user,
            Vec::<String>::new(),
            Default::default(),
        ));
        request
    });
    let router = ResourceRoutes::<Widget>::new(store)
        .router()
        .route_layer(who);
    let app = App {
        server: spawn(router, ServerConfig::default()).await,
    };
    let post_as = |user: &'static str| {
        let mut request = request(Method::POST, "/widget/", r#"{"name":"a"}"#);
        let headers = request.headers_mut();
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("idempotency-key", "same".parse().unwrap());
        headers.insert("x-test-user", user.parse().unwrap());
        let addr = app.server.addr;
        async move { Http1Conn::open(addr).await.send(request).await.unwrap() }
    };
    let ann = post_as("ann").await;
    let bob = post_as("bob").await;
    assert_eq!(
        (ann.status, bob.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(bob.header("idempotent-replayed"), "");
    assert_ne!(ann.header("location"), bob.header("location"));
    let ann_again = post_as("ann").await;
    assert_eq!(ann_again.header("idempotent-replayed"), "true");
    assert_eq!(ann_again.header("location"), ann.header("location"));
    assert_eq!(app.count("/widgets/").await, 2);
}

support::on_every_store!(
    "idempotency";
    commits_all_or_nothing,
    hand_written_routes_honour_keys,
    scopes_keys_per_caller,
    replays_a_create,
    replays_a_create_without_hooks,
    refuses_a_key_reused_for_another_request,
    answers_409_while_the_first_runs,
    refuses_bad_keys,
    keys_expire,
    scopes_keys_per_route,
    replays_a_patch,
    can_be_turned_off,
);

/// A create whose answer was lost: the instance that ran it is killed (`abort()`, as abrupt
/// as `kill -9`) after its commit and before it answers. `ServiceClient` retries the keyed
/// `POST` on another instance sharing the store (a SQLite file, or a PostgreSQL database),
/// which replays the kept answer: one record, not two.
///
/// The killed instance is this test binary itself, started again as a child process that
/// runs only the ignored `lost_answer::crashing_instance` test, told its store by
/// `IDEM_CHILD_STORE`.
mod lost_answer {
    use std::io::{BufRead, BufReader};
    use std::net::SocketAddr;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::time::Duration;

    use super::support;
    use microkit::client::{Balance, ClientConfig, IdempotencyKeyExt, ServiceClient};
    use microkit::discovery::{Instance, MemoryRegistry, Registry};
    use microkit::http::StatusCode;
    use microkit::resource::store::postgres::PostgresStore;
    use microkit::resource::store::sqlite::SqliteStore;
    use microkit::resource::store::Store;
    use microkit::resource::{HookContext, Hooks, ResourceRoutes};
    use microkit::{Body, Request, ServerConfig};

    /// Where the child instance keeps its data: `sqlite:<path>` or `postgres:<url>`.
    pub(super) const CHILD_STORE: &str = "IDEM_CHILD_STORE";

    use super::Widget;

    /// Dies right after a create committed, before its answer is written.
    struct DieAfterCreate;

    impl Hooks<Widget> for DieAfterCreate {
        async fn after_create(&self, _: &HookContext, _: &Widget) {
            std::process::abort();
        }
    }

    async fn open(spec: &str) -> Arc<dyn Store> {
        match spec.split_once(':') {
            Some(("sqlite", path)) => Arc::new(SqliteStore::open(path).expect("the SQLite file")),
            Some(("postgres", url)) => {
                Arc::new(PostgresStore::connect(url).await.expect("PostgreSQL"))
            }
            _ => panic!("{CHILD_STORE} must be sqlite:<path> or postgres:<url>, not {spec}"),
        }
    }

    /// The child: an instance whose creates commit and then kill the process.
    #[tokio::test]
    #[ignore = "started as a child process by the tests of this file"]
    async fn crashing_instance() {
        let spec = std::env::var(CHILD_STORE).expect("run by the tests of this file");
        let store = open(&spec).await;
        let router = ResourceRoutes::<Widget>::new(store)
            .hooks(DieAfterCreate)
            .router();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("LISTENING {}", listener.local_addr().unwrap());
        microkit::serve(listener, router).await.unwrap();
    }

    /// The child process, killed when dropped unless it was waited for.
    struct ChildInstance(Option<Child>);

    impl ChildInstance {
        /// How the child ended.
        fn wait(mut self) -> std::process::ExitStatus {
            let mut child = self.0.take().expect("waited once");
            child.wait().expect("the child's exit status")
        }
    }

    impl Drop for ChildInstance {
        fn drop(&mut self) {
            if let Some(mut child) = self.0.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Starts the child on `spec`; its address once it listens.
    fn start_child(spec: &str) -> (ChildInstance, SocketAddr) {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "lost_answer::crashing_instance",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_STORE, spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the child instance");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let child = ChildInstance(Some(child));
        for line in stdout.lines() {
            let line = line.expect("the child's output");
            if let Some(addr) = line.strip_prefix("LISTENING ") {
                return (child, addr.parse().unwrap());
            }
        }
        panic!("the child instance ended before listening");
    }

    async fn one_record_after_a_lost_answer(spec: String) {
        let (crashing, crashing_addr) = start_child(&spec);
        let healthy = support::spawn(
            ResourceRoutes::<Widget>::new(open(&spec).await).router(),
            ServerConfig::default(),
        )
        .await;
        let registry = MemoryRegistry::new();
        let _a = registry
            .register(Instance::new("widgets", crashing_addr).with_id("crashing"))
            .await
            .unwrap();
        let _b = registry
            .register(Instance::new("widgets", healthy.addr).with_id("healthy"))
            .await
            .unwrap();
        // In turn: of two creates, one goes first to the instance that dies.
        let client = ServiceClient::with_config(
            registry,
            ClientConfig::default().balance(Balance::RoundRobin),
        );
        let mut replayed = 0;
        let mut locations = Vec::new();
        for (i, key) in ["lost-1", "lost-2"].into_iter().enumerate() {
            let request = Request::builder()
                .method("POST")
                .uri("/widget/")
                .header("content-type", "application/json")
                .idempotency_key(key)
                .body(Body::from(format!(r#"{{"name":"w{i}"}}"#)))
                .unwrap();
            let response = client.send("widgets", request).await.expect("an answer");
            assert_eq!(response.status(), StatusCode::CREATED);
            if response.headers().get("idempotent-replayed").is_some() {
                replayed += 1;
            }
            locations.push(response.headers()["location"].to_str().unwrap().to_owned());
        }
        let status = tokio::task::spawn_blocking(move || crashing.wait())
            .await
            .unwrap();
        assert_eq!(
            status.signal(),
            Some(6),
            "the instance died after its commit: {status}"
        );
        assert_eq!(
            replayed, 1,
            "the lost answer was replayed by the other instance"
        );
        assert_ne!(locations[0], locations[1]);
        let list = support::send(
            healthy.addr,
            support::request(microkit::http::Method::GET, "/widgets/", ""),
        )
        .await;
        assert_eq!(
            list.json()["total"],
            2,
            "one record per create: {}",
            list.text()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_one_record_after_a_lost_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("widgets.db");
        tokio::time::timeout(
            Duration::from_secs(60),
            one_record_after_a_lost_answer(format!("sqlite:{}", path.display())),
        )
        .await
        .expect("in time");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_one_record_after_a_lost_answer() {
        super::support::database::with_postgres_database("idempotency", |url| async move {
            tokio::time::timeout(
                Duration::from_secs(60),
                one_record_after_a_lost_answer(format!("postgres:{url}")),
            )
            .await
            .expect("in time");
        })
        .await;
    }
}
