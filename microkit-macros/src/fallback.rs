//! What is generated next to a compile error: an impl that type-checks, so that the user sees
//! the error and not a cascade of "`Product` is not a `Resource`" at every use.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::Container;
use crate::expand;
use crate::resolve::Resolved;

pub(crate) fn fallback(cont: &Container<'_>, r: &Resolved) -> TokenStream {
    let krate = &r.krate;
    let input = cont.input;
    let ident = &input.ident;
    let name = ident.to_string();
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let marker = r
        .path
        .as_ref()
        .map(|(path, span)| expand::path_marker(path, *span));
    let client = expand::client_impl(cont, krate);
    quote! {
        #marker

        #[doc(hidden)]
        #[allow(unused_qualifications, clippy::all)]
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #krate::resource::Resource for #ident #ty_generics #where_clause {
                const SPEC: #krate::resource::ResourceSpec = #krate::resource::ResourceSpec {
                    name: #name,
                    collection: "",
                    path: "",
                    list_path: ::core::option::Option::None,
                    fields: &[],
                    id_field: "",
                    id_kind: #krate::resource::store::IdKind::Integer,
                    read_only: &[],
                    unique: &[],
                    filterable: &[],
                    soft_delete: ::core::option::Option::None,
                    parent_ids: &[],
                    actions: #krate::resource::Actions::ALL,
                    default_limit: 1,
                    max_limit: 1,
                };

                fn json_schema() -> #krate::__private::serde_json::Value {
                    #krate::__private::serde_json::Value::Null
                }
            }

            #client
        };
    }
}
