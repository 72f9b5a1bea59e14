use http::request::Parts;
use serde::de::DeserializeOwned;

use super::{FromRequestParts, OptionalFromRequestParts, Rejection, RejectionKind};

/// The query string, deserialized with serde (`?offset=20&limit=10`).
///
/// A missing query string deserializes as an empty one, so a struct whose fields are all
/// `Option` or `#[serde(default)]` always extracts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parse(parts.uri.query().unwrap_or_default())
    }
}

/// `None` without a query string; a query string that does not parse is still a 400.
impl<S, T> OptionalFromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Rejection> {
        parts.uri.query().map(parse).transpose()
    }
}

fn parse<T: DeserializeOwned>(query: &str) -> Result<Query<T>, Rejection> {
    serde_urlencoded::from_str(query).map(Query).map_err(|err| {
        Rejection::new(
            RejectionKind::InvalidQuery,
            format!("invalid query string: {err}"),
        )
    })
}
