use std::future::Future;

use http::HeaderMap;
use serde_json::{Map, Value};

use super::spec::Resource;
use super::store::Id;
use crate::Problem;

/// Logic around the generated endpoints: check, fill in, refuse with a problem, or call
/// other services. Every method has a default that does nothing, so implement only what you
/// need.
///
/// ```
/// use microkit::resource::{HookContext, Hooks};
/// use microkit::{Problem, Resource};
///
/// #[derive(serde::Serialize, serde::Deserialize, Resource)]
/// #[resource(path = "/user/{uid}/cart", parent = "uid: u64")]
/// struct CartItem {
///     #[resource(id)]
///     id: u64,
///     product_id: u64,
///     quantity: u32,
/// }
///
/// struct CartHooks;
///
/// impl Hooks<CartItem> for CartHooks {
///     async fn before_create(&self, ctx: &HookContext, item: &mut CartItem) -> Result<(), Problem> {
///         if item.quantity == 0 {
///             return Err(Problem::unprocessable("a cart item needs a quantity"));
///         }
///         let _user = ctx.param("uid");
///         Ok(())
///     }
/// }
/// ```
pub trait Hooks<R: Resource>: Send + Sync + 'static {
    /// Which items the caller may see and change, decided once for every action: list (the
    /// scope's filters narrow the query in the store, so totals and pages count only what the
    /// caller may see), read, update, patch and delete (an item outside the scope is 404, as
    /// if it did not exist), and create (a new item outside the scope is 403; create runs
    /// after [`before_create`](Self::before_create), which usually sets the owner field).
    /// Returning a problem refuses the request whatever it targets, such as a 404 for another
    /// user's nested collection ([`HookContext::not_found`]).
    ///
    /// Scope an owned resource with a `read_only`, `filter` field holding the owner, set from
    /// [`HookContext::identity`] (feature `auth`) in `before_create`:
    ///
    /// ```ignore
    /// async fn scope(&self, ctx: &HookContext, scope: &mut Scope) -> Result<(), Problem> {
    ///     let owner = ctx.identity().map(|who| who.subject()).unwrap_or_default();
    ///     scope.require("owner", owner);
    ///     Ok(())
    /// }
    /// ```
    fn scope(
        &self,
        ctx: &HookContext,
        scope: &mut Scope,
    ) -> impl Future<Output = Result<(), Problem>> + Send {
        let _ = (ctx, scope);
        async { Ok(()) }
    }

    /// Before storing a new item; may change it or refuse.
    fn before_create(
        &self,
        ctx: &HookContext,
        item: &mut R,
    ) -> impl Future<Output = Result<(), Problem>> + Send {
        let _ = (ctx, item);
        async { Ok(()) }
    }

    /// After a new item is stored (its id set). The client already has its answer coming:
    /// failures here should be logged, not returned.
    fn after_create(&self, ctx: &HookContext, item: &R) -> impl Future<Output = ()> + Send {
        let _ = (ctx, item);
        async {}
    }

    /// Before replacing or patching `current` with `next`; may change `next` or refuse.
    fn before_update(
        &self,
        ctx: &HookContext,
        current: &R,
        next: &mut R,
    ) -> impl Future<Output = Result<(), Problem>> + Send {
        let _ = (ctx, current, next);
        async { Ok(()) }
    }

    /// After an item is replaced or patched.
    fn after_update(&self, ctx: &HookContext, item: &R) -> impl Future<Output = ()> + Send {
        let _ = (ctx, item);
        async {}
    }

    /// Before deleting an item; may refuse.
    fn before_delete(
        &self,
        ctx: &HookContext,
        item: &R,
    ) -> impl Future<Output = Result<(), Problem>> + Send {
        let _ = (ctx, item);
        async { Ok(()) }
    }

    /// After an item is deleted.
    fn after_delete(&self, ctx: &HookContext, item: &R) -> impl Future<Output = ()> + Send {
        let _ = (ctx, item);
        async {}
    }
}

/// No hooks: the endpoints do only what the attributes say.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl<R: Resource> Hooks<R> for NoHooks {}

/// The items a caller may see: equality conditions on top-level fields, all of which must
/// hold (see [`Hooks::scope`]). Each field must be declared `filter` on the resource.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub(crate) filters: Vec<(String, Value)>,
}

impl Scope {
    /// Only items whose `field` equals `value` (`null` matches a missing field too).
    pub fn require(&mut self, field: impl Into<String>, value: impl Into<Value>) {
        self.filters.push((field.into(), value.into()));
    }

    /// The conditions, in the order they were added.
    pub fn conditions(&self) -> &[(String, Value)] {
        &self.filters
    }

    /// Whether an item with these fields is inside the scope.
    pub fn admits(&self, data: &Map<String, Value>) -> bool {
        self.filters
            .iter()
            .all(|(field, value)| data.get(field).unwrap_or(&Value::Null) == value)
    }
}

/// What a hook knows of the request.
#[derive(Debug, Clone)]
pub struct HookContext {
    pub(crate) params: Vec<(String, String)>,
    pub(crate) id: Option<Id>,
    pub(crate) headers: HeaderMap,
    #[cfg(feature = "auth")]
    pub(crate) identity: Option<crate::auth::Identity>,
}

impl HookContext {
    /// A decoded path parameter, such as the parent's `uid`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The item's id, for actions on an existing item.
    pub fn id(&self) -> Option<&Id> {
        self.id.as_ref()
    }

    /// The request's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The caller [`Authenticate`](crate::auth::Authenticate) verified (feature `auth`), or
    /// `None` for an anonymous request or a service without the layer.
    #[cfg(feature = "auth")]
    pub fn identity(&self) -> Option<&crate::auth::Identity> {
        self.identity.as_ref()
    }

    /// The problem a missing item gets, for hooks that hide an item or a collection: the
    /// caller cannot tell "not yours" from "not there".
    pub fn not_found(&self) -> Problem {
        match &self.id {
            Some(id) => Problem::not_found(format!("there is no item {id}")),
            None => Problem::not_found("there is no such collection"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_scope_admits_items_whose_fields_all_match() {
        let mut scope = Scope::default();
        let item = |value: Value| value.as_object().cloned().unwrap();
        assert!(scope.admits(&item(json!({ "owner": "bob" }))));
        scope.require("owner", "alice");
        scope.require("archived", Value::Null);
        assert!(scope.admits(&item(json!({ "owner": "alice" }))));
        assert!(scope.admits(&item(json!({ "owner": "alice", "archived": null }))));
        assert!(!scope.admits(&item(json!({ "owner": "bob" }))));
        assert!(!scope.admits(&item(json!({ "owner": "alice", "archived": true }))));
        assert!(!scope.admits(&item(json!({}))));
    }
}
