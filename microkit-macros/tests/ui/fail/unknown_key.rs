use microkit::Resource;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/product", colection = "products")]
struct Product {
    #[resource(id)]
    id: u64,
    #[resource(uniqe)]
    name: String,
    #[resource(validate(lenght(max = 10)))]
    code: String,
}

fn main() {}
