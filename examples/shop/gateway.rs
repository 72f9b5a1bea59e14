//! The gateway's route table: which service answers which path, and what stays internal.

use std::sync::Arc;

use http::Method;
use microkit::client::ServiceClient;
use microkit::gateway::Gateway;
use microkit::metrics::{Metrics, MetricsLayer};
use microkit::router::get;
use microkit::Router;

pub(crate) fn router(client: ServiceClient, metrics: Arc<Metrics>) -> Router {
    let exposed = metrics.clone();
    Gateway::new(client)
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
        .internal_method(Method::GET, "/log")
        .into_router()
        .route(
            "/metrics",
            get(move || {
                let metrics = exposed.clone();
                async move { metrics.response() }
            }),
        )
        .layer(MetricsLayer::new(metrics))
}
