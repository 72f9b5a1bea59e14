use microkit::resource::Resource as _;
use microkit::Resource;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/product")]
struct Product {
    name: String,
}

fn main() {
    // Uses of the type do not add errors of their own.
    let _ = Product::SPEC;
    let _ = Product::json_schema();
}
