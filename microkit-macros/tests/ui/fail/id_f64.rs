use microkit::Resource;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/measure")]
struct Measure {
    #[resource(id)]
    id: f64,
}

fn main() {}
