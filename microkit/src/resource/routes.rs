use std::marker::PhantomData;
use std::sync::Arc;

use super::handlers::{self, Ctx};
use super::hooks::{Hooks, NoHooks};
use super::openapi::{describe, Endpoint};
use super::repo::Repo;
use super::spec::Resource;
use super::store::Store;
use crate::idempotency::{Idempotency, IdempotencyConfig};
use crate::router::{get, post, MethodRouter};
use crate::Router;

/// The generated endpoints of a resource, ready to mount.
///
/// ```
/// use std::sync::Arc;
/// use microkit::resource::{store::MemoryStore, ResourceRoutes};
/// use microkit::Resource;
///
/// #[derive(serde::Serialize, serde::Deserialize, Resource)]
/// #[resource(path = "/product", list_path = "/products/")]
/// struct Product {
///     #[resource(id)]
///     id: u64,
///     name: String,
/// }
///
/// let store = Arc::new(MemoryStore::default());
/// let app: microkit::Router = ResourceRoutes::<Product>::new(store).router();
/// ```
pub struct ResourceRoutes<R, H = NoHooks> {
    store: Arc<dyn Store>,
    hooks: H,
    extra_create_paths: Vec<String>,
    /// `Idempotency-Key` on create and `PATCH` (`None`: off).
    idempotency: Option<IdempotencyConfig>,
    _resource: PhantomData<fn() -> R>,
}

impl<R, H> std::fmt::Debug for ResourceRoutes<R, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceRoutes").finish_non_exhaustive()
    }
}

impl<R: Resource> ResourceRoutes<R> {
    /// The endpoints of `R` over `store`, without hooks.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            hooks: NoHooks,
            extra_create_paths: Vec::new(),
            idempotency: Some(IdempotencyConfig::default()),
            _resource: PhantomData,
        }
    }
}

impl<R: Resource, H: Hooks<R>> ResourceRoutes<R, H> {
    /// Runs `hooks` around each action.
    pub fn hooks<H2: Hooks<R>>(self, hooks: H2) -> ResourceRoutes<R, H2> {
        ResourceRoutes {
            store: self.store,
            hooks,
            extra_create_paths: self.extra_create_paths,
            idempotency: self.idempotency,
            _resource: PhantomData,
        }
    }

    /// Honours `Idempotency-Key` on create and `PATCH` as `config` says (on by default, with
    /// [`IdempotencyConfig::default`]); see [`idempotency`](crate::idempotency).
    pub fn idempotency(mut self, config: IdempotencyConfig) -> Self {
        self.idempotency = Some(config);
        self
    }

    /// Ignores `Idempotency-Key`: each request runs.
    pub fn without_idempotency(mut self) -> Self {
        self.idempotency = None;
        self
    }

    /// Also creates items at `path` (such as `/invoices` besides `/invoices/`), for APIs whose
    /// collection URL has no trailing slash.
    pub fn create_at(mut self, path: &str) -> Self {
        self.extra_create_paths.push(path.to_owned());
        self
    }

    /// The router serving the resource's endpoints (those its actions allow), each
    /// documenting its operation for the router's OpenAPI document ([`Router::openapi`]).
    pub fn router(self) -> Router {
        let spec = &R::SPEC;
        let actions = spec.actions;
        let keys = self.idempotency;
        let idempotency = self
            .idempotency
            .map(|config| Idempotency::with_config(self.store.clone(), config));
        let ctx = Arc::new(Ctx::new(
            Repo::<R>::new(self.store),
            self.hooks,
            idempotency,
        ));
        let mut router = Router::new();
        if actions.create {
            let create_paths = std::iter::once(spec.create_path()).chain(self.extra_create_paths);
            for (index, path) in create_paths.enumerate() {
                let create = post(handlers::create::<R, H>);
                let create = documented::<R, _>(create, Endpoint::Create(index), keys);
                router = router.route(&path, create);
            }
        }
        if actions.list {
            // Routing the create path again adds the method when both share it.
            let list = documented::<R, _>(get(handlers::list::<R, H>), Endpoint::List, keys);
            router = router.route(&spec.list_path(), list);
        }
        let mut item = MethodRouter::new();
        if actions.read {
            item = documented::<R, _>(item.get(handlers::read::<R, H>), Endpoint::Read, keys);
        }
        if actions.update {
            item = documented::<R, _>(item.put(handlers::update::<R, H>), Endpoint::Update, keys);
        }
        if actions.patch {
            item = documented::<R, _>(item.patch(handlers::patch::<R, H>), Endpoint::Patch, keys);
        }
        if actions.delete {
            item = documented::<R, _>(
                item.delete(handlers::delete::<R, H>),
                Endpoint::Delete,
                keys,
            );
        }
        if actions.read || actions.update || actions.patch || actions.delete {
            router = router.route(&spec.item_pattern(), item);
        }
        router.with_state(ctx)
    }
}

/// `method_router` with the operation of `endpoint` described on its last method, with the
/// `Idempotency-Key` it honours when `keys` is on.
fn documented<R: Resource, S>(
    method_router: MethodRouter<S>,
    endpoint: Endpoint,
    keys: Option<IdempotencyConfig>,
) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    method_router.describe(move |operation| describe::<R>(endpoint, keys, operation))
}
