use bytes::{BufMut, BytesMut};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::HeaderMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::body::read_limited;
use super::{FromRequest, Rejection, RejectionKind};
use crate::problem::FieldError;
use crate::response::IntoResponse;
use crate::{Body, Problem, Request, Response};

/// A JSON body: an extractor (the last handler argument) and a response.
///
/// As an extractor it refuses, each time with serde's own message in the problem's `detail`:
/// a `Content-Type` that is not `application/json` (or `application/*+json`) with 415, a body
/// over the limit with 413, malformed JSON with 400, and valid JSON of the wrong shape with 422,
/// naming the failing field in the problem's `errors` member.
///
/// ```
/// use microkit::{router::post, Json, Router};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Deserialize, Serialize)]
/// struct Product { name: String, price_cents: i64 }
///
/// async fn echo(Json(product): Json<Product>) -> Json<Product> {
///     Json(product)
/// }
///
/// let app: Router = Router::new().route("/echo", post(echo));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

const APPLICATION_JSON: &str = "application/json";

/// Whether the body is JSON the server can read: a JSON media type, and no content coding
/// (a gzip body read as JSON would be garbage, or worse, valid JSON by accident).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let encoded = headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .any(|coding| !coding.as_bytes().eq_ignore_ascii_case(b"identity"));
    if encoded {
        return false;
    }
    let Some(content_type) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype
                .rsplit_once('+')
                .is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("json")))
}

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Rejection;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(Rejection::new(
                RejectionKind::UnsupportedMediaType,
                "expected a request body with `Content-Type: application/json`",
            ));
        }
        let (_, bytes) = read_limited(request).await?;
        Self::from_bytes(&bytes)
    }
}

impl<T: DeserializeOwned> Json<T> {
    /// Parses a JSON body, refusing it as the extractor does (400 malformed, 422 wrong shape).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Rejection> {
        parse_json(
            bytes,
            |deserializer| T::deserialize(deserializer),
            |deserializer| serde_path_to_error::deserialize(deserializer),
        )
        .map(Json)
    }
}

/// The deserializer the JSON helpers run over.
pub(crate) type JsonDeserializer<'a> = serde_json::Deserializer<serde_json::de::SliceRead<'a>>;

/// Parses `bytes` with `fast` and refuses as the extractor does: malformed JSON 400 (even when
/// a field of the wrong type comes first: serde stops at the first problem), trailing
/// characters 400, a wrong shape 422 naming the failing field.
///
/// Only a failed parse runs again, with `tracked`, to learn the failing field's path: parsing
/// is deterministic, and tracking every path on the way costs a fifth of a parse.
pub(crate) fn parse_json<T>(
    bytes: &[u8],
    fast: impl FnOnce(&mut JsonDeserializer<'_>) -> Result<T, serde_json::Error>,
    tracked: impl FnOnce(
        &mut JsonDeserializer<'_>,
    ) -> Result<T, serde_path_to_error::Error<serde_json::Error>>,
) -> Result<T, Rejection> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let first = match fast(&mut deserializer) {
        Ok(value) => {
            deserializer.end().map_err(|err| malformed(&err))?;
            return Ok(value);
        }
        Err(first) => first,
    };
    if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(malformed(&syntax));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match tracked(&mut deserializer) {
        Err(err) => Err(json_rejection(&err)),
        // Parsing is deterministic, so the tracked run fails too; should it not, report the
        // first failure without a path.
        Ok(_) => Err(Rejection::new(
            RejectionKind::InvalidBody,
            format!("the request body has the wrong shape: {first}"),
        )),
    }
}

/// Parses a typed value out of a JSON value, refusing a wrong shape as the extractor does
/// (422, naming the failing field).
pub(crate) fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Rejection> {
    serde_path_to_error::deserialize(value).map_err(|err| json_rejection(&err))
}

fn malformed(err: &serde_json::Error) -> Rejection {
    Rejection::new(
        RejectionKind::MalformedBody,
        format!("the request body is not valid JSON: {err}"),
    )
}

fn json_rejection(err: &serde_path_to_error::Error<serde_json::Error>) -> Rejection {
    let inner = err.inner();
    if !inner.is_data() {
        return malformed(inner);
    }
    let message = inner.to_string();
    let path = err.path().to_string();
    // serde reports a missing or unknown field at its parent (`.`, or `?` while a key is being
    // read); the field's name is in the message.
    let named = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))
        .and_then(|rest| rest.split('`').next());
    let parent = path
        .strip_suffix('?')
        .unwrap_or(&path)
        .trim_end_matches('.');
    let field = match named {
        Some(name) if path == "." || path.ends_with('?') => {
            if parent.is_empty() {
                name.to_owned()
            } else {
                format!("{parent}.{name}")
            }
        }
        _ if path == "." => String::new(),
        _ => path,
    };
    let detail = if field.is_empty() {
        format!("the request body has the wrong shape: {message}")
    } else {
        format!("the request body has the wrong shape at `{field}`: {message}")
    };
    let rejection = Rejection::new(RejectionKind::InvalidBody, detail);
    if field.is_empty() {
        rejection
    } else {
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_owned();
        rejection
            .with_problem(|problem| problem.with_field_errors([FieldError::new(field, message)]))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut writer = BytesMut::with_capacity(128).writer();
        match serde_json::to_writer(&mut writer, &self.0) {
            Ok(()) => {
                let mut response = Response::new(Body::from(writer.into_inner().freeze()));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(APPLICATION_JSON));
                response
            }
            Err(err) => {
                tracing::error!(error = %err, "a response could not be serialized to JSON");
                Problem::internal("the response could not be serialized").into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Product {
        name: String,
        price_cents: i64,
    }

    #[test]
    fn json_media_types() {
        let mut headers = HeaderMap::new();
        for (value, expected) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/json", false),
            ("text/plain", false),
            ("application/jsonp", false),
        ] {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_json(&headers), expected, "{value}");
        }
        assert!(!is_json(&HeaderMap::new()));
        let mut gzipped = HeaderMap::new();
        gzipped.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        gzipped.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
        assert!(!is_json(&gzipped));
    }

    #[test]
    fn malformed_json_is_400() {
        let err = Json::<Product>::from_bytes(b"{\"name\": ").unwrap_err();
        assert_eq!(err.status(), 400);
        let err = Json::<Product>::from_bytes(br#"{"name":"a","price_cents":1} x"#).unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn unknown_fields_are_named() {
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Strict {
            name: String,
        }
        let err = Json::<Strict>::from_bytes(br#"{"name":"a","admin":true}"#).unwrap_err();
        assert_eq!(err.status(), 422);
        assert_eq!(err.problem().field_errors()[0].field, "admin");
    }

    #[test]
    fn malformed_json_is_400_even_after_a_field_of_the_wrong_type() {
        let err = Json::<Product>::from_bytes(br#"{"name": 5, "price_cents": "#).unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn wrong_shape_is_422_naming_the_field() {
        let err = Json::<Product>::from_bytes(br#"{"name":"a","price_cents":"x"}"#).unwrap_err();
        assert_eq!(err.status(), 422);
        assert_eq!(err.problem().field_errors()[0].field, "price_cents");
        let err = Json::<Product>::from_bytes(br#"{"price_cents":1}"#).unwrap_err();
        assert_eq!(err.status(), 422);
        assert_eq!(err.problem().field_errors()[0].field, "name");
    }
}
