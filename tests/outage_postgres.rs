//! A PostgreSQL store whose server stops or hangs: while it is away every request is answered
//! 503 problem+json within a few seconds, and once it is back the same process serves again,
//! with no restart. Each test runs a server of its own (see `support::postgres`).

use microkit_test_support as support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use microkit::http::{header, Method, Request, StatusCode};
use microkit::resource::store::postgres::{PostgresConfig, PostgresStore};
use microkit::resource::ResourceRoutes;
use microkit::{Resource, ServerConfig};
use serde::{Deserialize, Serialize};
use support::postgres::Postgres;
use support::{get, send, spawn, Reply, TestServer};

/// The bound of every wait for the server to come back.
const PATIENCE: Duration = Duration::from_secs(15);

/// A note, the record every write here creates.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/note", list_path = "/notes/")]
struct Note {
    #[resource(id)]
    id: u64,
    text: String,
}

async fn serve(store: PostgresStore) -> TestServer {
    let router = ResourceRoutes::<Note>::new(Arc::new(store)).router();
    spawn(router, ServerConfig::default()).await
}

async fn post_note(addr: SocketAddr, text: &str) -> Reply {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/note/")
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(Bytes::from(
            serde_json::json!({ "text": text }).to_string(),
        )))
        .unwrap();
    send(addr, request).await
}

fn assert_unavailable(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.header("content-type"), "application/problem+json");
    assert_eq!(reply.json()["status"], 503);
}

fn created_id(reply: &Reply) -> u64 {
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.json()["id"].as_u64().expect("a numeric id")
}

/// Posts until a write is acknowledged; every answer meanwhile is a 503, never a 500.
async fn wait_until_writable(addr: SocketAddr) -> u64 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reply = post_note(addr, "back").await;
        if reply.status == StatusCode::CREATED {
            return created_id(&reply);
        }
        assert_unavailable(&reply);
        assert!(
            Instant::now() < deadline,
            "no write succeeded once the database was back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_answers_503_and_the_same_process_serves_again() {
    let Some(pg) = Postgres::start("stopped") else {
        return;
    };
    // The defaults: what a service gets from `PostgresStore::connect`.
    let server = serve(PostgresStore::connect(&pg.url()).await.unwrap()).await;
    let first = created_id(&post_note(server.addr, "before").await);

    pg.stop();
    for _ in 0..3 {
        let started = Instant::now();
        assert_unavailable(&post_note(server.addr, "while down").await);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    assert_unavailable(&get(server.addr, &format!("/note/{first}")).await);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );

    pg.spawn();
    let next = wait_until_writable(server.addr).await;
    assert!(next > first);
    assert_eq!(
        get(server.addr, &format!("/note/{first}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_database_answers_503_within_the_operation_timeout() {
    let Some(pg) = Postgres::start("hung") else {
        return;
    };
    let config = PostgresConfig::default()
        .statement_timeout(Duration::from_secs(1))
        .create_timeout(Duration::from_secs(1))
        .wait_timeout(Duration::from_secs(1))
        .recycle_timeout(Duration::from_millis(500));
    let limit = config.operation_timeout();
    let server = serve(
        PostgresStore::connect_config(&pg.url(), config)
            .await
            .unwrap(),
    )
    .await;
    let first = created_id(&post_note(server.addr, "before").await);

    // Connections stay open, and nothing answers on them: only client-side limits can help.
    pg.pause();
    for path in ["write", "read"] {
        let started = Instant::now();
        let reply = if path == "write" {
            post_note(server.addr, "while hung").await
        } else {
            get(server.addr, &format!("/note/{first}")).await
        };
        assert_unavailable(&reply);
        let took = started.elapsed();
        assert!(
            took < limit + Duration::from_millis(500),
            "{path} took {took:?}"
        );
    }

    pg.resume();
    let next = wait_until_writable(server.addr).await;
    assert!(next > first);
}
