//! One conformance suite for every resource store: each check runs against `MemoryStore`,
//! `SqliteStore` (a fresh file in a temp dir) and `PostgresStore` (a fresh database on the
//! server named by `MICROKIT_TEST_POSTGRES`, dropped afterwards).
//!
//! Without a reachable PostgreSQL server the PostgreSQL tests are skipped with a message,
//! unless `CI=true` or `MICROKIT_REQUIRE_SERVICES=1`, where they fail.

use microkit_test_support as support;

use std::sync::Arc;

use microkit::resource::store::postgres::PostgresStore;
use microkit::resource::store::sqlite::SqliteStore;
use microkit::resource::store::{Collection, Id, IdKind, ListQuery, Record, Store, StoreError};
use serde_json::{json, Map, Value};

type Data = Map<String, Value>;

fn data(value: Value) -> Data {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn query(parent: Option<&str>, offset: u64, limit: u64) -> ListQuery {
    ListQuery {
        parent: parent.map(str::to_owned),
        filters: Vec::new(),
        offset,
        limit,
    }
}

fn filtered(filters: &[(&str, Value)]) -> ListQuery {
    ListQuery {
        filters: filters
            .iter()
            .map(|(field, value)| ((*field).to_owned(), value.clone()))
            .collect(),
        ..ListQuery::default()
    }
}

fn ids(records: &[Record]) -> Vec<Id> {
    records.iter().map(|r| r.id.clone()).collect()
}

#[track_caller]
fn assert_duplicate(result: Result<impl std::fmt::Debug, StoreError>, field: &str) {
    match result {
        Err(StoreError::Duplicate { field: f }) if f == field => {}
        other => panic!("expected Duplicate {{ field: {field:?} }}, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found(result: Result<impl std::fmt::Debug, StoreError>) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[track_caller]
fn assert_mismatch(result: Result<impl std::fmt::Debug, StoreError>, current: u64) {
    match result {
        Err(StoreError::VersionMismatch { current: c }) if c == current => {}
        other => panic!("expected VersionMismatch {{ current: {current} }}, got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid_id(result: Result<impl std::fmt::Debug, StoreError>) {
    match result {
        Err(StoreError::InvalidId(_)) => {}
        other => panic!("expected InvalidId, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The checks: each gets a fresh, empty store.
// ---------------------------------------------------------------------------------------------

async fn round_trip(store: Arc<dyn Store>) {
    let c = Collection::new("items");
    store.prepare(&c).await.unwrap();
    store.prepare(&c).await.unwrap();
    let created = store
        .create(
            &c,
            None,
            None,
            data(json!({"name": "mug", "tags": ["a", "b"], "price": 1.5})),
        )
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.parent, None);
    assert_eq!(created.data["name"], "mug");
    let got = store.get(&c, None, &created.id).await.unwrap();
    assert_eq!(got, created);

    let replaced = store
        .replace(&c, None, &created.id, data(json!({"name": "cup"})), None)
        .await
        .unwrap();
    assert_eq!(replaced.version, 2);
    assert_eq!(replaced.id, created.id);
    let got = store.get(&c, None, &created.id).await.unwrap();
    assert_eq!(
        *got.data,
        data(json!({"name": "cup"})),
        "a replace replaces everything"
    );
    assert_eq!(got.version, 2);

    store.delete(&c, None, &created.id, None).await.unwrap();
    assert_not_found(store.get(&c, None, &created.id).await);
    assert_not_found(store.delete(&c, None, &created.id, None).await);
    assert_not_found(
        store
            .replace(&c, None, &created.id, Data::new(), None)
            .await,
    );
    assert_not_found(store.get(&c, None, &Id::Int(999)).await);
}

async fn integer_ids_increase_and_are_never_reused(store: Arc<dyn Store>) {
    for c in [
        Collection::new("hard"),
        Collection::new("soft").soft_delete(true),
    ] {
        let mut last = 0;
        for _ in 0..3 {
            let r = store.create(&c, None, None, Data::new()).await.unwrap();
            let n = r.id.as_int().unwrap();
            assert!(n > last, "{n} after {last}");
            last = n;
        }
        store.delete(&c, None, &Id::Int(last), None).await.unwrap();
        let r = store.create(&c, None, None, Data::new()).await.unwrap();
        assert!(r.id.as_int().unwrap() > last, "id {} reused", r.id);
        store.delete_all(&c, None).await.unwrap();
        let after = store.create(&c, None, None, Data::new()).await.unwrap();
        assert!(after.id > r.id);
    }
}

async fn uuid_ids(store: Arc<dyn Store>) {
    let c = Collection::new("tokens").id_kind(IdKind::Uuid);
    let generated = store.create(&c, None, None, Data::new()).await.unwrap();
    let text = generated.id.as_str().unwrap();
    assert_eq!(Id::parse(IdKind::Uuid, text), Some(generated.id.clone()));
    let other = store.create(&c, None, None, Data::new()).await.unwrap();
    assert_ne!(other.id, generated.id);

    let given = store
        .create(
            &c,
            None,
            Some(Id::from("67E55044-10B1-426F-9247-BB680E5FE0C8")),
            Data::new(),
        )
        .await
        .unwrap();
    assert_eq!(given.id, Id::from("67e55044-10b1-426f-9247-bb680e5fe0c8"));
    assert_eq!(store.get(&c, None, &given.id).await.unwrap(), given);
    assert_duplicate(
        store
            .create(&c, None, Some(given.id.clone()), Data::new())
            .await,
        "id",
    );
    assert_invalid_id(
        store
            .create(&c, None, Some(Id::from("nope")), Data::new())
            .await,
    );
    assert_invalid_id(store.get(&c, None, &Id::from("nope")).await);
}

async fn text_ids(store: Arc<dyn Store>) {
    let c = Collection::new("pages").id_kind(IdKind::Text);
    assert_invalid_id(store.create(&c, None, None, Data::new()).await);
    for slug in ["b", "a", "é", "B", "aa"] {
        let r = store
            .create(&c, None, Some(Id::from(slug)), data(json!({"slug": slug})))
            .await
            .unwrap();
        assert_eq!(r.id, Id::from(slug));
        assert_eq!(r.version, 1);
    }
    assert_duplicate(
        store
            .create(&c, None, Some(Id::from("a")), Data::new())
            .await,
        "id",
    );
    assert_eq!(
        store.get(&c, None, &Id::from("a")).await.unwrap().data["slug"],
        "a"
    );
    // Ascending by UTF-8 bytes in every backend.
    let page = store.list(&c, &ListQuery::default()).await.unwrap();
    let expected: Vec<Id> = ["B", "a", "aa", "b", "é"]
        .into_iter()
        .map(Id::from)
        .collect();
    assert_eq!(ids(&page.items), expected);
    // A hard-deleted text id can be created again, from version 1.
    store.delete(&c, None, &Id::from("a"), None).await.unwrap();
    let again = store
        .create(&c, None, Some(Id::from("a")), Data::new())
        .await
        .unwrap();
    assert_eq!(again.version, 1);
}

async fn versions_and_preconditions(store: Arc<dyn Store>) {
    let c = Collection::new("docs");
    let r = store
        .create(&c, None, None, data(json!({"n": 1})))
        .await
        .unwrap();
    let r2 = store
        .replace(&c, None, &r.id, data(json!({"n": 2})), Some(1))
        .await
        .unwrap();
    assert_eq!(r2.version, 2);
    assert_mismatch(
        store
            .replace(&c, None, &r.id, data(json!({"n": 3})), Some(1))
            .await,
        2,
    );
    assert_eq!(
        store.get(&c, None, &r.id).await.unwrap().data["n"],
        2,
        "a failed replace changes nothing"
    );
    assert_mismatch(store.delete(&c, None, &r.id, Some(1)).await, 2);
    assert_mismatch(store.delete(&c, None, &r.id, Some(7)).await, 2);
    assert!(
        store.get(&c, None, &r.id).await.is_ok(),
        "a failed delete changes nothing"
    );
    let r3 = store
        .replace(&c, None, &r.id, data(json!({"n": 3})), None)
        .await
        .unwrap();
    assert_eq!(r3.version, 3);
    store.delete(&c, None, &r.id, Some(3)).await.unwrap();
    assert_not_found(store.get(&c, None, &r.id).await);
    // A missing record is NotFound whatever the precondition says.
    assert_not_found(store.delete(&c, None, &r.id, Some(3)).await);
    assert_not_found(store.replace(&c, None, &r.id, Data::new(), Some(3)).await);
}

async fn unique_violations_on_create_change_nothing(store: Arc<dyn Store>) {
    let c = Collection::new("products").unique("sku").unique("ean");
    let a = store
        .create(&c, None, None, data(json!({"sku": "A-1", "ean": 1})))
        .await
        .unwrap();
    assert_duplicate(
        store
            .create(&c, None, None, data(json!({"sku": "A-1", "ean": 2})))
            .await,
        "sku",
    );
    assert_duplicate(
        store
            .create(&c, None, None, data(json!({"sku": "B-1", "ean": 1})))
            .await,
        "ean",
    );
    assert_duplicate(
        store
            .create(&c, Some("uid=9"), None, data(json!({"sku": "A-1"})))
            .await,
        "sku",
    );
    let page = store.list(&c, &ListQuery::default()).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(ids(&page.items), vec![a.id]);
    // Missing and null values never conflict; other values of the same type do not either.
    for value in [
        json!({}),
        json!({}),
        json!({"sku": null}),
        json!({"sku": null}),
        json!({"sku": "a-1"}),
    ] {
        store.create(&c, None, None, data(value)).await.unwrap();
    }
    // Numbers compare by value.
    assert_duplicate(
        store
            .create(&c, None, None, data(json!({"ean": 1.0})))
            .await,
        "ean",
    );
    assert_eq!(
        store.list(&c, &ListQuery::default()).await.unwrap().total,
        6
    );
}

async fn unique_violations_on_replace_change_nothing(store: Arc<dyn Store>) {
    let c = Collection::new("users").unique("email");
    let a = store
        .create(&c, None, None, data(json!({"email": "a@x"})))
        .await
        .unwrap();
    let b = store
        .create(&c, None, None, data(json!({"email": "b@x"})))
        .await
        .unwrap();
    assert_duplicate(
        store
            .replace(
                &c,
                None,
                &b.id,
                data(json!({"email": "a@x", "name": "B"})),
                None,
            )
            .await,
        "email",
    );
    assert_eq!(
        store.get(&c, None, &b.id).await.unwrap(),
        b,
        "a failed replace changes nothing"
    );
    // Keeping one's own value is no conflict.
    let a2 = store
        .replace(
            &c,
            None,
            &a.id,
            data(json!({"email": "a@x", "name": "A"})),
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!(a2.version, 2);
    // A value freed by a replace can be taken.
    store
        .replace(&c, None, &a.id, data(json!({"email": "c@x"})), None)
        .await
        .unwrap();
    store
        .replace(&c, None, &b.id, data(json!({"email": "a@x"})), None)
        .await
        .unwrap();
    let freed = store
        .create(&c, None, None, data(json!({"email": "b@x"})))
        .await
        .unwrap();
    assert_eq!(freed.version, 1);
    // A value freed by a delete too.
    store.delete(&c, None, &b.id, None).await.unwrap();
    store
        .create(&c, None, None, data(json!({"email": "a@x"})))
        .await
        .unwrap();
}

async fn soft_delete(store: Arc<dyn Store>) {
    let c = Collection::new("accounts")
        .id_kind(IdKind::Text)
        .unique("email")
        .soft_delete(true);
    let alice = store
        .create(
            &c,
            None,
            Some(Id::from("alice")),
            data(json!({"email": "a@x"})),
        )
        .await
        .unwrap();
    store
        .create(
            &c,
            None,
            Some(Id::from("bob")),
            data(json!({"email": "b@x"})),
        )
        .await
        .unwrap();
    store.delete(&c, None, &alice.id, Some(1)).await.unwrap();

    assert_not_found(store.get(&c, None, &alice.id).await);
    assert_not_found(store.replace(&c, None, &alice.id, Data::new(), None).await);
    assert_not_found(store.delete(&c, None, &alice.id, None).await);
    let page = store.list(&c, &ListQuery::default()).await.unwrap();
    assert_eq!((ids(&page.items), page.total), (vec![Id::from("bob")], 1));

    // Its unique value is free, and so is its id; the new record starts above the old one.
    let carol = store
        .create(
            &c,
            None,
            Some(Id::from("carol")),
            data(json!({"email": "a@x"})),
        )
        .await
        .unwrap();
    assert_eq!(carol.version, 1);
    store.delete(&c, None, &carol.id, None).await.unwrap();
    let again = store
        .create(
            &c,
            None,
            Some(Id::from("alice")),
            data(json!({"email": "a@x", "n": 2})),
        )
        .await
        .unwrap();
    assert_eq!(again.version, 3, "created, deleted, created again");
    assert_eq!(store.get(&c, None, &again.id).await.unwrap(), again);

    assert_eq!(store.delete_all(&c, None).await.unwrap(), 2);
    assert_eq!(
        store.list(&c, &ListQuery::default()).await.unwrap().total,
        0
    );
    assert_eq!(store.delete_all(&c, None).await.unwrap(), 0);
    store
        .create(
            &c,
            None,
            Some(Id::from("dave")),
            data(json!({"email": "b@x"})),
        )
        .await
        .unwrap();
}

async fn parents_isolate_records(store: Arc<dyn Store>) {
    let c = Collection::new("cart_items");
    let one = Some("uid=1");
    let two = Some("uid=2");
    let a = store
        .create(&c, one, None, data(json!({"sku": "a"})))
        .await
        .unwrap();
    assert_eq!(a.parent.as_deref(), one);
    let b = store
        .create(&c, two, None, data(json!({"sku": "b"})))
        .await
        .unwrap();
    let top = store
        .create(&c, None, None, data(json!({"sku": "c"})))
        .await
        .unwrap();

    assert_eq!(store.get(&c, one, &a.id).await.unwrap(), a);
    assert_not_found(store.get(&c, two, &a.id).await);
    assert_not_found(store.get(&c, None, &a.id).await);
    assert_not_found(store.get(&c, one, &top.id).await);
    assert_not_found(store.replace(&c, two, &a.id, Data::new(), None).await);
    assert_not_found(store.delete(&c, two, &a.id, None).await);
    assert_eq!(
        store.get(&c, one, &a.id).await.unwrap(),
        a,
        "untouched by the other parent"
    );

    let page = store.list(&c, &query(one, 0, 100)).await.unwrap();
    assert_eq!((ids(&page.items), page.total), (vec![a.id.clone()], 1));
    let page = store.list(&c, &query(None, 0, 100)).await.unwrap();
    assert_eq!((ids(&page.items), page.total), (vec![top.id.clone()], 1));

    store.create(&c, one, None, Data::new()).await.unwrap();
    assert_eq!(store.delete_all(&c, one).await.unwrap(), 2);
    assert_eq!(store.list(&c, &query(one, 0, 100)).await.unwrap().total, 0);
    assert_eq!(store.get(&c, two, &b.id).await.unwrap(), b);
    assert_eq!(store.get(&c, None, &top.id).await.unwrap(), top);
}

async fn list_orders_pages_and_filters(store: Arc<dyn Store>) {
    let c = Collection::new("shirts")
        .filterable("color")
        .filterable("size")
        .filterable("sale")
        .filterable("note");
    let mut all = Vec::new();
    for i in 0..10 {
        let color = if i % 2 == 0 { "red" } else { "blue" };
        let mut d = data(json!({"color": color, "size": i % 3, "sale": i < 4}));
        if i % 4 == 0 {
            d.insert("note".into(), json!("x"));
        } else if i % 4 == 1 {
            d.insert("note".into(), Value::Null);
        }
        all.push(store.create(&c, None, None, d).await.unwrap().id);
    }
    let page = store.list(&c, &ListQuery::default()).await.unwrap();
    assert_eq!((ids(&page.items), page.total), (all.clone(), 10));

    let page = store.list(&c, &query(None, 2, 3)).await.unwrap();
    assert_eq!((ids(&page.items), page.total), (all[2..5].to_vec(), 10));
    let page = store.list(&c, &query(None, 8, 5)).await.unwrap();
    assert_eq!((ids(&page.items), page.total), (all[8..].to_vec(), 10));
    let page = store.list(&c, &query(None, 50, 5)).await.unwrap();
    assert_eq!((page.items.len(), page.total), (0, 10));
    let page = store.list(&c, &query(None, 0, 0)).await.unwrap();
    assert_eq!((page.items.len(), page.total), (0, 10));

    let page = store
        .list(&c, &filtered(&[("color", json!("red"))]))
        .await
        .unwrap();
    assert_eq!(page.total, 5);
    assert!(page.items.iter().all(|r| r.data["color"] == "red"));
    let page = store
        .list(
            &c,
            &filtered(&[("color", json!("red")), ("size", json!(0))]),
        )
        .await
        .unwrap();
    assert_eq!(ids(&page.items), [all[0].clone(), all[6].clone()]);
    let page = store
        .list(&c, &filtered(&[("size", json!(2.0))]))
        .await
        .unwrap();
    assert_eq!(page.total, 3, "numbers compare by value");
    let page = store
        .list(&c, &filtered(&[("sale", json!(true))]))
        .await
        .unwrap();
    assert_eq!(ids(&page.items), all[..4].to_vec());
    let page = store
        .list(&c, &filtered(&[("sale", json!(false))]))
        .await
        .unwrap();
    assert_eq!(page.total, 6);
    let page = store
        .list(&c, &filtered(&[("note", Value::Null)]))
        .await
        .unwrap();
    assert_eq!(page.total, 7, "null matches null and missing");
    let page = store
        .list(&c, &filtered(&[("note", json!("x"))]))
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    let mut q = filtered(&[("color", json!("blue"))]);
    q.offset = 1;
    q.limit = 2;
    let page = store.list(&c, &q).await.unwrap();
    assert_eq!(
        (ids(&page.items), page.total),
        (vec![all[3].clone(), all[5].clone()], 5)
    );
    let page = store
        .list(&c, &filtered(&[("color", json!("red' OR '1'='1"))]))
        .await
        .unwrap();
    assert_eq!(page.total, 0);

    for bad in [
        ("name", json!("x")),
        ("color", json!(["red"])),
        ("color", json!({"a": 1})),
    ] {
        match store.list(&c, &filtered(std::slice::from_ref(&bad))).await {
            Err(StoreError::InvalidFilter(_)) => {}
            other => panic!("expected InvalidFilter for {bad:?}, got {other:?}"),
        }
    }
}

async fn delete_all_counts(store: Arc<dyn Store>) {
    let c = Collection::new("lines");
    assert_eq!(store.delete_all(&c, Some("cart=1")).await.unwrap(), 0);
    for _ in 0..5 {
        store
            .create(&c, Some("cart=1"), None, Data::new())
            .await
            .unwrap();
    }
    store
        .create(&c, Some("cart=2"), None, Data::new())
        .await
        .unwrap();
    assert_eq!(store.delete_all(&c, Some("cart=1")).await.unwrap(), 5);
    assert_eq!(store.delete_all(&c, Some("cart=1")).await.unwrap(), 0);
    assert_eq!(
        store
            .list(&c, &query(Some("cart=2"), 0, 10))
            .await
            .unwrap()
            .total,
        1
    );
}

async fn bad_ids(store: Arc<dyn Store>) {
    let ints = Collection::new("ints");
    let texts = Collection::new("texts").id_kind(IdKind::Text);
    assert_invalid_id(
        store
            .create(&ints, None, Some(Id::Int(5)), Data::new())
            .await,
    );
    assert_invalid_id(store.get(&ints, None, &Id::from("5")).await);
    assert_invalid_id(store.get(&ints, None, &Id::Int(0)).await);
    assert_invalid_id(store.get(&ints, None, &Id::Int(-3)).await);
    assert_invalid_id(
        store
            .replace(&ints, None, &Id::from("x"), Data::new(), None)
            .await,
    );
    assert_invalid_id(store.delete(&ints, None, &Id::from("x"), None).await);
    assert_invalid_id(store.get(&texts, None, &Id::Int(1)).await);
    assert_invalid_id(
        store
            .create(&texts, None, Some(Id::from("")), Data::new())
            .await,
    );
    assert_invalid_id(
        store
            .create(&texts, None, Some(Id::Int(1)), Data::new())
            .await,
    );
    assert_eq!(
        store
            .list(&ints, &ListQuery::default())
            .await
            .unwrap()
            .total,
        0
    );
}

/// Creates `count` records at once, `{field: i}` for each `i`, spread over `stores` in turn;
/// returns the distinct ids they got, sorted.
async fn create_concurrently(
    stores: &[Arc<dyn Store>],
    c: &Collection,
    field: &str,
    count: usize,
) -> Vec<Id> {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let (store, c) = (stores[i % stores.len()].clone(), c.clone());
            let record = data(json!({ field: i }));
            tokio::spawn(async move { store.create(&c, None, None, record).await.unwrap().id })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        created.push(task.await.unwrap());
    }
    created.sort();
    created.dedup();
    created
}

async fn concurrent_writes_lose_nothing(store: Arc<dyn Store>) {
    let c = Collection::new("events").unique("key");
    store.prepare(&c).await.unwrap();
    let created = create_concurrently(std::slice::from_ref(&store), &c, "key", 40).await;
    assert_eq!(created.len(), 40, "distinct ids");
    let page = store.list(&c, &ListQuery::default()).await.unwrap();
    assert_eq!((ids(&page.items), page.total), (created.clone(), 40));

    // Racing creates of one unique value: exactly one wins.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (store, c) = (store.clone(), c.clone());
            tokio::spawn(async move {
                store
                    .create(&c, None, None, data(json!({"key": "same"})))
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Duplicate { field }) => assert_eq!(field, "key"),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1);

    // Racing conditional replaces of one version: exactly one wins, the others see 412.
    let id = created[0].clone();
    let key = store.get(&c, None, &id).await.unwrap().data["key"].clone();
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let (store, c, id) = (store.clone(), c.clone(), id.clone());
            let new = data(json!({"key": key, "by": i}));
            tokio::spawn(async move { store.replace(&c, None, &id, new, Some(1)).await })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(record) => {
                won += 1;
                assert_eq!(record.version, 2);
            }
            Err(StoreError::VersionMismatch { current }) => assert_eq!(current, 2),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1);
}

async fn concurrent_prepares(store: Arc<dyn Store>) {
    let c = Collection::new("fresh").unique("a").filterable("b");
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (store, c) = (store.clone(), c.clone());
            tokio::spawn(async move { store.prepare(&c).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // A collection gaining a unique field later gets its index.
    let c = c.unique("b");
    store
        .create(&c, None, None, data(json!({"b": 1})))
        .await
        .unwrap();
    assert_duplicate(
        store.create(&c, None, None, data(json!({"b": 1}))).await,
        "b",
    );
}

// ---------------------------------------------------------------------------------------------
// The backends.
// ---------------------------------------------------------------------------------------------

support::on_every_store!(
    "conformance";
    round_trip,
    integer_ids_increase_and_are_never_reused,
    uuid_ids,
    text_ids,
    versions_and_preconditions,
    unique_violations_on_create_change_nothing,
    unique_violations_on_replace_change_nothing,
    soft_delete,
    parents_isolate_records,
    list_orders_pages_and_filters,
    delete_all_counts,
    bad_ids,
    concurrent_writes_lose_nothing,
    concurrent_prepares,
);

// ---------------------------------------------------------------------------------------------
// Backend-specific checks.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durable.db");
    let c = Collection::new("notes").unique("title").soft_delete(true);
    let (kept, gone) = {
        let store = SqliteStore::open(&path).unwrap();
        let kept = store
            .create(&c, None, None, data(json!({"title": "keep"})))
            .await
            .unwrap();
        let gone = store
            .create(&c, None, None, data(json!({"title": "drop"})))
            .await
            .unwrap();
        store.delete(&c, None, &gone.id, None).await.unwrap();
        (kept, gone)
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get(&c, None, &kept.id).await.unwrap(), kept);
    assert_not_found(store.get(&c, None, &gone.id).await);
    assert_duplicate(
        store
            .create(&c, None, None, data(json!({"title": "keep"})))
            .await,
        "title",
    );
    let next = store.create(&c, None, None, Data::new()).await.unwrap();
    assert!(next.id > gone.id, "ids are not reused after reopening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_stores_share_one_file() {
    // Two stores on one file stand for two replicas of a service on one machine.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let stores: Vec<Arc<dyn Store>> = (0..2)
        .map(|_| Arc::new(SqliteStore::open(&path).unwrap()) as Arc<dyn Store>)
        .collect();
    let c = Collection::new("orders").unique("number");
    let created = create_concurrently(&stores, &c, "number", 30).await;
    assert_eq!(created.len(), 30);
    for store in &stores {
        assert_eq!(
            store.list(&c, &ListQuery::default()).await.unwrap().total,
            30
        );
    }
    assert_duplicate(
        stores[0]
            .create(&c, None, None, data(json!({"number": 3})))
            .await,
        "number",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stores_prepare_concurrently() {
    // Several stores (standing for several processes) preparing one collection at once.
    support::database::with_postgres_database("conformance", |url| async move {
        let mut stores = Vec::new();
        for _ in 0..3 {
            stores.push(Arc::new(
                PostgresStore::connect_with(&url, 2).await.unwrap(),
            ));
        }
        let c = Collection::new("shared").unique("code").filterable("kind");
        let tasks: Vec<_> = stores
            .iter()
            .map(|store| {
                let (store, c) = (store.clone(), c.clone());
                tokio::spawn(async move { store.prepare(&c).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        stores[0]
            .create(&c, None, None, data(json!({"code": "x"})))
            .await
            .unwrap();
        assert_duplicate(
            stores[1]
                .create(&c, None, None, data(json!({"code": "x"})))
                .await,
            "code",
        );
    })
    .await;
}
