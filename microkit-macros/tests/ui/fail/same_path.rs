use microkit::Resource;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/product")]
struct Product {
    #[resource(id)]
    id: u64,
}

#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/product")]
struct Article {
    #[resource(id)]
    id: u64,
}

fn main() {}
