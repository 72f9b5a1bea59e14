//! The example shop as a child process (`target/<profile>/examples/shop`): what it prints,
//! its health, a clean exit on SIGTERM and SIGINT, and that every write it acknowledged
//! survives a `kill -9` and a restart on the same `--data-dir`, with ids that never go back.

use microkit_test_support as support;

use std::time::Duration;

use microkit::http::{Method, StatusCode};
use serde_json::{json, Value};

use support::shop::{id_of, temp_data_dir, wait_healthy, Api, ShopProcess};

/// The services, in the order the shop prints them.
const SERVICES: [&str; 6] = ["users", "emails", "catalog", "cart", "payments", "stats"];
/// How long a stopping shop may take: the deregistration grace, then the drain.
const EXIT: Duration = Duration::from_secs(10);

async fn start(dir: &str) -> ShopProcess {
    let shop = ShopProcess::start(&["--listen", "127.0.0.1:0", "--data-dir", dir], 7).await;
    wait_healthy(shop.api("gateway"), support::PATIENCE).await;
    shop
}

#[tokio::test]
async fn the_shop_prints_its_listeners_and_every_one_is_healthy() {
    let data = temp_data_dir();
    let shop = start(&data.path().display().to_string()).await;
    let names: Vec<&str> = shop
        .listeners
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(names[0], "gateway");
    assert_eq!(names[1..], SERVICES);
    for (name, addr) in &shop.listeners {
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{name} {addr}");
        let health = Api { addr: *addr }.get("/health").await;
        assert_eq!(health.status, StatusCode::OK, "{name}: {}", health.text());
    }
}

#[tokio::test]
async fn sigterm_stops_the_shop_with_exit_status_0() {
    let data = temp_data_dir();
    let mut shop = start(&data.path().display().to_string()).await;
    shop.api("gateway")
        .create("/product/", json!({ "name": "Lamp", "price_cents": 1 }))
        .await;
    shop.signal("TERM");
    let status = shop.exited_within(EXIT).await;
    assert!(status.success(), "SIGTERM: {status}");
}

#[tokio::test]
async fn sigint_stops_the_shop_with_exit_status_0() {
    let data = temp_data_dir();
    let mut shop = start(&data.path().display().to_string()).await;
    shop.signal("INT");
    let status = shop.exited_within(EXIT).await;
    assert!(status.success(), "SIGINT: {status}");
}

/// What the first run acknowledged.
struct Written {
    users: Vec<Value>,
    deleted_user: u64,
    products: Vec<Value>,
    lines: Vec<(u64, Value)>,
    paid: Vec<Value>,
}

async fn write_everything(api: Api) -> Written {
    let mut users = Vec::new();
    for n in 0..3 {
        let email = format!("user{n}@example.com");
        users.push(
            api.create(
                "/user/",
                json!({ "name": format!("User {n}"), "email": email }),
            )
            .await,
        );
    }
    // The newest user is deleted: its id must not come back.
    let deleted = api
        .create(
            "/user/",
            json!({ "name": "Gone", "email": "gone@example.com" }),
        )
        .await;
    let deleted_user = id_of(&deleted);
    assert_eq!(
        api.delete(&format!("/user/{deleted_user}")).await.status,
        StatusCode::NO_CONTENT
    );

    let mut products = Vec::new();
    for n in 0..3 {
        products.push(
            api.create(
                "/product/",
                json!({ "name": format!("Product {n}"), "price_cents": 100 * (n + 1) }),
            )
            .await,
        );
    }
    let renamed = json!({ "name": "Product 0, renamed", "price_cents": 150 });
    let reply = api
        .put(&format!("/product/{}", id_of(&products[0])), renamed)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    products[0] = reply.json();

    let mut lines = Vec::new();
    for (user, product) in [(0, 0), (0, 1), (1, 2)] {
        let uid = id_of(&users[user]);
        let line = api
            .create(
                &format!("/user/{uid}/cart/"),
                json!({ "product_id": id_of(&products[product]), "quantity": 2 }),
            )
            .await;
        lines.push((uid, line));
    }

    let mut paid = Vec::new();
    for amount in [500, 700] {
        let invoice = api
            .create("/invoices", json!({ "amount_cents": amount }))
            .await;
        let reply = api
            .raw(
                Method::POST,
                &format!("/invoices/{}/pay", id_of(&invoice)),
                None,
                "",
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        paid.push(reply.json());
    }
    Written {
        users,
        deleted_user,
        products,
        lines,
        paid,
    }
}

async fn check_everything(api: Api, written: &Written) {
    for user in &written.users {
        assert_eq!(&api.fetch(&format!("/user/{}", id_of(user))).await, user);
    }
    let deleted = api.get(&format!("/user/{}", written.deleted_user)).await;
    assert_eq!(
        deleted.status,
        StatusCode::NOT_FOUND,
        "a deleted user stays deleted"
    );
    for product in &written.products {
        assert_eq!(
            &api.fetch(&format!("/product/{}", id_of(product))).await,
            product
        );
    }
    for (uid, line) in &written.lines {
        assert_eq!(
            &api.fetch(&format!("/user/{uid}/cart/{}", id_of(line)))
                .await,
            line
        );
    }
    for invoice in &written.paid {
        let stored = api.fetch(&format!("/invoices/{}", id_of(invoice))).await;
        assert_eq!(
            (&stored["status"], &stored["amount_cents"]),
            (&json!("paid"), &invoice["amount_cents"])
        );
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_and_ids_are_not_reused() {
    let data = temp_data_dir();
    let dir = data.path().display().to_string();
    let mut first = start(&dir).await;
    let written = write_everything(first.api("gateway")).await;
    first.crash().await;

    let second = start(&dir).await;
    let api = second.api("gateway");
    check_everything(api, &written).await;

    // New ids come after every id handed out before, the deleted user's included.
    let user = api
        .create(
            "/user/",
            json!({ "name": "New", "email": "new@example.com" }),
        )
        .await;
    assert!(
        id_of(&user) > written.deleted_user,
        "user id {} reused",
        id_of(&user)
    );
    let newest_product = written.products.iter().map(id_of).max().unwrap();
    let product = api
        .create("/product/", json!({ "name": "New", "price_cents": 1 }))
        .await;
    assert!(
        id_of(&product) > newest_product,
        "product id {} reused",
        id_of(&product)
    );
    let newest_line = written
        .lines
        .iter()
        .map(|(_, line)| id_of(line))
        .max()
        .unwrap();
    let uid = id_of(&written.users[2]);
    let line = api
        .create(
            &format!("/user/{uid}/cart/"),
            json!({ "product_id": id_of(&product), "quantity": 1 }),
        )
        .await;
    assert!(
        id_of(&line) > newest_line,
        "cart line id {} reused",
        id_of(&line)
    );
    let newest_invoice = written.paid.iter().map(id_of).max().unwrap();
    let invoice = api.create("/invoices", json!({ "amount_cents": 1 })).await;
    assert!(
        id_of(&invoice) > newest_invoice,
        "invoice id {} reused",
        id_of(&invoice)
    );
    // Paid stays paid.
    let again = api
        .raw(
            Method::POST,
            &format!("/invoices/{}/pay", id_of(&written.paid[0])),
            None,
            "",
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish() {
    use tokio::io::AsyncWriteExt;

    let data = temp_data_dir();
    let mut shop = start(&data.path().display().to_string()).await;
    let body = json!({ "name": "Lamp", "price_cents": 1 }).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut stream = support::connect(shop.addr("gateway")).await;
    let head = format!(
        "POST /product/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    shop.signal("TERM");
    // Past the deregistration grace: the listeners are closed, this request is draining.
    tokio::time::sleep(Duration::from_millis(400)).await;
    stream.write_all(rest.as_bytes()).await.unwrap();
    let answer = support::read_until_closed(&mut stream, support::PATIENCE)
        .await
        .expect("the answer within PATIENCE");
    let reply = support::parse_response(&answer, true).expect("an HTTP response");
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let status = shop.exited_within(EXIT).await;
    assert!(status.success(), "SIGTERM while draining: {status}");
}
