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

    /// Adds every documented route of `router`: each routed method that is not
    /// [`undocumented`](crate::router::MethodRouter::undocumented). A route for every method
    /// (`any`) appears under each method OpenAPI names that the path does not route otherwise,
    /// its operation id (if any) followed by the method. A tower service gives the path's
    /// parameters and "any answer" unless described further. Fallbacks are left out (they have
    /// no path), and so are patterns with literal braces (`/{{x}}`): OpenAPI cannot escape a
    /// brace in a path.
    pub fn routes<S>(mut self, router: &Router<S>) -> Self {
        for (pattern, method_router) in router.method_routers() {
            let Some((path, params)) = template(pattern) else {
                continue;
            };
            let docs = method_router.docs();
            let routed: Vec<&Method> = docs.iter().filter_map(|(m, _)| m.as_ref()).collect();
            for (method, doc) in docs {
                if doc.hidden {
                    continue;
                }
                let methods: Vec<&Method> = match method {
                    Some(method) => vec![method],
                    None => OPENAPI_METHODS
                        .iter()
                        .filter(|method| !routed.contains(method))
                        .collect(),
                };
                for each in methods {
                    let Some(key) = method_key(each) else {
                        continue;
                    };
                    let schemas = std::mem::take(&mut self.schemas);
                    let mut operation = Operation::new(params.clone(), schemas);
                    doc.describe(&mut operation);
                    let (mut operation, schemas) = operation.finish();
                    self.schemas = schemas;
                    if let (None, Some(Value::String(id))) =
                        (method, operation.get_mut("operationId"))
                    {
                        id.push_str(&each.as_str()[..1]);
                        id.push_str(&each.as_str()[1..].to_lowercase());
                    }
                    self.insert(&path, key, operation);
                }
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

/// The methods an OpenAPI path item has an operation for.
const OPENAPI_METHODS: [Method; 8] = [
    Method::GET,
    Method::PUT,
    Method::POST,
    Method::DELETE,
    Method::OPTIONS,
    Method::HEAD,
    Method::PATCH,
    Method::TRACE,
];

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

    #[test]
    fn any_routes_and_services_document_their_methods_and_parameters() {
        use crate::router::{any, any_service, get, MethodRouter};
        let service = tower::service_fn(|_: crate::Request| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(crate::Body::empty()))
        });
        let router: Router = Router::new()
            .route("/proxy/{*rest}", any_service(service))
            .route(
                "/items/{id}",
                get(|| async { "one" })
                    .any(|| async { "other" })
                    .describe(|op| {
                        op.operation_id("item");
                    }),
            )
            .route(
                "/pull",
                MethodRouter::new().on_service(Method::POST, service),
            )
            .route("/{{literal}}", any(|| async { "x" }));
        let document = Document::new("t", "1").routes(&router).to_json();
        let paths = document["paths"].as_object().unwrap();
        let keys = |path: &str| -> Vec<String> {
            paths[path].as_object().unwrap().keys().cloned().collect()
        };
        let every = [
            "delete", "get", "head", "options", "patch", "post", "put", "trace",
        ];
        assert_eq!(keys("/proxy/{rest}"), every);
        let proxy = &paths["/proxy/{rest}"];
        assert_eq!(proxy["get"]["parameters"][0]["name"], "rest");
        assert!(proxy["delete"]["responses"]["default"].is_object());
        // GET is its own handler's; `any` answers the other seven, HEAD included.
        assert_eq!(keys("/items/{id}"), every);
        let items = &paths["/items/{id}"];
        assert_eq!(items["get"].get("operationId"), None);
        assert_eq!(items["post"]["operationId"], "itemPost");
        assert_eq!(items["head"]["operationId"], "itemHead");
        assert_eq!(
            items["put"]["responses"]["200"]["content"]["text/plain"]["schema"]["type"],
            "string"
        );
        assert_eq!(keys("/pull"), ["post"]);
        assert!(paths["/pull"]["post"]["responses"]["default"].is_object());
        assert_eq!(paths.len(), 3, "a literal brace has no OpenAPI path");
    }
}
