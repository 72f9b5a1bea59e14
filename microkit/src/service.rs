//! The microservice builder: a name, a router and a registry become a service that serves,
//! registers itself once listening, reports `/health` and `/metrics`, and shuts down without
//! losing a request.
//!
//! ```no_run
//! use std::sync::Arc;
//! use microkit::discovery::MemoryRegistry;
//! use microkit::router::get;
//! use microkit::service::{shutdown_signal, Microservice};
//! use microkit::Router;
//!
//! # async fn run() -> std::io::Result<()> {
//! let registry = Arc::new(MemoryRegistry::new());
//! let router = Router::new().route("/product/{id}", get(|| async { "a product" }));
//! let service = Microservice::new("catalog", router)
//!     .registry(registry)
//!     .listen("127.0.0.1:0".parse().unwrap())
//!     .bind()
//!     .await?
//!     .register()
//!     .await?;
//! // Printed once peers can find it.
//! println!("catalog http://{}", service.local_addr());
//! service.run(shutdown_signal()).await
//! # }
//! ```
//!
//! Shutdown order matters: on the signal the instance is deregistered first, so peers stop
//! choosing it; after a short grace (the time a registry watch takes to reach them) the
//! listener closes and in-flight requests drain, up to the server's shutdown timeout.

mod registering;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use tower_layer::Stack;

use self::registering::Registering;
use crate::console::{Console, REGISTERED_SINCE};
use crate::discovery::{Instance, MemoryRegistry, Registry};
use crate::gateway::Network;
use crate::metrics::{Metrics, MetricsLayer};
use crate::middleware::RequestIdLayer;
use crate::openapi::{document_router, Document, OPENAPI_PATH};
use crate::router::get;
use crate::{serve, Json, Router, ServerConfig};

/// A service being assembled.
pub struct Microservice {
    router: Router,
    registry: Arc<dyn Registry>,
    listen: SocketAddr,
    config: ServerConfig,
    instance: Instance,
    metrics: Arc<Metrics>,
    grace: Duration,
    openapi: Option<DocumentEdit>,
    #[cfg(feature = "tls")]
    tls: Option<crate::server::TlsConfig>,
    operators: Vec<Network>,
}

/// What a service adds to its generated OpenAPI document.
type DocumentEdit = Box<dyn FnOnce(Document) -> Document + Send>;

impl std::fmt::Debug for Microservice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Microservice")
            .field("instance", &self.instance)
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl Microservice {
    /// A service named `name` answering with `router`, on 127.0.0.1 with a free port, in a
    /// registry of its own until [`registry`](Self::registry) shares one.
    pub fn new(name: impl Into<String>, router: Router) -> Self {
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            router,
            registry: Arc::new(MemoryRegistry::new()),
            listen,
            config: ServerConfig::default(),
            instance: Instance::new(name, listen),
            metrics: Arc::new(Metrics::new()),
            grace: Duration::from_millis(200),
            openapi: Some(Box::new(|document| document)),
            #[cfg(feature = "tls")]
            tls: None,
            operators: Network::private(),
        }
    }

    /// Whether the service serves its OpenAPI document at `GET /openapi.json` and a viewer at
    /// `GET /docs` (with the `docs` feature). On by default; a router that routes
    /// `/openapi.json` itself keeps its own.
    pub fn openapi(mut self, enabled: bool) -> Self {
        self.openapi = enabled.then(|| Box::new(|document| document) as DocumentEdit);
        self
    }

    /// Edits the generated document before it is served: a description, operations of
    /// routes that describe themselves elsewhere ([`Document::merge`]). Switches serving on.
    pub fn openapi_document(
        mut self,
        edit: impl FnOnce(Document) -> Document + Send + 'static,
    ) -> Self {
        self.openapi = Some(Box::new(edit));
        self
    }

    /// The registry to register in.
    pub fn registry(mut self, registry: Arc<dyn Registry>) -> Self {
        self.registry = registry;
        self
    }

    /// Where to listen (port 0 picks a free one).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The server's limits and timeouts.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Changes the registered instance (version, zone, tags, weight, metadata); its service
    /// name and address are kept.
    pub fn instance(mut self, edit: impl FnOnce(Instance) -> Instance) -> Self {
        let (service, addr) = (self.instance.service.clone(), self.instance.addr);
        let mut instance = edit(self.instance);
        instance.service = service;
        instance.addr = addr;
        self.instance = instance;
        self
    }

    /// Records into `metrics` (share them with the service's [`ServiceClient`](crate::client::ServiceClient) through
    /// [`ServiceClient::with_observer`](crate::client::ServiceClient::with_observer) so calls
    /// show up too).
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Serves over TLS (feature `tls`, see [`TlsConfig`](crate::server::TlsConfig)) and
    /// registers the instance as `https`, its certificate expected to name the service (change
    /// the name with [`instance`](Self::instance) and
    /// [`Instance::with_https`](crate::discovery::Instance::with_https)).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::server::TlsConfig) -> Self {
        self.tls = Some(tls);
        self.instance = self.instance.with_https(None);
        self
    }

    /// The networks whose callers may read `/metrics` (and the console): loopback and the
    /// private ranges by default. Others get a 403 problem, and so does anything forwarded by
    /// the gateway.
    pub fn operator_networks(mut self, networks: impl IntoIterator<Item = Network>) -> Self {
        self.operators = networks.into_iter().collect();
        self
    }

    /// How long to keep serving between deregistering and closing the listener.
    pub fn deregistration_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Binds the listener. The instance is registered by [`BoundService::register`] (or
    /// [`BoundService::run`]), so a caller can learn the address before peers can.
    pub async fn bind(self) -> io::Result<BoundService> {
        let listener = TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        let mut instance = self.instance;
        instance.addr = addr;
        let since = crate::metrics::unix_seconds() * 1000.0;
        instance
            .metadata
            .entry(REGISTERED_SINCE.to_owned())
            .or_insert_with(|| format!("{since:.0}"));
        let console =
            Console::new(&instance.service, self.metrics.clone()).instance(instance.clone());
        let health =
            json!({ "status": "ok", "service": instance.service, "instance": instance.id });
        let mut router = self.router;
        let routes_its_own = router.routes().iter().any(|(_, path)| path == OPENAPI_PATH);
        if let (Some(edit), false) = (self.openapi, routes_its_own) {
            let version = match instance.version.as_str() {
                "" => "0.0.0",
                version => version,
            };
            let document = edit(Document::new(&instance.service, version).routes(&router));
            router = router.merge(document_router(&document.to_json()));
        }
        let router = router
            .route(
                "/health",
                get(move || {
                    let health = health.clone();
                    async move { Json(health) }
                })
                .undocumented(),
            )
            .merge(console.operator_router(self.operators))
            // Every service keeps the caller's request id (the outer layer), so calls it makes
            // pass it on, and records each request (the inner one). One layer of two rather
            // than two calls to `layer`: each is a level of its own, a boxed future and a
            // clone of what it wraps per request.
            .layer(Stack::new(
                MetricsLayer::new(self.metrics.clone()),
                RequestIdLayer::new(),
            ));
        Ok(BoundService {
            listener,
            router,
            registry: self.registry,
            instance,
            config: self.config,
            grace: self.grace,
            #[cfg(feature = "tls")]
            tls: self.tls,
            metrics: self.metrics,
        })
    }
}

/// A service listening but not yet registered: [`register`](Self::register) it, or
/// [`run`](Self::run) it to do both.
pub struct BoundService {
    listener: TcpListener,
    router: Router,
    registry: Arc<dyn Registry>,
    instance: Instance,
    config: ServerConfig,
    grace: Duration,
    #[cfg(feature = "tls")]
    tls: Option<crate::server::TlsConfig>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for BoundService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundService")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl BoundService {
    /// Where the service listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.instance.addr
    }

    /// The instance it registers.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Registers the instance, then returns a service that peers can find: once this completes,
    /// the registry lists the instance, so whoever is told the service is up can reach it.
    ///
    /// A registry that cannot be reached does not stop the service: the instance is registered
    /// in the background (retrying with backoff, at most 2 s apart) as soon as the registry
    /// answers. Only a registry configuration error is returned.
    pub async fn register(self) -> io::Result<RegisteredService> {
        let registration = Registering::start(self.registry.clone(), self.instance.clone())
            .await
            .map_err(io::Error::other)?;
        if let Registering::Done(_) = registration {
            tracing::info!(service = %self.instance.service, addr = %self.instance.addr, "registered");
        }
        Ok(RegisteredService {
            bound: self,
            registration,
        })
    }

    /// Registers, serves until `shutdown` completes, then deregisters, waits the grace period,
    /// and drains: [`register`](Self::register) followed by [`RegisteredService::run`].
    pub async fn run<F>(self, shutdown: F) -> io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.register().await?.run(shutdown).await
    }
}

/// A service listening and registered (or registering in the background while its registry
/// is unreachable): [`run`](Self::run) it.
pub struct RegisteredService {
    bound: BoundService,
    registration: Registering,
}

impl std::fmt::Debug for RegisteredService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredService")
            .field("instance", &self.bound.instance)
            .finish_non_exhaustive()
    }
}

impl RegisteredService {
    /// Where the service listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.bound.local_addr()
    }

    /// The registered instance.
    pub fn instance(&self) -> &Instance {
        &self.bound.instance
    }

    /// Serves until `shutdown` completes, then deregisters, waits the grace period, and drains.
    pub async fn run<F>(self, shutdown: F) -> io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Self {
            bound,
            registration,
        } = self;
        let grace = bound.grace;
        let signal = async move {
            shutdown.await;
            registration.deregister().await;
            tokio::time::sleep(grace).await;
        };
        let serving = serve(bound.listener, bound.router)
            .config(bound.config)
            .metrics(bound.metrics);
        #[cfg(feature = "tls")]
        let serving = match bound.tls {
            Some(tls) => serving.tls(tls),
            None => serving,
        };
        serving.with_graceful_shutdown(signal).await
    }
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
