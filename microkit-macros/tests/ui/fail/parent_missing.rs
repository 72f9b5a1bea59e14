use microkit::Resource;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/user/cart", parent = "uid")]
struct CartItem {
    #[resource(id)]
    id: u64,
    quantity: u32,
}

fn main() {}
