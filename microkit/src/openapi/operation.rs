//! One operation of the document (a method on a path) as its handler's types and the route's
//! own notes describe it.

use std::collections::BTreeMap;

use http::StatusCode;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use super::output::OperationOutput;
use super::problem::problem_response;
use super::schemas::Schemas;

/// The key of a response in an operation: a status, a class of statuses or any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResponseKey {
    /// One status, such as 201.
    Status(u16),
    /// Some success status, decided at run time (`2XX`).
    AnySuccess,
    /// Any status not listed otherwise (`default`).
    Default,
}

impl ResponseKey {
    fn as_key(self) -> String {
        match self {
            Self::Status(status) => status.to_string(),
            Self::AnySuccess => "2XX".to_owned(),
            Self::Default => "default".to_owned(),
        }
    }

    fn is_success(self) -> bool {
        match self {
            Self::Status(status) => (200..300).contains(&status),
            Self::AnySuccess => true,
            Self::Default => false,
        }
    }
}

/// An OpenAPI operation under construction: what extractors ([`OperationInput`]) and
/// responses ([`OperationOutput`]) contribute, then what the route adds by hand
/// ([`MethodRouter::describe`]): a summary, tags, an operation id, examples, extra
/// responses.
///
/// [`OperationInput`]: super::OperationInput
/// [`MethodRouter::describe`]: crate::router::MethodRouter::describe
#[derive(Debug)]
pub struct Operation {
    path_params: Vec<String>,
    schemas: Schemas,
    fields: Map<String, Value>,
    tags: Vec<String>,
    parameters: Vec<Value>,
    request_body: Option<Value>,
    responses: BTreeMap<ResponseKey, Value>,
    problems: Vec<u16>,
    problem_headers: Vec<(u16, String, Value)>,
    whole: Option<Value>,
}

impl Operation {
    /// An empty operation on a path whose template holds `path_params`, adding its schemas to
    /// `schemas`.
    pub fn new(path_params: Vec<String>, schemas: Schemas) -> Self {
        Self {
            path_params,
            schemas,
            fields: Map::new(),
            tags: Vec::new(),
            parameters: Vec::new(),
            request_body: None,
            responses: BTreeMap::new(),
            problems: Vec::new(),
            problem_headers: Vec::new(),
            whole: None,
        }
    }

    /// The names of the path's parameters, in order.
    pub fn path_params(&self) -> &[String] {
        &self.path_params
    }

    /// The document's schemas, to describe a type with.
    pub fn schemas(&mut self) -> &mut Schemas {
        &mut self.schemas
    }

    /// A one-line summary.
    pub fn summary(&mut self, summary: impl Into<String>) -> &mut Self {
        self.field("summary", summary.into())
    }

    /// A longer description (CommonMark).
    pub fn description(&mut self, description: impl Into<String>) -> &mut Self {
        self.field("description", description.into())
    }

    /// The operation's unique id (code generators name functions after it).
    pub fn operation_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.field("operationId", id.into())
    }

    /// Adds a tag, by which viewers group operations.
    pub fn tag(&mut self, tag: impl Into<String>) -> &mut Self {
        let tag = tag.into();
        if !self.tags.contains(&tag) {
            self.tags.push(tag);
        }
        self
    }

    /// Marks the operation deprecated.
    pub fn deprecated(&mut self) -> &mut Self {
        self.field("deprecated", true)
    }

    /// Sets any field of the operation object, such as an `x-` extension.
    pub fn field(&mut self, name: &str, value: impl Into<Value>) -> &mut Self {
        self.fields.insert(name.to_owned(), value.into());
        self
    }

    /// Adds a parameter (`location` is `path`, `query` or `header`), replacing one of the
    /// same name and location.
    pub fn parameter(
        &mut self,
        location: &str,
        name: &str,
        required: bool,
        schema: Value,
        description: Option<&str>,
    ) -> &mut Self {
        self.parameters
            .retain(|p| !(p["name"] == name && p["in"] == location));
        let mut parameter = json!({
            "name": name,
            "in": location,
            "required": required || location == "path",
            "schema": schema,
        });
        if let Some(description) = description {
            parameter["description"] = description.into();
        }
        self.parameters.push(parameter);
        self
    }

    /// A header the request may or must carry, with a string schema.
    pub fn request_header(&mut self, name: &str, required: bool, description: &str) -> &mut Self {
        self.parameter(
            "header",
            name,
            required,
            json!({ "type": "string" }),
            Some(description),
        )
    }

    /// Sets the request body: its media type and schema.
    pub fn request_body(&mut self, media_type: &str, schema: Value, required: bool) -> &mut Self {
        self.request_body = Some(json!({
            "required": required,
            "content": { media_type: { "schema": schema } },
        }));
        self
    }

    /// Marks an existing request body optional (an `Option<Json<T>>` extractor).
    pub fn request_body_optional(&mut self) -> &mut Self {
        if let Some(body) = &mut self.request_body {
            body["required"] = false.into();
        }
        self
    }

    /// An example of the request body.
    pub fn request_example(&mut self, example: Value) -> &mut Self {
        if let Some(Value::Object(content)) = self
            .request_body
            .as_mut()
            .and_then(|b| b.get_mut("content"))
        {
            for media in content.values_mut() {
                media["example"] = example.clone();
            }
        }
        self
    }

    /// Adds (or replaces) the response under `key`.
    pub fn response_object(&mut self, key: ResponseKey, response: Value) -> &mut Self {
        self.responses.insert(key, response);
        self
    }

    /// Documents `status` as answering with what `R` contributes (its success response, with
    /// the status set): for handlers that return a plain [`Response`](crate::Response).
    pub fn response<R: OperationOutput>(&mut self, status: StatusCode) -> &mut Self {
        let mut scratch = Operation::new(Vec::new(), std::mem::take(&mut self.schemas));
        R::describe_output(&mut scratch);
        self.schemas = std::mem::take(&mut scratch.schemas);
        let success = scratch
            .responses
            .into_iter()
            .find(|(key, _)| key.is_success())
            .map(|(_, response)| response)
            .unwrap_or_else(|| json!({}));
        self.set_status_response(status, success)
    }

    /// Documents `status` as answering with a JSON body of type `T`.
    pub fn json_response<T: JsonSchema + ?Sized>(&mut self, status: StatusCode) -> &mut Self {
        let schema = self.schemas.output::<T>();
        let response = json!({ "content": { "application/json": { "schema": schema } } });
        self.set_status_response(status, response)
    }

    fn set_status_response(&mut self, status: StatusCode, mut response: Value) -> &mut Self {
        if response.get("description").is_none() {
            response["description"] = reason(status).into();
        }
        self.responses
            .insert(ResponseKey::Status(status.as_u16()), response);
        self
    }

    /// Says which status the success response has where the types leave it open (a
    /// `(StatusCode, Json<T>)` output is `2XX`): moves it under `status`.
    pub fn success_status(&mut self, status: StatusCode) -> &mut Self {
        let found = self.responses.keys().copied().find(|key| key.is_success());
        if let Some(key) = found {
            let mut response = self.responses.remove(&key).unwrap_or_default();
            response["description"] = reason(status).into();
            self.responses
                .insert(ResponseKey::Status(status.as_u16()), response);
        }
        self
    }

    /// Moves a `200` response under `2XX`: the status is a run-time value.
    pub(crate) fn success_to_any(&mut self) -> &mut Self {
        if let Some(mut response) = self.responses.remove(&ResponseKey::Status(200)) {
            response["description"] = "a success status given at run time".into();
            self.responses.insert(ResponseKey::AnySuccess, response);
        }
        self
    }

    /// Documents a response header on every success response.
    pub fn response_header(&mut self, name: &str, description: &str, schema: Value) -> &mut Self {
        for (key, response) in &mut self.responses {
            if key.is_success() {
                response["headers"][name] = json!({ "description": description, "schema": schema });
            }
        }
        self
    }

    /// An example of the success response's body.
    pub fn response_example(&mut self, example: Value) -> &mut Self {
        for (key, response) in &mut self.responses {
            if let (true, Some(Value::Object(content))) =
                (key.is_success(), response.get_mut("content"))
            {
                for media in content.values_mut() {
                    media["example"] = example.clone();
                }
            }
        }
        self
    }

    /// Documents a problem (`application/problem+json`) answer with `status`.
    pub fn problem(&mut self, status: StatusCode) -> &mut Self {
        let status = status.as_u16();
        if !self.problems.contains(&status) {
            self.problems.push(status);
        }
        self
    }

    /// Documents a header of the problem answer with `status` (`Retry-After` on a 429, say),
    /// documenting that answer too.
    pub fn problem_header(
        &mut self,
        status: StatusCode,
        name: &str,
        description: &str,
        schema: Value,
    ) -> &mut Self {
        self.problem(status);
        let header = json!({ "description": description, "schema": schema });
        self.problem_headers
            .push((status.as_u16(), name.to_owned(), header));
        self
    }

    /// Forgets a problem answer the types implied, for a route known not to give it.
    pub fn no_problem(&mut self, status: StatusCode) -> &mut Self {
        self.problems.retain(|s| *s != status.as_u16());
        self.responses.remove(&ResponseKey::Status(status.as_u16()));
        self
    }

    /// Whether the operation documents a response for `status` (exactly, or by class).
    pub fn documents(&self, status: StatusCode) -> bool {
        let key = ResponseKey::Status(status.as_u16());
        self.problems.contains(&status.as_u16())
            || self.responses.contains_key(&key)
            || (status.is_success() && self.responses.contains_key(&ResponseKey::AnySuccess))
    }

    /// Replaces everything with an operation object written elsewhere (a resource's
    /// generated one): what the types and other edits said is dropped. Component schemas it
    /// refers to are added with [`Schemas::insert_component`].
    pub fn replace_with(&mut self, operation: Value) -> &mut Self {
        self.whole = Some(operation);
        self
    }

    /// The operation object and the schemas, given back.
    pub(crate) fn finish(mut self) -> (Value, Schemas) {
        if let Some(whole) = self.whole.take() {
            return (whole, self.schemas);
        }
        let mut operation = Value::Object(std::mem::take(&mut self.fields));
        if !self.tags.is_empty() {
            operation["tags"] = json!(self.tags);
        }
        for name in &self.path_params {
            let declared = self
                .parameters
                .iter()
                .any(|p| p["in"] == "path" && p["name"] == name.as_str());
            if !declared {
                self.parameters.push(json!({
                    "name": name, "in": "path", "required": true, "schema": { "type": "string" },
                }));
            }
        }
        if !self.parameters.is_empty() {
            operation["parameters"] = Value::Array(self.parameters);
        }
        if let Some(body) = self.request_body {
            operation["requestBody"] = body;
        }
        let mut responses = Map::new();
        for (key, response) in self.responses {
            responses.insert(key.as_key(), response);
        }
        for status in self.problems {
            let key = status.to_string();
            if !responses.contains_key(&key) {
                responses.insert(key, problem_response(status));
            }
        }
        for (status, name, header) in self.problem_headers {
            if let Some(response) = responses.get_mut(&status.to_string()) {
                response["headers"][name] = header;
            }
        }
        if responses.is_empty() {
            responses.insert(
                "default".to_owned(),
                json!({ "description": "any answer: the route does not say" }),
            );
        }
        operation["responses"] = Value::Object(responses);
        (operation, self.schemas)
    }
}

/// The reason phrase of `status`, as a response's description.
pub(crate) fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("response")
}
