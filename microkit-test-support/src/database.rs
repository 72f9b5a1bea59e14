//! A fresh database on the shared PostgreSQL server named by `MICROKIT_TEST_POSTGRES`, for
//! tests that only read and write (tests that stop the server start their own with
//! [`Postgres`](crate::postgres::Postgres)). Without a reachable server the test skips
//! itself, unless `CI=true` or `MICROKIT_REQUIRE_SERVICES=1`, when it fails.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::etcd::services_required;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Runs `check` with the URL of a fresh database named after `test`, dropped afterwards even
/// when `check` panics (its panic is then raised again). Returns without running it when no
/// server answers and none is required.
pub async fn with_postgres_database<F, Fut>(test: &str, check: F)
where
    F: FnOnce(String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(admin) = admin(test).await else {
        return;
    };
    let (client, connection) = admin.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let db = format!(
        "microkit_{test}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    client
        .batch_execute(&format!("CREATE DATABASE \"{db}\""))
        .await
        .unwrap();
    let outcome = tokio::spawn(check(url(&admin, &db))).await;
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The admin connection's configuration, or `None` (after saying why) when the test skips.
async fn admin(test: &str) -> Option<tokio_postgres::Config> {
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
    let why = match reachable {
        Ok(Ok(_)) => return Some(config),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timed out".into(),
    };
    assert!(
        !services_required(),
        "PostgreSQL at {url} is required but unreachable: {why}"
    );
    eprintln!("SKIPPED: {test}: no PostgreSQL at {url} ({why}); set MICROKIT_TEST_POSTGRES");
    None
}

/// `config` as a URL for database `dbname`.
fn url(config: &tokio_postgres::Config, dbname: &str) -> String {
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
