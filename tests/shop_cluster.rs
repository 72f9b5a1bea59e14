//! The example shop as a cluster of processes on a real etcd: every service in a process of
//! its own (two for the catalog), the gateway in front, and a catalog process killed with
//! SIGKILL while clients read the catalog through the gateway.
//!
//! Without `etcd` on `PATH` the test is skipped, unless `CI=true` or
//! `MICROKIT_REQUIRE_SERVICES=1`, when it fails.

use microkit_test_support as support;

use std::sync::Arc;
use std::time::Duration;

use microkit::http::StatusCode;
use serde_json::json;

use support::cluster::start_load;
use support::etcd::Etcd;
use support::shop::{id_of, temp_data_dir, wait_healthy, ShopProcess};

/// How long the cluster may take to register everything and report healthy.
const CLUSTER_START: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_keeps_answering_when_one_of_its_processes_is_killed() {
    let Some(etcd) = Etcd::start("shop-cluster").await else {
        return;
    };
    let registry = etcd.registry_url();
    let data = temp_data_dir();
    let dir = data.path().display().to_string();
    let process = |only: &'static str| {
        let (registry, dir) = (registry.clone(), dir.clone());
        async move {
            let args = [
                "--only",
                only,
                "--registry",
                &registry,
                "--data-dir",
                &dir,
                "--listen",
                "127.0.0.1:0",
            ];
            ShopProcess::start(&args, 1).await
        }
    };
    let mut services = Vec::new();
    for only in [
        "users", "emails", "catalog", "catalog", "cart", "payments", "stats",
    ] {
        services.push(process(only).await);
    }
    let gateway = process("gateway").await;
    let api = gateway.api("gateway");
    wait_healthy(api, CLUSTER_START).await;

    let mut products = Vec::new();
    for n in 0..10 {
        let product = api
            .create(
                "/product/",
                json!({ "name": format!("Product {n}"), "price_cents": 100 + n }),
            )
            .await;
        products.push(id_of(&product));
    }
    // Both catalog processes serve the same data.
    for catalog in services.iter().filter(|s| s.listeners[0].0 == "catalog") {
        assert_eq!(
            catalog.api("catalog").fetch("/products/").await["total"],
            10
        );
    }

    let total = 1500;
    let products = Arc::new(products);
    let load = {
        let products = products.clone();
        start_load(total, 4, move |index| {
            let products = products.clone();
            async move {
                let path = match index % 2 {
                    0 => format!("/product/{}", products[index % products.len()]),
                    _ => "/products/?limit=5".to_owned(),
                };
                let reply = api
                    .try_raw(microkit::http::Method::GET, &path, None, "")
                    .await?;
                if reply.status == StatusCode::OK {
                    Ok(())
                } else {
                    Err(format!("GET {path}: {} {}", reply.status, reply.text()))
                }
            }
        })
    };
    load.reached(total / 5).await;
    let victim = services
        .iter_mut()
        .find(|s| s.listeners[0].0 == "catalog")
        .unwrap();
    victim.crash().await;
    let killed_at = load.completed();
    let report = load.finish().await;

    assert!(
        total - killed_at >= total / 2,
        "most reads should follow the kill: {killed_at} of {total} came before it"
    );
    assert!(
        report.success_ratio() >= 0.99,
        "{} of {total} reads failed in {:?}: {:?}",
        report.failed,
        report.elapsed,
        report.errors
    );
    for id in products.iter() {
        api.fetch(&format!("/product/{id}")).await;
    }
    drop(etcd);
}
