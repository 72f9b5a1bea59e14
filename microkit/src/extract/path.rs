use std::borrow::Cow;
use std::sync::Arc;

use http::request::Parts;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use super::path_de::PathDeserializer;
use super::{FromRequestParts, OptionalFromRequestParts, Rejection, RejectionKind};
use crate::request_context::RequestContext;

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

/// Raw (still percent-encoded) path parameters, copied out of the matched path.
///
/// Why in place: nearly every match has a parameter or two, and short ones (an id, a slug).
/// Kept inside the route match they cost no allocation of their own; a match with more, or
/// longer, keeps keys and values in one heap buffer, two allocations whatever their number.
#[derive(Debug, Clone)]
pub(crate) enum PathParams {
    /// Keys and values back to back in `text`, each parameter's key starting at `spans[i].0`,
    /// its value at `spans[i].1` and ending at `spans[i].2`.
    Inline {
        text: [u8; INLINE_TEXT],
        spans: [(u8, u8, u8); INLINE_PARAMS],
        count: u8,
    },
    /// The same, on the heap.
    Heap {
        buffer: String,
        spans: Vec<(usize, usize, usize)>,
    },
}

/// The most bytes of keys and values kept in place.
const INLINE_TEXT: usize = 64;
/// The most parameters kept in place.
const INLINE_PARAMS: usize = 4;

impl Default for PathParams {
    fn default() -> Self {
        Self::Inline {
            text: [0; INLINE_TEXT],
            spans: [(0, 0, 0); INLINE_PARAMS],
            count: 0,
        }
    }
}

impl PathParams {
    pub(crate) fn push(&mut self, key: &str, value: &str) {
        if let Self::Inline { text, spans, count } = self {
            let start = spans[..usize::from(*count)]
                .last()
                .map_or(0, |span| usize::from(span.2));
            let middle = start + key.len();
            let end = middle + value.len();
            if usize::from(*count) < INLINE_PARAMS && end <= INLINE_TEXT {
                text[start..middle].copy_from_slice(key.as_bytes());
                text[middle..end].copy_from_slice(value.as_bytes());
                // `end` fits in a byte: it is at most `INLINE_TEXT`.
                spans[usize::from(*count)] = (start as u8, middle as u8, end as u8);
                *count += 1;
                return;
            }
            self.spill();
        }
        if let Self::Heap { buffer, spans } = self {
            let start = buffer.len();
            buffer.push_str(key);
            let middle = buffer.len();
            buffer.push_str(value);
            spans.push((start, middle, buffer.len()));
        }
    }

    /// Moves the parameters kept in place to the heap, to make room for more.
    fn spill(&mut self) {
        let kept = std::mem::replace(
            self,
            Self::Heap {
                buffer: String::new(),
                spans: Vec::new(),
            },
        );
        for (key, value) in kept.iter() {
            self.push(key, value);
        }
    }

    /// How many parameters there are.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Inline { count, .. } => usize::from(*count),
            Self::Heap { spans, .. } => spans.len(),
        }
    }

    /// The raw parameters in route order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..self.len()).map(move |i| match self {
            Self::Inline { text, spans, .. } => {
                let (start, middle, end) = spans[i];
                (
                    inline_str(&text[usize::from(start)..usize::from(middle)]),
                    inline_str(&text[usize::from(middle)..usize::from(end)]),
                )
            }
            Self::Heap { buffer, spans } => {
                let (start, middle, end) = spans[i];
                (&buffer[start..middle], &buffer[middle..end])
            }
        })
    }

    /// Calls `use_decoded` with the parameters percent-decoded, on the stack for a few (the
    /// usual case), in a vector for more.
    fn with_decoded<R>(
        &self,
        use_decoded: impl FnOnce(&[(&str, Cow<'_, str>)]) -> R,
    ) -> Result<R, Rejection> {
        if self.len() <= INLINE_PARAMS {
            let mut decoded: [(&str, Cow<'_, str>); INLINE_PARAMS] = Default::default();
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

/// A key or value kept in place: pushed as a `str` and cut where it was pushed, so it is
/// UTF-8.
fn inline_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("cut from pushed strings at their ends")
}

fn decode<'a>(key: &str, raw: &'a str) -> Result<Cow<'a, str>, Rejection> {
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
        let mut path_params = PathParams::default();
        for (key, value) in params {
            path_params.push(key, value);
        }
        let (mut parts, ()) = http::Request::new(()).into_parts();
        RequestContext::matched(
            &mut parts.extensions,
            RouteMatch {
                pattern: Arc::from("/test"),
                params: path_params,
                body_limit: None,
            },
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
    fn parameters_past_what_fits_in_place_move_to_the_heap_in_order() {
        let long = "x".repeat(INLINE_TEXT);
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
            &[("rest", &long)],
        ];
        for params in cases {
            let mut stored = PathParams::default();
            for (key, value) in params {
                stored.push(key, value);
            }
            let kept: Vec<(&str, &str)> = stored.iter().collect();
            assert_eq!(kept, params.to_vec());
            assert_eq!(stored.len(), params.len());
            let in_place = matches!(stored, PathParams::Inline { .. });
            assert_eq!(
                in_place,
                params.len() <= INLINE_PARAMS && params.iter().all(|(_, v)| v.len() < 8)
            );
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
