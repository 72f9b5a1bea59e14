//! RFC 9457 problem details: the one error body of microkit.
//!
//! Every error the framework produces (a missing route, a wrong method, a body that does not
//! parse, a panicking handler) is a [`Problem`], sent as `application/problem+json`. Handlers
//! return the same type, so clients of a microkit service parse one error format, whatever
//! went wrong and wherever.

use std::borrow::Cow;
use std::fmt;

use http::header::IntoHeaderName;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::response::IntoResponse;
use crate::{Body, Response};

/// The media type of a problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Checked once at compile time rather than per response.
const PROBLEM_CONTENT_TYPE: HeaderValue = HeaderValue::from_static(PROBLEM_JSON);

/// The extension member carrying the trace id of the request a problem answered.
pub const TRACE_ID_MEMBER: &str = "trace_id";

/// An RFC 9457 problem: `type`, `title`, `status`, `detail`, `instance` and extension members.
///
/// ```
/// use microkit::{FieldError, Problem};
/// use http::StatusCode;
///
/// let problem = Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
///     .with_detail("the product is not valid")
///     .with_field_errors([FieldError::new("price_cents", "must be at least 0")]);
/// assert_eq!(problem.status(), StatusCode::UNPROCESSABLE_ENTITY);
/// assert_eq!(problem.title(), "Unprocessable Entity");
/// ```
///
/// A problem may carry response headers that belong with its status (RFC 9110 asks for some):
/// `ETag` with 412, `Retry-After` with 429 and 503, `Allow` with 405, `WWW-Authenticate` with
/// 401. They travel with the problem through `?` and are sent with it:
///
/// ```
/// use http::header::{HeaderValue, RETRY_AFTER};
/// use http::StatusCode;
/// use microkit::response::IntoResponse;
/// use microkit::Problem;
///
/// let response = Problem::new(StatusCode::TOO_MANY_REQUESTS)
///     .with_header(RETRY_AFTER, HeaderValue::from_static("30"))
///     .into_response();
/// assert_eq!(response.headers()[RETRY_AFTER], "30");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    // Boxed so that `Result<T, Problem>` stays as small as `T` on the happy path.
    inner: Box<Members>,
}

#[derive(Debug, Clone, PartialEq)]
struct Members {
    status: StatusCode,
    type_uri: Cow<'static, str>,
    title: Cow<'static, str>,
    detail: Option<String>,
    instance: Option<String>,
    extensions: Map<String, Value>,
    /// Sent with the problem; not part of its JSON body.
    headers: HeaderMap,
    /// What went wrong behind a 5xx, for the log line written when the problem is answered;
    /// never sent (it may hold SQL, paths or hosts).
    cause: Option<String>,
}

/// One failing field, listed in a problem's `errors` extension member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's name (a JSON pointer-like path such as `tags[2]` where it is nested).
    pub field: String,
    /// What is wrong with it, in words a client developer can act on.
    pub message: String,
}

impl FieldError {
    /// A failing field and what is wrong with it.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Problem {
    /// A problem with `status`, titled with the status' canonical reason and typed `about:blank`.
    pub fn new(status: StatusCode) -> Self {
        Self {
            inner: Box::new(Members {
                status,
                type_uri: Cow::Borrowed("about:blank"),
                title: Cow::Borrowed(status.canonical_reason().unwrap_or("Error")),
                detail: None,
                instance: None,
                extensions: Map::new(),
                headers: HeaderMap::new(),
                cause: None,
            }),
        }
    }

    /// 400 Bad Request with a detail.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST).with_detail(detail)
    }

    /// 404 Not Found with a detail.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND).with_detail(detail)
    }

    /// 409 Conflict with a detail.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT).with_detail(detail)
    }

    /// 422 Unprocessable Content with a detail.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY).with_detail(detail)
    }

    /// 500 Internal Server Error with a detail.
    ///
    /// The detail reaches the client: keep internals (paths, SQL, stack traces) out of it.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR).with_detail(detail)
    }

    /// Sets the `type` URI that identifies the kind of problem.
    pub fn with_type(mut self, type_uri: impl Into<Cow<'static, str>>) -> Self {
        self.inner.type_uri = type_uri.into();
        self
    }

    /// Sets the short, human-readable `title`.
    pub fn with_title(mut self, title: impl Into<Cow<'static, str>>) -> Self {
        self.inner.title = title.into();
        self
    }

    /// Sets the `detail`: this occurrence explained.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.inner.detail = Some(detail.into());
        self
    }

    /// Sets the `instance` URI that identifies this occurrence.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.inner.instance = Some(instance.into());
        self
    }

    /// Adds an extension member. Names of the standard members are ignored.
    pub fn with_extension(mut self, name: impl Into<String>, value: impl Serialize) -> Self {
        let name = name.into();
        if !is_standard_member(&name) {
            let value = serde_json::to_value(value).unwrap_or(Value::Null);
            self.inner.extensions.insert(name, value);
        }
        self
    }

    /// Adds a response header sent with the problem (`ETag`, `Retry-After`, `Allow`,
    /// `WWW-Authenticate`, ...). A second value of the same name is added, not replaced, as
    /// `WWW-Authenticate` with two challenges needs; `Content-Type` is always the problem's.
    pub fn with_header(mut self, name: impl IntoHeaderName, value: HeaderValue) -> Self {
        self.inner.headers.append(name, value);
        self
    }

    /// Records what went wrong behind the problem for the server's log: it is logged once, at
    /// error level, when the problem becomes a response with a 5xx status, and never sent to
    /// the client.
    pub fn with_cause(mut self, cause: impl fmt::Display) -> Self {
        self.inner.cause = Some(cause.to_string());
        self
    }

    /// Lists failing fields in the `errors` extension member.
    pub fn with_field_errors(self, errors: impl IntoIterator<Item = FieldError>) -> Self {
        let errors: Vec<FieldError> = errors.into_iter().collect();
        self.with_extension("errors", errors)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The `type` URI (`about:blank` unless set).
    pub fn type_uri(&self) -> &str {
        &self.inner.type_uri
    }

    /// The `title`.
    pub fn title(&self) -> &str {
        &self.inner.title
    }

    /// The `detail`, if any.
    pub fn detail(&self) -> Option<&str> {
        self.inner.detail.as_deref()
    }

    /// The `instance`, if any.
    pub fn instance(&self) -> Option<&str> {
        self.inner.instance.as_deref()
    }

    /// The headers sent with the problem.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The cause recorded with [`with_cause`](Self::with_cause), if any.
    pub fn cause(&self) -> Option<&str> {
        self.inner.cause.as_deref()
    }

    /// An extension member, if present.
    pub fn extension(&self, name: &str) -> Option<&Value> {
        self.inner.extensions.get(name)
    }

    /// The trace id of the request this problem answered (its `trace_id` member), if known.
    pub fn trace_id(&self) -> Option<&str> {
        self.extension(TRACE_ID_MEMBER)?.as_str()
    }

    /// The failing fields listed in the `errors` member, if any.
    pub fn field_errors(&self) -> Vec<FieldError> {
        self.extension("errors")
            .and_then(|errors| serde_json::from_value(errors.clone()).ok())
            .unwrap_or_default()
    }

    /// Serializes the problem to its JSON body.
    pub fn to_json(&self) -> bytes::Bytes {
        // Serializing a struct of strings and JSON values cannot fail.
        crate::body::json_bytes(self).unwrap_or_default()
    }
}

fn is_standard_member(name: &str) -> bool {
    matches!(name, "type" | "title" | "status" | "detail" | "instance")
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.inner.status.as_u16(), self.inner.title)?;
        if let Some(detail) = &self.inner.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    /// The problem as a response. Answered within a request, it carries the request's trace id
    /// as its `trace_id` member (unless it has one already, as a problem passed on from
    /// another service does): the key to every log line and span of the request.
    fn into_response(mut self) -> Response {
        if let Some(trace_id) = crate::trace::current_trace_id() {
            if !self.inner.extensions.contains_key(TRACE_ID_MEMBER) {
                self.inner.extensions.insert(
                    TRACE_ID_MEMBER.to_owned(),
                    Value::String(trace_id.to_string()),
                );
            }
        }
        let body = Body::from(self.to_json());
        let Members {
            status,
            detail,
            headers,
            cause,
            ..
        } = *self.inner;
        // Logged here, where the request is answered, so that a failure is logged once however
        // many layers it went through on its way up.
        if let (Some(cause), true) = (&cause, status.is_server_error()) {
            tracing::error!(status = status.as_u16(), detail = detail.as_deref(), %cause, "answered with a server error");
        }
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE);
        response
    }
}

impl From<StatusCode> for Problem {
    fn from(status: StatusCode) -> Self {
        Self::new(status)
    }
}

#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", default = "about_blank")]
    type_uri: Cow<'a, str>,
    #[serde(default)]
    title: Cow<'a, str>,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    detail: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    instance: Option<Cow<'a, str>>,
    #[serde(flatten)]
    extensions: Cow<'a, Map<String, Value>>,
}

fn about_blank() -> Cow<'static, str> {
    Cow::Borrowed("about:blank")
}

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire {
            type_uri: Cow::Borrowed(&self.inner.type_uri),
            title: Cow::Borrowed(&self.inner.title),
            status: self.inner.status.as_u16(),
            detail: self.inner.detail.as_deref().map(Cow::Borrowed),
            instance: self.inner.instance.as_deref().map(Cow::Borrowed),
            extensions: Cow::Borrowed(&self.inner.extensions),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Problem {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let status = StatusCode::from_u16(wire.status).map_err(serde::de::Error::custom)?;
        let mut problem = Problem::new(status).with_type(wire.type_uri.into_owned());
        if !wire.title.is_empty() {
            problem.inner.title = Cow::Owned(wire.title.into_owned());
        }
        problem.inner.detail = wire.detail.map(Cow::into_owned);
        problem.inner.instance = wire.instance.map(Cow::into_owned);
        problem.inner.extensions = wire.extensions.into_owned();
        Ok(problem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_the_standard_members_and_extensions() {
        let problem = Problem::unprocessable("bad product")
            .with_instance("/product/7")
            .with_field_errors([FieldError::new("name", "must not be empty")]);
        let json: Value = serde_json::from_slice(&problem.to_json()).unwrap();
        assert_eq!(json["type"], "about:blank");
        assert_eq!(json["title"], "Unprocessable Entity");
        assert_eq!(json["status"], 422);
        assert_eq!(json["detail"], "bad product");
        assert_eq!(json["instance"], "/product/7");
        assert_eq!(json["errors"][0]["field"], "name");
    }

    #[test]
    fn extensions_cannot_overwrite_standard_members() {
        let problem = Problem::bad_request("x").with_extension("status", 999);
        let json: Value = serde_json::from_slice(&problem.to_json()).unwrap();
        assert_eq!(json["status"], 400);
    }

    #[test]
    fn round_trips_through_json() {
        let problem = Problem::conflict("taken").with_extension("retry", true);
        let back: Problem = serde_json::from_slice(&problem.to_json()).unwrap();
        assert_eq!(back, problem);
    }

    #[test]
    fn carries_its_headers_into_the_response() {
        let response = Problem::new(StatusCode::UNAUTHORIZED)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"))
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
            .with_header(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))
            .into_response();
        let challenges: Vec<_> = response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .collect();
        assert_eq!(challenges, ["Basic", "Bearer"]);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }

    #[test]
    fn keeps_its_cause_out_of_the_body() {
        let problem =
            Problem::internal("the store failed").with_cause("connection refused by db.internal");
        assert_eq!(problem.cause(), Some("connection refused by db.internal"));
        assert!(!String::from_utf8_lossy(&problem.to_json()).contains("db.internal"));
    }

    #[tokio::test]
    async fn carries_the_trace_id_of_the_request_it_answers() {
        let context = crate::trace::TraceContext::root();
        let trace_id = context.trace_id().to_string();
        let response = crate::trace::scope(context, async {
            Problem::not_found("no such user").into_response()
        })
        .await;
        let body = crate::body::Body::collect_limited(response.into_body(), 4096)
            .await
            .unwrap();
        let problem: Problem = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem.trace_id(), Some(trace_id.as_str()));

        let outside = Problem::not_found("no such user").into_response();
        let body = crate::body::Body::collect_limited(outside.into_body(), 4096)
            .await
            .unwrap();
        let problem: Problem = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem.trace_id(), None);
    }

    #[test]
    fn responds_with_the_problem_media_type_and_status() {
        let response = Problem::not_found("no such user").into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
