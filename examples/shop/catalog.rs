//! catalog: products. Deleting one marks it deleted: it is gone from reads and lists, and the
//! cart refuses it, but orders that named it keep their meaning.

use microkit::resource::ResourceRoutes;
use microkit::{Resource, Router};
use serde::{Deserialize, Serialize};

use super::context::Context;

/// A product for sale.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/product", list_path = "/products/")]
pub(crate) struct Product {
    #[resource(id)]
    pub(crate) id: u64,
    #[resource(validate(length(min = 1, max = 200)))]
    pub(crate) name: String,
    #[resource(validate(range(min = 0)))]
    pub(crate) price_cents: i64,
    #[serde(default)]
    #[resource(validate(length(max = 10000)))]
    pub(crate) description: Option<String>,
    #[serde(default)]
    #[resource(soft_delete)]
    pub(crate) deleted: bool,
}

pub(crate) fn router(context: Context) -> Router {
    ResourceRoutes::<Product>::new(context.store).router()
}
