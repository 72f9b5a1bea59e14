use microkit::Resource;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/product")]
struct Product {
    #[resource(id)]
    id: u64,
    #[resource(soft_delete)]
    deleted_at: Option<String>,
}

fn main() {}
