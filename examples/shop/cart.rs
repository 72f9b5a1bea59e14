//! cart: each user's shopping cart, nested under the user, and the checkout that turns it
//! into an invoice.
//!
//! The generated endpoints do the CRUD; the hooks check what crosses services: the user must
//! exist (404 otherwise), the product must exist and not be deleted (422 otherwise), and a
//! line's product cannot change once added.

use std::sync::Arc;

use http::StatusCode;
use microkit::client::ClientError;
use microkit::extract::{Path, State};
use microkit::resource::{HookContext, Hooks, Repo, Resource as _, ResourceRoutes};
use microkit::response::IntoResponse;
use microkit::router::post;
use microkit::{FieldError, Json, Problem, Resource, Response, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::catalog::Product;
use super::context::{record_action, Context};
use super::users::User;

/// One line of a cart.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(
    path = "/user/{uid}/cart",
    parent = "uid: User",
    actions(create, read, update, delete, list)
)]
pub(crate) struct CartItem {
    #[resource(id)]
    pub(crate) id: u64,
    /// Set when the line is added; kept as it is by updates.
    #[serde(default)]
    pub(crate) product_id: u64,
    #[resource(validate(range(min = 1, max = 1000)))]
    pub(crate) quantity: i64,
}

struct CartHooks {
    context: Context,
}

impl CartHooks {
    async fn check_user(&self, ctx: &HookContext) -> Result<(), Problem> {
        let uid = ctx.param("uid").unwrap_or_default();
        match User::client(&self.context.client, "users").get(uid).await {
            Ok(_) => Ok(()),
            Err(err)
                if err.status().is_some_and(|s| {
                    s == StatusCode::NOT_FOUND || s == StatusCode::BAD_REQUEST
                }) =>
            {
                Err(Problem::not_found(format!("there is no user {uid}")))
            }
            Err(err) => Err(err.to_problem()),
        }
    }
}

impl Hooks<CartItem> for CartHooks {
    async fn before_create(&self, ctx: &HookContext, item: &mut CartItem) -> Result<(), Problem> {
        self.check_user(ctx).await?;
        if item.product_id == 0 {
            return Err(Problem::unprocessable("a cart line needs a product")
                .with_field_errors([FieldError::new("product_id", "is required")]));
        }
        match Product::client(&self.context.client, "catalog")
            .get(item.product_id)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.status() == Some(StatusCode::NOT_FOUND) => Err(Problem::unprocessable(
                "the product is not for sale",
            )
            .with_field_errors([FieldError::new(
                "product_id",
                format!("product {} does not exist or was deleted", item.product_id),
            )])),
            Err(err) => Err(err.to_problem()),
        }
    }

    async fn before_update(
        &self,
        _: &HookContext,
        current: &CartItem,
        next: &mut CartItem,
    ) -> Result<(), Problem> {
        next.product_id = current.product_id;
        Ok(())
    }
}

struct Checkout {
    context: Context,
    repo: Repo<CartItem>,
}

pub(crate) fn router(context: Context) -> Router {
    let checkout = Arc::new(Checkout {
        repo: Repo::new(context.store.clone()),
        context: context.clone(),
    });
    ResourceRoutes::<CartItem>::new(context.store.clone())
        .hooks(CartHooks { context })
        .router()
        .merge(
            Router::new()
                .route(
                    "/user/{uid}/cart/checkout",
                    post(checkout_cart).describe(|op| {
                        op.summary("Checks the cart out")
                            .description(
                                "Prices every line at the catalog's current price, opens an \
                                 invoice for the total with payments, and empties the cart.",
                            )
                            .tag("cart")
                            .operation_id("checkoutCart")
                            .json_response::<Value>(StatusCode::CREATED)
                            .problem(StatusCode::UNPROCESSABLE_ENTITY)
                            .problem(StatusCode::BAD_GATEWAY)
                            .problem(StatusCode::SERVICE_UNAVAILABLE)
                            .problem(StatusCode::GATEWAY_TIMEOUT);
                    }),
                )
                .with_state(checkout),
        )
}

/// The page size used to read a whole cart.
const PAGE: u64 = 100;

async fn checkout_cart(State(checkout): State<Arc<Checkout>>, Path(uid): Path<u64>) -> Response {
    let parent = CartItem::SPEC.parent_key(&[uid.to_string()]);
    let mut lines = Vec::new();
    loop {
        match checkout
            .repo
            .list(parent.as_deref(), Vec::new(), lines.len() as u64, PAGE)
            .await
        {
            Ok((page, total)) => {
                let done = page.is_empty() || lines.len() + page.len() >= total as usize;
                lines.extend(page);
                if done {
                    break;
                }
            }
            Err(err) => return Problem::from(err).into_response(),
        }
    }
    if lines.is_empty() {
        return Problem::unprocessable("the cart is empty").into_response();
    }
    let catalog = Product::client(&checkout.context.client, "catalog");
    let mut amount: i64 = 0;
    for line in &lines {
        let product = match catalog.get(line.product_id).await {
            Ok(product) => product,
            Err(err) if err.status() == Some(StatusCode::NOT_FOUND) => {
                return Problem::unprocessable(format!(
                    "product {} is no longer for sale: remove it from the cart first",
                    line.product_id
                ))
                .into_response();
            }
            Err(err) => return err.into_response(),
        };
        amount = match product
            .price_cents
            .checked_mul(line.quantity)
            .and_then(|cost| amount.checked_add(cost))
        {
            Some(amount) => amount,
            None => return Problem::unprocessable("the cart's total is too large").into_response(),
        };
    }
    let invoice: Result<Value, ClientError> = checkout
        .context
        .client
        .post_json(
            "payments",
            "/invoices",
            &json!({ "amount_cents": amount, "user_id": uid }),
        )
        .await;
    let invoice = match invoice {
        Ok(invoice) => invoice,
        Err(err) => return err.into_response(),
    };
    if let Err(err) = checkout.repo.delete_all(parent.as_deref()).await {
        return Problem::from(err).into_response();
    }
    record_action(&checkout.context.client, uid, "checkout");
    (StatusCode::CREATED, Json(invoice)).into_response()
}
