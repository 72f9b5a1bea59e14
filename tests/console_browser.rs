//! `GET /console` on the shop's gateway, rendered by a real browser after real traffic:
//! headless Chromium (Debian's `chromium`) loads the page and its script from the gateway on
//! loopback, the script reads `/console/data`, and every service and instance shows up with
//! its counts. A screenshot is kept as a test artifact:
//! `target/test-artifacts/console-gateway.png`.
//!
//! Without Chromium the test is skipped with a message, unless `CI=true` or
//! `MICROKIT_REQUIRE_SERVICES=1` says it must run.

use microkit_test_support as support;

use std::time::{Duration, Instant};

use microkit::http::StatusCode;
use serde_json::{json, Value};
use support::browser::{browse, chromium_or_skip, screenshot};
use support::shop::{id_of, temp_data_dir, wait_healthy, Api, ShopProcess};
use support::PATIENCE;

/// The shop's services; each runs two instances here.
const SERVICES: [&str; 6] = ["users", "emails", "catalog", "cart", "payments", "stats"];

/// One round of traffic through the gateway that reaches every service, several requests at
/// once so that the balancer spreads them over both instances of each.
async fn traffic(gateway: Api, user: u64, product: u64, round: u64) {
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..4 {
        calls.spawn(async move { gateway.get(&format!("/user/{user}")).await.status });
        calls.spawn(async move { gateway.get(&format!("/product/{product}")).await.status });
        calls.spawn(async move { gateway.get("/products/").await.status });
        calls.spawn(async move { gateway.get(&format!("/user/{user}/cart/")).await.status });
        calls.spawn(async move { gateway.get("/invoices/").await.status });
        calls.spawn(async move {
            let entry = json!({ "user_id": user, "action": format!("visit {round}.{n}") });
            gateway.post("/log", entry).await.status
        });
        calls.spawn(async move {
            let email = json!({ "to": "ada@example.com", "subject": "Hi", "body": "Hello" });
            // Past the shop's rate limit this is a 429, which still reaches emails.
            gateway.post("/send_email/", email).await.status
        });
    }
    while let Some(status) = calls.join_next().await {
        let status = status.expect("a call");
        assert!(
            !status.is_server_error(),
            "a 5xx during the traffic: {status}"
        );
    }
}

/// The instances (service, address) the console data lists, with their attempts.
fn instances(data: &Value) -> Vec<(String, String, u64)> {
    data["services"]
        .as_array()
        .expect("services")
        .iter()
        .flat_map(|service| {
            let name = service["name"].as_str().unwrap_or_default().to_owned();
            service["instances"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |instance| {
                    (
                        name.clone(),
                        instance["address"].as_str().unwrap_or_default().to_owned(),
                        instance["attempts"].as_u64().unwrap_or_default(),
                    )
                })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_console_shows_every_service_and_instance_in_a_browser() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let data = temp_data_dir();
    let dir = data.path().display().to_string();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &dir,
        "--replicas",
        "2",
    ];
    let shop = ShopProcess::start(&args, 1 + 2 * SERVICES.len()).await;
    let gateway = shop.api("gateway");
    wait_healthy(gateway, support::PATIENCE * 4).await;

    let user = id_of(
        &gateway
            .create(
                "/user/",
                json!({ "name": "Ada", "email": "ada@example.com" }),
            )
            .await,
    );
    let product = id_of(
        &gateway
            .create("/product/", json!({ "name": "Lamp", "price_cents": 1999 }))
            .await,
    );
    // Traffic until every instance the shop printed got requests from the gateway: the
    // balancer prefers the faster instance, so this may take a few rounds.
    let expected: Vec<(String, String)> = shop
        .listeners
        .iter()
        .filter(|(name, _)| name != "gateway")
        .map(|(name, addr)| (name.clone(), addr.to_string()))
        .collect();
    assert_eq!(expected.len(), 12);
    let deadline = Instant::now() + PATIENCE * 6;
    let mut round = 0;
    let data = loop {
        traffic(gateway, user, product, round).await;
        round += 1;
        let data = gateway.get("/console/data").await;
        assert_eq!(data.status, StatusCode::OK);
        let data = data.json();
        let seen = instances(&data);
        let idle: Vec<&(String, String)> = expected
            .iter()
            .filter(|(name, addr)| {
                !seen
                    .iter()
                    .any(|(s, a, attempts)| s == name && a == addr && *attempts > 0)
            })
            .collect();
        if idle.is_empty() {
            break data;
        }
        assert!(
            Instant::now() < deadline,
            "after {round} rounds, still no request to {idle:?}: {data:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Each service's own console shows itself, and the routes it answered.
    for (name, addr) in shop.listeners.iter().filter(|(name, _)| name != "gateway") {
        let own = Api { addr: *addr }.get("/console/data").await.json();
        assert_eq!(own["name"], name.as_str());
        assert_eq!(own["server"]["instance"]["address"], addr.to_string());
    }

    let url = format!("http://{}/console", gateway.addr);
    // The script fetches its data, then refreshes: give the page virtual time for both.
    let budget = "--virtual-time-budget=5000".to_owned();
    let dom = browse(browser, &url, &[budget.clone(), "--dump-dom".to_owned()]).await;
    assert!(
        dom.contains("data-loaded=\"true\""),
        "the script did not render the data:\n{}",
        &dom[..dom.len().min(4000)]
    );
    for service in SERVICES {
        assert!(
            dom.contains(&format!("class=\"service\" data-service=\"{service}\"")),
            "no row for {service}"
        );
    }
    for (service, addr) in &expected {
        let row = dom
            .split("<tr ")
            .find(|row| {
                row.contains(&format!("data-address=\"{addr}\""))
                    && row.contains(&format!("data-service=\"{service}\""))
            })
            .unwrap_or_else(|| panic!("no row for {service} at {addr}"));
        let attempts: u64 = row
            .split("class=\"num attempts\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("no attempts in the row of {addr}: {row}"));
        assert!(attempts > 0, "{service} at {addr} shows no attempts: {row}");
        assert!(
            row.contains("badge up"),
            "{service} at {addr} is not up: {row}"
        );
    }
    // Every route the traffic crossed has a row with its count and three charts.
    for route in data["routes"].as_array().expect("routes") {
        let key = format!(
            "{} {}",
            route["method"].as_str().unwrap(),
            route["route"].as_str().unwrap()
        );
        let row = dom
            .split("<tr ")
            .find(|row| row.contains(&format!("data-route=\"{key}\"")))
            .unwrap_or_else(|| panic!("no row for the route {key}"));
        assert_eq!(row.matches("<svg class=\"chart\"").count(), 3, "{row}");
    }
    let products = dom
        .split("<tr ")
        .find(|row| row.contains("data-route=\"GET /product/{id}\""))
        .expect("the product route");
    assert!(
        !products.contains("class=\"num requests\">0<"),
        "{products}"
    );

    screenshot(
        browser,
        &url,
        &[budget],
        (1400, 1800),
        "console-gateway.png",
    )
    .await;
}
