//! The generic CRUD handlers behind every resource.
//!
//! Each one reads the request's target (parent key, id, hook context), normalizes a write's
//! body once ([`Normalizer`]), runs the hooks, and reaches the store through [`Repo`] only;
//! every failure is a [`Problem`] carried up by `?`.

use std::any::TypeId;
use std::borrow::Cow;
use std::sync::Arc;

use http::header::{ETAG, IF_MATCH, IF_NONE_MATCH, LINK, LOCATION};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::Value;

use super::document::{merge_patch, readable, record_document, RecordBody};
use super::hooks::{HookContext, Hooks, NoHooks, Scope};
use super::normalize::{Normalizer, ServerSet, Source};
use super::query;
use super::repo::{Repo, Stored};
use super::spec::{canonical_param, Resource};
use super::store::{Id, ListQuery, Record, StoreError, Written};
use crate::extract::{is_json, parse_document, read_limited, BodyFields, State};
use crate::idempotency::{Begin, Claim, Idempotency, Reply};
use crate::request_context::RequestContext;
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
    /// The JSON Schema, computed once: the list's filters are checked against it.
    pub(crate) schema: Value,
    pub(crate) normalizer: Normalizer,
    /// `Idempotency-Key` on create and `PATCH`, unless turned off.
    pub(crate) idempotency: Option<Idempotency>,
}

pub(crate) type Shared<R, H> = State<Arc<Ctx<R, H>>>;

impl<R: Resource, H: Hooks<R>> Ctx<R, H> {
    pub(crate) fn new(repo: Repo<R>, hooks: H, idempotency: Option<Idempotency>) -> Self {
        let schema = R::json_schema();
        let normalizer = Normalizer::new::<R>(&schema);
        Self {
            repo,
            hooks,
            schema,
            normalizer,
            idempotency,
        }
    }

    /// Begins a write that may carry an `Idempotency-Key`: `Err(response)` when the key's
    /// answer is replayed, the claim to run it otherwise (`None` when keys are off).
    async fn begin(
        &self,
        parts: &Parts,
        body: &[u8],
    ) -> Result<Result<Option<Claim>, Response>, Problem> {
        let Some(idempotency) = &self.idempotency else {
            return Ok(Ok(None));
        };
        Ok(match idempotency.begin(parts, body).await? {
            Begin::Replay(response) => Err(response),
            Begin::Run(claim) => Ok(claim.key().is_some().then_some(claim)),
        })
    }
}

/// The one record a single-write commit stored.
fn only_record(written: &Written) -> Result<&Record, StoreError> {
    written
        .first()
        .and_then(Option::as_ref)
        .ok_or_else(|| StoreError::backend("a write stored no record"))
}

/// The request's route parameters split into the parent key and the item id.
struct Target {
    /// `uid=7` (several joined with `&`), or `None` for a top-level resource.
    parent: Option<String>,
    id: Option<Id>,
    context: HookContext,
}

impl Target {
    fn parent(&self) -> Option<&str> {
        self.parent.as_deref()
    }

    /// The item's id, on the item routes.
    fn id(&self) -> &Id {
        self.id.as_ref().expect("item routes have an id")
    }
}

/// The decoded value of a route parameter (borrowed when it has no escapes).
fn param<'p>(parts: &'p Parts, name: &str) -> Result<Option<Cow<'p, str>>, Problem> {
    let Some(matched) = RequestContext::route(&parts.extensions) else {
        return Ok(None);
    };
    match matched.params.iter().find(|(key, _)| *key == name) {
        Some((_, raw)) => percent_decode_str(raw)
            .decode_utf8()
            .map(Some)
            .map_err(|_| {
                Problem::bad_request(format!("path parameter `{name}` is not valid UTF-8"))
            }),
        None => Ok(None),
    }
}

/// Splits the request into what the actions need; the headers move into the hook context.
/// A parent parameter declared with an id kind (`parent = "uid: u64"`) and the item id must
/// parse as ids of their kinds (400 otherwise).
fn target<R: Resource>(parts: Parts) -> Result<Target, Problem> {
    let spec = &R::SPEC;
    let parents = spec.parent_params();
    let mut values = Vec::with_capacity(parents.len());
    for name in &parents {
        let value = param(&parts, name)?.unwrap_or_default();
        if spec
            .parent_id_kind(name)
            .is_some_and(|kind| Id::parse(kind, &value).is_none())
        {
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
    let parent = spec.parent_key(&values);
    drop(values);
    Ok(Target {
        parent,
        id: id.clone(),
        context: HookContext {
            params: context_params,
            id,
            #[cfg(feature = "auth")]
            identity: parts.extensions.get::<crate::auth::Identity>().cloned(),
            headers: parts.headers,
        },
    })
}

/// The items this caller may see (see [`Hooks::scope`]).
async fn scope<R: Resource, H: Hooks<R>>(
    ctx: &Ctx<R, H>,
    target: &Target,
) -> Result<Scope, Problem> {
    let mut scope = Scope::default();
    ctx.hooks.scope(&target.context, &mut scope).await?;
    Ok(scope)
}

/// Reads a JSON body's bytes as the `Json` extractor would (415, 413), keeping the parts.
async fn json_body(request: Request) -> Result<(Parts, bytes::Bytes), Problem> {
    let fields = BodyFields::of(request.headers());
    if !is_json(&fields) {
        return Err(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .with_detail("expected a request body with `Content-Type: application/json`"));
    }
    let declared = fields.length;
    Ok(read_limited(request, declared).await?)
}

/// Reads a JSON body as a document (415, 413, 400), keeping the parts.
async fn json_document(request: Request) -> Result<(Parts, Value), Problem> {
    let (parts, bytes) = json_body(request).await?;
    // A `Value` has no shape to get wrong: only a malformed body fails here.
    let document = parse_document(&bytes)?;
    Ok((parts, document))
}

/// A version's entity tag, `"7"`. Written out by hand: through `format!` it cost a GET more
/// than its hash lookup.
fn etag(version: u64) -> HeaderValue {
    // Two quotes around at most 20 digits.
    let mut tag = [b'"'; 22];
    let mut start = tag.len() - 1;
    let mut rest = version;
    loop {
        start -= 1;
        tag[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    HeaderValue::from_bytes(&tag[start - 1..]).expect("digits and quotes are a valid header")
}

/// The versions an `If-Match` accepts: `None` without the header or for `*` (any version).
/// A tag that names no version of ours accepts none (412 if the item exists); a value that is
/// neither `*` nor a list of entity tags (RFC 9110, section 13.1.1) is a 400.
fn if_match(headers: &HeaderMap) -> Result<Option<Vec<u64>>, Problem> {
    let Some(value) = headers.get(IF_MATCH) else {
        return Ok(None);
    };
    let malformed = || {
        Problem::bad_request(
            "If-Match must be `*` or a list of entity tags such as `\"3\"` (an ETag)",
        )
    };
    let text = value.to_str().map_err(|_| malformed())?.trim();
    if text == "*" {
        return Ok(None);
    }
    // Our tags are versions in digits: `"07"` or `"+7"` is no tag of ours.
    let version = |tag: &&str| tag.parse::<u64>().ok().filter(|v| v.to_string() == *tag);
    entity_tags(text)
        .map(|tags| Some(tags.iter().filter_map(version).collect()))
        .ok_or_else(malformed)
}

/// The opaque parts of a list of entity tags (`"3", W/"4"`), or `None` when `text` is not one.
/// The list may be empty (RFC 9110's `#` rule), and then matches nothing.
fn entity_tags(text: &str) -> Option<Vec<&str>> {
    let mut tags = Vec::new();
    let mut rest = text.trim_start_matches([' ', '\t']);
    if rest.is_empty() {
        return Some(tags);
    }
    loop {
        let quoted = rest.strip_prefix("W/").unwrap_or(rest).strip_prefix('"')?;
        let end = quoted.find('"')?;
        let tag = &quoted[..end];
        // etagc: any visible ASCII but the quote (obs-text already failed `to_str`).
        if !tag.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b)) {
            return None;
        }
        tags.push(tag);
        rest = quoted[end + 1..].trim_start_matches([' ', '\t']);
        match rest.strip_prefix(',') {
            Some(next) => rest = next.trim_start_matches([' ', '\t']),
            None if rest.is_empty() => return Some(tags),
            None => return None,
        }
    }
}

/// The 412 for a write whose `If-Match` names an older version, with the current `ETag`.
fn precondition_failed(current: u64) -> Problem {
    Problem::new(StatusCode::PRECONDITION_FAILED)
        .with_detail("the item changed since the version named in If-Match")
        .with_header(ETAG, etag(current))
}

/// The problem for a store error on an item route: a missing item named by its id.
fn item_problem(id: &Id) -> impl FnOnce(StoreError) -> Problem + '_ {
    move |err| match err {
        StoreError::NotFound => Problem::not_found(format!("there is no item {id}")),
        other => other.into(),
    }
}

/// Whether a new item falls inside the caller's scope.
fn admits<R: Resource>(scope: &Scope, item: &R) -> Result<bool, Problem> {
    match serde_json::to_value(item) {
        Ok(Value::Object(data)) => Ok(scope.admits(&data)),
        Ok(_) => Ok(false),
        Err(err) => Err(Problem::internal("the item could not be encoded").with_cause(err)),
    }
}

/// An item answer: its public JSON form with its `ETag` (and `Location`, for a create).
fn item_reply<R: Resource>(
    status: StatusCode,
    record: &Record,
    location: Option<HeaderValue>,
) -> Result<Reply, StoreError> {
    tagged_item_reply::<R>(status, record, etag(record.version), location)
}

/// [`item_reply`] with the record's `ETag` already made.
fn tagged_item_reply<R: Resource>(
    status: StatusCode,
    record: &Record,
    etag: HeaderValue,
    location: Option<HeaderValue>,
) -> Result<Reply, StoreError> {
    let body = RecordBody {
        spec: &R::SPEC,
        record,
    };
    let mut reply = Reply::json(status, &body)?.with_header(ETAG, etag);
    if let Some(location) = location {
        reply = reply.with_header(LOCATION, location);
    }
    Ok(reply)
}

fn item_response<R: Resource>(status: StatusCode, record: &Record) -> Result<Response, Problem> {
    Ok(item_reply::<R>(status, record, None)?.into_response())
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

pub(crate) async fn create<R: Resource, H: Hooks<R>>(
    State(ctx): Shared<R, H>,
    request: Request,
) -> Result<Response, Problem> {
    let (parts, bytes) = json_body(request).await?;
    let claim = match &ctx.idempotency {
        // Without hooks nothing before the commit has an effect or depends on more than the
        // request, so a kept answer is found at the commit, saving a store round trip.
        Some(idempotency) if TypeId::of::<H>() == TypeId::of::<NoHooks>() => {
            Some(idempotency.claim(&parts, &bytes)?)
        }
        _ => match ctx.begin(&parts, &bytes).await? {
            Ok(claim) => claim,
            Err(replayed) => return Ok(replayed),
        },
    }
    .filter(|claim| claim.key().is_some());
    let collection_path = parts.uri.path().to_owned();
    let (target, item) = match new_item(&ctx, parts, &bytes).await {
        Ok(new) => new,
        Err(problem) => {
            return match claim {
                Some(claim) => claim.unless_kept(problem).await,
                None => Err(problem),
            }
        }
    };
    let Some(claim) = claim else {
        let stored = ctx.repo.create(target.parent(), item).await?;
        ctx.hooks.after_create(&target.context, &stored.item).await;
        let location = item_location(&collection_path, &stored.record.id);
        return Ok(item_reply::<R>(StatusCode::CREATED, &stored.record, location)?.into_response());
    };
    // With a key, the record and the key's answer commit in one transaction.
    let write = ctx.repo.create_write(target.parent(), &item)?;
    let outcome = claim
        .commit(vec![write], move |written| {
            let record = only_record(written)?;
            let location = item_location(&collection_path, &record.id);
            item_reply::<R>(StatusCode::CREATED, record, location)
        })
        .await?;
    if let Some(mut written) = outcome.written {
        if let Some(record) = written.pop().flatten() {
            let stored = ctx.repo.with_record(item, record)?;
            ctx.hooks.after_create(&target.context, &stored.item).await;
        }
    }
    Ok(outcome.response)
}

/// The item a create asks for, normalized, through `before_create` and checked against the
/// caller's scope (403 outside it).
async fn new_item<R: Resource, H: Hooks<R>>(
    ctx: &Ctx<R, H>,
    parts: Parts,
    bytes: &[u8],
) -> Result<(Target, R), Problem> {
    let target = target::<R>(parts)?;
    let server = ServerSet::create(&R::SPEC);
    let mut item: R = ctx.normalizer.parse(Source::Bytes(bytes), &server)?;
    let scope = scope(ctx, &target).await?;
    ctx.hooks.before_create(&target.context, &mut item).await?;
    if !scope.conditions().is_empty() && !admits(&scope, &item)? {
        return Err(Problem::new(StatusCode::FORBIDDEN)
            .with_detail("the item would be outside what you may see"));
    }
    Ok((target, item))
}

pub(crate) async fn read<R: Resource, H: Hooks<R>>(
    State(ctx): Shared<R, H>,
    request: Request,
) -> Result<Response, Problem> {
    let (parts, _) = request.into_parts();
    let target = target::<R>(parts)?;
    let scope = scope(&ctx, &target).await?;
    let id = target.id();
    let record = ctx
        .repo
        .record(target.parent(), id)
        .await
        .map_err(item_problem(id))?;
    if !scope.admits(&record.data) {
        return Err(target.context.not_found());
    }
    let record = readable::<R>(record)?;
    let etag = etag(record.version);
    if target
        .context
        .headers
        .get(IF_NONE_MATCH)
        .is_some_and(|value| value.as_bytes() == etag.as_bytes())
    {
        return Ok((StatusCode::NOT_MODIFIED, [(ETAG, etag)], ()).into_response());
    }
    Ok(tagged_item_reply::<R>(StatusCode::OK, &record, etag, None)?.into_response())
}

/// The item a write targets, as stored now, checked against `If-Match` (412 when it changed).
struct Current<R> {
    target: Target,
    stored: Stored<R>,
}

async fn current_for_write<R: Resource, H: Hooks<R>>(
    ctx: &Ctx<R, H>,
    parts: Parts,
) -> Result<Current<R>, Problem> {
    // A bad id is a 400 whatever the preconditions say.
    let expected = if_match(&parts.headers);
    let target = target::<R>(parts)?;
    let expected = expected?;
    let scope = scope(ctx, &target).await?;
    let id = target.id();
    let stored = ctx
        .repo
        .get(target.parent(), id)
        .await
        .map_err(item_problem(id))?;
    if !scope.admits(&stored.record.data) {
        return Err(target.context.not_found());
    }
    if expected.is_some_and(|versions| !versions.contains(&stored.version())) {
        return Err(precondition_failed(stored.version()));
    }
    Ok(Current { target, stored })
}

pub(crate) async fn update<R: Resource, H: Hooks<R>>(
    State(ctx): Shared<R, H>,
    request: Request,
) -> Result<Response, Problem> {
    let (parts, body) = json_document(request).await?;
    let current = current_for_write(&ctx, parts).await?;
    replace_with(&ctx, current, &body, None).await
}

pub(crate) async fn patch<R: Resource, H: Hooks<R>>(
    State(ctx): Shared<R, H>,
    request: Request,
) -> Result<Response, Problem> {
    let (parts, bytes) = json_body(request).await?;
    // A replay answers a retry of the same request, which a malformed `If-Match` is not: the
    // key's fingerprint leaves headers out, so the request's own headers are checked first.
    if_match(&parts.headers)?;
    let claim = match ctx.begin(&parts, &bytes).await? {
        Ok(claim) => claim,
        Err(replayed) => return Ok(replayed),
    };
    // A `Value` has no shape to get wrong: only a malformed body fails here.
    let patch = parse_document(&bytes)?;
    let Value::Object(mut patch) = patch else {
        return Err(Problem::unprocessable(
            "a merge patch must be a JSON object",
        ));
    };
    let current = current_for_write(&ctx, parts).await?;
    // Server-set fields are not the client's to patch: drop them from the patch first, so that
    // the merged document keeps the stored values.
    patch.retain(|key, _| !R::SPEC.is_server_set(key));
    let mut merged = record_document(&R::SPEC, &current.stored.record);
    merge_patch(&mut merged, Value::Object(patch));
    replace_with(&ctx, current, &merged, claim).await
}

/// Replaces the current item with the one `body` asks for (a `PUT` body or a merged patch),
/// committing the key's answer with it when the request carried a key.
async fn replace_with<R: Resource, H: Hooks<R>>(
    ctx: &Ctx<R, H>,
    Current { target, stored }: Current<R>,
    body: &Value,
    claim: Option<Claim>,
) -> Result<Response, Problem> {
    let id = target.id();
    let server = ServerSet {
        id: Some(super::ids::to_value(id)),
        current: Some(&stored.record.data),
    };
    let mut next: R = ctx.normalizer.parse(Source::Document(body), &server)?;
    ctx.hooks
        .before_update(&target.context, &stored.item, &mut next)
        .await?;
    // The version read above guards the write: a concurrent change in between is a 412, not
    // a lost update.
    let Some(claim) = claim else {
        let replaced = ctx
            .repo
            .replace(target.parent(), id, next, Some(stored.version()))
            .await?;
        ctx.hooks
            .after_update(&target.context, &replaced.item)
            .await;
        return item_response::<R>(StatusCode::OK, &replaced.record);
    };
    let write = ctx
        .repo
        .replace_write(target.parent(), id, &next, Some(stored.version()))?;
    let outcome = claim
        .commit(vec![write], |written| {
            item_reply::<R>(StatusCode::OK, only_record(written)?, None)
        })
        .await?;
    if let Some(mut written) = outcome.written {
        if let Some(record) = written.pop().flatten() {
            let replaced = ctx.repo.with_record(next, record)?;
            ctx.hooks
                .after_update(&target.context, &replaced.item)
                .await;
        }
    }
    Ok(outcome.response)
}

pub(crate) async fn delete<R: Resource, H: Hooks<R>>(
    State(ctx): Shared<R, H>,
    request: Request,
) -> Result<Response, Problem> {
    let (parts, _) = request.into_parts();
    let Current { target, stored } = current_for_write(&ctx, parts).await?;
    ctx.hooks
        .before_delete(&target.context, &stored.item)
        .await?;
    ctx.repo
        .delete(target.parent(), target.id(), Some(stored.version()))
        .await?;
    ctx.hooks.after_delete(&target.context, &stored.item).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn list<R: Resource, H: Hooks<R>>(
    State(ctx): Shared<R, H>,
    request: Request,
) -> Result<Response, Problem> {
    let (parts, _) = request.into_parts();
    let uri = parts.uri.clone();
    let target = target::<R>(parts)?;
    let params = query::parse(&R::SPEC, &ctx.schema, uri.query())?;
    let mut filters = params.filters.clone();
    filters.extend(scope(&ctx, &target).await?.filters);
    let page = ctx
        .repo
        .records(&ListQuery {
            parent: target.parent,
            filters,
            offset: params.offset,
            limit: params.limit,
        })
        .await?;
    let records = page
        .items
        .into_iter()
        .map(readable::<R>)
        .collect::<Result<Vec<_>, _>>()?;
    let returned = records.len();
    let items: Vec<RecordBody<'_>> = records
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
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tags_are_quoted_versions() {
        for (version, tag) in [
            (0, "\"0\""),
            (7, "\"7\""),
            (10, "\"10\""),
            (1234567890, "\"1234567890\""),
            (u64::MAX, "\"18446744073709551615\""),
        ] {
            assert_eq!(etag(version), tag);
        }
    }
}
