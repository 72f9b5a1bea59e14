use std::future::Future;

use http::HeaderMap;

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

/// What a hook knows of the request.
#[derive(Debug, Clone)]
pub struct HookContext {
    pub(crate) params: Vec<(String, String)>,
    pub(crate) id: Option<Id>,
    pub(crate) headers: HeaderMap,
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
}
