#[doc(hidden)]
#[allow(non_upper_case_globals, dead_code)]
const __microkit_resource_path__product: () = ();
#[doc(hidden)]
#[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
const _: () = {
    #[automatically_derived]
    impl ::microkit::resource::Resource for Product {
        const SPEC: ::microkit::resource::ResourceSpec = ::microkit::resource::ResourceSpec {
            name: "Product",
            collection: "product",
            path: "/product",
            list_path: ::core::option::Option::Some("/products/"),
            fields: &[
                "id",
                "name",
                "category",
                "priceCents",
                "contact",
                "createdAt",
                "deleted",
            ],
            id_field: "id",
            id_kind: ::microkit::resource::store::IdKind::Integer,
            read_only: &["createdAt"],
            unique: &["name"],
            filterable: &["category"],
            soft_delete: ::core::option::Option::Some("deleted"),
            parent_ids: &[],
            actions: ::microkit::resource::Actions {
                create: true,
                read: true,
                update: true,
                patch: true,
                delete: true,
                list: true,
            },
            default_limit: 20,
            max_limit: 50,
        };
        fn validate(&self) -> ::std::vec::Vec<::microkit::FieldError> {
            let mut __errors = ::std::vec::Vec::new();
            ::microkit::resource::validate::length(
                "name",
                &self.name,
                ::core::option::Option::Some(1),
                ::core::option::Option::Some(100),
                &mut __errors,
            );
            ::microkit::resource::validate::pattern(
                "category",
                &self.category,
                "^[a-z-]+$",
                &mut __errors,
            );
            ::microkit::resource::validate::range(
                "priceCents",
                &self.price_cents,
                ::core::option::Option::Some(
                    ::microkit::resource::validate::Bound::Int(0),
                ),
                ::core::option::Option::Some(
                    ::microkit::resource::validate::Bound::Int(1000000),
                ),
                &mut __errors,
            );
            ::microkit::resource::validate::email(
                "contact",
                &self.contact,
                &mut __errors,
            );
            ::microkit::resource::validate::custom(
                "contact",
                &self.contact,
                checks::not_example,
                &mut __errors,
            );
            __errors
        }
        fn set_id(&mut self, id: &::microkit::resource::store::Id) -> bool {
            match id.as_int().and_then(|n| ::core::convert::TryFrom::try_from(n).ok()) {
                ::core::option::Option::Some(value) => {
                    self.id = value;
                    true
                }
                ::core::option::Option::None => false,
            }
        }
        fn json_schema() -> ::microkit::__private::serde_json::Value {
            #[allow(unused_imports)]
            use ::microkit::__private::schema::{
                self as __schema, ViaFallback as _, ViaFieldSchema as _,
            };
            __schema::object(
                ::core::option::Option::Some("A product of the catalog."),
                [
                    (
                        "id",
                        __schema::Property::new(
                                (&__schema::SchemaOf::<u64>::NEW).field_schema(),
                            )
                            .read_only()
                            .finish(),
                    ),
                    (
                        "name",
                        __schema::Property::new(
                                (&__schema::SchemaOf::<String>::NEW).field_schema(),
                            )
                            .description("The name shown in the shop.")
                            .length(
                                ::core::option::Option::Some(1),
                                ::core::option::Option::Some(100),
                            )
                            .finish(),
                    ),
                    (
                        "category",
                        __schema::Property::new(
                                (&__schema::SchemaOf::<String>::NEW).field_schema(),
                            )
                            .pattern("^[a-z-]+$")
                            .finish(),
                    ),
                    (
                        "priceCents",
                        __schema::Property::new(
                                (&__schema::SchemaOf::<i64>::NEW).field_schema(),
                            )
                            .range(
                                ::core::option::Option::Some(
                                    ::microkit::resource::validate::Bound::Int(0),
                                ),
                                ::core::option::Option::Some(
                                    ::microkit::resource::validate::Bound::Int(1000000),
                                ),
                            )
                            .finish(),
                    ),
                    (
                        "contact",
                        __schema::Property::new(
                                (&__schema::SchemaOf::<Option<String>>::NEW).field_schema(),
                            )
                            .email()
                            .finish(),
                    ),
                    (
                        "createdAt",
                        __schema::Property::new(
                                (&__schema::SchemaOf::<Option<String>>::NEW).field_schema(),
                            )
                            .read_only()
                            .finish(),
                    ),
                ],
                &["name", "category", "priceCents"],
                false,
            )
        }
    }
    #[automatically_derived]
    impl Product {
        /// A typed client for `Product` on `service`, reached through `client` (discovery, load balancing, retries).
        #[allow(dead_code)]
        pub fn client(
            client: &::microkit::client::ServiceClient,
            service: &str,
        ) -> ::microkit::resource::ResourceClient<Self> {
            ::microkit::resource::ResourceClient::new(
                ::core::clone::Clone::clone(client),
                service,
            )
        }
    }
};
