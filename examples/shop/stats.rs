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
    /// The earliest time to include.
    #[serde(default)]
    #[schemars(schema_with = "time_schema")]
    from: Option<String>,
    /// The latest time to include.
    #[serde(default)]
    #[schemars(schema_with = "time_schema")]
    to: Option<String>,
}

/// Unix seconds: up to 11 digits (past the year 5000), so that no sum overflows.
const UNIX_SECONDS: &str = "^[0-9]{1,11}$";
/// RFC 3339 in UTC to the second, from 1970 on, with a day that every year has (February
/// 29th is accepted too, in leap years, which a pattern cannot say).
const RFC3339_UTC: &str =
    "^(19[7-9][0-9]|[2-9][0-9]{3})-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])\
                           |(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))\
                           T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$";

/// What `from` and `to` accept, exactly as [`parse_time`] does.
fn time_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "description": "unix seconds, or RFC 3339 in UTC such as 2026-11-28T21:00:00Z",
        "anyOf": [{ "pattern": UNIX_SECONDS }, { "pattern": RFC3339_UTC }],
    })
}

/// Reads a time given as unix seconds or as RFC 3339 in UTC to the second: only what
/// [`time_schema`] says, so the document and the server agree on every input.
fn parse_time(field: &str, text: &str) -> Result<SystemTime, FieldError> {
    let refused = || FieldError::new(field, "must be unix seconds or an RFC 3339 time in UTC");
    let bytes = text.as_bytes();
    if (1..=11).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_digit) {
        let seconds = text.parse::<u64>().map_err(|_| refused())?;
        return UNIX_EPOCH
            .checked_add(Duration::from_secs(seconds))
            .ok_or_else(refused);
    }
    // `YYYY-MM-DDTHH:MM:SSZ` exactly: no fraction, offset or space, no leap second.
    let strict = bytes.len() == 20
        && bytes[10] == b'T'
        && bytes[19] == b'Z'
        && text.get(17..19).is_some_and(|second| second < "60");
    if !strict {
        return Err(refused());
    }
    humantime::parse_rfc3339_weak(text).map_err(|_| refused())
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
