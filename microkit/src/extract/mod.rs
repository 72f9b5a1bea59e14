//! Extractors: typed values taken from a request, one handler argument each.
//!
//! A handler's arguments are extractors. Those that look only at the request line and
//! headers implement [`FromRequestParts`] and may appear anywhere; one that consumes the body
//! implements [`FromRequest`] and must be the last argument, so at most one handler argument
//! reads the body.
//!
//! When an extractor fails, the handler is not called: the extractor's rejection becomes the
//! response, a [`Problem`](crate::Problem) with the status that fits (400, 413, 415, 422, ...).
//! Wrap an extractor in `Option<_>` to get `None` when the thing is absent (a present but
//! invalid one is still refused: see [`OptionalFromRequestParts`]), or in
//! `Result<_, Rejection>` to decide yourself.
//!
//! | extractor | takes | fails with |
//! |---|---|---|
//! | [`Path<T>`] | path parameters (a value, a tuple or a struct) | 400 |
//! | [`Query<T>`] | the query string | 400 |
//! | [`Json<T>`](crate::Json) | a JSON body (last) | 415, 400, 422, 413 |
//! | [`State<T>`] | the router's state | never |
//! | [`RemoteAddr`] | the client's socket address | 500 outside microkit's server |
//! | [`MatchedPath`] | the route pattern that matched | 500 outside a route |
//! | [`Extension<T>`] | a request extension | 500 when missing |
//! | `HeaderMap`, `Method`, `Uri`, `Version` | the request's own | never |
//! | `Bytes`, `String` (last) | the raw body | 413, 400 |
//! | [`Request`] (last) | the whole request | never |

mod body;
mod json;
mod optional;
mod parts;
mod path;
mod path_de;
mod query;
mod rejection;
mod state;
mod whole_number;

use std::future::Future;

use http::request::Parts;

pub(crate) use self::body::{read_limited, BodyFields};
pub use self::body::{BodyLimit, DEFAULT_BODY_LIMIT};
pub use self::json::Json;
pub(crate) use self::json::{
    field_errors, is_json, parse_document, parse_json, wrong_shape, Refused,
};
pub use self::optional::{OptionalFromRequest, OptionalFromRequestParts};
pub use self::parts::{Extension, MatchedPath, RemoteAddr};
pub use self::path::Path;
pub(crate) use self::path::{PathParams, RouteMatch};
pub use self::query::Query;
pub use self::rejection::{Rejection, RejectionKind};
pub use self::state::{FromRef, State};
pub(crate) use self::whole_number::whole_number;

use crate::response::IntoResponse;
use crate::Request;

/// An extractor that reads the request line, headers and extensions, but not the body.
pub trait FromRequestParts<S>: Sized {
    /// The response sent when extraction fails.
    type Rejection: IntoResponse;

    /// Extracts the value.
    fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send;
}

/// An extractor that consumes the whole request, body included: the last handler argument.
///
/// The `M` parameter only keeps the blanket implementation for [`FromRequestParts`] types
/// apart from body extractors; leave it at its default.
pub trait FromRequest<S, M = private::ViaRequest>: Sized {
    /// The response sent when extraction fails.
    type Rejection: IntoResponse;

    /// Extracts the value.
    fn from_request(
        request: Request,
        state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send;
}

/// Markers that tell the two kinds of extractors apart in [`FromRequest`]'s `M` parameter.
/// Public types in a private module, as axum's: they must appear in a public trait, and no
/// user should name them.
#[allow(unreachable_pub)]
pub(crate) mod private {
    /// The extractor consumes the request.
    #[derive(Debug, Clone, Copy)]
    pub enum ViaRequest {}
    /// The extractor reads only the request's parts.
    #[derive(Debug, Clone, Copy)]
    pub enum ViaParts {}
}

impl<S, T> FromRequest<S, private::ViaParts> for T
where
    S: Send + Sync,
    T: FromRequestParts<S>,
{
    type Rejection = T::Rejection;

    // Split before the future is made rather than in an `async fn`, which would keep the
    // request (its argument) beside the parts: the future is half the size.
    fn from_request(
        request: Request,
        state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        let (mut parts, _) = request.into_parts();
        async move { T::from_request_parts(&mut parts, state).await }
    }
}

impl<S: Send + Sync> FromRequest<S> for Request {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        Ok(request)
    }
}

impl<S, T> FromRequestParts<S> for Result<T, T::Rejection>
where
    S: Send + Sync,
    T: FromRequestParts<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(T::from_request_parts(parts, state).await)
    }
}

impl<S, T> FromRequest<S> for Result<T, T::Rejection>
where
    S: Send + Sync,
    T: FromRequest<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(T::from_request(request, state).await)
    }
}
