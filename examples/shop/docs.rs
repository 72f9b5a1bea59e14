//! What each service says about itself in its OpenAPI document, beyond what its handlers'
//! types say: the resources' own operations (generated from `#[derive(Resource)]`), which
//! replace what the router alone can tell of the generic handlers.

use http::Method;
use microkit::openapi::Document;
use microkit::resource::OpenApi;
use serde_json::Value;

use super::cart::CartItem;
use super::catalog::Product;
use super::emails::Email;
use super::payments::Invoice;
use super::stats::LogEntry;
use super::users::User;

/// `document` with the resources of `service` described.
pub(crate) fn document(service: &str, document: Document) -> Document {
    let (resources, description, also_creates_at) = match service {
        "users" => (api(service).resource::<User>(), "Shop users.", None),
        "emails" => (
            api(service).resource::<Email>(),
            "Emails to users, sent at most a few a minute per address.",
            None,
        ),
        "catalog" => (
            api(service).resource::<Product>(),
            "Products for sale.",
            None,
        ),
        "cart" => (
            api(service).resource::<CartItem>(),
            "Each user's cart, and its checkout into an invoice.",
            None,
        ),
        "payments" => (
            api(service).resource::<Invoice>(),
            "Invoices, created open and paid once.",
            Some(("/invoices/", "/invoices")),
        ),
        "stats" => (
            api(service).resource::<LogEntry>(),
            "A log of what users did.",
            Some(("/log/", "/log")),
        ),
        other => unreachable!("unknown service {other}"),
    };
    let resources = resources.document();
    let mut document = document.description(description).merge(&resources);
    // The same create operation, at the collection's URL without its trailing slash.
    if let Some((path, also)) = also_creates_at {
        if let Some(create) = resources.pointer(&format!("/paths/{}/post", escape(path))) {
            let mut create = create.clone();
            if let Some(id) = create.get("operationId").and_then(Value::as_str) {
                create["operationId"] = format!("{id}AtCollection").into();
            }
            document = document.operation(also, &Method::POST, create);
        }
    }
    document
}

fn api(service: &str) -> OpenApi {
    OpenApi::new(service, "1.0.0")
}

/// A path as a JSON pointer token.
fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}
