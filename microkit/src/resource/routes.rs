use std::marker::PhantomData;
use std::sync::Arc;

use super::handlers::{self, Ctx};
use super::hooks::{Hooks, NoHooks};
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

    /// The router serving the resource's endpoints (those its actions allow).
    pub fn router(self) -> Router {
        let spec = &R::SPEC;
        let actions = spec.actions;
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
            router = router.route(&spec.create_path(), post(handlers::create::<R, H>));
            for path in &self.extra_create_paths {
                router = router.route(path, post(handlers::create::<R, H>));
            }
        }
        if actions.list {
            // Routing the create path again adds the method when both share it.
            router = router.route(&spec.list_path(), get(handlers::list::<R, H>));
        }
        let mut item = MethodRouter::new();
        if actions.read {
            item = item.get(handlers::read::<R, H>);
        }
        if actions.update {
            item = item.put(handlers::update::<R, H>);
        }
        if actions.patch {
            item = item.patch(handlers::patch::<R, H>);
        }
        if actions.delete {
            item = item.delete(handlers::delete::<R, H>);
        }
        if actions.read || actions.update || actions.patch || actions.delete {
            router = router.route(&spec.item_pattern(), item);
        }
        router.with_state(ctx)
    }
}
