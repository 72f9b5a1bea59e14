//! What the attributes mean once defaults are filled in: the crate path, the paths, the
//! collection, the id, the actions and the page limits. Resolving never fails; what is wrong
//! with the attributes is `check`'s business, and the expansion only runs when it found
//! nothing.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};

use crate::ast::{self, Container};
use crate::attr::ACTIONS;
use crate::case::snake_case;

/// How ids are made (mirrors `microkit::resource::store::IdKind`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdKind {
    Integer,
    Uuid,
    Text,
}

/// The id kind a parent parameter's values must have.
pub(crate) enum ParentKind {
    /// Stated as an id type: `uid: u64`.
    Stated(IdKind),
    /// Inferred from the parent resource: `uid: User` takes `User`'s id kind.
    Of(syn::Path),
}

/// What the expansion needs. Best effort when the attributes have errors: the fallback only
/// uses `krate` and `path`.
pub(crate) struct Resolved {
    pub(crate) krate: TokenStream,
    /// The item path and its literal's span, when it is well-formed.
    pub(crate) path: Option<(String, Span)>,
    pub(crate) list_path: Option<String>,
    /// The parent parameters that declare an id kind.
    pub(crate) parent_ids: Vec<(String, ParentKind)>,
    pub(crate) collection: String,
    /// The id field's index and kind: the first field marked `id`, when its type is an id type.
    pub(crate) id: Option<(usize, IdKind)>,
    /// The index of the first `soft_delete` field.
    pub(crate) soft_delete: Option<usize>,
    /// Which of [`ACTIONS`] are generated.
    pub(crate) actions: [bool; ACTIONS.len()],
    pub(crate) default_limit: u64,
    pub(crate) max_limit: u64,
}

pub(crate) const DEFAULT_LIMIT: u64 = 20;
pub(crate) const MAX_LIMIT: u64 = 100;

pub(crate) fn resolve(cont: &Container<'_>) -> Resolved {
    let attrs = &cont.attrs;
    let krate = attrs
        .krate
        .as_ref()
        .map_or_else(|| quote!(::microkit), ToTokens::to_token_stream);
    let path = attrs
        .path
        .as_ref()
        .filter(|lit| path_params(&lit.value(), false).is_ok())
        .map(|lit| (lit.value(), lit.span()));
    let list_path = attrs
        .list_path
        .as_ref()
        .map(syn::LitStr::value)
        .filter(|value| path_params(value, true).is_ok());
    let parent_ids = attrs.parent.as_ref().map_or_else(Vec::new, |parent| {
        parent_entries(&parent.value())
            .into_iter()
            .filter_map(|(name, ty)| Some((name.to_owned(), parent_kind(ty?)?)))
            .collect()
    });
    let collection = attrs.collection.as_ref().map_or_else(
        || snake_case(&cont.input.ident.to_string()),
        syn::LitStr::value,
    );
    let id = cont
        .fields
        .iter()
        .position(|field| field.attrs.id.is_some())
        .and_then(|i| Some((i, id_kind(cont.fields[i].ty)?)));
    let soft_delete = cont
        .fields
        .iter()
        .position(|field| field.attrs.soft_delete.is_some());
    let mut actions = [true; ACTIONS.len()];
    if let Some((_, listed)) = &attrs.actions {
        if !listed.is_empty() {
            actions = ACTIONS.map(|action| listed.iter().any(|(name, _)| name == action));
        }
    }
    let limit = |lit: &Option<syn::LitInt>, default: u64| {
        lit.as_ref()
            .map_or(default, |lit| lit.base10_parse().unwrap_or(default))
    };
    Resolved {
        krate,
        path,
        list_path,
        parent_ids,
        collection,
        id,
        soft_delete,
        actions,
        default_limit: limit(&attrs.default_limit, DEFAULT_LIMIT),
        max_limit: limit(&attrs.max_limit, MAX_LIMIT),
    }
}

/// The entries of `parent = "uid: u64, sid"`: each name, with the type after its `:` if any.
pub(crate) fn parent_entries(declared: &str) -> Vec<(&str, Option<&str>)> {
    declared
        .split(',')
        .map(|entry| match entry.split_once(':') {
            Some((name, ty)) => (name.trim(), Some(ty.trim())),
            None => (entry.trim(), None),
        })
        .collect()
}

/// The kind declared after a parent parameter: an id type, or the path of a parent resource.
pub(crate) fn parent_kind(ty: &str) -> Option<ParentKind> {
    let ty: syn::Type = syn::parse_str(ty).ok()?;
    if let Some(kind) = id_kind(&ty) {
        return Some(ParentKind::Stated(kind));
    }
    match ty {
        syn::Type::Path(path) if path.qself.is_none() => Some(ParentKind::Of(path.path)),
        _ => None,
    }
}

pub(crate) fn id_kind(ty: &syn::Type) -> Option<IdKind> {
    let segment = ast::last_segment(ty)?;
    if !segment.arguments.is_empty() {
        return None;
    }
    match segment.ident.to_string().as_str() {
        "u64" | "i64" | "u32" | "i32" => Some(IdKind::Integer),
        "Uuid" => Some(IdKind::Uuid),
        "String" => Some(IdKind::Text),
        _ => None,
    }
}

pub(crate) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a route path and returns its parameters, in order. The item path must not end with
/// `/` (items live at `{path}/{id}`); a list path may.
pub(crate) fn path_params(path: &str, trailing_slash: bool) -> Result<Vec<String>, String> {
    if !path.starts_with('/') {
        return Err(format!("`{path}` must start with `/`"));
    }
    if path == "/" || (!trailing_slash && path.ends_with('/')) {
        return Err(format!(
            "`{path}` must not end with `/`: items live at `{{path}}/{{id}}` and are created at `{{path}}/`"
        ));
    }
    let body = path
        .strip_suffix('/')
        .filter(|_| trailing_slash)
        .unwrap_or(path);
    let mut params: Vec<String> = Vec::new();
    for segment in body[1..].split('/') {
        if segment.is_empty() {
            return Err(format!("`{path}` has an empty segment (`//`)"));
        }
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if !is_ident(name) {
                return Err(format!(
                    "`{{{name}}}` is not a parameter: write `{{name}}` with a Rust identifier"
                ));
            }
            if params.iter().any(|p| p == name) {
                return Err(format!("the parameter `{{{name}}}` appears twice"));
            }
            params.push(name.to_owned());
        } else if segment.contains(['{', '}', '*', '?', '#', ' ', '%']) {
            return Err(format!(
                "the segment `{segment}` must be plain text or a whole `{{parameter}}`"
            ));
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_their_parameters() {
        assert_eq!(path_params("/product", false), Ok(vec![]));
        assert_eq!(
            path_params("/user/{uid}/cart", false),
            Ok(vec!["uid".to_owned()])
        );
        assert_eq!(path_params("/products/", true), Ok(vec![]));
        for bad in [
            "product",
            "/product/",
            "/",
            "/a//b",
            "/a/{}/b",
            "/a/x{y}",
            "/{a}/{a}",
        ] {
            assert!(path_params(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn parent_entries_keep_their_types() {
        assert_eq!(
            parent_entries("uid: u64, sid"),
            [("uid", Some("u64")), ("sid", None)]
        );
        assert!(matches!(
            parent_kind("u64"),
            Some(ParentKind::Stated(IdKind::Integer))
        ));
        assert!(matches!(parent_kind("User"), Some(ParentKind::Of(_))));
        assert!(parent_kind("&str").is_none());
    }
}
