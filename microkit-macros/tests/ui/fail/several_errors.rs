// Every mistake is reported at once, each where it is made.
use microkit::Resource;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/product/", default_limit = 500)]
struct Product {
    #[resource(id)]
    id: u64,
    #[resource(read_only)]
    created_at: String,
    #[resource(validate(length(min = 10, max = 1), pattern = "[a-z"))]
    name: String,
    #[resource(soft_delete)]
    deleted: u8,
}

fn main() {}
