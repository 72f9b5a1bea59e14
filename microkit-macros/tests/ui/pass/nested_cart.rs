// A resource nested under a parent: its path holds the parent's parameter.
use microkit::resource::Resource as _;
use microkit::Resource;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Resource)]
#[resource(
    path = "/user/{uid}/cart",
    parent = "uid",
    actions(create, read, delete, list)
)]
struct CartItem {
    #[resource(id)]
    id: i64,
    #[resource(filter)]
    product_id: u64,
    #[resource(validate(range(min = 1, max = 99)))]
    quantity: u32,
}

fn main() {
    assert_eq!(CartItem::SPEC.parent_params(), ["uid"]);
    assert_eq!(CartItem::SPEC.collection, "cart_item");
    assert!(!CartItem::SPEC.actions.update);
}
