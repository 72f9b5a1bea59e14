//! The example shop end to end, in one process: `Shop::start` with its services behind the
//! gateway, every route of the contract and every kind of bad input, through the gateway as a
//! client sees it (and straight at a service for the internal routes).
//!
//! Each case runs twice: in `sqlite` (a temporary `--data-dir`) and in `postgres` (a fresh
//! database on the server named by `MICROKIT_TEST_POSTGRES`; skipped with a message when it
//! cannot be reached, unless `CI=true` or `MICROKIT_REQUIRE_SERVICES=1`).

use microkit_test_support as support;

#[path = "../examples/shop/main.rs"]
#[allow(dead_code)]
mod shop;

use std::future::Future;
use std::net::SocketAddr;

use microkit::http::{Method, StatusCode};
use serde_json::{json, Value};

use support::shop::{
    assert_invalid, assert_problem, eventually, id_of, temp_data_dir, Api, PgDatabase,
};

/// Where a case's shop keeps its data.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The running shop as a case sees it.
#[derive(Debug, Clone)]
struct Endpoints {
    gateway: Api,
    listeners: Vec<(String, SocketAddr)>,
}

impl Endpoints {
    /// A client straight at the (first) instance of `service`, bypassing the gateway.
    fn service(&self, service: &str) -> Api {
        let addr = self
            .listeners
            .iter()
            .find(|(name, _)| name == service)
            .map(|(_, addr)| *addr)
            .unwrap_or_else(|| panic!("no {service} among {:?}", self.listeners));
        Api { addr }
    }
}

/// Starts the shop with `options`, runs `case` against it, and stops it gracefully.
async fn run_with_options<F, Fut>(options: shop::Options, case: F)
where
    F: FnOnce(Endpoints) -> Fut,
    Fut: Future<Output = ()>,
{
    let shop = shop::Shop::start(options).await.expect("the shop starts");
    let endpoints = Endpoints {
        gateway: Api {
            addr: shop.listeners[0].1,
        },
        listeners: shop.listeners.clone(),
    };
    assert_eq!(shop.listeners[0].0, "gateway");
    case(endpoints).await;
    tokio::time::timeout(support::PATIENCE, shop.stop())
        .await
        .expect("the shop stops in time")
        .expect("the shop stops cleanly");
}

/// Runs `case` against a fresh shop on `backend` (nothing when PostgreSQL is skipped).
async fn run<F, Fut>(backend: Backend, test: &str, case: F)
where
    F: FnOnce(Endpoints) -> Fut,
    Fut: Future<Output = ()>,
{
    let data = temp_data_dir();
    let mut args = vec![
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--data-dir".to_owned(),
        data.path().display().to_string(),
    ];
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let Some(database) = PgDatabase::create(test).await else {
                return;
            };
            args.extend(["--database-url".to_owned(), database.url.clone()]);
            Some(database)
        }
    };
    let options = shop::Options::parse(args.into_iter()).expect("valid options");
    // `Shop::start` returns once every instance is registered: a case starts right away.
    run_with_options(options, case).await;
    drop(database);
}

/// Every case, once per backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run(super::Backend::Sqlite, stringify!($case), super::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run(super::Backend::Postgres, stringify!($case), super::$case).await;
                }
            )*
        }
    };
}

suite!(
    users_register_read_update_and_delete,
    registering_an_email_twice_is_a_conflict,
    registration_sends_a_welcome_email,
    emails_go_to_registered_users_only,
    the_email_rate_counts_the_welcome_email,
    email_and_stats_reads_are_internal,
    products_are_created_read_replaced_and_deleted,
    the_product_list_pages_by_id_and_clamps_the_limit,
    bad_list_queries_are_400_and_list_nothing,
    cart_lines_are_private_to_their_user,
    the_cart_refuses_unknown_users_products_and_quantities,
    checkout_bills_the_cart_and_empties_it,
    invoices_are_created_open_and_paid_once,
    the_stats_log_records_and_filters_by_time,
    unknown_routes_and_wrong_methods,
    malformed_json_and_bad_path_parameters_are_400,
    non_json_and_oversized_bodies_are_415_and_413,
    wrong_shapes_are_422_naming_the_fields_and_change_nothing,
    no_input_crashes_the_shop,
    every_instance_reports_health_and_metrics,
);

// Helpers of the cases

async fn register(api: Api, name: &str, email: &str) -> Value {
    api.create("/user/", json!({ "name": name, "email": email }))
        .await
}

async fn add_product(api: Api, name: &str, price_cents: i64) -> Value {
    api.create(
        "/product/",
        json!({ "name": name, "price_cents": price_cents }),
    )
    .await
}

/// `total` of a list.
async fn total(api: Api, path: &str) -> u64 {
    api.fetch(path).await["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("GET {path} has no total"))
}

fn ids(list: &Value) -> Vec<u64> {
    list["items"]
        .as_array()
        .expect("a list has items")
        .iter()
        .map(id_of)
        .collect()
}

// users

async fn users_register_read_update_and_delete(shop: Endpoints) {
    let api = shop.gateway;
    let reply = api
        .post(
            "/user/",
            json!({ "name": "Ada", "email": "ada@example.com" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let ada = reply.json();
    let id = id_of(&ada);
    assert_eq!(reply.header("location"), format!("/user/{id}"));
    assert_eq!(
        (&ada["name"], &ada["email"]),
        (&json!("Ada"), &json!("ada@example.com"))
    );
    assert_eq!(api.fetch(&format!("/user/{id}")).await, ada);

    let renamed = json!({ "name": "Ada L.", "email": "ada.l@example.com" });
    let reply = api.put(&format!("/user/{id}"), renamed.clone()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let read = api.fetch(&format!("/user/{id}")).await;
    assert_eq!(
        (read["id"].as_u64(), &read["name"], &read["email"]),
        (Some(id), &renamed["name"], &renamed["email"])
    );

    let invalid = api
        .put(
            &format!("/user/{id}"),
            json!({ "name": "", "email": "not an email" }),
        )
        .await;
    assert_invalid(&invalid, 422, &["name", "email"], "PUT an invalid user");
    assert_eq!(
        api.fetch(&format!("/user/{id}")).await,
        read,
        "a refused PUT changes nothing"
    );
    let missing = api.put("/user/999999", renamed.clone()).await;
    assert_problem(&missing, 404, "PUT an unknown user");

    assert_eq!(
        api.delete(&format!("/user/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_problem(
        &api.get(&format!("/user/{id}")).await,
        404,
        "GET a deleted user",
    );
    assert_problem(
        &api.delete(&format!("/user/{id}")).await,
        404,
        "DELETE a deleted user",
    );
    assert_problem(&api.get("/user/424242").await, 404, "GET an unknown user");
}

async fn registering_an_email_twice_is_a_conflict(shop: Endpoints) {
    let api = shop.gateway;
    let first = register(api, "Ada", "ada@example.com").await;
    let again = api
        .post(
            "/user/",
            json!({ "name": "Other Ada", "email": "ada@example.com" }),
        )
        .await;
    assert_problem(&again, 409, "registering an email twice");
    assert_eq!(total(api, "/user/").await, 1);
    assert_eq!(api.fetch(&format!("/user/{}", id_of(&first))).await, first);
}

async fn registration_sends_a_welcome_email(shop: Endpoints) {
    register(shop.gateway, "Ada", "ada@example.com").await;
    let emails = shop.service("emails");
    let inbox = emails.fetch("/emails/?to=ada@example.com").await;
    assert_eq!(inbox["total"], 1, "{inbox}");
    let welcome = &inbox["items"][0];
    assert!(welcome["id"].is_u64(), "{welcome}");
    assert_eq!(welcome["to"], "ada@example.com");
    assert!(
        welcome["subject"]
            .as_str()
            .is_some_and(|s| s.contains("Welcome")),
        "{welcome}"
    );
    assert!(
        welcome["body"].as_str().is_some_and(|b| b.contains("Ada")),
        "{welcome}"
    );
    assert_eq!(
        emails.fetch("/emails/?to=nobody@example.com").await["total"],
        0
    );
}

// emails

async fn emails_go_to_registered_users_only(shop: Endpoints) {
    let api = shop.gateway;
    register(api, "Ada", "ada@example.com").await;
    let email = json!({ "to": "ada@example.com", "subject": "Hello", "body": "Hi Ada" });
    let reply = api.post("/send_email/", email.clone()).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    let sent = reply.json();
    assert!(sent["id"].is_u64(), "{sent}");
    assert_eq!(
        (&sent["to"], &sent["subject"], &sent["body"]),
        (&email["to"], &email["subject"], &email["body"])
    );

    let stranger = api
        .post(
            "/send_email/",
            json!({ "to": "eve@example.com", "subject": "Hi", "body": "?" }),
        )
        .await;
    assert_invalid(&stranger, 422, &["to"], "an email to no registered user");
    let inbox = shop
        .service("emails")
        .fetch("/emails/?to=eve@example.com")
        .await;
    assert_eq!(inbox["total"], 0, "nothing was sent to eve: {inbox}");
}

async fn the_email_rate_counts_the_welcome_email(shop: Endpoints) {
    let api = shop.gateway;
    register(api, "Ada", "ada@example.com").await;
    register(api, "Bob", "bob@example.com").await;
    let email = |to: &str| json!({ "to": to, "subject": "News", "body": "More news" });
    // The default rate is 5 a minute and the welcome email took one.
    for sent in 2..=5 {
        let reply = api.post("/send_email/", email("ada@example.com")).await;
        assert_eq!(
            reply.status,
            StatusCode::ACCEPTED,
            "email {sent}: {}",
            reply.text()
        );
    }
    let refused = api.post("/send_email/", email("ada@example.com")).await;
    assert_problem(&refused, 429, "the sixth email in a minute");
    let retry_after: u64 = refused
        .header("retry-after")
        .parse()
        .unwrap_or_else(|_| panic!("a 429 needs Retry-After in seconds: {:?}", refused.headers));
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let inbox = shop
        .service("emails")
        .fetch("/emails/?to=ada@example.com")
        .await;
    assert_eq!(inbox["total"], 5, "the refused email was not sent: {inbox}");
    // Another recipient has a window of their own.
    let other = api.post("/send_email/", email("bob@example.com")).await;
    assert_eq!(other.status, StatusCode::ACCEPTED, "{}", other.text());
}

async fn email_and_stats_reads_are_internal(shop: Endpoints) {
    let api = shop.gateway;
    register(api, "Ada", "ada@example.com").await;
    assert_problem(
        &api.get("/emails/?to=ada@example.com").await,
        403,
        "GET /emails/ through the gateway",
    );
    assert_problem(
        &api.get("/emails/").await,
        403,
        "GET /emails/ through the gateway",
    );
    assert_problem(&api.get("/log").await, 403, "GET /log through the gateway");
    assert_problem(
        &api.get("/log?from=0").await,
        403,
        "GET /log through the gateway",
    );
    assert_eq!(
        shop.service("emails")
            .get("/emails/?to=ada@example.com")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        shop.service("stats").get("/log").await.status,
        StatusCode::OK
    );
}

// catalog

async fn products_are_created_read_replaced_and_deleted(shop: Endpoints) {
    let api = shop.gateway;
    let lamp = api
        .create(
            "/product/",
            json!({ "name": "Lamp", "price_cents": 1999, "description": "Bright" }),
        )
        .await;
    let id = id_of(&lamp);
    assert_eq!(
        (&lamp["name"], &lamp["price_cents"], &lamp["description"]),
        (&json!("Lamp"), &json!(1999), &json!("Bright"))
    );
    let path = format!("/product/{id}");
    assert_eq!(api.fetch(&path).await, lamp);

    // PUT replaces the whole product: the description it leaves out is gone.
    let reply = api
        .put(&path, json!({ "name": "Desk lamp", "price_cents": 2499 }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let replaced = api.fetch(&path).await;
    assert_eq!(
        (&replaced["name"], &replaced["price_cents"]),
        (&json!("Desk lamp"), &json!(2499))
    );
    assert!(
        replaced["description"].is_null(),
        "a full replacement: {replaced}"
    );

    let invalid = api
        .put(&path, json!({ "name": "", "price_cents": -1 }))
        .await;
    assert_invalid(
        &invalid,
        422,
        &["name", "price_cents"],
        "PUT an invalid product",
    );
    assert_eq!(
        api.fetch(&path).await,
        replaced,
        "a refused PUT changes nothing"
    );
    assert_problem(
        &api.put("/product/999999", json!({ "name": "X", "price_cents": 1 }))
            .await,
        404,
        "PUT an unknown product",
    );
    assert_problem(
        &api.get("/product/999999").await,
        404,
        "GET an unknown product",
    );

    let chair = add_product(api, "Chair", 5000).await;
    assert_eq!(api.delete(&path).await.status, StatusCode::NO_CONTENT);
    let gone = api.get(&path).await;
    assert!(
        matches!(gone.status.as_u16(), 404 | 410),
        "GET a deleted product: {}",
        gone.status
    );
    assert_problem(&gone, gone.status.as_u16(), "GET a deleted product");
    let list = api.fetch("/products/").await;
    assert_eq!(
        (ids(&list), &list["total"]),
        (vec![id_of(&chair)], &json!(1)),
        "{list}"
    );
    let again = api.delete(&path).await;
    assert!(
        matches!(again.status.as_u16(), 404 | 410),
        "DELETE a deleted product: {}",
        again.status
    );
}

async fn the_product_list_pages_by_id_and_clamps_the_limit(shop: Endpoints) {
    let api = shop.gateway;
    let mut created = Vec::new();
    for n in 0..105 {
        created.push(id_of(
            &add_product(api, &format!("Product {n}"), 100 + n).await,
        ));
    }
    assert!(
        created.windows(2).all(|w| w[0] < w[1]),
        "ids increase: {created:?}"
    );

    let first = api.fetch("/products/").await;
    assert_eq!(
        (ids(&first), &first["total"]),
        (created[..20].to_vec(), &json!(105)),
        "the default limit is 20"
    );
    let page = api.fetch("/products/?offset=20&limit=7").await;
    assert_eq!(ids(&page), created[20..27]);
    let clamped = api.fetch("/products/?limit=1000").await;
    assert_eq!(ids(&clamped), created[..100], "a limit over 100 is 100");
    let tail = api.fetch("/products/?offset=100&limit=100").await;
    assert_eq!(
        (ids(&tail), &tail["total"]),
        (created[100..].to_vec(), &json!(105))
    );
    let beyond = api.fetch("/products/?offset=1000").await;
    assert_eq!((ids(&beyond), &beyond["total"]), (vec![], &json!(105)));
    // The largest offset the document allows (the stores count in i64) is past the end.
    let huge = api.fetch(&format!("/products/?offset={}", i64::MAX)).await;
    assert_eq!(ids(&huge), Vec::<u64>::new());
}

async fn bad_list_queries_are_400_and_list_nothing(shop: Endpoints) {
    let api = shop.gateway;
    add_product(api, "Lamp", 100).await;
    for (query, field) in [
        ("offset=-1", "offset"),
        ("limit=-5", "limit"),
        ("offset=abc", "offset"),
        ("limit=1.5", "limit"),
        ("offset=99999999999999999999999", "offset"),
        ("limit=99999999999999999999999", "limit"),
        ("colour=red", "colour"),
    ] {
        let reply = api.get(&format!("/products/?{query}")).await;
        assert_invalid(&reply, 400, &[field], &format!("GET /products/?{query}"));
    }
    let users = api.get("/user/?limit=ten").await;
    assert_invalid(&users, 400, &["limit"], "GET /user/?limit=ten");
    let carts = api.get("/user/1/cart/?offset=-1").await;
    assert_invalid(&carts, 400, &["offset"], "GET /user/1/cart/?offset=-1");
}

// cart

async fn cart_lines_are_private_to_their_user(shop: Endpoints) {
    let api = shop.gateway;
    let ada = id_of(&register(api, "Ada", "ada@example.com").await);
    let bob = id_of(&register(api, "Bob", "bob@example.com").await);
    let lamp = id_of(&add_product(api, "Lamp", 1999).await);
    let chair = id_of(&add_product(api, "Chair", 5000).await);

    let reply = api
        .post(
            &format!("/user/{ada}/cart/"),
            json!({ "product_id": lamp, "quantity": 2 }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let line = reply.json();
    let path = format!("/user/{ada}/cart/{}", id_of(&line));
    assert_eq!(
        (&line["product_id"], &line["quantity"]),
        (&json!(lamp), &json!(2))
    );
    assert_eq!(api.fetch(&path).await, line);

    let reply = api.put(&path, json!({ "quantity": 3 })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let updated = api.fetch(&path).await;
    assert_eq!(
        (&updated["product_id"], &updated["quantity"]),
        (&json!(lamp), &json!(3))
    );
    // The product of a line is kept as it is.
    let reply = api
        .put(&path, json!({ "product_id": chair, "quantity": 4 }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let kept = api.fetch(&path).await;
    assert_eq!(
        (&kept["product_id"], &kept["quantity"]),
        (&json!(lamp), &json!(4))
    );
    let invalid = api.put(&path, json!({ "quantity": 0 })).await;
    assert_invalid(&invalid, 422, &["quantity"], "PUT quantity 0");

    // Bob sees none of Ada's cart.
    let bobs_view = format!("/user/{bob}/cart/{}", id_of(&line));
    assert_problem(&api.get(&bobs_view).await, 404, "GET another user's line");
    assert_problem(
        &api.put(&bobs_view, json!({ "quantity": 9 })).await,
        404,
        "PUT another user's line",
    );
    assert_problem(
        &api.delete(&bobs_view).await,
        404,
        "DELETE another user's line",
    );
    assert_eq!(total(api, &format!("/user/{bob}/cart/")).await, 0);
    let adas = api.fetch(&format!("/user/{ada}/cart/")).await;
    assert_eq!(
        (ids(&adas), &adas["total"]),
        (vec![id_of(&line)], &json!(1)),
        "{adas}"
    );

    assert_eq!(api.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_problem(&api.get(&path).await, 404, "GET a removed line");
    assert_problem(&api.delete(&path).await, 404, "DELETE a removed line");
    assert_eq!(total(api, &format!("/user/{ada}/cart/")).await, 0);
}

async fn the_cart_refuses_unknown_users_products_and_quantities(shop: Endpoints) {
    let api = shop.gateway;
    let ada = id_of(&register(api, "Ada", "ada@example.com").await);
    let lamp = id_of(&add_product(api, "Lamp", 1999).await);
    let gone = id_of(&add_product(api, "Gone", 100).await);
    assert_eq!(
        api.delete(&format!("/product/{gone}")).await.status,
        StatusCode::NO_CONTENT
    );
    let cart = format!("/user/{ada}/cart/");

    let nobody = api
        .post(
            "/user/999999/cart/",
            json!({ "product_id": lamp, "quantity": 1 }),
        )
        .await;
    assert_problem(&nobody, 404, "a line for an unknown user");
    for (line, field, what) in [
        (
            json!({ "product_id": 999999, "quantity": 1 }),
            "product_id",
            "an unknown product",
        ),
        (
            json!({ "product_id": gone, "quantity": 1 }),
            "product_id",
            "a deleted product",
        ),
        (json!({ "quantity": 1 }), "product_id", "no product"),
        (
            json!({ "product_id": lamp, "quantity": 0 }),
            "quantity",
            "quantity 0",
        ),
        (
            json!({ "product_id": lamp, "quantity": -3 }),
            "quantity",
            "a negative quantity",
        ),
        (json!({ "product_id": lamp }), "quantity", "no quantity"),
    ] {
        assert_invalid(&api.post(&cart, line).await, 422, &[field], what);
    }
    assert_eq!(total(api, &cart).await, 0, "no refused line was added");
    assert_problem(
        &api.get(&format!("{cart}999999")).await,
        404,
        "GET an unknown line",
    );
    assert_problem(
        &api.get("/user/999999/cart/1").await,
        404,
        "GET a line of an unknown user",
    );
}

async fn checkout_bills_the_cart_and_empties_it(shop: Endpoints) {
    let api = shop.gateway;
    let ada = id_of(&register(api, "Ada", "ada@example.com").await);
    let lamp = id_of(&add_product(api, "Lamp", 1999).await);
    let chair = id_of(&add_product(api, "Chair", 5000).await);
    let cart = format!("/user/{ada}/cart/");
    let checkout = format!("/user/{ada}/cart/checkout");

    assert_invalid(
        &api.post(&checkout, json!({})).await,
        422,
        &[],
        "checking out an empty cart",
    );
    api.create(&cart, json!({ "product_id": lamp, "quantity": 3 }))
        .await;
    api.create(&cart, json!({ "product_id": chair, "quantity": 2 }))
        .await;

    let reply = api.raw(Method::POST, &checkout, None, "").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let invoice = reply.json();
    assert_eq!(
        (&invoice["amount_cents"], &invoice["status"]),
        (&json!(3 * 1999 + 2 * 5000), &json!("open")),
        "{invoice}"
    );
    let stored = api.fetch(&format!("/invoices/{}", id_of(&invoice))).await;
    assert_eq!(
        (&stored["amount_cents"], &stored["status"]),
        (&invoice["amount_cents"], &json!("open"))
    );
    assert_eq!(total(api, &cart).await, 0, "checkout empties the cart");
    assert_problem(
        &api.raw(Method::POST, &checkout, None, "").await,
        422,
        "checking out twice",
    );
}

// payments

async fn invoices_are_created_open_and_paid_once(shop: Endpoints) {
    let api = shop.gateway;
    let reply = api.post("/invoices", json!({ "amount_cents": 1234 })).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let invoice = reply.json();
    let id = id_of(&invoice);
    assert_eq!(
        (&invoice["amount_cents"], &invoice["status"]),
        (&json!(1234), &json!("open"))
    );
    assert_eq!(api.fetch(&format!("/invoices/{id}")).await, invoice);

    // The status is the service's to set.
    let sneaky = api
        .create("/invoices", json!({ "amount_cents": 5, "status": "paid" }))
        .await;
    assert_eq!(sneaky["status"], "open", "{sneaky}");
    for (body, field) in [
        (json!({ "amount_cents": 0 }), "amount_cents"),
        (json!({ "amount_cents": -10 }), "amount_cents"),
        (json!({ "amount_cents": "ten" }), "amount_cents"),
        (json!({}), "amount_cents"),
    ] {
        assert_invalid(
            &api.post("/invoices", body.clone()).await,
            422,
            &[field],
            &format!("POST /invoices {body}"),
        );
    }

    let paid = api
        .raw(Method::POST, &format!("/invoices/{id}/pay"), None, "")
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.text());
    assert_eq!(paid.json()["status"], "paid");
    assert_eq!(
        api.fetch(&format!("/invoices/{id}")).await["status"],
        "paid"
    );
    let twice = api
        .raw(Method::POST, &format!("/invoices/{id}/pay"), None, "")
        .await;
    assert_problem(&twice, 409, "paying twice");
    let unknown = api
        .raw(Method::POST, "/invoices/999999/pay", None, "")
        .await;
    assert_problem(&unknown, 404, "paying an unknown invoice");
    assert_problem(
        &api.get("/invoices/999999").await,
        404,
        "GET an unknown invoice",
    );
}

// stats

async fn the_stats_log_records_and_filters_by_time(shop: Endpoints) {
    let api = shop.gateway;
    let stats = shop.service("stats");
    let reply = api
        .post("/log", json!({ "user_id": 7, "action": "browse" }))
        .await;
    assert!(
        reply.status.is_success(),
        "POST /log: {} {}",
        reply.status,
        reply.text()
    );
    assert_invalid(
        &api.post("/log", json!({ "user_id": "seven", "action": "x" }))
            .await,
        422,
        &["user_id"],
        "a log entry with a text user",
    );
    assert_invalid(
        &api.post("/log", json!({ "user_id": 7, "action": "" }))
            .await,
        422,
        &["action"],
        "a log entry without action",
    );

    let log = stats.fetch("/log").await;
    assert_eq!(log["total"], 1, "{log}");
    let entry = &log["items"][0];
    assert_eq!(
        (&entry["user_id"], &entry["action"]),
        (&json!(7), &json!("browse"))
    );
    let at = entry["at"].as_str().expect("an entry has its time");
    assert!(humantime::parse_rfc3339_weak(at).is_ok(), "at = {at}");

    let window = |from: &str, to: &str| format!("/log?from={from}&to={to}");
    assert_eq!(
        stats
            .fetch(&window("2000-01-01T00:00:00Z", "2999-01-01T00:00:00Z"))
            .await["total"],
        1
    );
    assert_eq!(
        stats.fetch(&window("0", "32503680000")).await["total"],
        1,
        "unix seconds"
    );
    assert_eq!(
        stats.fetch("/log?from=32503680000").await["total"],
        0,
        "a range in the future"
    );
    assert_eq!(
        stats.fetch("/log?to=946684800").await["total"],
        0,
        "a range in the past"
    );
    for query in [
        "from=yesterday",
        "to=-1",
        "from=2024-13-45T00:00:00Z",
        "colour=red",
    ] {
        let reply = stats.get(&format!("/log?{query}")).await;
        assert_problem(&reply, 400, &format!("GET /log?{query}"));
    }

    // The services log what users do, in the background.
    let ada = id_of(&register(api, "Ada", "ada@example.com").await);
    eventually("the registration in the stats log", || async {
        let log = stats.fetch("/log").await;
        log["items"]
            .as_array()?
            .iter()
            .any(|e| e["user_id"] == json!(ada) && e["action"] == "register")
            .then_some(())
    })
    .await;
}

// errors

async fn unknown_routes_and_wrong_methods(shop: Endpoints) {
    let api = shop.gateway;
    for path in [
        "/",
        "/nothing",
        "/users/",
        "/user/1/carts/",
        "/product/1/extra",
        "/invoices/1/refund",
    ] {
        assert_problem(&api.get(path).await, 404, &format!("GET {path}"));
    }
    assert_problem(
        &shop.service("catalog").get("/user/1").await,
        404,
        "a users route at the catalog",
    );
    for (method, path, allowed) in [
        (Method::PATCH, "/user/1", "GET"),
        (Method::DELETE, "/products/", "GET"),
        (Method::GET, "/send_email/", "POST"),
        (Method::GET, "/invoices/1/pay", "POST"),
        (Method::DELETE, "/invoices/1", "GET"),
        (Method::PUT, "/user/1/cart/", "POST"),
    ] {
        let what = format!("{method} {path}");
        let reply = api.raw(method, path, Some("application/json"), "{}").await;
        assert_problem(&reply, 405, &what);
        assert!(
            reply.header("allow").contains(allowed),
            "{what}: Allow {:?}",
            reply.header("allow")
        );
    }
}

async fn malformed_json_and_bad_path_parameters_are_400(shop: Endpoints) {
    let api = shop.gateway;
    let ada = id_of(&register(api, "Ada", "ada@example.com").await);
    for path in [
        "/user/",
        "/product/",
        &format!("/user/{ada}/cart/"),
        "/invoices",
        "/send_email/",
        "/log",
    ] {
        for body in ["{\"name\":", "not json", "{\"a\":1}}", "\u{0}", "{'a':1}"] {
            let reply = api
                .raw(Method::POST, path, Some("application/json"), body)
                .await;
            assert_problem(&reply, 400, &format!("POST {path} {body:?}"));
        }
    }
    for (method, path) in [
        (Method::GET, "/user/abc"),
        (Method::GET, "/user/-1"),
        (Method::GET, "/user/1.5"),
        (Method::GET, "/user/99999999999999999999999"),
        (Method::GET, "/user/18446744073709551616"),
        (Method::DELETE, "/user/abc"),
        (Method::GET, "/product/abc"),
        (Method::GET, &format!("/user/{ada}/cart/abc")),
        (Method::GET, "/invoices/abc"),
        (Method::POST, "/invoices/abc/pay"),
        (Method::POST, "/invoices/99999999999999999999999/pay"),
        (Method::POST, "/user/abc/cart/checkout"),
    ] {
        let reply = api.raw(method.clone(), path, None, "").await;
        assert_problem(&reply, 400, &format!("{method} {path}"));
    }
    let put = api
        .put(
            "/user/99999999999999999999999",
            json!({ "name": "X", "email": "x@example.com" }),
        )
        .await;
    assert!(
        put.status.is_client_error(),
        "PUT an overflowing id: {}",
        put.status
    );
    assert_eq!(total(api, "/user/").await, 1, "nothing was created");
}

async fn non_json_and_oversized_bodies_are_415_and_413(shop: Endpoints) {
    let api = shop.gateway;
    let user = r#"{"name":"Ada","email":"ada@example.com"}"#;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let reply = api.raw(Method::POST, "/user/", content_type, user).await;
        assert_problem(&reply, 415, &format!("POST /user/ as {content_type:?}"));
    }
    let product = r#"{"name":"Lamp","price_cents":1}"#;
    assert_problem(
        &api.raw(Method::POST, "/product/", Some("text/html"), product)
            .await,
        415,
        "a product as HTML",
    );
    assert_eq!(total(api, "/user/").await, 0);

    // Just over 1 MiB, valid JSON but for its size, straight at the service (through the
    // gateway: `oversized_and_unread_bodies_get_the_services_answer_through_the_gateway`).
    let catalog = shop.service("catalog");
    let big = oversized_product();
    assert_problem(
        &catalog
            .raw(
                Method::POST,
                "/product/",
                Some("application/json"),
                big.clone(),
            )
            .await,
        413,
        "an oversized product",
    );
    assert_eq!(
        raw_post(catalog, "/product/", &big).await.status,
        413,
        "with Content-Length, by hand"
    );
    assert_eq!(total(api, "/products/").await, 0);
}

/// A product just over the 1 MiB body limit, valid JSON but for its size.
fn oversized_product() -> String {
    let padding = "x".repeat(1024 * 1024);
    format!(r#"{{"name":"Lamp","price_cents":1,"description":"{padding}"}}"#)
}

/// `POST path` written by hand, so that the answer is read even if the server closes early.
async fn raw_post(api: Api, path: &str, body: &str) -> support::RawResponse {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body.as_bytes());
    support::raw_exchange(api.addr, request).await
}

async fn wrong_shapes_are_422_naming_the_fields_and_change_nothing(shop: Endpoints) {
    let api = shop.gateway;
    let ada = register(api, "Ada", "ada@example.com").await;
    let ada_id = id_of(&ada);
    let lamp = add_product(api, "Lamp", 1999).await;
    let lamp_id = id_of(&lamp);
    let line = api
        .create(
            &format!("/user/{ada_id}/cart/"),
            json!({ "product_id": lamp_id, "quantity": 1 }),
        )
        .await;
    let cart = format!("/user/{ada_id}/cart/");
    let cases: Vec<(Method, String, Value, Vec<&str>)> = vec![
        (
            Method::POST,
            "/user/".into(),
            json!({ "name": 5, "email": "b@example.com" }),
            vec!["name"],
        ),
        (
            Method::POST,
            "/user/".into(),
            json!({ "name": "Bob" }),
            vec!["email"],
        ),
        (
            Method::POST,
            "/user/".into(),
            json!({ "name": "Bob", "email": "b@example.com", "admin": true }),
            vec!["admin"],
        ),
        (
            Method::POST,
            "/user/".into(),
            json!({ "name": "Bob", "email": "nope" }),
            vec!["email"],
        ),
        (
            Method::POST,
            "/user/".into(),
            json!({ "name": "x".repeat(101), "email": "b@example.com" }),
            vec!["name"],
        ),
        (
            Method::POST,
            "/user/".into(),
            json!(["Bob", "b@example.com"]),
            vec![],
        ),
        (Method::POST, "/user/".into(), json!(null), vec![]),
        (
            Method::PUT,
            format!("/user/{ada_id}"),
            json!({ "name": "Ada" }),
            vec!["email"],
        ),
        (
            Method::PUT,
            format!("/user/{ada_id}"),
            json!({ "name": ["Ada"], "email": "ada@example.com" }),
            vec!["name"],
        ),
        (
            Method::POST,
            "/product/".into(),
            json!({ "name": "Chair", "price_cents": "cheap" }),
            vec!["price_cents"],
        ),
        (
            Method::POST,
            "/product/".into(),
            json!({ "name": "Chair", "price_cents": 1.5 }),
            vec!["price_cents"],
        ),
        (
            Method::POST,
            "/product/".into(),
            json!({ "name": "Chair", "price_cents": 1e30 }),
            vec!["price_cents"],
        ),
        (
            Method::POST,
            "/product/".into(),
            json!({ "name": "Chair" }),
            vec!["price_cents"],
        ),
        (
            Method::POST,
            "/product/".into(),
            json!({ "name": "Chair", "price_cents": 1, "colour": "red" }),
            vec!["colour"],
        ),
        (
            Method::POST,
            "/product/".into(),
            json!({ "name": "Chair", "price_cents": -1 }),
            vec!["price_cents"],
        ),
        (
            Method::PUT,
            format!("/product/{lamp_id}"),
            json!({ "price_cents": 5 }),
            vec!["name"],
        ),
        (
            Method::POST,
            cart.clone(),
            json!({ "product_id": "lamp", "quantity": 1 }),
            vec!["product_id"],
        ),
        (
            Method::POST,
            cart.clone(),
            json!({ "product_id": -1, "quantity": 1 }),
            vec!["product_id"],
        ),
        (
            Method::POST,
            cart.clone(),
            json!({ "product_id": lamp_id, "quantity": 1, "price": 0 }),
            vec!["price"],
        ),
        (
            Method::POST,
            cart.clone(),
            json!({ "product_id": lamp_id, "quantity": 1001 }),
            vec!["quantity"],
        ),
        (
            Method::PUT,
            format!("{cart}{}", id_of(&line)),
            json!({ "quantity": "many" }),
            vec!["quantity"],
        ),
        (
            Method::POST,
            "/send_email/".into(),
            json!({ "to": "ada@example.com", "subject": "Hi" }),
            vec!["body"],
        ),
        (
            Method::POST,
            "/send_email/".into(),
            json!({ "to": 5, "subject": "Hi", "body": "x" }),
            vec!["to"],
        ),
        (
            Method::POST,
            "/send_email/".into(),
            json!({ "to": "ada@example.com", "subject": "", "body": "x" }),
            vec!["subject"],
        ),
        (
            Method::POST,
            "/send_email/".into(),
            json!({ "to": "ada@example.com", "subject": "Hi", "body": "x", "cc": "b@example.com" }),
            vec!["cc"],
        ),
        (
            Method::POST,
            "/invoices".into(),
            json!({ "amount_cents": 100, "user_id": "ada" }),
            vec!["user_id"],
        ),
        (
            Method::POST,
            "/log".into(),
            json!({ "action": "x" }),
            vec!["user_id"],
        ),
    ];
    for (method, path, body, fields) in cases {
        let what = format!("{method} {path} {body}");
        let reply = api.json(method, &path, body).await;
        assert_invalid(&reply, 422, &fields, &what);
    }
    // Nothing changed.
    let users = api.fetch("/user/").await;
    assert_eq!(
        (&users["items"], &users["total"]),
        (&json!([ada]), &json!(1))
    );
    let products = api.fetch("/products/").await;
    assert_eq!(
        (&products["items"], &products["total"]),
        (&json!([lamp]), &json!(1))
    );
    let lines = api.fetch(&cart).await;
    assert_eq!(
        (&lines["items"], &lines["total"]),
        (&json!([line]), &json!(1))
    );
    assert_eq!(
        shop.service("emails").fetch("/emails/").await["total"],
        1,
        "only the welcome email"
    );
    assert_eq!(
        shop.service("payments").fetch("/invoices/").await["total"],
        0
    );
    assert_eq!(
        shop.service("stats").fetch("/log").await["items"]
            .as_array()
            .map(|items| items.iter().all(|e| e["action"] == "register")),
        Some(true)
    );
}

async fn no_input_crashes_the_shop(shop: Endpoints) {
    let api = shop.gateway;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let long_path = format!("/user/{}", "9".repeat(10_000));
    let bodies: [&[u8]; 6] = [
        deep.as_bytes(),
        b"\xff\xfe\x00garbage",
        b"{\"name\":\"\xc3\x28\",\"email\":\"a@example.com\"}",
        b"{\"name\":\"\\ud800\",\"email\":\"a@example.com\"}",
        b"{\"price_cents\":1e400,\"name\":\"x\"}",
        b"",
    ];
    let paths = [
        "/user/",
        "/product/",
        "/user/1/cart/",
        "/user/1/cart/checkout",
        "/invoices",
        "/send_email/",
        "/log",
        "/invoices/1/pay",
        &long_path,
        "/user/%00",
        "/product/%FF",
        "/user/1/cart/%2e%2e",
    ];
    for path in paths {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
        ] {
            for body in bodies {
                let reply = api
                    .try_raw(
                        method.clone(),
                        path,
                        Some("application/json"),
                        body.to_vec(),
                    )
                    .await
                    .unwrap_or_else(|err| panic!("{method} {path}: no answer: {err}"));
                // 502 for a body the service did not read: see
                // `oversized_and_unread_bodies_get_the_services_answer_through_the_gateway`.
                assert!(
                    reply.status != StatusCode::INTERNAL_SERVER_ERROR,
                    "{method} {path}: {} {}",
                    reply.status,
                    reply.text()
                );
            }
        }
    }
    // Raw requests no well-behaved client sends.
    for request in [
        &b"GET /user/1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n"[..],
        b"POST /user/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /\xff HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        let _ = tokio::time::timeout(support::PATIENCE, async {
            let mut stream = support::connect(api.addr).await;
            tokio::io::AsyncWriteExt::write_all(&mut stream, request).await.ok();
            support::read_until_closed(&mut stream, support::PATIENCE).await
        })
        .await;
    }
    // Everything still answers.
    support::shop::wait_healthy(api, support::PATIENCE).await;
    register(api, "Ada", "ada@example.com").await;
    add_product(api, "Lamp", 1).await;
}

async fn every_instance_reports_health_and_metrics(shop: Endpoints) {
    let health = shop.gateway.get("/health").await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text());
    register(shop.gateway, "Ada", "ada@example.com").await;
    let names: Vec<&str> = shop
        .listeners
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        names,
        ["gateway", "users", "emails", "catalog", "cart", "payments", "stats"]
    );
    // The gateway is an instance too: its metrics count what crossed the edge.
    for (name, addr) in shop.listeners.iter() {
        let api = Api { addr: *addr };
        let health = api.get("/health").await;
        assert_eq!(
            health.status,
            StatusCode::OK,
            "{name} /health: {}",
            health.text()
        );
        let metrics = api.get("/metrics").await;
        assert_eq!(metrics.status, StatusCode::OK, "{name} /metrics");
        let text = metrics.text();
        let counter = text
            .lines()
            .find(|line| line.starts_with("http_requests_total{"))
            .unwrap_or_else(|| panic!("{name} has no http_requests_total:\n{text}"));
        for label in ["method=\"", "route=\"", "status=\""] {
            assert!(counter.contains(label), "{name}: {counter}");
        }
    }
    let users = shop.service("users").get("/metrics").await.text();
    assert!(
        users
            .lines()
            .any(|line| line.starts_with("http_requests_total{")
                && line.contains("method=\"POST\"")
                && line.contains("route=\"/user/\"")
                && line.contains("status=\"201\"")),
        "the registration is counted:\n{users}"
    );
    let edge = shop.gateway.get("/metrics").await.text();
    assert!(
        edge.lines()
            .any(|line| line.starts_with("client_calls_total{")
                && line.contains("service=\"users\"")),
        "the gateway counts its calls to the services:\n{edge}"
    );
    // Each service's metrics show its store: the registration's create, and on PostgreSQL
    // the connection pool.
    assert!(
        users.lines().any(
            |line| line.starts_with("db_client_operation_duration_seconds_count{")
                && line.contains("db_collection_name=\"user\",db_operation_name=\"create\"}")
        ),
        "the registration's create is timed:\n{users}"
    );
    if users.contains("db_system_name=\"postgresql\"") {
        assert!(
            users.contains("db_client_connection_max{"),
            "the pool is shown:\n{users}"
        );
    }
}

// Backend-independent cases, once.

/// A cart path names its user by number, like `/user/{id}` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_path_with_a_non_numeric_user_is_400() {
    run(
        Backend::Sqlite,
        "non_numeric_cart_user",
        |shop| async move {
            let api = shop.gateway;
            let lamp = id_of(&add_product(api, "Lamp", 1).await);
            for path in ["/user/abc/cart/", "/user/-1/cart/", "/user/abc/cart/1"] {
                assert_problem(&api.get(path).await, 400, &format!("GET {path}"));
            }
            let line = json!({ "product_id": lamp, "quantity": 1 });
            assert_problem(
                &api.post("/user/abc/cart/", line).await,
                400,
                "POST /user/abc/cart/",
            );
        },
    )
    .await;
}

/// A service may answer before it has read the request body (413 over the limit, 405 for a
/// method it does not serve); the gateway must pass that answer on, not turn it into a 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_unread_bodies_get_the_services_answer_through_the_gateway() {
    run(Backend::Sqlite, "unread_bodies", |shop| async move {
        let api = shop.gateway;
        let big = oversized_product();
        let unread = "x".repeat(256 * 1024);
        for round in 0..5 {
            let reply = api
                .raw(
                    Method::POST,
                    "/product/",
                    Some("application/json"),
                    big.clone(),
                )
                .await;
            assert_problem(&reply, 413, &format!("round {round}: an oversized product"));
            assert_eq!(
                raw_post(api, "/product/", &big).await.status,
                413,
                "round {round}: by hand"
            );
            let reply = api
                .raw(
                    Method::GET,
                    "/product/",
                    Some("application/json"),
                    unread.clone(),
                )
                .await;
            assert_problem(
                &reply,
                405,
                &format!("round {round}: GET /product/ with a body"),
            );
        }
        assert_eq!(total(api, "/products/").await, 0);
    })
    .await;
}

// Without the database: a gateway alone.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_without_services_answers_503() {
    let data = temp_data_dir();
    let dir = data.path().display().to_string();
    let args = [
        "--only",
        "gateway",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &dir,
    ];
    let options = shop::Options::parse(args.map(String::from).into_iter()).unwrap();
    run_with_options(options, |shop| async move {
        assert_eq!(shop.listeners.len(), 1, "{:?}", shop.listeners);
        let api = shop.gateway;
        assert_problem(
            &api.get("/health").await,
            503,
            "GET /health with no services",
        );
        assert_problem(
            &api.get("/product/1").await,
            503,
            "GET /product/1 with no catalog",
        );
        assert_problem(
            &api.post(
                "/user/",
                json!({ "name": "Ada", "email": "ada@example.com" }),
            )
            .await,
            503,
            "POST /user/ with no users",
        );
        assert_problem(
            &api.get("/emails/").await,
            403,
            "an internal route stays 403",
        );
        assert_problem(
            &api.get("/nothing").await,
            404,
            "an unknown route stays 404",
        );
    })
    .await;
}
