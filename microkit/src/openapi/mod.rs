//! OpenAPI 3.1 documents that every route contributes to, by its handler's types.
//!
//! Each method routed to a handler documents itself when a document is built: every handler
//! argument implements [`OperationInput`] and every handler output [`OperationOutput`], so the
//! [`Handler`](crate::handler::Handler) knows, from its types alone, the operation's
//! parameters, request body and responses, and the problems the framework answers with for
//! it. This is dropshot's and aide's model: types that cross the wire derive schemars'
//! [`JsonSchema`] next to serde's traits, and the document cannot drift from the code.
//!
//! | in a handler | contributes |
//! |---|---|
//! | [`Path<T>`](crate::extract::Path) | path parameters (a value, a tuple, a struct's fields); 400 |
//! | [`Query<T>`](crate::extract::Query) | query parameters, required as serde requires them; 400 |
//! | [`Json<T>`](crate::Json) argument | a required `application/json` body; 400, 413, 415, 422 |
//! | `Bytes`, `String` argument | an `application/octet-stream` / `text/plain` body; 413 |
//! | [`Json<T>`](crate::Json) output | 200 `application/json` |
//! | `(StatusCode, R)` output | `R` under `2XX` (say which with [`Operation::success_status`]) |
//! | [`Problem`](crate::Problem), `Result<T, E>` | `default` as `application/problem+json`; both sides |
//! | `String`, `&str`, `Bytes`, `()` output | 200 `text/plain`, `application/octet-stream`, empty |
//! | [`Response`](crate::Response) output | nothing: the route says ([`Operation::response`]) |
//!
//! Schemas are exact where serde is: schemars reads `#[serde(default)]`, `Option`, `rename`,
//! `skip` and `deny_unknown_fields` (`additionalProperties: false`); request bodies are
//! described as serde deserializes them and responses as it serializes them; integers carry
//! the bounds of their width, so a value the server cannot parse is outside the schema.
//!
//! A route adds what types cannot say (a summary, tags, an operation id, examples, the status
//! of a run-time `(StatusCode, _)`) with [`MethodRouter::describe`], and leaves itself out with
//! [`MethodRouter::undocumented`]:
//!
//! [`MethodRouter::describe`]: crate::router::MethodRouter::describe
//! [`MethodRouter::undocumented`]: crate::router::MethodRouter::undocumented
//!
//! ```
//! use http::StatusCode;
//! use microkit::extract::Path;
//! use microkit::router::{get, post};
//! use microkit::{Json, Problem, Router};
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize, Serialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Note { text: String }
//!
//! async fn read(Path(id): Path<u32>) -> Result<Json<Note>, Problem> {
//!     Err(Problem::not_found(format!("no note {id}")))
//! }
//! async fn write(Json(note): Json<Note>) -> (StatusCode, Json<Note>) {
//!     (StatusCode::CREATED, Json(note))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/note/{id}", get(read).describe(|op| { op.summary("Reads a note"); }))
//!     .route("/note/", post(write).describe(|op| { op.success_status(StatusCode::CREATED); }))
//!     .route("/internal", get(|| async { "x" }).undocumented());
//! let document = app.openapi("notes", "1.0.0");
//! assert_eq!(document["paths"]["/note/{id}"]["get"]["summary"], "Reads a note");
//! assert!(document["paths"]["/note/"]["post"]["responses"]["201"].is_object());
//! assert!(document["paths"]["/note/"]["post"]["responses"]["415"].is_object());
//! assert!(document["paths"].get("/internal").is_none());
//! ```
//!
//! Serving: [`Microservice`](crate::service::Microservice) serves its document at
//! `GET /openapi.json` and a viewer at `GET /docs` unless switched off; the
//! [`Gateway`](crate::gateway::Gateway) merges its services' documents.
//!
//! ## Crate features
//! The traits and schemars are always there: handler bounds may not change with features
//! (features add, never take away), and schemars is small (four crates beside the `syn`
//! that serde's derive already brings). The `docs` feature (on by default) adds `GET /docs`
//! and Redoc's script (287 KB compressed) to the binary.

mod document;
mod idempotency;
mod input;
mod operation;
mod output;
mod problem;
mod route_doc;
mod schemas;
mod serve;
#[cfg(feature = "docs")]
mod viewer;

pub use self::document::Document;
pub use self::input::OperationInput;
pub use self::operation::{Operation, ResponseKey};
pub use self::output::OperationOutput;
pub use self::problem::{problem_schema, PROBLEM_JSON};
pub(crate) use self::route_doc::RouteDoc;
pub(crate) use self::schemas::rewrite_refs;
pub use self::schemas::Schemas;
pub use self::serve::{document_router, json_document, with_viewer, OPENAPI_PATH};
/// schemars, re-exported so that a type can derive [`JsonSchema`] through microkit's version.
pub use schemars;
pub use schemars::JsonSchema;
