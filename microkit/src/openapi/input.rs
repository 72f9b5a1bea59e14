//! What extractors contribute to an operation: parameters, a request body, and the problems
//! they answer with when the request does not fit.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use schemars::JsonSchema;
use serde_json::{json, Value};

use super::Operation;
use crate::extract::{Extension, Json, MatchedPath, Path, Query, RemoteAddr, State};
use crate::middleware::RequestId;
use crate::Request;

/// A handler argument that documents itself: implemented by every extractor of microkit.
///
/// The router asks each argument of a handler to describe itself when it builds the
/// route's operation, so every handler argument must implement this trait. An extractor of
/// your own that adds nothing to the document needs only an empty implementation:
///
/// ```
/// # use microkit::openapi::OperationInput;
/// struct Tenant(String);
/// impl OperationInput for Tenant {}
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not say what it takes from the request",
    note = "every handler argument documents itself: add `impl microkit::openapi::OperationInput \
            for {Self} {{}}` (the empty body contributes nothing) or describe its parameters"
)]
pub trait OperationInput {
    /// Adds what the extractor reads (parameters, a body) and the problems it can answer with.
    fn describe_input(operation: &mut Operation) {
        let _ = operation;
    }
}

impl<T: JsonSchema> OperationInput for Path<T> {
    /// One value, a tuple in route order, or a struct by parameter name; a value that does
    /// not parse is a 400.
    fn describe_input(operation: &mut Operation) {
        let schema = operation.schemas().input::<T>();
        let resolved = operation.schemas().resolve_input(&schema);
        let names = operation.path_params().to_vec();
        if let Some(properties) = resolved.get("properties").and_then(Value::as_object) {
            for name in &names {
                if let Some(property) = properties.get(name) {
                    operation.parameter("path", name, true, property.clone(), None);
                }
            }
        } else if let Some(items) = resolved.get("prefixItems").and_then(Value::as_array) {
            for (name, item) in names.iter().zip(items) {
                operation.parameter("path", name, true, item.clone(), None);
            }
        } else if let Some(name) = names.last() {
            operation.parameter("path", name, true, schema, None);
        }
        operation.problem(StatusCode::BAD_REQUEST);
    }
}

impl<T: JsonSchema> OperationInput for Query<T> {
    /// Each field of the struct is a parameter, required as serde requires it; a query string
    /// that does not parse is a 400.
    fn describe_input(operation: &mut Operation) {
        let schema = operation.schemas().input::<T>();
        let resolved = operation.schemas().resolve_input(&schema);
        let required: Vec<&str> = resolved
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(properties) = resolved.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                let description = property.get("description").and_then(Value::as_str);
                let description = description.map(str::to_owned);
                // A query parameter is absent or a string: `null` is not a value it can have.
                let mut property = property.clone();
                if property.get("default") == Some(&Value::Null) {
                    property.as_object_mut().map(|p| p.remove("default"));
                }
                operation.parameter(
                    "query",
                    name,
                    required.contains(&name.as_str()),
                    property,
                    description.as_deref(),
                );
            }
        }
        operation.problem(StatusCode::BAD_REQUEST);
    }
}

impl<T: JsonSchema> OperationInput for Json<T> {
    /// A required JSON body: 415 without `Content-Type: application/json`, 413 over the body
    /// limit, 400 when malformed, 422 when of the wrong shape.
    fn describe_input(operation: &mut Operation) {
        let schema = operation.schemas().input::<T>();
        operation
            .request_body("application/json", schema, true)
            .problem(StatusCode::BAD_REQUEST)
            .problem(StatusCode::PAYLOAD_TOO_LARGE)
            .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
    }
}

impl OperationInput for Bytes {
    /// Any body, up to the limit (413 past it).
    fn describe_input(operation: &mut Operation) {
        let schema = json!({ "type": "string", "contentMediaType": "application/octet-stream" });
        operation
            .request_body("application/octet-stream", schema, false)
            .problem(StatusCode::PAYLOAD_TOO_LARGE);
    }
}

impl OperationInput for String {
    /// A UTF-8 body, up to the limit (413 past it, 400 when not UTF-8).
    fn describe_input(operation: &mut Operation) {
        operation
            .request_body("text/plain", json!({ "type": "string" }), false)
            .problem(StatusCode::BAD_REQUEST)
            .problem(StatusCode::PAYLOAD_TOO_LARGE);
    }
}

impl<T: OperationInput> OperationInput for Option<T> {
    /// What `T` reads, its body optional.
    fn describe_input(operation: &mut Operation) {
        T::describe_input(operation);
        operation.request_body_optional();
    }
}

impl<T: OperationInput, E> OperationInput for Result<T, E> {
    /// What `T` reads: the handler answers its failures itself.
    fn describe_input(operation: &mut Operation) {
        T::describe_input(operation);
    }
}

/// Extractors that read nothing a client must send, or nothing a document can say.
macro_rules! reads_nothing_documented {
    ($($ty:ty),* $(,)?) => {
        $(impl OperationInput for $ty {})*
    };
}

reads_nothing_documented!(
    Request,
    HeaderMap,
    Method,
    Uri,
    Version,
    RemoteAddr,
    MatchedPath,
    RequestId,
);

impl OperationInput for crate::server::PeerIdentity {
    /// 401 without a verified client certificate.
    fn describe_input(operation: &mut Operation) {
        operation.problem(StatusCode::UNAUTHORIZED);
    }
}

#[cfg(feature = "auth")]
impl OperationInput for crate::auth::Identity {
    /// 401 without verified credentials (a bearer JWT or an API key).
    fn describe_input(operation: &mut Operation) {
        operation.problem(StatusCode::UNAUTHORIZED);
    }
}

impl<T> OperationInput for State<T> {}
impl<T> OperationInput for Extension<T> {}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;
    use crate::openapi::Schemas;

    fn describe<T: OperationInput>(params: &[&str]) -> Value {
        let params = params.iter().map(|p| p.to_string()).collect();
        let mut operation = Operation::new(params, Schemas::new());
        T::describe_input(&mut operation);
        operation.finish().0
    }

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct CartItem {
        uid: u64,
        id: u32,
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Page {
        limit: u8,
        #[serde(default)]
        offset: u64,
        name: Option<String>,
        #[serde(default)]
        after: Option<u32>,
    }

    #[test]
    fn a_path_value_is_the_last_parameter() {
        let op = describe::<Path<u64>>(&["uid", "id"]);
        let params = op["parameters"].as_array().unwrap();
        assert_eq!(params.len(), 2);
        let id = params.iter().find(|p| p["name"] == "id").unwrap();
        assert_eq!(id["schema"]["format"], "uint64");
        assert_eq!(id["required"], true);
        let uid = params.iter().find(|p| p["name"] == "uid").unwrap();
        assert_eq!(uid["schema"]["type"], "string");
        assert!(op["responses"]["400"].is_object());
    }

    #[test]
    fn a_path_struct_and_a_tuple_name_their_parameters() {
        let op = describe::<Path<CartItem>>(&["uid", "id"]);
        let params = &op["parameters"];
        assert_eq!(params[0]["name"], "uid");
        assert_eq!(params[1]["schema"]["format"], "uint32");
        let op = describe::<Path<(String, u16)>>(&["dir", "n"]);
        assert_eq!(op["parameters"][0]["schema"]["type"], "string");
        assert_eq!(op["parameters"][1]["schema"]["format"], "uint16");
    }

    #[test]
    fn query_fields_are_parameters_required_as_serde_requires() {
        let op = describe::<Query<Page>>(&[]);
        let params = op["parameters"].as_array().unwrap();
        let by_name = |name: &str| params.iter().find(|p| p["name"] == name).unwrap().clone();
        assert_eq!(by_name("limit")["required"], true);
        assert_eq!(by_name("offset")["required"], false);
        assert_eq!(by_name("name")["required"], false);
        assert_eq!(by_name("limit")["in"], "query");
        assert_eq!(by_name("after")["required"], false);
        assert!(by_name("after")["schema"].get("default").is_none());
        assert!(op["responses"]["400"].is_object());
    }

    #[test]
    fn a_json_body_is_required_and_brings_its_problems() {
        let op = describe::<Json<Page>>(&[]);
        let body = &op["requestBody"];
        assert_eq!(body["required"], true);
        assert_eq!(
            body["content"]["application/json"]["schema"],
            json!({"$ref": "#/components/schemas/Page"})
        );
        for status in ["400", "413", "415", "422"] {
            let content = &op["responses"][status]["content"];
            assert!(content["application/problem+json"].is_object(), "{status}");
        }
        let op = describe::<Option<Json<Page>>>(&[]);
        assert_eq!(op["requestBody"]["required"], false);
    }

    #[test]
    fn raw_bodies_and_context_extractors() {
        let op = describe::<Bytes>(&[]);
        assert!(op["requestBody"]["content"]["application/octet-stream"].is_object());
        assert!(op["responses"]["413"].is_object());
        let op = describe::<String>(&[]);
        assert!(op["requestBody"]["content"]["text/plain"].is_object());
        let op = describe::<State<u8>>(&[]);
        assert!(op.get("parameters").is_none());
        assert!(op.get("requestBody").is_none());
        let op = describe::<HeaderMap>(&[]);
        assert_eq!(
            op["responses"],
            json!({"default": {"description": "any answer: the route does not say"}})
        );
    }
}

#[cfg(test)]
mod every_extractor {
    use serde_json::json;

    use super::*;
    use crate::openapi::Schemas;

    fn describe<T: OperationInput>() -> Value {
        let mut operation = Operation::new(vec!["id".to_owned()], Schemas::new());
        T::describe_input(&mut operation);
        operation.finish().0
    }

    /// What a request must carry beyond the path's own parameter, and the problems.
    fn contributes(operation: &Value) -> (usize, bool, Vec<String>) {
        let parameters = operation["parameters"].as_array().map_or(0, Vec::len);
        let mut problems: Vec<String> = operation["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, response)| response["content"][super::super::PROBLEM_JSON].is_object())
            .map(|(status, _)| status.clone())
            .collect();
        problems.sort();
        (parameters, operation.get("requestBody").is_some(), problems)
    }

    #[test]
    fn context_extractors_contribute_nothing() {
        // Only the path's own parameter, as an untyped string, and no problem.
        let nothing = (1, false, Vec::<String>::new());
        assert_eq!(contributes(&describe::<Request>()), nothing);
        assert_eq!(contributes(&describe::<HeaderMap>()), nothing);
        assert_eq!(contributes(&describe::<Method>()), nothing);
        assert_eq!(contributes(&describe::<Uri>()), nothing);
        assert_eq!(contributes(&describe::<Version>()), nothing);
        assert_eq!(contributes(&describe::<RemoteAddr>()), nothing);
        assert_eq!(contributes(&describe::<MatchedPath>()), nothing);
        assert_eq!(contributes(&describe::<RequestId>()), nothing);
        assert_eq!(contributes(&describe::<Extension<u8>>()), nothing);
        assert_eq!(contributes(&describe::<State<String>>()), nothing);
        let untyped = &describe::<Request>()["parameters"][0]["schema"];
        assert_eq!(untyped, &json!({ "type": "string" }));
    }

    #[test]
    fn identities_may_be_refused_with_401() {
        let op = describe::<crate::server::PeerIdentity>();
        assert_eq!(contributes(&op), (1, false, vec!["401".to_owned()]));
        #[cfg(feature = "auth")]
        {
            let op = describe::<crate::auth::Identity>();
            assert_eq!(contributes(&op), (1, false, vec!["401".to_owned()]));
        }
    }

    #[test]
    fn a_result_reads_what_its_extractor_reads() {
        let op = describe::<Result<Json<u32>, crate::extract::Rejection>>();
        assert_eq!(op["requestBody"]["required"], true);
        let problems = contributes(&op).2;
        assert_eq!(problems, ["400", "413", "415", "422"]);
        let op = describe::<Result<Path<u16>, crate::extract::Rejection>>();
        assert_eq!(op["parameters"][0]["schema"]["maximum"], u16::MAX);
    }

    #[test]
    fn an_optional_query_keeps_its_parameters() {
        #[derive(serde::Deserialize, JsonSchema)]
        #[allow(dead_code)]
        struct Search {
            q: String,
        }
        let op = describe::<Option<Query<Search>>>();
        let q = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "q")
            .unwrap();
        assert_eq!(q["in"], "query");
        assert!(op.get("requestBody").is_none());
    }
}
