//! The OpenAPI operations of resources: what each generated endpoint takes and answers,
//! exactly as the generic handlers do it.
//!
//! [`ResourceRoutes`](super::ResourceRoutes) attaches these operations to its routes, so a
//! router holding a resource documents it like any other route ([`Router::openapi`],
//! [`Microservice`](crate::service::Microservice)'s `/openapi.json`). [`OpenApi`] builds a
//! document of resources alone, without their routes.
//!
//! Each resource has three component schemas, since serde and the normalizer treat the three
//! directions differently: `Name` (what `POST` and `PUT` take: unknown members refused, server
//! members ignored whatever their value), `NamePatch` (a JSON Merge Patch: every member
//! optional, `null` removing the optional ones) and `NameResponse` (what the server answers).
//!
//! ```
//! #[derive(serde::Serialize, serde::Deserialize, microkit::Resource)]
//! #[resource(path = "/product", list_path = "/products/")]
//! struct Product {
//!     #[resource(id)]
//!     id: u64,
//!     name: String,
//! }
//!
//! use microkit::resource::OpenApi;
//!
//! let api = OpenApi::new("catalog", "1.0.0").resource::<Product>();
//! let document = api.document();
//! assert_eq!(document["openapi"], "3.1.0");
//! assert!(document["paths"]["/product/{id}"]["get"].is_object());
//! let router: microkit::Router = api.router(); // serves GET /openapi.json
//! ```

use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::schema::nullable;
use super::spec::{Resource, ResourceSpec};
use super::store::{IdKind, MAX_TEXT_ID_LEN};
use crate::idempotency::IdempotencyConfig;
use crate::openapi::{document_router, Document, Operation, ResponseKey};
use crate::Router;

/// The largest `offset` and `limit` the list accepts: the stores count in `i64`.
pub(crate) const MAX_PAGING: u64 = i64::MAX as u64;

/// The generated endpoints of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST {path}/`, or one more path a create is routed at (its index among them).
    Create(usize),
    /// `GET {list path}`
    List,
    /// `GET {path}/{id}`
    Read,
    /// `PUT {path}/{id}`
    Update,
    /// `PATCH {path}/{id}`
    Patch,
    /// `DELETE {path}/{id}`
    Delete,
}

/// A parameter of an operation.
struct Parameter {
    location: &'static str,
    name: String,
    required: bool,
    schema: Value,
    description: Option<String>,
}

impl Parameter {
    fn path(name: &str, schema: Value) -> Self {
        Self {
            location: "path",
            name: name.to_owned(),
            required: true,
            schema,
            description: None,
        }
    }

    fn query(name: &str, schema: Value, description: Option<String>) -> Self {
        Self {
            location: "query",
            name: name.to_owned(),
            required: false,
            schema,
            description,
        }
    }

    fn header(name: &str, schema: Value, description: &str) -> Self {
        Self {
            location: "header",
            name: name.to_owned(),
            required: false,
            schema,
            description: Some(description.to_owned()),
        }
    }
}

/// Every parameter of `endpoint`, in order: the one place they are listed.
fn parameters<R: Resource>(endpoint: Endpoint) -> Vec<Parameter> {
    let spec = &R::SPEC;
    let mut parameters: Vec<Parameter> = spec
        .parent_params()
        .into_iter()
        .map(|name| {
            let schema = spec
                .parent_id_kind(name)
                .map_or_else(|| json!({ "type": "string", "minLength": 1 }), id_schema);
            Parameter::path(name, schema)
        })
        .collect();
    let item = Parameter::path(spec.id_param(), id_schema(spec.id_kind));
    match endpoint {
        Endpoint::Create(_) => {}
        Endpoint::List => {
            parameters.push(Parameter::query(
                "offset",
                json!({ "type": "integer", "minimum": 0, "maximum": MAX_PAGING, "default": 0 }),
                Some("How many items to skip, by ascending id.".to_owned()),
            ));
            parameters.push(Parameter::query(
                "limit",
                json!({
                    "type": "integer", "minimum": 0, "maximum": MAX_PAGING,
                    "default": spec.default_limit,
                }),
                Some(format!(
                    "How many items to return: at most {}, a larger limit reads as {}.",
                    spec.max_limit, spec.max_limit
                )),
            ));
            let schema = R::json_schema();
            for field in spec.filterable {
                let description = format!("Only items whose `{field}` equals this value.");
                let schema = filter_schema(&schema["properties"][*field]);
                parameters.push(Parameter::query(field, schema, Some(description)));
            }
        }
        Endpoint::Read => {
            parameters.push(item);
            parameters.push(Parameter::header(
                "If-None-Match",
                json!({ "type": "string" }),
                "An `ETag` of the item: 304 without a body while it is still that version.",
            ));
        }
        Endpoint::Update | Endpoint::Patch | Endpoint::Delete => {
            parameters.push(item);
            parameters.push(Parameter::header(
                "If-Match",
                json!({ "type": "string", "pattern": IF_MATCH_PATTERN }),
                "`*` or the `ETag`s of versions the write applies to: 412 when the item \
                 is at another version. A value that is not a list of entity tags is a 400.",
            ));
        }
    }
    parameters
}

/// `*`, or a comma-separated list of entity tags, possibly empty (RFC 9110, section 13.1.1).
pub(crate) const IF_MATCH_PATTERN: &str =
    r#"^[ \t]*(\*|((W/)?"[!#-~]*"([ \t]*,[ \t]*(W/)?"[!#-~]*")*)?)[ \t]*$"#;

/// The schema of an id of `kind`, as a path segment: what [`Id::parse`] accepts.
///
/// [`Id::parse`]: super::store::Id::parse
fn id_schema(kind: IdKind) -> Value {
    match kind {
        IdKind::Integer => json!({ "type": "integer", "minimum": 1, "maximum": i64::MAX }),
        IdKind::Uuid => json!({ "type": "string", "format": "uuid" }),
        IdKind::Text => json!({
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_TEXT_ID_LEN,
            "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]+$",
            "description": format!("At most {MAX_TEXT_ID_LEN} bytes in UTF-8, without control characters."),
        }),
    }
}

/// A filter parameter's schema: any value of the field's JSON type (a filter asks for
/// equality, so the field's own rules do not apply: `name=` finds nothing, and is no error).
fn filter_schema(field: &Value) -> Value {
    let types: Vec<&str> = match &field["type"] {
        Value::String(kind) => vec![kind.as_str()],
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.contains(&"integer") {
        json!({ "type": "integer", "minimum": i64::MIN, "maximum": u64::MAX })
    } else if types.contains(&"number") {
        json!({ "type": "number" })
    } else if types.contains(&"boolean") {
        json!({ "type": "boolean" })
    } else {
        json!({ "type": "string" })
    }
}

/// The three component schemas of a resource, by name.
fn components<R: Resource>() -> [(String, Value); 3] {
    let spec = &R::SPEC;
    let schema = R::json_schema();
    let properties = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let required: Vec<String> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let ignored = json!({
        "readOnly": true,
        "description": "Set by the server: a value sent is ignored.",
    });
    // A client chooses a text id when it creates an item, and the server keeps it.
    let client_sets = |field: &str| field == spec.id_field && spec.id_kind == IdKind::Text;
    let mut request = Map::new();
    let mut patch = Map::new();
    for (name, property) in &properties {
        if spec.is_server_set(name) && !client_sets(name) {
            request.insert(name.clone(), ignored.clone());
            patch.insert(name.clone(), ignored.clone());
            continue;
        }
        request.insert(name.clone(), property.clone());
        let patched = match required.contains(name) {
            true => property.clone(),
            // `null` removes the member, which then takes its default.
            false => nullable(property.clone()),
        };
        patch.insert(name.clone(), patched);
    }
    if let Some(flag) = spec.soft_delete {
        request.entry(flag.to_owned()).or_insert(ignored.clone());
        patch.entry(flag.to_owned()).or_insert(ignored.clone());
    }
    let object = |properties: Map<String, Value>, required: &[String], about: String| {
        let mut object = json!({
            "type": "object",
            "description": about,
            "properties": properties,
            "additionalProperties": false,
        });
        if !required.is_empty() {
            object["required"] = json!(required);
        }
        object
    };
    let about = schema["description"]
        .as_str()
        .unwrap_or(spec.name)
        .to_owned();
    let mut answered = required.clone();
    if !answered.iter().any(|field| field == spec.id_field) {
        answered.insert(0, spec.id_field.to_owned());
    }
    [
        (
            spec.name.to_owned(),
            object(request, &required, about.clone()),
        ),
        (format!("{}Patch", spec.name), {
            let mut patch = object(
                patch,
                &[],
                format!("A JSON Merge Patch (RFC 7396) of: {about}"),
            );
            // Removing a member the item cannot have changes nothing (RFC 7396).
            patch["additionalProperties"] = json!({ "type": "null" });
            patch
        }),
        (
            format!("{}Response", spec.name),
            object(properties, &answered, about),
        ),
    ]
}

fn component_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Documents `endpoint` of `R` on `operation`: parameters, body, answers and their headers,
/// and the `Idempotency-Key` that create and `PATCH` honour when `keys` is on (`None`: off).
/// Every document of a resource, served by its routes or built by [`OpenApi`], comes from here.
pub(crate) fn describe<R: Resource>(
    endpoint: Endpoint,
    keys: Option<IdempotencyConfig>,
    operation: &mut Operation,
) {
    let spec = &R::SPEC;
    let name = spec.name;
    let [request, patch, response] = components::<R>();
    let request_ref = component_ref(&request.0);
    let patch_ref = component_ref(&patch.0);
    let item_ref = component_ref(&response.0);
    for (component, schema) in [request, patch, response] {
        operation.schemas().insert_component(&component, schema);
    }
    for parameter in parameters::<R>(endpoint) {
        operation.parameter(
            parameter.location,
            &parameter.name,
            parameter.required,
            parameter.schema,
            parameter.description.as_deref(),
        );
    }
    let etag = json!({ "type": "string", "pattern": "^\"[0-9]+\"$" });
    let lower = name.to_lowercase();
    let item = |description: &str| {
        json!({
            "description": description,
            "headers": { "ETag": { "description": "The item's version.", "schema": etag } },
            "content": { "application/json": { "schema": item_ref } },
        })
    };
    match endpoint {
        Endpoint::Create(index) => {
            let id = match index {
                0 => format!("create{name}"),
                n => format!("create{name}At{}", n + 1),
            };
            let mut created = item("Created");
            created["headers"]["Location"] = json!({
                "description": "The new item's URL.",
                "schema": { "type": "string", "format": "uri-reference" },
            });
            operation
                .operation_id(id)
                .summary(format!("Create a {lower}"))
                .request_body("application/json", request_ref, true)
                .response_object(ResponseKey::Status(201), created)
                .problem(StatusCode::CONFLICT)
                .problem(StatusCode::PAYLOAD_TOO_LARGE)
                .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                .problem(StatusCode::UNPROCESSABLE_ENTITY);
        }
        Endpoint::List => {
            let page = json!({
                "type": "object",
                "required": ["items", "total"],
                "additionalProperties": false,
                "properties": {
                    "items": { "type": "array", "items": item_ref },
                    "total": { "type": "integer", "minimum": 0, "description": "How many items match, on every page." },
                },
            });
            operation
                .operation_id(format!("list{name}"))
                .summary(format!("List {lower} items by ascending id"))
                .response_object(
                    ResponseKey::Status(200),
                    json!({
                        "description": "A page of items",
                        "headers": { "Link": {
                            "description": "`<URL>; rel=\"next\"`: the next page, while more items remain.",
                            "schema": { "type": "string" },
                        } },
                        "content": { "application/json": { "schema": page } },
                    }),
                );
        }
        Endpoint::Read => {
            operation
                .operation_id(format!("get{name}"))
                .summary(format!("Read a {lower}"))
                .response_object(ResponseKey::Status(200), item("The item"))
                .response_object(
                    ResponseKey::Status(304),
                    json!({
                        "description": "Not modified: the item is still the version `If-None-Match` names",
                        "headers": { "ETag": { "description": "The item's version.", "schema": etag } },
                    }),
                )
                .problem(StatusCode::NOT_FOUND);
        }
        Endpoint::Update | Endpoint::Patch => {
            let (id, summary, media_types) = match endpoint {
                Endpoint::Update => (
                    format!("replace{name}"),
                    format!("Replace a {lower}"),
                    vec![("application/json", request_ref)],
                ),
                _ => (
                    format!("patch{name}"),
                    format!("Change a {lower} with a JSON Merge Patch"),
                    vec![
                        ("application/merge-patch+json", patch_ref.clone()),
                        ("application/json", patch_ref),
                    ],
                ),
            };
            let content: Map<String, Value> = media_types
                .into_iter()
                .map(|(media, schema)| (media.to_owned(), json!({ "schema": schema })))
                .collect();
            operation
                .operation_id(id)
                .summary(summary)
                .field(
                    "requestBody",
                    json!({ "required": true, "content": content }),
                )
                .response_object(ResponseKey::Status(200), item("The item as it is now"))
                .problem(StatusCode::NOT_FOUND)
                .problem(StatusCode::CONFLICT)
                .problem(StatusCode::PAYLOAD_TOO_LARGE)
                .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                .problem(StatusCode::UNPROCESSABLE_ENTITY);
            precondition(operation, &etag);
        }
        Endpoint::Delete => {
            operation
                .operation_id(format!("delete{name}"))
                .summary(format!("Delete a {lower}"))
                .response_object(
                    ResponseKey::Status(204),
                    json!({ "description": "Deleted" }),
                )
                .problem(StatusCode::NOT_FOUND);
            precondition(operation, &etag);
        }
    }
    // Every endpoint: a bad id, parent or query is a 400; a store that cannot be reached
    // a 503 to retry later.
    operation.problem(StatusCode::BAD_REQUEST).problem_header(
        StatusCode::SERVICE_UNAVAILABLE,
        "Retry-After",
        "Seconds to wait before trying again.",
        json!({ "type": "integer", "minimum": 0 }),
    );
    if let (Some(config), Endpoint::Create(_) | Endpoint::Patch) = (keys, endpoint) {
        operation.idempotency_key(&config);
    }
}

/// The 412 of a write whose `If-Match` names another version, with the current `ETag`.
fn precondition(operation: &mut Operation, etag: &Value) {
    operation.problem_header(
        StatusCode::PRECONDITION_FAILED,
        "ETag",
        "The item's current version.",
        etag.clone(),
    );
}

/// Adds every endpoint `R` has to `document`, as [`ResourceRoutes`](super::ResourceRoutes)
/// routes them, honouring `Idempotency-Key` as `keys` says.
fn add_resource<R: Resource>(document: Document, keys: Option<IdempotencyConfig>) -> Document {
    let spec: &ResourceSpec = &R::SPEC;
    let actions = spec.actions;
    let item = spec.item_pattern();
    let endpoints = [
        (
            actions.create,
            spec.create_path(),
            Method::POST,
            Endpoint::Create(0),
        ),
        (actions.list, spec.list_path(), Method::GET, Endpoint::List),
        (actions.read, item.clone(), Method::GET, Endpoint::Read),
        (actions.update, item.clone(), Method::PUT, Endpoint::Update),
        (actions.patch, item.clone(), Method::PATCH, Endpoint::Patch),
        (actions.delete, item, Method::DELETE, Endpoint::Delete),
    ];
    endpoints.into_iter().filter(|(enabled, ..)| *enabled).fold(
        document,
        |document, (_, path, method, endpoint)| {
            document.describe(&path, &method, |operation| {
                describe::<R>(endpoint, keys, operation)
            })
        },
    )
}

/// An OpenAPI 3.1 document of resources alone (a router holding their
/// [`ResourceRoutes`](super::ResourceRoutes) documents them itself).
#[derive(Debug, Clone)]
pub struct OpenApi {
    title: String,
    version: String,
    resources: Vec<fn(Document, Option<IdempotencyConfig>) -> Document>,
    /// `Idempotency-Key` on create and `PATCH`, as the resources' routes honour it.
    idempotency: Option<IdempotencyConfig>,
}

impl OpenApi {
    /// A document titled `title` for API version `version`.
    pub fn new(title: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            version: version.into(),
            resources: Vec::new(),
            idempotency: Some(IdempotencyConfig::default()),
        }
    }

    /// Documents `Idempotency-Key` on every create and `PATCH` with the keys `config` accepts,
    /// as the routes honour it: [`IdempotencyConfig::default`] unless told (as
    /// [`ResourceRoutes`](super::ResourceRoutes) does), `None` for routes built
    /// [`without_idempotency`](super::ResourceRoutes::without_idempotency).
    pub fn idempotency(mut self, config: Option<IdempotencyConfig>) -> Self {
        self.idempotency = config;
        self
    }

    /// Adds a resource's paths and schemas.
    pub fn resource<R: Resource>(mut self) -> Self {
        self.resources.push(add_resource::<R>);
        self
    }

    /// The document as JSON.
    pub fn document(&self) -> Value {
        let document = Document::new(&self.title, &self.version);
        self.resources
            .iter()
            .fold(document, |document, add| add(document, self.idempotency))
            .to_json()
    }

    /// A router serving the document at `GET /openapi.json` (and the viewer at `GET /docs`
    /// with the `docs` feature).
    pub fn router(&self) -> Router {
        document_router(&self.document())
    }
}
