use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::store::{Id, IdKind};
use crate::FieldError;

/// A type whose values are REST resources, usually implemented by `#[derive(Resource)]`.
///
/// The generic handlers of [`ResourceRoutes`](super::ResourceRoutes) do the work; a resource
/// only says what it is ([`SPEC`](Resource::SPEC)), how its fields are checked
/// ([`validate`](Resource::validate)) and what its JSON looks like
/// ([`json_schema`](Resource::json_schema)).
pub trait Resource: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// What the attributes declared.
    const SPEC: ResourceSpec;

    /// Checks every field rule, listing every failing field (empty when valid).
    fn validate(&self) -> Vec<FieldError> {
        Vec::new()
    }

    /// Sets the id field, returning whether `id` fits its type. The derive implements it so
    /// that a created item gets its store-allocated id without a round trip through JSON;
    /// the default, `false`, makes the handlers take that round trip instead.
    fn set_id(&mut self, id: &Id) -> bool {
        let _ = id;
        false
    }

    /// The JSON Schema (2020-12, as OpenAPI 3.1 uses) of the resource's JSON form.
    fn json_schema() -> Value;
}

/// The static description of a resource.
#[derive(Debug, Clone, Copy)]
pub struct ResourceSpec {
    /// The type's name, as the OpenAPI schema is named (`Product`).
    pub name: &'static str,
    /// The store collection (`product`): lowercase letters, digits and `_`.
    pub collection: &'static str,
    /// The item path without the id (`/product`, or `/user/{uid}/cart` when nested): items
    /// live at `{path}/{id}` and are created with `POST {path}/`.
    pub path: &'static str,
    /// Where the list is served, when not at `{path}/` (`/products/`).
    pub list_path: Option<&'static str>,
    /// The JSON names of the fields, in the struct's order: the order of every answer.
    pub fields: &'static [&'static str],
    /// The id field's name.
    pub id_field: &'static str,
    /// How ids are made.
    pub id_kind: IdKind,
    /// Fields only the server writes (timestamps, say): ignored in requests. The id and the
    /// soft-delete field are always server-set and are not repeated here.
    pub read_only: &'static [&'static str],
    /// Fields unique among live items (a duplicate is a 409).
    pub unique: &'static [&'static str],
    /// Fields the list can be filtered by (`?email=a@b.example`).
    pub filterable: &'static [&'static str],
    /// The `bool` field that marks an item deleted, when deleting keeps it.
    pub soft_delete: Option<&'static str>,
    /// The parent parameters whose values must parse as ids of a kind (`uid` as an integer,
    /// from `#[resource(parent = "uid: u64")]`): any other value is a 400 on every endpoint, as
    /// a bad item id is.
    pub parent_ids: &'static [(&'static str, IdKind)],
    /// The endpoints generated.
    pub actions: Actions,
    /// The page size when a list request gives no `limit`.
    pub default_limit: u64,
    /// The largest page; larger `limit`s are clamped to it.
    pub max_limit: u64,
}

/// Which endpoints a resource has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actions {
    /// `POST {path}/`
    pub create: bool,
    /// `GET {path}/{id}`
    pub read: bool,
    /// `PUT {path}/{id}`
    pub update: bool,
    /// `PATCH {path}/{id}` (JSON Merge Patch)
    pub patch: bool,
    /// `DELETE {path}/{id}`
    pub delete: bool,
    /// `GET {list path}`
    pub list: bool,
}

impl Actions {
    /// Every endpoint.
    pub const ALL: Actions = Actions {
        create: true,
        read: true,
        update: true,
        patch: true,
        delete: true,
        list: true,
    };
}

impl ResourceSpec {
    /// The path parameters of the parent, in order (`["uid"]` for `/user/{uid}/cart`).
    pub fn parent_params(&self) -> Vec<&'static str> {
        let mut params = Vec::new();
        let mut rest = self.path;
        while let Some(start) = rest.find('{') {
            let Some(end) = rest[start..].find('}') else {
                break;
            };
            params.push(&rest[start + 1..start + end]);
            rest = &rest[start + end + 1..];
        }
        params
    }

    /// The store's parent key for the given parent parameter values, in path order
    /// (`uid=7` for `/user/{uid}/cart` and `["7"]`); `None` for a top-level resource.
    /// Numeric values are written canonically, so `/user/007/cart` is user 7's cart; `%`, `&`
    /// and `=` in a value are percent-encoded, so that two parents never share a key.
    pub fn parent_key<V: AsRef<str>>(&self, values: &[V]) -> Option<String> {
        let params = self.parent_params();
        if params.is_empty() {
            return None;
        }
        let parts: Vec<String> = params
            .iter()
            .zip(
                values
                    .iter()
                    .map(AsRef::as_ref)
                    .chain(std::iter::repeat("")),
            )
            .map(|(name, value)| format!("{name}={}", escape_key_part(&canonical_param(value))))
            .collect();
        Some(parts.join("&"))
    }

    /// Where the list is served.
    pub fn list_path(&self) -> String {
        self.list_path
            .map_or_else(|| format!("{}/", self.path), str::to_owned)
    }

    /// Where items are created.
    pub fn create_path(&self) -> String {
        format!("{}/", self.path)
    }

    /// The item route pattern (`/product/{id}`); the id parameter is named after the id field
    /// unless a parent parameter already has that name.
    pub fn item_pattern(&self) -> String {
        format!("{}/{{{}}}", self.path, self.id_param())
    }

    /// The name of the id's path parameter.
    pub fn id_param(&self) -> &'static str {
        if self.parent_params().contains(&self.id_field) {
            "__microkit_id"
        } else {
            self.id_field
        }
    }

    /// The id kind a parent parameter's values must have, when declared.
    pub fn parent_id_kind(&self, param: &str) -> Option<IdKind> {
        self.parent_ids
            .iter()
            .find(|(name, _)| *name == param)
            .map(|(_, kind)| *kind)
    }

    /// Whether `field` is set by the server only.
    pub fn is_server_set(&self, field: &str) -> bool {
        field == self.id_field || self.soft_delete == Some(field) || self.read_only.contains(&field)
    }
}

/// A parameter value as parents are keyed: numbers without leading zeros, text as it is.
pub(crate) fn canonical_param(value: &str) -> String {
    match value.parse::<u64>() {
        Ok(number) => number.to_string(),
        Err(_) => value.to_owned(),
    }
}

/// A parent value as written in a parent key: the key's separators (and `%`, so that the
/// escaping cannot be forged) percent-encoded, everything else as it is.
fn escape_key_part(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' => escaped.push_str("%25"),
            '&' => escaped.push_str("%26"),
            '=' => escaped.push_str("%3D"),
            c => escaped.push(c),
        }
    }
    escaped
}
