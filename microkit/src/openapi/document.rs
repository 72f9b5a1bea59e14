//! A whole OpenAPI 3.1 document: the routes of a router, documents merged in, components.

use http::Method;
use serde_json::{json, Map, Value};

use super::problem::problem_schema;
use super::schemas::{bound_integers, drop_impossible_null_defaults, rewrite_refs, Schemas};
use super::Operation;
use crate::router::Router;

/// An OpenAPI 3.1 document under construction.
///
/// ```
/// use microkit::extract::Path;
/// use microkit::openapi::Document;
/// use microkit::router::get;
/// use microkit::Router;
///
/// async fn user(Path(id): Path<u32>) -> String { format!("user {id}") }
///
/// let app: Router = Router::new().route("/user/{id}", get(user));
/// let document = Document::new("users", "1.0.0").routes(&app).to_json();
/// assert_eq!(document["openapi"], "3.1.0");
/// let id = &document["paths"]["/user/{id}"]["get"]["parameters"][0];
/// assert_eq!(id["schema"]["maximum"], u32::MAX);
/// ```
#[derive(Debug)]
pub struct Document {
    info: Map<String, Value>,
    paths: Map<String, Value>,
    schemas: Schemas,
    components: Map<String, Value>,
}

impl Document {
    /// An empty document titled `title`, for API version `version`.
    pub fn new(title: impl Into<String>, version: impl Into<String>) -> Self {
        let mut info = Map::new();
        info.insert("title".to_owned(), title.into().into());
        info.insert("version".to_owned(), version.into().into());
        Self {
            info,
            paths: Map::new(),
            schemas: Schemas::new(),
            components: Map::new(),
        }
    }

    /// A description of the whole API (CommonMark).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.info
            .insert("description".to_owned(), description.into().into());
        self
    }

    /// Adds every documented route of `router`: each method routed to a handler that is not
    /// [`undocumented`](crate::router::MethodRouter::undocumented). Routes for every method
    /// (`any`, services, fallbacks) say nothing of what they take, and are left out.
    pub fn routes<S>(mut self, router: &Router<S>) -> Self {
        for (pattern, method_router) in router.method_routers() {
            let Some((path, params)) = template(pattern) else {
                continue;
            };
            for (method, doc) in method_router.docs() {
                let Some(method) = method_key(method) else {
                    continue;
                };
                if doc.hidden {
                    continue;
                }
                let schemas = std::mem::take(&mut self.schemas);
                let mut operation = Operation::new(params.clone(), schemas);
                doc.describe(&mut operation);
                let (operation, schemas) = operation.finish();
                self.schemas = schemas;
                self.insert(&path, method, operation);
            }
        }
        self
    }

    /// Adds an operation on `path` (a route pattern such as `/user/{id}`) described by hand,
    /// replacing one on the same path and method.
    pub fn describe(
        mut self,
        path: &str,
        method: &Method,
        describe: impl FnOnce(&mut Operation),
    ) -> Self {
        let (Some((path, params)), Some(method)) = (template(path), method_key(method)) else {
            return self;
        };
        let mut operation = Operation::new(params, std::mem::take(&mut self.schemas));
        describe(&mut operation);
        let (operation, schemas) = operation.finish();
        self.schemas = schemas;
        self.insert(&path, method, operation);
        self
    }

    /// Adds an operation given whole, replacing one on the same path and method.
    pub fn operation(mut self, path: &str, method: &Method, operation: Value) -> Self {
        if let Some(method) = method_key(method) {
            self.insert(path, method, operation);
        }
        self
    }

    /// Adds the paths and component schemas of another OpenAPI document; its operations
    /// replace those of this one on the same path and method.
    pub fn merge(mut self, other: &Value) -> Self {
        if let Some(paths) = other.get("paths").and_then(Value::as_object) {
            for (path, item) in paths {
                for (method, operation) in item.as_object().into_iter().flatten() {
                    self.insert(path, method, operation.clone());
                }
            }
        }
        let schemas = other
            .pointer("/components/schemas")
            .and_then(Value::as_object);
        for (name, schema) in schemas.into_iter().flatten() {
            self.components.insert(name.clone(), schema.clone());
        }
        self
    }

    fn insert(&mut self, path: &str, method: &str, operation: Value) {
        let item = self
            .paths
            .entry(path.to_owned())
            .or_insert_with(|| json!({}));
        item[method] = operation;
    }

    /// The document as JSON.
    pub fn to_json(self) -> Value {
        let (mut components, renames) = self.schemas.into_components();
        components.insert("Problem".to_owned(), problem_schema());
        components.extend(self.components);
        let mut document = json!({
            "openapi": "3.1.0",
            "info": self.info,
            "paths": self.paths,
            "components": { "schemas": components },
        });
        rewrite_refs(&mut document, &renames);
        bound_integers(&mut document);
        drop_impossible_null_defaults(&mut document);
        document
    }
}

/// The OpenAPI path template of a route pattern and its parameter names: `{*rest}` becomes
/// `{rest}`. A pattern with literal braces has no template (OpenAPI cannot escape them).
fn template(pattern: &str) -> Option<(String, Vec<String>)> {
    if pattern.contains("{{") || pattern.contains("}}") {
        return None;
    }
    let mut path = String::with_capacity(pattern.len());
    let mut params = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}')? + open;
        let name = rest[open + 1..close].trim_start_matches('*');
        path.push_str(&rest[..open]);
        path.push('{');
        path.push_str(name);
        path.push('}');
        params.push(name.to_owned());
        rest = &rest[close + 1..];
    }
    path.push_str(rest);
    Some((path, params))
}

fn method_key(method: &Method) -> Option<&'static str> {
    Some(match *method {
        Method::GET => "get",
        Method::PUT => "put",
        Method::POST => "post",
        Method::DELETE => "delete",
        Method::OPTIONS => "options",
        Method::HEAD => "head",
        Method::PATCH => "patch",
        Method::TRACE => "trace",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_keep_parameters_and_name_catch_alls() {
        assert_eq!(
            template("/files/{dir}/{*rest}"),
            Some((
                "/files/{dir}/{rest}".to_owned(),
                vec!["dir".into(), "rest".into()]
            ))
        );
        assert_eq!(
            template("/file-{name}.txt").unwrap().1,
            vec!["name".to_owned()]
        );
        assert_eq!(template("/{{literal}}"), None);
    }
}
