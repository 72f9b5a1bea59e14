//! payments: a stand-in for a third-party payment provider. Invoices are created open and
//! paid once; an invoice made by a checkout lists what was bought, so that what the cart
//! held is kept once the cart is emptied.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use microkit::auth::Identity;
use microkit::extract::{Path, State};
use microkit::openapi::ResponseKey;
use microkit::resource::schema::FieldSchema;
use microkit::resource::store::{Id, StoreError};
use microkit::resource::{HookContext, Hooks, Repo, ResourceRoutes, Scope, Stored};
use microkit::response::IntoResponse;
use microkit::router::post;
use microkit::{FieldError, Json, Problem, Resource, Response, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::access::scoped_user;
use super::context::{record_action, Context};

/// An invoice: `open` until paid. When it lists its lines, the amount is their total.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/invoices", actions(create, read, list))]
pub(crate) struct Invoice {
    #[resource(id)]
    pub(crate) id: u64,
    #[resource(validate(range(min = 1)))]
    pub(crate) amount_cents: i64,
    #[serde(default)]
    #[resource(filter)]
    pub(crate) user_id: Option<u64>,
    #[serde(default = "open")]
    #[resource(read_only)]
    pub(crate) status: String,
    /// What was bought, as it was priced when the invoice was made.
    #[serde(default)]
    #[resource(validate(length(max = 1000), custom = "check_lines"))]
    pub(crate) lines: Vec<InvoiceLine>,
}

fn open() -> String {
    "open".to_owned()
}

/// One line of an invoice: a product as it was named and priced then, and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InvoiceLine {
    pub(crate) product_id: u64,
    pub(crate) name: String,
    pub(crate) unit_price_cents: i64,
    pub(crate) quantity: i64,
}

impl InvoiceLine {
    /// The line's cost, or `None` when it does not fit an `i64`.
    pub(crate) fn cost(&self) -> Option<i64> {
        self.unit_price_cents.checked_mul(self.quantity)
    }
}

impl FieldSchema for InvoiceLine {
    fn field_schema() -> Value {
        json!({
            "type": "object",
            // What `check_lines` accepts; serde ignores other members of a line.
            "properties": {
                "product_id": { "type": "integer", "minimum": 1, "maximum": u64::MAX },
                "name": { "type": "string", "minLength": 1 },
                "unit_price_cents": { "type": "integer", "minimum": 0, "maximum": i64::MAX },
                "quantity": { "type": "integer", "minimum": 1, "maximum": i64::MAX },
            },
            "required": ["product_id", "name", "unit_price_cents", "quantity"],
        })
    }
}

/// Every line names a product and has a price of at least 0 and a quantity of at least 1.
#[allow(clippy::ptr_arg)] // `custom` checks get the field as it is declared
fn check_lines(lines: &Vec<InvoiceLine>) -> Result<(), String> {
    for (n, line) in lines.iter().enumerate() {
        if line.product_id == 0 || line.name.is_empty() {
            return Err(format!("line {n} needs a product id and a name"));
        }
        if line.unit_price_cents < 0 || line.quantity < 1 {
            return Err(format!(
                "line {n} needs a unit price of at least 0 and a quantity of at least 1"
            ));
        }
    }
    Ok(())
}

/// The sum of the lines' costs, or `None` when it does not fit an `i64`.
pub(crate) fn total(lines: &[InvoiceLine]) -> Option<i64> {
    lines
        .iter()
        .try_fold(0i64, |sum, line| sum.checked_add(line.cost()?))
}

/// Checks what a single field's rules cannot: an invoice that lists lines costs their total.
struct InvoiceHooks {
    scoped: bool,
}

impl Hooks<Invoice> for InvoiceHooks {
    /// With authentication on, a user sees only their own invoices (`access.rs`).
    async fn scope(&self, ctx: &HookContext, scope: &mut Scope) -> Result<(), Problem> {
        if let Some(user) = scoped_user(self.scoped, ctx.headers(), ctx.identity())? {
            scope.require("user_id", user);
        }
        Ok(())
    }

    async fn before_create(&self, _: &HookContext, invoice: &mut Invoice) -> Result<(), Problem> {
        if invoice.lines.is_empty() || total(&invoice.lines) == Some(invoice.amount_cents) {
            return Ok(());
        }
        Err(
            Problem::unprocessable("the amount is not the total of the lines").with_field_errors([
                FieldError::new(
                    "amount_cents",
                    "must be the sum of each line's unit_price_cents times its quantity",
                ),
            ]),
        )
    }
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
        .hooks(InvoiceHooks {
            scoped: context.scoped,
        })
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

async fn pay(
    State(payments): State<Arc<Payments>>,
    Path(id): Path<u64>,
    caller: Option<Identity>,
    headers: HeaderMap,
) -> Response {
    let owner = match scoped_user(payments.context.scoped, &headers, caller.as_ref()) {
        Ok(owner) => owner,
        Err(problem) => return problem.into_response(),
    };
    let id = Id::Int(id as i64);
    // Compare-and-swap on the version: of two concurrent payments exactly one wins.
    for _ in 0..16 {
        let (mut invoice, version) = match payments.repo.get(None, &id).await {
            Ok(found) => (found.item, found.record.version),
            Err(err) => return Problem::from(err).into_response(),
        };
        // Another user's invoice is answered as if it did not exist.
        if owner.is_some_and(|owner| invoice.user_id != Some(owner)) {
            return Problem::from(StoreError::NotFound).into_response();
        }
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
