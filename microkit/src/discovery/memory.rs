use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{BoxFuture, DiscoveryError, Instance, Registration, Registry, Watch};

/// The latest list of one service, and the way to publish a new one.
type Channel = watch::Sender<Arc<[Instance]>>;

/// An in-process registry: the default, for services that share one process (tests, the
/// bundled shop). Cloning shares the registry.
#[derive(Debug, Clone, Default)]
pub struct MemoryRegistry {
    services: Arc<Mutex<HashMap<String, Channel>>>,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn sender(&self, service: &str) -> Channel {
        let mut services = self.services.lock().expect("registry lock poisoned");
        services
            .entry(service.to_owned())
            .or_insert_with(|| watch::Sender::new(Arc::from(Vec::new())))
            .clone()
    }

    fn add(&self, instance: Instance) {
        self.sender(&instance.service).send_modify(|list| {
            let mut next: Vec<Instance> = list
                .iter()
                .filter(|i| i.id != instance.id)
                .cloned()
                .collect();
            next.push(instance);
            *list = Arc::from(next);
        });
    }

    fn remove(&self, service: &str, id: &str) {
        self.sender(service).send_if_modified(|list| {
            if !list.iter().any(|i| i.id == id) {
                return false;
            }
            let next: Vec<Instance> = list.iter().filter(|i| i.id != id).cloned().collect();
            *list = Arc::from(next);
            true
        });
    }
}

impl Registry for MemoryRegistry {
    fn register(&self, instance: Instance) -> BoxFuture<'_, Result<Registration, DiscoveryError>> {
        self.add(instance.clone());
        let registry = self.clone();
        let (service, id) = (instance.service.clone(), instance.id.clone());
        let registration = Registration::new(instance, move || async move {
            registry.remove(&service, &id);
        });
        Box::pin(async move { Ok(registration) })
    }

    fn resolve<'a>(
        &'a self,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Instance>, DiscoveryError>> {
        let instances = self.sender(service).borrow().to_vec();
        Box::pin(async move { Ok(instances) })
    }

    fn watch<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Watch, DiscoveryError>> {
        let receiver = self.sender(service).subscribe();
        Box::pin(async move { Ok(receiver) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(service: &str, port: u16) -> Instance {
        Instance::new(service, ([127, 0, 0, 1], port).into())
    }

    #[tokio::test]
    async fn register_resolve_watch_deregister() {
        let registry = MemoryRegistry::new();
        let mut watch = registry.watch("catalog").await.unwrap();
        assert!(watch.borrow().is_empty());

        let first = registry.register(instance("catalog", 1)).await.unwrap();
        let _second = registry.register(instance("catalog", 2)).await.unwrap();
        let _other = registry.register(instance("users", 3)).await.unwrap();
        watch.changed().await.unwrap();
        assert_eq!(registry.resolve("catalog").await.unwrap().len(), 2);
        assert_eq!(watch.borrow_and_update().len(), 2);

        first.deregister().await;
        watch.changed().await.unwrap();
        let remaining = watch.borrow_and_update().clone();
        assert_eq!(remaining.len(), 1);
        assert_eq!(remaining[0].addr.port(), 2);
    }

    #[tokio::test]
    async fn dropping_a_registration_deregisters() {
        let registry = MemoryRegistry::new();
        let mut watch = registry.watch("emails").await.unwrap();
        drop(registry.register(instance("emails", 1)).await.unwrap());
        // Registration, then the background deregistration.
        while !watch.borrow_and_update().is_empty() || watch.has_changed().unwrap() {
            watch.changed().await.unwrap();
        }
        assert!(registry.resolve("emails").await.unwrap().is_empty());
    }
}
