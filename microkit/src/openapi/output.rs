//! What handler outputs contribute to an operation: responses, by status, with their media
//! types and schemas.

use std::borrow::Cow;
use std::convert::Infallible;

use bytes::Bytes;
use http::StatusCode;
use schemars::JsonSchema;
use serde_json::json;

use super::operation::{reason, ResponseKey};
use super::problem::problem_response;
use super::Operation;
use crate::client::ClientError;
use crate::extract::{Json, Rejection};
use crate::response::IntoResponseParts;
use crate::{Body, Problem, Response};

/// A handler output that documents itself: implemented by every response type of microkit.
///
/// A response type of your own that says nothing needs only an empty implementation; the
/// operation then says `default` (any answer) unless the route describes it
/// ([`Operation::response`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not say what it answers",
    note = "every handler output documents itself: add `impl microkit::openapi::OperationOutput \
            for {Self} {{}}` (the empty body says nothing) or describe its responses"
)]
pub trait OperationOutput {
    /// Adds the responses this type can produce.
    fn describe_output(operation: &mut Operation) {
        let _ = operation;
    }
}

impl<T: JsonSchema> OperationOutput for Json<T> {
    /// 200 with a JSON body.
    fn describe_output(operation: &mut Operation) {
        let schema = operation.schemas().output::<T>();
        operation.response_object(
            ResponseKey::Status(200),
            json!({
                "description": reason(StatusCode::OK),
                "content": { "application/json": { "schema": schema } },
            }),
        );
    }
}

impl OperationOutput for Problem {
    /// A problem of any status, as `application/problem+json`.
    fn describe_output(operation: &mut Operation) {
        operation.response_object(ResponseKey::Default, problem_response(0));
    }
}

impl OperationOutput for Rejection {
    /// A problem of the status that fits the rejection.
    fn describe_output(operation: &mut Operation) {
        Problem::describe_output(operation);
    }
}

impl OperationOutput for ClientError {
    /// A problem: 502, 503 or 504 for a failed call to another service.
    fn describe_output(operation: &mut Operation) {
        Problem::describe_output(operation);
    }
}

impl<T: OperationOutput, E: OperationOutput> OperationOutput for Result<T, E> {
    /// Both sides' responses.
    fn describe_output(operation: &mut Operation) {
        T::describe_output(operation);
        E::describe_output(operation);
    }
}

fn plain_success(operation: &mut Operation, media_type: &str, schema: serde_json::Value) {
    operation.response_object(
        ResponseKey::Status(200),
        json!({
            "description": reason(StatusCode::OK),
            "content": { media_type: { "schema": schema } },
        }),
    );
}

macro_rules! text_output {
    ($($ty:ty),*) => {$(
        impl OperationOutput for $ty {
            /// 200 with a UTF-8 text body.
            fn describe_output(operation: &mut Operation) {
                plain_success(operation, "text/plain", json!({ "type": "string" }));
            }
        }
    )*};
}

macro_rules! octet_output {
    ($($ty:ty),*) => {$(
        impl OperationOutput for $ty {
            /// 200 with a body of bytes.
            fn describe_output(operation: &mut Operation) {
                let schema = json!({ "type": "string", "contentMediaType": "application/octet-stream" });
                plain_success(operation, "application/octet-stream", schema);
            }
        }
    )*};
}

text_output!(&'static str, String, Cow<'static, str>);
octet_output!(Bytes, Vec<u8>, &'static [u8]);

impl OperationOutput for () {
    /// 200 with an empty body.
    fn describe_output(operation: &mut Operation) {
        operation.response_object(
            ResponseKey::Status(200),
            json!({ "description": reason(StatusCode::OK) }),
        );
    }
}

impl OperationOutput for Infallible {}

/// Outputs whose status and body are decided at run time: the route says what they are
/// ([`Operation::response`]) or the document says `default`.
impl OperationOutput for Response {}
impl OperationOutput for Body {}
impl OperationOutput for http::response::Parts {}

impl OperationOutput for StatusCode {
    /// Some success status, without a body.
    fn describe_output(operation: &mut Operation) {
        operation.response_object(
            ResponseKey::AnySuccess,
            json!({ "description": "a success status without a body" }),
        );
    }
}

/// `R`'s responses, with its success response under `2XX`: the status is a run-time value.
fn with_run_time_status<R: OperationOutput>(operation: &mut Operation) {
    R::describe_output(operation);
    operation.success_to_any();
}

impl<R: OperationOutput> OperationOutput for (StatusCode, R) {
    /// `R`'s body under the status given at run time (`2XX`).
    fn describe_output(operation: &mut Operation) {
        with_run_time_status::<R>(operation);
    }
}

macro_rules! with_parts {
    ($($part:ident),+) => {
        impl<$($part: IntoResponseParts,)+ R: OperationOutput> OperationOutput for ($($part,)+ R) {
            /// `R`'s responses (headers set at run time are not listed).
            fn describe_output(operation: &mut Operation) {
                R::describe_output(operation);
            }
        }

        impl<$($part: IntoResponseParts,)+ R: OperationOutput> OperationOutput
            for (StatusCode, $($part,)+ R)
        {
            /// `R`'s body under the status given at run time (`2XX`).
            fn describe_output(operation: &mut Operation) {
                with_run_time_status::<R>(operation);
            }
        }
    };
}

with_parts!(P1);
with_parts!(P1, P2);
with_parts!(P1, P2, P3);

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde_json::{json, Value};

    use super::*;
    use crate::openapi::Schemas;

    fn describe<T: OperationOutput>() -> Value {
        let mut operation = Operation::new(Vec::new(), Schemas::new());
        T::describe_output(&mut operation);
        operation.finish().0["responses"].clone()
    }

    #[derive(Serialize, JsonSchema)]
    struct Receipt {
        id: u64,
    }

    #[test]
    fn json_is_a_200_with_its_schema() {
        let responses = describe::<Json<Receipt>>();
        assert_eq!(
            responses["200"]["content"]["application/json"]["schema"],
            json!({"$ref": "#/components/x-microkit-output/Receipt"})
        );
    }

    #[test]
    fn a_result_documents_both_sides_and_problems_are_problem_json() {
        let responses = describe::<Result<Json<Receipt>, Problem>>();
        assert!(responses["200"].is_object());
        let problem = &responses["default"]["content"]["application/problem+json"]["schema"];
        assert_eq!(problem, &json!({"$ref": "#/components/schemas/Problem"}));
    }

    #[test]
    fn a_run_time_status_is_any_success() {
        let responses = describe::<(StatusCode, Json<Receipt>)>();
        assert!(responses.get("200").is_none());
        assert!(responses["2XX"]["content"]["application/json"].is_object());
        let responses = describe::<(StatusCode, [(&str, &str); 1], &'static str)>();
        assert!(responses["2XX"]["content"]["text/plain"].is_object());
        let responses = describe::<StatusCode>();
        assert!(responses["2XX"].is_object());
    }

    #[test]
    fn plain_bodies_and_opaque_responses() {
        assert!(describe::<String>()["200"]["content"]["text/plain"].is_object());
        assert!(describe::<Bytes>()["200"]["content"]["application/octet-stream"].is_object());
        assert!(describe::<()>()["200"].get("content").is_none());
        assert!(describe::<Response>()["default"].is_object());
    }
}

#[cfg(test)]
mod every_response_type {
    use serde_json::{json, Value};

    use super::*;
    use crate::openapi::Schemas;

    fn responses<T: OperationOutput>() -> Value {
        let mut operation = Operation::new(Vec::new(), Schemas::new());
        T::describe_output(&mut operation);
        operation.finish().0["responses"].clone()
    }

    fn media(responses: &Value, key: &str) -> Vec<String> {
        responses[key]["content"]
            .as_object()
            .map(|content| content.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn errors_are_problems_of_any_status() {
        for responses in [
            responses::<Problem>(),
            responses::<Rejection>(),
            responses::<ClientError>(),
        ] {
            assert_eq!(media(&responses, "default"), ["application/problem+json"]);
            assert_eq!(responses.as_object().unwrap().len(), 1);
        }
    }

    #[test]
    fn bodies_say_their_media_type() {
        for text in [
            responses::<&'static str>(),
            responses::<String>(),
            responses::<Cow<'static, str>>(),
        ] {
            assert_eq!(media(&text, "200"), ["text/plain"]);
        }
        for bytes in [
            responses::<Bytes>(),
            responses::<Vec<u8>>(),
            responses::<&'static [u8]>(),
        ] {
            assert_eq!(media(&bytes, "200"), ["application/octet-stream"]);
        }
    }

    #[test]
    fn run_time_answers_say_nothing_but_any_answer() {
        let any = json!({ "default": { "description": "any answer: the route does not say" } });
        assert_eq!(responses::<Response>(), any);
        assert_eq!(responses::<Body>(), any);
        assert_eq!(responses::<http::response::Parts>(), any);
        assert_eq!(responses::<Infallible>(), any);
    }

    #[test]
    fn headers_keep_the_body_and_a_status_makes_it_any_success() {
        type WithHeader = ([(&'static str, &'static str); 1], Json<u8>);
        assert_eq!(
            media(&responses::<WithHeader>(), "200"),
            ["application/json"]
        );
        type WithStatus = (StatusCode, [(&'static str, &'static str); 1], Json<u8>);
        let with_status = responses::<WithStatus>();
        assert!(with_status.get("200").is_none());
        assert_eq!(media(&with_status, "2XX"), ["application/json"]);
        let result = responses::<Result<(StatusCode, Json<u8>), Problem>>();
        assert!(result["2XX"].is_object() && result["default"].is_object());
    }
}
