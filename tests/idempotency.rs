//! `Idempotency-Key` on the generated resource endpoints, over real sockets, against each store:
//! `MemoryStore`, `SqliteStore` (a file in a temp dir) and `PostgresStore` (a fresh database on
//! the server named by `MICROKIT_TEST_POSTGRES`, dropped afterwards; skipped without one unless
//! `CI=true` or `MICROKIT_REQUIRE_SERVICES=1`).

use microkit_test_support as support;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use microkit::http::{Method, StatusCode};
use microkit::idempotency::IdempotencyConfig;
use microkit::resource::store::postgres::PostgresStore;
use microkit::resource::store::sqlite::SqliteStore;
use microkit::resource::store::{MemoryStore, Store};
use microkit::resource::{HookContext, Hooks, ResourceRoutes};
use microkit::{Problem, Resource, Router, ServerConfig};
use serde::{Deserialize, Serialize};
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
                ResourceRoutes::<Gadget>::new(store)
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

async fn with_memory<F, Fut>(check: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    check(Arc::new(MemoryStore::new())).await;
}

async fn with_sqlite<F, Fut>(check: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("keys.db")).unwrap();
    check(Arc::new(store)).await;
}

/// The admin connection string, or `None` (after saying why) when the tests should skip.
async fn postgres_admin() -> Option<tokio_postgres::Config> {
    let url = std::env::var("MICROKIT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into());
    let config: tokio_postgres::Config = url
        .parse()
        .expect("MICROKIT_TEST_POSTGRES is not a valid URL");
    let reachable = tokio::time::timeout(
        Duration::from_secs(5),
        config.connect(tokio_postgres::NoTls),
    )
    .await;
    match reachable {
        Ok(Ok(_)) => Some(config),
        failure => {
            let required = std::env::var("CI").is_ok_and(|v| v == "true")
                || std::env::var("MICROKIT_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
            let why = match failure {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".into(),
            };
            assert!(
                !required,
                "PostgreSQL at {url} is required but unreachable: {why}"
            );
            eprintln!("SKIPPED: PostgreSQL idempotency tests: no server at {url} ({why}); set MICROKIT_TEST_POSTGRES");
            None
        }
    }
}

/// `config` as a URL for database `dbname`.
fn database_url(config: &tokio_postgres::Config, dbname: &str) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    format!("postgres://{user}{password}@{host}:{port}/{dbname}")
}

async fn with_postgres<F, Fut>(check: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let Some(admin) = postgres_admin().await else {
        return;
    };
    let (client, connection) = admin.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let db = format!(
        "microkit_idem_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    client
        .batch_execute(&format!("CREATE DATABASE \"{db}\""))
        .await
        .unwrap();
    let url = database_url(&admin, &db);
    let outcome = tokio::spawn(async move {
        let store = PostgresStore::connect(&url).await.unwrap();
        check(Arc::new(store)).await;
    })
    .await;
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

macro_rules! on_every_store {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::with_memory(super::$check).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::with_sqlite(super::$check).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::with_postgres(super::$check).await;
                }
            )*
        }
    };
}

on_every_store!(
    replays_a_create,
    refuses_a_key_reused_for_another_request,
    answers_409_while_the_first_runs,
    refuses_bad_keys,
    keys_expire,
    scopes_keys_per_route,
    replays_a_patch,
    can_be_turned_off,
);
