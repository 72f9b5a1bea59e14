// Text ids chosen by the caller, with the crate path given explicitly.
use microkit::resource::store::IdKind;
use microkit::resource::Resource as _;
use microkit::Resource;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Resource)]
#[serde(rename_all = "camelCase")]
#[resource(path = "/page", collection = "pages", crate = "microkit")]
struct Page {
    #[resource(id)]
    slug: String,
    page_title: String,
}

fn main() {
    assert_eq!(Page::SPEC.id_kind, IdKind::Text);
    assert_eq!(Page::SPEC.id_field, "slug");
    assert_eq!(
        Page::json_schema()["required"],
        serde_json::json!(["slug", "pageTitle"])
    );
}
