//! Parsing of `#[resource(...)]` and of the `#[serde(...)]` keys that change the JSON form.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, ExprUnary, Lit, LitInt, LitStr, Token, UnOp};

use crate::case::RenameRule;
use crate::errors::Errors;

/// The keys of the container attribute, in the order of the documentation.
pub(crate) const CONTAINER_KEYS: &[&str] = &[
    "path",
    "list_path",
    "collection",
    "parent",
    "actions",
    "default_limit",
    "max_limit",
    "crate",
];

/// The keys of a field attribute.
pub(crate) const FIELD_KEYS: &[&str] = &[
    "id",
    "read_only",
    "unique",
    "filter",
    "soft_delete",
    "validate",
];

const RULE_KEYS: &[&str] = &["length", "range", "email", "pattern", "custom"];

/// The endpoints a resource can have, in the order of the fields of
/// `microkit::resource::Actions`: the one list that parsing, resolving and the expansion read.
pub(crate) const ACTIONS: [&str; 6] = ["create", "read", "update", "patch", "delete", "list"];

const BOUND_KEYS: &[&str] = &["min", "max"];

/// `#[resource(...)]` on the struct.
#[derive(Default)]
pub(crate) struct ContainerAttrs {
    pub(crate) path: Option<LitStr>,
    pub(crate) list_path: Option<LitStr>,
    pub(crate) collection: Option<LitStr>,
    pub(crate) parent: Option<LitStr>,
    pub(crate) actions: Option<(Span, Vec<(String, Span)>)>,
    pub(crate) default_limit: Option<LitInt>,
    pub(crate) max_limit: Option<LitInt>,
    pub(crate) krate: Option<syn::Path>,
}

/// `#[resource(...)]` on a field; each flag keeps the span of its key.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    pub(crate) id: Option<Span>,
    pub(crate) read_only: Option<Span>,
    pub(crate) unique: Option<Span>,
    pub(crate) filter: Option<Span>,
    pub(crate) soft_delete: Option<Span>,
    pub(crate) rules: Vec<Rule>,
}

/// One `validate(...)` rule.
pub(crate) enum Rule {
    Length {
        span: Span,
        min: Option<LitInt>,
        max: Option<LitInt>,
    },
    Range {
        span: Span,
        min: Option<Number>,
        max: Option<Number>,
    },
    Email {
        span: Span,
    },
    Pattern {
        lit: LitStr,
    },
    Custom {
        lit: LitStr,
        path: syn::Path,
    },
}

/// A `range` bound as written: an integer or a decimal, possibly negative.
#[derive(Clone)]
pub(crate) enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    pub(crate) fn as_f64(&self) -> f64 {
        match *self {
            Number::Int(n) => n as f64,
            Number::Float(x) => x,
        }
    }
}

/// The `#[serde(...)]` keys of the struct that matter here.
#[derive(Default)]
pub(crate) struct SerdeContainer {
    pub(crate) rename_all: Option<RenameRule>,
    pub(crate) default: bool,
    pub(crate) deny_unknown_fields: bool,
}

/// The `#[serde(...)]` keys of a field that matter here.
#[derive(Default)]
pub(crate) struct SerdeField {
    pub(crate) rename: Option<String>,
    pub(crate) default: bool,
    pub(crate) skip_serializing: bool,
    pub(crate) skip_deserializing: bool,
    pub(crate) flatten: Option<Span>,
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == cb {
                previous
            } else {
                1 + previous.min(row[j]).min(current)
            };
            previous = current;
        }
    }
    row[b.len()]
}

/// The closest of `candidates`, if close enough to be a likely typo.
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|&(d, c)| d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn list(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    quoted.join(", ")
}

/// The key of a nested meta as a string (`crate` included).
fn key_of(meta: &ParseNestedMeta<'_>) -> String {
    meta.path
        .get_ident()
        .map(|i| i.to_string())
        .unwrap_or_else(|| {
            let segments: Vec<String> = meta
                .path
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            segments.join("::")
        })
}

/// Consumes whatever follows a key we do not use (`= value` or `(...)`), so parsing goes on.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|nested| skip_value(&nested))?;
    }
    Ok(())
}

/// Reports an unknown key: a key of the other level (`id` on the struct) says where it goes;
/// otherwise the closest known key is suggested.
fn unknown(
    meta: &ParseNestedMeta<'_>,
    what: &str,
    keys: &[&str],
    other_level: Option<(&[&str], &str)>,
    errors: &mut Errors,
) -> syn::Result<()> {
    let key = key_of(meta);
    let message = match other_level {
        Some((other_keys, hint)) if other_keys.contains(&key.as_str()) => {
            format!("`{key}` is {hint}")
        }
        _ => match suggest(&key, keys) {
            Some(close) => format!("unknown {what} `{key}`, did you mean `{close}`?"),
            None => format!("unknown {what} `{key}`; expected one of {}", list(keys)),
        },
    };
    errors.push(syn::Error::new(meta.path.span(), message));
    skip_value(meta)
}

/// Whether `key` is followed by `= ...`; if not, reports it with an `example` value and skips.
fn has_value(
    meta: &ParseNestedMeta<'_>,
    key: &str,
    example: &str,
    errors: &mut Errors,
) -> syn::Result<bool> {
    if meta.input.peek(Token![=]) {
        return Ok(true);
    }
    errors.push(meta.error(format!("`{key}` needs a value: `{key} = {example}`")));
    skip_value(meta)?;
    Ok(false)
}

/// A `key = "string"` value; anything else is reported and skipped.
fn string(meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<Option<LitStr>> {
    let key = key_of(meta);
    if !has_value(meta, &key, "\"...\"", errors)? {
        return Ok(None);
    }
    match meta.value()?.parse::<Expr>()? {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(Some(s)),
        other => {
            errors.push(syn::Error::new(
                other.span(),
                format!("`{key}` takes a string: `{key} = \"...\"`"),
            ));
            Ok(None)
        }
    }
}

/// A `key = 123` value (a non-negative integer).
fn integer(meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<Option<LitInt>> {
    let key = key_of(meta);
    if !has_value(meta, &key, "10", errors)? {
        return Ok(None);
    }
    match meta.value()?.parse::<Expr>()? {
        Expr::Lit(ExprLit {
            lit: Lit::Int(n), ..
        }) if n.base10_parse::<u64>().is_ok() => Ok(Some(n)),
        other => {
            errors.push(syn::Error::new(
                other.span(),
                format!("`{key}` takes a non-negative integer: `{key} = 10`"),
            ));
            Ok(None)
        }
    }
}

/// A `key = -1.5` value (an integer or a decimal, possibly negative).
fn number(meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<Option<Number>> {
    let key = key_of(meta);
    if !has_value(meta, &key, "0", errors)? {
        return Ok(None);
    }
    let expr = meta.value()?.parse::<Expr>()?;
    let (negative, lit) = match &expr {
        Expr::Lit(ExprLit { lit, .. }) => (false, lit),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match &**expr {
            Expr::Lit(ExprLit { lit, .. }) => (true, lit),
            _ => (false, &Lit::Bool(syn::LitBool::new(false, expr.span()))),
        },
        _ => (false, &Lit::Bool(syn::LitBool::new(false, expr.span()))),
    };
    let sign = if negative { -1 } else { 1 };
    let parsed = match lit {
        Lit::Int(n) => n.base10_parse::<i128>().ok().map(|n| Number::Int(sign * n)),
        Lit::Float(x) => x
            .base10_parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(|x| Number::Float(if negative { -x } else { x })),
        _ => None,
    };
    if parsed.is_none() {
        errors.push(syn::Error::new(
            expr.span(),
            format!("`{key}` takes a number: `{key} = 0` or `{key} = 0.5`"),
        ));
    }
    Ok(parsed)
}

/// A flag (`id`): a value after it is reported and skipped.
fn flag(
    meta: &ParseNestedMeta<'_>,
    slot: &mut Option<Span>,
    errors: &mut Errors,
) -> syn::Result<()> {
    let key = key_of(meta);
    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
        errors.push(meta.error(format!(
            "`{key}` takes no value: write `#[resource({key})]`"
        )));
        skip_value(meta)?;
    }
    set(slot, meta.path.span(), &key, meta.path.span(), errors);
    Ok(())
}

/// Fills a slot once; a second value is a duplicate.
fn set<T>(slot: &mut Option<T>, value: T, key: &str, span: Span, errors: &mut Errors) {
    if slot.is_some() {
        errors.push(syn::Error::new(span, format!("duplicate `{key}`")));
    } else {
        *slot = Some(value);
    }
}

/// Parses every `#[resource(...)]` of the struct.
pub(crate) fn container(attrs: &[Attribute], errors: &mut Errors) -> ContainerAttrs {
    let mut out = ContainerAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("resource")) {
        let result = attr.parse_nested_meta(|meta| {
            let key = key_of(&meta);
            let span = meta.path.span();
            match key.as_str() {
                "path" | "list_path" | "collection" | "parent" => {
                    if let Some(value) = string(&meta, errors)? {
                        let slot = match key.as_str() {
                            "path" => &mut out.path,
                            "list_path" => &mut out.list_path,
                            "collection" => &mut out.collection,
                            _ => &mut out.parent,
                        };
                        set(slot, value, &key, span, errors);
                    }
                }
                "default_limit" | "max_limit" => {
                    if let Some(value) = integer(&meta, errors)? {
                        let slot = if key == "default_limit" {
                            &mut out.default_limit
                        } else {
                            &mut out.max_limit
                        };
                        set(slot, value, &key, span, errors);
                    }
                }
                "crate" => {
                    if let Some(value) = string(&meta, errors)? {
                        match value.parse::<syn::Path>() {
                            Ok(path) => set(&mut out.krate, path, &key, span, errors),
                            Err(_) => errors.push(syn::Error::new(
                                value.span(),
                                "`crate` takes the path of the microkit crate: `crate = \"microkit\"`",
                            )),
                        }
                    }
                }
                "actions" => {
                    let mut actions = Vec::new();
                    if meta.input.peek(syn::token::Paren) {
                        meta.parse_nested_meta(|action| {
                            let name = key_of(&action);
                            if ACTIONS.contains(&&*name) {
                                if actions.iter().any(|(a, _)| *a == name) {
                                    errors.push(action.error(format!("duplicate action `{name}`")));
                                } else {
                                    actions.push((name.clone(), action.path.span()));
                                }
                                if !action.input.is_empty() && !action.input.peek(Token![,]) {
                                    errors.push(action.error(format!("the action `{name}` takes no value")));
                                    skip_value(&action)?;
                                }
                                Ok(())
                            } else {
                                unknown(&action, "action", &ACTIONS, None, errors)
                            }
                        })?;
                        if actions.is_empty() {
                            errors.push(syn::Error::new(
                                span,
                                format!("`actions(...)` lists no action: name at least one of {}", list(&ACTIONS)),
                            ));
                        }
                    } else {
                        errors.push(meta.error(
                            "`actions` lists the endpoints to generate: `actions(create, read, list)`",
                        ));
                        skip_value(&meta)?;
                    }
                    set(&mut out.actions, (span, actions), &key, span, errors);
                }
                _ => unknown(
                    &meta,
                    "resource attribute",
                    CONTAINER_KEYS,
                    Some((FIELD_KEYS, "a field attribute: put it on the field")),
                    errors,
                )?,
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    out
}

/// Parses every `#[resource(...)]` of a field.
pub(crate) fn field(attrs: &[Attribute], errors: &mut Errors) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("resource")) {
        let result =
            attr.parse_nested_meta(|meta| {
                match key_of(&meta).as_str() {
                    "id" => flag(&meta, &mut out.id, errors)?,
                    "read_only" => flag(&meta, &mut out.read_only, errors)?,
                    "unique" => flag(&meta, &mut out.unique, errors)?,
                    "filter" => flag(&meta, &mut out.filter, errors)?,
                    "soft_delete" => flag(&meta, &mut out.soft_delete, errors)?,
                    "validate" => {
                        if meta.input.peek(syn::token::Paren) {
                            meta.parse_nested_meta(|rule| {
                                if let Some(rule) = parse_rule(&rule, errors)? {
                                    out.rules.push(rule);
                                }
                                Ok(())
                            })?;
                        } else {
                            errors.push(meta.error(
                                "`validate` lists rules: `validate(length(min = 1), email)`",
                            ));
                            skip_value(&meta)?;
                        }
                    }
                    _ => unknown(
                        &meta,
                        "resource attribute",
                        FIELD_KEYS,
                        Some((CONTAINER_KEYS, "a struct attribute: put it on the struct")),
                        errors,
                    )?,
                }
                Ok(())
            });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    out
}

fn parse_rule(meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<Option<Rule>> {
    let key = key_of(meta);
    let span = meta.path.span();
    Ok(match key.as_str() {
        "length" | "range" => {
            let example = if key == "length" {
                "length(min = 1, max = 100)"
            } else {
                "range(min = 0, max = 10)"
            };
            if !meta.input.peek(syn::token::Paren) {
                errors.push(meta.error(format!("`{key}` needs bounds: `{example}`")));
                skip_value(meta)?;
                return Ok(None);
            }
            let (mut min, mut max) = (None, None);
            let (mut min_n, mut max_n) = (None, None);
            meta.parse_nested_meta(|bound| {
                let name = key_of(&bound);
                let bound_span = bound.path.span();
                match (name.as_str(), key.as_str()) {
                    ("min", "length") => {
                        if let Some(v) = integer(&bound, errors)? {
                            set(&mut min, v, "min", bound_span, errors);
                        }
                    }
                    ("max", "length") => {
                        if let Some(v) = integer(&bound, errors)? {
                            set(&mut max, v, "max", bound_span, errors);
                        }
                    }
                    ("min", _) => {
                        if let Some(v) = number(&bound, errors)? {
                            set(&mut min_n, v, "min", bound_span, errors);
                        }
                    }
                    ("max", _) => {
                        if let Some(v) = number(&bound, errors)? {
                            set(&mut max_n, v, "max", bound_span, errors);
                        }
                    }
                    _ => unknown(&bound, &format!("`{key}` bound"), BOUND_KEYS, None, errors)?,
                }
                Ok(())
            })?;
            if key == "length" {
                if min.is_none() && max.is_none() {
                    errors.push(syn::Error::new(
                        span,
                        format!("`length` needs `min`, `max` or both: `{example}`"),
                    ));
                    return Ok(None);
                }
                Some(Rule::Length { span, min, max })
            } else {
                if min_n.is_none() && max_n.is_none() {
                    errors.push(syn::Error::new(
                        span,
                        format!("`range` needs `min`, `max` or both: `{example}`"),
                    ));
                    return Ok(None);
                }
                Some(Rule::Range {
                    span,
                    min: min_n,
                    max: max_n,
                })
            }
        }
        "email" => {
            if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                errors.push(meta.error("`email` takes no value: `validate(email)`"));
                skip_value(meta)?;
            }
            Some(Rule::Email { span })
        }
        "pattern" => string(meta, errors)?.map(|lit| Rule::Pattern { lit }),
        "custom" => match string(meta, errors)? {
            Some(lit) => match lit.parse::<syn::Path>() {
                Ok(path) => Some(Rule::Custom { lit, path }),
                Err(_) => {
                    errors.push(syn::Error::new(
                        lit.span(),
                        "`custom` takes the path of a function `fn(&T) -> Result<(), String>`: `custom = \"checks::sku\"`",
                    ));
                    None
                }
            },
            None => None,
        },
        _ => {
            unknown(meta, "validation rule", RULE_KEYS, None, errors)?;
            None
        }
    })
}

/// Parses the `#[serde(...)]` of the struct, ignoring the keys that do not change the shape.
/// Malformed serde attributes are serde's to report.
pub(crate) fn serde_container(attrs: &[Attribute]) -> SerdeContainer {
    let mut out = SerdeContainer::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename_all") {
                out.rename_all = serialize_name(&meta)?.and_then(|s| RenameRule::from_str(&s));
            } else if meta.path.is_ident("default") {
                out.default = true;
                skip_value(&meta)?;
            } else if meta.path.is_ident("deny_unknown_fields") {
                out.deny_unknown_fields = true;
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        });
    }
    out
}

/// Parses the `#[serde(...)]` of a field.
pub(crate) fn serde_field(attrs: &[Attribute]) -> SerdeField {
    let mut out = SerdeField::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            let key = key_of(&meta);
            match key.as_str() {
                "rename" => out.rename = serialize_name(&meta)?,
                "default" => {
                    out.default = true;
                    skip_value(&meta)?;
                }
                "skip" => {
                    out.skip_serializing = true;
                    out.skip_deserializing = true;
                }
                "skip_serializing" => out.skip_serializing = true,
                "skip_deserializing" => out.skip_deserializing = true,
                "flatten" => out.flatten = Some(meta.path.span()),
                _ => skip_value(&meta)?,
            }
            Ok(())
        });
    }
    out
}

/// `rename = "a"` or `rename(serialize = "a", deserialize = "b")`: the serialized name.
fn serialize_name(meta: &ParseNestedMeta<'_>) -> syn::Result<Option<String>> {
    if meta.input.peek(Token![=]) {
        let lit: LitStr = meta.value()?.parse()?;
        return Ok(Some(lit.value()));
    }
    let mut name = None;
    if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|nested| {
            if nested.path.is_ident("serialize") {
                let lit: LitStr = nested.value()?.parse()?;
                name = Some(lit.value());
            } else {
                skip_value(&nested)?;
            }
            Ok(())
        })?;
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(suggest("read_ony", FIELD_KEYS), Some("read_only"));
        assert_eq!(suggest("uniq", FIELD_KEYS), Some("unique"));
        assert_eq!(suggest("filters", FIELD_KEYS), Some("filter"));
        assert_eq!(suggest("colection", CONTAINER_KEYS), Some("collection"));
        assert_eq!(suggest("banana", FIELD_KEYS), None);
    }
}
