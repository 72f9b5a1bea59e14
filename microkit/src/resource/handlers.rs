//! The generic CRUD handlers behind every resource.

use std::collections::HashMap;
use std::sync::Arc;

use http::header::{ETAG, IF_MATCH, IF_NONE_MATCH, LINK, LOCATION};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::{json, Map, Value};

use super::document::{from_json, merge_patch, record_json, request_json, to_data};
use super::hooks::{HookContext, Hooks};
use super::query;
use super::repo::Repo;
use super::spec::{canonical_param, Resource};
use super::store::{Id, StoreError};
use crate::extract::{Path, Rejection, State};
use crate::response::IntoResponse;
use crate::{Json, Problem, Response};

/// What every handler of one resource shares.
pub(crate) struct Ctx<R, H> {
    pub(crate) repo: Repo<R>,
    pub(crate) hooks: H,
    /// The JSON Schema, computed once: its properties are the fields a request may send.
    pub(crate) schema: Value,
    pub(crate) fields: Vec<String>,
}

pub(crate) type Shared<R, H> = State<Arc<Ctx<R, H>>>;
type Params = Path<HashMap<String, String>>;

impl<R: Resource, H: Hooks<R>> Ctx<R, H> {
    pub(crate) fn new(repo: Repo<R>, hooks: H) -> Self {
        let schema = R::json_schema();
        let fields = schema["properties"]
            .as_object()
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default();
        Self {
            repo,
            hooks,
            schema,
            fields,
        }
    }
}

/// The request's route parameters split into the parent key and the item id.
struct Target {
    /// `uid=7` (several joined with `&`), or `None` for a top-level resource.
    parent: Option<String>,
    id: Option<Id>,
    context: HookContext,
}

fn target<R: Resource>(
    params: HashMap<String, String>,
    headers: HeaderMap,
) -> Result<Target, Problem> {
    let spec = &R::SPEC;
    let parents = spec.parent_params();
    let values: Vec<String> = parents
        .iter()
        .map(|name| params.get(*name).cloned().unwrap_or_default())
        .collect();
    let context_params = parents
        .iter()
        .zip(&values)
        .map(|(name, value)| ((*name).to_owned(), canonical_param(value)))
        .collect();
    let id = match params.get(spec.id_param()) {
        Some(raw) => Some(Id::parse(spec.id_kind, raw).ok_or_else(|| {
            Problem::bad_request(format!("`{raw}` is not a valid id for this resource"))
        })?),
        None => None,
    };
    Ok(Target {
        parent: spec.parent_key(&values),
        id: id.clone(),
        context: HookContext {
            params: context_params,
            id,
            headers,
        },
    })
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits and quotes are a valid header")
}

/// The version an `If-Match` asks for: `None` without the header or for `*`.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    let Some(value) = headers.get(IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse::<u64>()
        .map(Some)
        .map_err(|_| {
            Problem::new(StatusCode::PRECONDITION_FAILED)
                .with_detail(format!("If-Match `{text}` matches no version of this item"))
        })
}

fn item_response(status: StatusCode, json: Map<String, Value>, version: u64) -> Response {
    let mut response = (status, Json(Value::Object(json))).into_response();
    response.headers_mut().insert(ETAG, etag(version));
    response
}

fn item_location(uri: &Uri, id: &Id) -> Option<HeaderValue> {
    let base = uri.path().trim_end_matches('/');
    HeaderValue::from_str(&format!("{base}/{id}")).ok()
}

fn body_value(body: Result<Json<Value>, Rejection>) -> Result<Value, Problem> {
    body.map(|Json(value)| value).map_err(Problem::from)
}

fn validated<R: Resource>(json: Map<String, Value>) -> Result<R, Problem> {
    let item: R = from_json(json)?;
    let errors = item.validate();
    if errors.is_empty() {
        Ok(item)
    } else {
        Err(Problem::unprocessable("the item is not valid").with_field_errors(errors))
    }
}

macro_rules! try_problem {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(problem) => return Problem::from(problem).into_response(),
        }
    };
}

pub(crate) async fn create<R: Resource, H: Hooks<R>>(
    State(ctx): Shared<R, H>,
    Path(params): Params,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Json<Value>, Rejection>,
) -> Response {
    let spec = &R::SPEC;
    let target = try_problem!(target::<R>(params, headers));
    let body = try_problem!(body_value(body));
    let json = try_problem!(request_json(spec, &ctx.fields, body, None, None));
    let mut item: R = try_problem!(validated(json));
    try_problem!(ctx.hooks.before_create(&target.context, &mut item).await);
    let (stored, version) = try_problem!(ctx.repo.create(target.parent.as_deref(), &item).await);
    let (id, _) = try_problem!(to_data(&stored));
    ctx.hooks.after_create(&target.context, &stored).await;
    let json = match serde_json::to_value(&stored) {
        Ok(Value::Object(json)) => json,
        _ => return Problem::internal("the item could not be serialized").into_response(),
    };
    let mut response = item_response(StatusCode::CREATED, json, version);
    if let Some(location) = item_location(&uri, &id) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

pub(crate) async fn read<R: Resource, H: Hooks<R>>(
    State(ctx): Shared<R, H>,
    Path(params): Params,
    headers: HeaderMap,
) -> Response {
    let target = try_problem!(target::<R>(params, headers));
    let id = target.id.expect("item routes have an id");
    let record = match ctx
        .repo
        .store()
        .get(ctx.repo.collection(), target.parent.as_deref(), &id)
        .await
    {
        Ok(record) => record,
        Err(err) => return not_found_or(err, &id),
    };
    let version = record.version;
    if target
        .context
        .headers
        .get(IF_NONE_MATCH)
        .is_some_and(|value| value.as_bytes() == etag(version).as_bytes())
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(ETAG, etag(version));
        return response;
    }
    item_response(StatusCode::OK, record_json(&R::SPEC, record), version)
}

fn not_found_or(err: StoreError, id: &Id) -> Response {
    match err {
        StoreError::NotFound => {
            Problem::not_found(format!("there is no item {id}")).into_response()
        }
        other => other.to_problem().into_response(),
    }
}

pub(crate) async fn update<R: Resource, H: Hooks<R>>(
    State(ctx): Shared<R, H>,
    Path(params): Params,
    headers: HeaderMap,
    body: Result<Json<Value>, Rejection>,
) -> Response {
    let expected = try_problem!(if_match(&headers));
    let target = try_problem!(target::<R>(params, headers));
    let id = target.id.clone().expect("item routes have an id");
    let body = try_problem!(body_value(body));
    let (current, version) = try_problem!(ctx.repo.get(target.parent.as_deref(), &id).await);
    if expected.is_some_and(|expected| expected != version) {
        return precondition_failed(version);
    }
    let current_json = to_json_map(&current);
    let json = try_problem!(request_json(
        &R::SPEC,
        &ctx.fields,
        body,
        Some(&id),
        Some(&current_json)
    ));
    replace_with(&ctx, &target, &id, &current, json, version).await
}

pub(crate) async fn patch<R: Resource, H: Hooks<R>>(
    State(ctx): Shared<R, H>,
    Path(params): Params,
    headers: HeaderMap,
    body: Result<Json<Value>, Rejection>,
) -> Response {
    let expected = try_problem!(if_match(&headers));
    let target = try_problem!(target::<R>(params, headers));
    let id = target.id.clone().expect("item routes have an id");
    let patch = try_problem!(body_value(body));
    if !patch.is_object() {
        return Problem::unprocessable("a merge patch must be a JSON object").into_response();
    }
    let (current, version) = try_problem!(ctx.repo.get(target.parent.as_deref(), &id).await);
    if expected.is_some_and(|expected| expected != version) {
        return precondition_failed(version);
    }
    let current_json = to_json_map(&current);
    // Server-set fields are not the client's to patch: drop them from the patch first, so that
    // the merged document keeps the stored values.
    let patch = strip_server_set::<R>(patch);
    let mut merged = Value::Object(current_json.clone());
    merge_patch(&mut merged, patch);
    let json = try_problem!(request_json(
        &R::SPEC,
        &ctx.fields,
        merged,
        Some(&id),
        Some(&current_json)
    ));
    replace_with(&ctx, &target, &id, &current, json, version).await
}

fn strip_server_set<R: Resource>(patch: Value) -> Value {
    match patch {
        Value::Object(mut map) => {
            map.retain(|key, _| !R::SPEC.is_server_set(key));
            Value::Object(map)
        }
        other => other,
    }
}

fn to_json_map<R: Resource>(item: &R) -> Map<String, Value> {
    match serde_json::to_value(item) {
        Ok(Value::Object(json)) => json,
        _ => Map::new(),
    }
}

fn precondition_failed(current: u64) -> Response {
    let mut response = Problem::new(StatusCode::PRECONDITION_FAILED)
        .with_detail("the item changed since the version named in If-Match")
        .into_response();
    response.headers_mut().insert(ETAG, etag(current));
    response
}

async fn replace_with<R: Resource, H: Hooks<R>>(
    ctx: &Ctx<R, H>,
    target: &Target,
    id: &Id,
    current: &R,
    json: Map<String, Value>,
    version: u64,
) -> Response {
    let mut next: R = try_problem!(validated(json));
    try_problem!(
        ctx.hooks
            .before_update(&target.context, current, &mut next)
            .await
    );
    // The version read above guards the write: a concurrent change in between is a 412, not
    // a lost update.
    let (stored, version) = try_problem!(
        ctx.repo
            .replace(target.parent.as_deref(), id, &next, Some(version))
            .await
    );
    ctx.hooks.after_update(&target.context, &stored).await;
    item_response(StatusCode::OK, to_json_map(&stored), version)
}

pub(crate) async fn delete<R: Resource, H: Hooks<R>>(
    State(ctx): Shared<R, H>,
    Path(params): Params,
    headers: HeaderMap,
) -> Response {
    let expected = try_problem!(if_match(&headers));
    let target = try_problem!(target::<R>(params, headers));
    let id = target.id.clone().expect("item routes have an id");
    let (current, version) = try_problem!(ctx.repo.get(target.parent.as_deref(), &id).await);
    if expected.is_some_and(|expected| expected != version) {
        return precondition_failed(version);
    }
    try_problem!(ctx.hooks.before_delete(&target.context, &current).await);
    try_problem!(
        ctx.repo
            .delete(target.parent.as_deref(), &id, Some(version))
            .await
    );
    ctx.hooks.after_delete(&target.context, &current).await;
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn list<R: Resource, H: Hooks<R>>(
    State(ctx): Shared<R, H>,
    Path(params): Params,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let target = try_problem!(target::<R>(params, headers));
    let params = try_problem!(query::parse(&R::SPEC, &ctx.schema, uri.query()));
    let page = try_problem!(ctx
        .repo
        .store()
        .list(
            ctx.repo.collection(),
            &super::store::ListQuery {
                parent: target.parent,
                filters: params.filters.clone(),
                offset: params.offset,
                limit: params.limit,
            },
        )
        .await
        .map_err(|err| err.to_problem()));
    let returned = page.items.len();
    let items: Vec<Value> = page
        .items
        .into_iter()
        .map(|record| Value::Object(record_json(&R::SPEC, record)))
        .collect();
    let mut response = Json(json!({ "items": items, "total": page.total })).into_response();
    if let Some(link) = params.next_link(uri.path(), returned, page.total) {
        if let Ok(link) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(LINK, link);
        }
    }
    response
}
