//! emails: notifications to registered users, limited per recipient per minute.
//!
//! The limit is a sliding window kept in the service's store, not in memory, so every replica
//! (and every process sharing the database) enforces the same one; updates are
//! compare-and-swap on the record's version, so concurrent sends cannot both take the last
//! slot.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::RETRY_AFTER;
use http::{HeaderValue, StatusCode};
use microkit::extract::State;
use microkit::gateway::AllowNetworksLayer;
use microkit::openapi::ResponseKey;
use microkit::resource::store::{Collection, Id, IdKind, StoreError};
use microkit::resource::{Repo, ResourceRoutes};
use microkit::response::IntoResponse;
use microkit::router::post;
use microkit::{FieldError, Json, Problem, Resource, Response, Router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::context::Context;
use super::users::User;

/// An email as sent.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/send_email", list_path = "/emails/", actions(list))]
pub(crate) struct Email {
    #[resource(id)]
    pub(crate) id: u64,
    #[resource(filter)]
    pub(crate) to: String,
    pub(crate) subject: String,
    pub(crate) body: String,
    /// When it was accepted, in RFC 3339.
    #[serde(default)]
    #[resource(read_only)]
    pub(crate) sent_at: Option<String>,
}

/// What a client asks to send.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SendEmail {
    to: String,
    subject: String,
    body: String,
}

struct Emails {
    context: Context,
    repo: Repo<Email>,
    quotas: Collection,
}

const WINDOW: Duration = Duration::from_secs(60);

pub(crate) fn router(context: Context) -> Router {
    let state = Arc::new(Emails {
        repo: Repo::new(context.store.clone()),
        quotas: Collection::new("email_quota").id_kind(IdKind::Text),
        context: context.clone(),
    });
    // The list is for other services and operators: only callers on the service's own
    // networks, and the gateway refuses it at the edge.
    let list = ResourceRoutes::<Email>::new(context.store)
        .router()
        .route_layer(AllowNetworksLayer::private());
    Router::new()
        .route(
            "/send_email/",
            post(send).describe(|op| {
                let email = json!({ "$ref": "#/components/schemas/Email" });
                op.summary("Sends an email to a registered user")
                    .tag("emails")
                    .operation_id("sendEmail")
                    .response_object(
                        ResponseKey::Status(202),
                        json!({ "description": "accepted for delivery",
                                "content": { "application/json": { "schema": email } } }),
                    )
                    .problem(StatusCode::TOO_MANY_REQUESTS)
                    .problem_header(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Retry-After",
                        "seconds until the address may be sent to again",
                        json!({ "type": "string", "pattern": "^[0-9]+$" }),
                    )
                    .problem(StatusCode::BAD_GATEWAY)
                    .problem(StatusCode::SERVICE_UNAVAILABLE)
                    .problem(StatusCode::GATEWAY_TIMEOUT);
            }),
        )
        .with_state(state)
        .merge(list)
}

async fn send(State(emails): State<Arc<Emails>>, Json(request): Json<SendEmail>) -> Response {
    let mut errors = Vec::new();
    if !looks_like_email(&request.to) {
        errors.push(FieldError::new("to", "must be an email address"));
    }
    if request.subject.trim().is_empty() || request.subject.chars().count() > 200 {
        errors.push(FieldError::new(
            "subject",
            "must be 1 to 200 characters long",
        ));
    }
    if request.body.chars().count() > 100_000 {
        errors.push(FieldError::new(
            "body",
            "must be at most 100000 characters long",
        ));
    }
    if !errors.is_empty() {
        return Problem::unprocessable("the email is not valid")
            .with_field_errors(errors)
            .into_response();
    }
    let users = User::client(&emails.context.client, "users");
    match users.list(&[("email", &request.to)], 0, 1).await {
        Ok(page) if page.total > 0 => {}
        Ok(_) => {
            return Problem::unprocessable("emails go to registered users only")
                .with_field_errors([FieldError::new(
                    "to",
                    "is not the email of a registered user",
                )])
                .into_response();
        }
        Err(err) => return err.into_response(),
    }
    if let Err(response) = emails.take_slot(&request.to).await {
        return response;
    }
    let email = Email {
        id: 0,
        to: request.to,
        subject: request.subject,
        body: request.body,
        sent_at: Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string()),
    };
    match emails.repo.create(None, email).await {
        Ok(sent) => (StatusCode::ACCEPTED, Json(sent.item)).into_response(),
        Err(err) => Problem::from(err).into_response(),
    }
}

fn looks_like_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !text.contains(char::is_whitespace)
        }
        None => false,
    }
}

impl Emails {
    /// Takes one of the recipient's slots in the sliding window, or answers 429 with the
    /// seconds until the oldest send leaves the window.
    async fn take_slot(&self, to: &str) -> Result<(), Response> {
        let id = Id::Text(to.to_lowercase());
        let store = self.context.store.as_ref();
        for _ in 0..32 {
            let now = unix_millis();
            let horizon = now.saturating_sub(WINDOW.as_millis() as u64);
            let outcome = match store.get(&self.quotas, None, &id).await {
                Ok(record) => {
                    let mut sent: Vec<u64> = record.data["sent"]
                        .as_array()
                        .map(|times| {
                            times
                                .iter()
                                .filter_map(Value::as_u64)
                                .filter(|t| *t > horizon)
                                .collect()
                        })
                        .unwrap_or_default();
                    if sent.len() >= self.context.email_rate as usize {
                        let oldest = sent.iter().min().copied().unwrap_or(now);
                        let wait = (oldest + WINDOW.as_millis() as u64)
                            .saturating_sub(now)
                            .div_ceil(1000)
                            .max(1);
                        return Err(too_many(to, wait));
                    }
                    sent.push(now);
                    store
                        .replace(&self.quotas, None, &id, quota(&sent), Some(record.version))
                        .await
                        .map(drop)
                }
                Err(StoreError::NotFound) => store
                    .create(&self.quotas, None, Some(id.clone()), quota(&[now]))
                    .await
                    .map(drop),
                Err(err) => Err(err),
            };
            match outcome {
                Ok(()) => return Ok(()),
                // Another send got there first: read again and retry.
                Err(StoreError::VersionMismatch { .. } | StoreError::Duplicate { .. }) => continue,
                Err(err) => return Err(err.to_problem().into_response()),
            }
        }
        Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE)
            .with_detail("too many concurrent sends to this recipient; try again")
            .into_response())
    }
}

fn quota(sent: &[u64]) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("sent".to_owned(), json!(sent));
    data
}

fn too_many(to: &str, wait_seconds: u64) -> Response {
    let mut response = Problem::new(StatusCode::TOO_MANY_REQUESTS)
        .with_detail(format!("too many emails to {to} in the last minute"))
        .with_extension("retry_after", wait_seconds)
        .into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(wait_seconds));
    response
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
