//! The typed resource client (`T::client(&service_client, "svc")`) against a real microkit
//! server on a loopback port, found through a `MemoryRegistry`: typed values back from every
//! action, and typed errors carrying the server's problem.

use microkit_test_support as support;

use std::sync::Arc;

use microkit::client::{ClientError, ServiceClient};
use microkit::discovery::{MemoryRegistry, Registration};
use microkit::http::StatusCode;
use microkit::resource::store::{MemoryStore, Store};
use microkit::resource::{ListPage, ResourceClient, ResourceRoutes};
use microkit::{FieldError, Resource, Router, ServerConfig};
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::cluster::register;
use support::{spawn, TestServer};

/// An account: a unique email and validated fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Resource)]
#[resource(path = "/account")]
struct Account {
    #[resource(id)]
    id: u64,
    #[resource(unique, filter, validate(email))]
    email: String,
    #[resource(validate(length(min = 1, max = 20)))]
    name: String,
    #[serde(default)]
    vip: bool,
}

/// An order of a customer, listed somewhere else than where it is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Resource)]
#[resource(path = "/customer/{cid}/order", list_path = "/customer/{cid}/orders/")]
struct Order {
    #[resource(id)]
    id: u64,
    #[resource(validate(range(min = 1)))]
    quantity: u32,
}

/// A shelf label: text ids chosen by the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Resource)]
#[resource(path = "/label")]
struct Label {
    #[resource(id)]
    code: String,
    text: String,
}

/// A server with the three resources, registered as `svc`, and a client of it.
struct Service {
    client: ServiceClient,
    _registration: Registration,
    _server: TestServer,
}

async fn service() -> Service {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let router = Router::new()
        .merge(ResourceRoutes::<Account>::new(store.clone()).router())
        .merge(ResourceRoutes::<Order>::new(store.clone()).router())
        .merge(ResourceRoutes::<Label>::new(store).router());
    let server = spawn(router, ServerConfig::default()).await;
    let registry = MemoryRegistry::new();
    let registration = register(&registry, "svc", server.addr).await;
    Service {
        client: ServiceClient::new(registry),
        _registration: registration,
        _server: server,
    }
}

fn status_of(err: &ClientError) -> StatusCode {
    err.status()
        .unwrap_or_else(|| panic!("an error status, got {err}"))
}

fn ann() -> serde_json::Value {
    json!({ "email": "ann@shop.example", "name": "Ann" })
}

#[tokio::test]
async fn every_action_returns_typed_values() {
    let service = service().await;
    let accounts: ResourceClient<Account> = Account::client(&service.client, "svc");

    let ann = accounts.create(&ann()).await.expect("created");
    assert_eq!(
        ann,
        Account {
            id: 1,
            email: "ann@shop.example".into(),
            name: "Ann".into(),
            vip: false
        }
    );
    assert_eq!(accounts.get(1).await.expect("read"), ann);

    let replaced = accounts
        .update(
            1,
            &json!({ "email": "ann@shop.example", "name": "Annie", "vip": true }),
        )
        .await
        .expect("replaced");
    assert_eq!((replaced.name.as_str(), replaced.vip), ("Annie", true));
    let patched = accounts
        .patch(1, &json!({ "vip": false }))
        .await
        .expect("patched");
    assert_eq!((patched.name.as_str(), patched.vip), ("Annie", false));

    // A typed body works as well as JSON: the server ignores the id it carries.
    let bob = Account {
        id: 99,
        email: "bob@shop.example".into(),
        name: "Bob".into(),
        vip: true,
    };
    let bob = accounts.create(&bob).await.expect("created from a struct");
    assert_eq!(bob.id, 2);

    let page = accounts.list(&[], 0, 10).await.expect("listed");
    assert_eq!(
        page,
        ListPage {
            items: vec![patched.clone(), bob.clone()],
            total: 2
        }
    );
    let page = accounts
        .list(&[("email", "bob@shop.example")], 0, 10)
        .await
        .expect("filtered");
    assert_eq!((page.items.len(), &page.items[0]), (1, &bob));
    let page = accounts.list(&[], 1, 1).await.expect("paged");
    assert_eq!((page.items, page.total), (vec![bob], 2));

    accounts.delete(1).await.expect("deleted");
    let err = accounts.get(1).await.expect_err("gone");
    assert_eq!(status_of(&err), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn errors_carry_the_servers_problem() {
    let service = service().await;
    let accounts = Account::client(&service.client, "svc");
    accounts.create(&ann()).await.expect("created");

    let err = accounts.create(&ann()).await.expect_err("a duplicate");
    assert_eq!(status_of(&err), StatusCode::CONFLICT);
    let problem = err.problem().expect("a problem");
    assert_eq!(
        problem.field_errors(),
        [FieldError::new("email", "is already taken")]
    );

    let err = accounts
        .create(&json!({ "email": "nope", "name": "" }))
        .await
        .expect_err("invalid");
    assert_eq!(status_of(&err), StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = err
        .problem()
        .expect("a problem")
        .field_errors()
        .into_iter()
        .map(|error| error.field)
        .collect();
    assert_eq!(fields, ["email", "name"]);

    for err in [
        accounts.get(42).await.expect_err("missing"),
        accounts
            .update(42, &ann())
            .await
            .expect_err("missing on update"),
        accounts
            .patch(42, &json!({ "name": "x" }))
            .await
            .expect_err("missing on patch"),
        accounts.delete(42).await.expect_err("missing on delete"),
    ] {
        assert_eq!(status_of(&err), StatusCode::NOT_FOUND, "{err}");
        assert_eq!(err.problem().expect("a problem").status(), 404);
    }
    let err = accounts.get("abc").await.expect_err("not an id");
    assert_eq!(status_of(&err), StatusCode::BAD_REQUEST);

    let page = accounts.list(&[], 0, 10).await.expect("listed");
    assert_eq!(page.total, 1, "the failures changed nothing");
}

#[tokio::test]
async fn under_scopes_nested_items_to_their_parent() {
    let service = service().await;
    let orders = Order::client(&service.client, "svc");
    let of_7 = orders.clone().under([7]);
    let of_8 = orders.under([8]);

    let first = of_7
        .create(&json!({ "quantity": 2 }))
        .await
        .expect("created under 7");
    of_8.create(&json!({ "quantity": 5 }))
        .await
        .expect("created under 8");
    assert_eq!(of_7.get(first.id).await.expect("read"), first);
    let err = of_8.get(first.id).await.expect_err("another parent's item");
    assert_eq!(status_of(&err), StatusCode::NOT_FOUND);

    let page = of_7
        .list(&[], 0, 10)
        .await
        .expect("listed at the list path");
    assert_eq!((page.items, page.total), (vec![first.clone()], 1));

    let patched = of_7
        .patch(first.id, &json!({ "quantity": 3 }))
        .await
        .expect("patched");
    assert_eq!(patched.quantity, 3);
    let err = of_7
        .update(first.id, &json!({ "quantity": 0 }))
        .await
        .expect_err("invalid");
    assert_eq!(status_of(&err), StatusCode::UNPROCESSABLE_ENTITY);
    of_7.delete(first.id).await.expect("deleted");
    assert_eq!(of_8.list(&[], 0, 10).await.expect("listed").total, 1);
}

#[tokio::test]
async fn text_ids_travel_percent_encoded() {
    let service = service().await;
    let labels = Label::client(&service.client, "svc");
    let label = labels
        .create(&json!({ "code": "a/b c", "text": "odd" }))
        .await
        .expect("created");
    assert_eq!(label.code, "a/b c");
    assert_eq!(labels.get("a/b c").await.expect("read"), label);
    let err = labels
        .create(&json!({ "code": "a/b c", "text": "again" }))
        .await
        .expect_err("a taken id");
    assert_eq!(status_of(&err), StatusCode::CONFLICT);
}
