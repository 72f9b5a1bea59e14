//! `EtcdRegistry` against a real etcd: each test starts its own `etcd` (from `PATH`) on free
//! loopback ports and a temporary data directory, and kills it at the end.
//!
//! Without `etcd` on `PATH` the tests are skipped, unless `CI=true` or
//! `MICROKIT_REQUIRE_SERVICES=1`, when they fail.

use microkit_test_support as support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use microkit::discovery::{DiscoveryError, EtcdRegistry, Instance, Registry, Watch};
use support::etcd::{base64, post, Etcd};

/// Short leases keep the suite fast; etcd's minimum (with its default timings) is 2 s.
const TTL: Duration = Duration::from_secs(2);
/// The bound of every wait for something to happen.
const PATIENCE: Duration = Duration::from_secs(15);

fn registry(etcd: &Etcd, test: &str) -> EtcdRegistry {
    EtcdRegistry::connect(&[etcd.endpoint()])
        .unwrap()
        .with_ttl(TTL)
        .with_prefix(format!("/microkit-tests/{test}/"))
}

fn instance(service: &str, port: u16) -> Instance {
    Instance::new(service, SocketAddr::from(([127, 0, 0, 1], port)))
        .with_id(format!("{service}-{port}"))
}

fn ports(list: &[Instance]) -> Vec<u16> {
    let mut ports: Vec<u16> = list.iter().map(|i| i.addr.port()).collect();
    ports.sort_unstable();
    ports
}

/// Waits until the watched list has exactly `expected` ports.
async fn wait_for(watch: &mut Watch, expected: &[u16]) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = ports(&watch.borrow_and_update());
        if now == expected {
            return;
        }
        match tokio::time::timeout_at(deadline, watch.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("the watch ended (at {now:?}, waiting for {expected:?})"),
            Err(_) => panic!("the watch shows {now:?}, not {expected:?}"),
        }
    }
}

/// Waits until resolving gives exactly `expected` ports.
async fn wait_resolved(registry: &EtcdRegistry, service: &str, expected: &[u16]) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = registry.resolve(service).await.map(|list| ports(&list));
        if now.as_deref().ok() == Some(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "resolve gives {now:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn register_resolve_watch_deregister() {
    let Some(etcd) = Etcd::start("basic").await else {
        return;
    };
    let registry = registry(&etcd, "basic");

    let first = registry.register(instance("catalog", 1)).await.unwrap();
    let _other = registry.register(instance("users", 9)).await.unwrap();
    assert_eq!(ports(&registry.resolve("catalog").await.unwrap()), [1]);
    assert!(registry.resolve("nothing").await.unwrap().is_empty());

    let mut watch = registry.watch("catalog").await.unwrap();
    assert_eq!(ports(&watch.borrow_and_update()), [1]);
    let mut shared = registry.watch("catalog").await.unwrap();

    let second = registry.register(instance("catalog", 2)).await.unwrap();
    wait_for(&mut watch, &[1, 2]).await;
    wait_for(&mut shared, &[1, 2]).await;
    assert_eq!(ports(&registry.resolve("catalog").await.unwrap()), [1, 2]);

    first.deregister().await;
    assert_eq!(ports(&registry.resolve("catalog").await.unwrap()), [2]);
    wait_for(&mut watch, &[2]).await;

    drop(second); // deregisters in the background
    wait_for(&mut watch, &[]).await;
    wait_resolved(&registry, "users", &[9]).await;
}

#[tokio::test]
async fn a_crashed_instance_disappears_within_its_ttl() {
    let Some(etcd) = Etcd::start("crash").await else {
        return;
    };
    let registry = registry(&etcd, "crash");
    let _alive = registry.register(instance("catalog", 1)).await.unwrap();

    // A crashed instance: registered on a lease that nobody keeps alive any more.
    let lease = post(
        &etcd.endpoint(),
        "/v3/lease/grant",
        serde_json::json!({"TTL": "2"}),
    )
    .await
    .unwrap();
    let crashed = serde_json::to_vec(&instance("catalog", 2)).unwrap();
    post(
        &etcd.endpoint(),
        "/v3/kv/put",
        serde_json::json!({
            "key": base64("/microkit-tests/crash/catalog/catalog-2"),
            "value": base64(crashed),
            "lease": lease["ID"],
        }),
    )
    .await
    .unwrap();

    let mut watch = registry.watch("catalog").await.unwrap();
    assert_eq!(ports(&watch.borrow_and_update()), [1, 2]);
    let crashed_at = Instant::now();
    wait_for(&mut watch, &[1]).await;
    // etcd checks expiries every 500 ms; allow that and some scheduling.
    assert!(
        crashed_at.elapsed() < TTL * 2,
        "took {:?}",
        crashed_at.elapsed()
    );

    // Meanwhile the live instance's keeper outlives several TTLs.
    tokio::time::sleep(TTL * 2).await;
    assert_eq!(ports(&registry.resolve("catalog").await.unwrap()), [1]);
    assert_eq!(ports(&watch.borrow()), [1]);
}

#[tokio::test]
async fn an_etcd_restart_keeps_the_registration() {
    let Some(mut etcd) = Etcd::start("restart").await else {
        return;
    };
    let registry = registry(&etcd, "restart");
    let _registration = registry.register(instance("catalog", 1)).await.unwrap();
    let mut watch = registry.watch("catalog").await.unwrap();

    etcd.restart(false).await;
    wait_resolved(&registry, "catalog", &[1]).await;
    // Still there once the old lease would have expired: kept alive, or registered again.
    tokio::time::sleep(TTL * 2).await;
    wait_resolved(&registry, "catalog", &[1]).await;

    // The watch follows etcd again.
    let _second = registry.register(instance("catalog", 2)).await.unwrap();
    wait_for(&mut watch, &[1, 2]).await;
}

#[tokio::test]
async fn an_etcd_that_lost_its_data_gets_the_registration_back() {
    let Some(mut etcd) = Etcd::start("fresh").await else {
        return;
    };
    let registry = registry(&etcd, "fresh");
    let _registration = registry.register(instance("catalog", 1)).await.unwrap();
    let mut watch = registry.watch("catalog").await.unwrap();

    etcd.restart(true).await;
    // The lease is unknown to the new etcd: the keeper grants another and puts the key again.
    wait_resolved(&registry, "catalog", &[1]).await;
    wait_for(&mut watch, &[1]).await;
    let _second = registry.register(instance("catalog", 2)).await.unwrap();
    wait_for(&mut watch, &[1, 2]).await;
}

#[tokio::test]
async fn the_watch_keeps_the_last_list_while_etcd_is_down() {
    let Some(mut etcd) = Etcd::start("down").await else {
        return;
    };
    let registry = registry(&etcd, "down");
    let _registration = registry.register(instance("catalog", 1)).await.unwrap();
    let mut watch = registry.watch("catalog").await.unwrap();
    assert_eq!(ports(&watch.borrow_and_update()), [1]);

    etcd.kill();
    // Longer than the TTL and several retries.
    tokio::time::sleep(TTL + Duration::from_secs(1)).await;
    assert!(matches!(
        registry.resolve("catalog").await,
        Err(DiscoveryError::Unavailable(_))
    ));
    assert!(!watch.has_changed().unwrap(), "nothing was published");
    assert_eq!(ports(&watch.borrow()), [1]);
    // A new watcher of the same service shares the last good list too.
    let joined = registry.watch("catalog").await.unwrap();
    assert_eq!(ports(&joined.borrow()), [1]);

    etcd.spawn().await;
    let _second = registry.register(instance("catalog", 2)).await.unwrap();
    wait_for(&mut watch, &[1, 2]).await;
}
