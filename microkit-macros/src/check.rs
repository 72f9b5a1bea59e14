//! The checks that need the whole struct: one id, its type, paths against parents, rules
//! against each other. Every problem is reported, each at the attribute or field at fault.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};

use crate::ast::{self, Container, Field};
use crate::attr::{Rule, ACTIONS};
use crate::case::snake_case;
use crate::errors::Errors;

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

/// What the expansion needs, resolved and checked. Best effort when there are errors: the
/// fallback only uses `krate` and `path`.
pub(crate) struct Resolved {
    pub(crate) krate: TokenStream,
    /// The item path and its literal's span, when it is well-formed.
    pub(crate) path: Option<(String, Span)>,
    pub(crate) list_path: Option<String>,
    /// The parent parameters that declare an id kind.
    pub(crate) parent_ids: Vec<(String, ParentKind)>,
    pub(crate) collection: String,
    pub(crate) id: Option<(usize, IdKind)>,
    pub(crate) soft_delete: Option<usize>,
    /// Which of [`ACTIONS`] are generated.
    pub(crate) actions: [bool; ACTIONS.len()],
    pub(crate) default_limit: u64,
    pub(crate) max_limit: u64,
}

const DEFAULT_LIMIT: u64 = 20;
const MAX_LIMIT: u64 = 100;
/// PostgreSQL's identifier limit, which index names `{collection}__u_{field}` must fit.
const MAX_IDENTIFIER_LEN: usize = 63;

pub(crate) fn check(cont: &Container<'_>, errors: &mut Errors) -> Resolved {
    let attrs = &cont.attrs;
    let ident = &cont.input.ident;
    let krate = attrs
        .krate
        .as_ref()
        .map_or_else(|| quote!(::microkit), ToTokens::to_token_stream);

    // Paths.
    let path = match &attrs.path {
        None => {
            errors.at(
                ident.span(),
                "a resource needs a path: add `#[resource(path = \"/...\")]` to the struct",
            );
            None
        }
        Some(lit) => {
            let value = lit.value();
            match path_params(&value, false) {
                Ok(params) => Some((value, lit.span(), params)),
                Err(why) => {
                    errors.at(lit.span(), format!("invalid `path`: {why}"));
                    None
                }
            }
        }
    };
    let mut parent_ids = Vec::new();
    if let (Some(parent), Some((value, _, params))) = (&attrs.parent, &path) {
        for declared in parent.value().split(',') {
            let (name, kind) = match declared.split_once(':') {
                Some((name, ty)) => (name.trim(), Some(ty.trim())),
                None => (declared.trim(), None),
            };
            if let Some(ty) = kind {
                match parent_kind(ty) {
                    Some(kind) => parent_ids.push((name.to_owned(), kind)),
                    None => errors.at(
                        parent.span(),
                        format!("`{ty}` is not an id type or a resource: write `{name}: u64` (an integer, `Uuid` or `String`), or `{name}: User` to take the id kind of the resource `User`"),
                    ),
                }
            }
            if name.is_empty() || !is_ident(name) {
                errors.at(
                    parent.span(),
                    format!("`parent` lists path parameters separated by commas, each with its id type or resource if values must parse as ids (`parent = \"uid: u64\"`); `{name}` is not a parameter name"),
                );
            } else if !params.iter().any(|p| p == name) {
                errors.at(
                    parent.span(),
                    format!("the parent parameter `{name}` is missing from `path = \"{value}\"`: nest the resource under it, as in `path = \"/.../{{{name}}}/...\"`"),
                );
            }
        }
    }
    let mut list_path = None;
    if let Some(lit) = &attrs.list_path {
        let value = lit.value();
        match path_params(&value, true) {
            Err(why) => errors.at(lit.span(), format!("invalid `list_path`: {why}")),
            Ok(list_params) => {
                if let Some((path_value, _, params)) = &path {
                    let mut a = list_params.clone();
                    let mut b = params.clone();
                    a.sort();
                    b.sort();
                    if a != b {
                        errors.at(
                            lit.span(),
                            format!("`list_path = \"{value}\"` must have the same parameters as `path = \"{path_value}\"`"),
                        );
                    }
                }
                list_path = Some(value);
            }
        }
    }

    // The collection.
    let collection = match &attrs.collection {
        Some(lit) => {
            let value = lit.value();
            if let Err(why) = collection_name(&value) {
                errors.at(lit.span(), format!("invalid `collection`: {why}"));
            }
            value
        }
        None => {
            let value = snake_case(&ident.to_string());
            if let Err(why) = collection_name(&value) {
                errors.at(
                    ident.span(),
                    format!("the default collection name `{value}` is invalid ({why}): set one with `#[resource(collection = \"...\")]`"),
                );
            }
            value
        }
    };

    // Actions and limits.
    let mut actions = [true; ACTIONS.len()];
    if let Some((_, listed)) = &attrs.actions {
        if !listed.is_empty() {
            actions = [false; ACTIONS.len()];
            for (name, _) in listed {
                let i = ACTIONS
                    .iter()
                    .position(|a| a == name)
                    .expect("checked when parsed");
                actions[i] = true;
            }
        }
    }
    let limit = |lit: &Option<syn::LitInt>, default: u64, key: &str, errors: &mut Errors| match lit
    {
        None => default,
        Some(lit) => {
            let n = lit.base10_parse::<u64>().unwrap_or(default);
            if n == 0 {
                errors.at(lit.span(), format!("`{key}` must be at least 1"));
            }
            n
        }
    };
    let default_limit = limit(&attrs.default_limit, DEFAULT_LIMIT, "default_limit", errors);
    let max_limit = limit(&attrs.max_limit, MAX_LIMIT, "max_limit", errors);
    if default_limit > max_limit {
        let span = attrs
            .default_limit
            .as_ref()
            .or(attrs.max_limit.as_ref())
            .map_or(ident.span(), syn::LitInt::span);
        errors.at(
            span,
            format!("`default_limit` ({default_limit}) is larger than `max_limit` ({max_limit})"),
        );
    }

    // Fields.
    let mut id: Option<(usize, IdKind)> = None;
    let mut first_id: Option<&Field<'_>> = None;
    let mut soft_delete: Option<usize> = None;
    for (i, field) in cont.fields.iter().enumerate() {
        check_field(cont, field, &collection, errors);
        if let Some(span) = field.attrs.id {
            if let Some(first) = first_id {
                errors.at(
                    span,
                    format!("a resource has exactly one id field, and `{}` is already marked `#[resource(id)]`", first.ident),
                );
            } else {
                first_id = Some(field);
                match id_kind(field.ty) {
                    Some(kind) => id = Some((i, kind)),
                    None => errors.push(syn::Error::new_spanned(
                        field.ty,
                        format!(
                            "unsupported id type `{}`: the id must be an integer (`u64`, `i64`, `u32` or `i32`), a `uuid::Uuid` or a `String`",
                            ast::type_name(field.ty)
                        ),
                    )),
                }
            }
        }
        if let Some(span) = field.attrs.soft_delete {
            if let Some(first) = soft_delete {
                errors.at(
                    span,
                    format!(
                        "a resource has at most one `soft_delete` field, and `{}` is one already",
                        cont.fields[first].ident
                    ),
                );
            } else {
                soft_delete = Some(i);
            }
        }
    }
    if first_id.is_none() {
        errors.at(
            ident.span(),
            format!("`{ident}` has no id field: mark one field with `#[resource(id)]` (an integer, a `uuid::Uuid` or a `String`)"),
        );
    }

    Resolved {
        krate,
        path: path.map(|(value, span, _)| (value, span)),
        list_path,
        parent_ids,
        collection,
        id,
        soft_delete,
        actions,
        default_limit,
        max_limit,
    }
}

fn check_field(cont: &Container<'_>, field: &Field<'_>, collection: &str, errors: &mut Errors) {
    let a = &field.attrs;
    let name = &field.name;
    if let Some(span) = field.serde.flatten {
        errors.at(
            span,
            "#[derive(Resource)] does not support `#[serde(flatten)]`: a resource's fields must be its own, so that they can be listed, filtered and validated",
        );
    }
    if field.skipped() {
        if let Some(span) = field
            .first_resource_key()
            .or(a.rules.first().map(rule_span))
        {
            errors.at(
                span,
                format!("`{}` is skipped by serde (`#[serde(skip)]`), so it is not part of the resource: remove its `#[resource(...)]`", field.ident),
            );
        }
        return;
    }
    if let Some(span) = a.soft_delete {
        if !ast::is_bool(field.ty) {
            errors.push(syn::Error::new_spanned(
                field.ty,
                format!(
                    "the `soft_delete` field must be a `bool` (true once deleted), not `{}`",
                    ast::type_name(field.ty)
                ),
            ));
        }
        if a.id.is_some() {
            errors.at(span, "the id field cannot be the `soft_delete` flag");
        }
    }
    if let Some(span) = a.read_only {
        if a.id.is_some() {
            errors.at(
                span,
                "the id field is managed by the store already: remove `read_only`",
            );
        } else if a.soft_delete.is_some() {
            errors.at(
                span,
                "the `soft_delete` field is server-set already: remove `read_only`",
            );
        } else if !field.has_default(cont) {
            errors.at(
                span,
                format!(
                    "`read_only` fields are left out of requests, so `{}` must deserialize without a value: make it an `Option<{}>` or add `#[serde(default)]`",
                    field.ident,
                    ast::type_name(field.ty)
                ),
            );
        }
    }
    if a.id.is_some() && (field.serde.skip_serializing || field.serde.skip_deserializing) {
        errors.at(
            a.id.unwrap_or_else(Span::call_site),
            "the id field must be serialized and deserialized: remove its `#[serde(skip_...)]`",
        );
    }
    for (key, span) in [("unique", a.unique), ("filter", a.filter)] {
        let Some(span) = span else { continue };
        if key == "unique" && a.id.is_some() {
            errors.at(span, "ids are unique already: remove `unique`");
        } else if key == "unique" && a.soft_delete.is_some() {
            errors.at(span, "the `soft_delete` flag cannot be `unique`");
        } else if !is_field_name(name) {
            errors.at(
                span,
                format!("`{key}` fields are indexed by their JSON name, which must match [A-Za-z_][A-Za-z0-9_]*; `{name}` does not (see `#[serde(rename...)]`)"),
            );
        } else if collection.len() + "__u_".len() + name.len() > MAX_IDENTIFIER_LEN {
            errors.at(
                span,
                format!("the index name `{collection}__u_{name}` is longer than {MAX_IDENTIFIER_LEN} bytes: shorten the field or collection name"),
            );
        }
    }
    for rule in &a.rules {
        match rule {
            Rule::Length {
                span,
                min: Some(min),
                max: Some(max),
            } => {
                let (lo, hi) = (min.base10_parse::<u64>(), max.base10_parse::<u64>());
                if let (Ok(lo), Ok(hi)) = (lo, hi) {
                    if lo > hi {
                        errors.at(
                            *span,
                            format!(
                                "`length` can never pass: `min` ({lo}) is larger than `max` ({hi})"
                            ),
                        );
                    }
                }
            }
            Rule::Range {
                span,
                min: Some(min),
                max: Some(max),
            } if min.as_f64() > max.as_f64() => {
                errors.at(*span, "`range` can never pass: `min` is larger than `max`");
            }
            Rule::Pattern { lit } => {
                if let Err(why) = regex_error(&lit.value()) {
                    errors.at(lit.span(), format!("invalid `pattern`: {why}"));
                }
            }
            _ => {}
        }
    }
}

pub(crate) fn rule_span(rule: &Rule) -> Span {
    match rule {
        Rule::Length { span, .. } | Rule::Range { span, .. } | Rule::Email { span } => *span,
        Rule::Pattern { lit } | Rule::Custom { lit, .. } => lit.span(),
    }
}

/// Parses a pattern as the `regex` crate will, describing the first error in one line.
fn regex_error(pattern: &str) -> Result<(), String> {
    let at = |kind: &dyn std::fmt::Display, span: &regex_syntax::ast::Span| {
        let start = span.start.offset;
        let end = span.end.offset.max(start);
        let fragment = pattern.get(start..end).filter(|f| !f.is_empty());
        match fragment {
            Some(fragment) if fragment != pattern => format!("{kind} (at `{fragment}`)"),
            _ => kind.to_string(),
        }
    };
    match regex_syntax::Parser::new().parse(pattern) {
        Ok(_) => Ok(()),
        Err(regex_syntax::Error::Parse(e)) => Err(at(e.kind(), e.span())),
        Err(regex_syntax::Error::Translate(e)) => Err(at(e.kind(), e.span())),
        Err(e) => Err(e.to_string()),
    }
}

/// The kind declared after a parent parameter: an id type, or the path of a parent resource.
fn parent_kind(ty: &str) -> Option<ParentKind> {
    let ty: syn::Type = syn::parse_str(ty).ok()?;
    if let Some(kind) = id_kind(&ty) {
        return Some(ParentKind::Stated(kind));
    }
    match ty {
        syn::Type::Path(path) if path.qself.is_none() => Some(ParentKind::Of(path.path)),
        _ => None,
    }
}

fn id_kind(ty: &syn::Type) -> Option<IdKind> {
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

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_field_name(s: &str) -> bool {
    is_ident(s)
}

fn collection_name(s: &str) -> Result<(), String> {
    let mut bytes = s.bytes();
    let well_formed = bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !well_formed {
        Err(format!("`{s}` must match [a-z][a-z0-9_]*"))
    } else if s.len() > 50 {
        Err(format!("`{s}` is longer than 50 bytes"))
    } else if s.starts_with("sqlite_") {
        Err(format!(
            "`{s}` starts with `sqlite_`, which SQLite reserves"
        ))
    } else {
        Ok(())
    }
}

/// Checks a route path and returns its parameters, in order. The item path must not end with
/// `/` (items live at `{path}/{id}`); a list path may.
fn path_params(path: &str, trailing_slash: bool) -> Result<Vec<String>, String> {
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
    fn malformed_patterns_are_described() {
        assert_eq!(regex_error("^[a-z]+$"), Ok(()));
        assert_eq!(
            regex_error("[a-z"),
            Err("unclosed character class (at `[`)".to_owned())
        );
        assert_eq!(
            regex_error("a{2,1}b"),
            Err(
                "invalid repetition count range, the start must be <= the end (at `{2,1}`)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn collection_names() {
        assert!(collection_name("cart_item").is_ok());
        assert!(collection_name("CartItem").is_err());
        assert!(collection_name("sqlite_x").is_err());
    }
}
