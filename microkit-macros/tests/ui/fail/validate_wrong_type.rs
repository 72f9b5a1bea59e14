use microkit::Resource;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/product")]
struct Product {
    #[resource(id)]
    id: u64,
    #[resource(validate(length(max = 10), email))]
    stock: u32,
}

fn main() {}
