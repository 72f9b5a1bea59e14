//! The model of the annotated struct: its attributes parsed, its JSON names resolved.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, Ident, Type};

use crate::attr::{self, ContainerAttrs, FieldAttrs, SerdeContainer, SerdeField};
use crate::errors::Errors;

/// The struct deriving `Resource`.
pub(crate) struct Container<'a> {
    pub(crate) input: &'a DeriveInput,
    pub(crate) attrs: ContainerAttrs,
    pub(crate) serde: SerdeContainer,
    pub(crate) doc: Option<String>,
    pub(crate) fields: Vec<Field<'a>>,
}

/// One named field.
pub(crate) struct Field<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    /// The name in the JSON form (serde's `rename` and `rename_all` applied).
    pub(crate) name: String,
    pub(crate) attrs: FieldAttrs,
    pub(crate) serde: SerdeField,
    pub(crate) doc: Option<String>,
}

impl<'a> Container<'a> {
    /// Parses the struct; `None` (with an error) for anything but a struct with named fields.
    pub(crate) fn from_ast(input: &'a DeriveInput, errors: &mut Errors) -> Option<Self> {
        let fields = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(fields) => fields,
                other => {
                    errors.at(
                        if matches!(other, Fields::Unit) { input.ident.span() } else { other.span() },
                        "#[derive(Resource)] needs a struct with named fields: a resource is a JSON object",
                    );
                    return None;
                }
            },
            Data::Enum(data) => {
                errors.at(
                    data.enum_token.span,
                    "#[derive(Resource)] needs a struct with named fields, not an enum",
                );
                return None;
            }
            Data::Union(data) => {
                errors.at(
                    data.union_token.span,
                    "#[derive(Resource)] needs a struct with named fields, not a union",
                );
                return None;
            }
        };
        let attrs = attr::container(&input.attrs, errors);
        let serde = attr::serde_container(&input.attrs);
        let fields = fields
            .named
            .iter()
            .map(|field| {
                let ident = field.ident.as_ref().expect("named field");
                let serde_field = attr::serde_field(&field.attrs);
                let rust_name = ident.unraw().to_string();
                let name = match (&serde_field.rename, serde.rename_all) {
                    (Some(rename), _) => rename.clone(),
                    (None, Some(rule)) => rule.apply(&rust_name),
                    (None, None) => rust_name,
                };
                Field {
                    ident,
                    ty: &field.ty,
                    name,
                    attrs: attr::field(&field.attrs, errors),
                    serde: serde_field,
                    doc: doc(&field.attrs),
                }
            })
            .collect();
        Some(Container {
            input,
            attrs,
            serde,
            doc: doc(&input.attrs),
            fields,
        })
    }
}

impl Field<'_> {
    /// Whether serde leaves the field out of the JSON form both ways (`#[serde(skip)]`).
    pub(crate) fn skipped(&self) -> bool {
        self.serde.skip_serializing && self.serde.skip_deserializing
    }

    /// Whether a request may leave the field out.
    pub(crate) fn has_default(&self, container: &Container<'_>) -> bool {
        self.serde.default || container.serde.default || is_option(self.ty)
    }

    /// The span of the first `#[resource(...)]` key on the field, if any.
    pub(crate) fn first_resource_key(&self) -> Option<Span> {
        let a = &self.attrs;
        [a.id, a.read_only, a.unique, a.filter, a.soft_delete]
            .into_iter()
            .flatten()
            .next()
    }
}

/// The doc comment, its lines unindented by the one space `///` leaves.
fn doc(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .flat_map(|text| {
            text.lines()
                .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// The last segment of a plain type path (`u64`, `Uuid` in `uuid::Uuid`, `Option`).
pub(crate) fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        Type::Group(group) => last_segment(&group.elem),
        Type::Paren(paren) => last_segment(&paren.elem),
        _ => None,
    }
}

/// Whether the type is spelled `Option<_>` (`std::option::Option<_>` too).
pub(crate) fn is_option(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| {
        s.ident == "Option" && matches!(s.arguments, syn::PathArguments::AngleBracketed(_))
    })
}

/// Whether the type is spelled `bool`.
pub(crate) fn is_bool(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "bool" && s.arguments.is_empty())
}

/// The type as the user would write it, for messages.
pub(crate) fn type_name(ty: &Type) -> String {
    quote::quote!(#ty)
        .to_string()
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace(" < ", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace("& ", "&")
}
