//! `Option<T>` as an extractor: `None` when the thing is absent, the rejection when it is
//! present but invalid.
//!
//! As axum 0.8 does, and for its reason: a malformed query, path or body must not pass for an
//! absent one, or a client's mistake is silently ignored. An extractor opts in by saying what
//! "absent" means for it ([`OptionalFromRequestParts`], [`OptionalFromRequest`]); wrap it in
//! `Result<T, T::Rejection>` instead to handle every rejection yourself.
//!
//! | extractor | `None` when |
//! |---|---|
//! | [`Query<T>`](super::Query) | the request has no query string |
//! | [`Path<T>`](super::Path) | no route parameter matched |
//! | [`Json<T>`](crate::Json) | the request has no `Content-Type` |
//! | [`RemoteAddr`](super::RemoteAddr), [`MatchedPath`](super::MatchedPath), [`Extension<T>`](super::Extension) | the server, router or layer did not set it |

use std::future::Future;

use http::request::Parts;

use crate::response::IntoResponse;
use crate::Request;

/// An extractor of the request's parts that can tell "absent" from "present but invalid".
pub trait OptionalFromRequestParts<S>: Sized {
    /// The response sent when the thing is present but invalid.
    type Rejection: IntoResponse;

    /// Extracts the value: `Ok(None)` when it is absent.
    fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> impl Future<Output = Result<Option<Self>, Self::Rejection>> + Send;
}

/// A body extractor that can tell "absent" from "present but invalid".
pub trait OptionalFromRequest<S>: Sized {
    /// The response sent when the body is present but invalid.
    type Rejection: IntoResponse;

    /// Extracts the value: `Ok(None)` when it is absent.
    fn from_request(
        request: Request,
        state: &S,
    ) -> impl Future<Output = Result<Option<Self>, Self::Rejection>> + Send;
}

impl<S, T> super::FromRequestParts<S> for Option<T>
where
    S: Send + Sync,
    T: OptionalFromRequestParts<S>,
{
    type Rejection = T::Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        <T as OptionalFromRequestParts<S>>::from_request_parts(parts, state).await
    }
}

impl<S, T> super::FromRequest<S> for Option<T>
where
    S: Send + Sync,
    T: OptionalFromRequest<S>,
{
    type Rejection = T::Rejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        <T as OptionalFromRequest<S>>::from_request(request, state).await
    }
}
