// UUID ids: any type path ending in `Uuid`.
use microkit::resource::store::IdKind;
use microkit::resource::Resource as _;
use microkit::Resource;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Resource)]
#[resource(path = "/session")]
struct Session {
    #[resource(id)]
    id: uuid::Uuid,
    #[resource(validate(length(min = 1)))]
    user: String,
}

fn main() {
    assert_eq!(Session::SPEC.id_kind, IdKind::Uuid);
}
