//! payments: a stand-in for a third-party payment provider. Invoices are created open and
//! paid once.

use std::sync::Arc;

use http::StatusCode;
use microkit::extract::{Path, State};
use microkit::openapi::ResponseKey;
use microkit::resource::store::{Id, StoreError};
use microkit::resource::{Repo, ResourceRoutes, Stored};
use microkit::response::IntoResponse;
use microkit::router::post;
use microkit::{Json, Problem, Resource, Response, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::context::{record_action, Context};

/// An invoice: `open` until paid.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/invoices", actions(create, read, list))]
pub(crate) struct Invoice {
    #[resource(id)]
    pub(crate) id: u64,
    #[resource(validate(range(min = 1)))]
    pub(crate) amount_cents: i64,
    #[serde(default)]
    pub(crate) user_id: Option<u64>,
    #[serde(default = "open")]
    #[resource(read_only)]
    pub(crate) status: String,
}

fn open() -> String {
    "open".to_owned()
}

struct Payments {
    context: Context,
    repo: Repo<Invoice>,
}

pub(crate) fn router(context: Context) -> Router {
    let payments = Arc::new(Payments {
        repo: Repo::new(context.store.clone()),
        context: context.clone(),
    });
    ResourceRoutes::<Invoice>::new(context.store)
        .create_at("/invoices")
        .router()
        .merge(
            Router::new()
                .route(
                    "/invoices/{id}/pay",
                    post(pay).describe(|op| {
                        let invoice = json!({ "$ref": "#/components/schemas/Invoice" });
                        // Invoice ids are the store's: 1 up to the largest i64.
                        let id = json!({ "type": "integer", "format": "int64", "minimum": 1 });
                        op.parameter("path", "id", true, id, Some("the invoice's id"));
                        op.summary("Pays an open invoice")
                            .tag("payments")
                            .operation_id("payInvoice")
                            .response_object(
                                ResponseKey::Status(200),
                                json!({ "description": "the invoice, paid",
                                        "content": { "application/json": { "schema": invoice } } }),
                            )
                            .problem(StatusCode::NOT_FOUND)
                            .problem(StatusCode::CONFLICT)
                            .problem(StatusCode::SERVICE_UNAVAILABLE);
                    }),
                )
                .with_state(payments),
        )
}

async fn pay(State(payments): State<Arc<Payments>>, Path(id): Path<u64>) -> Response {
    let id = Id::Int(id as i64);
    // Compare-and-swap on the version: of two concurrent payments exactly one wins.
    for _ in 0..16 {
        let (mut invoice, version) = match payments.repo.get(None, &id).await {
            Ok(found) => (found.item, found.record.version),
            Err(err) => return Problem::from(err).into_response(),
        };
        if invoice.status == "paid" {
            return Problem::conflict(format!("invoice {id} is already paid")).into_response();
        }
        invoice.status = "paid".to_owned();
        match payments
            .repo
            .replace(None, &id, invoice, Some(version))
            .await
        {
            Ok(Stored { item: paid, .. }) => {
                if let Some(user) = paid.user_id {
                    record_action(&payments.context.client, user, "pay");
                }
                return Json(paid).into_response();
            }
            Err(StoreError::VersionMismatch { .. }) => continue,
            Err(err) => return Problem::from(err).into_response(),
        }
    }
    Problem::new(StatusCode::SERVICE_UNAVAILABLE)
        .with_detail("the invoice is changing too often; try again")
        .into_response()
}
