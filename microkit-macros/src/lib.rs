//! Procedural macros for [microkit](https://docs.rs/microkit).
//!
//! Use them through the `microkit` crate, which re-exports them behind its default `derive`
//! feature, as serde does with `serde_derive`.
//!
//! # `#[derive(Resource)]`
//!
//! Implements `microkit::resource::Resource` for a struct with named fields (which must also
//! derive `Serialize` and `Deserialize`), and adds a constructor of its typed client. Every
//! example below is compiled and run as a doctest.
//!
//! ```
//! use microkit::resource::Resource as _;
//! use microkit::Resource;
//! use serde::{Deserialize, Serialize};
//!
//! /// A product of the catalog.
//! #[derive(Serialize, Deserialize, Resource)]
//! #[resource(path = "/product", list_path = "/products/")]
//! struct Product {
//!     #[resource(id)]
//!     id: u64,
//!     #[resource(unique, validate(length(min = 1, max = 100)))]
//!     name: String,
//!     #[resource(filter)]
//!     category: String,
//!     #[resource(validate(range(min = 0)))]
//!     price_cents: i64,
//!     #[resource(read_only)]
//!     created_at: Option<String>,
//! }
//!
//! assert_eq!(Product::SPEC.path, "/product");
//! assert_eq!(Product::SPEC.list_path, Some("/products/"));
//! assert_eq!(Product::SPEC.collection, "product");
//! assert_eq!(Product::SPEC.unique, ["name"]);
//! let mug = Product {
//!     id: 0,
//!     name: String::new(),
//!     category: "mugs".into(),
//!     price_cents: -1,
//!     created_at: None,
//! };
//! assert_eq!(mug.validate().len(), 2); // name and price_cents, both reported
//! assert_eq!(Product::json_schema()["properties"]["id"]["readOnly"], true);
//! // And, given a `ServiceClient`: Product::client(&service_client, "catalog").
//! ```
//!
//! The JSON names of the fields (serde's `rename` and `rename_all` applied) are what the
//! specification lists, what the schema describes and what validation errors name.
//!
//! ## Container attributes
//!
//! On the struct: `#[resource(...)]`.
//!
//! | attribute | meaning |
//! |---|---|
//! | `path = "/product"` | **Required.** Items live at `{path}/{id}` and are created with `POST {path}/`. May hold the parameters of a parent resource: `"/user/{uid}/cart"`. Must start with `/` and not end with one. |
//! | `list_path = "/products/"` | Where the list is served, when not at `{path}/`. Same parameters as `path`. |
//! | `collection = "product"` | The store collection (`[a-z][a-z0-9_]*`). Default: the struct's name in snake_case (`CartItem` → `cart_item`). |
//! | `parent = "uid: u64"` | The parent parameters whose values must parse as ids, comma-separated, each in `path` as `{uid}`, with its id type (`u64`, `Uuid`, `String`, ...) or the parent resource whose id kind it takes (`"uid: User"`). Any other value is a 400 on every endpoint. |
//! | `actions(create, read, update, patch, delete, list)` | The endpoints to generate. Default: all six; listing some keeps only those. |
//! | `default_limit = 20` | The page size of a list request without `limit`. Default 20. |
//! | `max_limit = 100` | The largest page: larger `limit`s are clamped. Default 100, and at least `default_limit`. |
//! | `crate = "microkit"` | The path of the microkit crate, when it is renamed or re-exported. Default `::microkit`. |
//!
//! ```
//! use microkit::resource::store::IdKind;
//! use microkit::resource::{Actions, Resource as _};
//! use microkit::Resource;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Resource)]
//! #[resource(path = "/user")]
//! struct User {
//!     #[resource(id)]
//!     id: u64,
//!     name: String,
//! }
//!
//! /// A line of a user's cart: `POST /user/7/cart/`, `GET /user/7/cart/1`, ...
//! #[derive(Serialize, Deserialize, Resource)]
//! #[resource(
//!     path = "/user/{uid}/cart",
//!     parent = "uid: User",
//!     collection = "cart_line",
//!     actions(create, read, delete, list),
//!     default_limit = 10,
//!     max_limit = 50,
//!     crate = "::microkit",
//! )]
//! struct CartLine {
//!     #[resource(id)]
//!     id: u64,
//!     product_id: u64,
//! }
//!
//! let spec = CartLine::SPEC;
//! assert_eq!(spec.collection, "cart_line");
//! assert_eq!(spec.parent_ids, [("uid", IdKind::Integer)]);
//! assert_eq!(
//!     spec.actions,
//!     Actions { create: true, read: true, update: false, patch: false, delete: true, list: true }
//! );
//! assert_eq!((spec.default_limit, spec.max_limit), (10, 50));
//! assert_eq!(User::SPEC.collection, "user");
//! ```
//!
//! ## Field attributes
//!
//! On a field: `#[resource(...)]`.
//!
//! | attribute | meaning |
//! |---|---|
//! | `id` | **Exactly one field.** `u64`, `i64`, `u32` or `i32`: integer ids allocated by the store (the handlers set the field). `uuid::Uuid` (any path ending in `Uuid`): UUIDs, generated unless given. `String`: text ids chosen by the caller. |
//! | `read_only` | Set by the server (timestamps, say): ignored in requests, so the field must be an `Option<_>` or carry `#[serde(default)]`. |
//! | `unique` | Unique among live items: a duplicate is a 409. |
//! | `filter` | The list can be filtered by it: `?category=mugs`. |
//! | `soft_delete` | A `bool` (at most one field) set when the item is deleted; deleted items are kept but hidden, and the flag is not part of the representation or the schema. |
//! | `validate(...)` | Rules checked on every write, all failing fields reported at once (see below). |
//!
//! `unique` and `filter` fields are indexed by their JSON name, which must match
//! `[A-Za-z_][A-Za-z0-9_]*`.
//!
//! ```
//! use microkit::resource::store::IdKind;
//! use microkit::resource::Resource as _;
//! use microkit::Resource;
//! use serde::{Deserialize, Serialize};
//!
//! /// An account, named by the caller: `PUT /account/ada` creates or replaces it.
//! #[derive(Serialize, Deserialize, Resource)]
//! #[resource(path = "/account")]
//! struct Account {
//!     #[resource(id)]
//!     handle: String,
//!     #[resource(unique, filter)]
//!     email: String,
//!     #[resource(read_only)]
//!     #[serde(default)]
//!     logins: u32,
//!     #[resource(soft_delete)]
//!     #[serde(default)]
//!     closed: bool,
//! }
//!
//! let spec = Account::SPEC;
//! assert_eq!((spec.id_field, spec.id_kind), ("handle", IdKind::Text));
//! assert_eq!((spec.unique, spec.filterable), (&["email"][..], &["email"][..]));
//! assert_eq!(spec.read_only, ["logins"]);
//! assert_eq!(spec.soft_delete, Some("closed"));
//! let schema = Account::json_schema();
//! assert_eq!(schema["properties"]["logins"]["readOnly"], true);
//! assert!(schema["properties"].get("closed").is_none());
//! ```
//!
//! ## Validation rules
//!
//! In `#[resource(validate(...))]`; an absent `Option` passes every rule but `custom`.
//!
//! | rule | checks | message |
//! |---|---|---|
//! | `length(min = 1, max = 100)` | characters of a string, items of a `Vec`, set or map (either bound may be left out) | `must be at least 1 character long`, `must have at most 100 items` |
//! | `range(min = 0, max = 10)` | an integer or float, bounds inclusive (integers or decimals, possibly negative) | `must be at least 0`, `must be at most 10` |
//! | `email` | one `@`, a non-empty local part, a dotted domain, no whitespace | `must be an email address` |
//! | `pattern = "^[a-z]+$"` | a regular expression (`regex` syntax, unanchored: write `^...$`); a malformed one is a compile error | `must match ^[a-z]+$` |
//! | `custom = "path::to::check"` | `fn check(value: &FieldType) -> Result<(), String>`, called with the field as declared | the `Err` message |
//!
//! Each rule also adds its JSON Schema keyword: `minLength`/`maxLength` (`minItems`/`maxItems`
//! for arrays), `minimum`/`maximum`, `format: email`, `pattern`.
//!
//! ```
//! use microkit::resource::Resource as _;
//! use microkit::{FieldError, Resource};
//! use serde::{Deserialize, Serialize};
//!
//! fn even(value: &u32) -> Result<(), String> {
//!     if value % 2 == 0 { Ok(()) } else { Err("must be even".into()) }
//! }
//!
//! #[derive(Serialize, Deserialize, Resource)]
//! #[resource(path = "/member")]
//! struct Member {
//!     #[resource(id)]
//!     id: u64,
//!     #[resource(validate(length(min = 1, max = 20), pattern = "^[a-z]+$"))]
//!     login: String,
//!     #[resource(validate(email))]
//!     contact: Option<String>,
//!     #[resource(validate(range(min = 0.5, max = 10)))]
//!     rating: f64,
//!     #[resource(validate(length(max = 2)))]
//!     tags: Vec<String>,
//!     #[resource(validate(custom = "even"))]
//!     seats: u32,
//! }
//!
//! let member = Member {
//!     id: 1,
//!     login: "Ada!".into(),
//!     contact: Some("ada".into()),
//!     rating: 11.0,
//!     tags: vec!["a".into(), "b".into(), "c".into()],
//!     seats: 3,
//! };
//! assert_eq!(
//!     member.validate(),
//!     [
//!         FieldError::new("login", "must match ^[a-z]+$"),
//!         FieldError::new("contact", "must be an email address"),
//!         FieldError::new("rating", "must be at most 10"),
//!         FieldError::new("tags", "must have at most 2 items"),
//!         FieldError::new("seats", "must be even"),
//!     ]
//! );
//! let login = &Member::json_schema()["properties"]["login"];
//! assert_eq!((&login["maxLength"], &login["pattern"]), (&20.into(), &"^[a-z]+$".into()));
//! ```
//!
//! ## Serde attributes understood
//!
//! `rename` and `rename_all` (the serialized name), `default` (on the struct or the field: not
//! required), `skip` (not part of the resource), `skip_serializing` (`writeOnly`),
//! `skip_deserializing` (`readOnly`), `deny_unknown_fields` (`additionalProperties: false`).
//! `flatten` is not supported.
//!
//! ```
//! use microkit::resource::Resource as _;
//! use microkit::Resource;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Resource)]
//! #[resource(path = "/login")]
//! #[serde(rename_all = "camelCase", deny_unknown_fields)]
//! struct Login {
//!     #[resource(id)]
//!     id: u64,
//!     #[resource(unique)]
//!     user_name: String,
//!     #[serde(skip_serializing)]
//!     password: String,
//!     #[serde(default)]
//!     remember_me: bool,
//!     #[serde(skip)]
//!     attempts: u32,
//! }
//!
//! assert_eq!(Login::SPEC.fields, ["id", "userName", "password", "rememberMe"]);
//! let schema = Login::json_schema();
//! assert_eq!(schema["properties"]["password"]["writeOnly"], true);
//! assert_eq!(schema["required"], serde_json::json!(["userName"]));
//! assert_eq!(schema["additionalProperties"], false);
//! ```
//!
//! ## Evolving a resource
//!
//! Items written before a field was added lack it. Give a new field a default
//! (`#[serde(default)]`, or an `Option<_>`) and old items read back with it; a new required
//! field without one makes old items unreadable, which the server answers with a 500 naming
//! the item (the data is at fault, not the request), never a 422.
//!
//! ## What is generated
//!
//! - `impl Resource for T`: `SPEC` (the attributes above), `validate()` (one call of
//!   `microkit::resource::validate::*` per rule), `set_id()` and `json_schema()` (JSON Schema
//!   2020-12: the properties from `microkit::resource::schema::FieldSchema`, `{}` for types
//!   without it; `readOnly` for server-set fields; `required` for the fields a request must
//!   give);
//! - `impl T { fn client(client: &ServiceClient, service: &str) -> ResourceClient<T> }`, with
//!   the struct's visibility;
//! - a hidden `const __microkit_resource_path_<path>` next to the struct, so that two resources
//!   on one path in a module are a compile error ("defined multiple times").
//!
//! Mistakes are compile errors that name the attribute at fault, all reported at once:
//!
//! ```compile_fail
//! #[derive(serde::Serialize, serde::Deserialize, microkit::Resource)]
//! #[resource(path = "/product/", actions(create, show))]
//! struct Product {
//!     name: String,
//! }
//! // error: invalid `path`: `/product/` must not end with `/` ...
//! // error: unknown action `show` ...
//! // error: `Product` has no id field: mark one field with `#[resource(id)]` ...
//! ```

mod ast;
mod attr;
mod case;
mod check;
mod errors;
mod expand;
mod fallback;
mod resolve;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Implements `microkit::resource::Resource`; see the [crate documentation](crate) for the
/// attributes.
#[proc_macro_derive(Resource, attributes(resource))]
pub fn derive_resource(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The expansion of `tests/expand/product.rs`, pretty-printed, must equal
    /// `tests/expand/product.expanded.rs`; `MICROKIT_BLESS=1` rewrites the expected file.
    #[test]
    fn product_expansion_is_pinned() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand");
        let source = std::fs::read_to_string(dir.join("product.rs")).unwrap();
        let file: syn::File = syn::parse_str(&source).unwrap();
        let mut expanded = String::new();
        for item in file.items {
            if let syn::Item::Struct(item) = item {
                let input: syn::DeriveInput = item.into();
                let tokens = crate::expand::derive(&input);
                let file: syn::File = syn::parse2(tokens).expect("the expansion parses");
                expanded.push_str(&prettyplease::unparse(&file));
            }
        }
        let expected_path = dir.join("product.expanded.rs");
        if std::env::var_os("MICROKIT_BLESS").is_some() {
            std::fs::write(&expected_path, &expanded).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        assert!(
            expected == expanded,
            "the expansion changed; run with MICROKIT_BLESS=1 to accept it:\n{expanded}"
        );
    }
}
