//! The gateway's route table: which service answers which path, and what stays internal.

use std::sync::Arc;

use http::Method;
use microkit::client::ServiceClient;
use microkit::console::Console;
use microkit::gateway::{Gateway, Network};
use microkit::metrics::{Metrics, MetricsLayer};
use microkit::Router;

use super::access::{Access, OwnUserPaths};

/// The gateway; with `access`, it verifies callers, keeps each user's data theirs and relays
/// the caller to the services (see `access.rs`).
pub(crate) fn router(
    client: ServiceClient,
    metrics: Arc<Metrics>,
    access: Option<&Access>,
) -> Router {
    let mut gateway = Gateway::new(client);
    if let Some(access) = access {
        gateway = gateway.on_forward(access.relay().forward_hook());
    }
    let forwarding = gateway
        .route("/user/", "users")
        .route("/user/{uid}", "users")
        .route("/user/{uid}/cart/", "cart")
        .route("/user/{uid}/cart/{id}", "cart")
        .route("/send_email/", "emails")
        .internal("/emails/")
        .route("/product/", "catalog")
        .route("/product/{id}", "catalog")
        .route("/products/", "catalog")
        .route("/invoices", "payments")
        .route("/invoices/", "payments")
        .route("/invoices/{id}", "payments")
        .route("/invoices/{id}/pay", "payments")
        .route("/log", "stats")
        .internal_method(Method::GET, "/log");
    let services = forwarding.services();
    let forwarding = forwarding.into_router();
    let forwarding = match access {
        Some(access) => forwarding.layer(OwnUserPaths).layer(access.edge()),
        None => forwarding,
    };
    // Outside the access checks: operators reach /metrics and /console from their networks.
    let console = Console::new("gateway", metrics.clone()).services(services);
    forwarding
        .merge(console.operator_router(Network::private()))
        .layer(MetricsLayer::new(metrics))
}
