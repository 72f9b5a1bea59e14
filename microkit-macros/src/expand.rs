//! Code generation: the `Resource` impl, the `client` constructor and the path marker.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::DeriveInput;

use crate::ast::{Container, Field};
use crate::attr::{Number, Rule, ACTIONS};
use crate::check;
use crate::errors::Errors;
use crate::fallback;
use crate::resolve::{self, IdKind, ParentKind, Resolved};

/// Expands `#[derive(Resource)]`: the impl, or every error found with a fallback impl.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let Some(cont) = Container::from_ast(input, &mut errors) else {
        let error = errors.into_result().expect_err("from_ast reports why");
        return error.to_compile_error();
    };
    let resolved = resolve::resolve(&cont);
    check::check(&cont, &resolved, &mut errors);
    match errors.into_result() {
        Ok(()) => expand(&cont, &resolved),
        Err(error) => {
            let mut tokens = error.to_compile_error();
            tokens.extend(fallback::fallback(&cont, &resolved));
            tokens
        }
    }
}

/// `const __microkit_resource_path_<path>: () = ();` next to the struct: a second resource
/// with the same path in the module defines the name twice, which the compiler reports.
pub(crate) fn path_marker(path: &str, span: Span) -> TokenStream {
    let mangled: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let marker = Ident::new(&format!("__microkit_resource_path_{mangled}"), span);
    quote_spanned! {span=>
        #[doc(hidden)]
        #[allow(non_upper_case_globals, dead_code)]
        const #marker: () = ();
    }
}

/// The inherent `client` constructor, shared with the fallback.
pub(crate) fn client_impl(cont: &Container<'_>, krate: &TokenStream) -> TokenStream {
    let input = cont.input;
    let ident = &input.ident;
    let vis = &input.vis;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let doc = format!(
        " A typed client for `{ident}` on `service`, reached through `client` (discovery, load \
         balancing, retries)."
    );
    quote! {
        #[automatically_derived]
        impl #impl_generics #ident #ty_generics #where_clause {
            #[doc = #doc]
            #[allow(dead_code)]
            #vis fn client(
                client: &#krate::client::ServiceClient,
                service: &str,
            ) -> #krate::resource::ResourceClient<Self> {
                #krate::resource::ResourceClient::new(::core::clone::Clone::clone(client), service)
            }
        }
    }
}

fn expand(cont: &Container<'_>, r: &Resolved) -> TokenStream {
    let krate = &r.krate;
    let input = cont.input;
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let (path, path_span) = r.path.clone().expect("checked");
    let (id_index, id_kind) = r.id.expect("checked");
    let fields: Vec<&Field<'_>> = cont.fields.iter().filter(|f| !f.skipped()).collect();

    // SPEC.
    let name = ident.to_string();
    let collection = &r.collection;
    let list_path = option(r.list_path.as_deref().map(|p| quote!(#p)));
    let id_field = &cont.fields[id_index].name;
    let kind_path = |kind: IdKind| match kind {
        IdKind::Integer => quote!(#krate::resource::store::IdKind::Integer),
        IdKind::Uuid => quote!(#krate::resource::store::IdKind::Uuid),
        IdKind::Text => quote!(#krate::resource::store::IdKind::Text),
    };
    let id_kind_path = kind_path(id_kind);
    let field_names = fields.iter().map(|f| &f.name);
    let parent_ids = r.parent_ids.iter().map(|(name, kind)| {
        let kind = match kind {
            ParentKind::Stated(kind) => kind_path(*kind),
            ParentKind::Of(parent) => {
                quote!(<#parent as #krate::resource::Resource>::SPEC.id_kind)
            }
        };
        quote!((#name, #kind))
    });
    let names = |keep: fn(&Field<'_>) -> bool| {
        let names = fields.iter().filter(|f| keep(f)).map(|f| &f.name);
        quote!(&[#(#names),*])
    };
    let read_only = names(|f| f.attrs.read_only.is_some());
    let unique = names(|f| f.attrs.unique.is_some());
    let filterable = names(|f| f.attrs.filter.is_some());
    let soft_delete = option(r.soft_delete.map(|i| {
        let name = &cont.fields[i].name;
        quote!(#name)
    }));
    let actions = ACTIONS.iter().zip(r.actions).map(|(action, generated)| {
        let action = Ident::new(action, Span::call_site());
        quote!(#action: #generated)
    });
    let default_limit = Literal::u64_unsuffixed(r.default_limit);
    let max_limit = Literal::u64_unsuffixed(r.max_limit);

    // validate().
    let checks: Vec<TokenStream> = fields
        .iter()
        .flat_map(|f| {
            f.attrs
                .rules
                .iter()
                .map(move |rule| validate_call(krate, f, rule))
        })
        .collect();
    let validate = (!checks.is_empty()).then(|| {
        quote! {
            fn validate(&self) -> ::std::vec::Vec<#krate::FieldError> {
                let mut __errors = ::std::vec::Vec::new();
                #(#checks)*
                __errors
            }
        }
    });

    // json_schema(): the soft-delete flag is the store's business, not part of the public
    // representation.
    let public: Vec<&Field<'_>> = fields
        .iter()
        .copied()
        .filter(|f| f.attrs.soft_delete.is_none())
        .collect();
    let properties = public.iter().map(|f| {
        let name = &f.name;
        let ty = f.ty;
        let mut keywords = TokenStream::new();
        if let Some(doc) = &f.doc {
            keywords.extend(quote!(.description(#doc)));
        }
        if schema_read_only(f, id_kind) {
            keywords.extend(quote!(.read_only()));
        } else if f.serde.skip_serializing {
            keywords.extend(quote!(.write_only()));
        }
        for rule in &f.attrs.rules {
            keywords.extend(schema_keyword(krate, rule));
        }
        quote! {
            (#name, __schema::Property::new((&__schema::SchemaOf::<#ty>::NEW).field_schema())#keywords.finish())
        }
    });
    let required = public
        .iter()
        .filter(|f| {
            !schema_read_only(f, id_kind) && !f.serde.skip_serializing && !f.has_default(cont)
        })
        .map(|f| &f.name);
    let description = option(cont.doc.as_ref().map(|d| quote!(#d)));
    let deny_unknown_fields = cont.serde.deny_unknown_fields;

    let id_member = cont.fields[id_index].ident;
    let set_id = match id_kind {
        IdKind::Integer => quote! {
            match id.as_int().and_then(|n| ::core::convert::TryFrom::try_from(n).ok()) {
                ::core::option::Option::Some(value) => {
                    self.#id_member = value;
                    true
                }
                ::core::option::Option::None => false,
            }
        },
        IdKind::Uuid | IdKind::Text => quote! {
            match id.as_str().and_then(|text| ::core::str::FromStr::from_str(text).ok()) {
                ::core::option::Option::Some(value) => {
                    self.#id_member = value;
                    true
                }
                ::core::option::Option::None => false,
            }
        },
    };
    let marker = path_marker(&path, path_span);
    let client = client_impl(cont, krate);
    quote! {
        #marker

        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #krate::resource::Resource for #ident #ty_generics #where_clause {
                const SPEC: #krate::resource::ResourceSpec = #krate::resource::ResourceSpec {
                    name: #name,
                    collection: #collection,
                    path: #path,
                    list_path: #list_path,
                    fields: &[#(#field_names),*],
                    id_field: #id_field,
                    id_kind: #id_kind_path,
                    read_only: #read_only,
                    unique: #unique,
                    filterable: #filterable,
                    soft_delete: #soft_delete,
                    parent_ids: &[#(#parent_ids),*],
                    actions: #krate::resource::Actions { #(#actions),* },
                    default_limit: #default_limit,
                    max_limit: #max_limit,
                };

                #validate

                fn set_id(&mut self, id: &#krate::resource::store::Id) -> bool {
                    #set_id
                }

                fn json_schema() -> #krate::__private::serde_json::Value {
                    #[allow(unused_imports)]
                    use #krate::__private::schema::{self as __schema, ViaFallback as _, ViaFieldSchema as _};
                    __schema::object(
                        #description,
                        [#(#properties),*],
                        &[#(#required),*],
                        #deny_unknown_fields,
                    )
                }
            }

            #client
        };
    }
}

fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// Whether the schema marks the field `readOnly`: server-set ids (not caller-chosen text
/// ids), `read_only` and `soft_delete` fields, and fields serde never deserializes.
fn schema_read_only(f: &Field<'_>, id_kind: IdKind) -> bool {
    (f.attrs.id.is_some() && id_kind != IdKind::Text)
        || f.attrs.read_only.is_some()
        || f.attrs.soft_delete.is_some()
        || f.serde.skip_deserializing
}

fn usize_option(lit: &Option<syn::LitInt>) -> TokenStream {
    option(lit.as_ref().map(|lit| {
        let n = Literal::usize_unsuffixed(lit.base10_parse().unwrap_or(0));
        quote!(#n)
    }))
}

fn bound_option(krate: &TokenStream, n: &Option<Number>) -> TokenStream {
    option(n.as_ref().map(|n| match *n {
        Number::Int(n) => {
            let n = Literal::i128_unsuffixed(n);
            quote!(#krate::resource::validate::Bound::Int(#n))
        }
        Number::Float(x) => {
            let x = Literal::f64_unsuffixed(x);
            quote!(#krate::resource::validate::Bound::Float(#x))
        }
    }))
}

/// One rule's call in `validate()`, spanned on the rule so that a type that cannot be checked
/// is reported there.
fn validate_call(krate: &TokenStream, f: &Field<'_>, rule: &Rule) -> TokenStream {
    let name = &f.name;
    let span = check::rule_span(rule);
    // Spanned on the rule, so that a type the rule cannot check is reported there alone.
    let mut member = f.ident.clone();
    member.set_span(span);
    let v = quote_spanned!(span=> #krate::resource::validate);
    match rule {
        Rule::Length { min, max, .. } => {
            let (min, max) = (usize_option(min), usize_option(max));
            quote_spanned!(span=> #v::length(#name, &self.#member, #min, #max, &mut __errors);)
        }
        Rule::Range { min, max, .. } => {
            let (min, max) = (bound_option(krate, min), bound_option(krate, max));
            quote_spanned!(span=> #v::range(#name, &self.#member, #min, #max, &mut __errors);)
        }
        Rule::Email { .. } => {
            quote_spanned!(span=> #v::email(#name, &self.#member, &mut __errors);)
        }
        Rule::Pattern { lit } => {
            quote_spanned!(span=> #v::pattern(#name, &self.#member, #lit, &mut __errors);)
        }
        Rule::Custom { path, .. } => {
            quote_spanned!(span=> #v::custom(#name, &self.#member, #path, &mut __errors);)
        }
    }
}

/// The schema keywords of one rule.
fn schema_keyword(krate: &TokenStream, rule: &Rule) -> TokenStream {
    match rule {
        Rule::Length { min, max, .. } => {
            let (min, max) = (usize_option(min), usize_option(max));
            quote!(.length(#min, #max))
        }
        Rule::Range { min, max, .. } => {
            let (min, max) = (bound_option(krate, min), bound_option(krate, max));
            quote!(.range(#min, #max))
        }
        Rule::Email { .. } => quote!(.email()),
        Rule::Pattern { lit } => quote!(.pattern(#lit)),
        Rule::Custom { .. } => TokenStream::new(),
    }
}
