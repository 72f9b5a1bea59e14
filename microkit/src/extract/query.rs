use http::request::Parts;
use serde::de::DeserializeOwned;

use super::{FromRequestParts, Rejection, RejectionKind};

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
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query).map(Query).map_err(|err| {
            Rejection::new(
                RejectionKind::InvalidQuery,
                format!("invalid query string: {err}"),
            )
        })
    }
}
