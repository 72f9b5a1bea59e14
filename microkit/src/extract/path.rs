use std::borrow::Cow;
use std::sync::Arc;

use http::request::Parts;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use super::path_de::PathDeserializer;
use super::{FromRequestParts, OptionalFromRequestParts, Rejection, RejectionKind};

/// Path parameters, deserialized with serde: one value, a tuple in route order, or a struct
/// (or map) by parameter name.
///
/// Parameters are matched on the raw path and percent-decoded here; a value that is not UTF-8
/// once decoded, or that does not parse as the requested type, is a 400 problem.
///
/// ```
/// use microkit::{extract::Path, router::get, Router};
/// use serde::Deserialize;
///
/// async fn user(Path(id): Path<u64>) -> String {
///     format!("user {id}")
/// }
///
/// #[derive(Deserialize, schemars::JsonSchema)]
/// struct Item { uid: u64, id: u64 }
///
/// async fn cart_item(Path(item): Path<Item>) -> String {
///     format!("item {} of user {}", item.id, item.uid)
/// }
///
/// async fn file(Path((dir, rest)): Path<(String, String)>) -> String {
///     format!("{dir}: {rest}")
/// }
///
/// let app: Router = Router::new()
///     .route("/user/{id}", get(user))
///     .route("/user/{uid}/cart/{id}", get(cart_item))
///     .route("/files/{dir}/{*rest}", get(file));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(matched) = parts.extensions.get::<RouteMatch>() else {
            return Err(Rejection::new(
                RejectionKind::MissingContext,
                "path parameters are only available to handlers of a route",
            ));
        };
        let decoded = matched.params.decode()?;
        T::deserialize(PathDeserializer::new(&decoded))
            .map(Path)
            .map_err(|err| Rejection::new(RejectionKind::InvalidPath, err.to_string()))
    }
}

/// `None` when no route parameter matched (outside a route, or a route without parameters);
/// parameters that do not parse are still a 400.
impl<S, T> OptionalFromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Rejection> {
        let matched = parts.extensions.get::<RouteMatch>();
        if matched.is_none_or(|matched| matched.params.iter().next().is_none()) {
            return Ok(None);
        }
        <Self as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// What the router learned while matching: the route pattern, the raw parameters and the
/// route's body limit. Kept in the request's extensions as one value, so routing costs one
/// extension insert.
#[derive(Debug, Clone)]
pub(crate) struct RouteMatch {
    pub(crate) pattern: Arc<str>,
    pub(crate) params: PathParams,
    pub(crate) body_limit: Option<usize>,
}

/// Raw (still percent-encoded) path parameters, copied out of the matched path.
///
/// Keys and values share one buffer, so a match with parameters costs two allocations
/// whatever their number.
#[derive(Debug, Clone, Default)]
pub(crate) struct PathParams {
    buffer: String,
    spans: Vec<(usize, usize, usize)>,
}

impl PathParams {
    pub(crate) fn push(&mut self, key: &str, value: &str) {
        let start = self.buffer.len();
        self.buffer.push_str(key);
        let middle = self.buffer.len();
        self.buffer.push_str(value);
        self.spans.push((start, middle, self.buffer.len()));
    }

    /// The raw parameters in route order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.spans
            .iter()
            .map(|&(start, middle, end)| (&self.buffer[start..middle], &self.buffer[middle..end]))
    }

    fn decode(&self) -> Result<Vec<(&str, Cow<'_, str>)>, Rejection> {
        self.iter()
            .map(|(key, raw)| match percent_decode_str(raw).decode_utf8() {
                Ok(value) => Ok((key, value)),
                Err(_) => Err(Rejection::new(
                    RejectionKind::InvalidPath,
                    format!("path parameter `{key}` is not valid UTF-8 once percent-decoded"),
                )),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn parts_with(params: &[(&str, &str)]) -> Parts {
        let mut path_params = PathParams::default();
        for (key, value) in params {
            path_params.push(key, value);
        }
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.extensions.insert(RouteMatch {
            pattern: Arc::from("/test"),
            params: path_params,
            body_limit: None,
        });
        parts
    }

    async fn extract<T: DeserializeOwned + Send>(params: &[(&str, &str)]) -> Result<T, Rejection> {
        <Path<T> as FromRequestParts<()>>::from_request_parts(&mut parts_with(params), &())
            .await
            .map(|Path(value)| value)
    }

    #[tokio::test]
    async fn single_values_tuples_and_structs() {
        assert_eq!(extract::<u64>(&[("id", "42")]).await.unwrap(), 42);
        let pair: (String, i32) = extract(&[("a", "x"), ("b", "-3")]).await.unwrap();
        assert_eq!(pair, ("x".to_owned(), -3));

        #[derive(Deserialize, Debug, PartialEq)]
        struct Ids {
            uid: u32,
            id: u32,
        }
        let ids: Ids = extract(&[("uid", "1"), ("id", "2")]).await.unwrap();
        assert_eq!(ids, Ids { uid: 1, id: 2 });
    }

    #[tokio::test]
    async fn values_are_percent_decoded() {
        let name: String = extract(&[("name", "a%20b%2Fc")]).await.unwrap();
        assert_eq!(name, "a b/c");
    }

    #[tokio::test]
    async fn bad_values_are_400_with_the_parameter_named() {
        let err = extract::<u64>(&[("id", "abc")]).await.unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.problem().detail().unwrap().contains("`id`"), "{err}");
        let err = extract::<String>(&[("name", "%FF")]).await.unwrap_err();
        assert_eq!(err.status(), 400);
        let err = extract::<u8>(&[("n", "300")]).await.unwrap_err();
        assert_eq!(err.kind(), RejectionKind::InvalidPath);
    }

    #[tokio::test]
    async fn arity_mismatch_is_a_rejection() {
        assert!(extract::<(u32, u32)>(&[("a", "1")]).await.is_err());
        assert!(extract::<u32>(&[("a", "1"), ("b", "2")]).await.is_err());
    }
}
