//! Service discovery: register instances, resolve service names, watch for changes.
//!
//! A [`Registry`] maps service names to live [`Instance`]s. Three backends share one contract:
//!
//! | backend | for | how instances stay registered |
//! |---|---|---|
//! | [`MemoryRegistry`] | one process (the default; tests; the bundled shop) | until deregistered |
//! | [`FixedRegistry`] | a static list from configuration or `MICROKIT_SERVICES` | always |
//! | [`EtcdRegistry`] | many processes and machines | a lease with a 10 s TTL kept alive every TTL/3 |
//!
//! Registering returns a [`Registration`]: keep it alive as long as the instance serves;
//! [`Registration::deregister`] (or dropping it) removes the instance. Watching returns a
//! [`Watch`], the latest instance list of one service, updated in place: what the
//! inter-service client's resolver caches, so calls never wait on the registry.

pub(crate) mod backoff;
mod etcd;
mod fixed;
mod instance;
mod memory;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use self::etcd::EtcdRegistry;
pub use self::fixed::{FixedRegistry, SERVICES_ENV};
pub use self::instance::{Instance, Scheme};
pub use self::memory::MemoryRegistry;
use crate::BoxError;

/// A boxed future, as dyn-compatible registries return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The latest instance list of one service, updated as the registry learns of changes.
///
/// `borrow()` reads the current list without waiting; `changed().await` waits for the next.
pub type Watch = tokio::sync::watch::Receiver<Arc<[Instance]>>;

/// A service registry: where instances announce themselves and find each other.
pub trait Registry: Send + Sync + 'static {
    /// Announces `instance`; it stays registered until the returned handle is deregistered or
    /// dropped.
    fn register(&self, instance: Instance) -> BoxFuture<'_, Result<Registration, DiscoveryError>>;

    /// The instances of `service` registered now (possibly none).
    fn resolve<'a>(
        &'a self,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Instance>, DiscoveryError>>;

    /// The instances of `service`, kept up to date. Backends that lose contact with their
    /// source keep the last good list.
    fn watch<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Watch, DiscoveryError>>;
}

impl<R: Registry + ?Sized> Registry for Arc<R> {
    fn register(&self, instance: Instance) -> BoxFuture<'_, Result<Registration, DiscoveryError>> {
        (**self).register(instance)
    }

    fn resolve<'a>(
        &'a self,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Instance>, DiscoveryError>> {
        (**self).resolve(service)
    }

    fn watch<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Watch, DiscoveryError>> {
        (**self).watch(service)
    }
}

/// Keeps an instance registered. Deregister it explicitly on shutdown, before draining, so
/// that peers stop sending new requests; dropping it deregisters in the background.
#[must_use = "the instance is deregistered when the registration is dropped"]
pub struct Registration {
    instance: Instance,
    deregister: Option<Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send + Sync>>,
}

impl Registration {
    /// A registration that runs `deregister` once, when deregistered or dropped.
    pub fn new<F, Fut>(instance: Instance, deregister: F) -> Self
    where
        F: FnOnce() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            instance,
            deregister: Some(Box::new(move || Box::pin(deregister()))),
        }
    }

    /// The registered instance.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Removes the instance from the registry and waits until it is gone.
    pub async fn deregister(mut self) {
        if let Some(deregister) = self.deregister.take() {
            deregister().await;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(deregister) = self.deregister.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(deregister());
            }
        }
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("instance", &self.instance)
            .finish()
    }
}

/// Why a registry operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The registry could not be reached or answered with an error.
    Unavailable(BoxError),
    /// The configuration (a registry URL, a service list) is malformed.
    Config(String),
}

impl std::fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(err) => write!(f, "the registry is unavailable: {err}"),
            Self::Config(message) => write!(f, "invalid discovery configuration: {message}"),
        }
    }
}

impl std::error::Error for DiscoveryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable(err) => Some(err.as_ref()),
            Self::Config(_) => None,
        }
    }
}
