// The input of the pinned expansion (see `product_expansion_is_pinned` in src/lib.rs).

/// A product of the catalog.
#[derive(Serialize, Deserialize, Resource)]
#[serde(rename_all = "camelCase")]
#[resource(path = "/product", list_path = "/products/", max_limit = 50)]
pub struct Product {
    #[resource(id)]
    pub id: u64,
    /// The name shown in the shop.
    #[resource(unique, validate(length(min = 1, max = 100)))]
    pub name: String,
    #[resource(filter, validate(pattern = "^[a-z-]+$"))]
    pub category: String,
    #[resource(validate(range(min = 0, max = 1000000)))]
    pub price_cents: i64,
    #[resource(validate(email, custom = "checks::not_example"))]
    pub contact: Option<String>,
    #[resource(read_only)]
    pub created_at: Option<String>,
    #[resource(soft_delete)]
    #[serde(default)]
    pub deleted: bool,
}
