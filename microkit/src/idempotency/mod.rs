//! `Idempotency-Key`: retrying a `POST` or `PATCH` without doing it twice.
//!
//! A write whose answer was lost leaves its caller unable to tell "not done" from "done,
//! answer lost". With an [`Idempotency-Key`](IDEMPOTENCY_KEY) header (Stripe's design,
//! standardized as draft-ietf-httpapi-idempotency-key-header) the caller can simply send the
//! same request again with the same key:
//!
//! | the request | the answer |
//! |---|---|
//! | a key not seen in this scope | the request runs; its answer is kept with the request's fingerprint when it commits |
//! | the same key and the same request (method, path, body) | the kept answer again (status, `Content-Type`, `Location`, `ETag`, `Link`, body), marked `Idempotent-Replayed: true` |
//! | the same key and another request | 422, nothing runs |
//! | the same key while the first request is still running | 409 with `Retry-After: 1`, nothing runs |
//! | a key that is empty, not text, or longer than the limit (255 bytes by default) | 400 |
//!
//! A key is valid in one **scope**: the method and route pattern (`POST /invoices/`), and
//! the caller when the request carries an [`auth::Identity`](crate::auth) (feature `auth`):
//! another route, or another caller, may use the same key for something else. Keys
//! **expire** 24 hours after their answer was kept (see [`IdempotencyConfig`]); after that
//! the key is free again. An answer is kept when the request commits its writes; an error
//! that stops a request before its commit (a 4xx, a 5xx) leaves the key free, so the same
//! request can run again once what failed is fixed. The key may be
//! sent bare (`Idempotency-Key: 8e03978e`) or as the draft's structured-field string
//! (`Idempotency-Key: "8e03978e"`); both are the same key.
//!
//! # Exactly once, even across a crash
//!
//! The key's record is kept in the service's [`Store`](crate::resource::store::Store), and
//! committed **in the same transaction as the request's writes** ([`Store::commit`]): after a
//! `kill -9`, a replay survives exactly when the write did. Instances sharing a store
//! (SQLite file, PostgreSQL) share their keys: a retry that lands on another instance replays
//! the answer. Requests with one key running at once are told apart within one process (the
//! second is a 409); across processes the store decides: one commits, and the others' writes
//! roll back and they answer with its kept response.
//!
//! # Where it applies
//!
//! - The endpoints of [`ResourceRoutes`](crate::resource::ResourceRoutes) honour the key on
//!   create (`POST`) and `PATCH`, on by default. A create without hooks does not look its key
//!   up before it runs: nothing before its commit has an effect, so the commit itself finds
//!   a kept answer (and then writes nothing), which saves a store round trip per request.
//! - A handler written by hand uses [`Idempotency::begin`] and [`Claim::commit`] around its
//!   writes, so its key record commits with them (example there).
//! - [`IdempotencyLayer`] wraps any route: its success is kept after the handler answered,
//!   so a crash between the handler's writes and that record lets a retry run the request
//!   again; a handler whose writes must commit with the key uses [`Claim::commit`] instead.
//! - [`ServiceClient`](crate::client::ServiceClient) retries a `POST` or `PATCH` that carries
//!   a key as it retries idempotent methods; the typed
//!   [`ResourceClient`](crate::resource::ResourceClient) sends a fresh key on every create.
//!
//! [`Store::commit`]: crate::resource::store::Store::commit

mod claim;
mod config;
mod in_flight;
mod layer;
mod reply;
mod request;

pub use self::claim::{Begin, Claim, Idempotency, Outcome};
pub use self::config::IdempotencyConfig;
pub use self::layer::{IdempotencyLayer, IdempotencyService};
pub use self::reply::Reply;
pub use self::request::{fingerprint, IDEMPOTENCY_KEY, REPLAYED_HEADER};
