//! The gateway's OpenAPI document: the documents of the services it forwards to, merged
//! under the gateway's routes.
//!
//! An operation of a service is public when the gateway forwards its path and method to that
//! very service: a path the gateway does not route, routes to another service, or refuses as
//! internal (for every method, or for this one) is left out. Services are asked for their
//! own `/openapi.json` through the [`ServiceClient`], so the document follows the instances
//! that are up; it is cached for [`DOCUMENT_TTL`] and rebuilt on the next request after that
//! (sooner when a service could not answer), so instances coming and going are seen within
//! seconds without every `/openapi.json` fanning out to every service.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;

use super::Target;
use crate::client::ServiceClient;
use crate::openapi::{json_document, problem_schema, with_viewer, OPENAPI_PATH};
use crate::router::get;
use crate::router::matcher::Matcher;
use crate::{Response, Router};

/// How long a merged document is served before it is built again.
pub(super) const DOCUMENT_TTL: Duration = Duration::from_secs(10);
/// How long a document missing a service's part is served before trying again.
const INCOMPLETE_TTL: Duration = Duration::from_secs(1);

type Routes = Vec<(String, Option<Method>, Target)>;

struct EdgeDocument {
    client: ServiceClient,
    routes: Routes,
    services: Vec<String>,
    cached: Mutex<Option<(Instant, Duration, Bytes)>>,
}

/// Adds `GET /openapi.json` (the merged document) and `GET /docs` to the gateway's router.
pub(super) fn serve(
    router: Router,
    client: ServiceClient,
    routes: Routes,
    services: Vec<String>,
) -> Router {
    let edge = Arc::new(EdgeDocument {
        client,
        routes,
        services,
        cached: Mutex::new(None),
    });
    let router = router.route(
        OPENAPI_PATH,
        get(move || {
            let edge = edge.clone();
            async move { edge.response().await }
        })
        .undocumented(),
    );
    with_viewer(router, "gateway")
}

impl EdgeDocument {
    async fn response(&self) -> Response {
        // One build at a time: concurrent requests wait for it rather than fan out again.
        let mut cached = self.cached.lock().await;
        if let Some((built, ttl, body)) = cached.as_ref() {
            if built.elapsed() < *ttl {
                return json_document(body.clone());
            }
        }
        let (document, complete) = self.build().await;
        let body = Bytes::from(serde_json::to_vec(&document).expect("a JSON value serializes"));
        let ttl = if complete {
            DOCUMENT_TTL
        } else {
            INCOMPLETE_TTL
        };
        *cached = Some((Instant::now(), ttl, body.clone()));
        json_document(body)
    }

    async fn build(&self) -> (Value, bool) {
        let mut fetches = tokio::task::JoinSet::new();
        for service in self.services.iter().cloned() {
            let client = self.client.clone();
            fetches.spawn(async move {
                let document = client.get_json::<Value>(&service, OPENAPI_PATH).await;
                (service, document)
            });
        }
        let mut documents = Vec::new();
        let mut missing = Vec::new();
        while let Some(fetched) = fetches.join_next().await {
            match fetched {
                Ok((service, Ok(document))) => documents.push((service, document)),
                Ok((service, Err(err))) => {
                    tracing::warn!(%service, error = %err, "a service's OpenAPI document is unavailable");
                    missing.push(service);
                }
                Err(err) => missing.push(format!("(a fetch failed: {err})")),
            }
        }
        documents.sort_by(|a, b| a.0.cmp(&b.0));
        missing.sort();
        let mut document = merge(&self.routes, &documents);
        if !missing.is_empty() {
            document["info"]["description"] = format!(
                "Incomplete: no document from {} at the time of writing.",
                missing.join(", ")
            )
            .into();
        }
        (document, missing.is_empty())
    }
}

/// Where the gateway sends `method` on the pattern at `index`.
fn target<'a>(routes: &'a Routes, pattern: &str, method: &Method) -> Option<&'a Target> {
    let on_pattern = || routes.iter().filter(move |(p, _, _)| p == pattern);
    on_pattern()
        .find(|(_, m, _)| m.as_ref() == Some(method))
        .or_else(|| on_pattern().find(|(_, m, _)| m.is_none()))
        .map(|(_, _, target)| target)
}

/// The public operations of `documents` (service name, its document) in one document.
fn merge(routes: &Routes, documents: &[(String, Value)]) -> Value {
    let mut patterns: Vec<&str> = Vec::new();
    let mut matcher = Matcher::new();
    for (pattern, _, _) in routes {
        if !patterns.contains(&pattern.as_str())
            && matcher.insert(pattern.clone(), patterns.len()).is_ok()
        {
            patterns.push(pattern);
        }
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert("Problem".to_owned(), problem_schema());
    let mut operation_ids: Vec<String> = Vec::new();
    for (service, document) in documents {
        let renames = schema_renames(service, document, &schemas);
        let own_schemas = document
            .pointer("/components/schemas")
            .and_then(Value::as_object);
        for (name, schema) in own_schemas.into_iter().flatten() {
            let mut schema = schema.clone();
            rewrite(&mut schema, &renames);
            let name = renamed(name, &renames);
            schemas.entry(name).or_insert(schema);
        }
        let own_paths = document.get("paths").and_then(Value::as_object);
        for (path, item) in own_paths.into_iter().flatten() {
            // A service's template (`/user/{uid}`) matches the gateway's pattern for it: a
            // parameter segment matches any text, `{uid}` included.
            let Ok(found) = matcher.at(path) else {
                continue;
            };
            let pattern = patterns[*found.value];
            for (method, operation) in item.as_object().into_iter().flatten() {
                let Ok(parsed) = method.to_uppercase().parse::<Method>() else {
                    continue;
                };
                let public = matches!(
                    target(routes, pattern, &parsed),
                    Some(Target::Service(name)) if **name == **service
                );
                if !public {
                    continue;
                }
                let mut operation = operation.clone();
                rewrite(&mut operation, &renames);
                if operation.get("tags").is_none() {
                    operation["tags"] = json!([service]);
                }
                if let Some(id) = operation.get("operationId").and_then(Value::as_str) {
                    let id = match operation_ids.iter().any(|seen| seen == id) {
                        true => format!("{service}.{id}"),
                        false => id.to_owned(),
                    };
                    operation["operationId"] = id.clone().into();
                    operation_ids.push(id);
                }
                let entry = paths.entry(path.clone()).or_insert_with(|| json!({}));
                entry[method] = operation;
            }
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "gateway",
            "version": "0.0.0",
            "description": "Every public route of the services behind this gateway.",
        },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}

/// The schemas of `service` whose names are taken by different schemas of services merged
/// before it: each becomes `<service>.<name>`.
fn schema_renames(
    service: &str,
    document: &Value,
    merged: &Map<String, Value>,
) -> Vec<(String, String)> {
    let own = document
        .pointer("/components/schemas")
        .and_then(Value::as_object);
    own.into_iter()
        .flatten()
        .filter(|(name, schema)| merged.get(*name).is_some_and(|taken| taken != *schema))
        .map(|(name, _)| (name.clone(), format!("{service}.{name}")))
        .collect()
}

fn renamed(name: &str, renames: &[(String, String)]) -> String {
    renames
        .iter()
        .find(|(from, _)| from == name)
        .map_or_else(|| name.to_owned(), |(_, to)| to.clone())
}

fn rewrite(value: &mut Value, renames: &[(String, String)]) {
    let refs: Vec<(String, String)> = renames
        .iter()
        .map(|(from, to)| {
            (
                format!("#/components/schemas/{from}"),
                format!("#/components/schemas/{to}"),
            )
        })
        .collect();
    crate::openapi::rewrite_refs(value, &refs);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str) -> Target {
        Target::Service(Arc::from(name))
    }

    fn routes() -> Routes {
        vec![
            ("/user/{uid}".into(), None, service("users")),
            ("/user/{uid}/cart/{id}".into(), None, service("cart")),
            ("/emails/".into(), None, Target::Internal),
            ("/log".into(), None, service("stats")),
            ("/log".into(), Some(Method::GET), Target::Internal),
        ]
    }

    fn op(schema: &str) -> Value {
        json!({ "responses": { "200": { "description": "OK", "content": { "application/json": {
            "schema": { "$ref": format!("#/components/schemas/{schema}") } } } } } })
    }

    #[test]
    fn only_public_operations_of_the_routed_service_are_kept() {
        let users = json!({ "paths": {
            "/user/{uid}": { "get": op("User") },
            "/user/{uid}/cart/{id}": { "get": op("User") },
            "/unrouted": { "get": op("User") },
        }, "components": { "schemas": { "User": { "type": "object" } } } });
        let cart = json!({ "paths": {
            "/user/{uid}/cart/checkout": { "post": op("Item") },
        }, "components": { "schemas": { "Item": { "type": "object" } } } });
        let emails = json!({ "paths": { "/emails/": { "get": op("Email") } } });
        let stats = json!({ "paths": { "/log": { "get": op("Entry"), "post": op("Entry") } } });
        let merged = merge(
            &routes(),
            &[
                ("users".into(), users),
                ("cart".into(), cart),
                ("emails".into(), emails),
                ("stats".into(), stats),
            ],
        );
        let paths = merged["paths"].as_object().unwrap();
        assert!(paths["/user/{uid}"]["get"].is_object());
        assert!(
            paths.get("/user/{uid}/cart/{id}").is_none(),
            "routed to cart, not users"
        );
        assert!(paths.get("/unrouted").is_none());
        assert!(paths["/user/{uid}/cart/checkout"]["post"].is_object());
        assert!(paths.get("/emails/").is_none());
        assert!(paths["/log"].get("get").is_none(), "GET /log is internal");
        assert!(paths["/log"]["post"].is_object());
        assert_eq!(paths["/log"]["post"]["tags"], json!(["stats"]));
    }

    #[test]
    fn clashing_schemas_are_renamed_by_service() {
        let a = json!({ "paths": { "/user/{uid}": { "get": op("Item") } },
            "components": { "schemas": { "Item": { "type": "string" } } } });
        let b = json!({ "paths": { "/user/{uid}/cart/{id}": { "get": op("Item") } },
            "components": { "schemas": { "Item": { "type": "integer" } } } });
        let merged = merge(&routes(), &[("users".into(), a), ("cart".into(), b)]);
        let schemas = &merged["components"]["schemas"];
        assert_eq!(schemas["Item"]["type"], "string");
        assert_eq!(schemas["cart.Item"]["type"], "integer");
        let reference = &merged["paths"]["/user/{uid}/cart/{id}"]["get"]["responses"]["200"]
            ["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(reference, "#/components/schemas/cart.Item");
    }
}
