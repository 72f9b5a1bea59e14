//! # microkit
//!
//! REST microservices on hyper 1: a fast radix-tree router, handlers with typed extractors,
//! one RFC 9457 error type, and a server with safe limits and graceful shutdown.
//!
//! ```no_run
//! use microkit::router::get;
//! use microkit::extract::Path;
//! use microkit::{Json, Problem, Router};
//! use serde::Serialize;
//!
//! #[derive(Serialize)]
//! struct User { id: u64, name: String }
//!
//! async fn user(Path(id): Path<u64>) -> Result<Json<User>, Problem> {
//!     if id == 0 {
//!         return Err(Problem::not_found("no user 0"));
//!     }
//!     Ok(Json(User { id, name: format!("user-{id}") }))
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let app = Router::new().route("/user/{id}", get(user));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     microkit::serve(listener, app).await
//! }
//! ```
//!
//! ## How a request flows
//!
//! `TcpListener` → [`serve`] (HTTP/1.1 + h2c, limits, graceful shutdown) → tower layers →
//! [`Router`] (path tree, then the method table, or 404 / 405 + `Allow` / 308) → the handler's
//! extractors ([`extract`]) → [`IntoResponse`](response::IntoResponse). Every error the
//! framework produces on the way is a [`Problem`], sent as `application/problem+json`; a
//! panicking handler becomes a 500 problem and the server keeps serving.
//!
//! ## Modules
//!
//! | module | what it holds |
//! |---|---|
//! | [`router`] | [`Router`], method routing (`get(h).post(h2)`), and the public path [`matcher`](router::matcher) |
//! | [`extract`] | `Path`, `Query`, `Json`, `State`, `RemoteAddr`, ... |
//! | [`response`] | [`IntoResponse`](response::IntoResponse) |
//! | [`server`] | [`serve`] and [`ServerConfig`] |
//! | [`middleware`] | the request-id layer; any tower-http layer fits too |

pub mod body;
pub mod discovery;
pub mod extract;
pub mod handler;
pub mod middleware;
pub mod problem;
pub mod response;
pub mod router;
pub mod server;

pub use self::body::Body;
pub use self::extract::Json;
pub use self::problem::{FieldError, Problem};
pub use self::router::Router;
pub use self::server::{serve, ServerConfig};

/// A request with microkit's [`Body`].
pub type Request<B = Body> = http::Request<B>;

/// A response with microkit's [`Body`].
pub type Response<B = Body> = http::Response<B>;

/// A boxed error, as tower and hyper use.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `http` crate, re-exported so users name the same version of its types.
pub use http;

/// The README's examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
