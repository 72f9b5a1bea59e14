//! stats: a log of what users did, readable only from the services' own networks.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use microkit::extract::{Query, State};
use microkit::gateway::AllowNetworksLayer;
use microkit::resource::{HookContext, Hooks, Repo, ResourceRoutes};
use microkit::response::IntoResponse;
use microkit::router::get;
use microkit::{FieldError, Json, Problem, Resource, Response, Router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::context::Context;

/// One thing a user did.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/log", collection = "log_entry", actions(create))]
pub(crate) struct LogEntry {
    #[resource(id)]
    pub(crate) id: u64,
    pub(crate) user_id: u64,
    #[resource(validate(length(min = 1, max = 100)))]
    pub(crate) action: String,
    /// When it was logged, in RFC 3339.
    #[serde(default)]
    #[resource(read_only)]
    pub(crate) at: Option<String>,
}

struct Stamp;

impl Hooks<LogEntry> for Stamp {
    async fn before_create(&self, _: &HookContext, entry: &mut LogEntry) -> Result<(), Problem> {
        entry.at = Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string());
        Ok(())
    }
}

pub(crate) fn router(context: Context) -> Router {
    let repo = Arc::new(Repo::<LogEntry>::new(context.store.clone()));
    let read = Router::new()
        .route(
            "/log",
            get(read_log)
                .describe(|op| {
                    op.summary("Reads the log")
                        .description("Only from the services' own networks: 403 elsewhere.")
                        .tag("stats")
                        .operation_id("readLog")
                        .json_response::<LogPage>(StatusCode::OK)
                        .problem(StatusCode::FORBIDDEN);
                })
                .layer(AllowNetworksLayer::private()),
        )
        .with_state(repo);
    ResourceRoutes::<LogEntry>::new(context.store)
        .create_at("/log")
        .hooks(Stamp)
        .router()
        .merge(read)
}

/// A page of the log: what was done in the range, oldest first.
#[derive(Serialize, JsonSchema)]
struct LogPage {
    items: Vec<LogLine>,
    total: usize,
}

/// One line of the log.
#[derive(Serialize, JsonSchema)]
struct LogLine {
    user_id: u64,
    action: String,
    at: Option<String>,
}

/// The time range to read, each end optional: RFC 3339 or unix seconds.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Range {
    from: Option<String>,
    to: Option<String>,
}

/// Reads a time given as RFC 3339 or as unix seconds.
fn parse_time(field: &str, text: &str) -> Result<SystemTime, FieldError> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs(seconds));
    }
    humantime::parse_rfc3339_weak(text)
        .map_err(|_| FieldError::new(field, "must be an RFC 3339 time or unix seconds"))
}

async fn read_log(State(repo): State<Arc<Repo<LogEntry>>>, Query(range): Query<Range>) -> Response {
    let mut errors = Vec::new();
    let mut bound = |field: &str, text: Option<&String>| {
        text.and_then(|text| parse_time(field, text).map_err(|err| errors.push(err)).ok())
    };
    let from = bound("from", range.from.as_ref());
    let to = bound("to", range.to.as_ref());
    if !errors.is_empty() {
        return Problem::bad_request("the time range is invalid")
            .with_field_errors(errors)
            .into_response();
    }
    let mut items = Vec::new();
    let mut offset = 0;
    loop {
        let (page, total) = match repo.list(None, Vec::new(), offset, 100).await {
            Ok(found) => found,
            Err(err) => return Problem::from(err).into_response(),
        };
        offset += page.len() as u64;
        for entry in page {
            let at = entry
                .at
                .as_deref()
                .and_then(|at| humantime::parse_rfc3339_weak(at).ok());
            let inside = at.is_some_and(|at| {
                from.is_none_or(|from| at >= from) && to.is_none_or(|to| at <= to)
            });
            if inside {
                items.push(LogLine {
                    user_id: entry.user_id,
                    action: entry.action,
                    at: entry.at,
                });
            }
        }
        if offset >= total || offset == 0 {
            break;
        }
    }
    let total = items.len();
    Json(LogPage { items, total }).into_response()
}
