use std::borrow::Cow;
use std::sync::Arc;

use http::request::Parts;
use http::uri::PathAndQuery;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use super::path_de::PathDeserializer;
use super::{FromRequestParts, OptionalFromRequestParts, Rejection, RejectionKind};
use crate::request_context::RequestContext;
use crate::router::matcher::{ParamRanges, Params};

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
        let Some(matched) = RequestContext::route(&parts.extensions) else {
            return Err(Rejection::new(
                RejectionKind::MissingContext,
                "path parameters are only available to handlers of a route",
            ));
        };
        matched
            .params
            .with_decoded(|decoded| T::deserialize(PathDeserializer::new(decoded)))?
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
        let matched = RequestContext::route(&parts.extensions);
        if matched.is_none_or(|matched| matched.params.len() == 0) {
            return Ok(None);
        }
        <Self as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// What the router learned while matching: the route pattern, the raw parameters and the
/// route's body limit. Kept in the request's [`RequestContext`], beside the client's address.
#[derive(Debug, Clone)]
pub(crate) struct RouteMatch {
    pub(crate) pattern: Arc<str>,
    pub(crate) params: PathParams,
    pub(crate) body_limit: Option<usize>,
}

/// Raw (still percent-encoded) path parameters: where their values lie in the matched path.
///
/// Why ranges of a shared path rather than copies: the path is a handle on the request's own
/// bytes (a reference count, no copy), and the names are the route's, so a match copies no
/// text and, up to four parameters, allocates nothing, however long they are. Keeping the path rather
/// than reading the request's URI again keeps the values those routed, whatever a layer
/// does to the URI afterwards.
#[derive(Clone)]
pub(crate) struct PathParams {
    path: PathAndQuery,
    names: Arc<[Box<str>]>,
    ranges: ParamRanges,
}

impl PathParams {
    /// The parameters `matched` found in `path`, the path it was looked up in.
    pub(crate) fn new(path: PathAndQuery, matched: &Params<'_, '_>) -> Self {
        Self {
            path,
            names: Arc::clone(matched.names()),
            ranges: matched.ranges().clone(),
        }
    }

    /// How many parameters there are.
    pub(crate) fn len(&self) -> usize {
        self.names.len().min(self.ranges.len())
    }

    /// The parameters of a route `/{key}/...` matched in the path `/value/...`: for tests
    /// that need a match without a router.
    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let route: String = pairs.iter().map(|(key, _)| format!("/{{{key}}}")).collect();
        let path: String = pairs.iter().map(|(_, value)| format!("/{value}")).collect();
        let (route, path) = if pairs.is_empty() {
            ("/".to_owned(), "/".to_owned())
        } else {
            (route, path)
        };
        let mut matcher = crate::router::matcher::Matcher::new();
        matcher.insert(route, ()).expect("a route of parameters");
        let matched = matcher
            .at(&path)
            .expect("the path has a value per parameter");
        Self::new(
            PathAndQuery::try_from(path.as_str()).expect("a path"),
            &matched.params,
        )
    }

    /// The raw parameters in route order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.names
            .iter()
            .map(|name| &**name)
            .zip(self.ranges.values(self.path.path()))
    }

    /// Calls `use_decoded` with the parameters percent-decoded, on the stack for a few (the
    /// usual case), in a vector for more.
    fn with_decoded<R>(
        &self,
        use_decoded: impl FnOnce(&[(&str, Cow<'_, str>)]) -> R,
    ) -> Result<R, Rejection> {
        if self.len() <= DECODED_ON_STACK {
            let mut decoded: [(&str, Cow<'_, str>); DECODED_ON_STACK] = Default::default();
            for (slot, (key, raw)) in decoded.iter_mut().zip(self.iter()) {
                *slot = (key, decode(key, raw)?);
            }
            return Ok(use_decoded(&decoded[..self.len()]));
        }
        let decoded = self
            .iter()
            .map(|(key, raw)| Ok((key, decode(key, raw)?)))
            .collect::<Result<Vec<_>, Rejection>>()?;
        Ok(use_decoded(&decoded))
    }
}

impl std::fmt::Debug for PathParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// How many decoded parameters are kept on the stack rather than in a vector.
const DECODED_ON_STACK: usize = 4;

fn decode<'a>(key: &str, raw: &'a str) -> Result<Cow<'a, str>, Rejection> {
    // The usual value (an id, a slug) has nothing to decode, and is UTF-8 already.
    if !raw.contains('%') {
        return Ok(Cow::Borrowed(raw));
    }
    percent_decode_str(raw).decode_utf8().map_err(|_| {
        Rejection::new(
            RejectionKind::InvalidPath,
            format!("path parameter `{key}` is not valid UTF-8 once percent-decoded"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn parts_with(params: &[(&str, &str)]) -> Parts {
        let path_params = PathParams::from_pairs(params);
        let (mut parts, ()) = http::Request::new(()).into_parts();
        RequestContext::matched(
            &mut parts.extensions,
            RouteMatch {
                pattern: Arc::from("/test"),
                params: path_params,
                body_limit: None,
            },
            || unreachable!("no layer asked for the route"),
        );
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

    #[test]
    fn many_and_long_parameters_are_kept_in_route_order() {
        let long = "x".repeat(300);
        let cases: [&[(&str, &str)]; 4] = [
            &[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")],
            &[
                ("a", "1"),
                ("b", "2"),
                ("c", "3"),
                ("d", "4"),
                ("e", "5"),
                ("f", "6"),
            ],
            &[("id", "7"), ("rest", &long), ("tail", "é")],
            &[],
        ];
        for params in cases {
            let stored = PathParams::from_pairs(params);
            let kept: Vec<(&str, &str)> = stored.iter().collect();
            assert_eq!(kept, params.to_vec());
            assert_eq!(stored.len(), params.len());
        }
    }

    #[tokio::test]
    async fn many_parameters_still_deserialize() {
        let six: (u8, u8, u8, u8, u8, String) = extract(&[
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("d", "4"),
            ("e", "5"),
            ("f", "s%C3%A9"),
        ])
        .await
        .unwrap();
        assert_eq!(six, (1, 2, 3, 4, 5, "sé".to_owned()));
        let err = extract::<(u8, u8, u8, u8, u8, String)>(&[
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("d", "4"),
            ("e", "5"),
            ("f", "%FF"),
        ])
        .await
        .unwrap_err();
        assert!(err.problem().detail().unwrap().contains("`f`"), "{err}");
    }
}
