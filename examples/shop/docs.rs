//! What each service says about itself in its OpenAPI document beyond what its routes say
//! (resources and hand-written routes document their own operations).

use microkit::openapi::Document;

/// `document` with the description of `service`.
pub(crate) fn document(service: &str, document: Document) -> Document {
    let description = match service {
        "users" => "Shop users.",
        "emails" => "Emails to users, sent at most a few a minute per address.",
        "catalog" => "Products for sale.",
        "cart" => "Each user's cart, and its checkout into an invoice.",
        "payments" => "Invoices, created open and paid once.",
        "stats" => "A log of what users did.",
        other => unreachable!("unknown service {other}"),
    };
    document.description(description)
}
