//! The shop's checkout, exactly once, on the real binary: concurrent checkouts of one cart
//! make one invoice, a retry with the same `Idempotency-Key` answers the same invoice, lines
//! changed during checkouts are billed or kept, and a `kill -9` between the invoice and the
//! emptying of the cart, then a restart and a retry, leave one invoice and an empty cart (one
//! before anything was billed leaves the cart as it was).
//!
//! Each case runs on SQLite (a `--data-dir`) and on PostgreSQL (`--database-url`, a fresh
//! database on `MICROKIT_TEST_POSTGRES`; skipped when unreachable unless
//! `MICROKIT_REQUIRE_SERVICES=1` or `CI=true`).

use microkit_test_support as support;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;

use microkit::http::{HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Barrier;

use support::shop::{
    assert_problem, eventually, id_of, temp_data_dir, wait_healthy, Api, PgDatabase, ShopProcess,
};
use support::{request, try_send, Reply, PATIENCE};

/// Where a case's shop keeps its data.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The data a shop is started on: kept across restarts, gone at the end of the case.
struct Data {
    dir: tempfile::TempDir,
    database: Option<PgDatabase>,
}

impl Data {
    /// `None` when PostgreSQL is skipped.
    async fn new(backend: Backend, test: &str) -> Option<Self> {
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create(test).await?),
        };
        Some(Self {
            dir: temp_data_dir(),
            database,
        })
    }

    /// Starts the whole shop on this data, with `env` set, and waits until it is healthy.
    async fn start(&self, env: &[(&str, &str)]) -> ShopProcess {
        self.start_replicas(1, env).await
    }

    /// [`start`](Self::start) with `replicas` instances of each service.
    async fn start_replicas(&self, replicas: usize, env: &[(&str, &str)]) -> ShopProcess {
        let dir = self.dir.path().display().to_string();
        let replicas_arg = replicas.to_string();
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &dir,
            "--replicas",
            &replicas_arg,
        ];
        if let Some(database) = &self.database {
            args.extend(["--database-url", &database.url]);
        }
        let shop = ShopProcess::start_with_env(&args, env, 1 + 6 * replicas).await;
        wait_healthy(shop.api("gateway"), PATIENCE).await;
        shop
    }
}

/// A user with a cart of two lines: 3 lamps at 19.99 and 2 chairs at 50.00.
struct Cart {
    uid: u64,
    products: Vec<Value>,
}

impl Cart {
    async fn fill(api: Api, name: &str) -> Self {
        let user = api
            .create(
                "/user/",
                json!({ "name": name, "email": format!("{name}@example.com") }),
            )
            .await;
        let uid = id_of(&user);
        let mut products = Vec::new();
        for (product, price, quantity) in [("Lamp", 1999, 3), ("Chair", 5000, 2)] {
            let product = api
                .create(
                    "/product/",
                    json!({ "name": product, "price_cents": price }),
                )
                .await;
            api.create(
                &format!("/user/{uid}/cart/"),
                json!({ "product_id": id_of(&product), "quantity": quantity }),
            )
            .await;
            products.push(product);
        }
        Self { uid, products }
    }

    fn checkout(&self) -> String {
        format!("/user/{}/cart/checkout", self.uid)
    }

    /// The lines an invoice of this cart lists, in cart order.
    fn invoice_lines(&self) -> Value {
        let quantities = [3, 2];
        self.products
            .iter()
            .zip(quantities)
            .map(|(product, quantity)| {
                json!({
                    "product_id": id_of(product),
                    "name": product["name"],
                    "unit_price_cents": product["price_cents"],
                    "quantity": quantity,
                })
            })
            .collect()
    }
}

/// `POST path` with an `Idempotency-Key` when given; an error when no answer arrives.
async fn post_keyed(api: Api, path: &str, key: Option<&str>) -> Result<Reply, String> {
    let mut request = request(Method::POST, path, "");
    if let Some(key) = key {
        request.headers_mut().insert(
            "idempotency-key",
            HeaderValue::from_str(key).expect("a valid key"),
        );
    }
    try_send(api.addr, request).await
}

async fn checkout(api: Api, cart: &Cart, key: Option<&str>) -> Reply {
    post_keyed(api, &cart.checkout(), key)
        .await
        .unwrap_or_else(|err| panic!("POST {}: {err}", cart.checkout()))
}

/// Every invoice payments holds.
async fn invoices(api: Api) -> Vec<Value> {
    let page = api.fetch("/invoices/?offset=0&limit=100").await;
    page["items"].as_array().cloned().unwrap_or_default()
}

/// The lines in the cart of `uid`.
async fn cart_lines(api: Api, uid: u64) -> Vec<Value> {
    let page = api
        .fetch(&format!("/user/{uid}/cart/?offset=0&limit=100"))
        .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

/// `n` checkouts of `cart` at once, each with the key `key(i)`; their answers.
async fn at_once(
    api: Api,
    cart: &Cart,
    n: usize,
    key: impl Fn(usize) -> Option<String>,
) -> Vec<Reply> {
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (barrier, path, key) = (barrier.clone(), cart.checkout(), key(i));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            post_keyed(api, &path, key.as_deref()).await
        }));
    }
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.expect("the task").expect("an answer"));
    }
    replies
}

async fn twenty_parallel_checkouts_make_one_invoice(backend: Backend, test: &str) {
    let Some(data) = Data::new(backend, test).await else {
        return;
    };
    // Two instances of the cart service: the checkouts race across them.
    let shop = data.start_replicas(2, &[]).await;
    let api = shop.api("gateway");
    let cart = Cart::fill(api, "ada").await;

    let replies = at_once(api, &cart, 20, |_| None).await;
    let created: Vec<&Reply> = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "one checkout wins");
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_problem(reply, 409, "a concurrent checkout");
    }
    let invoice = created[0].json();
    assert_eq!(invoice["amount_cents"], 3 * 1999 + 2 * 5000, "{invoice}");
    assert_eq!(invoice["lines"], cart.invoice_lines(), "{invoice}");
    assert_eq!(invoice["user_id"], cart.uid);
    assert_eq!(
        invoices(api).await,
        std::slice::from_ref(&invoice),
        "one invoice in payments"
    );
    assert_eq!(cart_lines(api, cart.uid).await, Vec::<Value>::new());

    // The same with one key for all: one invoice, and every answer is it.
    let again = Cart::fill(api, "bob").await;
    let replies = at_once(api, &again, 20, |_| Some("bob-checkout-1".to_owned())).await;
    let mut ids = Vec::new();
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        ids.push(id_of(&reply.json()));
    }
    ids.dedup();
    assert_eq!(
        ids.len(),
        1,
        "every retry answers the same invoice: {ids:?}"
    );
    assert_eq!(invoices(api).await.len(), 2, "one more invoice in payments");
    assert_eq!(cart_lines(api, again.uid).await, Vec::<Value>::new());
}

async fn a_retry_with_the_same_key_answers_the_same_invoice(backend: Backend, test: &str) {
    let Some(data) = Data::new(backend, test).await else {
        return;
    };
    let shop = data.start(&[]).await;
    let api = shop.api("gateway");
    let cart = Cart::fill(api, "ada").await;

    let first = checkout(api, &cart, Some("order-1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert_eq!(first.header("idempotent-replayed"), "", "a first answer");
    let retry = checkout(api, &cart, Some("order-1")).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.text());
    assert_eq!(retry.header("idempotent-replayed"), "true", "a replay");
    assert_eq!(
        retry.json(),
        first.json(),
        "the retry answers the same invoice"
    );

    // Another key, or none, is another checkout: of an empty cart.
    assert_problem(
        &checkout(api, &cart, Some("order-2")).await,
        422,
        "an empty cart",
    );
    assert_problem(&checkout(api, &cart, None).await, 422, "an empty cart");
    // A line added later is billed by a new key only.
    api.create(
        &format!("/user/{}/cart/", cart.uid),
        json!({ "product_id": id_of(&cart.products[0]), "quantity": 1 }),
    )
    .await;
    let replayed = checkout(api, &cart, Some("order-1")).await;
    assert_eq!(replayed.json(), first.json(), "a key keeps its invoice");
    let second = checkout(api, &cart, Some("order-3")).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text());
    assert_eq!(second.json()["amount_cents"], 1999);
    assert_eq!(invoices(api).await.len(), 2);
    // Keys are read as every keyed route reads them: a structured-field string is its content.
    let quoted = checkout(api, &cart, Some("\"order-3\"")).await;
    assert_eq!(
        quoted.header("idempotent-replayed"),
        "true",
        "{}",
        quoted.text()
    );
    assert_eq!(quoted.json(), second.json(), "\"order-3\" is order-3");

    for (key, what) in [
        ("", "an empty key"),
        (&"k".repeat(256)[..], "a 256-byte key"),
        ("\"\"", "an empty quoted key"),
        ("order\t4", "a key with a tab"),
    ] {
        let reply = post_keyed(api, &cart.checkout(), Some(key)).await.unwrap();
        assert_problem(&reply, 400, what);
    }
    assert_eq!(invoices(api).await.len(), 2, "refused keys bill nothing");
}

async fn lines_changed_during_checkouts_are_billed_or_kept(backend: Backend, test: &str) {
    let Some(data) = Data::new(backend, test).await else {
        return;
    };
    let shop = data.start(&[]).await;
    let api = shop.api("gateway");
    let uid = id_of(
        &api.create("/user/", json!({ "name": "Cy", "email": "cy@example.com" }))
            .await,
    );
    let cart = format!("/user/{uid}/cart/");
    let mut products = Vec::new();
    for n in 0..12 {
        products.push(id_of(
            &api.create(
                "/product/",
                json!({ "name": format!("P{n}"), "price_cents": 100 + n }),
            )
            .await,
        ));
    }

    // One product per line, so that a product names its line wherever it ends up. Each line
    // is added, then changed to quantity 7; the quantity a client was told is what counts.
    let changing = {
        let (cart, products) = (cart.clone(), products.clone());
        tokio::spawn(async move {
            let mut told = BTreeMap::new();
            for product in products {
                let line = api
                    .create(&cart, json!({ "product_id": product, "quantity": 1 }))
                    .await;
                told.insert(product, 1);
                let changed = api
                    .put(
                        &format!("{cart}{}", id_of(&line)),
                        json!({ "product_id": product, "quantity": 7 }),
                    )
                    .await;
                match changed.status.as_u16() {
                    200 => {
                        told.insert(product, 7);
                    }
                    // Billed meanwhile (404), or being billed (409): the change is refused.
                    404 | 409 => {
                        assert_problem(&changed, changed.status.as_u16(), "a refused change");
                    }
                    other => panic!("changing a line: {other} {}", changed.text()),
                }
            }
            told
        })
    };
    let path = format!("/user/{uid}/cart/checkout");
    let mut checkouts = 0;
    while !changing.is_finished() {
        let reply = post_keyed(api, &path, None).await.expect("an answer");
        match reply.status.as_u16() {
            201 => checkouts += 1,
            409 | 422 => {}
            other => panic!("a checkout: {other} {}", reply.text()),
        }
    }
    let told = changing.await.expect("the changes");
    let last = post_keyed(api, &path, None).await.expect("an answer");
    assert!(
        [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY].contains(&last.status),
        "{}",
        last.text()
    );
    if last.status == StatusCode::CREATED {
        checkouts += 1;
    }

    let mut found = BTreeMap::new();
    for invoice in invoices(api).await {
        for line in invoice["lines"].as_array().expect("lines") {
            let product = line["product_id"].as_u64().unwrap();
            let quantity = line["quantity"].as_i64().unwrap();
            found.entry(product).or_insert_with(Vec::new).push(quantity);
        }
    }
    for line in cart_lines(api, uid).await {
        let product = line["product_id"].as_u64().unwrap();
        found
            .entry(product)
            .or_insert_with(Vec::new)
            .push(line["quantity"].as_i64().unwrap());
    }
    assert!(checkouts >= 1, "at least one checkout went through");
    for (product, quantity) in &told {
        let seen = found.get(product).cloned().unwrap_or_default();
        assert!(
            seen.contains(quantity),
            "product {product}: told quantity {quantity}, found {seen:?} on invoices and in the cart"
        );
    }
}

async fn a_crash_between_invoice_and_cart_leaves_one_invoice(backend: Backend, test: &str) {
    let Some(data) = Data::new(backend, test).await else {
        return;
    };
    let mut crashing = data.start(&[("SHOP_FAULT", "kill-after-invoice")]).await;
    let api = crashing.api("gateway");
    let cart = Cart::fill(api, "ada").await;

    let lost = post_keyed(api, &cart.checkout(), Some("order-1")).await;
    assert!(
        lost.is_err(),
        "the shop died before answering: {:?}",
        lost.map(|r| r.text())
    );
    let status = crashing.exited_within(PATIENCE).await;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");

    let shop = data.start(&[]).await;
    let api = shop.api("gateway");
    // The restarted cart service finishes the checkout it finds half done.
    eventually("the cart is emptied after the restart", || async {
        cart_lines(api, cart.uid).await.is_empty().then_some(())
    })
    .await;
    let retry = checkout(api, &cart, Some("order-1")).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.text());
    let invoice = retry.json();
    assert_eq!(
        invoices(api).await,
        std::slice::from_ref(&invoice),
        "one invoice, the retry's"
    );
    assert_eq!(invoice["lines"], cart.invoice_lines());
    assert_eq!(cart_lines(api, cart.uid).await, Vec::<Value>::new());
    assert_problem(
        &checkout(api, &cart, None).await,
        422,
        "nothing left to check out",
    );
}

async fn a_crash_before_billing_is_undone_on_restart(backend: Backend, test: &str) {
    let Some(data) = Data::new(backend, test).await else {
        return;
    };
    let mut crashing = data.start(&[("SHOP_FAULT", "kill-after-take")]).await;
    let api = crashing.api("gateway");
    let cart = Cart::fill(api, "ada").await;

    let lost = post_keyed(api, &cart.checkout(), Some("order-1")).await;
    assert!(lost.is_err(), "the shop died before answering");
    let status = crashing.exited_within(PATIENCE).await;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");

    let shop = data.start(&[]).await;
    let api = shop.api("gateway");
    // The restarted cart service gives the cart back: the retry is a checkout of its own,
    // not a 409 behind a checkout nobody runs any more.
    let invoice = eventually("the cart is given back after the restart", || async {
        let reply = checkout(api, &cart, Some("order-1")).await;
        match reply.status.as_u16() {
            201 => Some(reply.json()),
            409 => None,
            other => panic!("a checkout after the restart: {other} {}", reply.text()),
        }
    })
    .await;
    assert_eq!(invoice["lines"], cart.invoice_lines());
    assert_eq!(invoices(api).await, std::slice::from_ref(&invoice));
    assert_eq!(cart_lines(api, cart.uid).await, Vec::<Value>::new());
}

/// Every case, once per backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Sqlite, stringify!($case)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Postgres, stringify!($case)).await;
                }
            )*
        }
    };
}

suite!(
    twenty_parallel_checkouts_make_one_invoice,
    a_retry_with_the_same_key_answers_the_same_invoice,
    lines_changed_during_checkouts_are_billed_or_kept,
    a_crash_between_invoice_and_cart_leaves_one_invoice,
    a_crash_before_billing_is_undone_on_restart,
);
