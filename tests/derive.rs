//! `#[derive(Resource)]`: what `SPEC`, `validate()` and `json_schema()` say about a struct.

use std::collections::HashMap;

use microkit::resource::store::IdKind;
use microkit::resource::Actions;
// The trait (its methods and `SPEC`) and, from the crate root, the derive.
use microkit::resource::Resource as _;
use microkit::{FieldError, Resource};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

mod checks {
    pub(crate) fn no_example_domain(contact: &Option<String>) -> Result<(), String> {
        match contact {
            Some(c) if c.ends_with("@example.com") => {
                Err("must not be an example.com address".to_owned())
            }
            _ => Ok(()),
        }
    }
}

/// A product of the catalog.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[serde(rename_all = "camelCase")]
#[resource(path = "/product", list_path = "/products/", max_limit = 50)]
struct Product {
    #[resource(id)]
    id: u64,
    /// The name shown in the shop.
    #[resource(unique, validate(length(min = 1, max = 20)))]
    name: String,
    #[resource(filter, validate(pattern = "^[a-z-]+$"))]
    category: String,
    #[resource(validate(range(min = 0, max = 100000)))]
    price_cents: i64,
    #[resource(validate(range(min = 0.5, max = 5)))]
    rating: Option<f64>,
    #[resource(validate(email, custom = "checks::no_example_domain"))]
    contact: Option<String>,
    #[resource(validate(length(max = 3)))]
    #[serde(default)]
    tags: Vec<String>,
    #[serde(rename = "attrs")]
    attributes: HashMap<String, String>,
    #[resource(read_only)]
    created_at: Option<String>,
    #[resource(soft_delete)]
    #[serde(default)]
    deleted: bool,
    #[serde(skip)]
    cache: Option<u8>,
}

fn product() -> Product {
    Product {
        id: 1,
        name: "Mug".into(),
        category: "kitchen".into(),
        price_cents: 1200,
        rating: Some(4.5),
        contact: Some("shop@mugs.example".into()),
        tags: vec!["blue".into()],
        attributes: HashMap::new(),
        created_at: None,
        deleted: false,
        cache: None,
    }
}

#[derive(Serialize, Deserialize, Resource)]
#[resource(
    path = "/user/{uid}/cart",
    parent = "uid",
    actions(create, read, delete, list),
    default_limit = 5,
    max_limit = 10
)]
struct CartItem {
    #[resource(id)]
    id: i32,
    #[resource(validate(range(min = 1)))]
    quantity: u32,
}

#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/session", collection = "sessions", crate = "microkit")]
struct Session {
    #[resource(id)]
    id: uuid::Uuid,
}

#[derive(Serialize, Deserialize, Resource)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[resource(path = "/page")]
struct Page {
    #[resource(id)]
    slug: String,
    page_title: String,
    #[serde(skip_serializing, default)]
    secret_note: Option<String>,
}

#[test]
fn spec_lists_what_the_attributes_declare() {
    let spec = Product::SPEC;
    assert_eq!(spec.name, "Product");
    assert_eq!(spec.collection, "product");
    assert_eq!(spec.path, "/product");
    assert_eq!(spec.list_path, Some("/products/"));
    assert_eq!(spec.id_field, "id");
    assert_eq!(spec.id_kind, IdKind::Integer);
    // serde's `rename_all = "camelCase"` applies.
    assert_eq!(spec.read_only, ["createdAt"]);
    assert_eq!(spec.unique, ["name"]);
    assert_eq!(spec.filterable, ["category"]);
    assert_eq!(spec.soft_delete, Some("deleted"));
    assert_eq!(spec.actions, Actions::ALL);
    assert_eq!((spec.default_limit, spec.max_limit), (20, 50));
    assert_eq!(spec.item_pattern(), "/product/{id}");
}

#[test]
fn nested_resources_keep_their_parent_and_actions() {
    let spec = CartItem::SPEC;
    assert_eq!(spec.collection, "cart_item");
    assert_eq!(spec.parent_params(), ["uid"]);
    assert_eq!(spec.list_path(), "/user/{uid}/cart/");
    assert_eq!(
        spec.actions,
        Actions {
            create: true,
            read: true,
            update: false,
            patch: false,
            delete: true,
            list: true,
        }
    );
    assert_eq!((spec.default_limit, spec.max_limit), (5, 10));
}

#[test]
fn id_kinds_follow_the_id_type() {
    assert_eq!(Session::SPEC.id_kind, IdKind::Uuid);
    assert_eq!(Session::SPEC.collection, "sessions");
    assert_eq!(Page::SPEC.id_kind, IdKind::Text);
    assert_eq!(Page::SPEC.id_field, "slug");
}

#[test]
fn a_valid_item_passes() {
    assert_eq!(product().validate(), []);
    assert_eq!(
        Product {
            rating: None,
            contact: None,
            ..product()
        }
        .validate(),
        [],
        "absent options pass"
    );
}

#[test]
fn every_failing_field_is_listed_at_once() {
    let bad = Product {
        name: String::new(),
        category: "Kitchen Stuff".into(),
        price_cents: -1,
        rating: Some(7.0),
        contact: Some("nobody".into()),
        tags: vec!["a".into(), "b".into(), "c".into(), "d".into()],
        ..product()
    };
    assert_eq!(
        bad.validate(),
        [
            FieldError::new("name", "must be at least 1 character long"),
            FieldError::new("category", "must match ^[a-z-]+$"),
            FieldError::new("priceCents", "must be at least 0"),
            FieldError::new("rating", "must be at most 5"),
            FieldError::new("contact", "must be an email address"),
            FieldError::new("tags", "must have at most 3 items"),
        ]
    );
    let custom = Product {
        contact: Some("shop@example.com".into()),
        name: "x".repeat(21),
        ..product()
    };
    assert_eq!(
        custom.validate(),
        [
            FieldError::new("name", "must be at most 20 characters long"),
            FieldError::new("contact", "must not be an example.com address"),
        ]
    );
}

#[test]
fn resources_without_rules_are_always_valid() {
    let page = Page {
        slug: "home".into(),
        page_title: String::new(),
        secret_note: None,
    };
    assert_eq!(page.validate(), []);
    assert!(page.secret_note.is_none());
}

#[test]
fn the_schema_describes_the_json_form() {
    let schema = Product::json_schema();
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["description"], "A product of the catalog.");
    let properties = schema["properties"].as_object().unwrap();
    let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "attrs",
            "category",
            "contact",
            "createdAt",
            "id",
            "name",
            "priceCents",
            "rating",
            "tags"
        ]
    );
    assert_eq!(
        properties["id"],
        json!({ "type": "integer", "format": "uint64", "minimum": 0, "maximum": u64::MAX, "readOnly": true })
    );
    assert_eq!(
        properties["name"],
        json!({
            "type": "string",
            "description": "The name shown in the shop.",
            "minLength": 1,
            "maxLength": 20,
        })
    );
    assert_eq!(properties["category"]["pattern"], "^[a-z-]+$");
    assert_eq!(properties["priceCents"]["minimum"], 0);
    assert_eq!(properties["priceCents"]["maximum"], 100000);
    assert_eq!(
        properties["rating"],
        json!({ "type": ["number", "null"], "format": "double", "minimum": 0.5, "maximum": 5 })
    );
    assert_eq!(
        properties["contact"],
        json!({ "type": ["string", "null"], "format": "email" })
    );
    assert_eq!(
        properties["tags"],
        json!({ "type": "array", "items": { "type": "string" }, "maxItems": 3 })
    );
    assert_eq!(
        properties["attrs"],
        json!({ "type": "object", "additionalProperties": { "type": "string" } })
    );
    assert_eq!(properties["createdAt"]["readOnly"], true);
    // The soft-delete flag is the store's business: not part of the public representation.
    assert!(properties.get("deleted").is_none());
    assert_eq!(
        schema["required"],
        json!(["name", "category", "priceCents", "attrs"])
    );
    assert!(schema.get("additionalProperties").is_none());
}

#[test]
fn the_schema_follows_serde() {
    let schema = Page::json_schema();
    let properties = &schema["properties"];
    // `rename_all = "kebab-case"`; a caller-chosen text id is required, not read-only.
    assert_eq!(properties["slug"], json!({ "type": "string" }));
    assert_eq!(properties["page-title"], json!({ "type": "string" }));
    assert_eq!(properties["secret-note"]["writeOnly"], true);
    assert_eq!(schema["required"], json!(["slug", "page-title"]));
    assert_eq!(schema["additionalProperties"], false);

    let schema = Session::json_schema();
    assert_eq!(
        schema["properties"]["id"],
        json!({ "type": "string", "format": "uuid", "readOnly": true })
    );
    assert!(schema.get("required").is_none());
}

#[test]
fn renamed_fields_are_what_errors_name() {
    let product = product();
    assert!(product.cache.is_none());
    let json: Value = serde_json::to_value(&product).unwrap();
    assert!(json.get("cache").is_none(), "skipped by serde");
    assert!(json.get("priceCents").is_some());
    assert!(json.get("attrs").is_some());
    let schema = Product::json_schema();
    for key in json.as_object().unwrap().keys() {
        if key == "deleted" {
            continue; // the soft-delete flag stays out of the public representation
        }
        assert!(
            schema["properties"].get(key).is_some(),
            "{key} is not in the schema"
        );
    }
}

/// A review of a product: its parent's id kind taken from the parent resource.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/product/{pid}/review", parent = "pid: Product")]
struct Review {
    #[resource(id)]
    id: u64,
    text: String,
}

/// Two parents, their id kinds stated.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/org/{org}/user/{uid}/key", parent = "org, uid: u64")]
struct ApiKey {
    #[resource(id)]
    id: String,
}

#[test]
fn parent_attributes_declare_the_parents_id_kinds() {
    assert_eq!(Review::SPEC.parent_id_kind("pid"), Some(IdKind::Integer));
    assert_eq!(ApiKey::SPEC.parent_id_kind("uid"), Some(IdKind::Integer));
    assert_eq!(ApiKey::SPEC.parent_id_kind("org"), None, "any value");
    assert_eq!(ApiKey::SPEC.fields, ["id"]);
}
