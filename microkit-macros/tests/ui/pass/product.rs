// A product with validation rules, a nested type without a schema, and its client.
use microkit::resource::Resource as _;
use microkit::Resource;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Dimensions {
    width_mm: u32,
    height_mm: u32,
}

fn sku_check(sku: &String) -> Result<(), String> {
    if sku.starts_with("SKU-") {
        Ok(())
    } else {
        Err("must start with SKU-".to_owned())
    }
}

/// A product of the catalog.
#[derive(Serialize, Deserialize, Resource)]
#[resource(
    path = "/product",
    list_path = "/products/",
    default_limit = 10,
    max_limit = 50
)]
pub struct Product {
    #[resource(id)]
    pub id: u64,
    #[resource(unique, validate(length(min = 1, max = 100)))]
    pub name: String,
    #[resource(unique, validate(custom = "sku_check", pattern = "^SKU-[0-9]+$"))]
    pub sku: String,
    #[resource(filter)]
    pub category: String,
    #[resource(validate(range(min = 0, max = 1_000_000)))]
    pub price_cents: i64,
    #[resource(validate(range(min = -1.5, max = 2.5)))]
    pub weight: Option<f32>,
    #[resource(validate(email))]
    pub contact: Option<String>,
    #[resource(validate(length(max = 10)))]
    #[serde(default)]
    pub tags: Vec<String>,
    dimensions: Option<Dimensions>,
    #[resource(read_only)]
    pub created_at: Option<String>,
    #[resource(soft_delete)]
    #[serde(default)]
    pub deleted: bool,
}

fn main() {
    assert_eq!(Product::SPEC.path, "/product");
    assert_eq!(
        Product::json_schema()["properties"]["dimensions"],
        serde_json::json!({})
    );
    let client = microkit::client::ServiceClient::new(microkit::discovery::MemoryRegistry::new());
    let _products = Product::client(&client, "catalog");
}
