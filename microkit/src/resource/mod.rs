//! Resources: annotated structs become REST endpoints over a [`Store`](store::Store).
//!
//! `#[derive(Resource)]` implements [`Resource`] (what the resource is: paths, id, unique and
//! filterable fields, validation, JSON Schema); nothing else is generated. The library's
//! generic handlers, mounted by [`ResourceRoutes`], do the work:
//!
//! | request | answer |
//! |---|---|
//! | `POST {path}/` | 201 with `Location`, `ETag` and the item (id allocated by the store) |
//! | `GET {path}/{id}` | 200 with `ETag`, or 404 |
//! | `PUT {path}/{id}` | a full replacement: 200, 404, 422; `If-Match` checked (412) |
//! | `PATCH {path}/{id}` | JSON Merge Patch (RFC 7396), same answers as `PUT` |
//! | `DELETE {path}/{id}` | 204 (a soft delete where declared); `If-Match` checked |
//! | `GET {list path}` | `{"items": [...], "total": N}` by ascending id, `offset`/`limit`, filters, `Link: rel="next"` |
//!
//! Bad input changes nothing and gets a problem: malformed JSON 400, a wrong shape, an unknown
//! field or a failing rule 422 (every failing field listed), a bad id or query 400, a duplicate
//! unique value 409, a stale `If-Match` 412. [`Hooks`] run the logic around each action.

mod client;
mod document;
mod handlers;
mod hooks;
mod ids;
mod normalize;
pub mod openapi;
mod query;
mod repo;
mod routes;
pub mod schema;
mod spec;
pub mod store;
pub mod validate;

pub use self::client::{ListPage, ResourceClient};
pub use self::hooks::{HookContext, Hooks, NoHooks, Scope};
pub use self::openapi::OpenApi;
pub use self::repo::{Repo, Stored};
pub use self::routes::ResourceRoutes;
pub use self::spec::{Actions, Resource, ResourceSpec};
/// The derive macro of [`Resource`]: the trait and the derive share the name, as serde's do.
#[cfg(feature = "derive")]
pub use microkit_macros::Resource;
