//! The generic CRUD handlers behind every resource.

use std::sync::Arc;

use http::header::{ETAG, IF_MATCH, IF_NONE_MATCH, LINK, LOCATION};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::{Map, Value};

use super::document::{
    from_json, from_json_ref, merge_patch, placeholder_id, record_json, request_json, to_data,
    RecordBody,
};
use super::hooks::{HookContext, Hooks};
use super::incoming::Incoming;
use super::query;
use super::repo::Repo;
use super::spec::{canonical_param, Resource};
use super::store::{Id, IdKind, StoreError};

const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";
use crate::extract::{is_json, parse_json, read_limited, RouteMatch, State};
use crate::response::IntoResponse;
use crate::{Json, Problem, Request, Response};

/// A list answer: `{"items": [...], "total": N}`.
#[derive(serde::Serialize)]
struct ListBody<'a> {
    items: Vec<RecordBody<'a>>,
    total: u64,
}

/// What every handler of one resource shares.
pub(crate) struct Ctx<R, H> {
    pub(crate) repo: Repo<R>,
    pub(crate) hooks: H,
    /// The JSON Schema, computed once: its properties are the fields a request may send.
    pub(crate) schema: Value,
    pub(crate) fields: Vec<String>,
    /// Parent parameters that must parse as ids of a kind.
    pub(crate) parent_kinds: Vec<(String, IdKind)>,
}

pub(crate) type Shared<R, H> = State<Arc<Ctx<R, H>>>;

impl<R: Resource, H: Hooks<R>> Ctx<R, H> {
    pub(crate) fn new(repo: Repo<R>, hooks: H, parent_kinds: Vec<(String, IdKind)>) -> Self {
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
            parent_kinds,
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

/// The decoded value of a route parameter.
fn param(parts: &Parts, name: &str) -> Result<Option<String>, Problem> {
    let Some(matched) = parts.extensions.get::<RouteMatch>() else {
        return Ok(None);
    };
    match matched.params.iter().find(|(key, _)| *key == name) {
        Some((_, raw)) => percent_decode_str(raw)
            .decode_utf8()
            .map(|value| Some(value.into_owned()))
            .map_err(|_| {
                Problem::bad_request(format!("path parameter `{name}` is not valid UTF-8"))
            }),
        None => Ok(None),
    }
}

/// Splits the request into what the actions need; the headers move into the hook context.
fn target<R: Resource>(parts: Parts, parent_kinds: &[(String, IdKind)]) -> Result<Target, Problem> {
    let spec = &R::SPEC;
    let parents = spec.parent_params();
    let mut values = Vec::with_capacity(parents.len());
    for name in &parents {
        let value = param(&parts, name)?.unwrap_or_default();
        let kind = parent_kinds
            .iter()
            .find(|(param, _)| param == name)
            .map(|(_, kind)| *kind);
        if kind.is_some_and(|kind| Id::parse(kind, &value).is_none()) {
            return Err(Problem::bad_request(format!(
                "`{value}` is not a valid `{name}`"
            )));
        }
        values.push(value);
    }
    let context_params = parents
        .iter()
        .zip(&values)
        .map(|(name, value)| ((*name).to_owned(), canonical_param(value)))
        .collect();
    let id = match param(&parts, spec.id_param())? {
        Some(raw) => Some(Id::parse(spec.id_kind, &raw).ok_or_else(|| {
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
            headers: parts.headers,
        },
    })
}

/// Reads a JSON body's bytes as the `Json` extractor would (415, 413), keeping the parts.
async fn json_body(request: Request) -> Result<(Parts, bytes::Bytes), Problem> {
    if !is_json(request.headers()) {
        return Err(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .with_detail("expected a request body with `Content-Type: application/json`"));
    }
    Ok(read_limited(request).await?)
}

/// Reads a JSON body as the `Json` extractor would (415, 413, 400), keeping the parts.
async fn json_request(request: Request) -> Result<(Parts, Value), Problem> {
    let (parts, bytes) = json_body(request).await?;
    // A `Value` has no shape to get wrong: only syntax can fail, so no path is tracked.
    let value = serde_json::from_slice(&bytes).map_err(|err| {
        Problem::bad_request(format!("the request body is not valid JSON: {err}"))
    })?;
    Ok((parts, value))
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

fn item_response(status: StatusCode, body: impl serde::Serialize, version: u64) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(ETAG, etag(version));
    response
}

/// What a path segment must percent-encode: controls, non-ASCII (always encoded), and the
/// characters that would end the segment or the path or are not allowed in a URI.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The created item's URL: the collection path with the id, percent-encoded, as its last
/// segment (a text id may hold `/`, `?`, spaces or any Unicode).
fn item_location(collection_path: &str, id: &Id) -> Option<HeaderValue> {
    use std::fmt::Write;
    let base = collection_path.trim_end_matches('/');
    let mut location = String::with_capacity(base.len() + 24);
    location.push_str(base);
    location.push('/');
    // Integers need no escaping; text ids are one path segment, so `/`, `?` and `#` in them
    // must not reach the URL raw.
    let _ = match id {
        Id::Int(number) => write!(location, "{number}"),
        Id::Text(text) => write!(location, "{}", utf8_percent_encode(text, SEGMENT)),
    };
    HeaderValue::from_maybe_shared(bytes::Bytes::from(location)).ok()
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
    request: Request,
) -> Response {
    let spec = &R::SPEC;
    let (parts, bytes) = try_problem!(json_body(request).await);
    let collection_path = parts.uri.path().to_owned();
    let target = try_problem!(target::<R>(parts, &ctx.parent_kinds));
    let placeholder = (spec.id_kind != IdKind::Text).then(|| placeholder_id(spec.id_kind));
    let item: R = try_problem!(parse_json(
        &bytes,
        |deserializer| R::deserialize(Incoming::new(
            deserializer,
            spec,
            &ctx.fields,
            placeholder.clone()
        )),
        |deserializer| {
            serde_path_to_error::deserialize(Incoming::new(
                deserializer,
                spec,
                &ctx.fields,
                placeholder.clone(),
            ))
        },
    ));
    let errors = item.validate();
    if !errors.is_empty() {
        return Problem::unprocessable("the item is not valid")
            .with_field_errors(errors)
            .into_response();
    }
    let mut item = item;
    try_problem!(ctx.hooks.before_create(&target.context, &mut item).await);
    let (id, data) = try_problem!(to_data(&item));
    let id = match (spec.id_kind, id) {
        (IdKind::Integer, _) => None,
        (_, Id::Text(text)) if !text.is_empty() && text != NIL_UUID => Some(Id::Text(text)),
        _ => None,
    };
    let record = try_problem!(ctx
        .repo
        .store()
        .create(ctx.repo.collection(), target.parent.as_deref(), id, data)
        .await
        .map_err(|err| err.to_problem()));
    let (id, version) = (record.id.clone(), record.version);
    // The stored record is the item with its new id: set it, rather than parse the record.
    let stored = if item.set_id(&id) {
        item
    } else {
        try_problem!(from_json_ref::<R>(&record_json(spec, record)))
    };
    ctx.hooks.after_create(&target.context, &stored).await;
    let mut response = (StatusCode::CREATED, Json(&stored)).into_response();
    response.headers_mut().insert(ETAG, etag(version));
    if let Some(location) = item_location(&collection_path, &id) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

pub(crate) async fn read<R: Resource, H: Hooks<R>>(
    State(ctx): Shared<R, H>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let target = try_problem!(target::<R>(parts, &ctx.parent_kinds));
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
    item_response(
        StatusCode::OK,
        RecordBody {
            spec: &R::SPEC,
            record: &record,
        },
        version,
    )
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
    request: Request,
) -> Response {
    let (parts, body) = try_problem!(json_request(request).await);
    let Current {
        target,
        id,
        item: current,
        version,
    } = match current_for_write(&ctx, parts).await {
        Ok(current) => current,
        Err(response) => return response,
    };
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
    request: Request,
) -> Response {
    let (parts, patch) = try_problem!(json_request(request).await);
    let expected = try_problem!(if_match(&parts.headers));
    let target = try_problem!(target::<R>(parts, &ctx.parent_kinds));
    let id = target.id.clone().expect("item routes have an id");
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

/// The item a write targets, as stored now.
struct Current<R> {
    target: Target,
    id: Id,
    item: R,
    version: u64,
}

/// Loads the item a write targets and checks it against `If-Match`: the answer to send
/// instead when it is missing (404) or has changed (412).
async fn current_for_write<R: Resource, H: Hooks<R>>(
    ctx: &Ctx<R, H>,
    parts: Parts,
) -> Result<Current<R>, Response> {
    let expected = if_match(&parts.headers).map_err(IntoResponse::into_response)?;
    let target = target::<R>(parts, &ctx.parent_kinds).map_err(IntoResponse::into_response)?;
    let id = target.id.clone().expect("item routes have an id");
    let (item, version) = ctx
        .repo
        .get(target.parent.as_deref(), &id)
        .await
        .map_err(IntoResponse::into_response)?;
    if expected.is_some_and(|expected| expected != version) {
        return Err(precondition_failed(version));
    }
    Ok(Current {
        target,
        id,
        item,
        version,
    })
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
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let Current {
        target,
        id,
        item: current,
        version,
    } = match current_for_write(&ctx, parts).await {
        Ok(current) => current,
        Err(response) => return response,
    };
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
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let uri = parts.uri.clone();
    let target = try_problem!(target::<R>(parts, &ctx.parent_kinds));
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
    let items: Vec<RecordBody<'_>> = page
        .items
        .iter()
        .map(|record| RecordBody {
            spec: &R::SPEC,
            record,
        })
        .collect();
    let mut response = Json(ListBody {
        items,
        total: page.total,
    })
    .into_response();
    if let Some(link) = params.next_link(uri.path(), returned, page.total) {
        if let Ok(link) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(LINK, link);
        }
    }
    response
}
