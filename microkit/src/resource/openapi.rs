//! OpenAPI 3.1 documents built from resources.
//!
//! Every resource contributes its paths (only the actions it has) and a JSON Schema of its
//! type under `components/schemas`; errors reference one `Problem` schema (RFC 9457).
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

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use serde_json::{json, Map, Value};

use super::spec::Resource;
use super::store::IdKind;
use crate::router::get;
use crate::Router;

/// An OpenAPI 3.1 document under construction.
#[derive(Debug, Clone)]
pub struct OpenApi {
    title: String,
    version: String,
    paths: Map<String, Value>,
    schemas: Map<String, Value>,
}

impl OpenApi {
    /// A document titled `title` for API version `version`.
    pub fn new(title: impl Into<String>, version: impl Into<String>) -> Self {
        let mut schemas = Map::new();
        schemas.insert("Problem".to_owned(), problem_schema());
        Self {
            title: title.into(),
            version: version.into(),
            paths: Map::new(),
            schemas,
        }
    }

    /// Adds a resource's paths and schema.
    pub fn resource<R: Resource>(mut self) -> Self {
        let spec = &R::SPEC;
        let name = spec.name;
        let schema_ref = json!({ "$ref": format!("#/components/schemas/{name}") });
        self.schemas.insert(name.to_owned(), R::json_schema());
        let parents: Vec<Value> = spec
            .parent_params()
            .into_iter()
            .map(|param| path_param(param, json!({ "type": "string" })))
            .collect();
        let id_schema = match spec.id_kind {
            IdKind::Integer => json!({ "type": "integer", "format": "int64" }),
            IdKind::Uuid => json!({ "type": "string", "format": "uuid" }),
            IdKind::Text => json!({ "type": "string" }),
        };
        let mut item_params = parents.clone();
        item_params.push(path_param(spec.id_param(), id_schema));
        let actions = spec.actions;
        let lower = name.to_lowercase();

        if actions.create {
            let operation = json!({
                "operationId": format!("create{name}"),
                "summary": format!("Create a {lower}"),
                "parameters": parents,
                "requestBody": { "required": true, "content": { "application/json": { "schema": schema_ref } } },
                "responses": with_problems(json!({
                    "201": {
                        "description": "Created",
                        "headers": { "Location": { "schema": { "type": "string" } }, "ETag": { "schema": { "type": "string" } } },
                        "content": { "application/json": { "schema": schema_ref } }
                    }
                }), &["400", "409", "413", "415", "422"]),
            });
            self.operation(&spec.create_path(), "post", operation);
        }
        if actions.list {
            let mut parameters = parents.clone();
            parameters.push(query_param(
                "offset",
                json!({ "type": "integer", "minimum": 0, "default": 0 }),
            ));
            parameters.push(query_param(
                "limit",
                json!({ "type": "integer", "minimum": 0, "maximum": spec.max_limit, "default": spec.default_limit }),
            ));
            let schema = R::json_schema();
            for field in spec.filterable {
                let mut field_schema = schema["properties"][*field].clone();
                if let Some(map) = field_schema.as_object_mut() {
                    map.remove("readOnly");
                }
                parameters.push(query_param(field, field_schema));
            }
            let operation = json!({
                "operationId": format!("list{name}"),
                "summary": format!("List {lower} items by ascending id"),
                "parameters": parameters,
                "responses": with_problems(json!({
                    "200": {
                        "description": "A page of items",
                        "headers": { "Link": { "description": "The next page, while more remain", "schema": { "type": "string" } } },
                        "content": { "application/json": { "schema": {
                            "type": "object",
                            "required": ["items", "total"],
                            "properties": {
                                "items": { "type": "array", "items": schema_ref },
                                "total": { "type": "integer", "minimum": 0 }
                            }
                        } } }
                    }
                }), &["400"]),
            });
            self.operation(&spec.list_path(), "get", operation);
        }
        let item_path = spec.item_pattern();
        let item_ok = json!({
            "description": "The item",
            "headers": { "ETag": { "schema": { "type": "string" } } },
            "content": { "application/json": { "schema": schema_ref } }
        });
        let if_match = json!({ "name": "If-Match", "in": "header", "required": false, "schema": { "type": "string" } });
        if actions.read {
            self.operation(&item_path, "get", json!({
                "operationId": format!("get{name}"),
                "summary": format!("Read a {lower}"),
                "parameters": item_params,
                "responses": with_problems(json!({ "200": item_ok, "304": { "description": "Not modified" } }), &["400", "404"]),
            }));
        }
        let mut write_params = item_params.clone();
        write_params.push(if_match);
        if actions.update {
            self.operation(&item_path, "put", json!({
                "operationId": format!("replace{name}"),
                "summary": format!("Replace a {lower}"),
                "parameters": write_params,
                "requestBody": { "required": true, "content": { "application/json": { "schema": schema_ref } } },
                "responses": with_problems(json!({ "200": item_ok }), &["400", "404", "409", "412", "413", "415", "422"]),
            }));
        }
        if actions.patch {
            self.operation(&item_path, "patch", json!({
                "operationId": format!("patch{name}"),
                "summary": format!("Change a {lower} with a JSON Merge Patch"),
                "parameters": write_params,
                "requestBody": { "required": true, "content": { "application/merge-patch+json": { "schema": { "type": "object" } } } },
                "responses": with_problems(json!({ "200": item_ok }), &["400", "404", "409", "412", "413", "415", "422"]),
            }));
        }
        if actions.delete {
            self.operation(&item_path, "delete", json!({
                "operationId": format!("delete{name}"),
                "summary": format!("Delete a {lower}"),
                "parameters": write_params,
                "responses": with_problems(json!({ "204": { "description": "Deleted" } }), &["400", "404", "412"]),
            }));
        }
        self
    }

    fn operation(&mut self, path: &str, method: &str, operation: Value) {
        let entry = self
            .paths
            .entry(openapi_path(path))
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(methods) = entry.as_object_mut() {
            methods.insert(method.to_owned(), operation);
        }
    }

    /// The document as JSON.
    pub fn document(&self) -> Value {
        json!({
            "openapi": "3.1.0",
            "info": { "title": self.title, "version": self.version },
            "paths": self.paths,
            "components": { "schemas": self.schemas },
        })
    }

    /// A router serving the document at `GET /openapi.json`.
    pub fn router(&self) -> Router {
        // Serialized once: the document never changes while the router lives.
        let document = Bytes::from(serde_json::to_vec(&self.document()).unwrap_or_default());
        Router::new().route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { ([(CONTENT_TYPE, "application/json")], document) }
            }),
        )
    }
}

/// OpenAPI writes path parameters as `{name}`, as microkit does; catch-alls lose their `*`.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn path_param(name: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": schema })
}

fn query_param(name: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema })
}

fn with_problems(mut responses: Value, statuses: &[&str]) -> Value {
    if let Some(map) = responses.as_object_mut() {
        for status in statuses {
            map.insert(
                (*status).to_owned(),
                json!({
                    "description": problem_description(status),
                    "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
                }),
            );
        }
    }
    responses
}

fn problem_description(status: &str) -> &'static str {
    match status {
        "400" => "Malformed request",
        "404" => "No such item",
        "409" => "A unique value is taken",
        "412" => "The item changed since the If-Match version",
        "413" => "The body is too large",
        "415" => "The body is not JSON",
        "422" => "The item is not valid; every failing field is listed",
        _ => "Error",
    }
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status"],
        "properties": {
            "type": { "type": "string" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
            "instance": { "type": "string" },
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": { "field": { "type": "string" }, "message": { "type": "string" } }
                }
            }
        }
    })
}
