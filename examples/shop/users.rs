//! users: registration. A new user gets a welcome email through the emails service.

use microkit::resource::{HookContext, Hooks, ResourceRoutes};
use microkit::{Resource, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::context::{record_action, Context};

/// A registered user. Emails are unique: registering one twice is a 409.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/user", actions(create, read, update, delete, list))]
pub(crate) struct User {
    #[resource(id)]
    pub(crate) id: u64,
    #[resource(validate(length(min = 1, max = 100)))]
    pub(crate) name: String,
    #[resource(unique, filter, validate(email, length(max = 254)))]
    pub(crate) email: String,
}

struct Welcome {
    context: Context,
}

impl Hooks<User> for Welcome {
    async fn after_create(&self, _: &HookContext, user: &User) {
        let email = json!({
            "to": user.email,
            "subject": "Welcome to the shop",
            "body": format!("Hello {}, your account is ready.", user.name),
        });
        // Registration stands even when the welcome email cannot be sent now.
        if let Err(err) = self
            .context
            .client
            .post_json::<_, serde_json::Value>("emails", "/send_email/", &email)
            .await
        {
            tracing::warn!(error = %err, user = user.id, "the welcome email was not sent");
        }
        record_action(&self.context.client, user.id, "register");
    }
}

pub(crate) fn router(context: Context) -> Router {
    ResourceRoutes::<User>::new(context.store.clone())
        .hooks(Welcome { context })
        .router()
}
