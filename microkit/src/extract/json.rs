use std::future::Future;

use futures_util::future::{ready, Either};
use futures_util::FutureExt;
use http::header::{HeaderValue, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::body::{read_body, BodyFields};
use super::whole_number::whole_numbers_as_integers;
use super::{FromRequest, OptionalFromRequest, Rejection, RejectionKind};
use crate::problem::FieldError;
use crate::response::IntoResponse;
use crate::{Body, Problem, Request, Response};

/// A JSON body: an extractor (the last handler argument) and a response.
///
/// As an extractor it refuses a `Content-Type` that is not `application/json` (or
/// `application/*+json`) with 415, a body over the limit with 413, a body that is not
/// well-formed JSON (not UTF-8, bad syntax, trailing characters) with 400 whatever else is
/// wrong with it, and well-formed JSON of the wrong shape with 422.
///
/// A 422 lists the failing fields in the problem's `errors` member: every unknown member (with
/// `#[serde(deny_unknown_fields)]`) and every member of the wrong type, found by parsing again
/// without each one at fault, and the first missing field (serde reports one; a generic
/// extractor cannot learn the others). `#[derive(Resource)]` endpoints know every field and
/// list every missing one too.
///
/// ```
/// use microkit::{router::post, Json, Router};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Deserialize, Serialize, schemars::JsonSchema)]
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
/// Checked once at compile time rather than per response.
const JSON_CONTENT_TYPE: HeaderValue = HeaderValue::from_static(APPLICATION_JSON);

/// Whether the body is JSON the server can read: a JSON media type, and no content coding
/// (a gzip body read as JSON would be garbage, or worse, valid JSON by accident).
pub(crate) fn is_json(fields: &BodyFields<'_>) -> bool {
    if fields.encoded {
        return false;
    }
    let Some(content_type) = fields.content_type else {
        return false;
    };
    // The usual form first: the general parse below costs a request a few hundred instructions.
    if content_type
        .as_bytes()
        .eq_ignore_ascii_case(APPLICATION_JSON.as_bytes())
    {
        return true;
    }
    let Ok(content_type) = content_type.to_str() else {
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

    // Not an `async fn`: it would keep the request beside the read that took it over (see
    // `ReadBody`), and this future sits inside every JSON handler's.
    fn from_request(
        request: Request,
        _: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        let fields = BodyFields::of(request.headers());
        let read = if is_json(&fields) {
            let declared = fields.length;
            Either::Left(read_body(request, declared))
        } else {
            Either::Right(ready(Err(Rejection::new(
                RejectionKind::UnsupportedMediaType,
                "expected a request body with `Content-Type: application/json`",
            ))))
        };
        read.map(|read| Self::from_bytes(&read?))
    }
}

/// `None` when the request has no `Content-Type` (no body was sent); any other media type is
/// still a 415, and a body that does not parse a 400 or 422.
impl<S, T> OptionalFromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Rejection;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if request.headers().contains_key(CONTENT_TYPE) {
            <Self as FromRequest<S>>::from_request(request, state)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    }
}

impl<T: DeserializeOwned> Json<T> {
    /// Parses a JSON body, refusing it as the extractor does (400 malformed, 422 wrong shape).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Rejection> {
        match parse_json(bytes, |deserializer| T::deserialize(deserializer)) {
            Ok(value) => Ok(Json(value)),
            Err(Refused::Malformed(rejection)) => Err(rejection),
            Err(Refused::WrongShape { document, first }) => {
                let errors = field_errors(document, Vec::new(), |document| {
                    serde_path_to_error::deserialize::<_, T>(document).map(drop)
                });
                Err(wrong_shape(&first, errors))
            }
        }
    }
}

/// The deserializer the JSON helpers run over: the body, checked to be UTF-8 first.
pub(crate) type JsonDeserializer<'a> = serde_json::Deserializer<serde_json::de::StrRead<'a>>;

/// Why [`parse_json`] refused a body.
pub(crate) enum Refused {
    /// Not JSON at all (400): not UTF-8, bad syntax, trailing characters.
    Malformed(Rejection),
    /// Well-formed JSON of the wrong shape (422): the document, to find every failing field
    /// in, and the first failure found.
    WrongShape {
        document: serde_json::Value,
        first: serde_json::Error,
    },
}

/// Parses `bytes` with `parse`, telling a body that is not JSON at all (400, whatever else is
/// wrong with it) from well-formed JSON of the wrong shape (422).
///
/// The happy path parses once, straight into the target type. Only a failed parse reads the
/// body again, as a `serde_json::Value`: if that fails too, the body is malformed; if it holds
/// whole numbers written as floats (`128.0`, `1e3`), they are read as the integers they are
/// and the body parsed once more (see [`whole_number`](super::whole_number)); otherwise the caller
/// looks for every failing field in the document (see [`field_errors`]). The body is checked
/// to be UTF-8 as a whole first (RFC 8259 requires it), so that invalid bytes inside a string
/// are a 400 even in a field the target type ignores.
pub(crate) fn parse_json<T>(
    bytes: &[u8],
    parse: impl Fn(&mut JsonDeserializer<'_>) -> Result<T, serde_json::Error>,
) -> Result<T, Refused> {
    let text = std::str::from_utf8(bytes).map_err(|err| {
        Refused::Malformed(Rejection::new(
            RejectionKind::MalformedBody,
            format!("the request body is not valid JSON: it is not UTF-8 ({err})"),
        ))
    })?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let first = match parse(&mut deserializer) {
        Ok(value) => {
            deserializer
                .end()
                .map_err(|err| Refused::Malformed(malformed(&err)))?;
            return Ok(value);
        }
        Err(first) => first,
    };
    let document = match serde_json::from_str(text) {
        Ok(document) => document,
        Err(syntax) => return Err(Refused::Malformed(malformed(&syntax))),
    };
    if let Some(rewritten) = whole_numbers_as_integers(text) {
        let mut deserializer = serde_json::Deserializer::from_str(&rewritten);
        if let Ok(value) = parse(&mut deserializer) {
            return Ok(value);
        }
    }
    Err(Refused::WrongShape { document, first })
}

/// Parses a body as a JSON document (400 when malformed), reading every whole number written
/// as a float as that integer (see [`whole_number`](super::whole_number)): a document has no
/// type to fail and retry against, and once it is a `Value` the digits are gone.
pub(crate) fn parse_document(bytes: &[u8]) -> Result<serde_json::Value, Rejection> {
    let document = Json::<serde_json::Value>::from_bytes(bytes)?.0;
    // Well-formed, so UTF-8.
    let rewritten = std::str::from_utf8(bytes)
        .ok()
        .and_then(whole_numbers_as_integers);
    Ok(match rewritten {
        Some(rewritten) => serde_json::from_str(&rewritten).unwrap_or(document),
        None => document,
    })
}

/// Every failing field of a well-formed `document` that `parse` can find, after the `known`
/// ones (which are not repeated).
///
/// serde stops at the first failure, so this parses again and again: after each failure the
/// top-level member at fault is taken out and the rest parsed anew. Unknown and mistyped
/// members are all found this way. A missing field ends the search: serde checks for missing
/// fields once every member present has parsed, and reports only the first, so a generic
/// caller learns of one missing field (a resource lists all of them from its schema first).
/// This runs only on a failed request, and at most once per member.
pub(crate) fn field_errors(
    mut document: serde_json::Value,
    mut known: Vec<FieldError>,
    parse: impl Fn(serde_json::Value) -> Result<(), serde_path_to_error::Error<serde_json::Error>>,
) -> Vec<FieldError> {
    let members = document.as_object().map_or(0, serde_json::Map::len);
    for _ in 0..=members {
        let Err(err) = parse(document.clone()) else {
            break;
        };
        let Some(failure) = Failure::of(&err) else {
            break;
        };
        if !known.iter().any(|error| error.field == failure.field) {
            known.push(FieldError::new(failure.field.clone(), failure.message));
        }
        let removed = match (&failure.member, document.as_object_mut()) {
            (Some(member), Some(object)) => object.remove(member).is_some(),
            _ => false,
        };
        if !removed {
            break;
        }
    }
    known
}

/// One failure serde reported, located in the document.
struct Failure {
    /// The failing field's path (`price_cents`, `contact.email`, `tags[2]`).
    field: String,
    message: String,
    /// The top-level member to take out to look further; `None` for a missing field.
    member: Option<String>,
}

impl Failure {
    /// Where `err` happened; `None` when it is about the whole document (not an object, say).
    fn of(err: &serde_path_to_error::Error<serde_json::Error>) -> Option<Self> {
        let message = err.inner().to_string();
        let message = message.split(" at line ").next().unwrap_or_default();
        let path = err.path().to_string();
        // serde reports a missing or unknown field at its parent (`.`, or `?` while a key is
        // being read); the field's name is in the message.
        let named = |prefix: &str| {
            message
                .strip_prefix(prefix)
                .and_then(|rest| rest.split('`').next())
                .filter(|_| path == "." || path.ends_with('?'))
        };
        let parent = path
            .strip_suffix('?')
            .unwrap_or(&path)
            .trim_end_matches('.');
        let qualified = |name: &str| {
            if parent.is_empty() {
                name.to_owned()
            } else {
                format!("{parent}.{name}")
            }
        };
        let top = err.path().iter().next().and_then(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        });
        if let Some(name) = named("missing field `") {
            return Some(Self {
                field: qualified(name),
                message: "is required".to_owned(),
                member: None,
            });
        }
        if let Some(name) = named("unknown field `") {
            return Some(Self {
                field: qualified(name),
                message: "is not a known field".to_owned(),
                member: Some(top.unwrap_or_else(|| name.to_owned())),
            });
        }
        if path == "." {
            return None;
        }
        Some(Self {
            field: path,
            message: message.to_owned(),
            member: top,
        })
    }
}

/// The 422 for a document of the wrong shape: every failing field in `errors`, or serde's
/// `first` failure alone when no field could be named.
pub(crate) fn wrong_shape(first: &serde_json::Error, errors: Vec<FieldError>) -> Rejection {
    let detail = match errors.as_slice() {
        [] => {
            let first = first.to_string();
            let first = first.split(" at line ").next().unwrap_or_default();
            return Rejection::new(
                RejectionKind::InvalidBody,
                format!("the request body has the wrong shape: {first}"),
            );
        }
        [one] => format!(
            "the request body has the wrong shape at `{}`: {}",
            one.field, one.message
        ),
        many => {
            let fields: Vec<String> = many.iter().map(|e| format!("`{}`", e.field)).collect();
            format!(
                "the request body has the wrong shape at {}",
                fields.join(", ")
            )
        }
    };
    Rejection::new(RejectionKind::InvalidBody, detail)
        .with_problem(|problem| problem.with_field_errors(errors))
}

fn malformed(err: &serde_json::Error) -> Rejection {
    Rejection::new(
        RejectionKind::MalformedBody,
        format!("the request body is not valid JSON: {err}"),
    )
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match crate::body::json_bytes(&self.0) {
            Ok(bytes) => {
                let mut response = Response::new(Body::from(bytes));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, JSON_CONTENT_TYPE);
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
    use http::HeaderMap;
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
            assert_eq!(is_json(&BodyFields::of(&headers)), expected, "{value}");
        }
        assert!(!is_json(&BodyFields::of(&HeaderMap::new())));
        let mut gzipped = HeaderMap::new();
        gzipped.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        gzipped.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
        assert!(!is_json(&BodyFields::of(&gzipped)));
        gzipped.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        assert!(is_json(&BodyFields::of(&gzipped)));
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
    fn invalid_utf8_is_400_whatever_else_is_wrong() {
        let err = Json::<Product>::from_bytes(b"{\"a\": \"\xff\xfe\"}").unwrap_err();
        assert_eq!(err.status(), 400);
        // Even inside a member the type ignores.
        let body = b"{\"name\":\"a\",\"price_cents\":1,\"junk\":\"\xff\"}";
        assert_eq!(Json::<Product>::from_bytes(body).unwrap_err().status(), 400);
    }

    #[test]
    fn wrong_shape_lists_every_failing_field_it_can_find() {
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Strict {
            name: String,
            price_cents: i64,
            stock: u32,
        }
        let err = Json::<Strict>::from_bytes(
            br#"{"note":"x","price_cents":"cheap","stock":-1,"name":"a"}"#,
        )
        .unwrap_err();
        assert_eq!(err.status(), 422);
        let mut fields: Vec<String> = err
            .problem()
            .field_errors()
            .into_iter()
            .map(|e| e.field)
            .collect();
        fields.sort();
        assert_eq!(fields, ["note", "price_cents", "stock"]);
        // An unknown and a missing field together.
        let err =
            Json::<Strict>::from_bytes(br#"{"note":"x","price_cents":1,"stock":1}"#).unwrap_err();
        let fields: Vec<String> = err
            .problem()
            .field_errors()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["note", "name"]);
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

    #[test]
    fn whole_numbers_written_as_floats_are_integers_exactly() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Numbers {
            signed: i64,
            unsigned: u64,
        }
        let read = |signed: &str, unsigned: &str| {
            let body = format!(r#"{{"signed": {signed}, "unsigned": {unsigned}}}"#);
            Json::<Numbers>::from_bytes(body.as_bytes())
                .map(|json| (json.0.signed, json.0.unsigned))
        };
        assert_eq!(
            read("-9223372036854775808.0", "18446744073709551615.0").unwrap(),
            (i64::MIN, u64::MAX)
        );
        assert_eq!(
            read("9.223372036854775807e18", "1e19").unwrap(),
            (i64::MAX, 10_000_000_000_000_000_000)
        );
        assert_eq!(read("-0.0", "0e400").unwrap(), (0, 0));
        for (signed, unsigned) in [
            // One past each end: as an f64 the first is i64::MIN and the second u64::MAX + 1.
            ("-9223372036854775809.0", "1"),
            ("9223372036854775808.0", "1"),
            ("1", "18446744073709551616.0"),
            ("1", "-1.0"),
            ("5.5", "1"),
            ("5.0000000000000001", "1"),
            ("1e-400", "1"),
        ] {
            let err = read(signed, unsigned).unwrap_err();
            assert_eq!(err.status(), 422, "{signed} {unsigned}");
        }
        // serde_json refuses a number past f64's range as malformed, whatever the type.
        assert_eq!(read("1e400", "1").unwrap_err().status(), 400);
    }

    #[test]
    fn a_document_reads_whole_floats_as_integers_and_keeps_the_rest() {
        let document =
            parse_document(br#"{"a": 5.0, "b": [1.5, -9223372036854775809.0], "c": "5.0"}"#)
                .unwrap();
        assert_eq!(document["a"], serde_json::json!(5));
        assert!(document["a"].is_i64());
        assert!(document["b"][0].is_f64() && document["b"][1].is_f64());
        assert_eq!(document["c"], "5.0");
        assert_eq!(parse_document(b"{\"a\": 5.0").unwrap_err().status(), 400);
    }
}
