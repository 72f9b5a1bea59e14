//! The checks of the attributes against each other and against the struct: one id, its type,
//! paths against parents, rules against each other. Every problem is reported, each at the
//! attribute or field at fault. What the attributes mean once valid is `resolve`'s business.

use proc_macro2::Span;

use crate::ast::{self, Container, Field};
use crate::attr::Rule;
use crate::errors::Errors;
use crate::resolve::{
    id_kind, is_ident, parent_entries, parent_kind, path_params, Resolved, DEFAULT_LIMIT, MAX_LIMIT,
};

/// PostgreSQL's identifier limit, which index names `{collection}__u_{field}` must fit.
const MAX_IDENTIFIER_LEN: usize = 63;

/// Reports every mistake in the attributes of `cont`; `resolved` is what they mean.
pub(crate) fn check(cont: &Container<'_>, resolved: &Resolved, errors: &mut Errors) {
    check_paths(cont, errors);
    check_collection(cont, &resolved.collection, errors);
    check_limits(cont, errors);
    check_fields(cont, &resolved.collection, errors);
}

/// `path`, `parent` and `list_path`.
fn check_paths(cont: &Container<'_>, errors: &mut Errors) {
    let attrs = &cont.attrs;
    let path = match &attrs.path {
        None => {
            errors.at(
                cont.input.ident.span(),
                "a resource needs a path: add `#[resource(path = \"/...\")]` to the struct",
            );
            None
        }
        Some(lit) => {
            let value = lit.value();
            match path_params(&value, false) {
                Ok(params) => Some((value, params)),
                Err(why) => {
                    errors.at(lit.span(), format!("invalid `path`: {why}"));
                    None
                }
            }
        }
    };
    if let (Some(parent), Some((value, params))) = (&attrs.parent, &path) {
        for (name, ty) in parent_entries(&parent.value()) {
            if let Some(ty) = ty {
                if parent_kind(ty).is_none() {
                    errors.at(
                        parent.span(),
                        format!("`{ty}` is not an id type or a resource: write `{name}: u64` (an integer, `Uuid` or `String`), or `{name}: User` to take the id kind of the resource `User`"),
                    );
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
    if let Some(lit) = &attrs.list_path {
        let value = lit.value();
        match path_params(&value, true) {
            Err(why) => errors.at(lit.span(), format!("invalid `list_path`: {why}")),
            Ok(mut list_params) => {
                if let Some((path_value, params)) = &path {
                    let mut params = params.clone();
                    list_params.sort();
                    params.sort();
                    if list_params != params {
                        errors.at(
                            lit.span(),
                            format!("`list_path = \"{value}\"` must have the same parameters as `path = \"{path_value}\"`"),
                        );
                    }
                }
            }
        }
    }
}

/// The collection, stated or derived from the struct's name.
fn check_collection(cont: &Container<'_>, collection: &str, errors: &mut Errors) {
    let Err(why) = collection_name(collection) else {
        return;
    };
    match &cont.attrs.collection {
        Some(lit) => errors.at(lit.span(), format!("invalid `collection`: {why}")),
        None => errors.at(
            cont.input.ident.span(),
            format!("the default collection name `{collection}` is invalid ({why}): set one with `#[resource(collection = \"...\")]`"),
        ),
    }
}

/// `default_limit` and `max_limit`.
fn check_limits(cont: &Container<'_>, errors: &mut Errors) {
    let attrs = &cont.attrs;
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
            .map_or(cont.input.ident.span(), syn::LitInt::span);
        errors.at(
            span,
            format!("`default_limit` ({default_limit}) is larger than `max_limit` ({max_limit})"),
        );
    }
}

/// Each field on its own; then exactly one id field, of an id type, and at most one
/// `soft_delete` field.
fn check_fields(cont: &Container<'_>, collection: &str, errors: &mut Errors) {
    let ident = &cont.input.ident;
    let mut first_id: Option<&Field<'_>> = None;
    let mut first_soft_delete: Option<&Field<'_>> = None;
    for field in &cont.fields {
        check_field(cont, field, collection, errors);
        if let Some(span) = field.attrs.id {
            if let Some(first) = first_id {
                errors.at(
                    span,
                    format!("a resource has exactly one id field, and `{}` is already marked `#[resource(id)]`", first.ident),
                );
            } else {
                first_id = Some(field);
                if id_kind(field.ty).is_none() {
                    errors.push(syn::Error::new_spanned(
                        field.ty,
                        format!(
                            "unsupported id type `{}`: the id must be an integer (`u64`, `i64`, `u32` or `i32`), a `uuid::Uuid` or a `String`",
                            ast::type_name(field.ty)
                        ),
                    ));
                }
            }
        }
        if let Some(span) = field.attrs.soft_delete {
            if let Some(first) = first_soft_delete {
                errors.at(
                    span,
                    format!(
                        "a resource has at most one `soft_delete` field, and `{}` is one already",
                        first.ident
                    ),
                );
            } else {
                first_soft_delete = Some(field);
            }
        }
    }
    if first_id.is_none() {
        errors.at(
            ident.span(),
            format!("`{ident}` has no id field: mark one field with `#[resource(id)]` (an integer, a `uuid::Uuid` or a `String`)"),
        );
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

#[cfg(test)]
mod tests {
    use super::*;

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
