//! cart: each user's shopping cart, nested under the user, and the checkout that turns it
//! into an invoice (in `checkout.rs`).
//!
//! The generated endpoints do the CRUD; the hooks check what crosses services: the user must
//! exist (404 otherwise), the product must exist and not be deleted (422 otherwise), and a
//! line's product cannot change once added.

use std::sync::Arc;

use http::StatusCode;
use microkit::idempotency::IdempotencyConfig;
use microkit::resource::{HookContext, Hooks, ResourceRoutes, Scope};
use microkit::router::post;
use microkit::{FieldError, Problem, Resource, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::catalog::Product;
use super::checkout::{checkout_cart, Checkouts};
use super::context::Context;
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
    /// Set when the line is added; kept as it is by updates. A product's id: at most i64's
    /// largest, as the catalog's ids are.
    #[serde(default)]
    #[resource(validate(range(max = 9223372036854775807)))]
    pub(crate) product_id: u64,
    #[resource(validate(range(min = 1, max = 1000)))]
    pub(crate) quantity: i64,
}

struct CartHooks {
    context: Context,
    checkouts: Arc<Checkouts>,
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

impl CartHooks {
    /// A line cannot change or go while a checkout bills it (adding one is fine: it stays).
    async fn check_not_billing(&self, ctx: &HookContext) -> Result<(), Problem> {
        match ctx.param("uid").and_then(|uid| uid.parse().ok()) {
            Some(uid) => self.checkouts.check_idle(uid).await,
            None => Ok(()),
        }
    }
}

impl Hooks<CartItem> for CartHooks {
    /// Every action on a cart needs its user: a deleted user's cart is gone too (404).
    async fn scope(&self, ctx: &HookContext, _: &mut Scope) -> Result<(), Problem> {
        self.check_user(ctx).await
    }

    async fn before_create(&self, _: &HookContext, item: &mut CartItem) -> Result<(), Problem> {
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
        ctx: &HookContext,
        current: &CartItem,
        next: &mut CartItem,
    ) -> Result<(), Problem> {
        next.product_id = current.product_id;
        self.check_not_billing(ctx).await
    }

    async fn before_delete(&self, ctx: &HookContext, _: &CartItem) -> Result<(), Problem> {
        self.check_not_billing(ctx).await
    }
}

pub(crate) fn router(context: Context) -> Router {
    let checkouts = Checkouts::new(context.clone());
    // What a stopped process left half done is finished or undone, in the background.
    tokio::spawn(checkouts.clone().recover_all());
    ResourceRoutes::<CartItem>::new(context.store.clone())
        .hooks(CartHooks {
            context,
            checkouts: checkouts.clone(),
        })
        .router()
        .merge(
            Router::new()
                .route(
                    "/user/{uid}/cart/checkout",
                    post(checkout_cart).describe(|op| {
                        op.idempotency_key_header(
                            &IdempotencyConfig::default(),
                            "retrying with the same key answers the same invoice instead of \
                             checking out again",
                        );
                        op.summary("Checks the cart out")
                            .description(
                                "Prices every line at the catalog's current price, opens an \
                                 invoice for the total with payments, listing the lines, and \
                                 removes the lines billed from the cart. One checkout of a \
                                 cart runs at a time: another one meanwhile is a 409.",
                            )
                            .tag("cart")
                            .operation_id("checkoutCart")
                            .json_response::<Value>(StatusCode::CREATED)
                            .problem(StatusCode::BAD_REQUEST)
                            .problem(StatusCode::CONFLICT)
                            .problem(StatusCode::UNPROCESSABLE_ENTITY)
                            .problem(StatusCode::BAD_GATEWAY)
                            .problem(StatusCode::SERVICE_UNAVAILABLE)
                            .problem(StatusCode::GATEWAY_TIMEOUT);
                    }),
                )
                .with_state(checkouts),
        )
}
