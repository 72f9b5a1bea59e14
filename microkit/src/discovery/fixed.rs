use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

use super::{BoxFuture, DiscoveryError, Instance, Registration, Registry, Watch};

/// The environment variable [`FixedRegistry::from_env`] reads.
pub const SERVICES_ENV: &str = "MICROKIT_SERVICES";

/// A fixed list of instances, from configuration: for deployments whose addresses are known
/// up front. Registering is accepted and changes nothing.
#[derive(Debug, Clone, Default)]
pub struct FixedRegistry {
    services: Arc<HashMap<String, Arc<[Instance]>>>,
}

impl FixedRegistry {
    /// A registry of the given instances.
    pub fn new(instances: impl IntoIterator<Item = Instance>) -> Self {
        let mut services: HashMap<String, Vec<Instance>> = HashMap::new();
        for instance in instances {
            services
                .entry(instance.service.clone())
                .or_default()
                .push(instance);
        }
        Self {
            services: Arc::new(
                services
                    .into_iter()
                    .map(|(name, list)| (name, Arc::from(list)))
                    .collect(),
            ),
        }
    }

    /// Parses `service=addr,addr;service=addr`, such as
    /// `catalog=127.0.0.1:8001,127.0.0.1:8002;users=127.0.0.1:8003`.
    pub fn parse(spec: &str) -> Result<Self, DiscoveryError> {
        let mut instances = Vec::new();
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (service, addrs) = entry.split_once('=').ok_or_else(|| {
                DiscoveryError::Config(format!("`{entry}` is not of the form service=addr,addr"))
            })?;
            let service = service.trim();
            if service.is_empty() {
                return Err(DiscoveryError::Config(format!(
                    "`{entry}` names no service"
                )));
            }
            for addr in addrs.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                let addr: SocketAddr = addr.parse().map_err(|err| {
                    DiscoveryError::Config(format!(
                        "`{addr}` of `{service}` is not an address: {err}"
                    ))
                })?;
                instances.push(Instance::new(service, addr).with_id(format!("{service}@{addr}")));
            }
        }
        Ok(Self::new(instances))
    }

    /// Reads the list from the `MICROKIT_SERVICES` environment variable (see [`parse`](Self::parse)).
    pub fn from_env() -> Result<Self, DiscoveryError> {
        let spec = std::env::var(SERVICES_ENV)
            .map_err(|_| DiscoveryError::Config(format!("{SERVICES_ENV} is not set")))?;
        Self::parse(&spec)
    }

    fn list(&self, service: &str) -> Arc<[Instance]> {
        self.services
            .get(service)
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }
}

impl Registry for FixedRegistry {
    fn register(&self, instance: Instance) -> BoxFuture<'_, Result<Registration, DiscoveryError>> {
        Box::pin(async move { Ok(Registration::new(instance, || async {})) })
    }

    fn resolve<'a>(
        &'a self,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Instance>, DiscoveryError>> {
        let list = self.list(service).to_vec();
        Box::pin(async move { Ok(list) })
    }

    fn watch<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Watch, DiscoveryError>> {
        // The list never changes: a receiver whose sender is gone keeps its value forever.
        let (_, receiver) = watch::channel(self.list(service));
        Box::pin(async move { Ok(receiver) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_services_and_addresses() {
        let registry =
            FixedRegistry::parse("catalog=127.0.0.1:8001, 127.0.0.1:8002; users=127.0.0.1:8003")
                .unwrap();
        assert_eq!(registry.resolve("catalog").await.unwrap().len(), 2);
        assert_eq!(
            registry.resolve("users").await.unwrap()[0].addr.port(),
            8003
        );
        assert!(registry.resolve("stats").await.unwrap().is_empty());
        let watch = registry.watch("catalog").await.unwrap();
        assert_eq!(watch.borrow().len(), 2);
    }

    #[test]
    fn rejects_malformed_lists() {
        assert!(FixedRegistry::parse("catalog").is_err());
        assert!(FixedRegistry::parse("catalog=nowhere").is_err());
        assert!(FixedRegistry::parse("=127.0.0.1:1").is_err());
    }
}
